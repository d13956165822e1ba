//! One gateway session through a running `record` for the explorer tests: HELLO, an IDENTIFY
//! whose token must never be shown, optionally a heartbeat (for the round-trip figure) and a
//! presence update carrying a planted string (for search), then a close.
//! Test crates include it with `#[path = "common/explore_gateway.rs"] mod explore_gateway;`
//! beside `mod record_support;`.
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::record_support::{runtime, websocket_through_proxy, Recorder};

/// The IDENTIFY token the session sends (redacted before storage).
pub const IDENTIFY_TOKEN: &str = "secret-token";

/// Runs the session; `heartbeat` sends op 1 and waits briefly for its ACK, `planted` goes into
/// the name of an activity in an op 3 presence update.
pub fn gateway_session(recorder: &Recorder, heartbeat: bool, planted: Option<&str>) {
    runtime().block_on(async {
        let url = "wss://gateway.discord.gg/?v=10&encoding=json";
        let mut ws =
            websocket_through_proxy(recorder.addr, &recorder.ca_pem, "gateway.discord.gg", url)
                .await;
        ws.next().await.unwrap().unwrap();
        ws.send(Message::text(
            json!({"op": 2, "d": {"token": IDENTIFY_TOKEN}}).to_string(),
        ))
        .await
        .unwrap();
        ws.next().await.unwrap().unwrap();
        if heartbeat {
            ws.send(Message::text(json!({"op": 1, "d": 1}).to_string()))
                .await
                .unwrap();
            let _ = tokio::time::timeout(Duration::from_millis(500), ws.next()).await;
        }
        if let Some(planted) = planted {
            let presence = json!({"op": 3, "d": {"since": null, "afk": false, "status": "online",
                "activities": [{"name": planted, "type": 0}]}});
            ws.send(Message::text(presence.to_string())).await.unwrap();
        }
        let _ = ws.close(None).await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(2), ws.next()).await {}
    });
}
