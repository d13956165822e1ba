//! Gateway sessions and async REST calls for `serve_routes_*` tests that watch dispatches.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// A JSON, uncompressed gateway connection.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A gateway session on `addr` identified with `token` and `intents`, READY received.
pub async fn session(addr: &str, token: &str, intents: u64) -> Socket {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/?v=10&encoding=json"))
        .await
        .expect("gateway connects");
    send(
        &mut ws,
        json!({"op": 2, "d": {"token": token, "intents": intents,
            "properties": {"os": "linux", "browser": "test", "device": "test"}}}),
    )
    .await;
    next_dispatch(&mut ws, |name| name == "READY").await;
    ws
}

/// Sends one gateway payload.
pub async fn send(ws: &mut Socket, payload: Value) {
    ws.send(Message::text(payload.to_string()))
        .await
        .expect("payload sent");
}

/// The next dispatch whose name `wanted` accepts (its `d`), and the names skipped on the way.
pub async fn next_dispatch(ws: &mut Socket, wanted: impl Fn(&str) -> bool) -> (Value, Vec<String>) {
    let mut skipped = Vec::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a gateway frame within 10 s")
            .expect("the connection stays open")
            .expect("a readable frame");
        let Message::Text(text) = frame else { continue };
        let payload: Value = serde_json::from_str(text.as_str()).expect("JSON payload");
        let Some(name) = payload["t"].as_str() else {
            continue;
        };
        if wanted(name) {
            return (payload["d"].clone(), skipped);
        }
        skipped.push(name.to_string());
    }
}

/// One REST call with an async client: (status, JSON body or null).
pub async fn call(
    base: &str,
    method: &str,
    path: String,
    token: &str,
    body: Value,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            format!("{base}{path}"),
        )
        .header("authorization", token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// REST calls against one server, with the status (and error code) each must answer.
pub struct Rest {
    /// The API base, e.g. `http://127.0.0.1:PORT/api/v10`.
    pub base: String,
}

impl Rest {
    /// A call: its status and body.
    pub async fn ask(&self, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
        call(&self.base, method, path.to_string(), token, body).await
    }

    /// A call that must answer `status`; its body.
    pub async fn expect(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Value,
        status: u16,
    ) -> Value {
        let (got, answer) = self.ask(method, path, token, body).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        answer
    }

    /// A call that must fail with `status` and Discord's `code`.
    pub async fn refuse(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Value,
        status: u16,
        code: u32,
    ) {
        let (got, answer) = self.ask(method, path, token, body).await;
        let expected = (status, json!(code));
        assert_eq!(
            (got, answer["code"].clone()),
            expected,
            "{method} {path}: {answer}"
        );
    }
}
