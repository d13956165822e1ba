//! The command line's conventions, through the built binary: `-` for standard input/output,
//! `localhost:PORT` and `[::1]:PORT` addresses, hints that repeat the flags given, idempotent
//! commands that say "already present", flags only on the commands that use them, `record`'s
//! proxy lines, shell completions and the man page.
use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_discord-mitm");

fn bin() -> Command {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DISCORD_MITM_") {
            command.env_remove(key);
        }
    }
    command.env_remove("RUST_LOG");
    command
}

fn run(args: &[&str], cwd: &Path) -> Output {
    bin().args(args).current_dir(cwd).output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn ok(args: &[&str], cwd: &Path) -> String {
    let output = run(args, cwd);
    assert!(output.status.success(), "{args:?}: {}", text(&output));
    text(&output)
}

/// Reads a child's stdout until `Press Ctrl-C`, then keeps draining it; returns the banner.
fn banner(child: &mut Child) -> String {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = String::new();
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        out.push_str(&line);
        out.push('\n');
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    out
}

fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn ca_dir_is_on_the_commands_that_use_it_and_hints_repeat_it() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    for command in [
        &["ca", "--help"][..],
        &["ca", "init", "--help"],
        &["record", "--help"],
        &["serve", "--help"],
    ] {
        assert!(ok(command, cwd).contains("--ca-dir"), "{command:?}");
    }
    for command in [
        &["routes", "--help"][..],
        &["hosts", "--help"],
        &["recordings", "--help"],
        &["export", "har", "--help"],
        &["gateway-proxy", "--help"],
        &["--help"],
    ] {
        assert!(!ok(command, cwd).contains("--ca-dir"), "{command:?}");
    }
    // Every command logs: -v and --log-format are everywhere.
    assert!(ok(&["routes", "--help"], cwd).contains("--log-format"));
    // The old global position is gone.
    assert!(!run(&["--ca-dir", "x", "ca", "init"], cwd).status.success());

    let first = ok(&["ca", "init", "--ca-dir", "my ca"], cwd);
    assert!(first.contains("created a new root CA"), "{first}");
    assert!(
        first.contains("next: discord-mitm ca install --ca-dir 'my ca'"),
        "{first}"
    );
    let pem = std::fs::read(cwd.join("my ca/discord-mitm-ca.pem")).unwrap();
    // Both positions of the flag work on `ca`'s subcommands.
    let second = ok(&["ca", "--ca-dir", "my ca", "init"], cwd);
    assert!(second.contains("CA already present in my ca"), "{second}");
    assert!(second.contains("nothing changed"), "{second}");
    assert!(second.contains("ca install --ca-dir 'my ca'"), "{second}");
    assert_eq!(
        std::fs::read(cwd.join("my ca/discord-mitm-ca.pem")).unwrap(),
        pem
    );
    // Without the flag, hints do not invent one.
    let default = ok(&["ca", "init"], cwd);
    assert!(
        default.contains("next: discord-mitm ca install   "),
        "{default}"
    );
}

#[test]
fn hosts_apply_and_remove_twice_say_already_present_and_not_present() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let path = hosts.to_str().unwrap();
    let first = ok(&["hosts", "--apply", "--hosts-file", path], dir.path());
    assert!(first.contains("added 17 lines"), "{first}");
    assert!(
        first.contains(&format!("discord-mitm hosts --remove --hosts-file {path}")),
        "{first}"
    );
    let applied = std::fs::read(&hosts).unwrap();
    let second = ok(&["hosts", "--apply", "--hosts-file", path], dir.path());
    assert!(second.contains("already present"), "{second}");
    assert!(!second.contains("added"), "{second}");
    assert_eq!(std::fs::read(&hosts).unwrap(), applied);
    assert!(
        ok(&["hosts", "--remove", "--hosts-file", path], dir.path()).contains("removed 17 lines")
    );
    let again = ok(&["hosts", "--remove", "--hosts-file", path], dir.path());
    assert!(again.contains("not present"), "{again}");
    assert_eq!(
        std::fs::read_to_string(&hosts).unwrap(),
        "127.0.0.1 localhost\n"
    );
}

#[test]
fn serve_takes_localhost_and_bracketed_ipv6_addresses_and_a_fixture_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        r#"{"users": [{"id": "100000000000000001", "username": "alice", "token": "alice-token"}]}"#;
    for (api, shown) in [
        ("localhost:0", "http://127.0.0.1:"),
        ("[::1]:0", "http://[::1]:"),
    ] {
        let data = dir.path().join(format!("data-{}", api.len()));
        let mut child = bin()
            .args(["serve", "--api", api, "--fixture", "-", "--data"])
            .arg(&data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(fixture.as_bytes()).unwrap();
        drop(stdin);
        let banner = banner(&mut child);
        kill(child);
        assert!(
            banner.contains(&format!("listening on {shown}")),
            "{api}: {banner}"
        );
        assert!(
            banner.contains("fixture from standard input (1 users"),
            "{api}: {banner}"
        );
    }
    let refused = run(&["serve", "--api", "localhost:http"], dir.path());
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("is not a port number"),
        "{}",
        text(&refused)
    );
}

#[test]
fn record_prints_its_proxy_and_the_environment_lines_to_use() {
    let dir = tempfile::tempdir().unwrap();
    ok(&["ca", "init", "--ca-dir", "ca"], dir.path());
    let mut child = bin()
        .args([
            "record",
            "--listen",
            "localhost:0",
            "--ca-dir",
            "ca",
            "--no-store",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let banner = banner(&mut child);
    kill(child);
    let addr = banner
        .lines()
        .find_map(|l| l.strip_prefix("discord-mitm record: proxy listening on "))
        .unwrap_or_else(|| panic!("{banner}"));
    assert!(addr.starts_with("127.0.0.1:"), "{banner}");
    let pem = std::fs::canonicalize(dir.path().join("ca/discord-mitm-ca.pem")).unwrap();
    assert!(
        banner.contains(&format!(
            "export HTTPS_PROXY=http://{addr} SSL_CERT_FILE={}",
            pem.display()
        )),
        "{banner}"
    );
    assert!(banner.contains("ca install --ca-dir ca"), "{banner}");
}

#[test]
fn dash_reads_standard_input_for_specs_and_configs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/discord-openapi.json"
    ));
    if let Ok(spec) = spec {
        let mut child = bin()
            .args(["serve", "--coverage", "-"])
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&spec).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", text(&output));
        let report = text(&output);
        assert!(
            report.contains("/users/@me")
                && report.contains("operations in the OpenAPI spec natively"),
            "{report}"
        );
    }
    let mut child = bin()
        .args(["gateway-proxy", "--config", "-", "--no-state"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"[1, 2]").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("must be a JSON object"),
        "{}",
        text(&output)
    );
    assert!(!dir.path().join("-").exists());
}

#[test]
fn completions_and_man_pages_come_from_the_command_definitions() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = ok(&["completions", shell], dir.path());
        assert!(script.contains("discord-mitm"), "{shell}");
        assert!(script.contains("gateway-proxy"), "{shell}: {script}");
        assert!(script.contains("upstream-ca"), "{shell}");
    }
    let bash = ok(&["completions", "bash"], dir.path());
    let check = Command::new("bash")
        .args(["-n", "-c", &bash])
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));
    let page = ok(&["man"], dir.path());
    assert!(
        page.starts_with(".ie") || page.contains(".TH discord-mitm 1"),
        "{page}"
    );
    assert!(page.contains("gateway\\-proxy"), "{page}");
    let pages = dir.path().join("man");
    ok(&["man", "--dir", pages.to_str().unwrap()], dir.path());
    for name in [
        "discord-mitm.1",
        "discord-mitm-serve.1",
        "discord-mitm-ca-install.1",
    ] {
        let page =
            std::fs::read_to_string(pages.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(page.contains(".TH"), "{name}");
    }
}
