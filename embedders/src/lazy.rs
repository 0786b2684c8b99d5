//! [`LazyDefaultEmbedder`]: the local embedder, loaded on the first text it must embed.
//!
//! Loading the ONNX model costs most of a short CLI command (0.6–0.8 s). Commands that never
//! embed (feedback, consolidation, reads) should not pay it, yet a shard must be opened with
//! the model's id and dimensions, which are known without loading anything. This wrapper
//! reports them up front and loads the real model the first time it is asked to embed; the
//! loaded model's id and dimensions are checked against what it reported, so a shard can never
//! be written with vectors of another model. Nothing falls back: a missing model is the same
//! error as an eager load's, raised by the first call that needs the model.

use std::sync::Arc;

use async_trait::async_trait;

use crate::provision::ProvisionOptions;
use crate::{EmbedKind, Embedder, Error, LocalModel, Result, default_embedder};

/// The local embedder ([`default_embedder`] of the options'
/// [`local_model`](ProvisionOptions::local_model)), loaded on first use. Its
/// [`model_id`](Embedder::model_id) and [`dimensions`](Embedder::dimensions) are that model's
/// from the start.
#[derive(Debug)]
pub struct LazyDefaultEmbedder {
    provision: ProvisionOptions,
    loaded: tokio::sync::OnceCell<Arc<dyn Embedder>>,
}

impl LazyDefaultEmbedder {
    /// The model `provision` selects, provisioned with `provision`, not loaded yet.
    pub fn new(provision: ProvisionOptions) -> Self {
        LazyDefaultEmbedder {
            provision,
            loaded: tokio::sync::OnceCell::new(),
        }
    }

    /// Whether the model has been loaded.
    pub fn is_loaded(&self) -> bool {
        self.loaded.initialized()
    }

    /// The model this embedder loads.
    pub fn local_model(&self) -> LocalModel {
        self.provision.selected_model()
    }

    /// Loads the model (blocking) and checks it is the one announced.
    fn load_blocking(provision: &ProvisionOptions) -> Result<Arc<dyn Embedder>> {
        let announced = provision.selected_model();
        let started = std::time::Instant::now();
        let e = default_embedder(provision)?;
        tracing::info!(
            model = e.model_id(),
            ms = format!("{:.0}", started.elapsed().as_secs_f64() * 1e3),
            "loaded the embedding model (cold start)"
        );
        if e.model_id() != announced.model_id() || e.dimensions() != announced.dimensions() {
            return Err(Error::InvalidConfig(format!(
                "the model loaded as {} ({}-d), not {} ({}-d) as announced; use an explicit \
                 embedder for a custom model",
                e.model_id(),
                e.dimensions(),
                announced.model_id(),
                announced.dimensions()
            )));
        }
        Ok(e)
    }

    /// The loaded model, loading it on tokio's blocking pool the first time (concurrent
    /// callers wait for the one load).
    async fn model(&self) -> Result<&Arc<dyn Embedder>> {
        self.loaded
            .get_or_try_init(|| async {
                let p = self.provision.clone();
                tokio::task::spawn_blocking(move || Self::load_blocking(&p))
                    .await
                    .map_err(Error::Join)?
            })
            .await
    }
}

#[async_trait]
impl Embedder for LazyDefaultEmbedder {
    fn model_id(&self) -> &str {
        self.local_model().model_id()
    }

    fn dimensions(&self) -> usize {
        self.local_model().dimensions()
    }

    async fn embed(&self, texts: &[String], kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        self.model().await?.embed(texts, kind).await
    }

    /// Counts with the model's tokenizer, loading the model (blocking) if nothing was embedded
    /// yet, so a token budget is never estimated merely because the model was not needed
    /// before. `None` if the model cannot be loaded; the next `embed` reports why.
    fn count_tokens(&self, text: &str) -> Option<usize> {
        if let Some(e) = self.loaded.get() {
            return e.count_tokens(text);
        }
        let e = Self::load_blocking(&self.provision).ok()?;
        // Another caller may have loaded it meanwhile; either copy is the same model.
        let _ = self.loaded.set(Arc::clone(&e));
        e.count_tokens(text)
    }
}
