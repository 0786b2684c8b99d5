//! `reasonbank-bench`: benchmarks of reasonbank, including comparisons with other engines.
//!
//! Kept out of the library crates (`publish = false`) so their build dependencies stay out of the
//! libraries.

use clap::{Parser, Subcommand};

mod embed;

/// Benchmarks of reasonbank.
#[derive(Parser)]
#[command(name = "reasonbank-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Embedding throughput, latency, cold start and memory, against Python fastembed.
    Embed(embed::EmbedArgs),
    /// Internal: load the default embedder, embed one text, print `ok` (for cold-start timing).
    #[command(hide = true)]
    EmbedCold(embed::ColdArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Embed(args) => embed::run(&args),
        Command::EmbedCold(args) => embed::cold(&args),
    }
}
