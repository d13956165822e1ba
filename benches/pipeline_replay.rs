//! Replay lookups in `serve`'s chain against a recordings store holding many recordings of one
//! route (a bot that polled channel messages for hours): the newest exact match, an exact match
//! further down and a template match (both look at every candidate), once the route's matching
//! facts are cached; the first lookup of a route, which reads every recording of it; and one
//! plain `Store::exchange` read as the peer.
use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use discord_mitm::pipeline::replay::{ReplayOptions, ReplayResponder};
use discord_mitm::pipeline::{empty_body, Outcome, RequestContext, Responder};
use discord_mitm::store::{Exchange, Header, Store};
#[path = "../tests/common/json_exchange.rs"]
mod json_exchange;
use json_exchange::json_exchange;

/// Recordings of the route in the store.
const RECORDINGS: u64 = 2000;
/// Channels they are spread over.
const CHANNELS: u64 = 100;
const FIRST_CHANNEL: u64 = 81_384_788_765_712_384;

fn recorded(channel: u64, n: u64) -> Exchange {
    // About 8 KiB: a page of messages.
    let messages: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"id":"{}","channel_id":"{channel}","content":"message {n}/{i} {}","author":{{"id":"80351110224678912","username":"Nelly"}}}}"#,
                1_300_000_000_000_000_000 + n * 100 + i,
                "x".repeat(250)
            )
        })
        .collect();
    let body = format!("[{}]", messages.join(","));
    Exchange {
        upstream_addr: Some("162.159.137.232:443".into()),
        request_headers: vec![Header {
            name: "authorization".into(),
            value: b"[redacted by discord-mitm sha256:0011aabb]".to_vec(),
        }],
        ..json_exchange(
            "GET",
            format!("/api/v9/channels/{channel}/messages?limit=50"),
            1_795_300_000_000_000 + n as i64,
            body.into_bytes(),
        )
    }
}

fn replay(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(Store::open(dir.path()).expect("open store"));
    for n in 0..RECORDINGS {
        let mut exchange = recorded(FIRST_CHANNEL + n % CHANNELS, n);
        store.insert_exchange(&mut exchange).expect("insert");
    }
    let responder = ReplayResponder::new(Arc::clone(&store), ReplayOptions::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let client: SocketAddr = "127.0.0.1:50000".parse().expect("address");
    let ask_with = |responder: &ReplayResponder, path: String| {
        let ctx = RequestContext::new(client, "https", "discord.com", 443);
        let req = http::Request::get(path)
            .body(empty_body())
            .expect("request");
        match runtime.block_on(responder.respond(&ctx, req)) {
            Outcome::Answered(answer) => answer.response.status(),
            Outcome::Declined(_) => panic!("not replayed"),
        }
    };
    let ask = |path: String| ask_with(&responder, path);
    let newest = FIRST_CHANNEL + (RECORDINGS - 1) % CHANNELS;
    let oldest_only = FIRST_CHANNEL + 7;
    let unrecorded = 999_999_999_999_999_999u64;
    let mut group = c.benchmark_group(format!("replay among {RECORDINGS} recordings of one route"));
    group.bench_function("exact match, newest", |b| {
        b.iter(|| ask(format!("/api/v9/channels/{newest}/messages?limit=50")))
    });
    // Channels are recorded round-robin, so a channel's newest recording is still near the top;
    // a template match has to look at every candidate for an exact one first.
    group.bench_function("exact match, 93 recordings down", |b| {
        b.iter(|| ask(format!("/api/v9/channels/{oldest_only}/messages?limit=50")))
    });
    group.bench_function("template match (scans all)", |b| {
        b.iter(|| ask(format!("/api/v9/channels/{unrecorded}/messages?limit=50")))
    });
    group.bench_function("first lookup of the route (reads every recording)", |b| {
        b.iter_batched(
            || ReplayResponder::new(Arc::clone(&store), ReplayOptions::default()),
            |cold| {
                ask_with(
                    &cold,
                    format!("/api/v9/channels/{unrecorded}/messages?limit=50"),
                )
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.bench_function("peer: one Store::exchange read", |b| {
        b.iter(|| {
            store
                .exchange(std::hint::black_box(RECORDINGS / 2))
                .expect("read")
        })
    });
    group.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
