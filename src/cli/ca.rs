//! `discord-mitm ca ...`: arguments and dispatch to `crate::ca`.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::CaDirArg;
use crate::ca::store::verify;
use crate::ca::store::{self, Operation, StoreChoice, StoreEnv};
use crate::ca::{Mended, RootCa};

/// Manage the root CA: create it, show it, install it in trust stores, verify the install.
#[derive(Debug, Args)]
pub struct CaArgs {
    /// What to do with the CA.
    #[command(subcommand)]
    pub command: CaCommand,
    /// Prefix for system trust-store paths (for tests and chroots).
    #[arg(long, global = true, hide = true, env = "DISCORD_MITM_SYSTEM_ROOT")]
    pub system_root: Option<PathBuf>,
    /// The CA directory.
    #[command(flatten)]
    pub ca_dir: CaDirArg,
}

/// The `ca` subcommands.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a new root CA in the CA directory (certificate .pem, key .key mode 0600, DER .cer).
    Init {
        /// Replace an existing CA (it stays trusted wherever it was installed until you uninstall it).
        #[arg(long)]
        force: bool,
    },
    /// Show the CA: subject, fingerprint, validity, files, and which trust stores have it.
    Show,
    /// Install the CA in trust stores so clients accept the proxy's certificates.
    Install(StoreArgs),
    /// Remove the CA from trust stores.
    Uninstall(StoreArgs),
    /// Serve a discord.com certificate on loopback and check which trust stores accept it.
    Verify {
        /// Which stores to check.
        #[arg(long, value_enum, default_value = "all")]
        store: StoreChoice,
    },
}

/// Store selection shared by install and uninstall.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Which trust stores (all = every store that applies to this OS).
    #[arg(long, value_enum, default_value = "all")]
    pub store: StoreChoice,
    /// Print the exact commands and files, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs a `ca` subcommand.
pub fn run(args: CaArgs) -> anyhow::Result<ExitCode> {
    let ca_dir = &args.ca_dir.path();
    let flag = args.ca_dir.flag();
    let env = StoreEnv::from_process(args.system_root, ca_dir);
    match args.command {
        CaCommand::Init { force } => {
            if !force {
                if let Some(mended) = RootCa::mend(ca_dir)? {
                    println!("{}", already_present(ca_dir, &mended));
                    if mended.repaired.is_empty() {
                        println!(
                            "nothing changed (`discord-mitm ca init --force{flag}` makes a new one)"
                        );
                    } else {
                        for repair in &mended.repaired {
                            println!("repaired: {repair}");
                        }
                        println!("the CA itself is unchanged (`discord-mitm ca init --force{flag}` makes a new one)");
                    }
                    println!("next: discord-mitm ca install{flag}   (then: discord-mitm ca verify{flag})");
                    return Ok(ExitCode::SUCCESS);
                }
            }
            print!("{}", RootCa::init(ca_dir, force)?);
            println!("next: discord-mitm ca install{flag}   (then: discord-mitm ca verify{flag})");
            Ok(ExitCode::SUCCESS)
        }
        CaCommand::Show => {
            print!("{}", store::show(ca_dir, &env)?);
            Ok(ExitCode::SUCCESS)
        }
        CaCommand::Install(stores) => apply(ca_dir, stores, Operation::Install, &env),
        CaCommand::Uninstall(stores) => apply(ca_dir, stores, Operation::Uninstall, &env),
        CaCommand::Verify { store } => {
            let report = verify::verify(ca_dir, store, &env)?;
            println!("{report}");
            Ok(if report.all_trusted() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// "CA already present …" for the CA `ca init` found in `dir`.
fn already_present(dir: &Path, mended: &Mended) -> String {
    format!(
        "CA already present in {}\n  subject:     {}\n  sha256:      {}",
        dir.display(),
        mended.certificate.subject(),
        mended.certificate.sha256_fingerprint()
    )
}

fn apply(
    ca_dir: &Path,
    stores: StoreArgs,
    op: Operation,
    env: &StoreEnv,
) -> anyhow::Result<ExitCode> {
    let report = store::apply(ca_dir, stores.store, op, stores.dry_run, env)?;
    print!("{report}");
    let failures = report.failures();
    if failures > 0 {
        eprintln!("error: {failures} trust store(s) failed; see FAILED above for the fix");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
