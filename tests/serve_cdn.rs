//! The CDN with real bytes on the built binary: an avatar uploaded as a data URI comes back
//! from `/avatars/{id}/{hash}.png` at three sizes and as WebP (decoded and measured), an
//! animated GIF banner keeps its frames when resized, emojis are served by id, stickers as
//! uploaded, members' own avatars and banners on the member paths, default avatars exist, a
//! fixture's images come from files beside it, and non-images are refused with 50035.
mod serve_support;

use std::io::Cursor;

use base64::Engine;
use image::codecs::gif::{GifDecoder, GifEncoder};
use image::{AnimationDecoder, DynamicImage, Frame, ImageFormat, RgbaImage};
use serde_json::json;
use serve_support::*;

fn data_uri(mime: &str, bytes: &[u8]) -> String {
    format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let picture = RgbaImage::from_fn(width, height, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 128, 255])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgba8(picture)
        .write_to(&mut out, ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

fn animated_gif() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        for shade in [0u8, 255] {
            let frame = RgbaImage::from_pixel(200, 100, image::Rgba([shade, 0, 0, 255]));
            encoder.encode_frame(Frame::new(frame)).unwrap();
        }
    }
    out
}

/// GET `url`: status, content type and bytes.
fn fetch(url: &str) -> (u16, String, Vec<u8>) {
    let response = reqwest::blocking::get(url).unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, response.bytes().unwrap().to_vec())
}

/// The frames of a GIF.
fn gif_frames(gif: &[u8]) -> Vec<Frame> {
    GifDecoder::new(Cursor::new(gif))
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap()
}

fn dimensions(bytes: &[u8]) -> (u32, u32) {
    let picture = image::load_from_memory(bytes).unwrap();
    (picture.width(), picture.height())
}

#[test]
fn uploaded_images_are_served_at_the_asked_sizes_and_formats() {
    let server = Server::on_fixture();
    let api = server.api();
    let root = format!("http://{}", server.addr);
    let me = expect(
        &api.patch(
            "/users/@me",
            ALICE,
            json!({"avatar": data_uri("image/png", &png(300, 200))}),
        ),
        200,
    )
    .clone();
    let hash = me["avatar"].as_str().unwrap().to_string();
    assert!(!hash.starts_with("a_"));
    let original = fetch(&format!("{root}/avatars/{ALICE_ID}/{hash}.png"));
    assert_eq!((original.0, original.1.as_str()), (200, "image/png"));
    assert_eq!(dimensions(&original.2), (300, 200));
    for (size, expected) in [(16, (16, 11)), (64, (64, 43)), (128, (128, 85))] {
        let (status, kind, bytes) =
            fetch(&format!("{root}/avatars/{ALICE_ID}/{hash}.png?size={size}"));
        assert_eq!((status, kind.as_str()), (200, "image/png"), "size {size}");
        assert_eq!(dimensions(&bytes), expected, "size {size}");
    }
    let (status, kind, webp) = fetch(&format!("{root}/avatars/{ALICE_ID}/{hash}.webp?size=64"));
    assert_eq!((status, kind.as_str()), (200, "image/webp"));
    assert_eq!(image::guess_format(&webp).unwrap(), ImageFormat::WebP);
    assert_eq!(dimensions(&webp), (64, 43));
    let (status, kind, jpeg) = fetch(&format!("{root}/avatars/{ALICE_ID}/{hash}.jpg"));
    assert_eq!((status, kind.as_str()), (200, "image/jpeg"));
    assert_eq!(dimensions(&jpeg), (300, 200));
    let (status, _, _) = fetch(&format!("{root}/avatars/{ALICE_ID}/{hash}.png?size=100"));
    assert_eq!(status, 400, "sizes are powers of two");
    let (status, _, _) = fetch(&format!("{root}/avatars/{ALICE_ID}/0123456789abcdef.png"));
    assert_eq!(status, 404);

    // An animated banner keeps its frames when resized.
    let banner = expect(
        &api.patch(
            "/users/@me",
            ALICE,
            json!({"banner": data_uri("image/gif", &animated_gif())}),
        ),
        200,
    )["banner"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(banner.starts_with("a_"));
    let (status, kind, gif) = fetch(&format!("{root}/banners/{ALICE_ID}/{banner}.gif?size=64"));
    assert_eq!((status, kind.as_str()), (200, "image/gif"));
    let frames = gif_frames(&gif);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].buffer().dimensions(), (64, 32));

    icons_emojis_and_errors(&api, &root);
}

/// One phase of the test above it.
fn icons_emojis_and_errors(api: &Api, root: &str) {
    // Guild icons and emojis.
    let guild = expect(
        &api.patch(
            &format!("/guilds/{GUILD}"),
            ALICE,
            json!({"icon": data_uri("image/png", &png(512, 512))}),
        ),
        200,
    )
    .clone();
    let icon = guild["icon"].as_str().unwrap();
    let (status, _, bytes) = fetch(&format!("{root}/icons/{GUILD}/{icon}.png?size=256"));
    assert_eq!(status, 200);
    assert_eq!(dimensions(&bytes), (256, 256));
    let emoji = expect(
        &api.post(
            &format!("/guilds/{GUILD}/emojis"),
            ALICE,
            json!({"name": "pixel", "image": data_uri("image/png", &png(128, 128))}),
        ),
        201,
    )
    .clone();
    let (status, kind, bytes) = fetch(&format!(
        "{root}/emojis/{}.webp?size=32",
        emoji["id"].as_str().unwrap()
    ));
    assert_eq!((status, kind.as_str()), (200, "image/webp"));
    assert_eq!(dimensions(&bytes), (32, 32));
    let (status, kind, bytes) = fetch(&format!("{root}/embed/avatars/3.png"));
    assert_eq!((status, kind.as_str()), (200, "image/png"));
    assert_eq!(dimensions(&bytes), (128, 128));

    // Not an image: 50035 at the field.
    let bad = api.patch(
        "/users/@me",
        ALICE,
        json!({"avatar": data_uri("image/png", b"not a picture at all")}),
    );
    expect_error(&bad, 400, 50035);
    assert_eq!(
        bad.body["errors"]["avatar"]["_errors"][0]["code"],
        "IMAGE_INVALID"
    );
    let text = api.patch(
        "/users/@me",
        ALICE,
        json!({"avatar": "data:text/plain;base64,aGVsbG8="}),
    );
    expect_error(&text, 400, 50035);
}

/// Uploads a sticker file as a form; its id.
fn upload_sticker(server: &Server, file: &[u8]) -> String {
    let (content_type, body) =
        multipart(&[("name", "wave"), ("tags", "wave")], "file", "s.png", file);
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/guilds/{GUILD}/stickers", server.base()))
        .header("authorization", ALICE)
        .header("content-type", content_type)
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let sticker: serde_json::Value = response.json().unwrap();
    sticker["id"].as_str().unwrap().to_string()
}

#[test]
fn stickers_member_images_and_group_icons_have_cdn_paths() {
    let server = Server::on_fixture();
    let api = server.api();
    let root = format!("http://{}", server.addr);
    // Stickers come back as uploaded, whatever the size asked (as on Discord), in their format.
    let file = png(320, 320);
    let sticker = upload_sticker(&server, &file);
    for query in ["", "?size=64"] {
        let (status, kind, bytes) = fetch(&format!("{root}/stickers/{sticker}.png{query}"));
        assert_eq!((status, kind.as_str()), (200, "image/png"));
        assert_eq!(bytes, file);
    }
    for path in [
        format!("{root}/stickers/{sticker}.gif"),
        format!("{root}/stickers/{sticker}.json"),
        format!("{root}/stickers/1.png"),
    ] {
        assert_eq!(fetch(&path).0, 404, "{path}");
    }

    // A member's own guild avatar and banner, on the member paths at the asked size; setting
    // them needs no nickname permission.
    let member = expect(
        &api.patch(
            &format!("/guilds/{GUILD}/members/@me"),
            BOB,
            json!({"avatar": data_uri("image/png", &png(256, 256)), "banner": data_uri("image/gif", &animated_gif())}),
        ),
        200,
    )
    .clone();
    let avatar = member["avatar"].as_str().unwrap();
    let (status, kind, bytes) = fetch(&format!(
        "{root}/guilds/{GUILD}/users/{BOB_ID}/avatars/{avatar}.webp?size=64"
    ));
    assert_eq!((status, kind.as_str()), (200, "image/webp"));
    assert_eq!(dimensions(&bytes), (64, 64));
    let banner = member["banner"].as_str().unwrap();
    assert!(banner.starts_with("a_"));
    let (status, kind, _) = fetch(&format!(
        "{root}/guilds/{GUILD}/users/{BOB_ID}/banners/{banner}.gif"
    ));
    assert_eq!((status, kind.as_str()), (200, "image/gif"));
    expect_error(
        &api.patch(
            &format!("/guilds/{GUILD}/members/@me"),
            BOB,
            json!({"avatar": "data:image/png;base64,AAAA"}),
        ),
        400,
        50035,
    );
    let cleared = expect(
        &api.patch(
            &format!("/guilds/{GUILD}/members/@me"),
            BOB,
            json!({"avatar": null}),
        ),
        200,
    )
    .clone();
    assert!(cleared["avatar"].is_null());
    assert_eq!(cleared["banner"], banner);
}

#[test]
fn fixture_images_come_from_files_beside_the_fixture() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pics")).unwrap();
    std::fs::write(dir.path().join("pics/alice.png"), png(96, 64)).unwrap();
    std::fs::write(dir.path().join("guild.gif"), animated_gif()).unwrap();
    let mut fixture: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
    fixture["users"][0]["avatar"] = json!("pics/alice.png");
    fixture["users"][0]["banner"] = json!(data_uri("image/png", &png(600, 240)));
    fixture["users"][2]["avatar"] = json!("0123456789abcdef0123456789abcdef");
    fixture["guilds"][0]["icon"] = json!("guild.gif");
    fixture["guilds"][0]["splash"] = json!("pics/alice.png");
    let server =
        Server::start_in(&dir.path().join("data"), Some(&fixture.to_string()), &[]).unwrap();
    let api = server.api();
    let root = format!("http://{}", server.addr);
    let alice = expect(&api.get("/users/@me", ALICE), 200).clone();
    let avatar = alice["avatar"].as_str().unwrap();
    assert_eq!(avatar.len(), 32);
    let (status, _, bytes) = fetch(&format!("{root}/avatars/{ALICE_ID}/{avatar}.png"));
    assert_eq!(status, 200);
    assert_eq!(dimensions(&bytes), (96, 64));
    let banner = alice["banner"].as_str().unwrap();
    let (status, _, bytes) = fetch(&format!("{root}/banners/{ALICE_ID}/{banner}.png?size=128"));
    assert_eq!((status, dimensions(&bytes)), (200, (128, 51)));
    // A bare hash is kept as it is (an image real Discord serves; not held here).
    let bob = expect(&api.get(&format!("/users/{BOB_ID}"), ALICE), 200).clone();
    assert_eq!(bob["avatar"], "0123456789abcdef0123456789abcdef");
    let guild = expect(&api.get(&format!("/guilds/{GUILD}"), ALICE), 200).clone();
    let icon = guild["icon"].as_str().unwrap();
    assert!(icon.starts_with("a_"), "{icon}");
    let (status, kind, gif) = fetch(&format!("{root}/icons/{GUILD}/{icon}.gif"));
    assert_eq!((status, kind.as_str()), (200, "image/gif"));
    assert_eq!(gif_frames(&gif).len(), 2);
    assert_eq!(
        guild["splash"], alice["avatar"],
        "the same file, the same hash"
    );
    drop(server);

    // A missing or non-image file refuses the fixture, naming the field.
    for (value, reason) in [
        ("pics/missing.png", "cannot read"),
        ("guild.txt", "not a PNG"),
    ] {
        std::fs::write(dir.path().join("guild.txt"), "hello").unwrap();
        let mut bad = fixture.clone();
        bad["users"][0]["avatar"] = json!(value);
        let error = Server::start_in(&dir.path().join("bad"), Some(&bad.to_string()), &[])
            .err()
            .expect("the fixture is refused");
        assert!(
            error.contains("$.users[0].avatar") && error.contains(reason),
            "{error}"
        );
    }
}
