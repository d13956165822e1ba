//! A full disk while recording: `record` says once that it stopped recording and why, and the
//! proxy keeps forwarding. The disk fills for real, through the kernel: the recorder runs with a
//! file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored), so its writes past the limit fail with
//! EFBIG as they would with ENOSPC on a full filesystem, without needing a mount.
//!
//! One test in this file: the limit is set on the test process around the spawn (children
//! inherit it), which must not touch other tests' files.
#[path = "common/file_limit.rs"]
mod file_limit;
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use file_limit::with_file_limit;
use record_support::*;
use upstream::FakeDiscord;

/// Big enough for the empty database and the log; smaller than one recorded exchange below
/// (sled keeps large values in files of their own, so the limit per file is what counts).
const FILE_LIMIT: u64 = 256 * 1024;

/// Incompressible text, so the recorder's zstd chunks are as big as what was sent.
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

#[test]
fn a_full_disk_stops_recording_with_one_error_and_the_proxy_keeps_forwarding() {
    let dir = workdir();
    let stand_in = FakeDiscord::start_echoing();
    let recorder = with_file_limit(FILE_LIMIT, || Recorder::start(dir.path(), &stand_in, &[]));
    let body_file = dir.path().join("body.json");
    // 60 × 200 KB each way is far past the limit.
    for n in 0..60u64 {
        std::fs::write(
            &body_file,
            format!(r#"{{"content":"{}"}}"#, noise(n, 200 * 1024)),
        )
        .unwrap();
        let out = curl(
            &recorder,
            "https://discord.com/api/v9/channels/1/fill",
            &[
                "-X",
                "POST",
                "-H",
                "content-type: application/json",
                "--data-binary",
                &format!("@{}", body_file.display()),
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ],
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "200",
            "request {n} was not forwarded: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            recorder.log()
        );
    }
    proxy_still_serves(&recorder);
    let (stopped, log) = recorder.stop_gracefully();
    assert!(stopped, "record did not stop by itself:\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    let stops = log.matches("recording stopped").count();
    assert_eq!(stops, 1, "expected one 'recording stopped' error:\n{log}");
    assert!(
        log.contains("File too large") || log.contains("No space"),
        "{log}"
    );
}
