//! gateway-proxy backpressure: a client that stops reading is closed with a resumable code once
//! more than `backpressure` events queue up for it, nothing is dropped, and a RESUME delivers
//! everything it did not read — every sequence number exactly once.
mod gwproxy_support;
#[path = "serve_gateway_support/mod.rs"]
mod serve_gateway_support;

use std::collections::BTreeSet;

use gwproxy_support::{config, free_port, Proxy, RawClient};
use serde_json::{json, Value};
use serve_gateway_support::{fixture, rest, Server, ALICE_TOKEN, BOT_TOKEN, GENERAL_ID};

const BACKPRESSURE: usize = 20;
/// Upper bound on messages posted before the proxy must have closed the client.
const MAX_BATCHES: usize = 250;
const BATCH: usize = 8;

/// Incompressible text so the kernel buffers between proxy and client fill with few events.
fn noise(seed: &mut u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            ALPHABET[(*seed % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

fn gauge(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from metrics:\n{metrics}"))
}

async fn post_batch(server: &Server, seed: &mut u64) -> Vec<String> {
    let bodies: Vec<Value> = (0..BATCH)
        .map(|_| json!({"content": noise(seed, 2000), "embeds": [{"description": noise(seed, 4000)}]}))
        .collect();
    let path = format!("/channels/{GENERAL_ID}/messages");
    let posts = bodies
        .into_iter()
        .map(|body| rest(server, ALICE_TOKEN, "POST", &path, Some(body)));
    futures_util::future::join_all(posts)
        .await
        .into_iter()
        .map(|(status, body)| {
            assert_eq!(status, 200, "{body}");
            body["id"].as_str().expect("message id").to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_stops_reading_is_closed_resumably_and_resumes_without_loss() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_owned();
    let (server, proxy) = tokio::task::spawn_blocking(move || {
        let server = Server::start(&fixture(None));
        let mut config = config(port, &server.http(), BOT_TOKEN);
        config["backpressure"] = json!(BACKPRESSURE);
        let proxy = Proxy::start_in(&dir_path, &config);
        (server, proxy)
    })
    .await
    .unwrap();

    let mut slow = RawClient::connect_small_buffer(&proxy.ws()).await;
    slow.identify(BOT_TOKEN).await;
    let (ready, _) = slow.until("READY").await;
    let session_id = ready["d"]["session_id"].as_str().unwrap().to_owned();
    let mut seqs = vec![1];
    let (guild, _) = slow.until("GUILD_CREATE").await;
    seqs.push(guild["s"].as_u64().unwrap());

    // The client reads nothing more; alice posts until the proxy gives up on it.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut posted = Vec::new();
    let mut closed = false;
    for _ in 0..MAX_BATCHES {
        posted.extend(post_batch(&server, &mut seed).await);
        let metrics = tokio::task::block_in_place(|| proxy.metrics());
        if gauge(&metrics, "gateway_clients_detached") == 1 {
            assert_eq!(gauge(&metrics, "gateway_clients_connected"), 0);
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "the proxy never closed a client that stopped reading ({} messages)",
        posted.len()
    );
    // More arrive after the close; they wait in the session's replay buffer.
    posted.extend(post_batch(&server, &mut seed).await);

    // The client reads again: what was already on the wire, then a resumable close.
    let mut received = Vec::new();
    let code = loop {
        match slow.next().await {
            Ok(payload) if payload["t"] == "MESSAGE_CREATE" => {
                seqs.push(payload["s"].as_u64().unwrap());
                received.push(payload["d"]["id"].as_str().unwrap().to_owned());
            }
            Ok(payload) => panic!("unexpected payload {payload}"),
            Err(code) => break code,
        }
    };
    assert_eq!(
        code,
        Some(4000),
        "closed with a code every library resumes after"
    );
    let read_before_close = received.len();
    assert!(
        read_before_close < posted.len(),
        "the close came after everything: nothing was held back"
    );

    let mut resumed = RawClient::connect(&proxy.ws()).await;
    let seq = *seqs.last().unwrap();
    resumed
        .send(json!({"op": 6, "d": {"token": BOT_TOKEN, "session_id": session_id, "seq": seq}}))
        .await;
    let (_, missed) = resumed.until("RESUMED").await;
    for payload in &missed {
        assert_eq!(payload["t"], "MESSAGE_CREATE", "{payload}");
        seqs.push(payload["s"].as_u64().unwrap());
        received.push(payload["d"]["id"].as_str().unwrap().to_owned());
    }

    // Every sequence number once, in order; every posted message exactly once.
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "sequence numbers with gaps or repeats");
    let unique: BTreeSet<&String> = received.iter().collect();
    assert_eq!(unique.len(), received.len(), "a message arrived twice");
    assert_eq!(
        unique,
        posted.iter().collect::<BTreeSet<_>>(),
        "messages lost (read {read_before_close} before the close, {} on resume)",
        missed.len()
    );
    drop(proxy);
    drop(server);
}
