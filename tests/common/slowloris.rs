//! A slowloris client for listener tests: a request head trickled a byte at a time.
//! Test crates include it with `#[path = "common/slowloris.rs"] mod slowloris;`.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Trickles `head` a byte every 200 ms (never finishing it) and returns how long the server
/// kept the connection open; panics if it is still open after `give_up`.
pub fn slowloris(addr: &str, head: &[u8], give_up: Duration) -> Duration {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    for byte in head.iter().cycle() {
        if started.elapsed() > give_up {
            panic!("{addr} still holds a slowloris connection after {give_up:?}");
        }
        if tcp.write_all(&[*byte]).is_err() {
            return started.elapsed();
        }
        let mut buf = [0u8; 512];
        match tcp.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {}
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return started.elapsed(),
        }
    }
    unreachable!()
}
