//! The recorder's per-exchange costs off the hot path: templating a route, writing one typical
//! exchange alone and in a recorder-sized batch (postcard, zstd chunk, sled inserts), and the
//! path `record` takes: a capture built as the proxy builds it, copied into the recorder's log,
//! encoded, redacted and stored by the recorder thread.
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use discord_mitm::store::capture::{Addr, CapturedBody, ExchangeCapture, ExchangeEnd};
use discord_mitm::store::route::route_template;
use discord_mitm::store::{Exchange, Header, Recorder, RecorderOptions, Store};
#[path = "../tests/common/json_exchange.rs"]
mod json_exchange;
use json_exchange::json_exchange;

fn exchange() -> Exchange {
    let body =
        br#"{"id":"80351110224678912","username":"Nelly","discriminator":"0","avatar":null}"#;
    Exchange {
        upstream_addr: Some("162.159.137.232:443".into()),
        request_headers: vec![
            Header {
                name: "authorization".into(),
                value: b"[redacted by discord-mitm sha256:0011aabb]".to_vec(),
            },
            Header {
                name: "user-agent".into(),
                value: b"DiscordBot (https://github.com/Rapptz/discord.py 2.4.0)".to_vec(),
            },
        ],
        redactions: vec!["request.header.authorization".into()],
        ..json_exchange(
            "GET",
            "/api/v9/channels/81384788765712384/messages?limit=50".into(),
            1_795_300_000_000_000,
            body.to_vec(),
        )
    }
}

fn store(c: &mut Criterion) {
    c.bench_function("route_template(channel messages)", |b| {
        b.iter(|| route_template(std::hint::black_box("/api/v9/channels/81384788765712384/messages/1300000000000000001/reactions/%F0%9F%91%8D/@me")))
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open store");
    let template = exchange();
    c.bench_function("store: insert_exchange (typical REST exchange)", |b| {
        b.iter(|| {
            let mut e = template.clone();
            store.insert_exchange(&mut e).expect("insert")
        })
    });
    // What the recorder does under load: one call per gathered batch (a 64-exchange chunk).
    let mut group = c.benchmark_group("store: insert_exchanges");
    group.throughput(criterion::Throughput::Elements(64));
    group.bench_function("batch of 64 typical REST exchanges", |b| {
        b.iter(|| {
            let mut batch = vec![template.clone(); 64];
            store.insert_exchanges(&mut batch).expect("insert")
        })
    });
    group.finish();
}

/// A capture of the typical exchange, made the way the pipeline makes one.
fn capture() -> Vec<u8> {
    let mut request = http::HeaderMap::new();
    request.insert(
        "authorization",
        http::HeaderValue::from_static("Bot MTIz.abc.def"),
    );
    request.insert(
        "user-agent",
        http::HeaderValue::from_static("DiscordBot (https://github.com/Rapptz/discord.py 2.4.0)"),
    );
    let mut response = http::HeaderMap::new();
    response.insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    let body =
        br#"{"id":"80351110224678912","username":"Nelly","discriminator":"0","avatar":null}"#;
    let capture = ExchangeCapture::request(
        "GET",
        "/api/v9/channels/81384788765712384/messages?limit=50",
        "HTTP/1.1",
        &request,
        2048,
    );
    let mut captured = capture.response_head(200, &response, body.len());
    captured.data.extend_from_slice(body);
    captured.wire_size = body.len() as u64;
    ExchangeCapture::response_body_end(captured).finish(&ExchangeEnd {
        request_body: &CapturedBody::default(),
        started_at_us: 1_795_300_000_000_000,
        wait_us: Some(900),
        duration_us: 1100,
        client_addr: Addr::Socket("127.0.0.1:50000".parse().expect("addr")),
        upstream_addr: Some(Addr::Socket("162.159.137.232:443".parse().expect("addr"))),
        source: "upstream",
        scheme: "https",
        host: "discord.com",
        port: None,
        error: None,
        rewrites: &[],
    })
}

fn recorder(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(Store::open(dir.path()).expect("open store"));
    let recorder = Recorder::start(store, RecorderOptions::default());
    // Enough captures per flush that sled's fsync is a small part of each iteration.
    const CAPTURES: u64 = 20_000;
    let mut group = c.benchmark_group("recorder");
    group.sample_size(10);
    group.throughput(criterion::Throughput::Elements(CAPTURES));
    group.bench_function("captures built, logged, encoded and stored", |b| {
        b.iter(|| {
            for _ in 0..CAPTURES {
                recorder.capture(&capture());
            }
            recorder.flush();
        })
    });
    group.finish();
}

criterion_group!(benches, store, recorder);
criterion_main!(benches);
