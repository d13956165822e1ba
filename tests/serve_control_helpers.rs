//! The published test helpers run their own example tests against the built binary: the pytest
//! plugin (examples/testing/pytest, with discord.py from .venv/bots) and the Node helper
//! (examples/testing/node, under `node --test`, with discord.js from tests/js/node_modules).
//! Both start `serve --control`, reset between tests and assert through wait-for.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn report(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_pytest_plugins_example_test_passes_against_serve() {
    let python = root().join(".venv/bots/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup-test-deps",
        python.display()
    );
    let example = root().join("examples/testing/pytest");
    let output = Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .current_dir(&example)
        .env("DISCORD_MITM_BIN", env!("CARGO_BIN_EXE_discord-mitm"))
        .env(
            "DISCORD_MITM_FIXTURE",
            root().join("examples/testing/fixture.json"),
        )
        .output()
        .expect("run pytest");
    report("pytest examples/testing/pytest", &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("3 passed"), "{stdout}");
}

#[test]
fn the_node_helpers_example_test_passes_against_serve() {
    let modules = root().join("tests/js/node_modules");
    assert!(
        Path::new(&modules).join("discord.js").is_dir(),
        "{} has no discord.js: run scripts/setup-test-deps",
        modules.display()
    );
    let output = Command::new("node")
        .arg("--test")
        .arg(root().join("examples/testing/node/example.test.js"))
        .env("NODE_PATH", &modules)
        .env("DISCORD_MITM_BIN", env!("CARGO_BIN_EXE_discord-mitm"))
        .output()
        .expect("run node --test");
    report("node --test examples/testing/node", &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("# pass 3"), "{stdout}");
}
