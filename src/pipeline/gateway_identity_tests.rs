use std::sync::Arc;

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::*;
use crate::gateway::compress::{
    PayloadCompressor, TransportCompression, ZlibStreamCompressor, ZlibStreamDecompressor,
    ZstdStreamCompressor, ZstdStreamDecompressor,
};
use crate::pipeline::identity::{
    CallerLookup, Identity, IdentityConfig, LocalCaller, UpstreamToken, REQUEST_ID, RESPONSE_ID,
};

const LOCAL: &str = "100000000000000001";
const REAL: &str = "80351110224678912";
const OTHER: &str = "80351110224678913";

fn identity() -> Arc<Identity> {
    let lookup: CallerLookup = Arc::new(|auth: &str| {
        (auth == "alice-token").then(|| LocalCaller {
            id: LOCAL.into(),
            bot: false,
        })
    });
    Arc::new(Identity::new(
        lookup,
        IdentityConfig {
            upstream_token: Some(UpstreamToken::new("real-user-token").unwrap()),
            per_user: Default::default(),
        },
    ))
}

fn identify() -> Value {
    json!({"op": 2, "d": {"token": "alice-token", "intents": 513,
        "properties": {"os": "linux", "browser": "test", "device": "test"}}})
}

fn ready() -> Value {
    json!({"op": 0, "t": "READY", "s": 1, "d": {"v": 10, "session_id": "abc",
        "user": {"id": REAL, "username": "nelly"}, "guilds": [{"id": OTHER, "unavailable": true}]}})
}

fn message_create() -> Value {
    json!({"op": 0, "t": "MESSAGE_CREATE", "s": 2, "d": {"id": "1300000000000000003",
        "author": {"id": REAL}, "mentions": [{"id": OTHER}], "content": format!("<@{REAL}> hi")}})
}

/// Identifies as alice through `rules` (JSON text); the rewrite it listed.
fn identify_json(rules: &RelayedIdentity) -> Rewrite {
    let (sent, rewrite) = rules.client_message(Message::text(identify().to_string()));
    let Some(Message::Text(sent)) = sent else {
        panic!("IDENTIFY stays a text message")
    };
    let sent: Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(sent["d"]["token"], "real-user-token");
    rewrite.expect("the credential rewrite is listed")
}

#[test]
fn zlib_stream_answers_are_decoded_swapped_and_compressed_again_in_one_context() {
    let rules = RelayedIdentity::new(identity(), false, TransportCompression::ZlibStream).unwrap();
    let mut upstream = ZlibStreamCompressor::new();
    let mut client = ZlibStreamDecompressor::new();
    let receive = |rules: &RelayedIdentity, frame: Vec<u8>| -> Relayed {
        rules.server_message(Message::binary(frame)).unwrap()
    };
    let hello = upstream
        .compress(br#"{"op":10,"d":{"heartbeat_interval":41250}}"#)
        .unwrap();
    let (out, rewrite) = receive(&rules, hello);
    assert!(rewrite.is_none());
    let Some(Message::Binary(out)) = out else {
        panic!("a binary frame")
    };
    let hello: Value = serde_json::from_slice(client.push_frame(&out).unwrap().unwrap()).unwrap();
    assert_eq!(hello["op"], 10);

    assert_eq!(identify_json(&rules).to, identity::UPSTREAM_CREDENTIAL);
    // READY arrives in two WebSocket messages: nothing goes on until it is whole.
    let ready = upstream.compress(ready().to_string().as_bytes()).unwrap();
    let (first, rest) = ready.split_at(ready.len() / 2);
    assert_eq!(receive(&rules, first.to_vec()).0, None);
    let (out, rewrite) = receive(&rules, rest.to_vec());
    assert_eq!(
        rewrite.unwrap(),
        identity::rewrite(RESPONSE_ID, REAL, LOCAL),
        "listed once, the first time"
    );
    let Some(Message::Binary(out)) = out else {
        panic!("a binary frame")
    };
    let seen: Value = serde_json::from_slice(client.push_frame(&out).unwrap().unwrap()).unwrap();
    assert_eq!(seen["d"]["user"]["id"], LOCAL);
    assert_eq!(seen["d"]["guilds"][0]["id"], OTHER, "other ids stay");

    let create = upstream
        .compress(message_create().to_string().as_bytes())
        .unwrap();
    let (out, rewrite) = receive(&rules, create);
    assert!(rewrite.is_none(), "already listed");
    let Some(Message::Binary(out)) = out else {
        panic!("a binary frame")
    };
    let seen: Value = serde_json::from_slice(client.push_frame(&out).unwrap().unwrap()).unwrap();
    assert_eq!(seen["d"]["author"]["id"], LOCAL);
    assert_eq!(seen["d"]["mentions"][0]["id"], OTHER);
    assert_eq!(
        seen["d"]["content"],
        format!("<@{REAL}> hi"),
        "only whole ids"
    );

    // A broken upstream stream ends the session with a clear error.
    let err = rules
        .server_message(Message::binary(vec![
            0xde, 0xad, 0xbe, 0xef, 0, 0, 0xff, 0xff,
        ]))
        .unwrap_err();
    assert!(err.to_string().contains("upstream"), "{err}");
}

#[test]
fn zstd_stream_answers_are_swapped_and_the_real_id_is_learned_for_rest_too() {
    let identity = identity();
    let rules =
        RelayedIdentity::new(identity.clone(), false, TransportCompression::ZstdStream).unwrap();
    let mut upstream = ZstdStreamCompressor::new().unwrap();
    let mut client = ZstdStreamDecompressor::new().unwrap();
    identify_json(&rules);
    assert_eq!(identity.known_real_id("real-user-token"), None);
    for (payload, path, want) in [
        (ready(), "/d/user/id", LOCAL),
        (message_create(), "/d/author/id", LOCAL),
    ] {
        let frame = upstream.compress(payload.to_string().as_bytes()).unwrap();
        let (out, _) = rules.server_message(Message::binary(frame)).unwrap();
        let Some(Message::Binary(out)) = out else {
            panic!("a binary frame")
        };
        let seen: Value = serde_json::from_slice(client.push_frame(&out).unwrap()).unwrap();
        assert_eq!(seen.pointer(path).unwrap(), want, "{seen}");
    }
    assert_eq!(
        identity.known_real_id("real-user-token"),
        Some(Some(REAL.to_string())),
        "REST forwarding knows the real id from READY"
    );

    // What the client sends after identifying names the real account upstream.
    let request = json!({"op": 8, "d": {"guild_id": OTHER, "user_ids": [LOCAL]}});
    let (sent, rewrite) = rules.client_message(Message::text(request.to_string()));
    let Some(Message::Text(sent)) = sent else {
        panic!("text")
    };
    let sent: Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(sent["d"]["user_ids"][0], REAL);
    assert_eq!(rewrite.unwrap(), identity::rewrite(REQUEST_ID, LOCAL, REAL));
}

#[test]
fn etf_answers_swap_string_and_integer_ids_keeping_their_type() {
    let identity = identity();
    // Known from an earlier `/users/@me`: a RESUMEd session has no READY to learn it from.
    identity.remember_real_id("real-user-token", Some(REAL.to_string()));
    let rules = RelayedIdentity::new(identity, true, TransportCompression::None).unwrap();
    let resume = json!({"op": 6, "d": {"token": "alice-token", "session_id": "abc", "seq": 4}});
    let (sent, rewrite) = rules.client_message(Message::binary(etf::encode(&resume).unwrap()));
    let Some(Message::Binary(sent)) = sent else {
        panic!("ETF stays binary")
    };
    let sent = etf::decode(&sent, &etf::DecodeOptions::LENIENT).unwrap();
    assert_eq!(sent["d"]["token"], "real-user-token");
    assert_eq!(rewrite.unwrap().from, LOCAL);
    let update = json!({"op": 0, "t": "PRESENCE_UPDATE", "s": 5, "d": {
        "user": {"id": REAL.parse::<u64>().unwrap()}, "owner": REAL, "n": 7}});
    let (out, rewrite) = rules
        .server_message(Message::binary(etf::encode(&update).unwrap()))
        .unwrap();
    assert!(rewrite.is_some());
    let Some(Message::Binary(out)) = out else {
        panic!("binary")
    };
    let seen = etf::decode(&out, &etf::DecodeOptions::LENIENT).unwrap();
    assert_eq!(seen["d"]["user"]["id"], LOCAL.parse::<u64>().unwrap());
    assert_eq!(seen["d"]["owner"], LOCAL);
    assert_eq!(seen["d"]["n"], 7);
    // A message without the id passes byte for byte.
    let heartbeat_ack = etf::encode(&json!({"op": 11})).unwrap();
    let (out, _) = rules
        .server_message(Message::binary(heartbeat_ack.clone()))
        .unwrap();
    assert_eq!(out, Some(Message::binary(heartbeat_ack)));
}

#[test]
fn plain_json_and_per_payload_zlib_answers_are_swapped() {
    let rules = RelayedIdentity::new(identity(), false, TransportCompression::None).unwrap();
    // Before IDENTIFY nothing is known: messages pass untouched.
    let early = Message::text(ready().to_string());
    assert_eq!(rules.server_message(early.clone()).unwrap().0, Some(early));
    identify_json(&rules);
    let (out, _) = rules
        .server_message(Message::text(ready().to_string()))
        .unwrap();
    let Some(Message::Text(out)) = out else {
        panic!("text stays text")
    };
    let seen: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(seen["d"]["user"]["id"], LOCAL);
    let mut zlib = Vec::new();
    PayloadCompressor::new()
        .compress_into(message_create().to_string().as_bytes(), &mut zlib)
        .unwrap();
    let (out, _) = rules.server_message(Message::binary(zlib)).unwrap();
    let Some(Message::Binary(out)) = out else {
        panic!("binary")
    };
    let json = compress::decompress_payload(&out, 1 << 20).unwrap();
    let seen: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(seen["d"]["author"]["id"], LOCAL);
    // Pings, pongs and closes pass.
    let ping = Message::Ping(Bytes::from_static(b"x"));
    assert_eq!(rules.server_message(ping.clone()).unwrap().0, Some(ping));
}

#[test]
fn a_token_serve_did_not_issue_gets_no_swap() {
    let rules = RelayedIdentity::new(identity(), false, TransportCompression::None).unwrap();
    let stranger = json!({"op": 2, "d": {"token": "someone-else"}});
    let (_, rewrite) = rules.client_message(Message::text(stranger.to_string()));
    assert_eq!(rewrite.unwrap().to, identity::UPSTREAM_CREDENTIAL);
    let (out, rewrite) = rules
        .server_message(Message::text(ready().to_string()))
        .unwrap();
    assert!(rewrite.is_none());
    let Some(Message::Text(out)) = out else {
        panic!("text")
    };
    assert!(out.contains(REAL));
}
