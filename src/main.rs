//! The `discord-mitm` binary: parses the command line and runs it (all logic is in the library).
// mimalloc: the recorder thread frees what the proxy's threads allocated, which glibc's malloc
// handles slowly (measured: a third of the recorder's time in free/consolidate).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    discord_mitm::cli::main()
}
