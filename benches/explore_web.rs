//! The live explorer's API (`explore`, `record --ui`): the route catalog of 1,000 routes
//! (target ≤ 50 ms) and the delay from an exchange's write into the store to its arrival at an
//! event-stream subscriber (target ≤ 200 ms from its recording; the recorder adds at most
//! ~50 ms before the write, see docs/ARCHITECTURE.md "Durability").
#[path = "../tests/common/json_exchange.rs"]
mod json_exchange;

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use discord_mitm::explore::web::Explorer;
use discord_mitm::store::{Exchange, Store};
use json_exchange::json_exchange;
use serde_json::json;

const ROUTES: usize = 1_000;
const PER_ROUTE: usize = 3;

fn exchange(route: usize, n: usize) -> Exchange {
    let body = serde_json::to_vec(&json!({
        "id": format!("{}", 1_300_000_000_000_000_000u64 + (route * 10 + n) as u64),
        "name": format!("thing {n}"),
        "kind": n % 3,
        "flags": [1, 2, 3],
        "owner": {"id": "80351110224678912", "username": "Nelly"},
    }))
    .unwrap_or_default();
    json_exchange(
        if n % 2 == 0 { "GET" } else { "PATCH" },
        format!(
            "/api/v9/family-{route}/items/{}",
            81_384_788_765_712_384u64 + n as u64
        ),
        1_795_300_000_000_000 + (route * 10 + n) as i64,
        body,
    )
}

struct Served {
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
    store: Arc<Store>,
    base: String,
    token: String,
}

fn serve() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("recordings")).unwrap());
    let mut all: Vec<Exchange> = (0..ROUTES)
        .flat_map(|route| (0..PER_ROUTE).map(move |n| exchange(route, n)))
        .collect();
    store.insert_exchanges(&mut all).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let token = "bench-token".to_string();
    let base = runtime.block_on(async {
        let explorer = Explorer::new(Arc::clone(&store), token.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, explorer.router()).await;
        });
        format!("http://{addr}")
    });
    Served {
        _dir: dir,
        _runtime: runtime,
        store,
        base,
        token,
    }
}

fn catalog(c: &mut Criterion) {
    let served = serve();
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let get = || {
        let response = http
            .get(format!("{}/api/v1/routes", served.base))
            .bearer_auth(&served.token)
            .send()
            .unwrap();
        let bytes = response.bytes().unwrap();
        assert!(bytes.len() > 100_000, "{} bytes", bytes.len());
    };
    get();
    let mut group = c.benchmark_group("explorer API");
    group.sample_size(20);
    group.bench_function(
        "route catalog of 1,000 routes, rebuilt after a write",
        |b| {
            let mut n = 0;
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // A write invalidates the cached answer: every GET rebuilds the catalog.
                    n += 1;
                    let mut one = exchange(n % ROUTES, PER_ROUTE + n);
                    served.store.insert_exchange(&mut one).unwrap();
                    let started = Instant::now();
                    get();
                    total += started.elapsed();
                }
                total
            })
        },
    );
    group.bench_function("route catalog of 1,000 routes, unchanged store", |b| {
        b.iter(get)
    });
    group.finish();
}

fn streaming(c: &mut Criterion) {
    let served = serve();
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(None)
        .build()
        .unwrap();
    let events = http
        .get(format!("{}/api/v1/events", served.base))
        .bearer_auth(&served.token)
        .send()
        .unwrap();
    let (tx, rx) = mpsc::channel::<Instant>();
    std::thread::spawn(move || {
        let mut exchange_event = false;
        for line in BufReader::new(events).lines() {
            let Ok(line) = line else { break };
            if line == "event: exchange" {
                exchange_event = true;
            } else if exchange_event && line.starts_with("data: ") {
                exchange_event = false;
                if tx.send(Instant::now()).is_err() {
                    break;
                }
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut samples = Vec::new();
    let mut group = c.benchmark_group("explorer API");
    group.sample_size(20);
    group.bench_function("store write to event-stream subscriber", |b| {
        let mut n = 0;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let mut one = exchange(n % ROUTES, PER_ROUTE + n);
                let written = Instant::now();
                served.store.insert_exchange(&mut one).unwrap();
                let arrived = rx.recv_timeout(Duration::from_secs(5)).expect("streamed");
                let delay = arrived.saturating_duration_since(written);
                samples.push(delay);
                total += delay;
            }
            total
        })
    });
    group.finish();
    samples.sort();
    if !samples.is_empty() {
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
        eprintln!(
            "write → subscriber over {} exchanges: p50 {:?}, p99 {:?}, max {:?}",
            samples.len(),
            at(0.5),
            at(0.99),
            samples[samples.len() - 1]
        );
    }
}

criterion_group!(benches, catalog, streaming);
criterion_main!(benches);
