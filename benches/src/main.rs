//! `reasonbank-bench`: measures reasonbank and, in the same run, the peer a user would pick
//! instead, and prints medians and same-run ratios (one JSON object per line with `--json`).
//!
//! Kept out of the library crates (`publish = false`) so the peers' build dependencies stay
//! out of the libraries.

mod data;
mod embed;
mod memory;
mod quality;
mod quality_sweep;
mod sync;
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
    /// Internal: open an existing vector shard, answer one query, print timings (cold open).
    #[command(hide = true)]
    VectorsCold(vectors::ColdArgs),
    /// AgentMemory end to end: remember throughput, recall latency with query embedding.
    Memory(memory::Args),
    /// Recall quality on real text (document retrieval, conversational memory): FTS5, cosine,
    /// naive RRF and each recall mode, recall@1/5/10, MRR and p50 latency in one run.
    Quality(quality::Args),
    /// QUIC shard sync between two peers on loopback: fresh handshake and 0-RTT reconnect.
    Sync(sync::Args),
    /// Embedding throughput, latency, cold start and memory, against Python fastembed.
    Embed(embed::EmbedArgs),
    /// Internal: load the default embedder, embed one text, print `ok` (for cold-start timing).
    #[command(hide = true)]
    EmbedCold(embed::ColdArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Vectors(a) => vectors::run(&a),
        Cmd::VectorsCold(a) => vectors::cold(&a),
        Cmd::Memory(a) => memory::run(&a),
        Cmd::Quality(a) => quality::run(&a),
        Cmd::Sync(a) => sync::run(&a),
        Cmd::Embed(a) => embed::run(&a),
        Cmd::EmbedCold(a) => embed::cold(&a),
    }
}
