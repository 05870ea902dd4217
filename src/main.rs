use std::process::ExitCode;

fn main() -> ExitCode {
    syncdeck::cli::main()
}
