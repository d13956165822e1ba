//! `discord-mitm hosts`: arguments and dispatch.
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::proxy::hostsfile;

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
    #[arg(long, default_value = "/etc/hosts")]
    pub hosts_file: PathBuf,
}

/// Runs `hosts`.
pub fn run(args: HostsArgs) -> anyhow::Result<ExitCode> {
    if args.apply {
        let n = hostsfile::apply(&args.hosts_file, args.address)?;
        eprintln!(
            "added {n} lines to {}; undo with `discord-mitm hosts --remove`",
            args.hosts_file.display()
        );
    } else if args.remove {
        let n = hostsfile::remove(&args.hosts_file)?;
        eprintln!("removed {n} lines from {}", args.hosts_file.display());
    } else {
        for line in hostsfile::lines(args.address) {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
