//! The `reasonbank` command line as a library: [`run`] parses the arguments, runs one
//! command and returns its exit status. The Rust binary (`src/bin/reasonbank.rs`) and the npm
//! package's `reasonbank` bin (through the Node addon) both call it, so there is one CLI.
//!
//! Every command takes `--root DIR` (env `REASONBANK_ROOT`; default `$XDG_DATA_HOME/reasonbank`
//! or `~/.local/share/reasonbank`), `--agent ID` (env `REASONBANK_AGENT`; default `default`),
//! `--json` for machine-readable output (one JSON document per line) and `-v` for logs on
//! standard error (`RUST_LOG` too; default: warnings).
//!
//! Exit status ([`exit`]): 0 success; 1 an error while doing the work (the message says what
//! and how to fix it, with its `RB_*` code); 2 bad usage, including a bad value of an argument
//! or of the input it names, and nothing was done; 3 the memory, agent or root asked about
//! does not exist. Commands that only read never create an agent or a root.
//!
//! One file per job: `args` (the grammar), `memory` (remember, recall, get, update,
//! forget), `learning` (learn, feedback, consolidate, patterns, synthesize), `backup` (export
//! and import), `peer` (sync, keygen, serve), `admin` (stats, models).

/// `println!` that returns a [`StdoutError`] instead of panicking when standard output is
/// closed (`reasonbank recall q | head -1`) or full (`> /dev/full`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err($crate::cli::StdoutError)?
    }};
}

mod admin;
mod args;
mod backup;
mod learning;
mod memory;
mod peer;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use crate::embedders::LocalModel;
use crate::error::code;
use crate::memory::{ShardId, Store, StoreOptions};
use crate::{AgentMemory, Error};
use args::{Cli, Cmd};

/// The exit statuses of [`run`].
pub mod exit {
    /// The command did what it was asked.
    pub const OK: u8 = 0;
    /// An error while doing the work: storage, model, network, a denied sync, a damaged file.
    pub const ERROR: u8 = 1;
    /// Bad usage: an unknown command or flag, or a bad value (an invalid id, filter, mode,
    /// `--k 0`, malformed JSON or trajectory, empty text). Nothing was done.
    pub const USAGE: u8 = 2;
    /// The memory, agent or root asked about does not exist (nothing was created).
    pub const NOT_FOUND: u8 = 3;
}

/// Runs the `reasonbank` command line with `argv` (the program name first) on a runtime of
/// its own, printing to standard output and error, and returns the exit status ([`exit`]).
///
/// ```no_run
/// let status = reasonbank::cli::run(["reasonbank", "--agent", "coder", "stats"]);
/// std::process::exit(i32::from(status));
/// ```
pub fn run<I, T>(argv: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            // Help and version print to stdout and succeed; everything else is usage.
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    // `models fetch` shows its progress (what is present, what is downloaded) by default.
    let progress = matches!(cli.cmd, Cmd::Models(args::Models::Fetch(_)));
    init_logging(cli.verbose, progress);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::ERROR;
        }
    };
    let writes = cli.cmd.writes();
    let agent = cli.agent.clone();
    match rt.block_on(dispatch(cli)) {
        Ok(()) => exit::OK,
        Err(e) => report(&e, writes, &agent),
    }
}

/// Prints `e` and its causes with its code (and a hint where one helps), and returns its exit
/// status.
fn report(e: &anyhow::Error, writes: bool, agent: &ShardId) -> u8 {
    if let Some(StdoutError(io)) = e.downcast_ref::<StdoutError>() {
        // The reader went away (`| head`): what it wanted was printed; stop quietly.
        if io.kind() == std::io::ErrorKind::BrokenPipe {
            return exit::OK;
        }
        if writes {
            eprintln!("the command's changes were committed; only its output was lost");
        }
    }
    let (status, code) = classify(e);
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if let Some(code) = code {
        eprintln!("  code: {code}");
    }
    if let Some(hint) = model_hint(e, agent) {
        eprintln!("  hint: {hint}");
    }
    status
}

/// For a shard written by another local model: the `--model` that opens it when it is the
/// agent's own shard; when it is another agent's (`synthesize --shard`), that no one flag
/// opens both.
fn model_hint(e: &anyhow::Error, agent: &ShardId) -> Option<String> {
    let (shard, found) = e.chain().find_map(crate::error::stored_model)?;
    let model = LocalModel::from_model_id(found)?;
    Some(if shard.as_str() == agent.as_str() {
        format!(
            "that shard was written with --model {model}; pass it (or set REASONBANK_MODEL={model})"
        )
    } else {
        format!(
            "agent {shard}'s shard was written with --model {model}; a command reads the shards \
             of one model only"
        )
    })
}

/// The exit status and `RB_*` code of a failed command.
fn classify(e: &anyhow::Error) -> (u8, Option<&'static str>) {
    for cause in e.chain() {
        if let Some(f) = cause.downcast_ref::<Fail>() {
            return match f {
                Fail::Usage(_) => (exit::USAGE, Some(code::INVALID_INPUT)),
                Fail::NotFound(_) => (exit::NOT_FOUND, Some(code::NOT_FOUND)),
            };
        }
        if cause.downcast_ref::<backup::InvalidLines>().is_some() {
            return (exit::USAGE, Some(code::INVALID_INPUT));
        }
        if let Some(Error::IdentityFile { source, .. }) = cause.downcast_ref::<Error>() {
            // `keygen --show` or `sync` without an identity: what was asked for is missing.
            let status = if source.kind() == std::io::ErrorKind::NotFound {
                exit::NOT_FOUND
            } else {
                exit::ERROR
            };
            return (status, Some(code::INVALID_INPUT));
        }
        if let Some(c) = crate::error::code_of(cause) {
            let status = match c {
                code::NOT_FOUND | code::NO_SUCH_SHARD => exit::NOT_FOUND,
                code::INVALID_INPUT
                | code::INVALID_ID
                | code::INVALID_FILTER
                | code::INVALID_VECTOR
                | code::DIMENSION_MISMATCH
                | code::TOO_LARGE
                | code::EMPTY_TEXT => exit::USAGE,
                _ => exit::ERROR,
            };
            return (status, Some(c));
        }
    }
    (exit::ERROR, None)
}

/// A failure the command line reports with a specific exit status.
#[derive(Debug)]
enum Fail {
    /// A bad value in the arguments or the input they name (exit 2).
    Usage(String),
    /// What was asked about does not exist (exit 3).
    NotFound(String),
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::Usage(m) | Fail::NotFound(m) => f.write_str(m),
        }
    }
}
impl std::error::Error for Fail {}

/// Writing to standard output failed (closed pipe, full disk). Every command prints only after
/// its changes are committed, so what failed is the report, never the work.
#[derive(Debug)]
pub(crate) struct StdoutError(pub(crate) std::io::Error);
impl std::fmt::Display for StdoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "writing to standard output failed: {}", self.0)
    }
}
impl std::error::Error for StdoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Logs to standard error: `RUST_LOG` if set, else info with `-v` (the model's cold-load
/// time, the hub's connections, ...), else warnings, plus the model files' progress with
/// `progress`.
fn init_logging(verbose: bool, progress: bool) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let default = || {
        let t = Targets::new().with_default(if verbose {
            LevelFilter::INFO
        } else {
            LevelFilter::WARN
        });
        if progress {
            t.with_target("reasonbank_embedders::provision", LevelFilter::INFO)
        } else {
            t
        }
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => s.parse::<Targets>().unwrap_or_else(|e| {
            eprintln!(
                "warning: RUST_LOG={s:?} is not a list of [target=]level directives ({e}); \
                 using the default"
            );
            default()
        }),
        _ => default(),
    };
    // A host process (the Node addon) may already have set one; keep it.
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_filter(filter),
        )
        .try_init();
}

impl Cmd {
    /// Whether the command changes the agent (so a lost report must say it committed).
    fn writes(&self) -> bool {
        matches!(
            self,
            Cmd::Remember { .. }
                | Cmd::Update { .. }
                | Cmd::Forget { .. }
                | Cmd::Learn { .. }
                | Cmd::Feedback { .. }
                | Cmd::Consolidate(_)
                | Cmd::Import { .. }
        )
    }
}

/// What every command runs against: the root and the agent.
struct Ctx {
    root: PathBuf,
    agent: ShardId,
    json: bool,
    /// The LLM chat API (`--llm-url`, `--llm-model`), if configured.
    llm: Option<(String, String)>,
    /// The rerank API (`--rerank-url`, `--rerank-model`), if configured.
    rerank: Option<(String, String)>,
    /// The local embedding model (`--model`).
    model: LocalModel,
}

impl Ctx {
    /// The agent's memory, creating the root and the agent if missing (for commands that
    /// write); says so on standard error when it creates the root.
    async fn create(&self) -> anyhow::Result<AgentMemory> {
        if !self.root.exists() {
            std::fs::create_dir_all(&self.root)
                .with_context(|| format!("creating the root {}", self.root.display()))?;
            eprintln!("created {}", self.root.display());
        }
        self.open_memory().await
    }

    /// The memory of an agent that exists: [`Fail::NotFound`] if the root or the agent's
    /// shard does not (nothing is created).
    async fn existing(&self) -> anyhow::Result<AgentMemory> {
        self.require_agent(&self.agent)?;
        self.open_memory().await
    }

    async fn open_memory(&self) -> anyhow::Result<AgentMemory> {
        let mut b = AgentMemory::builder(&self.root);
        b.agent(self.agent.to_string())
            // Commands that do not embed (feedback, consolidate) never load the model.
            .load_model_on_first_use(true)
            .local_model(self.model);
        if let Some((url, model)) = &self.llm {
            b.llm(url, model)?;
        }
        if let Some((url, model)) = &self.rerank {
            b.rerank_server(url, model)?;
        }
        b.build()
            .await
            .with_context(|| format!("opening agent {} in {}", self.agent, self.root.display()))
    }

    /// [`Fail::NotFound`] unless the root and `agent`'s shard exist.
    fn require_agent(&self, agent: &ShardId) -> anyhow::Result<()> {
        self.require_in(&self.existing_store()?, agent)
    }

    /// [`Fail::NotFound`] unless `agent` has a shard in `store` (the root's).
    fn require_in(&self, store: &Store, agent: &ShardId) -> anyhow::Result<()> {
        if !store.exists(agent) {
            return Err(Fail::NotFound(format!(
                "agent {agent} has no memories in {} (commands that write create it)",
                self.root.display()
            ))
            .into());
        }
        Ok(())
    }

    /// The store at the root, opened so that shards are never created implicitly;
    /// [`Fail::NotFound`] if the root does not exist.
    fn existing_store(&self) -> anyhow::Result<Store> {
        if !self.root.is_dir() {
            return Err(Fail::NotFound(format!(
                "{} does not exist (commands that write create it; --root or REASONBANK_ROOT \
                 choose another)",
                self.root.display()
            ))
            .into());
        }
        let mut o = StoreOptions::new();
        o.shard_options_mut().create(false);
        Ok(Store::open(&self.root, o).map_err(Error::from)?)
    }

    /// An existing agent's shard, opened without the embedder (for commands that do not embed).
    fn existing_shard(&self, agent: &ShardId) -> anyhow::Result<Arc<crate::memory::Shard>> {
        let store = self.existing_store()?;
        self.require_in(&store, agent)?;
        Ok(store.shard(agent).map_err(Error::from)?)
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let root = match &cli.root {
        Some(r) => r.clone(),
        None => crate::default_root()?,
    };
    let ctx = Ctx {
        root,
        agent: cli.agent,
        json: cli.json,
        llm: cli.llm_url.zip(cli.llm_model),
        rerank: cli.rerank_url.zip(cli.rerank_model),
        model: cli.model,
    };
    match cli.cmd {
        Cmd::Remember {
            text,
            meta,
            kind,
            namespace,
            at,
        } => {
            let m = crate::Memory::from_parts(text, meta, kind, namespace).created_at(at);
            memory::remember(&ctx, m).await
        }
        Cmd::Recall(a) => memory::recall(&ctx, a).await,
        Cmd::Get { id } => memory::get(&ctx, id),
        Cmd::Update { id, text, meta } => memory::update(&ctx, id, text, meta).await,
        Cmd::Forget { id } => memory::forget(&ctx, id),
        Cmd::Learn { file, contrastive } => learning::learn(&ctx, &file, contrastive).await,
        Cmd::Feedback { id, verdict } => learning::feedback(&ctx, id, verdict).await,
        Cmd::Consolidate(a) => learning::consolidate(&ctx, a).await,
        Cmd::Contradictions => learning::contradictions(&ctx).await,
        Cmd::Patterns { task, k, threshold } => learning::patterns(&ctx, &task, k, threshold).await,
        Cmd::Synthesize {
            task,
            budget,
            shards,
        } => learning::synthesize(&ctx, &task, budget, shards).await,
        Cmd::Import {
            file,
            batch,
            skip_invalid,
        } => {
            // Every line is checked before the agent is opened (or created) or the model loaded.
            let plan = backup::Plan::read(&file, batch as usize, skip_invalid, ctx.json)?;
            backup::import(&ctx.create().await?, plan, ctx.json).await
        }
        Cmd::Export { file, tombstones } => backup::export(
            &*ctx.existing_shard(&ctx.agent)?,
            ctx.agent.as_str(),
            file.as_deref(),
            tombstones,
            ctx.json,
        ),
        Cmd::Stats { all } => admin::stats(&ctx, all),
        Cmd::Sync(a) => peer::sync(&ctx, a).await,
        Cmd::Serve { config } => peer::serve(&ctx, &config).await,
        Cmd::Models(m) => admin::models(m, ctx.model, ctx.json),
    }
}

/// The contents of `file`, or of standard input for `-`.
fn read_input(file: &Path) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        Ok(std::io::read_to_string(std::io::stdin()).context("reading standard input")?)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    }
}
