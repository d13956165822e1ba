//! Every client encoding and transport compression through the proxy decodes to the same
//! events (json/etf × none/zlib-stream/zstd-stream), each connection with its own context.
mod gwproxy_support;
#[path = "serve_gateway_support/mod.rs"]
mod serve_gateway_support;

use std::time::Duration;

use discord_mitm::gateway::codec::{encode_payload, Encoding};
use discord_mitm::gateway::decoder::{Decoder, DecoderEvent, Direction, Frame};
use discord_mitm::gateway::{GatewayPayload, OpCode};
use futures_util::{SinkExt, StreamExt};
use gwproxy_support::{config, free_port, Proxy};
use serde_json::{json, Value};
use serve_gateway_support::{fixture, rest, Server, ALICE_TOKEN, BOT_TOKEN, GENERAL_ID};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Client {
    ws: Ws,
    decoder: Decoder,
    encoding: Encoding,
}

impl Client {
    async fn connect(base: &str, encoding: &str, compress: &str) -> Client {
        let query = format!("v=10&encoding={encoding}{compress}");
        let (ws, _) = tokio_tungstenite::connect_async(format!("{base}/?{query}"))
            .await
            .expect("connect");
        Client {
            ws,
            decoder: Decoder::from_query(&query).expect("query"),
            encoding: Encoding::from_query_value(encoding).expect("encoding"),
        }
    }

    async fn send(&mut self, payload: GatewayPayload) {
        let bytes = encode_payload(&payload, self.encoding).expect("encode");
        let message = match self.encoding {
            Encoding::Json => Message::text(String::from_utf8(bytes).unwrap()),
            Encoding::Etf => Message::binary(bytes),
        };
        self.ws.send(message).await.expect("send");
    }

    /// Dispatches (t, s, d) until `last` arrives.
    async fn dispatches_until(&mut self, last: &str) -> Vec<(String, u64, Value)> {
        let mut seen = Vec::new();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a frame within 10 s")
                .expect("open")
                .expect("frame");
            let events = match &message {
                Message::Text(text) => {
                    self.decoder
                        .feed(Direction::ServerToClient, 0, Frame::Text(text.as_bytes()))
                }
                Message::Binary(bytes) => {
                    self.decoder
                        .feed(Direction::ServerToClient, 0, Frame::Binary(bytes))
                }
                other => panic!("unexpected {other:?}"),
            };
            for event in events {
                let DecoderEvent::Payload(decoded) = event else {
                    panic!("undecodable frame: {event:?}");
                };
                let payload = decoded.payload;
                if payload.op != OpCode::Dispatch {
                    continue;
                }
                let t = payload.t.clone().unwrap();
                seen.push((t.clone(), payload.s.unwrap(), payload.d));
                if t == last {
                    return seen;
                }
            }
        }
    }
}

/// The comparable part of an event (ids and content; ETF carries the same JSON values).
fn essence((t, s, d): &(String, u64, Value)) -> Value {
    match t.as_str() {
        "READY" => json!([t, s, d["user"]["id"], d["guilds"]]),
        "GUILD_CREATE" => json!([
            t,
            s,
            d["id"],
            d["name"],
            d["channels"].as_array().map(Vec::len)
        ]),
        "MESSAGE_CREATE" => json!([t, s, d["id"], d["content"], d["author"]["id"]]),
        _ => json!([t, s]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_etf_with_every_compression_decode_to_the_same_events() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_owned();
    let (server, proxy) = tokio::task::spawn_blocking(move || {
        let server = Server::start(&fixture(None));
        let proxy = Proxy::start_in(&dir_path, &config(port, &server.http(), BOT_TOKEN));
        (server, proxy)
    })
    .await
    .unwrap();
    let mut clients = Vec::new();
    for encoding in ["json", "etf"] {
        for compress in ["", "&compress=zlib-stream", "&compress=zstd-stream"] {
            let mut client = Client::connect(&proxy.ws(), encoding, compress).await;
            client
                .send(GatewayPayload::new(
                    OpCode::Identify,
                    json!({"token": BOT_TOKEN, "intents": 33281, "shard": [0, 1],
                           "properties": {"os": "linux", "browser": "t", "device": "t"}}),
                ))
                .await;
            let first = client.dispatches_until("GUILD_CREATE").await;
            clients.push((format!("{encoding}{compress}"), client, first));
        }
    }
    let (status, _) = rest(
        &server,
        ALICE_TOKEN,
        "POST",
        &format!("/channels/{GENERAL_ID}/messages"),
        Some(json!({"content": "to everyone"})),
    )
    .await;
    assert_eq!(status, 200);
    let mut reference: Option<Vec<Value>> = None;
    for (name, client, first) in &mut clients {
        let mut events = first.clone();
        events.extend(client.dispatches_until("MESSAGE_CREATE").await);
        let essence: Vec<Value> = events.iter().map(essence).collect();
        assert_eq!(essence.last().unwrap()[3], "to everyone", "{name}");
        match &reference {
            None => reference = Some(essence),
            Some(reference) => assert_eq!(&essence, reference, "{name} differs from json"),
        }
    }
    drop(proxy);
    drop(server);
}
