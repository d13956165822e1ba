//! A full disk under `serve`: the first write that cannot be stored halts writing with one clear
//! error; that request and every write after it get Discord's 500 JSON at once (no hang), reads
//! still work, nothing answered 200 is missing after a restart, and `serve` stops cleanly. The
//! disk fills for real through the kernel (RLIMIT_FSIZE, SIGXFSZ ignored, inherited by the
//! child), as in record_disk_full.rs.
//!
//! One test in this file: the limit is set on the test process around the spawn.
#[path = "common/file_limit.rs"]
mod file_limit;
mod serve_support;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use file_limit::with_file_limit;
use serde_json::json;
use serve_support::*;

/// `serve` on `data` with its stderr collected while it runs; returns the child, its API base
/// and the log.
fn spawn(data: &Path, fixture: Option<&Path>) -> (Child, String, Arc<Mutex<String>>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_discord-mitm"));
    command
        .args(["serve", "--api", "127.0.0.1:0", "--exit-on-stdin-close"])
        .args(["--rate-limit", "off", "--data"])
        .arg(data);
    if let Some(fixture) = fixture {
        command.arg("--fixture").arg(fixture);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut addr = None;
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        if let Some(rest) = line.strip_prefix("discord-mitm serve listening on http://") {
            addr = Some(rest.trim().to_string());
        }
        if line.starts_with("Press Ctrl-C to stop") {
            break;
        }
        line.clear();
    }
    std::thread::spawn(move || {
        let mut sink = String::new();
        while stdout.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    let addr = addr.unwrap_or_else(|| panic!("no banner: {}", log.lock().unwrap()));
    (child, format!("http://{addr}/api/v10"), log)
}

/// Closes `child`'s stdin and waits (at most 15 s) for a clean exit.
fn stop(mut child: Child) -> bool {
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    false
}

/// Incompressible text.
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

#[test]
fn a_full_disk_halts_writes_with_one_error_and_loses_nothing_acknowledged() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    // The world is made without a limit; the database file's size is then the baseline.
    let fixture = root.path().join("fixture.json");
    std::fs::write(&fixture, FIXTURE).unwrap();
    let (child, _, _) = spawn(&data, Some(&fixture));
    assert!(stop(child));
    let baseline = std::fs::metadata(data.join("db")).unwrap().len();
    let (child, base, log) = with_file_limit(baseline + 1024 * 1024, || spawn(&data, None));
    let api = Api::new(&base);
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for n in 0..3000u64 {
        let started = Instant::now();
        let reply = api.post(
            &format!("/channels/{GENERAL}/messages"),
            BOT,
            json!({"content": noise(n, 1900)}),
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a write took {:?}",
            started.elapsed()
        );
        match reply.status {
            200 => acknowledged.push((reply.body["id"].as_str().unwrap().to_string(), n)),
            500 => {
                assert_eq!(reply.body["message"], "500: Internal Server Error");
                refused += 1;
                if refused == 5 {
                    break;
                }
            }
            other => panic!("unexpected {other}: {}", reply.raw),
        }
    }
    assert!(
        refused == 5,
        "the disk never filled ({} acknowledged)",
        acknowledged.len()
    );
    assert!(!acknowledged.is_empty());
    // Reads go on.
    let reply = api.get(&format!("/channels/{GENERAL}"), BOT);
    assert_eq!(reply.status, 200, "{}", reply.raw);
    let stopped = stop(child);
    let log = log.lock().unwrap().clone();
    assert!(stopped, "serve did not stop cleanly:\n{log}");
    assert_eq!(
        log.matches("serve stopped taking writes").count(),
        1,
        "one error says it:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");

    // Without the limit, every acknowledged message is there.
    let (child, base, _) = spawn(&data, None);
    let api = Api::new(&base);
    for (id, n) in &acknowledged {
        let reply = api.get(&format!("/channels/{GENERAL}/messages/{id}"), BOT);
        assert_eq!(
            reply.status, 200,
            "acknowledged message {n} lost: {}",
            reply.raw
        );
        assert_eq!(reply.body["content"], noise(*n, 1900));
    }
    assert!(stop(child));
}
