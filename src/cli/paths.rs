//! File arguments: `-` is standard output for a file written (and standard input for a file
//! read, see [`crate::store::stdio`]).
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::store::stdio;

/// Where a command writes its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Standard output (`-`).
    Stdout,
    /// A file, created or truncated.
    File(PathBuf),
}

impl Output {
    /// `-` is standard output, anything else a file.
    pub fn from_arg(path: &Path) -> Output {
        if stdio::is_dash(path) {
            Output::Stdout
        } else {
            Output::File(path.to_path_buf())
        }
    }

    /// How messages name it.
    pub fn name(&self) -> String {
        match self {
            Output::Stdout => "standard output".to_string(),
            Output::File(path) => path.display().to_string(),
        }
    }

    /// Writes all of `bytes`.
    pub fn write_all(&self, bytes: &[u8]) -> anyhow::Result<()> {
        match self {
            Output::Stdout => stdio::write_stdout(bytes).context("cannot write to standard output"),
            Output::File(path) => std::fs::write(path, bytes)
                .with_context(|| format!("cannot write {}", path.display())),
        }
    }

    /// A buffered writer for streaming output.
    pub fn writer(&self) -> anyhow::Result<Box<dyn Write>> {
        Ok(match self {
            Output::Stdout => Box::new(BufWriter::new(std::io::stdout().lock())),
            Output::File(path) => Box::new(BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            )),
        })
    }
}
