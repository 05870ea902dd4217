//! The `syncdeck` binary: everything is in the library; see `cli::main`.

use std::process::ExitCode;

fn main() -> ExitCode {
    syncdeck::cli::main()
}
