//! Schema inference (`routes --openapi`): 100,000 recorded exchanges over mixed routes with JSON
//! bodies of 1–50 KB, merged into per-route schemas on one core. Target: ≥ 20,000 exchanges/s.
//! Under `cargo test` (no `--bench`) it infers 512 exchanges instead.
#[path = "../tests/common/json_exchange.rs"]
mod json_exchange;
#[path = "support/mode.rs"]
mod mode;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use discord_mitm::explore::openapi::Inferred;
use discord_mitm::store::Exchange;
use json_exchange::json_exchange;
use serde_json::{json, Value};

const POOL: usize = 256;

fn message(i: usize, j: usize) -> Value {
    json!({
        "id": format!("{}", 1_300_000_000_000_000_000u64 + (i * 100 + j) as u64),
        "channel_id": "81384788765712384",
        "type": j % 3,
        "content": format!("message {j} of body {i}: some ordinary chat text that people type"),
        "timestamp": "2024-05-06T07:08:09.123000+00:00",
        "edited_timestamp": if j % 4 == 0 { Value::Null } else { json!("2024-05-06T07:09:00+00:00") },
        "author": {"id": "80351110224678912", "username": "Nelly", "avatar": null, "global_name": "N"},
        "mentions": [], "attachments": [], "pinned": false, "tts": false,
        "embeds": if j % 5 == 0 { json!([{"title": "t", "fields": [{"name": "a", "value": "b", "inline": true}]}]) } else { json!([]) },
        "reactions": [{"emoji": {"id": null, "name": "👍"}, "count": j, "me": false}],
    })
}

/// A body of roughly `target` bytes: a list of messages.
fn body(i: usize, target: usize) -> Vec<u8> {
    let mut list = Vec::new();
    let mut size = 2;
    let mut j = 0;
    while size < target {
        let m = message(i, j);
        size += m.to_string().len() + 1;
        list.push(m);
        j += 1;
    }
    serde_json::to_vec(&Value::Array(list)).unwrap_or_default()
}

fn pool() -> Vec<Exchange> {
    let routes = [
        "/api/v9/channels/{}/messages?limit=50",
        "/api/v9/guilds/{}/messages/search",
        "/api/v9/channels/{}/pins",
        "/api/v9/users/@me/mentions",
        "/api/v9/channels/{}/threads/archived/public",
    ];
    (0..POOL)
        .map(|i| {
            // 1 KB to 50 KB, spread evenly.
            let size = 1024 + (i * 49 * 1024) / (POOL - 1);
            let data = body(i, size);
            let path = routes[i % routes.len()]
                .replace("{}", &(81_384_788_765_712_384u64 + i as u64).to_string());
            Exchange {
                id: i as u64,
                ..json_exchange("GET", path, 1_795_300_000_000_000 + i as i64, data)
            }
        })
        .collect()
}

fn infer(c: &mut Criterion) {
    mode::announce();
    let pool = pool();
    let bytes: usize = pool
        .iter()
        .map(|e| e.response.as_ref().map_or(0, |r| r.body.data.len()))
        .sum();
    eprintln!("mean body {} bytes", bytes / POOL);
    let exchanges: usize = mode::sized(100_000, 2 * POOL);
    let mut group = c.benchmark_group("schema inference");
    group.sample_size(10);
    group.throughput(Throughput::Elements(exchanges as u64));
    group.bench_function("100k exchanges, bodies 1-50 KB", |b| {
        b.iter(|| {
            let mut inferred = Inferred::default();
            for i in 0..exchanges {
                inferred.observe(&pool[i % POOL]);
            }
            std::hint::black_box(inferred.operations.len())
        })
    });
    group.finish();
}

criterion_group!(benches, infer);
criterion_main!(benches);
