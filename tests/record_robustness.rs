//! Bad input never takes the proxy down: garbage, failed TLS, upstream resets, oversized
//! headers, vanishing WebSocket clients; and kill -9 leaves a database that opens.
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use record_support::*;
use serde_json::Value;
use upstream::FakeDiscord;

fn read_some(stream: &mut TcpStream) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

#[test]
fn bad_input_is_refused_and_everyone_else_carries_on() {
    let rt = runtime();
    let stand_in = FakeDiscord::start();
    let dir = workdir();
    let recorder = Recorder::start(dir.path(), &stand_in, &[]);

    // Garbage instead of a request line.
    let mut garbage = TcpStream::connect(recorder.addr).unwrap();
    garbage
        .write_all(b"\x00\xff\x13garbage that is not HTTP\r\n\r\n")
        .unwrap();
    let answer = read_some(&mut garbage);
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    proxy_still_serves(&recorder);

    // CONNECT to Discord, then a broken TLS ClientHello.
    let mut tls = TcpStream::connect(recorder.addr).unwrap();
    tls.write_all(b"CONNECT discord.com:443 HTTP/1.1\r\nHost: discord.com:443\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 39];
    tls.read_exact(&mut head).unwrap();
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tls.write_all(b"\x16\x03\x01\x00\x05hello-not-tls").unwrap();
    let _ = read_some(&mut tls);
    proxy_still_serves(&recorder);

    // A client that hangs up in the middle of its request headers.
    let mut half = TcpStream::connect(recorder.addr).unwrap();
    half.write_all(b"GET http://discord.com/api/v9/users/@me HTTP/1.1\r\nHost: disc")
        .unwrap();
    drop(half);
    proxy_still_serves(&recorder);

    // Oversized request heads (431) and failed TLS are covered in record_connections.rs.

    // Upstream resets in the middle of a response: the client sees a cut response, the
    // exchange is recorded with the error.
    let out = curl(&recorder, "https://discord.com/reset", &[]);
    assert!(
        !out.status.success(),
        "a reset upstream cannot look like a complete response: {:?} {:?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    proxy_still_serves(&recorder);

    // A WebSocket client that vanishes mid-frame.
    rt.block_on(async {
        let url = "wss://gateway.discord.gg/?v=10&encoding=json&compress=zstd-stream";
        let ws =
            websocket_through_proxy(recorder.addr, &recorder.ca_pem, "gateway.discord.gg", url)
                .await;
        let mut tls_stream = ws.into_inner();
        use tokio::io::AsyncWriteExt;
        // A masked text frame header announcing 100 bytes, then only 3 of them.
        tls_stream
            .write_all(&[0x81, 0x80 | 100, 1, 2, 3, 4, b'a', b'b', b'c'])
            .await
            .unwrap();
        tls_stream.flush().await.unwrap();
        drop(tls_stream);
    });
    std::thread::sleep(Duration::from_millis(500));
    proxy_still_serves(&recorder);

    let log = recorder.stop();
    // Clients' mistakes are warnings, never hudsucker's ERROR lines.
    assert!(!log.contains("ERROR"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("proxy connection")),
        "the garbage is reported as a warning:\n{log}"
    );
    let store = open_store(&dir.path().join("recordings"));
    let reset = store
        .exchanges()
        .map(Result::unwrap)
        .find(|e| e.path() == "/reset")
        .unwrap_or_else(|| panic!("the reset exchange was recorded\n{log}"));
    let error = reset.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("response body failed") || error.contains("client went away"),
        "{error}"
    );
    assert_eq!(
        reset.response.as_ref().unwrap().body.data,
        b"{\"partial\": "
    );
    let sessions: Vec<_> = store.sessions().map(Result::unwrap).collect();
    assert_eq!(sessions.len(), 1);
    let session_error = sessions[0].error.as_deref().unwrap_or_default();
    assert!(
        session_error.contains("client connection"),
        "{:?}",
        sessions[0]
    );
    assert!(sessions[0].ended_at_us.is_some());
}

#[test]
fn kill_9_during_traffic_leaves_a_database_that_opens() {
    let stand_in = FakeDiscord::start();
    let dir = workdir();
    let mut recorder = Recorder::start(dir.path(), &stand_in, &[]);
    // 40 requests on one keep-alive connection, done before the pause.
    let urls: Vec<String> = (0..40)
        .map(|_| "https://discord.com/api/v9/users/@me".to_string())
        .collect();
    let mut args: Vec<&str> = vec!["-o", "/dev/null"];
    for url in &urls[1..] {
        args.extend(["-o", "/dev/null", url.as_str()]);
    }
    let out = curl(&recorder, &urls[0], &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Durability promise: what is older than a second is on disk.
    std::thread::sleep(Duration::from_millis(1500));
    // More traffic in flight while we kill it.
    let proxy = recorder.proxy_url();
    let ca = recorder.ca_pem.clone();
    let background = std::thread::spawn(move || {
        for _ in 0..20 {
            let _ = std::process::Command::new("curl")
                .args([
                    "-sS",
                    "--max-time",
                    "2",
                    "-o",
                    "/dev/null",
                    "--proxy",
                    &proxy,
                    "--cacert",
                ])
                .arg(&ca)
                .arg("https://discord.com/api/v9/users/@me")
                .output();
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    recorder.child.kill().unwrap(); // SIGKILL
    recorder.child.wait().unwrap();
    background.join().unwrap();
    drop(recorder);

    let rec = dir.path().join("recordings");
    let stats = run_bin(&[
        "recordings",
        "--recordings",
        rec.to_str().unwrap(),
        "--json",
        "stats",
    ]);
    assert!(
        stats.status.success(),
        "{}",
        String::from_utf8_lossy(&stats.stderr)
    );
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert!(stats["exchanges"].as_u64().unwrap() >= 40, "{stats}");
    // And recording goes on in the same database, with fresh ids.
    let again = Recorder::start(dir.path(), &stand_in, &[]);
    proxy_still_serves(&again);
    again.stop();
    let store = open_store(&rec);
    let ids: Vec<u64> = store.exchanges().map(|e| e.unwrap().id).collect();
    let mut sorted = ids.clone();
    sorted.dedup();
    assert_eq!(ids, sorted, "ids stay unique and ordered after a crash");
    assert!(ids.len() as u64 > stats["exchanges"].as_u64().unwrap());
}
