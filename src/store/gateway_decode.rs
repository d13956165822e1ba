//! Turning tapped gateway frames into JSON payloads: transport compression (zlib-stream,
//! zstd-stream), per-message zlib, and the payload encoding.
//!
//! Interim: this covers JSON with zlib-stream / zstd-stream / per-message zlib; ETF payloads
//! are reported as undecoded until the gateway core's decoder is wired in here.
use flate2::{Decompress, FlushDecompress, Status};
use serde_json::Value;

use super::records::{Direction, FrameKind};

const ZLIB_SUFFIX: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What one frame decoded to.
#[derive(Debug)]
pub enum Decoded {
    /// A whole payload.
    Payload(Value),
    /// This frame carried part of a compressed message; the rest comes in later frames.
    Partial,
    /// Not a gateway payload (ping, pong, close).
    NotPayload,
    /// Decoding failed; the reason.
    Failed(String),
}

/// Per-session decoding state (compression contexts live across frames).
pub struct SessionDecoder {
    etf: bool,
    transport: Transport,
}

enum Transport {
    None,
    Zlib {
        inflate: Box<Decompress>,
        pending: Vec<u8>,
    },
    Zstd(Box<zstd::stream::raw::Decoder<'static>>),
    Broken(String),
}

impl SessionDecoder {
    /// State for a connection opened with these `encoding` and `compress` query values.
    pub fn new(encoding: Option<&str>, compress: Option<&str>) -> Self {
        let transport = match compress {
            Some("zlib-stream") => Transport::Zlib {
                inflate: Box::new(Decompress::new(true)),
                pending: Vec::new(),
            },
            Some("zstd-stream") => match zstd::stream::raw::Decoder::new() {
                Ok(decoder) => Transport::Zstd(Box::new(decoder)),
                Err(err) => Transport::Broken(format!("zstd: {err}")),
            },
            _ => Transport::None,
        };
        SessionDecoder {
            etf: encoding == Some("etf"),
            transport,
        }
    }

    /// Decodes one frame. Only server-to-client frames use transport compression.
    pub fn decode(&mut self, direction: Direction, kind: FrameKind, data: &[u8]) -> Decoded {
        if !matches!(kind, FrameKind::Text | FrameKind::Binary) {
            return Decoded::NotPayload;
        }
        let bytes = if direction == Direction::ServerToClient && kind == FrameKind::Binary {
            match &mut self.transport {
                Transport::Broken(reason) => return Decoded::Failed(reason.clone()),
                Transport::Zlib { inflate, pending } => {
                    pending.extend_from_slice(data);
                    if !pending.ends_with(&ZLIB_SUFFIX) {
                        return Decoded::Partial;
                    }
                    let input = std::mem::take(pending);
                    match inflate_all(inflate, &input) {
                        Ok(out) => out,
                        Err(err) => {
                            self.transport = Transport::Broken(format!("zlib-stream: {err}"));
                            return Decoded::Failed(format!("zlib-stream: {err}"));
                        }
                    }
                }
                Transport::Zstd(decoder) => match zstd_all(decoder, data) {
                    Ok(out) => out,
                    Err(err) => {
                        self.transport = Transport::Broken(format!("zstd-stream: {err}"));
                        return Decoded::Failed(format!("zstd-stream: {err}"));
                    }
                },
                Transport::None if !self.etf => {
                    // Payload compression (`compress: true` in IDENTIFY): one zlib stream per message.
                    let mut inflate = Decompress::new(true);
                    match inflate_all(&mut inflate, data) {
                        Ok(out) => out,
                        Err(err) => return Decoded::Failed(format!("zlib payload: {err}")),
                    }
                }
                Transport::None => data.to_vec(),
            }
        } else {
            data.to_vec()
        };
        if self.etf {
            return Decoded::Failed("ETF payload (not decoded by this build)".into());
        }
        match serde_json::from_slice(&bytes) {
            Ok(value) => Decoded::Payload(value),
            Err(err) => Decoded::Failed(format!("not JSON: {err}")),
        }
    }
}

fn inflate_all(inflate: &mut Decompress, input: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(input.len() * 4 + 64);
    let mut offset = 0;
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(4096));
        }
        let before_in = inflate.total_in();
        let status = inflate
            .decompress_vec(&input[offset..], &mut out, FlushDecompress::Sync)
            .map_err(|e| e.to_string())?;
        offset += (inflate.total_in() - before_in) as usize;
        let room_left = out.capacity() > out.len();
        match status {
            Status::StreamEnd => return Ok(out),
            _ if offset >= input.len() && room_left => return Ok(out),
            Status::BufError if offset >= input.len() => return Ok(out),
            _ => {}
        }
    }
}

fn zstd_all(
    decoder: &mut zstd::stream::raw::Decoder<'static>,
    input: &[u8],
) -> Result<Vec<u8>, String> {
    use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
    let mut out = Vec::with_capacity(input.len() * 4 + 64);
    let mut src = InBuffer::around(input);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let mut dst = OutBuffer::around(&mut chunk[..]);
        decoder.run(&mut src, &mut dst).map_err(|e| e.to_string())?;
        let written = dst.pos();
        out.extend_from_slice(&chunk[..written]);
        if src.pos() >= input.len() && written < chunk.len() {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    fn zlib_stream_messages(messages: &[&str]) -> Vec<Vec<u8>> {
        let mut deflate = Compress::new(Compression::default(), true);
        messages
            .iter()
            .map(|msg| {
                let mut out = Vec::with_capacity(msg.len() + 64);
                deflate
                    .compress_vec(msg.as_bytes(), &mut out, FlushCompress::Sync)
                    .unwrap();
                out
            })
            .collect()
    }

    #[test]
    fn zlib_stream_across_messages_and_split_frames() {
        let frames = zlib_stream_messages(&[
            r#"{"op":10,"d":{"heartbeat_interval":41250}}"#,
            r#"{"op":0,"t":"READY","s":1,"d":{}}"#,
        ]);
        let mut decoder = SessionDecoder::new(Some("json"), Some("zlib-stream"));
        let Decoded::Payload(hello) =
            decoder.decode(Direction::ServerToClient, FrameKind::Binary, &frames[0])
        else {
            panic!("hello")
        };
        assert_eq!(hello["op"], 10);
        let (a, b) = frames[1].split_at(3);
        assert!(matches!(
            decoder.decode(Direction::ServerToClient, FrameKind::Binary, a),
            Decoded::Partial
        ));
        let Decoded::Payload(ready) =
            decoder.decode(Direction::ServerToClient, FrameKind::Binary, b)
        else {
            panic!("ready")
        };
        assert_eq!(ready["t"], "READY");
        let Decoded::Payload(heartbeat) = decoder.decode(
            Direction::ClientToServer,
            FrameKind::Text,
            br#"{"op":1,"d":null}"#,
        ) else {
            panic!("heartbeat")
        };
        assert_eq!(heartbeat["op"], 1);
    }

    #[test]
    fn zstd_stream_messages() {
        let mut encoder = zstd::stream::raw::Encoder::new(3).unwrap();
        let mut decoder = SessionDecoder::new(Some("json"), Some("zstd-stream"));
        for n in 0..3 {
            let msg =
                format!(r#"{{"op":0,"s":{n},"t":"MESSAGE_CREATE","d":{{"content":"hi {n}"}}}}"#);
            let frame = zstd_flush(&mut encoder, msg.as_bytes());
            let Decoded::Payload(value) =
                decoder.decode(Direction::ServerToClient, FrameKind::Binary, &frame)
            else {
                panic!("message {n}")
            };
            assert_eq!(value["s"], n);
        }
    }

    fn zstd_flush(encoder: &mut zstd::stream::raw::Encoder<'static>, data: &[u8]) -> Vec<u8> {
        use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
        let mut out = vec![0u8; data.len() + 256];
        let mut src = InBuffer::around(data);
        let mut dst = OutBuffer::around(&mut out[..]);
        encoder.run(&mut src, &mut dst).unwrap();
        encoder.flush(&mut dst).unwrap();
        let n = dst.pos();
        out.truncate(n);
        out
    }

    #[test]
    fn garbage_is_reported_and_poisons_the_stream() {
        let mut decoder = SessionDecoder::new(None, Some("zlib-stream"));
        let mut garbage = b"garbage!".to_vec();
        garbage.extend_from_slice(&ZLIB_SUFFIX);
        assert!(matches!(
            decoder.decode(Direction::ServerToClient, FrameKind::Binary, &garbage),
            Decoded::Failed(_)
        ));
        assert!(matches!(
            decoder.decode(Direction::ServerToClient, FrameKind::Binary, &garbage),
            Decoded::Failed(_)
        ));
    }
}
