//! A full disk for real, through the kernel: RLIMIT_FSIZE set on the test process around a
//! spawn (children inherit it) with SIGXFSZ ignored, so the child's writes past the limit fail
//! with EFBIG as they would with ENOSPC on a full filesystem, without needing a mount.
//! Test crates include it with `#[path = "common/file_limit.rs"] mod file_limit;`; one test per
//! crate, since the limit is the whole process's while it is set.

/// Runs `start` with a file-size limit of `limit` bytes that its children inherit, then lifts
/// it again.
pub fn with_file_limit<T>(limit: u64, start: impl FnOnce() -> T) -> T {
    let mut before = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on this process's limits and signal disposition.
    #[allow(unsafe_code)]
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut before), 0);
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let limited = libc::rlimit {
            rlim_cur: limit,
            rlim_max: before.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limited), 0);
    }
    let started = start();
    #[allow(unsafe_code)]
    unsafe {
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &before), 0);
    }
    started
}
