//! `discord-mitm completions SHELL` and `discord-mitm man`: generated from the clap definitions,
//! so they always match this build.
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, CommandFactory as _};

use super::paths::Output;
use super::Cli;

/// `completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `man`.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write one page per command (discord-mitm.1, discord-mitm-serve.1, …) into this directory
    /// instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell`.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "discord-mitm", &mut out);
    Output::Stdout.write_all(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the man page, or writes every command's page into `--dir`.
pub fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    let command = Cli::command();
    let Some(dir) = args.dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(command).render(&mut out)?;
        Output::Stdout.write_all(&out)?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(command, &dir)
        .with_context(|| format!("cannot write the pages into {}", dir.display()))?;
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "wrote the man pages into {}", dir.display());
    Ok(ExitCode::SUCCESS)
}
