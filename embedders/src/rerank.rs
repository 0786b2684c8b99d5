//! [`Reranker`]: a second look at a handful of candidates, scoring each one *together with*
//! the query (a cross-encoder), which a single vector per text cannot do; and
//! [`HttpReranker`] (feature `openai`), the `POST {base_url}/rerank` API that llama.cpp's
//! server (`--reranking`), vLLM, Jina and Cohere share.
//!
//! Recall uses a reranker on its first stage's best candidates only (a cross-encoder reads
//! every query–document pair, so its cost grows with their number).

use async_trait::async_trait;

use crate::{Error, Result};

/// Scores documents against a query. Object-safe; shared as `Arc<dyn Reranker>`.
#[async_trait]
pub trait Reranker: Send + Sync + std::fmt::Debug {
    /// Names the model and where it runs, e.g.
    /// `rerank:bge-reranker-v2-m3@http://localhost:8080/v1`.
    fn model_id(&self) -> &str;

    /// One relevance score per document, in the order of `documents`: higher is more
    /// relevant. Scores compare documents of one call; their scale is the model's (a logit or
    /// a probability) and means nothing across models.
    ///
    /// # Errors
    /// [`Error::EmptyText`] for an empty query (index 0) or document (its index + 1), and the
    /// implementation's own failures. No documents is `Ok` with no scores.
    async fn rerank(&self, query: &str, documents: &[String]) -> Result<Vec<f32>>;
}

/// Refuses an empty query or document: [`Error::EmptyText`] with index 0 for the query and
/// `i + 1` for document `i`.
pub fn check_pair_texts(query: &str, documents: &[String]) -> Result<()> {
    if query.trim().is_empty() {
        return Err(Error::EmptyText { index: 0 });
    }
    match documents.iter().position(|d| d.trim().is_empty()) {
        Some(i) => Err(Error::EmptyText { index: i + 1 }),
        None => Ok(()),
    }
}

#[cfg(feature = "openai")]
pub use http::{HttpReranker, HttpRerankerBuilder};

#[cfg(feature = "openai")]
mod http {
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use serde::Deserialize;

    use super::{Reranker, check_pair_texts};
    use crate::http::{ApiSettings, JsonEndpoint};
    use crate::{Error, Result};

    /// Largest response body read, in bytes.
    const MAX_RESPONSE_BYTES: u64 = 64 << 20;

    /// Builds an [`HttpReranker`]. Get one from [`HttpReranker::builder`].
    #[derive(Clone, Debug)]
    pub struct HttpRerankerBuilder {
        api: ApiSettings,
        model: String,
    }

    impl HttpRerankerBuilder {
        crate::api_settings_setters! {
            base_url: "The API base, up to and including `/v1`; requests go to `{base_url}/rerank`.
             Defaults to `http://127.0.0.1:8080/v1` (llama.cpp's server).",
            timeout: "Time allowed for a whole request, connection to last byte. Defaults to 30 seconds.",
        }

        /// The reranker.
        ///
        /// # Errors
        /// [`Error::InvalidConfig`] for an empty model name, a zero timeout or a base URL
        /// that is not `http://` or `https://`.
        pub fn build(&self) -> Result<HttpReranker> {
            if self.model.trim().is_empty() {
                return Err(Error::InvalidConfig(
                    "the reranker's model name is empty".into(),
                ));
            }
            let endpoint = self.api.endpoint("rerank").map_err(Error::InvalidConfig)?;
            Ok(HttpReranker {
                inner: Arc::new(Client {
                    endpoint,
                    model_id: format!("rerank:{}@{}", self.model, self.api.base_url),
                    config: self.clone(),
                }),
            })
        }
    }

    /// A reranker behind `POST {base_url}/rerank`: the request is
    /// `{"model", "query", "documents", "top_n"}` and the answer lists `{"index",
    /// "relevance_score"}` under `results` (llama.cpp, vLLM, Jina, Cohere). Every document
    /// must be scored exactly once, with a finite score, or the answer is refused.
    #[derive(Clone)]
    pub struct HttpReranker {
        inner: Arc<Client>,
    }

    struct Client {
        endpoint: JsonEndpoint,
        model_id: String,
        config: HttpRerankerBuilder,
    }

    impl std::fmt::Debug for HttpReranker {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("HttpReranker")
                .field("url", &self.inner.endpoint.url())
                .field("config", &self.inner.config)
                .finish_non_exhaustive()
        }
    }

    impl HttpReranker {
        /// A builder for `model`; other settings default (see the setters).
        pub fn builder(model: impl Into<String>) -> HttpRerankerBuilder {
            HttpRerankerBuilder {
                api: ApiSettings {
                    base_url: "http://127.0.0.1:8080/v1".into(),
                    api_key: None,
                    timeout: Duration::from_secs(30),
                },
                model: model.into(),
            }
        }
    }

    #[derive(Deserialize)]
    struct Answer {
        results: Vec<Scored>,
    }

    #[derive(Deserialize)]
    struct Scored {
        index: usize,
        relevance_score: f32,
    }

    impl Client {
        fn request(&self, query: &str, documents: &[String]) -> Result<Vec<f32>> {
            let body = serde_json::json!({
                "model": self.config.model,
                "query": query,
                "documents": documents,
                "top_n": documents.len(),
            });
            let text = self
                .endpoint
                .post(&body, MAX_RESPONSE_BYTES)
                .map_err(|e| Error::request(&self.endpoint, e))?;
            let answer: Answer =
                serde_json::from_str(&text).map_err(|e| Error::MalformedResponse {
                    reason: "not a rerank response (`results` of `index` and \
                             `relevance_score`)"
                        .into(),
                    source: Some(e),
                })?;
            scores_in_order(answer.results, documents.len())
        }
    }

    /// The scores by document index: each of `0..n` exactly once, finite.
    fn scores_in_order(scored: Vec<Scored>, n: usize) -> Result<Vec<f32>> {
        if scored.len() != n {
            return Err(Error::CountMismatch {
                expected: n,
                actual: scored.len(),
            });
        }
        let mut out = vec![None; n];
        for s in scored {
            let slot = out
                .get_mut(s.index)
                .ok_or_else(|| Error::MalformedResponse {
                    reason: format!("document index {} is out of range 0..{n}", s.index),
                    source: None,
                })?;
            if slot.is_some() {
                return Err(Error::MalformedResponse {
                    reason: format!("document {} is scored twice", s.index),
                    source: None,
                });
            }
            if !s.relevance_score.is_finite() {
                return Err(Error::NonFinite { index: s.index });
            }
            *slot = Some(s.relevance_score);
        }
        // n entries, each index in range and none twice: every slot is filled.
        Ok(out.into_iter().flatten().collect())
    }

    #[async_trait]
    impl Reranker for HttpReranker {
        fn model_id(&self) -> &str {
            &self.inner.model_id
        }

        /// # Errors
        /// [`Error::EmptyText`], [`Error::Http`] for a non-2xx status, [`Error::Timeout`],
        /// [`Error::Transport`], [`Error::MalformedResponse`] (not JSON of the expected
        /// shape, an index out of range or twice), [`Error::CountMismatch`] and
        /// [`Error::NonFinite`] (a NaN or infinite score).
        async fn rerank(&self, query: &str, documents: &[String]) -> Result<Vec<f32>> {
            check_pair_texts(query, documents)?;
            if documents.is_empty() {
                return Ok(Vec::new());
            }
            let client = Arc::clone(&self.inner);
            let (query, documents) = (query.to_owned(), documents.to_vec());
            tokio::task::spawn_blocking(move || client.request(&query, &documents))
                .await
                .map_err(Error::Join)?
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn scored(pairs: &[(usize, f32)]) -> Vec<Scored> {
            pairs
                .iter()
                .map(|&(index, relevance_score)| Scored {
                    index,
                    relevance_score,
                })
                .collect()
        }

        #[test]
        fn scores_come_back_in_document_order() {
            let s = scores_in_order(scored(&[(2, 0.1), (0, 3.0), (1, -1.0)]), 3).unwrap();
            assert_eq!(s, vec![3.0, -1.0, 0.1]);
        }

        #[test]
        fn every_document_is_scored_once() {
            assert!(matches!(
                scores_in_order(scored(&[(0, 1.0)]), 2),
                Err(Error::CountMismatch {
                    expected: 2,
                    actual: 1
                })
            ));
            assert!(matches!(
                scores_in_order(scored(&[(0, 1.0), (0, 2.0)]), 2),
                Err(Error::MalformedResponse { .. })
            ));
            assert!(matches!(
                scores_in_order(scored(&[(0, 1.0), (5, 2.0)]), 2),
                Err(Error::MalformedResponse { .. })
            ));
            assert!(matches!(
                scores_in_order(scored(&[(0, 1.0), (1, f32::NAN)]), 2),
                Err(Error::NonFinite { index: 1 })
            ));
        }

        #[test]
        fn builder_validates_and_hides_the_key() {
            assert!(HttpReranker::builder(" ").build().is_err());
            assert!(
                HttpReranker::builder("m")
                    .base_url("ftp://x")
                    .build()
                    .is_err()
            );
            let mut b = HttpReranker::builder("m");
            b.base_url("http://127.0.0.1:1/v1/").api_key("sk-secret");
            let r = b.build().unwrap();
            assert_eq!(r.inner.endpoint.url(), "http://127.0.0.1:1/v1/rerank");
            assert!(!format!("{r:?}").contains("sk-secret"));
            assert_eq!(r.model_id(), "rerank:m@http://127.0.0.1:1/v1/");
        }
    }
}
