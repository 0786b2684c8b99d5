//! The `reasonbank` binary: the command line of [`reasonbank::cli`], which the npm package's
//! `reasonbank` bin runs too.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(reasonbank::cli::run(std::env::args_os()))
}
