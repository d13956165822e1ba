fn main() -> std::process::ExitCode {
    discord_mitm::cli::main()
}
