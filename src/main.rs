//! The `ringside` binary: everything lives in the library; see `ringside --help`.

fn main() -> std::process::ExitCode {
    ringside::cli::main()
}
