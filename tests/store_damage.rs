//! A damaged database is refused in words, with the fix and a failing exit code, instead of
//! being opened as an older or empty one (sled silently recovers the readable prefix of a
//! truncated file). Checked through the built binary for `serve`'s data directory and for
//! recordings.
mod serve_support;

use std::time::{Duration, Instant};

use serve_support::Server;

/// Waits until the integrity mark has been written at least once.
fn wait_for_mark(dir: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join("discord-mitm-watermark").exists() {
        assert!(
            Instant::now() < deadline,
            "no integrity mark in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_truncated_data_directory_is_refused_with_the_fix() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let server = Server::start_in(&data, None, &[]).unwrap();
    wait_for_mark(&data);
    drop(server);
    // An undamaged directory opens again, after a clean stop and after kill -9.
    let server = Server::start_in(&data, None, &[]).unwrap();
    std::process::Command::new("kill")
        .args(["-9", &server.pid().to_string()])
        .status()
        .unwrap();
    drop(server);
    let server = Server::start_in(&data, None, &[]).unwrap();
    drop(server);

    let db = data.join("db");
    let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    file.set_len(1000).unwrap();
    drop(file);
    let err = Server::start_in(&data, None, &[])
        .err()
        .expect("serve opened a truncated database");
    assert!(err.contains("is damaged"), "{err}");
    assert!(err.contains("fix: restore it from a backup"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // So is one whose files were replaced by garbage.
    let bytes: Vec<u8> = (0..40_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&db, bytes).unwrap();
    let err = Server::start_in(&data, None, &[])
        .err()
        .expect("serve opened a corrupted database");
    assert!(err.contains("is damaged"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // --reset starts afresh, as the fix says.
    let server = Server::start_in(&data, None, &["--reset"]).unwrap();
    assert!(
        server.banner.contains("a new demo world"),
        "{}",
        server.banner
    );
}

#[test]
fn recordings_that_lost_their_database_file_are_refused_with_the_fix() {
    let root = tempfile::tempdir().unwrap();
    let recordings = root.path().join("recordings");
    // Opening and closing the recordings database (as `record` does) leaves its mark.
    drop(discord_mitm::store::Store::open(&recordings).unwrap());
    wait_for_mark(&recordings);
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_discord-mitm"))
        .args(["recordings", "list", "--recordings"])
        .arg(&recordings)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(
        !stderr.contains("damaged") && !stderr.contains("lost data"),
        "{stderr}"
    );

    // Every file of the database is gone (a restore that missed them); only the mark is left.
    for entry in std::fs::read_dir(&recordings).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() != "discord-mitm-watermark" {
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_discord-mitm"))
        .args(["recordings", "list", "--recordings"])
        .arg(&recordings)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(!listed.status.success(), "{stderr}");
    assert!(
        stderr.contains("lost data that was already on disk"),
        "{stderr}"
    );
    assert!(stderr.contains("fix: restore it from a backup"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
