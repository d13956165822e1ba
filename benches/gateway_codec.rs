//! Gateway codec throughput on a typical ~1 KB MESSAGE_CREATE (tests/vectors/gateway/message_create.json).
//! Targets (issue 3): zlib-stream compression ≥150,000 payloads/s; JSON → ETF → JSON ≥300,000/s.
//!
//! Every benchmark runs twice: `wall/...` (criterion's wall clock) and `cpu/...` (this thread's CPU
//! time, CLOCK_THREAD_CPUTIME_ID). On a busy shared machine the CPU figure is the honest
//! "payloads per second on one core"; on an idle one both agree.
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_main, Criterion, Throughput};
use discord_mitm::gateway::codec::{self, Encoding};
use discord_mitm::gateway::compress::{
    ZlibStreamCompressor, ZlibStreamDecompressor, ZstdStreamCompressor, ZstdStreamDecompressor,
};
use discord_mitm::gateway::decoder::{Decoder, Direction, Frame};
use discord_mitm::gateway::etf::{self, DecodeOptions};
use discord_mitm::gateway::GatewayPayload;
use serde_json::Value;

#[path = "support/message_variants.rs"]
mod message_variants;
use message_variants::{payload_variants, MESSAGE_CREATE};

fn payload_bytes() -> Vec<u8> {
    // Compact form, as a server would send it.
    let value: Value = serde_json::from_str(MESSAGE_CREATE).expect("vector is JSON");
    serde_json::to_vec(&value).expect("serializes")
}

/// This thread's CPU time (CLOCK_THREAD_CPUTIME_ID), in ns.
struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass; this clock exists on Linux.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuNanos
    }
}

struct CpuNanos;

impl ValueFormatter for CpuNanos {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical < 1e3 {
            (1.0, "ns cpu")
        } else if typical < 1e6 {
            (1e-3, "µs cpu")
        } else {
            (1e-6, "ms cpu")
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }
    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per_iter = match throughput {
            Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => *n as f64,
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) | Throughput::Bits(n) => *n as f64,
        };
        values
            .iter_mut()
            .for_each(|v| *v = per_iter * 1e9 / *v / 1e3);
        "Kelem/s (cpu)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn compression<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let variants = payload_variants();
    let mut group = c.benchmark_group(format!("{clock}/zlib_stream_compress"));
    group.throughput(Throughput::Elements(1));
    for level in [1, 6] {
        // What each level costs in bandwidth, printed with the speed figures.
        let mut tx = ZlibStreamCompressor::with_level(level);
        let mut out = Vec::new();
        for p in &variants {
            tx.compress_into(p, &mut out).expect("compresses");
        }
        let raw: usize = variants.iter().map(Vec::len).sum();
        eprintln!(
            "zlib-stream level {level}: {} bytes/payload on average, {:.1}% of {} raw",
            out.len() / variants.len(),
            100.0 * out.len() as f64 / raw as f64,
            raw / variants.len()
        );
        group.bench_function(format!("message_create/level{level}"), |b| {
            let mut tx = ZlibStreamCompressor::with_level(level);
            let mut out = Vec::with_capacity(4096);
            let mut i = 0;
            b.iter(|| {
                out.clear();
                i = (i + 1) % variants.len();
                tx.compress_into(black_box(&variants[i]), &mut out)
                    .expect("compresses");
                black_box(out.len())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group(format!("{clock}/zstd_stream_compress"));
    group.throughput(Throughput::Elements(1));
    group.bench_function("message_create/level3", |b| {
        let mut tx = ZstdStreamCompressor::new().expect("zstd context");
        let mut out = Vec::with_capacity(4096);
        let mut i = 0;
        b.iter(|| {
            out.clear();
            i = (i + 1) % variants.len();
            tx.compress_into(black_box(&variants[i]), &mut out)
                .expect("compresses");
            black_box(out.len())
        })
    });
    group.finish();

    let mut group = c.benchmark_group(format!("{clock}/stream_decompress"));
    group.throughput(Throughput::Elements(1));
    group.bench_function("zlib/message_create", |b| {
        let mut tx = ZlibStreamCompressor::new();
        let mut rx = ZlibStreamDecompressor::new();
        let frames: Vec<Vec<u8>> = variants
            .iter()
            .map(|p| tx.compress(p).expect("compresses"))
            .collect();
        let mut i = 0;
        // Decompress the same connection's messages in order; rebuild the pair when they run out.
        b.iter(|| {
            if i == frames.len() {
                rx = ZlibStreamDecompressor::new();
                i = 0;
            }
            let n = rx
                .push_frame(&frames[i])
                .expect("decompresses")
                .map_or(0, <[u8]>::len);
            i += 1;
            black_box(n)
        })
    });
    group.bench_function("zstd/message_create", |b| {
        let mut tx = ZstdStreamCompressor::new().expect("zstd context");
        let frames: Vec<Vec<u8>> = variants
            .iter()
            .map(|p| tx.compress(p).expect("compresses"))
            .collect();
        let mut rx = ZstdStreamDecompressor::new().expect("zstd context");
        let mut i = 0;
        b.iter(|| {
            if i == frames.len() {
                rx = ZstdStreamDecompressor::new().expect("zstd context");
                i = 0;
            }
            let n = rx.push_frame(&frames[i]).expect("decompresses").len();
            i += 1;
            black_box(n)
        })
    });
    group.finish();
}

fn json_etf_json<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let payload = payload_bytes();
    let mut group = c.benchmark_group(format!("{clock}/json_etf_json"));
    group.throughput(Throughput::Elements(1));
    group.bench_function("message_create/transcode", |b| {
        let mut term = Vec::with_capacity(4096);
        let mut text = Vec::with_capacity(4096);
        b.iter(|| {
            term.clear();
            text.clear();
            etf::json_to_etf(black_box(&payload), &mut term).expect("to ETF");
            etf::etf_to_json(&term, &DecodeOptions::CLIENT_STRICT, &mut text).expect("to JSON");
            black_box(text.len())
        })
    });
    group.bench_function("message_create/via_value", |b| {
        let mut term = Vec::with_capacity(4096);
        let mut text = Vec::with_capacity(4096);
        b.iter(|| {
            term.clear();
            text.clear();
            let value: Value = serde_json::from_slice(black_box(&payload)).expect("JSON");
            etf::encode_into(&value, &mut term).expect("to ETF");
            let back = etf::decode(&term, &DecodeOptions::CLIENT_STRICT).expect("from ETF");
            serde_json::to_writer(&mut text, &back).expect("to JSON");
            black_box(text.len())
        })
    });
    group.bench_function("message_create/payload_etf_encode", |b| {
        let parsed: GatewayPayload = serde_json::from_slice(&payload).expect("payload");
        let mut term = Vec::with_capacity(4096);
        b.iter(|| {
            term.clear();
            codec::encode_payload_into(black_box(&parsed), Encoding::Etf, &mut term)
                .expect("to ETF");
            black_box(term.len())
        })
    });
    group.finish();
}

fn recorder_decoder<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let variants = payload_variants();
    let mut group = c.benchmark_group(format!("{clock}/decoder"));
    group.throughput(Throughput::Elements(1));
    group.bench_function("zlib_stream/message_create", |b| {
        let mut tx = ZlibStreamCompressor::new();
        let frames: Vec<Vec<u8>> = variants
            .iter()
            .map(|p| tx.compress(p).expect("compresses"))
            .collect();
        let mut decoder =
            Decoder::from_query("v=10&encoding=json&compress=zlib-stream").expect("query");
        let mut i = 0;
        b.iter(|| {
            if i == frames.len() {
                decoder =
                    Decoder::from_query("v=10&encoding=json&compress=zlib-stream").expect("query");
                i = 0;
            }
            let events = decoder.feed(
                Direction::ServerToClient,
                i as u64,
                Frame::Binary(&frames[i]),
            );
            i += 1;
            black_box(events.len())
        })
    });
    group.finish();
}

fn config<M: Measurement>(c: Criterion<M>) -> Criterion<M> {
    c.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

fn wall() {
    let mut c = config(Criterion::default().with_measurement(WallTime));
    compression(&mut c, "wall");
    json_etf_json(&mut c, "wall");
    recorder_decoder(&mut c, "wall");
}

fn cpu() {
    let mut c = config(Criterion::default().with_measurement(ThreadCpuTime));
    compression(&mut c, "cpu");
    json_etf_json(&mut c, "cpu");
    recorder_decoder(&mut c, "cpu");
}

criterion_main!(wall, cpu);
