//! Files that hold tokens are the owner's alone: with the most permissive umask (000), `serve`
//! makes its data directory 0700 and every file in it 0600, `record` the same for its
//! recordings, and an existing directory open to others gets a warning naming the fix.
mod record_support;
mod serve_support;
#[path = "common/upstream.rs"]
mod upstream;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use record_support::*;
use serve_support::*;
use upstream::FakeDiscord;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Asserts `dir` is 0700 and everything below it 0600 (files) or 0700 (directories).
#[track_caller]
fn assert_owner_only(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                assert_eq!(mode(&path), 0o700, "{}", path.display());
                stack.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                files += 1;
            }
        }
    }
    assert!(files > 0, "nothing was written in {}", dir.display());
}

#[test]
fn data_and_recordings_are_owner_only_whatever_the_umask() {
    // Children inherit the umask: the widest one, so any mode we get is one we set.
    #[allow(unsafe_code)]
    // SAFETY: umask swaps the process's file-creation mask and touches no memory.
    unsafe {
        libc::umask(0);
    }
    let root = tempfile::tempdir().unwrap();

    // serve: a fresh data directory (and a missing parent) after writes and a clean stop.
    let data = root.path().join("nested/data");
    let mut server = Server::start_in(&data, Some(FIXTURE), &["--rate-limit", "off"]).unwrap();
    let reply = server.api().post(
        &format!("/channels/{GENERAL}/messages"),
        ALICE,
        serde_json::json!({"content": "private"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.raw);
    server.stop();
    assert_owner_only(&data);

    // record: a fresh recordings directory after an exchange and a clean stop.
    let dir = workdir();
    let stand_in = FakeDiscord::start();
    let recorder = Recorder::start(dir.path(), &stand_in, &[]);
    proxy_still_serves(&recorder);
    let recordings = recorder.recordings.clone();
    recorder.stop();
    assert_owner_only(&recordings);

    // An existing directory others may enter is warned about, with the fix, and left as it is.
    std::fs::set_permissions(&recordings, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run_bin(&[
        "recordings",
        "--recordings",
        recordings.to_str().unwrap(),
        "stats",
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mode 755")
            && stderr.contains(&format!("chmod 700 {}", recordings.display())),
        "{stderr}"
    );
    assert_eq!(mode(&recordings), 0o755);
}
