//! A recorded JSON exchange with discord.com, for the tests and benches that fill a store.
#![allow(dead_code)]

use discord_mitm::store::{BodyRecord, Exchange, Header, ResponseRecord};

/// Upstream's 200 with the JSON `body` to `method path_and_query`, recorded at `started_at_us`.
pub fn json_exchange(
    method: &str,
    path_and_query: String,
    started_at_us: i64,
    body: Vec<u8>,
) -> Exchange {
    Exchange {
        id: 0,
        started_at_us,
        wait_us: Some(900),
        duration_us: 1100,
        client_addr: "127.0.0.1:50000".into(),
        upstream_addr: None,
        source: "upstream".into(),
        method: method.into(),
        scheme: "https".into(),
        host: "discord.com".into(),
        path_and_query,
        http_version: "HTTP/1.1".into(),
        request_headers: vec![Header {
            name: "x-discord-locale".into(),
            value: b"en-US".to_vec(),
        }],
        request_body: BodyRecord::default(),
        response: Some(ResponseRecord {
            status: 200,
            headers: vec![Header {
                name: "content-type".into(),
                value: b"application/json".to_vec(),
            }],
            body: BodyRecord {
                wire_size: body.len() as u64,
                data: body,
                ..BodyRecord::default()
            },
        }),
        error: None,
        redactions: Vec::new(),
        rewrites: Vec::new(),
    }
}
