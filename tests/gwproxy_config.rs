//! `discord-mitm gateway-proxy` refuses bad configs before touching the network, naming the field.
use std::process::Command;

fn run_with(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, config).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_discord-mitm"))
        .arg("gateway-proxy")
        .arg("--config")
        .arg(&path)
        .arg("--no-state")
        .output()
        .expect("run the binary");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn invalid_configs_are_rejected_naming_the_field() {
    for (config, field) in [
        (r#"{"intents": 1}"#, "`token`"),
        (r#"{"token": "t", "intents": "all"}"#, "`intents`"),
        (
            r#"{"token": "t", "intents": 1, "status": "busy"}"#,
            "`status`",
        ),
        (
            r#"{"token": "t", "intents": 1, "cache": {"members": 1}}"#,
            "`cache.members`",
        ),
        (
            r#"{"token": "t", "intents": 1, "backpressure": 0}"#,
            "`backpressure`",
        ),
        (
            r#"{"token": "t", "intents": 1, "shards": 2, "shard_end": 3}"#,
            "`shard_end`",
        ),
        (
            r#"{"token": "t", "intents": 1, "upstream_api": "discord.com"}"#,
            "`upstream_api`",
        ),
    ] {
        let (ok, stderr) = run_with(config);
        assert!(!ok, "{config} was accepted");
        assert!(
            stderr.contains(field),
            "{config}: stderr does not name {field}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_discord-mitm"))
        .args([
            "gateway-proxy",
            "--config",
            "/nonexistent/gwproxy.json",
            "--no-state",
        ])
        .output()
        .expect("run the binary");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read config /nonexistent/gwproxy.json"),
        "{stderr}"
    );
}

#[test]
fn unreachable_upstream_fails_with_the_url_not_a_hang() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ok, stderr) = run_with(&format!(
        r#"{{"token": "t", "intents": 1, "port": {port}, "upstream_api": "http://127.0.0.1:1/api/v10"}}"#
    ));
    assert!(!ok);
    assert!(stderr.contains("127.0.0.1"), "{stderr}");
}
