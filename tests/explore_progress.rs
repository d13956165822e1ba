//! Progress bars of the long reads (`routes --openapi`, `recordings diff`, `export har`) on a
//! real terminal: each command runs under a pseudo-terminal (util-linux `script`) over a
//! recording of a few thousand exchanges and draws its bar on stderr; the same commands piped
//! print no bar.
#[path = "common/json_exchange.rs"]
mod json_exchange;
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use std::path::Path;
use std::process::Command;

use discord_mitm::store::{Exchange, Store};
use json_exchange::json_exchange;
use record_support::*;
use serde_json::json;

const EXCHANGES: usize = 3_000;

fn exchange(n: usize) -> Exchange {
    let body = serde_json::to_vec(&json!({
        "id": format!("{}", 1_300_000_000_000_000_000u64 + n as u64),
        "content": format!("message {n}"),
        "flags": n % 3,
    }))
    .unwrap();
    json_exchange(
        "GET",
        format!(
            "/api/v9/channels/{}/messages/{}",
            81_384_788_765_712_384u64 + (n % 7) as u64,
            1_300_000_000_000_000_000u64 + n as u64
        ),
        1_795_300_000_000_000 + n as i64 * 1000,
        body,
    )
}

fn big_recording(dir: &Path) -> std::path::PathBuf {
    let recordings = dir.join("recordings");
    let store = Store::open(&recordings).unwrap();
    let mut all: Vec<Exchange> = (0..EXCHANGES).map(exchange).collect();
    store.insert_exchanges(&mut all).unwrap();
    drop(store);
    recordings
}

/// Single-quotes `arg` for sh.
fn quoted(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// Runs the binary with `args` under a pseudo-terminal; (success, everything the terminal
/// showed).
fn on_terminal(args: &[&str]) -> (bool, String) {
    let command: Vec<String> = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(quoted)
        .collect();
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &command.join(" "), "/dev/null"])
        .env("TERM", "xterm-256color")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("util-linux `script` runs commands under a pseudo-terminal");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn long_reads_draw_progress_on_a_terminal_and_stay_quiet_when_piped() {
    let dir = tempfile::tempdir().unwrap();
    let recordings = big_recording(dir.path());
    let rec = recordings.to_str().unwrap();
    let openapi = dir.path().join("openapi.json");
    let har = dir.path().join("out.har");
    let runs: [(Vec<&str>, String); 3] = [
        (
            vec![
                "routes",
                "--recordings",
                rec,
                "--openapi",
                openapi.to_str().unwrap(),
            ],
            format!("/{EXCHANGES} exchanges"),
        ),
        (
            vec!["recordings", "diff", rec, rec],
            format!("/{EXCHANGES} exchanges"),
        ),
        (
            vec![
                "export",
                "har",
                "--recordings",
                rec,
                "--out",
                har.to_str().unwrap(),
            ],
            format!("/{EXCHANGES} entries"),
        ),
    ];
    for (args, bar) in &runs {
        let (ok, shown) = on_terminal(args);
        assert!(ok, "{args:?} under a terminal: {shown}");
        assert!(
            shown.contains(bar.as_str()),
            "{args:?} drew no progress bar (`{bar}`) on the terminal: {shown:?}"
        );
        // Piped: the output files are the same, and stderr has no bar.
        let out = run_bin(args);
        assert!(out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains(bar.as_str()) && !stderr.contains('\u{1b}'),
            "{args:?} piped drew progress: {stderr:?}"
        );
    }
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&openapi).unwrap()).unwrap();
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert!(paths[0].starts_with("/api/v9/channels/{"), "{paths:?}");
}
