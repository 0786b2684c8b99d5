//! [`OnnxEmbedder`]: a [`LocalModel`] (int8; all-MiniLM-L6-v2 by default) run locally with
//! ONNX Runtime.
//!
//! The runtime is loaded dynamically (`ort` with `load-dynamic`) from the library that
//! [`provision::resolve`](crate::provision::resolve) finds, once per process. Texts are tokenized
//! with the model's own `tokenizer.json` (truncated to 256 tokens by default), run through the
//! model, pooled the model's way (all-MiniLM-L6-v2: the mean over the attention mask, like
//! sentence-transformers; bge-small-en-v1.5: the `[CLS]` token, as BAAI does) and
//! L2-normalized.
//!
//! # Why not the fastembed crate
//!
//! fastembed 7.5's `TextEmbedding` keeps its ONNX session private and tokenizes inside `embed`,
//! padding fixed-count batches to their longest text. That rules out sorting by token length,
//! token-capped batches and buffer reuse, which on mixed-length text are worth several times the
//! throughput and most of the memory (see [`OnnxEmbedderBuilder::max_batch_tokens`]). So this
//! module drives `ort` (the `=2.0.0-rc.15` that fastembed 7.5 pins, `load-dynamic`) and
//! `tokenizers` (the version fastembed uses) directly, with fastembed's recipe: the model's
//! `tokenizer.json`, `token_type_ids` when the graph wants them, mean pooling, L2 norm. Python
//! fastembed is the baseline of `reasonbank-bench embed`.
//!
//! # Throughput
//!
//! A batch is tokenized once, sorted by token count and cut into sub-batches bounded by the
//! number of padded tokens ([`OnnxEmbedderBuilder::max_batch_tokens`]) rather than by text count:
//! similar lengths waste little on padding, and one long text cannot make a batch of 32 pad to
//! 256 tokens each. Input buffers are reused across sub-batches and calls, and results are put
//! back in the caller's order. Inference runs on tokio's blocking pool, never on the executor.
//!
//! bge-small-en-v1.5's int8 export quantizes activations dynamically, with one scale per
//! tensor computed from the whole batch: padding a text, or batching it with another text of the
//! same length, changed its vector by up to 0.013 per component (measured with Python
//! onnxruntime and here). It therefore runs one text per inference call, so a text's vector
//! never depends on what it was embedded with (all-MiniLM-L6-v2's export is not affected: batched
//! and alone agree within 1e-5).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use crate::embedder::{Prefixes, check_texts, normalize};
use crate::local_model::Pooling;
use crate::provision::{self, ModelFiles, ProvisionOptions};
use crate::{EmbedKind, Embedder, Error, LocalModel, Result};

/// Model id of the default configuration (the default [`LocalModel`]'s).
pub const DEFAULT_MODEL_ID: &str = LocalModel::AllMiniLmL6V2.model_id();

/// Dimensions of the default model's vectors (every [`LocalModel`] has 384).
pub const DEFAULT_DIMENSIONS: usize = LocalModel::AllMiniLmL6V2.dimensions();

/// Default [`OnnxEmbedderBuilder::max_length`], the length all-MiniLM-L6-v2 was trained with
/// (bge-small-en-v1.5 takes up to 512; 256 keeps its cost on long texts bounded).
pub const DEFAULT_MAX_LENGTH: usize = 256;

/// Default [`OnnxEmbedderBuilder::max_batch_tokens`].
pub const DEFAULT_MAX_BATCH_TOKENS: usize = 1024;

/// How much ONNX Runtime rewrites the model graph when loading it.
///
/// For all-MiniLM-L6-v2 int8, [`Basic`](Self::Basic) (constant folding, which turns the quantized
/// weights into `f32` once at load) measured ~10% faster inference than [`All`](Self::All) on 2
/// cores and is its default; [`Disabled`](Self::Disabled) loads fastest (~40 ms) but dequantizes
/// the weights at every call (a short query takes ~6.6 ms instead of ~1.7 ms). Vectors differ
/// between levels by a few 1e-6 per component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GraphOptimization {
    /// No rewriting.
    Disabled,
    /// Constant folding and redundant-node elimination.
    Basic,
    /// Basic plus operator fusions.
    Extended,
    /// Everything, including layout transformations.
    All,
}

impl GraphOptimization {
    fn to_ort(self) -> GraphOptimizationLevel {
        match self {
            GraphOptimization::Disabled => GraphOptimizationLevel::Disable,
            GraphOptimization::Basic => GraphOptimizationLevel::Level1,
            GraphOptimization::Extended => GraphOptimizationLevel::Level2,
            GraphOptimization::All => GraphOptimizationLevel::All,
        }
    }
}

/// The ONNX Runtime loaded in this process: the library path and its environment.
static RUNTIME: Mutex<Option<(PathBuf, ort::environment::Environment)>> = Mutex::new(None);

/// Loads ONNX Runtime from `path`, once per process.
///
/// # Errors
///
/// [`Error::MissingFile`] if `path` does not exist, [`Error::RuntimeLoad`] if it is not a usable
/// ONNX Runtime (>= 1.24), [`Error::RuntimeAlreadyInitialized`] if another library was loaded
/// before.
pub fn init_runtime(path: &Path) -> Result<()> {
    runtime(path).map(drop)
}

fn runtime(path: &Path) -> Result<ort::environment::Environment> {
    let mut loaded = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if !path.is_file() {
        return Err(Error::MissingFile {
            what: "ONNX Runtime library",
            path: path.to_owned(),
        });
    }
    let requested = path.canonicalize().map_err(|e| Error::io(path, e))?;
    if let Some((committed, env)) = loaded.as_ref() {
        return if *committed == requested {
            Ok(env.clone())
        } else {
            Err(Error::RuntimeAlreadyInitialized {
                committed: committed.clone(),
                requested,
            })
        };
    }
    let load_error = |source: Box<dyn std::error::Error + Send + Sync>| Error::RuntimeLoad {
        path: requested.clone(),
        source,
    };
    let env = ort::init_from(&requested)
        .map_err(|e| load_error(Box::new(e)))?
        .with_name("reasonbank")
        .with_telemetry(false)
        .build()
        .map_err(|e| load_error(e.to_string().into()))?;
    *loaded = Some((requested, env.clone()));
    Ok(env)
}

/// Builds an [`OnnxEmbedder`]. Get one from [`OnnxEmbedder::builder`].
#[derive(Debug, Clone)]
pub struct OnnxEmbedderBuilder {
    provision: ProvisionOptions,
    files: Option<ModelFiles>,
    intra_threads: Option<usize>,
    max_length: usize,
    max_batch_tokens: usize,
    prefixes: Option<Prefixes>,
    optimization: Option<GraphOptimization>,
}

impl OnnxEmbedderBuilder {
    /// Graph optimization level. Defaults to the model's: [`GraphOptimization::Basic`] for
    /// all-MiniLM-L6-v2 (see there why), [`GraphOptimization::All`] for bge-small-en-v1.5, whose
    /// int8 export gives vectors up to 0.015 per component apart at the two levels: `All` is
    /// what ONNX Runtime runs by default, so what its publisher measured.
    pub fn optimization(&mut self, level: GraphOptimization) -> &mut Self {
        self.optimization = Some(level);
        self
    }

    /// How to find (and fetch) the model files. Defaults to [`ProvisionOptions::default`]:
    /// the cache directory, downloading what is missing. Ignored when [`files`](Self::files) is
    /// set.
    pub fn provision(&mut self, opts: ProvisionOptions) -> &mut Self {
        self.provision = opts;
        self
    }

    /// Use these files as they are, skipping provisioning. Defaults to unset.
    pub fn files(&mut self, files: ModelFiles) -> &mut Self {
        self.files = Some(files);
        self
    }

    /// ONNX Runtime intra-op threads. Defaults to `std::thread::available_parallelism()`.
    pub fn intra_threads(&mut self, threads: usize) -> &mut Self {
        self.intra_threads = Some(threads);
        self
    }

    /// Maximum tokens per text, including the `[CLS]` and `[SEP]` markers; longer texts are
    /// truncated (the end is dropped). Defaults to 256, the model's training length; at most 512.
    pub fn max_length(&mut self, tokens: usize) -> &mut Self {
        self.max_length = tokens;
        self
    }

    /// Maximum padded tokens (texts × longest text) in one inference call, which bounds memory.
    /// Defaults to 1024: on 2 cores, 1024 gave the best throughput on mixed-length text
    /// (~180 texts/s, 390 MB peak RSS) against 2048 (~175/s, 580 MB), 4096 (~125/s, 970 MB) and
    /// 8192 (~75/s, 1.2 GB): big activations fall out of the CPU caches. Must be at least
    /// [`max_length`](Self::max_length).
    pub fn max_batch_tokens(&mut self, tokens: usize) -> &mut Self {
        self.max_batch_tokens = tokens;
        self
    }

    /// Query and document prefixes. Defaults to the model's own
    /// ([`LocalModel::default_prefixes`]: none for all-MiniLM-L6-v2, bge-small-en-v1.5's query
    /// instruction). Prefixes other than the model's become part of the model id.
    pub fn prefixes(&mut self, prefixes: Prefixes) -> &mut Self {
        self.prefixes = Some(prefixes);
        self
    }

    /// Resolves the files (see [`provision::resolve`]), loads the runtime, model and tokenizer.
    ///
    /// Blocking (it may download, and it loads a 23 MB model): call it from `spawn_blocking` in
    /// async code.
    ///
    /// # Errors
    ///
    /// Provisioning errors ([`Error::MissingFile`], [`Error::ChecksumMismatch`],
    /// [`Error::Fetch`]), runtime errors ([`Error::RuntimeLoad`],
    /// [`Error::RuntimeAlreadyInitialized`], [`Error::Inference`]), [`Error::Tokenizer`], and
    /// [`Error::InvalidConfig`] for a zero or too large length.
    pub fn build(&self) -> Result<OnnxEmbedder> {
        if self.max_length < 3 || self.max_length > 512 {
            return Err(Error::InvalidConfig(format!(
                "max_length must be in 3..=512, got {}",
                self.max_length
            )));
        }
        if self.max_batch_tokens < self.max_length {
            return Err(Error::InvalidConfig(format!(
                "max_batch_tokens ({}) must be at least max_length ({})",
                self.max_batch_tokens, self.max_length
            )));
        }
        let files = match &self.files {
            Some(files) => files.clone(),
            None => provision::resolve(&self.provision)?,
        };
        let local_model = files.local_model;
        let env = runtime(&files.ort_library)?;
        let threads = match self.intra_threads {
            Some(n) if n > 0 => n,
            _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };

        let model_path = &files.model;
        if !model_path.is_file() {
            return Err(Error::MissingFile {
                what: "ONNX model",
                path: model_path.clone(),
            });
        }
        let session_error = |e: &dyn std::fmt::Display| Error::Inference {
            during: "loading the model",
            source: e.to_string().into(),
        };
        // The tokenizer (a 466 kB JSON) loads on another thread while the session is built.
        let max_length = self.max_length;
        let tokenizer_dir = files.tokenizer_dir.clone();
        let tokenizer_thread =
            std::thread::spawn(move || load_tokenizer(&tokenizer_dir, max_length));
        let session = Session::builder(&env)
            .map_err(|e| session_error(&e))?
            .with_optimization_level(
                self.optimization
                    .unwrap_or_else(|| local_model.default_optimization())
                    .to_ort(),
            )
            .map_err(|e| session_error(&e))?
            .with_intra_threads(threads)
            .map_err(|e| session_error(&e))?
            .with_inter_threads(1)
            .map_err(|e| session_error(&e))?
            .commit_from_file(model_path)
            .map_err(|e| session_error(&e))?;
        let need_token_type_ids = session
            .inputs()
            .iter()
            .any(|i| i.name() == "token_type_ids");
        let output = session
            .outputs()
            .iter()
            .position(|o| o.name() == "last_hidden_state")
            .unwrap_or(0);
        let dimensions = session
            .outputs()
            .get(output)
            .and_then(|o| o.dtype().tensor_shape())
            .and_then(|shape| shape.last().copied())
            .and_then(|d| usize::try_from(d).ok())
            .filter(|&d| d > 0)
            .ok_or_else(|| Error::Inference {
                during: "reading the model's output shape",
                source: "output is not a [batch, sequence, dimensions] tensor".into(),
            })?;

        let tokenizer = tokenizer_thread.join().map_err(|_| Error::Tokenizer {
            during: "loading tokenizer.json",
            source: "the loading thread panicked".into(),
        })??;

        let model_prefixes = local_model.default_prefixes();
        let prefixes = self
            .prefixes
            .clone()
            .unwrap_or_else(|| model_prefixes.clone());
        let mut model_id = local_model.model_id().to_owned();
        if self.max_length != DEFAULT_MAX_LENGTH {
            model_id.push_str(&format!(";max_length={}", self.max_length));
        }
        for (kind, name) in [
            (EmbedKind::Query, "query"),
            (EmbedKind::Document, "document"),
        ] {
            let prefix = prefixes.get(kind);
            if prefix != model_prefixes.get(kind) {
                model_id.push_str(&format!(";{name}_prefix={prefix:?}"));
            }
        }

        Ok(OnnxEmbedder {
            inner: Arc::new(Inner {
                model_id,
                dimensions,
                tokenizer,
                max_batch_tokens: self.max_batch_tokens,
                prefixes,
                pooling: local_model.pooling(),
                one_text_per_run: local_model.batching_changes_vectors(),
                need_token_type_ids,
                output,
                state: Mutex::new(State {
                    session,
                    ids: Vec::new(),
                    mask: Vec::new(),
                    types: Vec::new(),
                }),
            }),
        })
    }
}

/// Loads `tokenizer.json` with truncation at `max_length` and no padding (batches are padded
/// here, to the longest text of each sub-batch).
fn load_tokenizer(dir: &Path, max_length: usize) -> Result<Tokenizer> {
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Err(Error::MissingFile {
            what: "tokenizer.json",
            path,
        });
    }
    let mut tokenizer = Tokenizer::from_file(&path).map_err(|source| Error::Tokenizer {
        during: "loading tokenizer.json",
        source,
    })?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length,
            ..TruncationParams::default()
        }))
        .map_err(|source| Error::Tokenizer {
            during: "configuring truncation",
            source,
        })?;
    Ok(tokenizer)
}

/// A [`LocalModel`] (int8, 384 dimensions) on ONNX Runtime.
///
/// Cheap to clone (the session is shared). Calls from several tasks are serialized on the one
/// session, which itself uses [`intra_threads`](OnnxEmbedderBuilder::intra_threads) threads.
#[derive(Clone)]
pub struct OnnxEmbedder {
    inner: Arc<Inner>,
}

struct Inner {
    model_id: String,
    dimensions: usize,
    tokenizer: Tokenizer,
    max_batch_tokens: usize,
    prefixes: Prefixes,
    pooling: Pooling,
    /// Run every text alone (see the module docs).
    one_text_per_run: bool,
    need_token_type_ids: bool,
    output: usize,
    state: Mutex<State>,
}

/// The session and the input buffers reused by every call.
struct State {
    session: Session,
    ids: Vec<i64>,
    mask: Vec<i64>,
    types: Vec<i64>,
}

impl std::fmt::Debug for OnnxEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxEmbedder")
            .field("model_id", &self.inner.model_id)
            .field("dimensions", &self.inner.dimensions)
            .field("max_batch_tokens", &self.inner.max_batch_tokens)
            .finish_non_exhaustive()
    }
}

impl OnnxEmbedder {
    /// A builder with every default (see its setters).
    pub fn builder() -> OnnxEmbedderBuilder {
        OnnxEmbedderBuilder {
            provision: ProvisionOptions::default(),
            files: None,
            intra_threads: None,
            max_length: DEFAULT_MAX_LENGTH,
            max_batch_tokens: DEFAULT_MAX_BATCH_TOKENS,
            prefixes: None,
            optimization: None,
        }
    }

    /// The model `opts` select ([`ProvisionOptions::local_model`]), provisioned with `opts`
    /// (downloaded if missing and allowed).
    /// Blocking; see [`OnnxEmbedderBuilder::build`].
    ///
    /// # Errors
    ///
    /// As [`OnnxEmbedderBuilder::build`].
    pub fn new(opts: &ProvisionOptions) -> Result<Self> {
        Self::builder().provision(opts.clone()).build()
    }

    /// Embeds on the calling thread. This is what [`Embedder::embed`] runs on the blocking pool;
    /// call it directly from synchronous code.
    ///
    /// # Errors
    ///
    /// As [`Embedder::embed`].
    pub fn embed_blocking(&self, texts: &[String], kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        check_texts(texts)?;
        self.inner.embed(texts, kind)
    }

    /// Number of tokens (with `[CLS]`/`[SEP]`, after truncation) the model sees for `text`.
    ///
    /// # Errors
    ///
    /// [`Error::Tokenizer`] if tokenization fails.
    pub fn token_count(&self, text: &str) -> Result<usize> {
        let encoding =
            self.inner
                .tokenizer
                .encode(text, true)
                .map_err(|source| Error::Tokenizer {
                    during: "encoding",
                    source,
                })?;
        Ok(encoding.len())
    }
}

impl Inner {
    fn embed(&self, texts: &[String], kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inputs: Vec<std::borrow::Cow<'_, str>> =
            texts.iter().map(|t| self.prefixes.apply(kind, t)).collect();
        let encodings = self.encode(&inputs)?;

        // Shortest first: neighbours then have similar lengths, so little is padding.
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());

        let mut result: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut start = 0;
        while start < order.len() {
            // `order` is sorted, so the last text of a sub-batch is its longest.
            let mut end = start + 1;
            while end < order.len()
                && (end + 1 - start) * encodings[order[end]].len() <= self.max_batch_tokens
                && !self.one_text_per_run
            {
                end += 1;
            }
            self.run_batch(&mut state, &encodings, &order[start..end], &mut result)?;
            start = end;
        }
        Ok(result)
    }

    fn encode(&self, inputs: &[std::borrow::Cow<'_, str>]) -> Result<Vec<Encoding>> {
        let tokenizer_error = |source| Error::Tokenizer {
            during: "encoding",
            source,
        };
        if let [single] = inputs {
            // One text (a query): skip the batch machinery and its thread pool.
            let encoding = self
                .tokenizer
                .encode(single.as_ref(), true)
                .map_err(tokenizer_error)?;
            Ok(vec![encoding])
        } else {
            let refs: Vec<&str> = inputs.iter().map(|s| s.as_ref()).collect();
            self.tokenizer
                .encode_batch(refs, true)
                .map_err(tokenizer_error)
        }
    }

    /// Runs the texts `batch` (indices into `encodings`, shortest first) and writes their pooled,
    /// normalized vectors into `result`.
    fn run_batch(
        &self,
        state: &mut State,
        encodings: &[Encoding],
        batch: &[usize],
        result: &mut [Vec<f32>],
    ) -> Result<()> {
        let rows = batch.len();
        let cols = batch.iter().map(|&i| encodings[i].len()).max().unwrap_or(0);
        let State {
            session,
            ids,
            mask,
            types,
        } = state;
        ids.clear();
        mask.clear();
        types.clear();
        ids.resize(rows * cols, 0);
        mask.resize(rows * cols, 0);
        types.resize(rows * cols, 0);
        for (row, &i) in batch.iter().enumerate() {
            let enc = &encodings[i];
            let base = row * cols;
            for (t, ((&id, &m), &ty)) in enc
                .get_ids()
                .iter()
                .zip(enc.get_attention_mask())
                .zip(enc.get_type_ids())
                .enumerate()
            {
                ids[base + t] = i64::from(id);
                mask[base + t] = i64::from(m);
                types[base + t] = i64::from(ty);
            }
        }
        let run_error = |e: ort::Error| Error::Inference {
            during: "running the model",
            source: e.to_string().into(),
        };
        let shape = [rows as i64, cols as i64];
        let mut inputs = ort::inputs![
            "input_ids" => TensorRef::from_array_view((shape, &ids[..])).map_err(run_error)?,
            "attention_mask" => TensorRef::from_array_view((shape, &mask[..])).map_err(run_error)?,
        ];
        if self.need_token_type_ids {
            inputs.push((
                "token_type_ids".into(),
                TensorRef::from_array_view((shape, &types[..]))
                    .map_err(run_error)?
                    .into(),
            ));
        }
        let outputs = session.run(inputs).map_err(run_error)?;
        let (out_shape, hidden) = outputs[self.output]
            .try_extract_tensor::<f32>()
            .map_err(run_error)?;
        let dims = self.dimensions;
        if out_shape.len() != 3
            || out_shape[0] != rows as i64
            || out_shape[1] != cols as i64
            || out_shape[2] != dims as i64
        {
            return Err(Error::Inference {
                during: "reading the model output",
                source: format!("unexpected output shape {out_shape:?}").into(),
            });
        }
        for (row, &i) in batch.iter().enumerate() {
            let mut pooled = match self.pooling {
                Pooling::Mean => mean_pool(hidden, &mask[row * cols..(row + 1) * cols], row, dims),
                // Position 0 is `[CLS]`: the tokenizer's template puts it first in every text.
                Pooling::Cls => hidden[row * cols * dims..row * cols * dims + dims].to_vec(),
            };
            normalize(&mut pooled, i)?;
            result[i] = pooled;
        }
        Ok(())
    }
}

/// The mean of row `row`'s token vectors in `hidden` (`[rows, cols, dims]`, `cols` = `mask`'s
/// length) over the tokens `mask` marks.
fn mean_pool(hidden: &[f32], mask: &[i64], row: usize, dims: usize) -> Vec<f32> {
    let cols = mask.len();
    let mut pooled = vec![0.0f32; dims];
    let mut count = 0u32;
    for (t, &m) in mask.iter().enumerate() {
        if m == 0 {
            continue;
        }
        count += 1;
        let offset = (row * cols + t) * dims;
        for (acc, &h) in pooled.iter_mut().zip(&hidden[offset..offset + dims]) {
            *acc += h;
        }
    }
    let scale = 1.0 / count.max(1) as f32;
    for x in &mut pooled {
        *x *= scale;
    }
    pooled
}

#[async_trait]
impl Embedder for OnnxEmbedder {
    fn model_id(&self) -> &str {
        &self.inner.model_id
    }

    /// Tokens of `text` without `[CLS]`/`[SEP]` and without truncation. The tokenizer
    /// truncates at `max_length`, so the text is counted in windows of at most 2 KiB: each
    /// window's last pre-tokenized word (which truncation or the window may have cut) is left
    /// for the next window. BERT pre-tokenization splits at whitespace and punctuation
    /// independently of context, so the sum is exact, except for a single "word" longer than
    /// a window, which is counted as cut.
    fn count_tokens(&self, text: &str) -> Option<usize> {
        const WINDOW: usize = 2048;
        let mut rest = text;
        let mut total = 0;
        loop {
            let mut w = rest.len().min(WINDOW);
            while !rest.is_char_boundary(w) {
                w -= 1;
            }
            let window = &rest[..w];
            let encoding = self.inner.tokenizer.encode(window, false).ok()?;
            let n = encoding.len();
            let offsets = encoding.get_offsets();
            let Some(&(_, end)) = offsets.last() else {
                // Nothing but whitespace (or text the normalizer drops) in this window.
                if w == rest.len() {
                    return Some(total);
                }
                rest = &rest[w..];
                continue;
            };
            if w == rest.len() && rest.get(end..)?.trim().is_empty() {
                return Some(total + n);
            }
            let words = encoding.get_word_ids();
            let last_word_start = words.iter().position(|id| *id == words[n - 1]);
            let (counted, cut) = match last_word_start {
                Some(k) if k > 0 => (k, offsets[k].0),
                _ => (n, end),
            };
            total += counted;
            // `cut > 0` always holds (a token ends after byte 0); the guard keeps the loop
            // finite whatever the tokenizer reports.
            rest = rest.get(cut.max(1)..)?;
        }
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions
    }

    async fn embed(&self, texts: &[String], kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        check_texts(texts)?;
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inner = Arc::clone(&self.inner);
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || inner.embed(&texts, kind))
            .await
            .map_err(Error::Join)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_runtime_library_is_a_typed_error() {
        let err = init_runtime(Path::new("/nonexistent/libonnxruntime.so")).unwrap_err();
        assert!(matches!(err, Error::MissingFile { .. }), "{err}");
        assert!(err.to_string().contains(crate::FIX_COMMAND));
    }

    #[test]
    fn a_file_that_is_not_onnx_runtime_is_a_load_error() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("libonnxruntime.so");
        std::fs::write(&fake, b"not a shared library").unwrap();
        let err = init_runtime(&fake).unwrap_err();
        assert!(matches!(err, Error::RuntimeLoad { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("libonnxruntime.so") && msg.contains(crate::FIX_COMMAND),
            "{msg}"
        );
        // Nothing was committed: a failed load does not poison the process.
        assert!(RUNTIME.lock().unwrap().is_none());
    }

    #[test]
    fn builder_rejects_bad_lengths() {
        let err = OnnxEmbedder::builder().max_length(0).build().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)));
        let err = OnnxEmbedder::builder()
            .max_batch_tokens(10)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)));
    }
}
