//! Stickers and soundboard sounds against the built binary: CRUD, multipart uploads,
//! permissions, Discord's error codes, audit entries, schema conformance, and twilight-http.
mod serve_routes_support;
mod serve_support;

use serde_json::{json, Value};
use serve_routes_support::*;
use serve_support::*;

/// A 1x1 PNG.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\x04\0\x09\xfb\x03\xfd\xe3U\xf2\x9c\0\0\0\0IEND\xaeB`\x82";

/// POSTs a multipart form (text fields, then an optional `file` part) and parses the answer.
fn post_form(
    server: &Server,
    path: &str,
    token: &str,
    fields: &[(&str, &str)],
    file: Option<&[u8]>,
) -> Reply {
    let boundary = "----discordmitmtestboundary";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    if let Some(file) = file {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.png\"\r\nContent-Type: image/png\r\n\r\n")
                .as_bytes(),
        );
        body.extend(file);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    let response = reqwest::blocking::Client::new()
        .post(format!("{}{}", server.base(), path))
        .header("authorization", token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let raw = response.text().expect("body");
    let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
        raw,
    }
}

/// Audit log entries of one action type.
fn audit(api: &Api, action_type: u16) -> Vec<Value> {
    let log = expect(
        &api.get(
            &format!("/guilds/{GUILD}/audit-logs?action_type={action_type}"),
            ALICE,
        ),
        200,
    )
    .clone();
    log["audit_log_entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn guild_sticker_lifecycle() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    let list = format!("/guilds/{GUILD}/stickers");

    // Bad bodies: JSON instead of a form, then a form missing its file; a file that is no image.
    let json_body = api.post(&list, BOB, json!({"name": "x"}));
    expect_error(&json_body, 400, 50035);
    assert!(json_body.body["errors"]["file"].is_object());
    let short = post_form(&server, &list, BOB, &[("name", "a"), ("tags", "x")], None);
    expect_error(&short, 400, 50035);
    assert!(short.body["errors"]["name"].is_object());
    assert!(short.body["errors"]["file"].is_object());
    let fields = [
        ("name", "party"),
        ("tags", "tada"),
        ("description", "a party"),
    ];
    expect_error(
        &post_form(&server, &list, BOB, &fields, Some(b"not an image")),
        400,
        50046,
    );
    // Not a member: 50001.
    expect_error(
        &post_form(&server, &list, CAROL, &fields, Some(PNG)),
        403,
        50001,
    );

    // Bob (plain member; @everyone has CREATE_GUILD_EXPRESSIONS) uploads one.
    let reply = post_form(&server, &list, BOB, &fields, Some(PNG));
    let sticker = expect_documented(&spec, &reply, 201, "POST", "/guilds/{guild_id}/stickers");
    assert_eq!(sticker["format_type"], 1);
    assert_eq!(sticker["type"], 2);
    assert_eq!(sticker["user"]["id"], BOB_ID);
    let id = sticker["id"].as_str().unwrap().to_string();
    let one = format!("/guilds/{GUILD}/stickers/{id}");

    let listed = expect_documented(
        &spec,
        &api.get(&list, DAVE),
        200,
        "GET",
        "/guilds/{guild_id}/stickers",
    );
    assert_eq!(listed.as_array().unwrap().len(), 1);
    expect_documented(
        &spec,
        &api.get(&one, ALICE),
        200,
        "GET",
        "/guilds/{guild_id}/stickers/{sticker_id}",
    );
    let global = expect_documented(
        &spec,
        &api.get(&format!("/stickers/{id}"), CAROL),
        200,
        "GET",
        "/stickers/{sticker_id}",
    );
    assert_eq!(global["guild_id"], GUILD);

    // Dave may not edit or delete bob's sticker; bob and admins may.
    expect_error(&api.patch(&one, DAVE, json!({"name": "mine"})), 403, 50013);
    expect_error(&api.delete(&one, DAVE), 403, 50013);
    let bad = api.patch(&one, BOB, json!({"name": "x", "tags": ""}));
    expect_error(&bad, 400, 50035);
    assert!(bad.body["errors"]["name"].is_object() && bad.body["errors"]["tags"].is_object());
    let edited = expect(
        &api.send(
            "PATCH",
            &one,
            Some(BOB),
            Some(&json!({"name": "fiesta", "description": null})),
            &[("X-Audit-Log-Reason", "rename%20it")],
        ),
        200,
    )
    .clone();
    conforms(
        &spec,
        "PATCH",
        "/guilds/{guild_id}/stickers/{sticker_id}",
        200,
        &edited,
    );
    assert_eq!(edited["name"], "fiesta");
    assert_eq!(edited["description"], Value::Null);
    let updates = audit(&api, 91);
    assert_eq!(updates[0]["reason"], "rename it");
    assert_eq!(updates[0]["user_id"], BOB_ID);
    assert_eq!(audit(&api, 90).len(), 1);

    // Five slots without boosts.
    for n in 0..4 {
        let name = format!("extra{n}");
        expect(
            &post_form(
                &server,
                &list,
                ALICE,
                &[("name", &name), ("tags", "x")],
                Some(PNG),
            ),
            201,
        );
    }
    expect_error(
        &post_form(
            &server,
            &list,
            ALICE,
            &[("name", "sixth"), ("tags", "x")],
            Some(PNG),
        ),
        400,
        30039,
    );

    expect(&api.delete(&one, ALICE), 204);
    assert_eq!(audit(&api, 92).len(), 1);
    expect_error(&api.get(&one, ALICE), 404, 10060);
    expect_error(&api.get(&format!("/stickers/{id}"), ALICE), 404, 10060);
    expect_error(&api.delete(&one, ALICE), 404, 10060);
    expect_error(&api.get("/stickers/notanid", ALICE), 400, 50035);

    // The standard packs.
    let packs = expect_documented(
        &spec,
        &api.get("/sticker-packs", BOB),
        200,
        "GET",
        "/sticker-packs",
    );
    let pack = &packs["sticker_packs"][0];
    let pack_id = pack["id"].as_str().unwrap();
    expect_documented(
        &spec,
        &api.get(&format!("/sticker-packs/{pack_id}"), BOB),
        200,
        "GET",
        "/sticker-packs/{pack_id}",
    );
    let standard_id = pack["stickers"][0]["id"].as_str().unwrap();
    let standard = expect_documented(
        &spec,
        &api.get(&format!("/stickers/{standard_id}"), BOB),
        200,
        "GET",
        "/stickers/{sticker_id}",
    );
    assert_eq!(standard["type"], 1);
    expect_error(&api.get("/sticker-packs/1", BOB), 404, 10061);
}

#[test]
fn soundboard_lifecycle() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    let list = format!("/guilds/{GUILD}/soundboard-sounds");
    let ogg = "data:audio/ogg;base64,T2dnUwACAAAAAAAAAAA=";

    let defaults = expect_documented(
        &spec,
        &api.get("/soundboard-default-sounds", BOB),
        200,
        "GET",
        "/soundboard-default-sounds",
    );
    assert_eq!(defaults[0]["name"], "quack");

    let bad = api.post(&list, BOB, json!({"name": "x", "volume": 2.0}));
    expect_error(&bad, 400, 50035);
    for field in ["name", "sound", "volume"] {
        assert!(
            bad.body["errors"][field].is_object(),
            "{field}: {}",
            bad.raw
        );
    }
    let not_audio = api.post(
        &list,
        BOB,
        json!({"name": "img", "sound": "data:image/png;base64,AAAA"}),
    );
    expect_error(&not_audio, 400, 50035);
    assert!(not_audio.body["errors"]["sound"].is_object());
    expect_error(
        &api.post(&list, CAROL, json!({"name": "hey", "sound": ogg})),
        403,
        50001,
    );
    expect_error(
        &api.post(
            &list,
            BOB,
            json!({"name": "hey", "sound": ogg, "emoji_id": "123456789012345678"}),
        ),
        404,
        10014,
    );

    let sound = expect(
        &api.post(
            &list,
            BOB,
            json!({"name": "hey", "sound": ogg, "emoji_name": "👋", "volume": 0.5}),
        ),
        201,
    )
    .clone();
    conforms(
        &spec,
        "POST",
        "/guilds/{guild_id}/soundboard-sounds",
        201,
        &sound,
    );
    assert_eq!(sound["volume"], 0.5);
    assert_eq!(sound["user"]["id"], BOB_ID);
    let id = sound["sound_id"].as_str().unwrap().to_string();
    let one = format!("/guilds/{GUILD}/soundboard-sounds/{id}");

    let listed = expect_documented(
        &spec,
        &api.get(&list, DAVE),
        200,
        "GET",
        "/guilds/{guild_id}/soundboard-sounds",
    );
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    expect_documented(
        &spec,
        &api.get(&one, DAVE),
        200,
        "GET",
        "/guilds/{guild_id}/soundboard-sounds/{sound_id}",
    );
    expect_error(&api.get(&one, CAROL), 403, 50001);

    expect_error(
        &api.patch(&one, DAVE, json!({"name": "dave's"})),
        403,
        50013,
    );
    let edited = expect(
        &api.patch(&one, BOB, json!({"name": "hello", "volume": null})),
        200,
    )
    .clone();
    conforms(
        &spec,
        "PATCH",
        "/guilds/{guild_id}/soundboard-sounds/{sound_id}",
        200,
        &edited,
    );
    assert_eq!(edited["name"], "hello");
    assert_eq!(edited["volume"], 1.0);
    assert_eq!(edited["emoji_name"], "👋");

    let log = expect(
        &api.get(
            &format!("/guilds/{GUILD}/audit-logs?action_type=131"),
            ALICE,
        ),
        200,
    )
    .clone();
    assert_eq!(log["audit_log_entries"][0]["target_id"], id.as_str());

    expect_error(&api.delete(&one, DAVE), 403, 50013);
    expect(&api.delete(&one, ALICE), 204);
    expect_error(&api.get(&one, BOB), 404, 10097);
    expect_error(&api.patch(&one, BOB, json!({"name": "gone"})), 404, 10097);
}

#[test]
fn expressions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data, Some(FIXTURE), &["--rate-limit", "off"]).unwrap();
    let created = post_form(
        &server,
        &format!("/guilds/{GUILD}/stickers"),
        ALICE,
        &[("name", "keep"), ("tags", "k")],
        Some(PNG),
    );
    let id = expect(&created, 201)["id"].as_str().unwrap().to_string();
    server.stop();
    let server = Server::start_in(&data, None, &["--rate-limit", "off"]).unwrap();
    let fetched = expect(&server.api().get(&format!("/stickers/{id}"), BOB), 200).clone();
    assert_eq!(fetched["name"], "keep");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilight_parses_sticker_answers() {
    use twilight_model::id::Id;
    let server = Server::on_fixture_async().await;
    let http = server.twilight(BOT);
    let guild_id = Id::new(GUILD.parse().unwrap());
    let sticker = http
        .create_guild_sticker(guild_id, "wave", "waving", "wave", PNG)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(sticker.name, "wave");
    assert_eq!(sticker.guild_id, Some(guild_id));
    let listed = http
        .guild_stickers(guild_id)
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let one = http
        .guild_sticker(guild_id, sticker.id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(one.id, sticker.id);
    let global = http
        .sticker(sticker.id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(global.id, sticker.id);
    let updated = http
        .update_guild_sticker(guild_id, sticker.id)
        .name("hello")
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(updated.name, "hello");
    let packs = http
        .nitro_sticker_packs()
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(!packs.sticker_packs[0].stickers.is_empty());
    http.delete_guild_sticker(guild_id, sticker.id)
        .await
        .unwrap();
    let missing = http.sticker(sticker.id).await.unwrap_err();
    assert!(
        matches!(missing.kind(), twilight_http::error::ErrorType::Response { status, .. } if status.get() == 404)
    );
}
