// mimalloc: the recorder thread frees what the proxy's threads allocated, which glibc's malloc
// handles slowly (measured: a third of the recorder's time in free/consolidate).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    discord_mitm::cli::main()
}
