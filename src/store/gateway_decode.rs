//! Adapter from tapped frames to the gateway core's connection [`Decoder`]: transport
//! compression (zlib-stream, zstd-stream), payload compression, JSON and ETF.
use serde_json::Value;

use super::records::{Direction, FrameKind};
use crate::gateway::decoder::{self, ConnectionParams, Decoder, DecoderEvent};

/// What one tapped frame decoded to (a frame may complete zero, one or several payloads).
#[derive(Debug)]
pub(super) enum Decoded {
    /// A whole payload as JSON (ETF converted), with the wire bytes that completed it.
    Payload(Value),
    /// Decoding failed; the reason.
    Failed(String),
}

/// Per-session decoding state (compression contexts live across frames).
pub(super) struct SessionDecoder {
    decoder: Decoder,
}

impl SessionDecoder {
    /// State for a connection opened with this query string (`v=10&encoding=json&compress=...`).
    /// Unknown parameter values fall back to defaults; the gateway itself would refuse them.
    pub(super) fn new(query: &str) -> Self {
        let params = ConnectionParams::from_query(query).unwrap_or_default();
        SessionDecoder {
            decoder: Decoder::new(params),
        }
    }

    /// Decodes one frame; Ping/Pong/Close yield nothing here (closes are recorded separately).
    pub(super) fn decode(
        &mut self,
        direction: Direction,
        kind: FrameKind,
        data: &[u8],
    ) -> Vec<Decoded> {
        let direction = match direction {
            Direction::ClientToServer => decoder::Direction::ClientToServer,
            Direction::ServerToClient => decoder::Direction::ServerToClient,
        };
        let frame = match kind {
            FrameKind::Text => decoder::Frame::Text(data),
            FrameKind::Binary => decoder::Frame::Binary(data),
            FrameKind::Close | FrameKind::Ping | FrameKind::Pong => return Vec::new(),
        };
        self.decoder
            .feed(direction, 0, frame)
            .into_iter()
            .filter_map(|event| match event {
                DecoderEvent::Payload(p) => match serde_json::to_value(&p.payload) {
                    Ok(value) => Some(Decoded::Payload(value)),
                    Err(err) => Some(Decoded::Failed(format!("payload to JSON: {err}"))),
                },
                DecoderEvent::Corrupt { error, .. } => Some(Decoded::Failed(error.to_string())),
                DecoderEvent::StreamFailed { error, .. } => {
                    Some(Decoded::Failed(format!("stream failed: {error}")))
                }
                DecoderEvent::Undecodable { .. } => {
                    Some(Decoded::Failed("compressed stream failed earlier".into()))
                }
                DecoderEvent::Closed { .. } => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    #[test]
    fn zlib_stream_across_split_frames_and_client_frames() {
        let mut deflate = Compress::new(Compression::default(), true);
        let mut frames = Vec::new();
        for msg in [
            r#"{"op":10,"d":{"heartbeat_interval":41250}}"#,
            r#"{"op":0,"t":"READY","s":1,"d":{}}"#,
        ] {
            let mut out = Vec::with_capacity(msg.len() + 64);
            deflate
                .compress_vec(msg.as_bytes(), &mut out, FlushCompress::Sync)
                .unwrap();
            frames.push(out);
        }
        let mut decoder = SessionDecoder::new("v=10&encoding=json&compress=zlib-stream");
        let hello = decoder.decode(Direction::ServerToClient, FrameKind::Binary, &frames[0]);
        assert!(matches!(&hello[..], [Decoded::Payload(v)] if v["op"] == 10));
        let (a, b) = frames[1].split_at(3);
        assert!(decoder
            .decode(Direction::ServerToClient, FrameKind::Binary, a)
            .is_empty());
        let ready = decoder.decode(Direction::ServerToClient, FrameKind::Binary, b);
        assert!(matches!(&ready[..], [Decoded::Payload(v)] if v["t"] == "READY"));
        let heartbeat = decoder.decode(
            Direction::ClientToServer,
            FrameKind::Text,
            br#"{"op":1,"d":null}"#,
        );
        assert!(matches!(&heartbeat[..], [Decoded::Payload(v)] if v["op"] == 1));
    }

    #[test]
    fn garbage_is_reported() {
        let mut decoder = SessionDecoder::new("compress=zlib-stream");
        let garbage = b"garbage!\x00\x00\xff\xff";
        let out = decoder.decode(Direction::ServerToClient, FrameKind::Binary, garbage);
        assert!(matches!(&out[..], [Decoded::Failed(_)]), "{out:?}");
        let again = decoder.decode(Direction::ServerToClient, FrameKind::Binary, garbage);
        assert!(matches!(&again[..], [Decoded::Failed(_)]), "{again:?}");
    }
}
