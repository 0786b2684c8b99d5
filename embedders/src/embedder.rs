//! The [`Embedder`] trait and the small types every embedder shares.
//!
//! This module needs no feature: a crate that only consumes embeddings depends on
//! `reasonbank-embedders` with `default-features = false` and gets exactly this.

use async_trait::async_trait;

use crate::{Error, Result};

/// What a text is used for. Some models (E5, BGE, nomic) expect different prefixes for search
/// queries and for the documents searched; see [`Prefixes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EmbedKind {
    /// A search query.
    Query,
    /// A document (memory, passage) to be searched.
    Document,
}

impl EmbedKind {
    /// A stable one-byte tag, used in cache keys.
    pub(crate) fn tag(self) -> u8 {
        match self {
            EmbedKind::Query => b'q',
            EmbedKind::Document => b'd',
        }
    }
}

/// Text prepended to queries and documents before embedding.
///
/// Defaults to no prefix for either kind, which is right for all-MiniLM-L6-v2 and for OpenAI
/// models. E5 models want `"query: "` / `"passage: "`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefixes {
    query: String,
    document: String,
}

impl Prefixes {
    /// Prefixes `query` for [`EmbedKind::Query`] and `document` for [`EmbedKind::Document`].
    pub fn new(query: impl Into<String>, document: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            document: document.into(),
        }
    }

    /// The prefix for `kind`.
    pub fn get(&self, kind: EmbedKind) -> &str {
        match kind {
            EmbedKind::Query => &self.query,
            EmbedKind::Document => &self.document,
        }
    }

    /// `text` with the prefix for `kind` in front (borrowed when the prefix is empty). For
    /// implementors of [`Embedder`].
    pub fn apply<'a>(&self, kind: EmbedKind, text: &'a str) -> std::borrow::Cow<'a, str> {
        let prefix = self.get(kind);
        if prefix.is_empty() {
            std::borrow::Cow::Borrowed(text)
        } else {
            std::borrow::Cow::Owned(format!("{prefix}{text}"))
        }
    }
}

/// Turns texts into vectors.
///
/// Implementations are passed around as `Arc<dyn Embedder>`.
///
/// # Contract
///
/// For `embed(texts, kind)` returning `Ok(vectors)`:
/// - `vectors.len() == texts.len()` and `vectors[i]` belongs to `texts[i]`;
/// - every vector has [`dimensions()`](Embedder::dimensions) components, all finite, and unit
///   L2 norm (so cosine similarity is a dot product);
/// - an empty `texts` slice gives an empty result without any work.
///
/// A text that is empty or only whitespace makes the whole call fail with
/// [`Error::EmptyText`]: it has no meaning to embed, and the vector a model produces for it is an
/// artefact that sits close to many unrelated texts. Filter such texts out before calling.
///
/// Implementations never block the async executor: CPU-bound and blocking work runs on tokio's
/// blocking pool, so `embed` must be called from within a tokio runtime.
#[async_trait]
pub trait Embedder: Send + Sync + std::fmt::Debug {
    /// An identifier of the model (and its configuration) that produced the vectors. Vectors with
    /// different model ids are not comparable; caches key on it.
    fn model_id(&self) -> &str;

    /// The length of every vector this embedder returns.
    fn dimensions(&self) -> usize;

    /// Embeds `texts`, returning one unit-length vector per text, in order.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyText`] for an empty or whitespace-only text; otherwise backend errors
    /// (runtime, HTTP, cache) as documented by each implementation.
    async fn embed(&self, texts: &[String], kind: EmbedKind) -> Result<Vec<Vec<f32>>>;

    /// Number of tokens the model sees for `text`, when the embedder knows its tokenizer.
    ///
    /// Callers that budget prompt space (context synthesis) use it; `None` means "unknown",
    /// and the caller must fall back to an estimate it documents. Defaults to `None`.
    fn count_tokens(&self, text: &str) -> Option<usize> {
        let _ = text;
        None
    }

    /// Embeds a single text.
    ///
    /// # Errors
    ///
    /// As [`embed`](Embedder::embed).
    async fn embed_one(&self, text: &str, kind: EmbedKind) -> Result<Vec<f32>> {
        let mut vectors = self.embed(&[text.to_owned()], kind).await?;
        let got = vectors.len();
        match vectors.pop() {
            Some(vector) if got == 1 => Ok(vector),
            _ => Err(Error::CountMismatch {
                expected: 1,
                actual: got,
            }),
        }
    }
}

/// Fails with [`Error::EmptyText`] on the first empty or whitespace-only text.
///
/// # Errors
///
/// See above.
pub fn check_texts(texts: &[String]) -> Result<()> {
    match texts.iter().position(|t| t.trim().is_empty()) {
        Some(index) => Err(Error::EmptyText { index }),
        None => Ok(()),
    }
}

/// Scales `vector` to unit L2 norm in place.
///
/// The norm is accumulated in `f64` so long vectors lose no precision.
///
/// # Errors
///
/// [`Error::NonFinite`] (with `index`) if a component is NaN or infinite, or the vector is zero.
pub fn normalize(vector: &mut [f32], index: usize) -> Result<()> {
    let mut sum = 0.0f64;
    for &x in vector.iter() {
        if !x.is_finite() {
            return Err(Error::NonFinite { index });
        }
        sum += f64::from(x) * f64::from(x);
    }
    let norm = sum.sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(Error::NonFinite { index });
    }
    let inv = (1.0 / norm) as f32;
    for x in vector.iter_mut() {
        *x *= inv;
    }
    Ok(())
}

/// Checks that a backend's answer fits the [`Embedder`] contract and normalizes every vector.
///
/// # Errors
///
/// [`Error::CountMismatch`], [`Error::DimensionMismatch`] or [`Error::NonFinite`].
pub fn finish_vectors(
    vectors: &mut [Vec<f32>],
    expected_count: usize,
    dimensions: usize,
) -> Result<()> {
    if vectors.len() != expected_count {
        return Err(Error::CountMismatch {
            expected: expected_count,
            actual: vectors.len(),
        });
    }
    for (index, vector) in vectors.iter_mut().enumerate() {
        if vector.len() != dimensions {
            return Err(Error::DimensionMismatch {
                index,
                expected: dimensions,
                actual: vector.len(),
            });
        }
        normalize(vector, index)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_gives_unit_norm() {
        let mut v = vec![3.0, 4.0];
        normalize(&mut v, 0).unwrap();
        assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
    }

    #[test]
    fn normalize_rejects_zero_and_nan() {
        assert!(matches!(
            normalize(&mut [0.0, 0.0], 3),
            Err(Error::NonFinite { index: 3 })
        ));
        assert!(matches!(
            normalize(&mut [f32::NAN, 1.0], 0),
            Err(Error::NonFinite { .. })
        ));
    }

    #[test]
    fn empty_and_whitespace_texts_are_refused() {
        let texts = vec!["ok".to_owned(), " \n\t".to_owned()];
        assert!(matches!(
            check_texts(&texts),
            Err(Error::EmptyText { index: 1 })
        ));
        assert!(check_texts(&["x".to_owned()]).is_ok());
    }

    #[test]
    fn finish_checks_count_and_dimensions() {
        let mut v = vec![vec![1.0, 0.0]];
        assert!(matches!(
            finish_vectors(&mut v, 2, 2),
            Err(Error::CountMismatch { .. })
        ));
        assert!(matches!(
            finish_vectors(&mut v, 1, 3),
            Err(Error::DimensionMismatch { .. })
        ));
        finish_vectors(&mut v, 1, 2).unwrap();
    }

    #[test]
    fn prefixes_apply() {
        let p = Prefixes::new("query: ", "");
        assert_eq!(p.apply(EmbedKind::Query, "x"), "query: x");
        assert_eq!(p.apply(EmbedKind::Document, "x"), "x");
    }
}
