//! `reasonbank-mcp`: reasonbank agent memory as an MCP server over stdio.
//!
//! An MCP client (Claude Code, an IDE, the MCP inspector) starts this binary and talks
//! JSON-RPC on its stdin/stdout. Tools: `memory_remember`, `memory_recall`, `memory_learn`,
//! `memory_feedback`, `memory_find_patterns`, `memory_consolidate`,
//! `memory_synthesize_context` on an agent's memory, and `vector_shard_create`,
//! `vector_insert`, `vector_search`, `vector_shard_stats` for raw vectors embedded elsewhere.
//!
//! ```text
//! reasonbank-mcp [--root DIR] [--agent ID]
//! ```
//!
//! `--root` (env `REASONBANK_ROOT`; default `$XDG_DATA_HOME/reasonbank`, else
//! `~/.local/share/reasonbank`) is the directory of shards, shared with the `reasonbank` CLI;
//! `--agent` (env `REASONBANK_AGENT`; default `default`) is the agent whose memory the tools use
//! when a call names none. The embedding model is loaded once at startup (fetched and
//! sha256-checked on first use like the CLI's `reasonbank models fetch`); if it cannot be had,
//! the server says why on stderr and exits with status 1 before speaking the protocol.
//!
//! Standard output carries only the protocol; diagnostics go to standard error. When the client
//! closes stdin (or goes away mid-call) the server exits with status 0.

mod params;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use reasonbank::embedders::provision::ProvisionOptions;
use reasonbank::memory::ShardId;
use rmcp::ServiceExt;
use rmcp::service::ServerInitializeError;

/// How long shutdown waits for blocking work in flight (a SQLite commit, an embedding) after
/// the client went away.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(
    name = "reasonbank-mcp",
    version,
    about = "reasonbank agent memory as an MCP server over stdio"
)]
struct Args {
    /// Directory of shards (default: $XDG_DATA_HOME/reasonbank or ~/.local/share/reasonbank).
    #[arg(long, env = "REASONBANK_ROOT")]
    root: Option<PathBuf>,
    /// The agent whose memory tools act on when a call names no agent.
    #[arg(long, env = "REASONBANK_AGENT", default_value = reasonbank::DEFAULT_AGENT)]
    agent: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("reasonbank-mcp: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reasonbank-mcp: error: {e:#}");
            ExitCode::FAILURE
        }
    };
    // A read of stdin cannot be cancelled and a blocking task cannot be interrupted: bound the
    // wait instead of hanging after the client is gone.
    rt.shutdown_timeout(SHUTDOWN_GRACE);
    code
}

fn default_root() -> anyhow::Result<PathBuf> {
    let var = |n: &str| {
        std::env::var_os(n)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("XDG_DATA_HOME") {
        return Ok(d.join("reasonbank"));
    }
    if let Some(h) = var("HOME") {
        return Ok(h.join(".local/share/reasonbank"));
    }
    bail!("no shard root: pass --root DIR or set REASONBANK_ROOT")
}

async fn run(args: Args) -> anyhow::Result<()> {
    let root = match args.root {
        Some(r) => r,
        None => default_root()?,
    };
    let agent = ShardId::new(args.agent).context("--agent")?;
    let embedder = tokio::task::spawn_blocking(|| {
        reasonbank::embedders::default_embedder(&ProvisionOptions::new())
    })
    .await?
    .context("loading the embedding model")?;
    let server = server::Server::open(root.clone(), agent.clone(), Arc::clone(&embedder)).await?;
    eprintln!(
        "reasonbank-mcp {}: agent {:?} in {}, model {} ({}-d); serving MCP on stdio",
        env!("CARGO_PKG_VERSION"),
        agent.as_str(),
        root.display(),
        embedder.model_id(),
        embedder.dimensions()
    );
    let service = match server.serve(rmcp::transport::stdio()).await {
        Ok(s) => s,
        // The client went away before finishing the handshake: nothing to serve.
        Err(ServerInitializeError::ConnectionClosed(why)) => {
            eprintln!("reasonbank-mcp: client closed the connection during initialization ({why})");
            return Ok(());
        }
        Err(e) => return Err(e).context("MCP initialization"),
    };
    let reason = service.waiting().await?;
    eprintln!("reasonbank-mcp: session ended ({reason:?}); exiting");
    Ok(())
}
