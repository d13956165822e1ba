//! Voice channel actions against the built binary: the channel status line and soundboard
//! sounds played into a channel, by members connected through gateway op 4, with their
//! permission checks, errors and dispatches.
mod serve_routes_gateway_support;
mod serve_support;

use serde_json::json;
use serve_routes_gateway_support::{call, next_dispatch, send, session};
use serve_support::*;

const GUILDS: u64 = 1;
const GUILD_VOICE_STATES: u64 = 1 << 7;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_soundboard_in_a_voice_channel() {
    let server = Server::on_fixture_async().await;
    let base = server.base();
    let base = base.as_str();
    let mut watcher = session(&server.addr, ALICE, GUILDS | GUILD_VOICE_STATES).await;
    let mut bob = session(&server.addr, BOB, GUILDS).await;
    let join = |mute: bool| {
        json!({"op": 4, "d": {"guild_id": GUILD, "channel_id": VOICE,
                              "self_mute": mute, "self_deaf": false}})
    };
    send(&mut bob, join(false)).await;
    next_dispatch(&mut watcher, |n| n == "VOICE_STATE_UPDATE").await;

    // Status: a connected member may set it; others need MANAGE_CHANNELS.
    let status = format!("/channels/{VOICE}/voice-status");
    let (code, _) = call(
        base,
        "PUT",
        status.clone(),
        BOB,
        json!({"status": "pairing on serve"}),
    )
    .await;
    assert_eq!(code, 204);
    let (update, _) = next_dispatch(&mut watcher, |n| n == "VOICE_CHANNEL_STATUS_UPDATE").await;
    assert_eq!(
        update,
        json!({"id": VOICE, "guild_id": GUILD, "status": "pairing on serve"})
    );
    let (_, channel) = call(
        base,
        "GET",
        format!("/channels/{VOICE}"),
        ALICE,
        json!(null),
    )
    .await;
    assert_eq!(channel["status"], "pairing on serve");
    let (code, error) = call(base, "PUT", status.clone(), DAVE, json!({"status": "x"})).await;
    assert_eq!((code, &error["code"]), (403, &json!(50013)));
    let (code, error) = call(
        base,
        "PUT",
        status.clone(),
        BOB,
        json!({"status": "x".repeat(501)}),
    )
    .await;
    assert_eq!((code, &error["code"]), (400, &json!(50035)));
    assert!(error["errors"]["status"]["_errors"].is_array());
    let (code, error) = call(
        base,
        "PUT",
        format!("/channels/{GENERAL}/voice-status"),
        ALICE,
        json!({"status": "x"}),
    )
    .await;
    assert_eq!((code, &error["code"]), (400, &json!(50024)));
    let (code, _) = call(base, "PUT", status.clone(), ALICE, json!({"status": null})).await;
    assert_eq!(code, 204);
    let (cleared, _) = next_dispatch(&mut watcher, |n| n == "VOICE_CHANNEL_STATUS_UPDATE").await;
    assert_eq!(cleared["status"], json!(null));
    let (_, channel) = call(
        base,
        "GET",
        format!("/channels/{VOICE}"),
        ALICE,
        json!(null),
    )
    .await;
    assert!(channel.get("status").is_none(), "{channel}");

    // Soundboard: a default sound, then one of the guild's own.
    let play = format!("/channels/{VOICE}/send-soundboard-sound");
    let (code, _) = call(base, "POST", play.clone(), BOB, json!({"sound_id": "1"})).await;
    assert_eq!(code, 204);
    let (effect, _) = next_dispatch(&mut watcher, |n| n == "VOICE_CHANNEL_EFFECT_SEND").await;
    assert_eq!(effect["user_id"], BOB_ID);
    assert_eq!(effect["sound_id"], "1");
    assert_eq!(effect["channel_id"], VOICE);
    assert_eq!(effect["emoji"]["name"], "🦆");
    let (code, sound) = call(
        base,
        "POST",
        format!("/guilds/{GUILD}/soundboard-sounds"),
        ALICE,
        json!({"name": "beep", "sound": "data:audio/ogg;base64,T2dnUw==", "volume": 0.5}),
    )
    .await;
    assert_eq!(code, 201, "{sound}");
    let (code, _) = call(
        base,
        "POST",
        play.clone(),
        BOB,
        json!({"sound_id": sound["sound_id"]}),
    )
    .await;
    assert_eq!(code, 204);
    let (effect, _) = next_dispatch(&mut watcher, |n| n == "VOICE_CHANNEL_EFFECT_SEND").await;
    assert_eq!(effect["sound_id"], sound["sound_id"]);
    assert_eq!(effect["sound_volume"], 0.5);

    let (code, error) = call(base, "POST", play.clone(), BOB, json!({"sound_id": "999"})).await;
    assert_eq!((code, &error["code"]), (404, &json!(10097)));
    let (code, error) = call(base, "POST", play.clone(), BOB, json!({})).await;
    assert_eq!((code, &error["code"]), (400, &json!(50035)));
    let (code, error) = call(base, "POST", play.clone(), DAVE, json!({"sound_id": "1"})).await;
    assert_eq!((code, &error["code"]), (400, &json!(40032)));
    // Muted members cannot play sounds.
    send(&mut bob, join(true)).await;
    next_dispatch(&mut watcher, |n| n == "VOICE_STATE_UPDATE").await;
    let (code, error) = call(base, "POST", play, BOB, json!({"sound_id": "1"})).await;
    assert_eq!((code, &error["code"]), (403, &json!(50013)));
}
