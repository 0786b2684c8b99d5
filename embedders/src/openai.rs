//! [`OpenAiCompatibleEmbedder`]: the `/v1/embeddings` HTTP API of OpenAI, ollama, vLLM and the
//! llama.cpp server.
//!
//! Requests go through a blocking HTTP client (`ureq`, rustls) on tokio's blocking pool, which
//! keeps the dependency tree small. Responses are checked (count, dimensions, finiteness) and
//! re-normalized, since not every server returns unit vectors.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::embedder::{Prefixes, check_texts, finish_vectors};
use crate::http::{ApiSettings, JsonEndpoint};
use crate::{EmbedKind, Embedder, Error, Result};

/// Largest response body read, in bytes (2048 vectors of 3072 dimensions as JSON fit).
const MAX_RESPONSE_BYTES: u64 = 512 << 20;

/// Builds an [`OpenAiCompatibleEmbedder`]. Get one from [`OpenAiCompatibleEmbedder::builder`].
#[derive(Clone, Debug)]
pub struct OpenAiCompatibleEmbedderBuilder {
    api: ApiSettings,
    model: String,
    dimensions: usize,
    send_dimensions: bool,
    prefixes: Prefixes,
}

impl OpenAiCompatibleEmbedderBuilder {
    crate::api_settings_setters! {
        base_url: "The API base, up to and including `/v1`; requests go to `{base_url}/embeddings`.
        Defaults to `https://api.openai.com/v1`. For ollama: `http://localhost:11434/v1`.",
        timeout: "Time allowed for a whole request, connection to last byte. Defaults to 30 seconds.",
    }

    /// Also send `"dimensions"` in the request, for models that can shorten their vectors
    /// (OpenAI `text-embedding-3-*`). Defaults to `false` (many servers reject the field).
    pub fn send_dimensions(&mut self, send: bool) -> &mut Self {
        self.send_dimensions = send;
        self
    }

    /// Query and document prefixes. Defaults to none.
    pub fn prefixes(&mut self, prefixes: Prefixes) -> &mut Self {
        self.prefixes = prefixes;
        self
    }

    /// The embedder.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an empty model name, zero dimensions, a zero timeout or a base
    /// URL that is not `http://` or `https://`.
    pub fn build(&self) -> Result<OpenAiCompatibleEmbedder> {
        if self.model.is_empty() || self.dimensions == 0 || self.api.timeout.is_zero() {
            return Err(Error::InvalidConfig(
                "model must be non-empty; dimensions and timeout non-zero".into(),
            ));
        }
        let endpoint = self
            .api
            .endpoint("embeddings")
            .map_err(Error::InvalidConfig)?;
        Ok(OpenAiCompatibleEmbedder {
            inner: Arc::new(Client {
                endpoint,
                model_id: format!("openai-compatible:{}@{}", self.model, self.api.base_url),
                config: self.clone(),
            }),
        })
    }
}

/// An embedder calling an OpenAI-compatible `POST {base_url}/embeddings` endpoint.
#[derive(Clone)]
pub struct OpenAiCompatibleEmbedder {
    inner: Arc<Client>,
}

struct Client {
    endpoint: JsonEndpoint,
    model_id: String,
    config: OpenAiCompatibleEmbedderBuilder,
}

impl std::fmt::Debug for OpenAiCompatibleEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiCompatibleEmbedder")
            .field("url", &self.inner.endpoint.url())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl OpenAiCompatibleEmbedder {
    /// A builder for `model`, whose vectors have `dimensions` components; other settings default
    /// (see the setters).
    pub fn builder(model: impl Into<String>, dimensions: usize) -> OpenAiCompatibleEmbedderBuilder {
        OpenAiCompatibleEmbedderBuilder {
            api: ApiSettings::openai(Duration::from_secs(30)),
            model: model.into(),
            dimensions,
            send_dimensions: false,
            prefixes: Prefixes::default(),
        }
    }
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    embedding: Vec<f32>,
    #[serde(default)]
    index: Option<usize>,
}

impl Client {
    fn request(&self, texts: &[String], kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        let config = &self.config;
        let input: Vec<_> = texts
            .iter()
            .map(|t| config.prefixes.apply(kind, t))
            .collect();
        let mut body = serde_json::json!({
            "model": config.model,
            "input": input,
            "encoding_format": "float",
        });
        if config.send_dimensions {
            body["dimensions"] = config.dimensions.into();
        }
        let text = self
            .endpoint
            .post(&body, MAX_RESPONSE_BYTES)
            .map_err(|e| Error::request(&self.endpoint, e))?;
        let parsed: Response =
            serde_json::from_str(&text).map_err(|e| Error::MalformedResponse {
                reason: "not an embeddings response".into(),
                source: Some(e),
            })?;
        let mut items = parsed.data;
        if items.iter().all(|i| i.index.is_some()) {
            items.sort_by_key(|i| i.index);
            if items
                .iter()
                .enumerate()
                .any(|(n, item)| item.index != Some(n))
            {
                return Err(Error::MalformedResponse {
                    reason: "`index` values are not 0..n".into(),
                    source: None,
                });
            }
        }
        let mut vectors: Vec<Vec<f32>> = items.into_iter().map(|i| i.embedding).collect();
        finish_vectors(&mut vectors, texts.len(), config.dimensions)?;
        Ok(vectors)
    }
}

#[async_trait]
impl Embedder for OpenAiCompatibleEmbedder {
    fn model_id(&self) -> &str {
        &self.inner.model_id
    }

    fn dimensions(&self) -> usize {
        self.inner.config.dimensions
    }

    /// # Errors
    ///
    /// [`Error::Http`] for a non-2xx status, [`Error::Timeout`], [`Error::Transport`],
    /// [`Error::MalformedResponse`], [`Error::CountMismatch`], [`Error::DimensionMismatch`],
    /// [`Error::NonFinite`], and [`Error::EmptyText`].
    async fn embed(&self, texts: &[String], kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        check_texts(texts)?;
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let client = Arc::clone(&self.inner);
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || client.request(&texts, kind))
            .await
            .map_err(Error::Join)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_validates() {
        assert!(OpenAiCompatibleEmbedder::builder("", 3).build().is_err());
        assert!(OpenAiCompatibleEmbedder::builder("m", 0).build().is_err());
        assert!(
            OpenAiCompatibleEmbedder::builder("m", 3)
                .base_url("ftp://x")
                .build()
                .is_err()
        );
        let e = OpenAiCompatibleEmbedder::builder("m", 3)
            .base_url("http://127.0.0.1:1/v1/")
            .build()
            .unwrap();
        assert_eq!(e.inner.endpoint.url(), "http://127.0.0.1:1/v1/embeddings");
    }

    #[test]
    fn api_key_is_not_in_debug_output() {
        let mut b = OpenAiCompatibleEmbedder::builder("m", 3);
        b.api_key("sk-secret");
        assert!(!format!("{b:?}").contains("sk-secret"));
    }
}
