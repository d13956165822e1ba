//! gateway-proxy relay cost: one upstream dispatch through the hub (cache update, numbering,
//! replay buffer, per-client queue) and framed for each of 100 zlib-stream clients, each with
//! its own compression context. Throughput in client deliveries per second = 100 × iterations/s.
//! Also prints the resident memory of a 1,000 guilds × 100 members × 20 channels cache.
use std::collections::HashMap;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use discord_mitm::backend::gateway::wire::Framer;
use discord_mitm::gateway::decoder::ConnectionParams;
use discord_mitm::gateway::server::{IdentifyInfo, ShardInfo};
use discord_mitm::gateway::GatewayPayload;
use discord_mitm::gwproxy::cache::ShardCache;
use discord_mitm::gwproxy::clients::Hub;
use discord_mitm::gwproxy::config::Config;
use discord_mitm::gwproxy::plan::ShardPlan;
use serde_json::json;

const CLIENTS: usize = 100;

fn hub() -> Arc<Hub> {
    let config = Config::parse(r#"{"token":"bench","intents":513,"backpressure":1000}"#)
        .expect("config")
        .config;
    let plan = ShardPlan {
        total: 1,
        start: 0,
        end: 1,
        gateway_url: "ws://127.0.0.1:1".into(),
        max_concurrency: 1,
    };
    let mut cache = ShardCache::new(config.cache);
    cache.apply(
        "READY",
        &json!({"v": 10, "user": {"id": "1", "username": "bot", "bot": true},
                "session_id": "upstream", "guilds": [{"id": "2", "unavailable": true}],
                "application": {"id": "1", "flags": 0}}),
    );
    cache.apply(
        "GUILD_CREATE",
        &json!({"id": "2", "name": "g", "channels": [{"id": "3", "name": "general", "type": 0}]}),
    );
    Hub::new(
        Arc::new(config),
        plan,
        HashMap::from([(0, cache)]),
        HashMap::new(),
    )
}

fn relay(c: &mut Criterion) {
    let hub = hub();
    let params =
        ConnectionParams::from_query("v=10&encoding=json&compress=zlib-stream").expect("params");
    let mut clients = Vec::new();
    for n in 0..CLIENTS {
        let info = IdentifyInfo {
            token: "bench".into(),
            intents: Some(513),
            shard: Some(ShardInfo { id: 0, count: 1 }),
            properties: Default::default(),
            compress: false,
            large_threshold: None,
            presence: None,
            extra: Default::default(),
        };
        let attached = hub
            .identify(&info, n as u64 + 1_000_000)
            .unwrap_or_else(|_| panic!("identify"));
        let mut framer = Framer::new(&params, 6).expect("framer");
        for (seq, event) in &attached.first {
            framer.dispatch(event, *seq).expect("frame");
        }
        clients.push((framer, attached));
    }
    let message = GatewayPayload::dispatch(
        "MESSAGE_CREATE",
        1,
        json!({"id": "10", "channel_id": "3", "guild_id": "2", "content": "ping",
               "author": {"id": "5", "username": "alice", "discriminator": "0", "avatar": null},
               "timestamp": "2026-01-01T00:00:00.000000+00:00", "tts": false,
               "mention_everyone": false, "mentions": [], "mention_roles": [],
               "attachments": [], "embeds": [], "pinned": false, "type": 0}),
    );
    let mut group = c.benchmark_group("gwproxy_relay");
    group.throughput(Throughput::Elements(CLIENTS as u64));
    group.bench_function("one_dispatch_to_100_zlib_stream_clients", |b| {
        b.iter(|| {
            hub.relay(0, message.clone());
            let mut bytes = 0;
            for (framer, attached) in &mut clients {
                let (seq, event) = attached.events.try_recv().expect("delivered");
                let frame = framer.dispatch(&event, seq).expect("frame");
                bytes += frame.len();
            }
            bytes
        })
    });
    group.finish();
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn cache_memory(_c: &mut Criterion) {
    let before = resident_bytes();
    let mut config = Config::parse(r#"{"token":"bench","intents":513}"#)
        .expect("config")
        .config
        .cache;
    config.members = true;
    let mut cache = ShardCache::new(config);
    cache.apply("READY", &json!({"user": {"id": "1"}, "guilds": []}));
    for g in 0..1_000u64 {
        let guild_id = 1_000_000 + g;
        let channels: Vec<_> = (0..20)
            .map(|c| {
                json!({"id": (guild_id * 100 + c).to_string(), "name": format!("channel-{c}"),
                           "type": 0, "position": c, "permission_overwrites": [],
                           "parent_id": null, "topic": null, "nsfw": false})
            })
            .collect();
        let members: Vec<_> = (0..100)
            .map(|m| {
                json!({"user": {"id": (10_000_000 + m).to_string(), "username": format!("user{m}"),
                                     "discriminator": "0", "avatar": null, "global_name": null},
                           "roles": [], "joined_at": "2026-01-01T00:00:00+00:00",
                           "deaf": false, "mute": false, "flags": 0})
            })
            .collect();
        cache.apply(
            "GUILD_CREATE",
            &json!({"id": guild_id.to_string(), "name": format!("guild {g}"),
                    "owner_id": "10000000", "channels": channels, "members": members,
                    "roles": [{"id": guild_id.to_string(), "name": "@everyone", "permissions": "0"}],
                    "member_count": 100}),
        );
    }
    let after = resident_bytes();
    println!(
        "gwproxy_cache: {} guilds x 100 members x 20 channels: {:.1} MB resident",
        cache.guild_count(),
        (after.saturating_sub(before)) as f64 / 1e6
    );
}

criterion_group!(benches, relay, cache_memory);
criterion_main!(benches);
