//! The CLI convention that `-` names standard input (for a file read) or standard output (for a
//! file written), in one place for every command that takes a file.
use std::io::{self, Read as _, Write as _};
use std::path::Path;

/// Whether `path` is `-` (standard input or output).
pub fn is_dash(path: &Path) -> bool {
    path == Path::new("-")
}

/// The whole of the file at `path`, or of standard input for `-`.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    if is_dash(path) {
        let mut bytes = Vec::new();
        io::stdin().lock().read_to_end(&mut bytes)?;
        Ok(bytes)
    } else {
        std::fs::read(path)
    }
}

/// How `path` is named in messages: `standard input` for `-`.
pub fn input_name(path: &Path) -> String {
    if is_dash(path) {
        "standard input".to_string()
    } else {
        path.display().to_string()
    }
}

/// Writes `bytes` to standard output; a reader that went away (`| head`) is not an error.
pub fn write_stdout(bytes: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
