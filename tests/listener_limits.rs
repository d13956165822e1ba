//! No client holds a connection forever, with real sockets against the built binary: a
//! slowloris head trickled a byte at a time and an idle keep-alive connection are closed after
//! `--head-timeout` on `serve`'s API and on `record`'s proxy; a declared `Content-Length` above
//! `--max-body` gets Discord's 413 at once, with no body sent; `--max-connections` holds further
//! clients back until a slot frees (on `record`, an open CONNECT tunnel holds its slot); heads
//! hyper cannot parse get its 400 in Discord's JSON, and `record` logs them with the client.
mod record_support;
mod serve_support;
#[path = "common/slowloris.rs"]
mod slowloris;
#[path = "common/upstream.rs"]
mod upstream;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use record_support::{workdir, Recorder};
use serve_support::*;
use slowloris::slowloris;
use upstream::FakeDiscord;

/// Sends one complete request, reads its answer, then waits: returns how long the idle
/// keep-alive connection stayed open.
fn idle_after_one_request(addr: &str, request: &[u8], give_up: Duration) -> Duration {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.write_all(request).unwrap();
    tcp.set_read_timeout(Some(give_up)).unwrap();
    let mut buf = [0u8; 4096];
    let n = tcp.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 "), "{:?}", &buf[..n]);
    let started = Instant::now();
    loop {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let held = started.elapsed();
    assert!(held < give_up, "{addr} held an idle connection {held:?}");
    held
}

#[test]
fn serve_closes_slow_and_idle_connections_and_refuses_big_bodies_at_once() {
    let server = Server::start(
        Some(FIXTURE),
        &["--head-timeout", "2", "--max-body", "1000"],
    );
    let addr = server.addr.clone();
    let held = slowloris(
        &addr,
        b"GET /api/v10/users/@me HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa",
        Duration::from_secs(20),
    );
    assert!(
        held >= Duration::from_millis(1500),
        "closed early: {held:?}"
    );
    let request =
        format!("GET /api/v10/users/@me HTTP/1.1\r\nHost: x\r\nAuthorization: {ALICE}\r\n\r\n");
    idle_after_one_request(&addr, request.as_bytes(), Duration::from_secs(20));

    // A body declared far above --max-body, never sent: 413 with Discord's JSON, at once.
    let mut tcp = TcpStream::connect(&addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let head = format!(
        "POST /api/v10/channels/{GENERAL}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: {ALICE}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("}") {
        let n = tcp.read(&mut buf).expect("an answer within a second");
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""code":40005"#), "{answer}");
}

#[test]
fn serve_holds_clients_beyond_max_connections_until_a_slot_frees() {
    let server = Server::start(Some(FIXTURE), &["--max-connections", "2"]);
    let addr = server.addr.clone();
    let first = TcpStream::connect(&addr).unwrap();
    let second = TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut third = TcpStream::connect(&addr).unwrap();
    let request = format!(
        "GET /api/v10/users/@me HTTP/1.1\r\nHost: x\r\nAuthorization: {ALICE}\r\nConnection: close\r\n\r\n"
    );
    third.write_all(request.as_bytes()).unwrap();
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
    drop(second);
}

#[test]
fn record_closes_slow_and_idle_proxy_connections() {
    let stand_in = FakeDiscord::start();
    let dir = workdir();
    let recorder = Recorder::start(dir.path(), &stand_in, &["--head-timeout", "2"]);
    let addr = recorder.addr.to_string();
    let held = slowloris(
        &addr,
        b"GET http://discord.com/api/v9/users/@me HTTP/1.1\r\nHost: discord.com\r\nX-Slow: aaaaaaaaaaaaaa",
        Duration::from_secs(20),
    );
    assert!(
        held >= Duration::from_millis(1500),
        "closed early: {held:?}"
    );
    idle_after_one_request(
        &addr,
        b"GET http://discord.com/api/v9/users/@me HTTP/1.1\r\nHost: discord.com\r\n\r\n",
        Duration::from_secs(20),
    );
}

/// Sends `request` whole and returns the whole answer (the server closes after it).
fn exchange(addr: &str, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn serve_answers_long_targets_and_big_heads_in_discord_json() {
    let server = Server::start(Some(FIXTURE), &[]);
    let addr = server.addr.clone();
    let long = format!(
        "GET /api/v10/users/@me?pad={} HTTP/1.1\r\nHost: x\r\nAuthorization: {ALICE}\r\nConnection: close\r\n\r\n",
        "a".repeat(20_000)
    );
    let answer = exchange(&addr, long.as_bytes());
    assert!(
        answer.starts_with("HTTP/1.1 414"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    assert!(
        answer.contains(r#""message":"414: URI Too Long""#),
        "{answer}"
    );

    let mut big =
        format!("GET /api/v10/users/@me HTTP/1.1\r\nHost: x\r\nAuthorization: {ALICE}\r\n");
    for n in 0..40 {
        big.push_str(&format!("X-Pad-{n}: {}\r\n", "b".repeat(1000)));
    }
    big.push_str("Connection: close\r\n\r\n");
    let answer = exchange(&addr, big.as_bytes());
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    assert!(
        answer.contains(r#""message":"431: Request Header Fields Too Large""#),
        "{answer}"
    );
    // A head hyper cannot parse: its own 400, in Discord's JSON.
    let answer = exchange(
        &addr,
        b"GET /api/v10/users/@me HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains(r#""message":"400: Bad Request""#),
        "{answer}"
    );
    // Ordinary requests on the same server are unaffected.
    let plain = format!(
        "GET /api/v10/users/@me HTTP/1.1\r\nHost: x\r\nAuthorization: {ALICE}\r\nConnection: close\r\n\r\n"
    );
    assert!(exchange(&addr, plain.as_bytes()).starts_with("HTTP/1.1 200"));
}

#[test]
fn record_holds_clients_beyond_max_connections_until_a_slot_frees() {
    let stand_in = FakeDiscord::start();
    let dir = workdir();
    let recorder = Recorder::start(dir.path(), &stand_in, &["--max-connections", "2"]);
    let addr = recorder.addr.to_string();
    // An open CONNECT tunnel takes a slot for as long as it is open, like any connection.
    let mut tunnel = TcpStream::connect(&addr).unwrap();
    tunnel
        .write_all(b"CONNECT discord.com:443 HTTP/1.1\r\nHost: discord.com:443\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 12];
    tunnel.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let idle = TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // A flood beyond the cap: none of these is served while both slots are taken.
    let request = b"GET http://discord.com/api/v9/users/@me HTTP/1.1\r\nHost: discord.com\r\nConnection: close\r\n\r\n";
    let mut waiting: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut tcp = TcpStream::connect(&addr).unwrap();
            tcp.write_all(request).unwrap();
            tcp.set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            tcp
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    for tcp in &mut waiting {
        let mut buf = [0u8; 64];
        assert!(
            tcp.read(&mut buf).is_err(),
            "a connection beyond --max-connections 2 was served while two were open"
        );
    }
    // The tunnel closing frees its slot: the waiting clients are served, two at a time.
    drop(tunnel);
    for tcp in &mut waiting {
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 64];
        let n = tcp.read(&mut buf).unwrap();
        // Answered (plain HTTP to port 80 has no stand-in behind it: a 502 is the answer).
        assert!(buf[..n].starts_with(b"HTTP/1.1 "), "{:?}", &buf[..n]);
    }
    drop(idle);
}

#[test]
fn record_answers_malformed_heads_in_discord_json_and_logs_the_client() {
    let stand_in = FakeDiscord::start();
    let dir = workdir();
    let recorder = Recorder::start(dir.path(), &stand_in, &[]);
    let addr = recorder.addr.to_string();
    let mut tcp = TcpStream::connect(&addr).unwrap();
    let client = tcp.local_addr().unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"GET http://discord.com/api/v9/users/@me HTTP/1.1\r\nBad Header\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("application/json"), "{answer}");
    assert!(
        answer.contains(r#""message":"400: Bad Request""#),
        "{answer}"
    );
    // Inside an intercepted tunnel too.
    let mut tunnel = TcpStream::connect(&addr).unwrap();
    tunnel
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    tunnel
        .write_all(b"CONNECT discord.com:80 HTTP/1.1\r\nHost: discord.com:80\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 12];
    tunnel.read_exact(&mut head).unwrap();
    let mut rest = [0u8; 256];
    let _ = tunnel.read(&mut rest);
    tunnel
        .write_all(b"GET /api/v9/users/@me HTTP/1.1\r\nHost: discord.com\r\nBad Header\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = tunnel.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains(r#""message":"400: Bad Request""#),
        "{answer}"
    );
    let log = recorder.stop();
    assert!(
        log.lines()
            .any(|line| line.contains("WARN") && line.contains(&format!("from {client}"))),
        "the malformed request is a WARN naming the client {client}:\n{log}"
    );
}
