//! Reranking for [`AgentMemory::recall`](crate::AgentMemory::recall): the builder's
//! reranker settings and the second stage that reorders recalled memories by a reranker's
//! scores ([`RecallOptions::rerank`](crate::RecallOptions::rerank)).

use std::sync::Arc;

use crate::embedders::{HttpReranker, Reranker};
use crate::recall::Recalled;
use crate::{AgentMemoryBuilder, Error, Result};

/// The environment variable holding the API key of
/// [`AgentMemoryBuilder::rerank_server`]'s rerank API.
pub const RERANK_API_KEY_ENV: &str = "REASONBANK_RERANK_API_KEY";

impl AgentMemoryBuilder {
    /// The reranker (a cross-encoder) behind [`RecallOptions::rerank`](crate::RecallOptions::rerank),
    /// also used by the ReasoningBank's recall and context synthesis on their best
    /// candidates ([`BankBuilder::reranker`](crate::reasoning::BankBuilder::reranker)).
    /// Defaults to none.
    pub fn reranker(&mut self, r: Arc<dyn Reranker>) -> &mut Self {
        self.reranker = Some(r);
        self
    }

    /// [`reranker`](Self::reranker): an [`HttpReranker`] at `base_url` (up to and including
    /// `/v1`, e.g. llama.cpp's server started with `--reranking`: `http://localhost:8080/v1`)
    /// serving `model`, with the API key of the environment variable [`RERANK_API_KEY_ENV`]
    /// if set. The CLI's and the MCP server's `--rerank-url`/`--rerank-model`.
    ///
    /// # Errors
    /// [`Error::Embedder`] with an invalid-configuration error for an empty model or a URL
    /// that is not http(s).
    pub fn rerank_server(&mut self, base_url: &str, model: &str) -> Result<&mut Self> {
        let mut b = HttpReranker::builder(model);
        b.base_url(base_url);
        if let Some(key) = std::env::var(RERANK_API_KEY_ENV)
            .ok()
            .filter(|k| !k.is_empty())
        {
            b.api_key(key);
        }
        Ok(self.reranker(Arc::new(b.build()?)))
    }

    /// [`rerank_server`](Self::rerank_server) from a front end's two optional settings,
    /// named `names` in its own words (`["rerankUrl", "rerankModel"]`): both set is a
    /// reranker, neither is none.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when only one is set; as [`rerank_server`](Self::rerank_server)
    /// otherwise.
    pub fn rerank_options(
        &mut self,
        base_url: Option<&str>,
        model: Option<&str>,
        names: [&str; 2],
    ) -> Result<&mut Self> {
        match crate::agent::both_or_neither("reranker options", base_url, model, names)? {
            Some((url, model)) => self.rerank_server(url, model),
            None => Ok(self),
        }
    }
}

/// The best `k` of `recalled` by `reranker`'s scores against `query` (ties keep the first
/// ranking's order), each with that score as its `score` and `why.rerank`.
pub(crate) async fn rerank(
    reranker: &dyn Reranker,
    query: &str,
    mut recalled: Vec<Recalled>,
    k: usize,
) -> Result<Vec<Recalled>> {
    let texts: Vec<String> = recalled.iter().map(|r| r.text.clone()).collect();
    let scores = reranker
        .rerank(query, &texts)
        .await
        .map_err(|source| Error::Rerank {
            model: reranker.model_id().to_owned(),
            source,
        })?;
    for (r, s) in recalled.iter_mut().zip(scores) {
        r.score = s;
        r.why.rerank = Some(s);
    }
    // A stable sort: equal scores keep the first ranking's order.
    recalled.sort_by(|a, b| b.score.total_cmp(&a.score));
    recalled.truncate(k);
    Ok(recalled)
}
