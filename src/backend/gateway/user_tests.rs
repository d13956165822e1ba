//! Friend presence over real WebSockets against the gateway served on loopback, with the
//! FRIEND relationship rows written straight into the store (the REST side that creates them
//! is issue #16's; this test does not depend on it).
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::{Gateway, GatewayConfig};
use crate::backend::snowflake::Snowflake;
use crate::backend::state::{AppState, Config};
use crate::backend::store::Store;
use crate::backend::user_state::{relationship_type, Relationship};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const FIXTURE: &str = r#"{"users": [
    {"id": "11", "username": "ann", "token": "ann-token"},
    {"id": "12", "username": "ben", "token": "ben-token"}],
  "guilds": [{"id": "100", "name": "ann's", "owner_id": "11",
    "channels": [{"id": "110", "name": "general", "type": 0}],
    "members": [{"user_id": "11"}]}]}"#;

fn friends(store: &Store, a: u64, b: u64) {
    for (owner, other) in [(a, b), (b, a)] {
        let row = Relationship {
            id: Snowflake(other),
            kind: relationship_type::FRIEND,
            nickname: None,
            since: "2026-01-01T00:00:00.000000+00:00".into(),
            is_spam_request: false,
            stranger_request: false,
            user_ignored: false,
        };
        store
            .account
            .relationships
            .put((Snowflake(owner), Snowflake(other)), &row)
            .unwrap();
    }
}

async fn next_dispatch(ws: &mut Socket, name: &str) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("open")
            .expect("readable");
        let Message::Text(text) = frame else { continue };
        let payload: Value = serde_json::from_str(text.as_str()).unwrap();
        if payload["t"] == name {
            return payload["d"].clone();
        }
    }
}

async fn identify(addr: std::net::SocketAddr, token: &str, status: &str) -> Socket {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/?v=9&encoding=json"))
        .await
        .unwrap();
    let d = json!({"token": token, "capabilities": 16381,
        "properties": {"os": "Linux", "browser": "Discord Client"},
        "presence": {"status": status, "since": 0, "activities": [], "afk": false}});
    ws.send(Message::text(json!({"op": 2, "d": d}).to_string()))
        .await
        .unwrap();
    ws
}

#[tokio::test]
async fn a_friends_presence_arrives_without_a_common_guild() {
    let store = Store::temporary().unwrap();
    crate::backend::world::load_fixture_bytes(&store, FIXTURE.as_bytes(), "fixture").unwrap();
    friends(&store, 11, 12);
    let state = AppState::new(store, Config::default());
    let gateway = Gateway::start(state, GatewayConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, gateway.router()).await;
    });
    let mut ben = identify(addr, "ben-token", "unknown").await;
    let ready = next_dispatch(&mut ben, "READY").await;
    assert_eq!(ready["relationships"][0]["user_id"], "11");
    assert_eq!(ready["relationships"][0]["type"], 1);
    assert!(ready["users"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["id"] == "11"));
    // Ann comes online and then sets do-not-disturb: ben sees both, with no guild id.
    let mut ann = identify(addr, "ann-token", "unknown").await;
    let supplemental = next_dispatch(&mut ann, "READY_SUPPLEMENTAL").await;
    assert_eq!(
        supplemental["merged_presences"]["friends"][0]["user_id"],
        "12"
    );
    let online = next_dispatch(&mut ben, "PRESENCE_UPDATE").await;
    assert_eq!(
        (&online["user"]["id"], &online["status"]),
        (&json!("11"), &json!("online"))
    );
    assert!(online.get("guild_id").is_none());
    assert_eq!(online["client_status"], json!({"desktop": "online"}));
    ann.send(Message::text(
        json!({"op": 3, "d": {"status": "dnd", "since": 0, "activities": [], "afk": false}})
            .to_string(),
    ))
    .await
    .unwrap();
    let dnd = next_dispatch(&mut ben, "PRESENCE_UPDATE").await;
    assert_eq!(dnd["status"], "dnd");
}
