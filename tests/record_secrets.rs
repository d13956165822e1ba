//! Secrets in URLs and forms never reach the disk or any view of it: a real `record` run through
//! the fake upstream carries a webhook token, an interaction token and a followup token in paths,
//! every secret query key (`token`, `code`, `client_secret`, `access_token`, `refresh_token`,
//! `ticket`) and the same keys in a form body; then every file of the recordings directory
//! (raw, and each zstd frame in it decompressed), `recordings list/show` (text and JSON),
//! `routes` and the HAR export are searched for every planted secret.
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use record_support::*;
use serde_json::Value;
use upstream::*;

/// Each planted secret, named after where it was planted.
const SECRETS: &[&str] = &[
    "PLANTwebhookTOKEN0a",
    "PLANTinteractionTOKEN0b",
    "PLANTfollowupTOKEN0c",
    "PLANTqueryTOKEN0d",
    "PLANTqueryCODE0e",
    "PLANTqueryCLIENTSECRET0f",
    "PLANTqueryACCESS0g",
    "PLANTqueryREFRESH0h",
    "PLANTqueryTICKET0i",
    "PLANTformCODE0j",
    "PLANTformCLIENTSECRET0k",
    "PLANTformREFRESH0l",
    "PLANTformTICKET0m",
    "PLANTgatewayTOKEN0n",
];

fn record_planted_secrets(dir: &Path) {
    let rt = runtime();
    let stand_in = FakeDiscord::start();
    let recorder = Recorder::start(dir, &stand_in, &[]);
    let json = ["-H", "content-type: application/json"];
    let calls: Vec<(String, Vec<&str>)> = vec![
        (
            "https://discord.com/api/v10/webhooks/223704706495545344/PLANTwebhookTOKEN0a?wait=true"
                .into(),
            [&["--data", r#"{"content":"hi"}"#][..], &json].concat(),
        ),
        (
            "https://discord.com/api/v10/interactions/223704706495545345/PLANTinteractionTOKEN0b/callback"
                .into(),
            [&["--data", r#"{"type":4}"#][..], &json].concat(),
        ),
        (
            "https://discord.com/api/v10/webhooks/223704706495545346/PLANTfollowupTOKEN0c/messages/@original"
                .into(),
            vec![],
        ),
        (
            "https://discord.com/api/v10/users/@me?token=PLANTqueryTOKEN0d&code=PLANTqueryCODE0e\
             &client_secret=PLANTqueryCLIENTSECRET0f&access_token=PLANTqueryACCESS0g\
             &refresh_token=PLANTqueryREFRESH0h&ticket=PLANTqueryTICKET0i&limit=5"
                .into(),
            vec![],
        ),
        (
            "https://discord.com/api/v10/oauth2/token".into(),
            vec![
                "--data",
                "grant_type=authorization_code&code=PLANTformCODE0j&client_secret=PLANTformCLIENTSECRET0k\
                 &refresh_token=PLANTformREFRESH0l&ticket=PLANTformTICKET0m&client_id=1",
                "-H",
                "content-type: application/x-www-form-urlencoded",
            ],
        ),
    ];
    for (url, extra) in &calls {
        let out = curl(&recorder, url, extra);
        assert!(
            out.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    rt.block_on(async {
        let url = "wss://gateway.discord.gg/?v=10&encoding=json&token=PLANTgatewayTOKEN0n";
        let mut ws =
            websocket_through_proxy(recorder.addr, &recorder.ca_pem, "gateway.discord.gg", url)
                .await;
        ws.next().await.unwrap().unwrap();
        drop(ws);
    });
    std::thread::sleep(Duration::from_millis(300));
    let log = recorder.stop();
    assert_no_secret("the record log", log.as_bytes());
}

#[track_caller]
fn assert_no_secret(what: &str, data: &[u8]) {
    for secret in SECRETS {
        assert!(
            memchr::memmem::find(data, secret.as_bytes()).is_none(),
            "{what} holds the planted secret {secret}"
        );
    }
}

/// The contents of every zstd frame inside `data` (the store keeps exchanges in zstd chunks,
/// so a plain search of the files alone would miss a secret inside one).
fn zstd_frames(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    for start in memchr::memmem::find_iter(data, &[0x28, 0xb5, 0x2f, 0xfd]) {
        if let Ok(decoder) = zstd::stream::read::Decoder::new(&data[start..]) {
            let _ = decoder.single_frame().take(64 << 20).read_to_end(&mut out);
        }
    }
    out
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn bin_ok(args: &[&str]) -> Vec<u8> {
    let out = run_bin(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    [out.stdout, out.stderr].concat()
}

#[test]
fn planted_url_and_form_secrets_are_in_no_file_and_no_view() {
    let dir = workdir();
    record_planted_secrets(dir.path());
    let recordings = dir.path().join("recordings");
    let rec = recordings.to_str().unwrap();

    // Every file of the database, raw and with its zstd chunks opened.
    let mut files = Vec::new();
    files_under(&recordings, &mut files);
    let mut frames_seen = 0;
    for file in &files {
        let data = std::fs::read(file).unwrap();
        assert_no_secret(&file.display().to_string(), &data);
        let inside = zstd_frames(&data);
        frames_seen += usize::from(!inside.is_empty());
        assert_no_secret(&format!("a zstd frame in {}", file.display()), &inside);
    }
    assert!(frames_seen > 0, "no chunk found in {files:?}");

    // Every view: list, show of each exchange and session, routes, HAR.
    let listed = bin_ok(&["recordings", "--recordings", rec, "list", "--json"]);
    assert_no_secret("recordings list --json", &listed);
    assert_no_secret(
        "recordings list",
        &bin_ok(&["recordings", "--recordings", rec, "list"]),
    );
    let text = String::from_utf8_lossy(&listed);
    assert!(
        text.contains("/webhooks/223704706495545344/%5Bredacted"),
        "the path keeps its shape with a marker: {text}"
    );
    let mut shown = 0;
    for id in 1..=5u64 {
        let id = id.to_string();
        for json in [true, false] {
            let mut args = vec!["recordings", "--recordings", rec, "show", &id];
            if json {
                args.push("--json");
            }
            assert_no_secret(&format!("recordings show {id}"), &bin_ok(&args));
            shown += 1;
        }
    }
    assert_eq!(shown, 10);
    for json in [true, false] {
        let mut args = vec!["recordings", "--recordings", rec, "show", "gw:1"];
        if json {
            args.push("--json");
        }
        assert_no_secret("recordings show gw:1", &bin_ok(&args));
    }
    let routes = bin_ok(&["routes", "--recordings", rec, "--json"]);
    assert_no_secret("routes --json", &routes);
    let routes = String::from_utf8_lossy(&routes).to_string();
    assert!(
        routes.contains("{webhook_token}") && routes.contains("{interaction_token}"),
        "templates stay recognisable: {routes}"
    );
    assert_no_secret("routes", &bin_ok(&["routes", "--recordings", rec]));
    let har = dir.path().join("out.har");
    bin_ok(&[
        "export",
        "har",
        "--recordings",
        rec,
        "--out",
        har.to_str().unwrap(),
    ]);
    let har_bytes = std::fs::read(&har).unwrap();
    assert_no_secret("the HAR export", &har_bytes);
    let har: Value = serde_json::from_slice(&har_bytes).unwrap();
    let entries = har["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 6, "five exchanges and one gateway session");
}
