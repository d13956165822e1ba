//! zlib-stream without a compressor per connection. Every message is deflated on its own
//! (no back-reference reaches an earlier message) and ends byte-aligned with a sync flush, so a
//! block deflated once is valid at any point of any connection's stream: a dispatch's body is
//! deflated once per event and spliced into every session's stream, and only its
//! `,"s":N,"t":...}` tail is added per session, as a stored block. Clients see an ordinary
//! zlib stream (a header, then deflate blocks, each message ending in `00 00 ff ff`).
//!
//! The trade: no history shared between messages (larger output for small messages) for
//! no per-connection compressor memory and no per-session deflate work in fan-out.
use std::cell::RefCell;

use zlib_rs::{Deflate, DeflateFlush};

use super::compress::{deflate_into, ensure_spare, CompressError};

/// The zlib header opening every connection's stream (deflate, 32 KiB window, fastest).
pub(super) const ZLIB_HEADER: [u8; 2] = [0x78, 0x01];

/// An empty stored block: the sync-flush marker every zlib-stream message ends with.
const SYNC_MARKER: [u8; 5] = [0x00, 0x00, 0x00, 0xff, 0xff];

thread_local! {
    /// Raw deflaters of this thread by level, reset before each message.
    static DEFLATERS: RefCell<Vec<(u32, Deflate)>> = const { RefCell::new(Vec::new()) };
}

/// Inputs below this are deflated at level 2 when level 1 is asked: zlib-rs's level-1 strategy
/// can make a small message larger than it was (the framer then has to pad JSON streams, see
/// `Framer::balance_zlib`).
const SMALL_INPUT: usize = 1024;

/// Appends `input` deflated at `level` as raw deflate blocks that reference nothing before
/// them, ending byte-aligned with the sync-flush marker.
pub(super) fn standalone(input: &[u8], level: u32, out: &mut Vec<u8>) -> Result<(), CompressError> {
    let level = match level.min(9) {
        1 if input.len() < SMALL_INPUT => 2,
        level => level,
    };
    DEFLATERS.with(|cell| {
        let mut deflaters = cell.borrow_mut();
        let deflate = match deflaters.iter().position(|(kept, _)| *kept == level) {
            Some(at) => {
                let deflate = &mut deflaters[at].1;
                deflate.reset();
                deflate
            }
            None => {
                // Raw deflate (no zlib header: the connection's stream has one already).
                deflaters.push((level, Deflate::new(level as i32, false, 15)));
                let last = deflaters.len() - 1;
                &mut deflaters[last].1
            }
        };
        let mut input = input;
        loop {
            ensure_spare(out, input.len() + input.len() / 8 + 64);
            let step = deflate_into(deflate, input, out, DeflateFlush::SyncFlush)?;
            input = &input[step.consumed..];
            // The flush is complete once all input is taken and the output was not filled.
            if input.is_empty() && !step.filled {
                return Ok(());
            }
        }
    })
}

/// Appends `data` as stored (uncompressed) blocks, then the sync-flush marker. The stream must
/// be byte-aligned here (it is after any message).
pub(super) fn stored(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len() + 5 * (data.len() / 65_535 + 2));
    for chunk in data.chunks(65_535) {
        let len = chunk.len() as u16;
        out.push(0x00);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&SYNC_MARKER);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::compress::{ZlibStreamDecompressor, ZLIB_SUFFIX};

    #[test]
    fn spliced_blocks_read_as_one_zlib_stream_in_any_order() {
        let a = br#"{"op":0,"d":{"content":"hello hello hello"}"#.as_slice();
        let b = br#"{"op":0,"d":{"content":"other other other other"}"#.as_slice();
        let (mut deflated_a, mut deflated_b) = (Vec::new(), Vec::new());
        standalone(a, 1, &mut deflated_a).unwrap();
        standalone(b, 6, &mut deflated_b).unwrap();
        assert!(deflated_a.ends_with(&ZLIB_SUFFIX) && deflated_b.ends_with(&ZLIB_SUFFIX));
        // Two "connections" receive the same deflated blocks in different orders, each
        // with its own stored tails.
        for order in [[a, b, a], [b, a, b]] {
            let mut inflate = ZlibStreamDecompressor::new();
            for (i, plain) in order.iter().enumerate() {
                let mut frame = Vec::new();
                if i == 0 {
                    frame.extend_from_slice(&ZLIB_HEADER);
                }
                let deflated = if *plain == a {
                    &deflated_a
                } else {
                    &deflated_b
                };
                frame.extend_from_slice(deflated);
                let tail = format!(r#","s":{i},"t":"X"}}"#);
                stored(tail.as_bytes(), &mut frame);
                let message = inflate.push_frame(&frame).unwrap().unwrap().to_vec();
                assert_eq!(message, [*plain, tail.as_bytes()].concat());
            }
        }
    }

    #[test]
    fn small_messages_never_come_out_larger_than_they_went_in() {
        let hello = br#"{"op":10,"d":{"heartbeat_interval":41250,"_trace":["[\"discord-mitm-gateway\",{\"micros\":0.0}]"]},"s":null,"t":null}"#;
        let ack = br#"{"op":11,"d":null,"s":null,"t":null}"#;
        for input in [&hello[..], &ack[..]] {
            let mut out = Vec::new();
            standalone(input, 1, &mut out).unwrap();
            // The connection's 2-byte zlib header comes with the first of them.
            assert!(
                out.len() + ZLIB_HEADER.len() <= input.len(),
                "{} -> {}",
                input.len(),
                out.len()
            );
        }
    }

    #[test]
    fn large_tails_span_several_stored_blocks_and_empty_ones_are_just_the_marker() {
        let big = vec![b'x'; 150_000];
        let mut frame = ZLIB_HEADER.to_vec();
        stored(&big, &mut frame);
        let mut inflate = ZlibStreamDecompressor::new();
        assert_eq!(inflate.push_frame(&frame).unwrap().unwrap(), &big[..]);
        let mut empty = Vec::new();
        stored(b"", &mut empty);
        assert_eq!(empty, SYNC_MARKER);
    }

    #[test]
    fn a_message_after_a_reset_does_not_reference_the_previous_one() {
        // Deflated alone, the second message must decode on a stream that never saw the first.
        let first = vec![b'a'; 5000];
        let mut ignored = Vec::new();
        standalone(&first, 1, &mut ignored).unwrap();
        let mut second = Vec::new();
        standalone(&first, 1, &mut second).unwrap();
        let mut frame = ZLIB_HEADER.to_vec();
        frame.extend_from_slice(&second);
        let mut inflate = ZlibStreamDecompressor::new();
        assert_eq!(inflate.push_frame(&frame).unwrap().unwrap(), &first[..]);
    }
}
