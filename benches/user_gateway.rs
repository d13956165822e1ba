//! The official client's gateway work in `serve`, measured in-process on worlds loaded through
//! the fixture loader into a temporary store:
//! - user READY (+ READY_SUPPLEMENTAL) for a user in 100 guilds × 50 channels × 1,000 members
//!   with capabilities 16381 (target ≤ 20 ms), and its bytes against bot READY + GUILD_CREATEs
//!   of the same data (target ≤ 2×; printed before the timings); warm (guilds rendered by an
//!   earlier READY, the usual case) and cold (every guild rendered again);
//! - member-list SYNC of `[0, 99]` in a 100,000-member guild (target ≤ 5 ms);
//! - one presence change in that guild delivered to 1,000 subscribed sessions (target
//!   ≥ 100,000 deliveries/s: one iteration is 1,000 deliveries).
//!
//! Environment: UG_BENCH_GUILDS (100), UG_BENCH_CHANNELS (50), UG_BENCH_MEMBERS (1000),
//! UG_BENCH_LIST_MEMBERS (100000), UG_BENCH_SESSIONS (1000). Without `--bench` (`cargo test`)
//! the defaults are 5, 10, 100, 2,000 and 50.
use std::time::Duration;

// The allocator `discord-mitm` ships with (src/main.rs), so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use discord_mitm::backend::user_gateway_bench::{ListWorld, ReadyWorld};
#[path = "support/mode.rs"]
mod mode;

/// `name` from the environment, else `full` when measuring and `smoke` under `cargo test`.
fn env_usize(name: &str, full: usize, smoke: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| mode::sized(full, smoke))
}

fn user_ready(c: &mut Criterion) {
    let (guilds, channels, members) = (
        env_usize("UG_BENCH_GUILDS", 100, 5),
        env_usize("UG_BENCH_CHANNELS", 50, 10),
        env_usize("UG_BENCH_MEMBERS", 1000, 100),
    );
    mode::announce();
    let world = ReadyWorld::new(guilds, channels, members).expect("ready world");
    let user = world.user_ready_bytes(16381).expect("user READY");
    let bot = world.bot_bytes().expect("bot READY");
    println!(
        "user READY+SUPPLEMENTAL {user} bytes; bot READY+GUILD_CREATEs {bot} bytes; ratio {:.3}",
        user as f64 / bot as f64
    );
    let mut group = c.benchmark_group("user_ready");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function(
        format!("{guilds}_guilds_x_{channels}_channels_x_{members}_members_16381"),
        |b| b.iter(|| world.user_ready_bytes(16381).expect("user READY")),
    );
    // Every guild rendered again: the first READY after a start, or after every guild changed.
    group.bench_function(
        format!("{guilds}_guilds_x_{channels}_channels_x_{members}_members_16381_cold"),
        |b| {
            b.iter(|| {
                world.forget_rendered();
                world.user_ready_bytes(16381).expect("user READY")
            })
        },
    );
    group.finish();
}

fn member_list(c: &mut Criterion) {
    let members = env_usize("UG_BENCH_LIST_MEMBERS", 100_000, 2_000);
    let sessions = env_usize("UG_BENCH_SESSIONS", 1000, 50);
    let mut world = ListWorld::new(members, sessions).expect("list world");
    assert_eq!(
        world.presence_change(),
        sessions,
        "every session gets the update"
    );
    let mut group = c.benchmark_group("member_list");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function(format!("sync_0_99_of_{members}"), |b| {
        b.iter(|| world.sync_first_page().expect("sync"))
    });
    group.throughput(Throughput::Elements(sessions as u64));
    group.bench_function(format!("presence_update_to_{sessions}_sessions"), |b| {
        b.iter(|| world.presence_change())
    });
    group.finish();
}

criterion_group!(benches, user_ready, member_list);
criterion_main!(benches);
