//! gateway-proxy's client listener has the limits every listener has, with real sockets against
//! the built binary: a slowloris head and an idle keep-alive connection are closed after
//! `--head-timeout`, `--max-connections` holds further clients back until a slot frees, and a
//! client frame over the 1 MiB limit is closed with 4002 whatever its size.
mod gwproxy_support;
#[path = "serve_gateway_support/mod.rs"]
mod serve_gateway_support;
#[path = "common/slowloris.rs"]
mod slowloris;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use gwproxy_support::{config, free_port, Proxy, RawClient};
use serde_json::json;
use serve_gateway_support::{fixture, Server, BOT_TOKEN};
use slowloris::slowloris;

fn start(extra: &[&str]) -> (Server, Proxy, tempfile::TempDir) {
    let server = Server::start(&fixture(None));
    let dir = tempfile::tempdir().unwrap();
    let config = config(free_port(), &server.http(), BOT_TOKEN);
    let proxy = Proxy::start_with_args(dir.path(), &config, Some("discord_mitm=info"), extra);
    (server, proxy, dir)
}

#[test]
fn slow_idle_and_surplus_clients_are_bounded() {
    let (_server, mut proxy, _dir) = start(&["--head-timeout", "2", "--max-connections", "2"]);
    let addr = format!("127.0.0.1:{}", proxy.port);
    let held = slowloris(
        &addr,
        b"GET /?v=10&encoding=json HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaa",
        Duration::from_secs(20),
    );
    assert!(
        held >= Duration::from_millis(1500),
        "closed early: {held:?}"
    );

    // Two idle connections take both slots; a third client waits until one is closed.
    let first = TcpStream::connect(&addr).unwrap();
    let mut second = TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut third = TcpStream::connect(&addr).unwrap();
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        third.read(&mut buf).is_err(),
        "a third connection was served while two were open"
    );
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let n = third.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    // The idle second connection is closed at the head deadline.
    second
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    assert!(
        matches!(second.read(&mut buf), Ok(0)),
        "idle connection closed"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let (ok, log) = proxy.stop();
    assert!(ok, "{log}");
}

#[test]
fn oversized_client_frames_close_with_4002() {
    let (_server, proxy, _dir) = start(&[]);
    let base = proxy.ws();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for size in [2usize << 20, 20 << 20] {
            let mut client = RawClient::connect(&base).await;
            client
                .send(json!({"op": 1, "d": null, "pad": "a".repeat(size)}))
                .await;
            let closed = loop {
                match client.next().await {
                    Ok(_) => continue,
                    Err(code) => break code,
                }
            };
            assert_eq!(closed, Some(4002), "a {size}-byte frame");
        }
    });
}
