//! `discord-mitm hosts`: arguments and dispatch.
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::proxy::hostsfile;

/// The system's hosts file.
const DEFAULT_HOSTS_FILE: &str = "/etc/hosts";

/// The /etc/hosts lines that redirect Discord to `record --transparent`.
#[derive(Debug, Clone, Args)]
pub struct HostsArgs {
    /// Address the names should point at (where --transparent listens).
    #[arg(long, default_value = "127.0.0.1")]
    pub address: IpAddr,
    /// Write the lines into the hosts file.
    #[arg(long, conflicts_with = "remove")]
    pub apply: bool,
    /// Take exactly the lines added by --apply out again.
    #[arg(long)]
    pub remove: bool,
    /// The hosts file to edit.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_HOSTS_FILE)]
    pub hosts_file: PathBuf,
}

/// Runs `hosts`.
pub fn run(args: HostsArgs) -> anyhow::Result<ExitCode> {
    if args.apply {
        let undo = format!("discord-mitm hosts --remove{}", hosts_file_flag(&args));
        match hostsfile::apply(&args.hosts_file, args.address)? {
            hostsfile::Applied::Added(n) => eprintln!(
                "added {n} lines to {}; undo with `{undo}`",
                args.hosts_file.display()
            ),
            hostsfile::Applied::AlreadyPresent(n) => eprintln!(
                "already present: the {n} lines are in {} (nothing changed); undo with `{undo}`",
                args.hosts_file.display()
            ),
        }
    } else if args.remove {
        match hostsfile::remove(&args.hosts_file)? {
            0 => eprintln!(
                "not present: no discord-mitm lines in {} (nothing changed)",
                args.hosts_file.display()
            ),
            n => eprintln!("removed {n} lines from {}", args.hosts_file.display()),
        }
    } else {
        for line in hostsfile::lines(args.address) {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// ` --hosts-file FILE` when it is not the default, for the commands hints suggest.
fn hosts_file_flag(args: &HostsArgs) -> String {
    if args.hosts_file == std::path::Path::new(DEFAULT_HOSTS_FILE) {
        String::new()
    } else {
        format!(
            " --hosts-file {}",
            super::shell_word(&args.hosts_file.to_string_lossy())
        )
    }
}
