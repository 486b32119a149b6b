//! The `parley` binary.

fn main() -> std::process::ExitCode {
    parley_server::cli::main()
}
