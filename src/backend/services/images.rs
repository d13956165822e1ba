//! Uploaded images (avatars, banners, icons, splashes, role icons, emojis, event covers): a
//! data URI is checked (a real PNG, JPEG, GIF or WebP under the size limit), stored
//! content-addressed in the `images` blobs, and rendered for the CDN at the size and format a
//! client asks for (animated GIFs keep their frames).
use std::io::Cursor;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::imageops::FilterType;
use image::{AnimationDecoder, DynamicImage, Frame, ImageFormat};
use sha2::{Digest, Sha256};

use crate::backend::error::ApiError;
use crate::backend::store::Store;

/// Largest image accepted (Discord's 10 MiB for avatars and icons).
pub(crate) const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;
/// Sizes the CDN serves (`?size=`): powers of two from 16 to 4096.
const SIZES: [u32; 9] = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

fn invalid(path: &str) -> ApiError {
    ApiError::invalid_field(path, "IMAGE_INVALID", "Invalid image data")
}

/// Largest emoji image: Discord's 256 KiB.
const MAX_EMOJI_BYTES: usize = 256 * 1024;

/// Decodes a `data:image/...;base64,` URI into its bytes and format; 50035 at `path` for
/// anything that is not a PNG, JPEG, GIF or WebP, 50045 above `max` bytes.
pub(crate) fn decode_data_uri(
    data: &str,
    path: &str,
    max: usize,
) -> Result<(Vec<u8>, ImageFormat), ApiError> {
    let Some(rest) = data.strip_prefix("data:") else {
        return Err(invalid(path));
    };
    let Some((_mime, payload)) = rest.split_once(";base64,") else {
        return Err(invalid(path));
    };
    if payload.len() / 4 * 3 > max + 3 {
        return Err(too_large());
    }
    let bytes = STANDARD.decode(payload.trim()).map_err(|_| invalid(path))?;
    let format = check_bytes(&bytes, path, max)?;
    Ok((bytes, format))
}

/// Checks raw image bytes (a data URI's payload or a fixture's file): 50045 above `max`
/// bytes, 50035 at `path` unless a PNG, JPEG, GIF or WebP whose dimensions read; its format.
pub(crate) fn check_bytes(bytes: &[u8], path: &str, max: usize) -> Result<ImageFormat, ApiError> {
    if bytes.len() > max {
        return Err(too_large());
    }
    let format = image::guess_format(bytes).map_err(|_| invalid(path))?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP
    ) {
        return Err(invalid(path));
    }
    // The header alone is not enough: the dimensions must read.
    image::ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|_| invalid(path))?;
    Ok(format)
}

/// The content hash an image is stored and served under (`a_`-prefixed for GIFs, which may be
/// animated).
pub(crate) fn content_hash(bytes: &[u8], format: ImageFormat) -> String {
    let digest = Sha256::digest(bytes);
    let hash = hex::encode(&digest[..16]);
    if format == ImageFormat::Gif {
        format!("a_{hash}")
    } else {
        hash
    }
}

fn too_large() -> ApiError {
    ApiError::bad_request(50045, "File uploaded exceeds the maximum size")
}

/// Checks and stores an image from a data URI; its hash (`a_`-prefixed for GIFs, which may
/// be animated), the key the CDN serves it under.
pub(crate) fn store_image(store: &Store, data: &str, path: &str) -> Result<String, ApiError> {
    store_image_up_to(store, data, path, MAX_IMAGE_BYTES)
}

/// Checks and stores an emoji's image (at most [`MAX_EMOJI_BYTES`], 50045 above); its hash.
pub(crate) fn store_emoji_image(store: &Store, data: &str) -> Result<String, ApiError> {
    store_image_up_to(store, data, "image", MAX_EMOJI_BYTES)
}

/// Largest role icon: Discord's 256 KiB (262144 bytes).
const MAX_ROLE_ICON_BYTES: usize = 256 * 1024;

/// Checks and stores a role icon; its hash. Above 256 KiB Discord answers 50138 ("Failed to
/// resize asset below the maximum size: 262144"), as it does for every asset it must fit under
/// that size; anything not an image is 50035 at `icon`.
pub(crate) fn store_role_icon(store: &Store, data: &str) -> Result<String, ApiError> {
    store_image_up_to(store, data, "icon", MAX_ROLE_ICON_BYTES).map_err(|error| match error {
        ApiError::Coded { code: 50045, .. } => ApiError::bad_request(
            50138,
            "Failed to resize asset below the maximum size: 262144",
        ),
        other => other,
    })
}

/// [`store_image`] with its own size limit.
fn store_image_up_to(
    store: &Store,
    data: &str,
    path: &str,
    max: usize,
) -> Result<String, ApiError> {
    let (bytes, format) = decode_data_uri(data, path, max)?;
    let hash = content_hash(&bytes, format);
    store.account.images.put(&hash, &bytes)?;
    Ok(hash)
}

/// Stores an emoji's (or sticker's) bytes under its id as well (`emojis/{id}`), as the CDN
/// addresses those by id rather than by hash.
pub(crate) fn link_by_id(store: &Store, kind: &str, id: u64, hash: &str) -> Result<(), ApiError> {
    if let Some(bytes) = store.account.images.get(hash)? {
        store.account.images.put(&format!("{kind}/{id}"), &bytes)?;
    }
    Ok(())
}

/// A rendered CDN answer: content type and bytes.
#[derive(Debug)]
pub(crate) struct Rendered {
    /// `image/png`, `image/webp`...
    pub content_type: &'static str,
    /// The encoded image.
    pub bytes: Vec<u8>,
}

/// Why an image cannot be rendered as asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RenderError {
    /// `size` is not one the CDN serves.
    #[error("invalid size")]
    Size,
    /// The extension is not an image format the CDN serves.
    #[error("unsupported format")]
    Format,
    /// The stored bytes no longer decode.
    #[error("stored image does not decode: {0}")]
    Decode(#[from] image::ImageError),
}

/// The format for a CDN extension.
pub(crate) fn format_for(ext: &str) -> Option<(ImageFormat, &'static str)> {
    match ext.to_ascii_lowercase().as_str() {
        "png" => Some((ImageFormat::Png, "image/png")),
        "jpg" | "jpeg" => Some((ImageFormat::Jpeg, "image/jpeg")),
        "webp" => Some((ImageFormat::WebP, "image/webp")),
        "gif" => Some((ImageFormat::Gif, "image/gif")),
        _ => None,
    }
}

/// Renders stored `bytes` as `ext` at most `size` pixels on the longer side (none: as stored).
pub(crate) fn render(bytes: &[u8], ext: &str, size: Option<u32>) -> Result<Rendered, RenderError> {
    let (format, content_type) = format_for(ext).ok_or(RenderError::Format)?;
    if size.is_some_and(|s| !SIZES.contains(&s)) {
        return Err(RenderError::Size);
    }
    let source = image::guess_format(bytes)?;
    if source == format && size.is_none() {
        return Ok(Rendered {
            content_type,
            bytes: bytes.to_vec(),
        });
    }
    if source == ImageFormat::Gif && format == ImageFormat::Gif {
        return Ok(Rendered {
            content_type,
            bytes: resize_animation(bytes, size)?,
        });
    }
    let mut picture = image::load_from_memory_with_format(bytes, source)?;
    if let Some(size) = size {
        picture = picture.resize(size, size, FilterType::Triangle);
    }
    if format == ImageFormat::Jpeg {
        picture = DynamicImage::ImageRgb8(picture.to_rgb8());
    } else if format == ImageFormat::WebP {
        picture = DynamicImage::ImageRgba8(picture.to_rgba8());
    }
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, format)?;
    Ok(Rendered {
        content_type,
        bytes: out.into_inner(),
    })
}

/// Every frame of an animated GIF resized, re-encoded as an animated GIF.
fn resize_animation(bytes: &[u8], size: Option<u32>) -> Result<Vec<u8>, RenderError> {
    let frames = GifDecoder::new(Cursor::new(bytes))?
        .into_frames()
        .collect_frames()?;
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        encoder.set_repeat(Repeat::Infinite)?;
        for frame in frames {
            let delay = frame.delay();
            let buffer = frame.into_buffer();
            let buffer = match size {
                Some(size) => DynamicImage::ImageRgba8(buffer)
                    .resize(size, size, FilterType::Triangle)
                    .to_rgba8(),
                None => buffer,
            };
            encoder.encode_frame(Frame::from_parts(buffer, 0, 0, delay))?;
        }
    }
    Ok(out)
}

/// Discord's default avatar `n` (0-5): a flat square in that avatar's colour, as PNG.
pub(crate) fn default_avatar(n: u8) -> Result<Vec<u8>, RenderError> {
    const COLOURS: [[u8; 3]; 6] = [
        [0x58, 0x65, 0xf2],
        [0x75, 0x7e, 0x8a],
        [0x3b, 0xa5, 0x5c],
        [0xfa, 0xa6, 0x1a],
        [0xed, 0x42, 0x45],
        [0xeb, 0x45, 0x9f],
    ];
    let [r, g, b] = COLOURS[usize::from(n) % COLOURS.len()];
    let picture = image::RgbImage::from_pixel(128, 128, image::Rgb([r, g, b]));
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(picture).write_to(&mut out, ImageFormat::Png)?;
    Ok(out.into_inner())
}
