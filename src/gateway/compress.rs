//! Gateway compression: `zlib-stream` and `zstd-stream` transport compression (one context per
//! connection, kept for its lifetime) and per-payload zlib (IDENTIFY `compress: true`).
//!
//! Compressors are reusable contexts writing into caller-owned buffers, so the fan-out hot path
//! allocates nothing per message once buffers have grown.
//!
//! zlib goes through the `zlib-rs` crate directly rather than flate2: flate2 picks its backend by
//! cargo feature unification, so any crate in the build enabling `flate2/zlib` (twilight-gateway
//! does, as a dev-dependency) would silently swap this hot path to C zlib, which is 4-9x slower
//! at level 1 with a sync flush per message.
use zlib_rs::{Deflate, DeflateFlush, Inflate, InflateFlush, Status};
use zstd::stream::raw::{InBuffer, Operation, OutBuffer};

/// The four bytes every zlib-stream message ends with (an empty stored block from Z_SYNC_FLUSH).
pub const ZLIB_SUFFIX: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Default zlib level for the sending side. Every zlib-stream message ends a deflate block, and at
/// levels 2–9 building that block's dynamic Huffman trees dominates the cost of a ~1 KB payload;
/// level 1 uses fixed trees: about 10x faster for about a quarter more bytes than level 6
/// (see `benches/gateway_codec.rs`), the right trade when one event fans out to thousands of sessions.
pub const DEFAULT_ZLIB_LEVEL: u32 = 1;

/// Default zstd level for the server side.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// Default cap on one decompressed message (a big user's READY is a few MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;

/// The `compress` query parameter of a gateway URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TransportCompression {
    /// No transport compression (payload compression may still be negotiated in IDENTIFY).
    #[default]
    None,
    /// `zlib-stream`: one deflate stream per connection, each message ends with a sync flush.
    ZlibStream,
    /// `zstd-stream`: one zstd frame per connection, each message flushed but the frame never ended.
    ZstdStream,
}

impl TransportCompression {
    /// Parses the query value (`zlib-stream`, `zstd-stream`); `None` for anything else.
    pub fn from_query_value(value: &str) -> Option<TransportCompression> {
        match value {
            "zlib-stream" => Some(TransportCompression::ZlibStream),
            "zstd-stream" => Some(TransportCompression::ZstdStream),
            _ => None,
        }
    }

    /// The query value, or `None` for no compression.
    pub fn as_query_value(self) -> Option<&'static str> {
        match self {
            TransportCompression::None => None,
            TransportCompression::ZlibStream => Some("zlib-stream"),
            TransportCompression::ZstdStream => Some("zstd-stream"),
        }
    }
}

/// Why (de)compression failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompressError {
    /// The zlib stream is corrupt.
    #[error("zlib data is corrupt: {0}")]
    ZlibCorrupt(String),
    /// Data arrived after the zlib stream's final block.
    #[error("zlib stream ended; nothing may follow on this connection")]
    ZlibStreamEnded,
    /// A message ended inside a zlib block.
    #[error("zlib message ends before the end of its stream")]
    ZlibTruncated,
    /// The zstd stream is corrupt.
    #[error("zstd data is corrupt: {0}")]
    ZstdCorrupt(String),
    /// zstd could not allocate its context.
    #[error("zstd context could not be created: {0}")]
    ZstdInit(String),
    /// A message decompressed past the size limit.
    #[error("decompressed message exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The compressor itself failed.
    #[error("compressor failed: {0}")]
    Internal(String),
}

/// Makes sure `out` has at least `want` bytes of spare capacity.
pub(crate) fn ensure_spare(out: &mut Vec<u8>, want: usize) {
    if out.capacity() - out.len() < want {
        out.reserve(want);
    }
}

/// The result of one (de)compression call into a buffer's spare room.
pub(crate) struct Step {
    pub(crate) status: Status,
    pub(crate) consumed: usize,
    /// The call used all the room it was given, so it may have more output to give.
    pub(crate) filled: bool,
}

/// How much of a buffer's spare room one call is handed. Zero-filling it keeps this safe; bounding
/// it keeps that cheap when a buffer has grown large (a big READY) and the message is small.
fn room_for(out: &Vec<u8>, hint: usize) -> usize {
    (out.capacity() - out.len()).min(hint.max(4096))
}

/// One deflate call writing into `out`'s spare room.
pub(crate) fn deflate_into(
    deflate: &mut Deflate,
    input: &[u8],
    out: &mut Vec<u8>,
    flush: DeflateFlush,
) -> Result<Step, CompressError> {
    let start = out.len();
    let room = room_for(out, input.len() + input.len() / 8 + 64);
    let before_in = deflate.total_in();
    let before_out = deflate.total_out();
    out.resize(start + room, 0);
    let status = deflate.compress(input, &mut out[start..], flush);
    let written = (deflate.total_out() - before_out) as usize;
    out.truncate(start + written);
    let status = status.map_err(|e| CompressError::Internal(e.as_str().to_owned()))?;
    Ok(Step {
        status,
        consumed: (deflate.total_in() - before_in) as usize,
        filled: written == room,
    })
}

/// One inflate call writing into `out`'s spare room.
fn inflate_into(
    inflate: &mut Inflate,
    input: &[u8],
    out: &mut Vec<u8>,
    flush: InflateFlush,
) -> Result<(Step, usize), CompressError> {
    let start = out.len();
    let room = room_for(out, input.len().saturating_mul(8));
    let before_in = inflate.total_in();
    let before_out = inflate.total_out();
    out.resize(start + room, 0);
    let status = inflate.decompress(input, &mut out[start..], flush);
    let produced = (inflate.total_out() - before_out) as usize;
    out.truncate(start + produced);
    let status = status.map_err(|e| {
        CompressError::ZlibCorrupt(
            inflate
                .error_message()
                .unwrap_or_else(|| e.as_str())
                .to_owned(),
        )
    })?;
    let step = Step {
        status,
        consumed: (inflate.total_in() - before_in) as usize,
        filled: produced == room,
    };
    Ok((step, produced))
}

// ---------------------------------------------------------------------------------------------
// zlib-stream

/// The sending side of one `zlib-stream` connection.
pub struct ZlibStreamCompressor {
    deflate: Deflate,
}

impl ZlibStreamCompressor {
    /// A new connection context at [`DEFAULT_ZLIB_LEVEL`].
    pub fn new() -> Self {
        ZlibStreamCompressor::with_level(DEFAULT_ZLIB_LEVEL)
    }

    /// A new connection context at zlib `level` (0–9).
    pub fn with_level(level: u32) -> Self {
        ZlibStreamCompressor {
            deflate: Deflate::new(level.min(9) as i32, true, 15),
        }
    }

    /// A new connection context at zlib `level` with a `window_bits` (9–15) history window.
    /// Smaller windows cost less memory per connection (15: ~256 KiB, 14: ~192 KiB) and stay
    /// readable by every client, whose inflaters use the full 15-bit window.
    pub fn with_level_and_window(level: u32, window_bits: u8) -> Self {
        ZlibStreamCompressor {
            deflate: Deflate::new(level.min(9) as i32, true, window_bits.clamp(9, 15)),
        }
    }

    /// Appends one message (ending with [`ZLIB_SUFFIX`]) for `payload` to `out`.
    pub fn compress_into(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CompressError> {
        let mut input = payload;
        ensure_spare(out, payload.len() / 2 + 64);
        loop {
            let step = deflate_into(&mut self.deflate, input, out, DeflateFlush::SyncFlush)?;
            input = &input[step.consumed..];
            // A sync flush is complete once all input is taken and the output was not filled.
            if input.is_empty() && !step.filled {
                return Ok(());
            }
            ensure_spare(out, out.capacity().max(256));
        }
    }

    /// One message for `payload`, in a new buffer.
    pub fn compress(&mut self, payload: &[u8]) -> Result<Vec<u8>, CompressError> {
        let mut out = Vec::new();
        self.compress_into(payload, &mut out)?;
        Ok(out)
    }
}

impl Default for ZlibStreamCompressor {
    fn default() -> Self {
        ZlibStreamCompressor::new()
    }
}

/// The receiving side of one `zlib-stream` connection: frames in, whole messages out.
pub struct ZlibStreamDecompressor {
    inflate: Inflate,
    message: Vec<u8>,
    message_complete: bool,
    max_message_size: usize,
    discarding: bool,
    ended: bool,
    /// The last four bytes received, so a suffix split across frames is still seen.
    tail: [u8; 4],
}

impl ZlibStreamDecompressor {
    /// A new connection context with [`DEFAULT_MAX_MESSAGE_SIZE`].
    pub fn new() -> Self {
        ZlibStreamDecompressor::with_max_message_size(DEFAULT_MAX_MESSAGE_SIZE)
    }

    /// A new connection context refusing messages over `max` bytes decompressed.
    pub fn with_max_message_size(max: usize) -> Self {
        ZlibStreamDecompressor {
            inflate: Inflate::new(true, 15),
            message: Vec::new(),
            message_complete: false,
            max_message_size: max,
            discarding: false,
            ended: false,
            tail: [0xaa; 4],
        }
    }

    /// Takes one WebSocket frame. Returns the whole message once a frame ends with the suffix,
    /// `None` while a message is still being buffered.
    ///
    /// A `TooLarge` message is dropped (reported when it ends) and the stream stays usable; any other error means the
    /// shared context is broken and the rest of the connection cannot be decompressed.
    pub fn push_frame(&mut self, frame: &[u8]) -> Result<Option<&[u8]>, CompressError> {
        if self.message_complete {
            self.message.clear();
            self.message_complete = false;
        }
        if self.ended {
            return Err(CompressError::ZlibStreamEnded);
        }
        // Inflate eagerly: the output is the same as inflating the buffered frames at the suffix,
        // without keeping the compressed bytes around.
        let mut input = frame;
        loop {
            ensure_spare(&mut self.message, (input.len() * 4).clamp(256, 1 << 20));
            let (step, produced) = inflate_into(
                &mut self.inflate,
                input,
                &mut self.message,
                InflateFlush::SyncFlush,
            )?;
            let consumed = step.consumed;
            input = &input[consumed..];
            if self.message.len() > self.max_message_size {
                // Keep inflating so the shared window stays in sync, but drop the output.
                self.message.clear();
                self.discarding = true;
            }
            match step.status {
                Status::StreamEnd => {
                    self.ended = true;
                    if !input.is_empty() {
                        return Err(CompressError::ZlibStreamEnded);
                    }
                    break;
                }
                Status::Ok | Status::BufError => {
                    let room_left = !step.filled;
                    if input.is_empty() && room_left {
                        break;
                    }
                    if consumed == 0 && produced == 0 && room_left {
                        return Err(CompressError::ZlibCorrupt(
                            "inflate made no progress".into(),
                        ));
                    }
                }
            }
        }
        self.remember_tail(frame);
        if self.tail == ZLIB_SUFFIX || self.ended {
            if self.discarding {
                self.discarding = false;
                self.message.clear();
                return Err(CompressError::TooLarge {
                    limit: self.max_message_size,
                });
            }
            self.message_complete = true;
            return Ok(Some(&self.message));
        }
        Ok(None)
    }

    fn remember_tail(&mut self, frame: &[u8]) {
        if frame.len() >= 4 {
            self.tail.copy_from_slice(&frame[frame.len() - 4..]);
        } else {
            self.tail.rotate_left(frame.len());
            self.tail[4 - frame.len()..].copy_from_slice(frame);
        }
    }

    /// Bytes of the message currently being assembled (decompressed so far).
    pub fn pending_len(&self) -> usize {
        if self.message_complete {
            0
        } else {
            self.message.len()
        }
    }
}

impl Default for ZlibStreamDecompressor {
    fn default() -> Self {
        ZlibStreamDecompressor::new()
    }
}

// ---------------------------------------------------------------------------------------------
// zstd-stream

/// The sending side of one `zstd-stream` connection.
pub struct ZstdStreamCompressor {
    encoder: zstd::stream::raw::Encoder<'static>,
}

impl ZstdStreamCompressor {
    /// A new connection context at [`DEFAULT_ZSTD_LEVEL`].
    pub fn new() -> Result<Self, CompressError> {
        ZstdStreamCompressor::with_level(DEFAULT_ZSTD_LEVEL)
    }

    /// A new connection context at zstd `level`.
    pub fn with_level(level: i32) -> Result<Self, CompressError> {
        let encoder = zstd::stream::raw::Encoder::new(level)
            .map_err(|e| CompressError::ZstdInit(e.to_string()))?;
        Ok(ZstdStreamCompressor { encoder })
    }

    /// Appends one message for `payload` to `out`: flushed so it decodes on its own, frame left open.
    pub fn compress_into(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CompressError> {
        let mut input = InBuffer::around(payload);
        ensure_spare(out, payload.len() / 2 + 64);
        while input.pos() < payload.len() {
            let filled_so_far = out.len();
            let mut output = OutBuffer::around_pos(out, filled_so_far);
            self.encoder
                .run(&mut input, &mut output)
                .map_err(|e| CompressError::Internal(e.to_string()))?;
            ensure_spare(out, 1024);
        }
        loop {
            let filled_so_far = out.len();
            let mut output = OutBuffer::around_pos(out, filled_so_far);
            let remaining = self
                .encoder
                .flush(&mut output)
                .map_err(|e| CompressError::Internal(e.to_string()))?;
            if remaining == 0 {
                return Ok(());
            }
            ensure_spare(out, remaining.max(1024));
        }
    }

    /// One message for `payload`, in a new buffer.
    pub fn compress(&mut self, payload: &[u8]) -> Result<Vec<u8>, CompressError> {
        let mut out = Vec::new();
        self.compress_into(payload, &mut out)?;
        Ok(out)
    }
}

/// The receiving side of one `zstd-stream` connection: each frame in, its decompressed bytes out.
pub struct ZstdStreamDecompressor {
    decoder: zstd::stream::raw::Decoder<'static>,
    output: Vec<u8>,
    max_message_size: usize,
}

impl ZstdStreamDecompressor {
    /// A new connection context with [`DEFAULT_MAX_MESSAGE_SIZE`].
    pub fn new() -> Result<Self, CompressError> {
        ZstdStreamDecompressor::with_max_message_size(DEFAULT_MAX_MESSAGE_SIZE)
    }

    /// A new connection context refusing messages over `max` bytes decompressed.
    pub fn with_max_message_size(max: usize) -> Result<Self, CompressError> {
        let decoder = zstd::stream::raw::Decoder::new()
            .map_err(|e| CompressError::ZstdInit(e.to_string()))?;
        Ok(ZstdStreamDecompressor {
            decoder,
            output: Vec::new(),
            max_message_size: max,
        })
    }

    /// Takes one WebSocket frame and returns everything it decompresses to (one message when the
    /// peer follows the protocol). Any error means the stream cannot be decompressed further.
    pub fn push_frame(&mut self, frame: &[u8]) -> Result<&[u8], CompressError> {
        self.output.clear();
        let mut too_large = false;
        let mut input = InBuffer::around(frame);
        loop {
            ensure_spare(&mut self.output, (frame.len() * 4).clamp(1024, 1 << 20));
            let filled_so_far = self.output.len();
            let mut output = OutBuffer::around_pos(&mut self.output, filled_so_far);
            self.decoder
                .run(&mut input, &mut output)
                .map_err(|e| CompressError::ZstdCorrupt(e.to_string()))?;
            let filled = output.pos();
            if self.output.len() > self.max_message_size {
                // Keep decoding the whole frame so the stream stays in sync, but drop the output.
                self.output.clear();
                too_large = true;
            }
            // Done when all input is taken and the decoder had room to spare (nothing held back).
            if input.pos() == frame.len() && filled < self.output.capacity() {
                break;
            }
        }
        if too_large {
            self.output.clear();
            return Err(CompressError::TooLarge {
                limit: self.max_message_size,
            });
        }
        Ok(&self.output)
    }
}

// ---------------------------------------------------------------------------------------------
// Payload compression (IDENTIFY `compress: true`)

/// Compresses single payloads as complete zlib streams, reusing one context.
pub struct PayloadCompressor {
    deflate: Deflate,
}

impl PayloadCompressor {
    /// A new context at [`DEFAULT_ZLIB_LEVEL`].
    pub fn new() -> Self {
        PayloadCompressor {
            deflate: Deflate::new(DEFAULT_ZLIB_LEVEL as i32, true, 15),
        }
    }

    /// Appends `payload` as its own complete zlib stream to `out`.
    pub fn compress_into(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CompressError> {
        self.deflate.reset();
        let mut input = payload;
        ensure_spare(out, payload.len() / 2 + 64);
        loop {
            let step = deflate_into(&mut self.deflate, input, out, DeflateFlush::Finish)?;
            input = &input[step.consumed..];
            if step.status == Status::StreamEnd {
                return Ok(());
            }
            ensure_spare(out, out.capacity().max(256));
        }
    }
}

impl Default for PayloadCompressor {
    fn default() -> Self {
        PayloadCompressor::new()
    }
}

/// Decompresses one payload-compressed message (a complete zlib stream), refusing output over `max`.
pub fn decompress_payload(data: &[u8], max: usize) -> Result<Vec<u8>, CompressError> {
    let mut inflate = Inflate::new(true, 15);
    let mut out = Vec::with_capacity((data.len() * 4).clamp(256, 1 << 20));
    loop {
        ensure_spare(&mut out, 1024);
        let consumed = inflate.total_in() as usize;
        let (step, _) = inflate_into(
            &mut inflate,
            &data[consumed..],
            &mut out,
            InflateFlush::Finish,
        )?;
        if out.len() > max {
            return Err(CompressError::TooLarge { limit: max });
        }
        match step.status {
            Status::StreamEnd => {
                if (inflate.total_in() as usize) < data.len() {
                    return Err(CompressError::ZlibCorrupt(
                        "bytes after the end of the zlib stream".into(),
                    ));
                }
                return Ok(out);
            }
            Status::Ok => {}
            Status::BufError => {
                if !step.filled {
                    return Err(CompressError::ZlibTruncated);
                }
            }
        }
    }
}

/// Whether `data` starts with a zlib header (CMF/FLG check), as payload-compressed frames do.
pub fn looks_like_zlib(data: &[u8]) -> bool {
    match data {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(i: usize) -> Vec<u8> {
        format!(
            "{{\"op\":0,\"s\":{i},\"t\":\"MESSAGE_CREATE\",\"d\":{{\"content\":\"hello {i}\"}}}}"
        )
        .into_bytes()
    }

    #[test]
    fn zlib_stream_round_trips_and_ends_with_suffix() {
        let mut tx = ZlibStreamCompressor::new();
        let mut rx = ZlibStreamDecompressor::new();
        for i in 0..50 {
            let frame = tx.compress(&message(i)).unwrap();
            assert!(frame.ends_with(&ZLIB_SUFFIX));
            assert_eq!(rx.push_frame(&frame).unwrap(), Some(&message(i)[..]));
        }
    }

    #[test]
    fn a_smaller_window_stays_readable_by_full_window_inflaters() {
        let mut tx = ZlibStreamCompressor::with_level_and_window(6, 14);
        let mut rx = ZlibStreamDecompressor::new();
        // Enough repeated history that back-references would reach past 16 KiB if allowed.
        let big: Vec<u8> = (0..40_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for i in 0..20 {
            let mut payload = message(i);
            payload.extend_from_slice(&big);
            let frame = tx.compress(&payload).unwrap();
            assert_eq!(rx.push_frame(&frame).unwrap(), Some(&payload[..]));
        }
    }

    #[test]
    fn zlib_stream_buffers_a_message_split_across_frames() {
        let mut tx = ZlibStreamCompressor::new();
        let mut rx = ZlibStreamDecompressor::new();
        let big: Vec<u8> = (0..20_000)
            .map(|i| b"abcdefghij"[i % 10] ^ (i / 7 % 3) as u8)
            .collect();
        let frame = tx.compress(&big).unwrap();
        let (a, b) = frame.split_at(frame.len() / 2);
        assert_eq!(rx.push_frame(a).unwrap(), None);
        assert_eq!(rx.push_frame(b).unwrap(), Some(&big[..]));
        assert_eq!(rx.pending_len(), 0);
        // The suffix itself may be split across frames.
        let frame = tx.compress(b"second").unwrap();
        let (a, b) = frame.split_at(frame.len() - 1);
        assert_eq!(rx.push_frame(a).unwrap(), None);
        assert_eq!(rx.push_frame(b).unwrap(), Some(&b"second"[..]));
    }

    #[test]
    fn zlib_stream_reports_corruption_and_oversize() {
        let mut rx = ZlibStreamDecompressor::new();
        assert!(matches!(
            rx.push_frame(b"\x78\x9c\xff\xff\xff\x00\x00\xff\xff"),
            Err(CompressError::ZlibCorrupt(_))
        ));

        let mut tx = ZlibStreamCompressor::new();
        let mut rx = ZlibStreamDecompressor::with_max_message_size(100);
        let frame = tx.compress(&[b'a'; 1000]).unwrap();
        assert_eq!(
            rx.push_frame(&frame),
            Err(CompressError::TooLarge { limit: 100 })
        );
        // The stream stays in sync after dropping the oversized message.
        let frame = tx.compress(b"small").unwrap();
        assert_eq!(rx.push_frame(&frame).unwrap(), Some(&b"small"[..]));
    }

    #[test]
    fn zstd_stream_round_trips_one_message_per_frame() {
        let mut tx = ZstdStreamCompressor::new().unwrap();
        let mut rx = ZstdStreamDecompressor::new().unwrap();
        for i in 0..50 {
            let frame = tx.compress(&message(i)).unwrap();
            assert_eq!(rx.push_frame(&frame).unwrap(), &message(i)[..]);
        }
        assert!(matches!(
            ZstdStreamDecompressor::new()
                .unwrap()
                .push_frame(b"not zstd at all"),
            Err(CompressError::ZstdCorrupt(_))
        ));
    }

    #[test]
    fn payload_compression_round_trips() {
        let mut tx = PayloadCompressor::new();
        for i in 0..3 {
            let mut out = Vec::new();
            tx.compress_into(&message(i), &mut out).unwrap();
            assert!(looks_like_zlib(&out));
            assert_eq!(decompress_payload(&out, 1 << 20).unwrap(), message(i));
            assert_eq!(
                decompress_payload(&out[..out.len() - 2], 1 << 20),
                Err(CompressError::ZlibTruncated)
            );
            assert_eq!(
                decompress_payload(&out, 5),
                Err(CompressError::TooLarge { limit: 5 })
            );
        }
        assert!(!looks_like_zlib(b"{\"op\":1}"));
    }
}
