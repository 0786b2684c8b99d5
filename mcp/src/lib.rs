//! `reasonbank-mcp`: reasonbank agent memory as an MCP server over stdio (a library, so that
//! the `reasonbank-mcp` binary and the npm and Python packages run the same server).
//!
//! An MCP client (Claude Code, an IDE, the MCP inspector) starts this binary and talks
//! JSON-RPC on its stdin/stdout. Tools: `memory_remember`, `memory_recall`, `memory_learn`,
//! `memory_feedback`, `memory_find_patterns`, `memory_consolidate`,
//! `memory_synthesize_context` on an agent's memory, and `vector_shard_create`,
//! `vector_insert`, `vector_search`, `vector_shard_stats` for raw vectors embedded elsewhere.
//!
//! ```text
//! reasonbank-mcp [--root DIR] [--agent ID] [--model NAME] [--llm-url URL --llm-model MODEL]
//!                [--rerank-url URL --rerank-model MODEL]
//! ```
//!
//! `--root` (env `REASONBANK_ROOT`; default `$XDG_DATA_HOME/reasonbank`, else
//! `~/.local/share/reasonbank`) is the directory of shards, shared with the `reasonbank` CLI;
//! `--agent` (env `REASONBANK_AGENT`; default `default`) is the agent the server is started
//! for: its shard is created at startup if missing, and the tools use its memory when a call
//! names none (reads of other agents without a shard are refused, never create one);
//! `--llm-url` with `--llm-model` (env `REASONBANK_LLM_URL`, `REASONBANK_LLM_MODEL`; key from
//! `REASONBANK_LLM_API_KEY`) makes `memory_learn` judge and distill with that LLM;
//! `--rerank-url` with `--rerank-model` (env `REASONBANK_RERANK_URL`, `REASONBANK_RERANK_MODEL`;
//! key from `REASONBANK_RERANK_API_KEY`) gives `memory_recall` its `rerank` option and lets
//! the reranker order `memory_find_patterns`' and `memory_synthesize_context`'s candidates.
//! `--model` (env `REASONBANK_MODEL`) picks the local embedding model, all-MiniLM-L6-v2 unless
//! set, or bge-small-en-v1.5; a shard refuses a model other than the one it was created with.
//! The embedding model is loaded once at startup (fetched and sha256-checked on first use like the
//! CLI's `reasonbank models fetch`); if it cannot be had, the server says why on stderr and
//! exits with status 1 before speaking the protocol.
//!
//! Standard output carries only the protocol; diagnostics go to standard error: errors that end
//! the process always, logs (`tracing`, rmcp's too) as `RUST_LOG` says (targets and levels,
//! e.g. `info` or `warn,rmcp=debug`; default: warnings). Every request is answered: a line
//! that is not JSON, not UTF-8 or not a request gets a JSON-RPC error with its id. When the
//! client closes stdin (or goes away mid-call) the server exits with status 0.

mod convert;
mod describe;
mod params;
mod server;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use reasonbank::embedders::LocalModel;
use reasonbank::embedders::provision::ProvisionOptions;
use reasonbank::memory::ShardId;
use rmcp::ServiceExt;
use rmcp::service::ServerInitializeError;

/// How long shutdown waits for blocking work in flight (a SQLite commit, an embedding) after
/// the client went away.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The server's command line.
#[derive(Parser, Debug)]
#[command(
    name = "reasonbank-mcp",
    version,
    about = "reasonbank agent memory as an MCP server over stdio"
)]
pub struct Args {
    /// Directory of shards (default: $XDG_DATA_HOME/reasonbank or ~/.local/share/reasonbank).
    #[arg(long, env = "REASONBANK_ROOT")]
    pub root: Option<PathBuf>,
    /// The agent the server is started for: its shard is created at startup if missing, and
    /// tools act on its memory when a call names no agent. Reads of another agent that has no
    /// shard are refused (tool errors), never create one.
    #[arg(long, env = "REASONBANK_AGENT", default_value = reasonbank::DEFAULT_AGENT)]
    pub agent: String,
    /// An OpenAI-compatible chat API for `memory_learn`'s LLM judge and distiller, up to and
    /// including `/v1` (e.g. llama.cpp's server: http://localhost:8080/v1); needs --llm-model.
    /// The API key, if any, comes from REASONBANK_LLM_API_KEY.
    #[arg(long, env = "REASONBANK_LLM_URL", requires = "llm_model")]
    pub llm_url: Option<String>,
    /// The model the LLM API serves (with --llm-url).
    #[arg(long, env = "REASONBANK_LLM_MODEL", requires = "llm_url")]
    pub llm_model: Option<String>,
    /// A rerank API (`POST {url}/rerank`: llama.cpp's server with --reranking, vLLM, Jina,
    /// Cohere), up to and including `/v1`; needs --rerank-model. `memory_recall`'s `rerank`
    /// uses it, and `memory_find_patterns` and `memory_synthesize_context` let it order their
    /// candidates. The API key, if any, comes from REASONBANK_RERANK_API_KEY.
    #[arg(long, env = "REASONBANK_RERANK_URL", requires = "rerank_model")]
    pub rerank_url: Option<String>,
    /// The reranking model the rerank API serves (with --rerank-url).
    #[arg(long, env = "REASONBANK_RERANK_MODEL", requires = "rerank_url")]
    pub rerank_model: Option<String>,
    /// The local embedding model: all-MiniLM-L6-v2 (default, fastest) or bge-small-en-v1.5
    /// (recalls documents better, conversations worse; queries ~20% slower). A shard keeps
    /// the model it was created with and refuses another.
    #[arg(long, env = "REASONBANK_MODEL", default_value = "all-MiniLM-L6-v2")]
    pub model: LocalModel,
}

/// The models behind HTTP APIs the server is started with: the LLM judge and distiller
/// (`--llm-url`, `--llm-model`) and the reranker (`--rerank-url`, `--rerank-model`), each a
/// base URL and a model.
#[derive(Clone, Debug, Default)]
pub(crate) struct RemoteModels {
    pub llm: Option<(String, String)>,
    pub rerank: Option<(String, String)>,
}

/// Runs the server as its own process would: parses `argv` (with the program name first),
/// serves one session on stdio on a new runtime, and returns the exit status (0 when the
/// client closed the session, 2 for bad usage, 1 for errors, which go to stderr).
pub fn main_with<I, T>(argv: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(2);
        }
    };
    init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("reasonbank-mcp: error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let code = match rt.block_on(run(args)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("reasonbank-mcp: error: {e:#}");
            1
        }
    };
    // A read of stdin cannot be cancelled and a blocking task cannot be interrupted: bound the
    // wait instead of hanging after the client is gone.
    rt.shutdown_timeout(SHUTDOWN_GRACE);
    code
}

/// Sends `tracing` events (this crate's and rmcp's) to stderr, filtered by `RUST_LOG`: targets
/// and levels such as `debug` or `warn,rmcp=debug,reasonbank_mcp=info`; default warnings. A
/// host process that installed its own subscriber first keeps it.
fn init_logging() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let warnings = || Targets::new().with_default(LevelFilter::WARN);
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => s.parse::<Targets>().unwrap_or_else(|e| {
            eprintln!(
                "reasonbank-mcp: RUST_LOG={s:?} is not a list of [target=]level directives \
                 ({e}); logging warnings"
            );
            warnings()
        }),
        _ => warnings(),
    };
    // Stdout carries the protocol: logs go to stderr only.
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .try_init();
}

/// Serves one MCP session on this process's stdin/stdout on the current tokio runtime, until
/// the client closes it.
///
/// # Errors
/// The root or agent is invalid, the embedding model cannot be loaded, or the MCP
/// handshake fails; diagnostics go to stderr, never to stdout.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let root = match args.root {
        Some(r) => r,
        None => reasonbank::default_root()?,
    };
    let agent = ShardId::new(args.agent).context("--agent")?;
    let mut provision = ProvisionOptions::new();
    provision.local_model(args.model);
    let embedder =
        tokio::task::spawn_blocking(move || reasonbank::embedders::default_embedder(&provision))
            .await?
            .with_context(|| format!("loading the embedding model {}", args.model))?;
    let models = RemoteModels {
        llm: args.llm_url.clone().zip(args.llm_model.clone()),
        rerank: args.rerank_url.clone().zip(args.rerank_model.clone()),
    };
    let server =
        server::Server::open(root.clone(), agent.clone(), Arc::clone(&embedder), models).await?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        agent = agent.as_str(),
        root = %root.display(),
        model = embedder.model_id(),
        dimensions = embedder.dimensions(),
        "serving MCP on stdio"
    );
    let service = match server
        .serve(wire::LineTransport::new(
            tokio::io::stdin(),
            tokio::io::stdout(),
        ))
        .await
    {
        Ok(s) => s,
        // The client went away before finishing the handshake: nothing to serve.
        Err(ServerInitializeError::ConnectionClosed(why)) => {
            tracing::info!("client closed the connection during initialization ({why})");
            return Ok(());
        }
        Err(e) => return Err(e).context("MCP initialization"),
    };
    let reason = service.waiting().await?;
    tracing::info!("session ended ({reason:?}); exiting");
    Ok(())
}
