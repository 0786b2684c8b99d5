//! The `reasonbank-mcp` binary: the server of the `reasonbank_mcp` library on stdio.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(reasonbank_mcp::main_with(std::env::args_os()))
}
