//! The `reasonbank` command line: remember, recall and manage agent memories.
//!
//! Every command takes `--root DIR` (env `REASONBANK_ROOT`; default `$XDG_DATA_HOME/reasonbank`
//! or `~/.local/share/reasonbank`) and `--agent ID` (env `REASONBANK_AGENT`; default
//! `default`), and `--json` for machine-readable output (one JSON document per line).
//!
//! Exit status: 0 success; 1 an error (the message says what and how to fix it); 2 bad usage;
//! 3 the requested memory does not exist.

// The crate root is `src/bin/reasonbank.rs`; its modules live in `src/bin/reasonbank/` so that
// cargo does not take them for binaries of their own.
/// `println!` that returns a [`StdoutError`] instead of panicking when standard output is
/// closed (`reasonbank recall q | head -1`) or full (`> /dev/full`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err($crate::StdoutError)?
    }};
}

#[path = "reasonbank/backup.rs"]
mod backup;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use reasonbank::embedders::provision::{self, ModelFiles, ProvisionOptions};
use reasonbank::memory::{Filter, RecordId, SearchMode, ShardId, Store, StoreOptions};
use reasonbank::reasoning::{ConsolidateOptions, Feedback, Trajectory};
use reasonbank::sync::{Fingerprint, SyncServer};
use reasonbank::{
    AgentMemory, Identity, Memory, PeerGrant, RecallMode, RecallOptions, ShardSync, SyncDirection,
    SyncRequest, sync_store,
};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(name = "reasonbank", version, about = "Agent memory that learns")]
struct Cli {
    /// Directory of shards.
    #[arg(long, global = true, env = "REASONBANK_ROOT")]
    root: Option<PathBuf>,
    /// The agent (its shard id).
    #[arg(long, global = true, env = "REASONBANK_AGENT", default_value = reasonbank::DEFAULT_AGENT)]
    agent: String,
    /// Machine-readable output: one JSON document per line.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Remember a text.
    Remember {
        /// The text.
        text: String,
        /// Metadata, a JSON object.
        #[arg(long)]
        meta: Option<String>,
        /// Record kind (default `memory`).
        #[arg(long)]
        kind: Option<String>,
        /// Namespace.
        #[arg(long)]
        namespace: Option<String>,
    },
    /// Recall the memories that best match a query.
    Recall {
        /// The query.
        query: String,
        /// Number of results.
        #[arg(long, default_value_t = 5)]
        k: usize,
        /// Minimum cosine similarity in [-1, 1] (negative values too: `--threshold -0.5`).
        #[arg(long, allow_negative_numbers = true)]
        threshold: Option<f32>,
        /// Metadata filter as JSON, e.g. '{"eq":{"field":"topic","value":"http"}}'.
        #[arg(long)]
        filter: Option<String>,
        /// hybrid (default), vector or text.
        #[arg(long, default_value = "hybrid")]
        mode: String,
        /// Vector search: auto (default), exact, quantized (i8 scan), binary (sign-bit scan)
        /// or ann (HNSW graph).
        #[arg(long, default_value = "auto")]
        search: String,
        /// Another agent's shard to search too (repeatable).
        #[arg(long = "shard")]
        shards: Vec<String>,
        /// Only records of this kind (repeatable; default: every kind but `experience`).
        #[arg(long = "kind")]
        kinds: Vec<String>,
        /// Also return learned items that were merged into another or archived.
        #[arg(long)]
        include_inactive: bool,
    },
    /// Print one memory.
    Get {
        /// Its id.
        id: String,
    },
    /// Forget one memory (leaves a tombstone for sync).
    Forget {
        /// Its id.
        id: String,
    },
    /// Import JSONL: an `export` (rows keep their ids and stamps and are applied
    /// last-writer-wins, so importing twice changes nothing), or one object per line with
    /// `text` and optional `metadata`, `kind`, `namespace` (new memories). Every line is
    /// checked before the first write.
    Import {
        /// The file (`-` for standard input).
        file: PathBuf,
        /// Lines embedded and stored per transaction.
        #[arg(long, default_value_t = 256)]
        batch: usize,
        /// Import the valid lines and report the invalid ones (default: any invalid line
        /// stops the import before anything is written).
        #[arg(long)]
        skip_invalid: bool,
    },
    /// Export the agent as JSONL, everything needed to restore it with `import`: ids, kinds,
    /// namespaces, texts, metadata, times and stamps (format: docs/FORMAT.md).
    Export {
        /// Output file (default: standard output); written whole, then renamed into place.
        file: Option<PathBuf>,
        /// Also export tombstones (forgotten memories), so that a restore forgets them too.
        #[arg(long)]
        tombstones: bool,
    },
    /// Counts, sizes and model of the agent's shard (or every shard with --all).
    Stats {
        /// Every shard in the root.
        #[arg(long)]
        all: bool,
    },
    /// Learn from a finished task: a trajectory as JSON
    /// (`{"task", "steps": [{"action", "observation"}], "answer", "outcome"}`), or with
    /// --contrastive a JSON array of attempts at one task.
    Learn {
        /// The file (`-` for standard input).
        file: PathBuf,
        /// The file holds several attempts at one task: contrast successes and failures.
        #[arg(long)]
        contrastive: bool,
    },
    /// Tell whether a memory item helped: `success`, `failure` or a reward in [0, 1].
    Feedback {
        /// The item's id.
        id: String,
        /// success, failure, or a number in [0, 1].
        verdict: String,
    },
    /// Merge near-duplicate items, flag contradictions, decay and prune.
    Consolidate {
        /// Report what would change without writing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The memory items most useful for a task (similarity, recency, reliability).
    Patterns {
        /// The task.
        task: String,
        /// Number of items.
        #[arg(long, default_value_t = 5)]
        k: usize,
        /// Minimum cosine similarity (negative values too).
        #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
        threshold: f32,
    },
    /// A prompt-ready context block for a task, from this agent and others, within a budget.
    Synthesize {
        /// The task.
        task: String,
        /// Token budget (counted with the model's tokenizer).
        #[arg(long, default_value_t = 512)]
        budget: usize,
        /// Another agent's shard to draw from (repeatable).
        #[arg(long = "shard")]
        shards: Vec<String>,
    },
    /// Sync shards with a peer over QUIC (mutual TLS, pinned fingerprints), or `sync keygen`.
    Sync(SyncCmd),
    /// Serve the root's shards to authorized peers (a hub), as a JSON config file says.
    Serve {
        /// The config: {"listen": "ADDR:PORT", "identity": "DIR",
        /// "peers": [{"fingerprint": "HEX", "shards": ["*"], "access": "read_write"}],
        /// "reembed": false}. With "reembed": true the hub loads the embedding model and
        /// accepts text-only pushes (`sync --text-only`), re-embedding their texts.
        #[arg(long)]
        config: PathBuf,
    },
    /// Embedding model files.
    #[command(subcommand)]
    Models(Models),
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct SyncCmd {
    #[command(subcommand)]
    sub: Option<SyncSub>,
    /// The peer's address, e.g. 10.0.0.5:7700 or hub.example:7700.
    #[arg(long)]
    peer: Option<String>,
    /// The peer's certificate fingerprint (hex SHA-256, printed by its `sync keygen`).
    #[arg(long)]
    trust: Option<String>,
    /// Shard to sync (repeatable; default: --agent).
    #[arg(long = "shard")]
    shards: Vec<String>,
    /// Directory holding this side's cert.pem and key.pem (default: <root>/.sync).
    #[arg(long)]
    identity: Option<PathBuf>,
    /// Which way rows move.
    #[arg(long, value_enum, default_value_t = SyncDirection::Both)]
    direction: SyncDirection,
    /// Send text, metadata and stamps without vectors; each side re-embeds what it receives
    /// with its local model (loads the model here; the hub needs "reembed": true to accept
    /// pushes). Both sides must use the same model.
    #[arg(long)]
    text_only: bool,
}

#[derive(Subcommand)]
enum SyncSub {
    /// Create this side's key and certificate and print its fingerprint.
    Keygen {
        /// Name in the certificate.
        #[arg(long, default_value = "reasonbank")]
        name: String,
        /// Output directory (default: <root>/.sync); existing files are not overwritten.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the fingerprint of the identity already in the directory; create nothing.
        #[arg(long)]
        show: bool,
    },
}

#[derive(Subcommand)]
enum Models {
    /// Download (if missing) and verify the ONNX Runtime, model and tokenizer.
    Fetch(ModelArgs),
    /// Show the files that would be used, without downloading anything.
    Path(ModelArgs),
}

#[derive(clap::Args)]
struct ModelArgs {
    /// Cache directory (default: $REASONBANK_HOME/models, else $XDG_CACHE_HOME/reasonbank or
    /// ~/.cache/reasonbank).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

/// Exit status for "the memory asked for does not exist".
const EXIT_NOT_FOUND: u8 = 3;

/// An error that maps to a specific exit status.
#[derive(Debug)]
struct NotFound(String);
impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for NotFound {}

/// Writing to standard output failed (closed pipe, full disk). Every command prints only after
/// its changes are committed, so what failed is the report, never the work.
#[derive(Debug)]
struct StdoutError(std::io::Error);
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let writes = matches!(
        cli.cmd,
        Cmd::Remember { .. }
            | Cmd::Forget { .. }
            | Cmd::Learn { .. }
            | Cmd::Feedback { .. }
            | Cmd::Consolidate { .. }
            | Cmd::Import { .. }
    );
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(StdoutError(io)) = e.downcast_ref::<StdoutError>() {
                // The reader went away (`| head`): what it wanted was printed; stop quietly.
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
                if writes {
                    eprintln!("the command's changes were committed; only its output was lost");
                }
            }
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            if e.downcast_ref::<NotFound>().is_some() {
                ExitCode::from(EXIT_NOT_FOUND)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let root = match &cli.root {
        Some(r) => r.clone(),
        None => reasonbank::default_root()?,
    };
    let open = || async {
        AgentMemory::builder(&root)
            .agent(cli.agent.clone())
            // Commands that do not embed (feedback, consolidate) never load the model.
            .load_model_on_first_use(true)
            .build()
            .await
            .with_context(|| format!("opening agent {:?} in {}", cli.agent, root.display()))
    };
    match &cli.cmd {
        Cmd::Remember {
            text,
            meta,
            kind,
            namespace,
        } => {
            let mut m = Memory::new(text.clone()).metadata(parse_meta(meta.as_deref())?);
            if let Some(k) = kind {
                m = m.kind(k.clone());
            }
            if let Some(n) = namespace {
                m = m.namespace(n.clone());
            }
            let id = open().await?.remember_batch(vec![m]).await?[0];
            if cli.json {
                out!("{}", json!({ "id": id }));
            } else {
                out!("{id}");
            }
        }
        Cmd::Recall {
            query,
            k,
            threshold,
            filter,
            mode,
            search,
            shards,
            kinds,
            include_inactive,
        } => {
            let mut o = RecallOptions::new();
            o.kinds(kinds.clone()).include_inactive(*include_inactive);
            o.k(*k)
                .mode(mode.parse::<RecallMode>()?)
                .search_mode(search.parse::<SearchMode>().context("--search")?);
            if let Some(t) = threshold {
                o.threshold(*t);
            }
            if let Some(f) = filter {
                o.filter(f.parse::<Filter>().context("--filter")?);
            }
            let extra = shards
                .iter()
                .map(|s| ShardId::new(s.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            o.shards(extra);
            let hits = open().await?.recall(query, &o).await?;
            if cli.json {
                out!("{}", serde_json::to_string(&hits)?);
            } else if hits.is_empty() {
                out!("no memories match");
            } else {
                for h in hits {
                    let mut why = Vec::new();
                    if let Some(s) = h.why.similarity {
                        why.push(format!("cosine {s:.3}"));
                    }
                    if let Some(b) = h.why.bm25 {
                        why.push(format!("bm25 {b:.2}"));
                    }
                    out!(
                        "{:.4}  {}  [{}/{}] {}",
                        h.score,
                        h.id,
                        h.shard,
                        h.kind,
                        h.text
                    );
                    out!("        {}", why.join(", "));
                }
            }
        }
        Cmd::Get { id } => {
            let id: RecordId = id.parse()?;
            let shard = open_shard(&root, &cli.agent)?;
            let r = shard
                .get(id)?
                .ok_or_else(|| NotFound(format!("memory {id} not found in agent {}", cli.agent)))?;
            if cli.json {
                let mut v = serde_json::to_value(&r)?;
                if let Some(o) = v.as_object_mut() {
                    o.remove("embedding");
                }
                out!("{v}");
            } else {
                out!("id        {}", r.id);
                out!("kind      {}", r.kind);
                out!("namespace {}", r.namespace);
                out!("metadata  {}", Value::Object(r.metadata));
                out!("text      {}", r.text);
            }
        }
        Cmd::Forget { id } => {
            let id: RecordId = id.parse()?;
            if !open_shard(&root, &cli.agent)?.delete(id)? {
                return Err(
                    NotFound(format!("memory {id} not found in agent {}", cli.agent)).into(),
                );
            }
            if cli.json {
                out!("{}", json!({ "forgotten": id }));
            } else {
                out!("forgot {id}");
            }
        }
        Cmd::Learn { file, contrastive } => {
            let text = read_input(file)?;
            let mem = open().await?;
            let report = if *contrastive {
                let runs: Vec<Trajectory> =
                    serde_json::from_str(&text).context("expected a JSON array of trajectories")?;
                let task = runs
                    .first()
                    .map(|t| t.task.clone())
                    .context("no trajectories")?;
                mem.learn_contrastive(&task, &runs).await?
            } else {
                let t: Trajectory =
                    serde_json::from_str(&text).context("expected a trajectory as JSON")?;
                mem.learn(&t).await?
            };
            if cli.json {
                out!("{}", serde_json::to_string(&report)?);
            } else {
                for v in &report.verdicts {
                    out!("verdict: {}", serde_json::to_string(v)?);
                }
                for i in &report.items {
                    out!("learned {} {:?}: {}", i.id, i.kind, i.title);
                }
            }
        }
        Cmd::Feedback { id, verdict } => {
            let id: RecordId = id.parse()?;
            let fb = match verdict.as_str() {
                "success" => Feedback::Success,
                "failure" => Feedback::Failure,
                r => Feedback::Reward(
                    r.parse::<f32>()
                        .ok()
                        .filter(|r| (0.0..=1.0).contains(r))
                        .with_context(|| {
                            format!("verdict {r:?} is not success, failure or a reward in [0, 1]")
                        })?,
                ),
            };
            let item = open().await?.feedback(id, fb).await?;
            if cli.json {
                out!("{}", serde_json::to_string(&item)?);
            } else {
                out!(
                    "{} confidence {:.3} ({} successes, {} failures)",
                    item.id,
                    item.confidence,
                    item.successes,
                    item.failures
                );
            }
        }
        Cmd::Consolidate { dry_run } => {
            let mut o = ConsolidateOptions::new();
            o.dry_run(*dry_run);
            let r = open().await?.consolidate(&o).await?;
            if cli.json {
                out!("{}", serde_json::to_string(&r)?);
            } else {
                out!(
                    "{}examined {}, merged {}, contradictions {}, decayed {}, pruned {}, rows written {}",
                    if r.dry_run { "dry run: " } else { "" },
                    r.examined,
                    r.merges.len(),
                    r.contradictions.len(),
                    r.decayed,
                    r.pruned.len(),
                    r.written
                );
            }
        }
        Cmd::Patterns { task, k, threshold } => {
            let items = open()
                .await?
                .find_similar_patterns(task, *threshold, *k)
                .await?;
            if cli.json {
                out!("{}", serde_json::to_string(&items)?);
            } else if items.is_empty() {
                out!("no patterns match");
            } else {
                for s in items {
                    out!(
                        "{:.3}  {}  [{:?}] {} (similarity {:.3}, reliability {:.2})",
                        s.score,
                        s.item.id,
                        s.item.kind,
                        s.item.title,
                        s.similarity,
                        s.reliability
                    );
                }
            }
        }
        Cmd::Synthesize {
            task,
            budget,
            shards,
        } => {
            let others = shards
                .iter()
                .map(|s| ShardId::new(s.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            let ctx = open()
                .await?
                .synthesize_context(task, &others, *budget)
                .await?;
            if cli.json {
                out!("{}", serde_json::to_string(&ctx)?);
            } else {
                out!("{}", ctx.text);
                eprintln!(
                    "({} of {} tokens, {} items)",
                    ctx.tokens_used,
                    ctx.token_budget,
                    ctx.items.len()
                );
            }
        }
        Cmd::Import {
            file,
            batch,
            skip_invalid,
        } => {
            // Every line is checked before the agent is opened (or created) or the model loaded.
            let plan = backup::Plan::read(file, *batch, *skip_invalid, cli.json)?;
            backup::import(&open().await?, plan, cli.json).await?;
        }
        Cmd::Export { file, tombstones } => backup::export(
            &*open_shard(&root, &cli.agent)?,
            &cli.agent,
            file.as_deref(),
            *tombstones,
            cli.json,
        )?,
        Cmd::Stats { all } => stats(&root, &cli.agent, *all, cli.json)?,
        Cmd::Sync(c) => sync_cmd(&root, &cli.agent, c, cli.json).await?,
        Cmd::Serve { config } => serve(&root, config, cli.json).await?,
        Cmd::Models(m) => {
            let (a, fetch) = match m {
                Models::Fetch(a) => (a, true),
                Models::Path(a) => (a, false),
            };
            let mut opts = ProvisionOptions::new();
            if let Some(d) = &a.cache_dir {
                opts.cache_dir(d);
            }
            let files = if fetch {
                provision::fetch(&opts)?
            } else {
                opts.allow_fetch(false);
                provision::resolve(&opts)?
            };
            print_files(&files, cli.json)?;
        }
    }
    Ok(())
}

async fn sync_cmd(
    root: &std::path::Path,
    agent: &str,
    c: &SyncCmd,
    json_out: bool,
) -> anyhow::Result<()> {
    let dir = c
        .identity
        .clone()
        .unwrap_or_else(|| Identity::default_dir(root));
    if let Some(SyncSub::Keygen { name, out, show }) = &c.sub {
        let out = out.clone().unwrap_or(dir);
        if *show {
            let fp = Identity::load(&out)?.fingerprint()?;
            if json_out {
                out!("{}", json!({ "fingerprint": fp.to_string(), "dir": out }));
            } else {
                out!("{fp}");
            }
            return Ok(());
        }
        let identity = Identity::generate(name)?;
        let (cert_path, key_path) = identity.save(&out)?;
        let fp = identity.fingerprint()?;
        if json_out {
            out!("{}", json!({ "fingerprint": fp.to_string(), "dir": out }));
        } else {
            out!("{fp}");
            eprintln!("wrote {} and {}", cert_path.display(), key_path.display());
        }
        return Ok(());
    }
    let peer = c
        .peer
        .clone()
        .context("--peer ADDR is required (or use `sync keygen`)")?;
    let trust: Fingerprint = c
        .trust
        .as_deref()
        .context("--trust FINGERPRINT is required: the peer's certificate fingerprint")?
        .parse()?;
    let identity = Identity::load(&dir)?;
    let ids: Vec<ShardId> = if c.shards.is_empty() {
        vec![ShardId::new(agent)?]
    } else {
        c.shards
            .iter()
            .map(|s| ShardId::new(s.clone()))
            .collect::<Result<_, _>>()?
    };
    let mut request = SyncRequest::new(peer, trust);
    request
        .direction(c.direction)
        .shards(ids)
        .text_only(c.text_only);
    let reembed = if c.text_only {
        Some(load_embedder().await?)
    } else {
        None
    };
    let outcomes = sync_store(open_store_for_sync(root)?, &request, &identity, reembed).await?;
    let mut failed = None;
    for ShardSync { shard: id, result } in outcomes {
        match result {
            Ok(r) => {
                if json_out {
                    out!("{}", reasonbank::report_json(&id, &r));
                } else {
                    out!(
                        "{id}: sent {}, received {}, applied {} ({} bytes on the wire, {:.0?})",
                        r.changes_sent,
                        r.changes_received,
                        r.changes_applied,
                        r.bytes_on_wire(),
                        r.elapsed
                    );
                }
            }
            Err(e) => {
                eprintln!("{id}: {e}");
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) => Err(anyhow::Error::new(e).context("a shard failed to sync")),
        None => Ok(()),
    }
}

/// The default embedding model, to re-embed text-only sync (the model of
/// `open_store_for_sync`'s shards).
async fn load_embedder() -> anyhow::Result<std::sync::Arc<dyn reasonbank::embedders::Embedder>> {
    tokio::task::spawn_blocking(
        || reasonbank::embedders::default_embedder(&ProvisionOptions::new()),
    )
    .await?
    .context("loading the embedding model to re-embed text-only sync")
}

/// The store sync writes into: shards that do not exist yet take the default embedder's
/// dimensions and model id, so a synced shard is immediately usable by `AgentMemory`.
fn open_store_for_sync(root: &std::path::Path) -> anyhow::Result<std::sync::Arc<Store>> {
    let mut o = StoreOptions::new();
    o.shard_options_mut()
        .dimensions(reasonbank::embedders::DEFAULT_DIMENSIONS)
        .model_id(reasonbank::embedders::DEFAULT_MODEL_ID);
    Ok(std::sync::Arc::new(Store::open(root, o)?))
}

/// `reasonbank serve`'s config file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeConfig {
    listen: std::net::SocketAddr,
    identity: PathBuf,
    peers: Vec<PeerGrant>,
    /// Load the embedding model and accept text-only pushes.
    #[serde(default)]
    reembed: bool,
}

async fn serve(
    root: &std::path::Path,
    config: &std::path::Path,
    json_out: bool,
) -> anyhow::Result<()> {
    let text = read_input(config)?;
    let c: ServeConfig = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid serve config", config.display()))?;
    let mut cfg = Identity::load(&c.identity)?.hub_config(&c.peers)?;
    if c.reembed {
        cfg.reembedder(std::sync::Arc::new(reasonbank::EmbedderReembedder::new(
            load_embedder().await?,
        )));
    }
    let fp = cfg.fingerprint();
    let server = SyncServer::bind(c.listen, open_store_for_sync(root)?, cfg)?;
    let addr = server.local_addr()?;
    if json_out {
        out!(
            "{}",
            json!({ "listening": addr.to_string(), "fingerprint": fp.to_string() })
        );
    } else {
        out!("listening on {addr} as {fp}");
    }
    std::io::stdout().flush()?;
    tokio::signal::ctrl_c().await?;
    server.close();
    Ok(())
}

fn parse_meta(meta: Option<&str>) -> anyhow::Result<Value> {
    match meta {
        None => Ok(json!({})),
        Some(s) => serde_json::from_str(s).context("--meta is not valid JSON"),
    }
}

/// The store at `root`, opened so that shards are never created implicitly.
fn existing_store(root: &std::path::Path) -> anyhow::Result<Store> {
    let mut o = StoreOptions::new();
    o.shard_options_mut().create(false);
    Ok(Store::open(root, o)?)
}

/// Opens an existing shard without loading the embedder (for commands that do not embed).
fn open_shard(
    root: &std::path::Path,
    agent: &str,
) -> anyhow::Result<std::sync::Arc<reasonbank::memory::Shard>> {
    let id = ShardId::new(agent)?;
    let store = existing_store(root)?;
    if !store.exists(&id) {
        return Err(NotFound(format!("agent {agent} has no shard in {}", root.display())).into());
    }
    Ok(store.shard(&id)?)
}

fn read_input(file: &std::path::Path) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        Ok(std::io::read_to_string(std::io::stdin())?)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    }
}

fn stats(root: &std::path::Path, agent: &str, all: bool, json_out: bool) -> anyhow::Result<()> {
    let ids = if all {
        existing_store(root)?
            .list()?
            .into_iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        vec![agent.to_owned()]
    };
    if !json_out {
        out!(
            "{:<24} {:>9} {:>10} {:>5} {:>10}  {:<22} model",
            "agent",
            "memories",
            "forgotten",
            "dims",
            "size",
            "vector index"
        );
    }
    let total = ids.len();
    let mut unreadable = 0;
    for id in ids {
        let read = open_shard(root, &id).and_then(|shard| {
            let s = shard.stats()?;
            Ok((s, shard.index_status()))
        });
        let (s, ix) = match read {
            Ok(r) => r,
            // With --all, one damaged shard is reported in its row, not a stop for the rest.
            Err(e) if all => {
                unreadable += 1;
                let why = format!("{e:#}");
                if json_out {
                    out!("{}", json!({ "agent": id, "error": why }));
                } else {
                    out!("{id:<24} unreadable: {why}");
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        if json_out {
            let mut v = serde_json::to_value(&s)?;
            v["agent"] = json!(id);
            v["index"] = serde_json::to_value(&ix)?;
            out!("{v}");
        } else {
            let index = if ix.graph {
                format!("HNSW {} rows, {} pending", ix.indexed, ix.pending)
            } else {
                "none (exact/quantized)".to_owned()
            };
            out!(
                "{:<24} {:>9} {:>10} {:>5} {:>9.1}M  {:<22} {}",
                id,
                s.records,
                s.tombstones,
                s.dimensions,
                s.file_bytes as f64 / 1e6,
                index,
                s.model_id
            );
        }
    }
    if unreadable > 0 {
        bail!("{unreadable} of {total} shards could not be read (see their rows above)");
    }
    Ok(())
}

fn print_files(f: &ModelFiles, json_out: bool) -> anyhow::Result<()> {
    if json_out {
        let v = json!({ "ort_library": f.ort_library, "model": f.model, "tokenizer_dir": f.tokenizer_dir });
        out!("{v}");
    } else {
        out!("ort_library    {}", f.ort_library.display());
        out!("model          {}", f.model.display());
        out!("tokenizer_dir  {}", f.tokenizer_dir.display());
    }
    Ok(())
}
