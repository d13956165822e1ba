//! Leaf issuance: a cache hit (what every intercepted connection after the first pays) and a fresh
//! issue (one ECDSA signature with the per-process leaf key).
use criterion::{criterion_group, criterion_main, Criterion};
use discord_mitm::ca::{LeafAuthority, RootCa};

fn leaf_issuance(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    RootCa::init(dir.path(), false).expect("ca init");
    let authority = LeafAuthority::from_ca_dir(dir.path()).expect("load CA");
    authority.certified_key("discord.com").expect("first issue");

    c.bench_function("leaf: cached certified_key(discord.com)", |b| {
        b.iter(|| {
            authority
                .certified_key(std::hint::black_box("discord.com"))
                .expect("cached")
        })
    });
    c.bench_function("leaf: cached server_config_for(discord.com:443)", |b| {
        b.iter(|| {
            authority
                .server_config_for(std::hint::black_box("discord.com:443"))
                .expect("cached")
        })
    });
    c.bench_function("leaf: fresh issue_der (sign only)", |b| {
        b.iter(|| {
            authority
                .issue_der(std::hint::black_box("cdn.discordapp.com"))
                .expect("issue")
        })
    });
    let mut n = 0u64;
    c.bench_function("leaf: cache miss (new host: sign + rustls config)", |b| {
        b.iter(|| {
            n += 1;
            authority
                .certified_key(&format!("h{n}.discord.com"))
                .expect("issue")
        })
    });
}

criterion_group!(benches, leaf_issuance);
criterion_main!(benches);
