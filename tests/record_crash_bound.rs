//! `record`'s durability bound through the built binary: one keep-alive client sends requests
//! back to back through the proxy, `kill -9` lands in the middle of the traffic, and the
//! database then opens and holds every exchange whose response had completed more than 100 ms
//! before the kill.
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use record_support::*;
use upstream::FakeDiscord;

/// The promise `record` makes (README, "Durability, limits and secrets").
const BOUND: Duration = Duration::from_millis(100);

#[test]
fn after_kill_9_at_most_the_last_100_ms_of_exchanges_are_missing() {
    let rt = runtime();
    let stand_in = FakeDiscord::start();
    let dir = workdir();
    let recorder = Recorder::start(dir.path(), &stand_in, &[]);
    let pid = recorder.child.id();
    let (done, killed_at) = rt.block_on(async {
        let tls = tls_through_proxy(recorder.addr, &recorder.ca_pem, "discord.com").await;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(connection);
        let mut done: Vec<(u64, Instant)> = Vec::new();
        let started = Instant::now();
        let mut n = 0u64;
        while started.elapsed() < Duration::from_millis(1500) {
            let request = http::Request::get(format!("/api/v9/users/@me?n={n}"))
                .header("host", "discord.com")
                .body(Empty::<bytes::Bytes>::new())
                .unwrap();
            sender.ready().await.unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.status(), 200);
            response.into_body().collect().await.unwrap();
            done.push((n, Instant::now()));
            n += 1;
        }
        // The kill lands while the next requests are in flight.
        let next = tokio::spawn(async move {
            for m in n..n + 1000 {
                let request = http::Request::get(format!("/api/v9/users/@me?n={m}"))
                    .header("host", "discord.com")
                    .body(Empty::<bytes::Bytes>::new())
                    .unwrap();
                if sender.ready().await.is_err() {
                    break;
                }
                let Ok(response) = sender.send_request(request).await else {
                    break;
                };
                if response.into_body().collect().await.is_err() {
                    break;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let killed_at = Instant::now();
        let status = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let _ = next.await;
        (done, killed_at)
    });
    drop(recorder);

    // The database opens, and holds everything older than the bound.
    let store = open_store(&dir.path().join("recordings"));
    let stored: BTreeSet<u64> = store
        .exchanges()
        .map(Result::unwrap)
        .filter_map(|e| {
            e.path_and_query
                .split_once("?n=")
                .and_then(|(_, n)| n.parse().ok())
        })
        .collect();
    let must_have: Vec<u64> = done
        .iter()
        .filter(|(_, at)| killed_at.duration_since(*at) > BOUND)
        .map(|(n, _)| *n)
        .collect();
    assert!(
        must_have.len() > 20,
        "too little traffic to test: {}",
        must_have.len()
    );
    let missing: Vec<u64> = must_have
        .iter()
        .filter(|n| !stored.contains(n))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} exchanges older than {BOUND:?} were lost: {missing:?} (stored {})",
        missing.len(),
        must_have.len(),
        stored.len()
    );
}
