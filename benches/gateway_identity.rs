//! What `serve --listen`'s identity rules cost a relayed gateway session (each message from
//! upstream decoded, its ids swapped, encoded again): one zlib-stream MESSAGE_CREATE (~1 KiB)
//! naming the real account, one that does not (decompressed and compressed again all the
//! same: the stream has one context), the same two on plain JSON text, and a 1 MiB zlib-stream
//! READY. The peer is what relaying costs without the rules: nothing per message.
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use discord_mitm::gateway::compress::{TransportCompression, ZlibStreamCompressor};
use discord_mitm::pipeline::gateway_identity::RelayedIdentity;
use discord_mitm::pipeline::identity::{
    CallerLookup, Identity, IdentityConfig, LocalCaller, UpstreamToken,
};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const LOCAL: &str = "100000000000000001";
const REAL: &str = "80351110224678912";

fn identity() -> Arc<Identity> {
    let lookup: CallerLookup = Arc::new(|auth: &str| {
        (auth == "alice-token").then(|| LocalCaller {
            id: LOCAL.into(),
            bot: false,
        })
    });
    Arc::new(Identity::new(
        lookup,
        IdentityConfig {
            upstream_token: UpstreamToken::new("real-user-token").ok(),
            per_user: Default::default(),
        },
    ))
}

/// Rules for a session that identified as alice and whose READY named the real account, and
/// upstream's compressor for that connection (a zlib stream has one context: later frames must
/// come from the same compressor).
fn session(compression: TransportCompression) -> (RelayedIdentity, ZlibStreamCompressor) {
    let rules = RelayedIdentity::new(identity(), false, compression).expect("rules");
    let identify = json!({"op": 2, "d": {"token": "alice-token"}}).to_string();
    let _ = rules.client_message(Message::text(identify));
    let ready = json!({"op": 0, "t": "READY", "s": 1, "d": {"user": {"id": REAL}}}).to_string();
    let mut upstream = ZlibStreamCompressor::new();
    let frame = match compression {
        TransportCompression::ZlibStream => {
            Message::binary(upstream.compress(ready.as_bytes()).expect("deflate"))
        }
        _ => Message::text(ready),
    };
    let _ = rules.server_message(frame).expect("READY");
    (rules, upstream)
}

fn message_create(author: &str, n: u64) -> String {
    json!({"op": 0, "t": "MESSAGE_CREATE", "s": n, "d": {
        "id": (1_300_000_000_000_000_000u64 + n).to_string(), "channel_id": "81384788765712384",
        "guild_id": "81384788765712300", "content": "x".repeat(600), "type": 0, "tts": false,
        "author": {"id": author, "username": "someone", "global_name": "Someone", "avatar": null},
        "mentions": [], "mention_roles": [], "attachments": [], "embeds": [], "pinned": false,
        "timestamp": "2026-12-06T12:00:00.000000+00:00"}})
    .to_string()
}

/// A READY of about 1 MiB: 400 guilds of 20 channels.
fn big_ready() -> String {
    let guilds: Vec<_> = (0..400u64)
        .map(|g| {
            let channels: Vec<_> = (0..20u64)
                .map(|c| json!({"id": (200_000_000_000_000_000u64 + g * 100 + c).to_string(),
                                "name": format!("channel-{c}"), "type": 0, "position": c,
                                "permission_overwrites": []}))
                .collect();
            json!({"id": (200_000_000_000_000_000u64 + g * 100).to_string(), "name": format!("guild {g}"),
                   "owner_id": REAL, "channels": channels})
        })
        .collect();
    json!({"op": 0, "t": "READY", "s": 1, "d": {"user": {"id": REAL}, "guilds": guilds}})
        .to_string()
}

fn zlib_stream(c: &mut Criterion) {
    let mut group = c.benchmark_group("gateway_identity/zlib-stream");
    for (name, author) in [
        ("names the real id", REAL),
        ("other ids only", "80351110224678999"),
    ] {
        let (rules, mut upstream) = session(TransportCompression::ZlibStream);
        let mut n = 0u64;
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("MESSAGE_CREATE, {name}"), |b| {
            b.iter_batched(
                || {
                    n += 1;
                    let text = message_create(author, n);
                    Message::binary(upstream.compress(text.as_bytes()).expect("deflate"))
                },
                |frame| rules.server_message(frame).expect("relayed"),
                BatchSize::SmallInput,
            )
        });
    }
    let ready = big_ready();
    group.throughput(Throughput::Bytes(ready.len() as u64));
    group.sample_size(20);
    group.bench_function("READY of 1 MiB", |b| {
        b.iter_batched(
            || {
                // A fresh session per READY: it comes first on a connection.
                let rules =
                    RelayedIdentity::new(identity(), false, TransportCompression::ZlibStream)
                        .expect("rules");
                let _ = rules.client_message(Message::text(
                    json!({"op": 2, "d": {"token": "alice-token"}}).to_string(),
                ));
                let frame = ZlibStreamCompressor::new()
                    .compress(ready.as_bytes())
                    .expect("deflate");
                (rules, Message::binary(frame))
            },
            |(rules, frame)| rules.server_message(frame).expect("relayed"),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn plain_json(c: &mut Criterion) {
    let mut group = c.benchmark_group("gateway_identity/json");
    group.throughput(Throughput::Elements(1));
    for (name, author) in [
        ("names the real id", REAL),
        ("other ids only", "80351110224678999"),
    ] {
        let (rules, _) = session(TransportCompression::None);
        let text = message_create(author, 7);
        group.bench_function(format!("MESSAGE_CREATE, {name}"), |b| {
            b.iter_batched(
                || Message::text(text.clone()),
                |frame| rules.server_message(frame).expect("relayed"),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, zlib_stream, plain_json);
criterion_main!(benches);
