//! `reasonbank-python`: the native half of the Python package `reasonbank` (PyO3, abi3).
//!
//! It converts and schedules; it does not compute. Each method takes Python values, runs the
//! facade's async call to completion on a process-wide tokio runtime *with the GIL released*
//! (so other Python threads, and `asyncio.to_thread` callers, run meanwhile), and returns
//! results as the JSON the CLI's `--json` prints (the Python half turns them into typed
//! dataclasses), or plain lists of floats for vectors. Errors are
//! `reasonbank.ReasonbankError` with a stable `code` (the facade's [`reasonbank::error::code`],
//! the same codes as the Node package).
//!
//! The Python API is `bindings/python/python/reasonbank/__init__.py`; use that, not this module.

use reasonbank::units::{TimeUnit, duration};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use reasonbank::embedders::provision::{self, ProvisionOptions};
use reasonbank::embedders::{EmbedKind, LocalModel};
use reasonbank::error::code;
use reasonbank::memory::{Filter, RecordId, SearchMode, ShardId};
use reasonbank::reasoning::{ConsolidateOptions, Feedback, Trajectory};
use reasonbank::sync::Fingerprint;
use reasonbank::{
    Identity, Memory, RecallMode, RecallOptions, ShardSync, SyncDirection, SyncRequest,
};
use serde_json::{Value, json};

create_exception!(
    _native,
    ReasonbankError,
    PyException,
    "A reasonbank call failed; `code` is a stable RB_* code (the Node package's codes)."
);

/// The runtime every call runs on: its workers run the facade's async code, and the facade's
/// blocking work (SQLite, ONNX Runtime) goes to its blocking pool.
static RUNTIME: LazyLock<std::io::Result<tokio::runtime::Runtime>> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("reasonbank")
        .build()
});

/// A failure with its code and the whole cause chain, raised as `ReasonbankError`.
struct Failure {
    code: &'static str,
    message: String,
}

impl Failure {
    fn invalid(message: impl Into<String>) -> Self {
        Failure {
            code: code::INVALID_INPUT,
            message: message.into(),
        }
    }
}

impl<E: Into<reasonbank::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        let e: reasonbank::Error = e.into();
        let mut message = e.to_string();
        let mut next = std::error::Error::source(&e);
        while let Some(s) = next {
            let m = s.to_string();
            // `#[error(transparent)]` wrappers repeat their source's message.
            if !message.ends_with(&m) {
                message.push_str("; caused by: ");
                message.push_str(&m);
            }
            next = s.source();
        }
        Failure {
            code: e.code(),
            message,
        }
    }
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> PyErr {
        Python::attach(|py| {
            let err = ReasonbankError::new_err(f.message);
            // Setting an attribute on a fresh exception instance cannot fail short of
            // running out of memory, in which case the error still carries its message.
            let _ = err.value(py).setattr("code", f.code);
            err
        })
    }
}

fn json_failure(e: serde_json::Error) -> Failure {
    Failure {
        code: code::INTERNAL,
        message: format!("encoding a result as JSON: {e}"),
    }
}

/// Runs `fut` to completion with the GIL released.
fn run<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    T: Send,
    F: Future<Output = Result<T, Failure>> + Send,
{
    let rt = RUNTIME.as_ref().map_err(|e| Failure {
        code: code::INTERNAL,
        message: format!("cannot start the async runtime: {e}"),
    })?;
    Ok(py.detach(|| rt.block_on(fut))?)
}

/// An instant as the Python half passes it (it turns `datetime`s into RFC 3339 text): text
/// [`reasonbank::units::instant`] reads, or seconds since 1970 (`time.time()`).
#[derive(FromPyObject)]
enum Instant {
    Text(String),
    Seconds(f64),
}

impl Instant {
    /// The `created_at` of a JSON memory: a string or a number of seconds.
    fn from_json(what: &'static str, v: Option<Value>) -> Result<Option<Instant>, Failure> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(Instant::Text(s))),
            Some(Value::Number(n)) => Ok(n.as_f64().map(Instant::Seconds)),
            Some(other) => Err(Failure::invalid(format!(
                "{what} must be a datetime, a date, a string or seconds since 1970, got {other}"
            ))),
        }
    }
}

/// Unix milliseconds of an optional instant.
fn unix_ms(what: &'static str, v: Option<Instant>) -> Result<Option<i64>, Failure> {
    Ok(match v {
        None => None,
        Some(Instant::Text(s)) => Some(reasonbank::units::read_instant(what, &s)?),
        Some(Instant::Seconds(x)) => Some(reasonbank::units::instant_from_number(
            what,
            x,
            TimeUnit::Seconds,
        )?),
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, Failure> {
    serde_json::to_string(v).map_err(json_failure)
}

/// A JSON text from the Python half (it encodes dicts with `json.dumps`).
fn parse_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, Failure> {
    serde_json::from_str(text).map_err(|e| Failure::invalid(format!("{what}: {e}")))
}

fn record_id(id: &str) -> Result<RecordId, Failure> {
    Ok(id.parse::<RecordId>()?)
}

fn shard_ids(ids: Option<Vec<String>>) -> Result<Vec<ShardId>, Failure> {
    ids.unwrap_or_default()
        .into_iter()
        .map(|s| Ok(ShardId::new(s)?))
        .collect()
}

/// Sets (or with `None` clears) the ONNX Runtime library used when neither `ort_library` nor
/// `ORT_DYLIB_PATH` names one.
#[pyfunction]
#[pyo3(signature = (path))]
fn set_default_ort_library(path: Option<String>) {
    provision::set_packaged_ort_library(path.map(PathBuf::from));
}

/// The library `set_default_ort_library` set, if any.
#[pyfunction]
fn default_ort_library() -> Option<String> {
    provision::packaged_ort_library().map(|p| p.display().to_string())
}

/// The provisioning options of these parts; `local_model` by name (`RB_INVALID_INPUT` for an
/// unknown one).
fn provision_options(
    cache_dir: Option<String>,
    ort_library: Option<String>,
    model: Option<String>,
    tokenizer_dir: Option<String>,
    allow_fetch: Option<bool>,
    local_model: Option<String>,
) -> Result<ProvisionOptions, Failure> {
    let mut p =
        ProvisionOptions::from_parts(cache_dir, ort_library, model, tokenizer_dir, allow_fetch);
    if let Some(m) = local_model {
        p.local_model(m.parse::<LocalModel>()?);
    }
    Ok(p)
}

/// Downloads (if missing, unless `fetch` is false) and verifies the files of `local_model`
/// (default all-MiniLM-L6-v2); returns their paths as JSON (`ort_library`, `model`,
/// `tokenizer_dir`) with the model's name (`local_model`).
#[pyfunction]
#[pyo3(signature = (fetch, cache_dir=None, ort_library=None, local_model=None))]
fn model_files(
    py: Python<'_>,
    fetch: bool,
    cache_dir: Option<String>,
    ort_library: Option<String>,
    local_model: Option<String>,
) -> PyResult<String> {
    let p = provision_options(cache_dir, ort_library, None, None, Some(fetch), local_model)?;
    run(py, async move {
        let files = tokio::task::spawn_blocking(move || {
            if fetch {
                provision::fetch(&p)
            } else {
                provision::resolve(&p)
            }
        })
        .await
        .map_err(reasonbank::Error::from)??;
        to_json(&json!({
            "local_model": files.local_model.name(),
            "ort_library": files.ort_library,
            "model": files.model,
            "tokenizer_dir": files.tokenizer_dir,
        }))
    })
}

/// A new sync identity: `(cert_pem, key_pem, fingerprint)`.
#[pyfunction]
#[pyo3(signature = (name="reasonbank"))]
fn generate_identity(name: &str) -> PyResult<(String, String, String)> {
    let id = Identity::generate(name).map_err(Failure::from)?;
    let fp = id.fingerprint().map_err(Failure::from)?.to_string();
    Ok((id.cert_pem().to_owned(), id.key_pem().to_owned(), fp))
}

/// Runs the MCP server (the same one as the `reasonbank-mcp` binary) on this process's
/// stdin/stdout until the client closes the session; returns the exit status (0, 1 or 2).
/// `argv` starts with the program name.
#[pyfunction]
fn run_mcp_server(py: Python<'_>, argv: Vec<String>) -> u8 {
    // The server starts its own runtime, as the binary does.
    py.detach(|| reasonbank_mcp::main_with(argv))
}

/// Runs the `reasonbank` command line (the Rust CLI, `reasonbank::cli::run`) with `argv`
/// (the program name first) on the process's stdin/stdout/stderr; returns its exit status
/// (0 success, 1 error, 2 bad usage, 3 not found).
#[pyfunction]
fn run_cli(py: Python<'_>, argv: Vec<String>) -> u8 {
    // The CLI starts its own runtime, as the binary does.
    py.detach(|| reasonbank::cli::run(argv))
}

/// One agent's memory (the facade's `AgentMemory`).
#[pyclass(frozen, name = "NativeMemory", module = "reasonbank._native")]
struct NativeMemory {
    inner: reasonbank::AgentMemory,
    root: PathBuf,
}

#[pymethods]
impl NativeMemory {
    /// Opens the shard of `agent` in `root` (both created if missing unless `create` is
    /// false), loading the model; `llm_url` with `llm_model` makes `learn` judge and distill
    /// with that LLM, and `rerank_url` with `rerank_model` gives recall (`rerank`) and the
    /// ReasoningBank's recall a reranker; `local_model` names the local embedding model.
    #[staticmethod]
    #[pyo3(signature = (root, agent, cache_dir=None, ort_library=None, model=None,
                        tokenizer_dir=None, allow_fetch=None, max_open_shards=None,
                        recency_half_life_s=None, create=None, llm_url=None, llm_model=None,
                        rerank_url=None, rerank_model=None, local_model=None))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments one to one
    fn open(
        py: Python<'_>,
        root: String,
        agent: String,
        cache_dir: Option<String>,
        ort_library: Option<String>,
        model: Option<String>,
        tokenizer_dir: Option<String>,
        allow_fetch: Option<bool>,
        max_open_shards: Option<usize>,
        recency_half_life_s: Option<f64>,
        create: Option<bool>,
        llm_url: Option<String>,
        llm_model: Option<String>,
        rerank_url: Option<String>,
        rerank_model: Option<String>,
        local_model: Option<String>,
    ) -> PyResult<NativeMemory> {
        let p = provision_options(
            cache_dir,
            ort_library,
            model,
            tokenizer_dir,
            allow_fetch,
            local_model,
        )?;
        run(py, async move {
            let mut b = reasonbank::AgentMemory::builder(&root);
            b.provision(p).agent(agent);
            if let Some(n) = max_open_shards {
                b.max_open_shards(n);
            }
            if let Some(h) = recency_half_life_s {
                b.recency_half_life(duration("recency_half_life_s", h, TimeUnit::Seconds)?);
            }
            if let Some(c) = create {
                b.create(c);
            }
            b.llm_options(
                llm_url.as_deref(),
                llm_model.as_deref(),
                ["llm_url", "llm_model"],
            )?;
            b.rerank_options(
                rerank_url.as_deref(),
                rerank_model.as_deref(),
                ["rerank_url", "rerank_model"],
            )?;
            Ok(NativeMemory {
                inner: b.build().await?,
                root: PathBuf::from(root),
            })
        })
    }

    #[getter]
    fn agent(&self) -> String {
        self.inner.agent().to_string()
    }

    #[getter]
    fn root(&self) -> String {
        self.root.display().to_string()
    }

    #[getter]
    fn model_id(&self) -> String {
        self.inner.embedder().model_id().to_owned()
    }

    #[getter]
    fn dimensions(&self) -> usize {
        self.inner.embedder().dimensions()
    }

    /// Remembers memories given as a JSON array of `{text, metadata?, kind?, namespace?,
    /// created_at?}` in one transaction; returns their ids.
    fn remember_batch(&self, py: Python<'_>, memories_json: &str) -> PyResult<Vec<String>> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Input {
            text: String,
            #[serde(default)]
            metadata: Option<Value>,
            #[serde(default)]
            kind: Option<String>,
            #[serde(default)]
            namespace: Option<String>,
            #[serde(default)]
            created_at: Option<Value>,
        }
        let inputs: Vec<Input> = parse_json("memories", memories_json)?;
        let mem = self.inner.clone();
        run(py, async move {
            let batch = inputs
                .into_iter()
                .map(|i| {
                    let at = unix_ms(
                        "created_at",
                        Instant::from_json("created_at", i.created_at)?,
                    )?;
                    Ok(Memory::from_parts(i.text, i.metadata, i.kind, i.namespace).created_at(at))
                })
                .collect::<Result<Vec<_>, Failure>>()?;
            let ids = mem.remember_batch(batch).await?;
            Ok(ids.iter().map(ToString::to_string).collect())
        })
    }

    /// The memories that best match `query`, as JSON; with `rerank`, the reranker's best `k`
    /// of the first ranking's best `rerank`.
    #[pyo3(signature = (query, k, threshold=None, filter=None, mode=None, search=None, shards=None,
                        kinds=None, include_inactive=false, rerank=None, since=None, until=None))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments one to one
    fn recall(
        &self,
        py: Python<'_>,
        query: String,
        k: usize,
        threshold: Option<f32>,
        filter: Option<String>,
        mode: Option<String>,
        search: Option<String>,
        shards: Option<Vec<String>>,
        kinds: Option<Vec<String>>,
        include_inactive: bool,
        rerank: Option<usize>,
        since: Option<Instant>,
        until: Option<Instant>,
    ) -> PyResult<String> {
        let mem = self.inner.clone();
        run(py, async move {
            let mut o = RecallOptions::new();
            if let Some(t) = unix_ms("since", since)? {
                o.since(t);
            }
            if let Some(t) = unix_ms("until", until)? {
                o.until(t);
            }
            o.k(k)
                .kinds(kinds.unwrap_or_default())
                .include_inactive(include_inactive);
            if let Some(t) = threshold {
                o.threshold(t);
            }
            if let Some(f) = filter {
                o.filter(f.parse::<Filter>()?);
            }
            if let Some(m) = mode {
                o.mode(m.parse::<RecallMode>()?);
            }
            if let Some(s) = search {
                o.search_mode(s.parse::<SearchMode>()?);
            }
            if let Some(n) = rerank {
                o.rerank(n);
            }
            o.shards(shard_ids(shards)?);
            to_json(&mem.recall(&query, &o).await?)
        })
    }

    /// The memory `id` as JSON (without its vector) and its vector, or `None`.
    fn get(&self, py: Python<'_>, id: &str) -> PyResult<Option<(String, Option<Vec<f32>>)>> {
        let id = record_id(id)?;
        let mem = self.inner.clone();
        run(py, async move {
            let Some(r) = mem.get(id).await? else {
                return Ok(None);
            };
            let vector = r.embedding.as_ref().map(|e| e.as_slice().to_vec());
            let mut v = serde_json::to_value(&r).map_err(json_failure)?;
            if let Some(o) = v.as_object_mut() {
                o.remove("embedding");
            }
            Ok(Some((v.to_string(), vector)))
        })
    }

    /// Changes a memory's text (re-embedding it) and/or metadata (JSON object).
    #[pyo3(signature = (id, text=None, metadata_json=None))]
    fn update(
        &self,
        py: Python<'_>,
        id: &str,
        text: Option<String>,
        metadata_json: Option<String>,
    ) -> PyResult<()> {
        let id = record_id(id)?;
        let metadata: Option<Value> = metadata_json
            .map(|m| parse_json("metadata", &m))
            .transpose()?;
        let mem = self.inner.clone();
        run(py, async move {
            mem.update(id, text.as_deref(), metadata).await?;
            Ok(())
        })
    }

    /// Forgets memory `id`; whether it existed.
    fn forget(&self, py: Python<'_>, id: &str) -> PyResult<bool> {
        let id = record_id(id)?;
        let mem = self.inner.clone();
        run(py, async move { Ok(mem.forget(id).await?) })
    }

    /// Embeds texts with this memory's model (`kind`: document or query).
    fn embed(&self, py: Python<'_>, texts: Vec<String>, kind: &str) -> PyResult<Vec<Vec<f32>>> {
        let kind = match kind {
            "document" => EmbedKind::Document,
            "query" => EmbedKind::Query,
            k => {
                return Err(Failure::invalid(format!(
                    "embed kind {k:?} is not one of document, query"
                ))
                .into());
            }
        };
        let embedder = Arc::clone(self.inner.embedder());
        run(py, async move { Ok(embedder.embed(&texts, kind).await?) })
    }

    /// Learns from a finished task given as trajectory JSON; the report as JSON.
    fn learn(&self, py: Python<'_>, trajectory_json: &str) -> PyResult<String> {
        let t: Trajectory = parse_json("trajectory", trajectory_json)?;
        let mem = self.inner.clone();
        run(py, async move { to_json(&mem.learn(&t).await?) })
    }

    /// Learns from several attempts at one task (a JSON array of trajectories).
    fn learn_contrastive(
        &self,
        py: Python<'_>,
        task: String,
        trajectories_json: &str,
    ) -> PyResult<String> {
        let runs: Vec<Trajectory> = parse_json("trajectories", trajectories_json)?;
        let mem = self.inner.clone();
        run(py, async move {
            to_json(&mem.learn_contrastive(&task, &runs).await?)
        })
    }

    /// Records whether item `id` helped: `outcome` "success"/"failure", or a `reward` in [0, 1].
    #[pyo3(signature = (id, outcome=None, reward=None))]
    fn feedback(
        &self,
        py: Python<'_>,
        id: &str,
        outcome: Option<&str>,
        reward: Option<f32>,
    ) -> PyResult<String> {
        let id = record_id(id)?;
        let fb = match (outcome, reward) {
            (Some("success"), None) => Feedback::Success,
            (Some("failure"), None) => Feedback::Failure,
            (None, Some(r)) => Feedback::Reward(r),
            (Some(o), None) => {
                return Err(Failure::invalid(format!(
                    "feedback {o:?} is not success, failure or a reward in [0, 1]"
                ))
                .into());
            }
            _ => return Err(Failure::invalid("give an outcome or a reward, not both").into()),
        };
        let mem = self.inner.clone();
        run(py, async move { to_json(&mem.feedback(id, fb).await?) })
    }

    /// Consolidates learned items; the report as JSON.
    #[pyo3(signature = (dry_run=None, duplicate_threshold=None, contradiction_threshold=None,
                        evidence_half_life_s=None, prune_below_confidence=None,
                        prune_min_evidence=None, prune_idle_s=None))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments one to one
    fn consolidate(
        &self,
        py: Python<'_>,
        dry_run: Option<bool>,
        duplicate_threshold: Option<f32>,
        contradiction_threshold: Option<f32>,
        evidence_half_life_s: Option<f64>,
        prune_below_confidence: Option<f32>,
        prune_min_evidence: Option<f64>,
        prune_idle_s: Option<f64>,
    ) -> PyResult<String> {
        let mut co = ConsolidateOptions::new();
        if let Some(d) = dry_run {
            co.dry_run(d);
        }
        if let Some(t) = duplicate_threshold {
            co.duplicate_threshold(t);
        }
        if let Some(t) = contradiction_threshold {
            co.contradiction_threshold(t);
        }
        if let Some(h) = evidence_half_life_s {
            co.evidence_half_life(
                duration("evidence_half_life_s", h, TimeUnit::Seconds).map_err(Failure::from)?,
            );
        }
        if let Some(c) = prune_below_confidence {
            co.prune_below_confidence(c);
        }
        if let Some(n) = prune_min_evidence {
            co.prune_min_evidence(n);
        }
        if let Some(i) = prune_idle_s {
            co.prune_idle(duration("prune_idle_s", i, TimeUnit::Seconds).map_err(Failure::from)?);
        }
        let mem = self.inner.clone();
        run(py, async move { to_json(&mem.consolidate(&co).await?) })
    }

    /// The contradictions flagged between this agent's active items, as JSON.
    fn contradictions(&self, py: Python<'_>) -> PyResult<String> {
        let mem = self.inner.clone();
        run(py, async move { to_json(&mem.contradictions().await?) })
    }

    /// The learned items most useful for `task`, as JSON.
    fn find_similar_patterns(
        &self,
        py: Python<'_>,
        task: String,
        threshold: f32,
        k: usize,
    ) -> PyResult<String> {
        let mem = self.inner.clone();
        run(py, async move {
            to_json(&mem.find_similar_patterns(&task, threshold, k).await?)
        })
    }

    /// A prompt-ready context for `task` within `token_budget`, as JSON.
    #[pyo3(signature = (task, token_budget, shards=None))]
    fn synthesize_context(
        &self,
        py: Python<'_>,
        task: String,
        token_budget: usize,
        shards: Option<Vec<String>>,
    ) -> PyResult<String> {
        let others = shard_ids(shards)?;
        let mem = self.inner.clone();
        run(py, async move {
            to_json(&mem.synthesize_context(&task, &others, token_budget).await?)
        })
    }

    /// Counts, sizes and model of this agent's shard, as JSON.
    fn stats(&self, py: Python<'_>) -> PyResult<String> {
        let mem = self.inner.clone();
        run(py, async move { to_json(&mem.stats().await?) })
    }

    /// Serves every shard of this memory's root to the peers of `peers_json` (a JSON array
    /// of `{fingerprint, shards?, access}`): a hub others `sync` with.
    #[pyo3(signature = (listen, peers_json, identity_dir=None, cert_pem=None, key_pem=None))]
    fn serve(
        &self,
        py: Python<'_>,
        listen: &str,
        peers_json: &str,
        identity_dir: Option<String>,
        cert_pem: Option<String>,
        key_pem: Option<String>,
    ) -> PyResult<NativeServer> {
        let listen: std::net::SocketAddr = listen
            .parse()
            .map_err(|e| Failure::invalid(format!("listen address {listen:?}: {e}")))?;
        let peers: Vec<reasonbank::PeerGrant> = parse_json("peers", peers_json)?;
        let root = self.root.clone();
        let store = Arc::clone(self.inner.store());
        run(py, async move {
            let cfg = Self::identity(root, identity_dir, cert_pem, key_pem)
                .await?
                .hub_config(&peers)?;
            let fingerprint = cfg.fingerprint().to_string();
            let server = reasonbank::sync::SyncServer::bind(listen, store, cfg)?;
            let address = server.local_addr()?.to_string();
            Ok(NativeServer {
                server,
                address,
                fingerprint,
            })
        })
    }

    /// Syncs shards with a peer; one JSON report per shard. A shard that failed raises, after
    /// the others finished.
    #[pyo3(signature = (peer, trust, direction=None, shards=None, identity_dir=None,
                        cert_pem=None, key_pem=None, text_only=false))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments one to one
    fn sync(
        &self,
        py: Python<'_>,
        peer: String,
        trust: &str,
        direction: Option<&str>,
        shards: Option<Vec<String>>,
        identity_dir: Option<String>,
        cert_pem: Option<String>,
        key_pem: Option<String>,
        text_only: bool,
    ) -> PyResult<String> {
        let mut request =
            SyncRequest::new(peer, trust.parse::<Fingerprint>().map_err(Failure::from)?);
        if let Some(d) = direction {
            request.direction(d.parse::<SyncDirection>().map_err(Failure::from)?);
        }
        request.shards(shard_ids(shards)?).text_only(text_only);
        let root = self.root.clone();
        let mem = self.inner.clone();
        run(py, async move {
            let identity = Self::identity(root, identity_dir, cert_pem, key_pem).await?;
            let reports = ShardSync::all(mem.sync(&request, &identity).await?)?;
            to_json(
                &reports
                    .iter()
                    .map(|(shard, r)| reasonbank::report_json(shard, r))
                    .collect::<Vec<_>>(),
            )
        })
    }
}

/// A running sync hub (see `NativeMemory.serve`); stops on `close()` or when collected.
#[pyclass(frozen, name = "NativeServer", module = "reasonbank._native")]
struct NativeServer {
    server: reasonbank::sync::SyncServer,
    address: String,
    fingerprint: String,
}

#[pymethods]
impl NativeServer {
    #[getter]
    fn address(&self) -> String {
        self.address.clone()
    }

    #[getter]
    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn close(&self) {
        self.server.close();
    }
}

impl NativeMemory {
    /// This side's identity (the PEM pair, else the files in `identity_dir`, default
    /// `<root>/.sync`), read on the blocking pool.
    async fn identity(
        root: PathBuf,
        identity_dir: Option<String>,
        cert_pem: Option<String>,
        key_pem: Option<String>,
    ) -> Result<Identity, Failure> {
        let dir = identity_dir.map(PathBuf::from);
        Ok(tokio::task::spawn_blocking(move || {
            Identity::resolve(&root, dir.as_deref(), cert_pem, key_pem)
        })
        .await
        .map_err(reasonbank::Error::from)??)
    }
}

/// The native module `reasonbank._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ReasonbankError", m.py().get_type::<ReasonbankError>())?;
    m.add_class::<NativeMemory>()?;
    m.add_class::<NativeServer>()?;
    m.add_function(wrap_pyfunction!(set_default_ort_library, m)?)?;
    m.add_function(wrap_pyfunction!(default_ort_library, m)?)?;
    m.add_function(wrap_pyfunction!(model_files, m)?)?;
    m.add_function(wrap_pyfunction!(generate_identity, m)?)?;
    m.add_function(wrap_pyfunction!(run_mcp_server, m)?)?;
    m.add_function(wrap_pyfunction!(run_cli, m)?)?;
    Ok(())
}
