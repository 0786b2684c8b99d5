//! `reasonbank-bench`: measures reasonbank and, in the same run, the peer a user would pick
//! instead, and prints medians and same-run ratios (one JSON object per line with `--json`).

mod data;
mod vectors;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "reasonbank-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Vector insert and search: reasonbank shards vs sqlite-vec (vec0) on the same data.
    Vectors(vectors::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Vectors(a) => vectors::run(&a),
    }
}
