//! Feeds arbitrary frames from both directions into the recorder's gateway `Decoder`, under every
//! encoding/compression combination. It must never panic, whatever arrives.
#![no_main]
use discord_mitm::gateway::decoder::{Decoder, Direction, Frame};
use libfuzzer_sys::fuzz_target;

const QUERIES: [&str; 6] = [
    "v=10&encoding=json",
    "v=10&encoding=etf",
    "v=10&encoding=json&compress=zlib-stream",
    "v=10&encoding=etf&compress=zlib-stream",
    "v=10&encoding=json&compress=zstd-stream",
    "v=10&encoding=etf&compress=zstd-stream",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let mut decoder = Decoder::from_query(QUERIES[selector as usize % QUERIES.len()])
        .expect("fixed queries are valid");
    let mut time = 0;
    // Each frame: one header byte (direction, kind, length bits) then up to 255 bytes.
    while let Some((&header, tail)) = rest.split_first() {
        let len = (tail.first().copied().unwrap_or(0) as usize).min(tail.len().saturating_sub(1));
        let body = tail.get(1..1 + len).unwrap_or(&[]);
        rest = tail.get(1 + len..).unwrap_or(&[]);
        let direction = if header & 1 == 0 {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        let frame = match header >> 1 & 3 {
            0 => Frame::Text(body),
            3 => Frame::Close(Some(u16::from(header) << 4), "fuzz"),
            _ => Frame::Binary(body),
        };
        let _ = decoder.feed(direction, time, frame);
        time += 1;
    }
});
