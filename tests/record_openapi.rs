//! `routes --openapi`: exchanges designed for inference, recorded through the real binary and
//! a local stand-in for discord.com; the document validates with `openapi-spec-validator`.
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use std::path::{Path, PathBuf};

use record_support::*;
use serde_json::{json, Value};
use upstream::*;

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/discord-openapi.json"
);
const MULTIPART_SECRET: &str = "MULTIPART-SECRET-9f8e7d";
const WEBHOOK_TOKEN: &str = "Xq3VbLr8TzK1mN0pQ7sW2eY9uI4oA6dF5gH3jK8lZ1xC0vB7nM2qW9eR4tY6uI1oP3aS";

fn post(recorder: &Recorder, url: &str, body: &Value) {
    let out = curl(
        recorder,
        url,
        &[
            "--data",
            &body.to_string(),
            "-H",
            "content-type: application/json",
            "-H",
            "x-discord-locale: en-US",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Several ids per route, optional fields, an enum, nested arrays, an undocumented route and a
/// webhook with its token in the path.
fn make_recording(dir: &Path) {
    let stand_in = FakeDiscord::start_echoing();
    let recorder = Recorder::start(dir, &stand_in, &[]);
    let kinds = ["default", "reply", "default", "reply", "default"];
    for (i, kind) in kinds.iter().enumerate() {
        let channel = 81384788765712380u64 + i as u64;
        let mut body = json!({
            "content": format!("message number {i}"),
            "kind": kind,
            "nonce": format!("{}", 1300000000000000000u64 + i as u64),
            "embeds": [{"title": "t", "fields": [{"name": "a", "value": "b"}]}],
        });
        if i % 2 == 0 {
            body["tts"] = json!(false);
        }
        post(
            &recorder,
            &format!("https://discord.com/api/v9/channels/{channel}/messages"),
            &body,
        );
        let out = curl(
            &recorder,
            &format!("https://discord.com/api/v9/channels/{channel}/messages?limit=50&before=1300000000000000001"),
            &[],
        );
        assert!(out.status.success());
    }
    for _ in 0..2 {
        curl(
            &recorder,
            "https://discord.com/api/v9/users/@me/secret-undocumented-route",
            &[],
        );
    }
    post(
        &recorder,
        &format!("https://discord.com/api/v9/webhooks/1200000000000000001/{WEBHOOK_TOKEN}"),
        &json!({"content": "from a webhook", "username": "hook"}),
    );
    post_multipart(&recorder, dir);
    std::thread::sleep(std::time::Duration::from_millis(200));
    recorder.stop();
}

/// Messages with attachments as the official client sends them: `payload_json` plus
/// `files[n]`, one with a secret in the JSON part and a secret form field.
fn post_multipart(recorder: &Recorder, dir: &Path) {
    let png = dir.join("cat.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\nnot really a cat").unwrap();
    let file = |n: usize| format!("files[{n}]=@{};type=image/png", png.display());
    for files in [1, 2, 1] {
        let mut payload = json!({
            "content": "with a file",
            "attachments": (0..files).map(|i| json!({"id": i, "filename": "cat.png"})).collect::<Vec<_>>(),
        });
        let mut args = Vec::new();
        if files == 2 {
            payload["token"] = json!(MULTIPART_SECRET);
            args.extend(["-F".to_string(), format!("password={MULTIPART_SECRET}")]);
        }
        args.extend([
            "-F".to_string(),
            format!("payload_json={payload};type=application/json"),
        ]);
        for n in 0..files {
            args.extend(["-F".to_string(), file(n)]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = curl(
            recorder,
            "https://discord.com/api/v9/channels/81384788765712390/messages",
            &args,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn validator() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/explore-tools/bin/openapi-spec-validator")
}

#[test]
fn openapi_of_designed_exchanges_validates_and_infers_shapes() {
    let work = workdir();
    make_recording(work.path());
    let recordings = work.path().join("recordings");
    let rec = recordings.to_str().unwrap();
    let out_file = work.path().join("openapi.json");
    let out = run_bin(&[
        "routes",
        "--recordings",
        rec,
        "--spec",
        SPEC,
        "--openapi",
        out_file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&out_file).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");

    // Templated paths with typed parameters.
    let messages = &doc["paths"]["/api/v9/channels/{channel_id}/messages"];
    let post = &messages["post"];
    // Five JSON bodies and three multipart ones.
    assert_eq!(post["x-discord-mitm"]["samples"], 8);
    // Documented, but the stand-in's echo answers carry fields Discord's spec lacks.
    assert_eq!(post["x-discord-mitm"]["documented"], "partial");
    let missing = post["x-discord-mitm"]["fields_not_in_spec"]
        .as_array()
        .unwrap();
    assert!(missing.contains(&json!("ids")) && !missing.contains(&json!("content")));
    let channel_param = post["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "channel_id")
        .unwrap();
    assert_eq!(channel_param["in"], "path");
    assert_eq!(channel_param["schema"]["format"], "snowflake");
    assert!(post["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "x-discord-locale" && p["in"] == "header"));
    let request = &post["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(
        request["required"],
        json!(["content", "embeds", "kind", "nonce"])
    );
    assert_eq!(request["properties"]["tts"]["type"], "boolean");
    assert_eq!(
        request["properties"]["kind"]["enum"],
        json!(["default", "reply"])
    );
    assert_eq!(request["properties"]["nonce"]["format"], "snowflake");
    assert_eq!(
        request["properties"]["embeds"]["items"]["properties"]["fields"]["items"]["required"],
        json!(["name", "value"])
    );
    // Multipart bodies: payload_json's merged schema, files[n] as binary parts.
    let multipart = &post["requestBody"]["content"]["multipart/form-data"];
    let form = &multipart["schema"];
    assert_eq!(form["type"], "object");
    assert_eq!(form["required"], json!(["payload_json"]));
    let payload = &form["properties"]["payload_json"];
    assert_eq!(payload["required"], json!(["attachments", "content"]));
    assert_eq!(
        payload["properties"]["attachments"]["items"]["required"],
        json!(["filename", "id"])
    );
    assert_eq!(payload["properties"]["token"]["type"], "string");
    assert_eq!(form["properties"]["password"]["type"], "string");
    let files = &form["patternProperties"]["^files\\[[0-9]+\\]$"];
    assert_eq!(files["format"], "binary");
    assert_eq!(files["contentMediaType"], "image/png");
    assert_eq!(
        multipart["encoding"]["payload_json"]["contentType"],
        "application/json"
    );
    assert_eq!(multipart["x-discord-mitm"]["samples"], 3);
    assert!(
        !text.contains(MULTIPART_SECRET),
        "a multipart secret leaked"
    );

    // Query parameters seen.
    let get = &messages["get"];
    let query: Vec<&str> = get["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(query, ["before", "limit"]);
    assert_eq!(
        get["x-discord-mitm"]["example_ids"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    // Response schema per status (the stand-in answers a gzipped list of messages).
    let response = &get["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(response["type"], "array");
    assert_eq!(response["items"]["properties"]["id"]["format"], "snowflake");
    assert_eq!(
        response["items"]["required"],
        json!(["channel_id", "content", "id"])
    );
    let echoed = &post["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(echoed["properties"]["ids"]["items"]["format"], "snowflake");
    assert_eq!(echoed["properties"]["n"]["type"], "integer");

    // The undocumented route and the webhook, its token templated away and nowhere in the file.
    let undocumented = &doc["paths"]["/api/v9/users/@me/secret-undocumented-route"]["get"];
    assert_eq!(undocumented["x-discord-mitm"]["documented"], "false");
    let webhook = &doc["paths"]["/api/v9/webhooks/{webhook_id}/{webhook_token}"]["post"];
    assert_eq!(webhook["x-discord-mitm"]["samples"], 1);
    assert!(!text.contains(WEBHOOK_TOKEN), "the webhook token leaked");
    assert!(!text.contains("redacted by discord-mitm"));

    // The recording itself holds the multipart bodies redacted, files intact.
    let store = open_store(&recordings);
    let uploads: Vec<_> = store
        .exchanges()
        .map(Result::unwrap)
        .filter(|e| e.path().ends_with("81384788765712390/messages"))
        .collect();
    assert_eq!(uploads.len(), 3);
    for upload in &uploads {
        let body = String::from_utf8_lossy(&upload.request_body.data);
        assert!(!body.contains(MULTIPART_SECRET), "{body}");
        assert!(body.contains("not really a cat"));
    }
    assert!(uploads.iter().any(|e| e
        .redactions
        .contains(&"request.body.payload_json.token".to_string())
        && e.redactions.contains(&"request.body.password".to_string())));
    drop(store);

    // The real validator accepts it.
    let check = std::process::Command::new(validator())
        .arg(&out_file)
        .output()
        .expect("openapi-spec-validator missing: run scripts/setup-test-deps");
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // --only undocumented narrows it, --filter selects exchanges, `-` writes to stdout.
    let out = run_bin(&[
        "routes",
        "--recordings",
        rec,
        "--spec",
        SPEC,
        "--openapi",
        "-",
        "--only",
        "undocumented",
    ]);
    assert!(out.status.success());
    let narrowed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&String> = narrowed["paths"].as_object().unwrap().keys().collect();
    assert!(paths
        .iter()
        .any(|p| p.ends_with("secret-undocumented-route")));
    // Fully documented operations go; partly documented ones (fields the spec lacks) stay.
    let messages = &narrowed["paths"]["/api/v9/channels/{channel_id}/messages"];
    assert!(messages.get("get").is_none() && messages.get("post").is_some());
    let out = run_bin(&[
        "routes",
        "--recordings",
        rec,
        "--openapi",
        "-",
        "--filter",
        "route~webhooks",
    ]);
    assert!(out.status.success());
    let filtered: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(filtered["paths"].as_object().unwrap().len(), 1);
}

/// The route templates `make_recording` exercises.
const KNOWN_TEMPLATES: &str = "GET /api/v9/channels/{channel_id}/messages
POST /api/v9/channels/{channel_id}/messages
GET /api/v9/users/@me/secret-undocumented-route
POST /api/v9/webhooks/{webhook_id}/{webhook_token}
";

#[test]
fn side_by_side_with_mitmproxy2swagger() {
    let work = workdir();
    make_recording(work.path());
    let known = work.path().join("known.txt");
    std::fs::write(&known, KNOWN_TEMPLATES).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/compare-mitmproxy2swagger");
    let run = |json: bool| {
        let mut cmd = std::process::Command::new(&script);
        cmd.arg(BIN).arg(work.path().join("recordings")).arg(&known);
        if json {
            cmd.arg("--json");
        }
        let out = cmd
            .output()
            .expect("mitmproxy2swagger missing: run scripts/setup-test-deps");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let rows: Vec<Value> = serde_json::from_str(&run(true)).unwrap();
    println!("{}", run(false));
    let ours = &rows[0];
    assert_eq!(ours["templates_right"], 4, "{rows:?}");
    assert_eq!(ours["templates_not_in_set"], 0, "{rows:?}");
    // Left unedited, mitmproxy2swagger's second pass emits no route at all.
    assert_eq!(rows[1]["templates_right"], 0, "{rows:?}");
    for theirs in &rows[1..] {
        assert!(ours["templates_right"].as_u64() >= theirs["templates_right"].as_u64());
        assert!(ours["response_fields"].as_u64() >= theirs["response_fields"].as_u64());
    }
}
