//! Realistic MESSAGE_CREATE payloads shared by the gateway benches.
use serde_json::Value;

/// A typical ~1 KB MESSAGE_CREATE dispatch.
pub const MESSAGE_CREATE: &str = include_str!("../../tests/vectors/gateway/message_create.json");

/// 64 different messages of the same shape: ids, author, avatar hashes, nonce, timestamp and
/// content all vary (deterministic pseudo-random), so a stream's shared window sees realistic
/// repetition (keys, structure) rather than one message repeated.
pub fn payload_variants() -> Vec<Vec<u8>> {
    const WORDS: [&str; 48] = [
        "the",
        "gateway",
        "build",
        "is",
        "up",
        "on",
        "staging",
        "can",
        "you",
        "check",
        "whether",
        "resume",
        "works",
        "after",
        "close",
        "logs",
        "are",
        "in",
        "channel",
        "thanks",
        "deploy",
        "shard",
        "heartbeat",
        "latency",
        "spiked",
        "again",
        "lol",
        "ok",
        "tomorrow",
        "meeting",
        "ship",
        "it",
        "broken",
        "fixed",
        "reverted",
        "why",
        "does",
        "this",
        "keep",
        "happening",
        "👍",
        "ça",
        "marche",
        "pas",
        "réessaie",
        "後で",
        "確認",
        "します",
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let base: Value = serde_json::from_str(MESSAGE_CREATE).expect("vector is JSON");
    (0..64u64)
        .map(|i| {
            let mut v = base.clone();
            let d = &mut v["d"];
            let snowflake = |r: u64| {
                Value::String((1_100_000_000_000_000_000 + r % 250_000_000_000_000_000).to_string())
            };
            d["id"] = snowflake(next());
            d["nonce"] = snowflake(next());
            d["channel_id"] = snowflake(next() % 8);
            d["timestamp"] = Value::String(format!(
                "2026-11-21T23:{:02}:{:02}.{:06}+00:00",
                next() % 60,
                next() % 60,
                next() % 1_000_000
            ));
            let words = 8 + next() % 30;
            let content: Vec<&str> = (0..words)
                .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
                .collect();
            d["content"] = Value::String(content.join(" "));
            let author = &mut d["author"];
            author["id"] = snowflake(next());
            author["username"] = Value::String(format!("user{}", next() % 100_000));
            author["global_name"] = Value::String(format!("User {}", next() % 1000));
            author["avatar"] = Value::String(format!("{:016x}{:016x}", next(), next()));
            author["public_flags"] = Value::from(next() % 2 * 64);
            d["mentions"][0]["avatar"] = Value::String(format!("{:016x}{:016x}", next(), next()));
            d["member"]["joined_at"] = Value::String(format!(
                "202{}-0{}-1{}T18:21:44.019000+00:00",
                next() % 6,
                1 + next() % 9,
                next() % 10
            ));
            v["s"] = Value::from(42 + i);
            serde_json::to_vec(&v).expect("serializes")
        })
        .collect()
}
