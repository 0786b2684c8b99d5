//! Context synthesis: recalled items from several agents' shards, deduplicated and
//! diversified, packed into a prompt-ready block within a token budget.

use reasonbank_memory::{RecordId, ShardId};
use serde::Serialize;

use crate::recall::{Ranking, RecallOptions, ScoredItem};
use crate::{ItemKind, ReasoningBank, Result};

/// An item placed in a synthesized context.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ContextItem {
    /// The shard (agent) it came from.
    pub shard: ShardId,
    /// Its id.
    pub id: RecordId,
    /// Its kind.
    pub kind: ItemKind,
    /// Its title.
    pub title: String,
    /// Its ranking score.
    pub score: f32,
    /// Tokens its block takes.
    pub tokens: usize,
}

/// A prompt-ready block of memory items from one or more shards.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct SynthesizedContext {
    /// The text to put in a prompt (empty when nothing fits or nothing matched).
    pub text: String,
    /// The items in the text, in order.
    pub items: Vec<ContextItem>,
    /// Tokens of `text`.
    pub tokens_used: usize,
    /// The budget asked for.
    pub token_budget: usize,
    /// Whether the counts come from the embedder's tokenizer (`true`) or from the
    /// conservative estimate of [`estimate_tokens`] (`false`, when the embedder cannot count).
    pub tokens_exact: bool,
    /// Candidates dropped as near-duplicates of better-ranked ones.
    pub duplicates_removed: usize,
    /// Candidates left out because their similarity to the task is below the relevance floor
    /// ([`BankBuilder::relevance_floor`](crate::BankBuilder::relevance_floor)).
    pub below_relevance_floor: usize,
    /// Candidates left out because they did not fit the budget.
    pub omitted: usize,
}

/// The token estimate used when the embedder cannot count tokens: one token per three ASCII
/// bytes (rounded up) plus one per non-ASCII character. WordPiece and BPE tokenizers average
/// about four characters per token on English prose, so this overestimates prose by about a
/// third; symbol-dense text (code, tables) can exceed it, which is why the result says
/// whether counts were exact.
pub fn estimate_tokens(text: &str) -> usize {
    let ascii = text.bytes().filter(u8::is_ascii).count();
    let other = text.chars().filter(|c| !c.is_ascii()).count();
    ascii.div_ceil(3) + other
}

impl ReasoningBank {
    /// A prompt-ready block of the items of `shards` most useful for `task`: recalled and
    /// scored as [`recall_patterns`](Self::recall_patterns), near-duplicates across shards
    /// removed, ordered by MMR, and added while they fit `token_budget`. Each item names the
    /// shard (agent) it came from. Items below the relevance floor
    /// ([`BankBuilder::relevance_floor`](crate::BankBuilder::relevance_floor)) get no budget:
    /// they are counted in [`SynthesizedContext::below_relevance_floor`]. Tokens are counted
    /// with the embedder's tokenizer when it has one
    /// ([`Embedder::count_tokens`](reasonbank_embedders::Embedder::count_tokens)), else with
    /// [`estimate_tokens`]; the result says which.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for an empty task; a shard that
    /// does not exist is [`Error::Memory`](crate::Error::Memory) with
    /// [`reasonbank_memory::Error::NoSuchShard`] (a wrong agent id would otherwise leave its
    /// lessons out unnoticed); embedder and storage errors.
    pub async fn synthesize_context(
        &self,
        task: &str,
        shards: &[ShardId],
        token_budget: usize,
    ) -> Result<SynthesizedContext> {
        let mut o = RecallOptions::new(shards.to_vec());
        o.k(self.inner.config.candidates);
        o.missing_shard_is_error = true;
        let n = self
            .inner
            .config
            .candidates
            .saturating_mul(shards.len().max(1));
        let cands = self.candidates(task, &o, n).await?;
        let cands = self.rerank(task, cands).await?;
        let total = cands.len();
        let Ranking {
            items: ranked,
            below_floor,
            duplicates: duplicates_removed,
        } = self.rank(cands, total);
        let embedder = &self.inner.embedder;
        let mut exact = true;
        let mut count = |s: &str| match embedder.count_tokens(s) {
            Some(n) => n,
            None => {
                exact = false;
                estimate_tokens(s)
            }
        };
        let packed = pack(task, &ranked, token_budget, &mut count);
        let items: Vec<ContextItem> = packed
            .items
            .iter()
            .map(|(s, tokens)| ContextItem {
                shard: s.shard.clone(),
                id: s.item.id,
                kind: s.item.kind,
                title: s.item.title.clone(),
                score: s.score,
                tokens: *tokens,
            })
            .collect();
        if self.inner.config.record_usage {
            self.record_usage(items.iter().map(|i| (i.shard.clone(), i.id)).collect())
                .await?;
        }
        Ok(SynthesizedContext {
            text: packed.text,
            items,
            tokens_used: packed.tokens,
            token_budget,
            tokens_exact: exact,
            duplicates_removed,
            below_relevance_floor: below_floor.len(),
            omitted: packed.omitted,
        })
    }
}

/// A context's text and the items in it.
struct Packed<'a> {
    /// The header and the item blocks; empty when no item fits.
    text: String,
    /// The items placed, in order, with the tokens of their blocks.
    items: Vec<(&'a ScoredItem, usize)>,
    /// Tokens of `text`.
    tokens: usize,
    /// Items that did not fit.
    omitted: usize,
}

/// The block of the `n`th item (from 1): its title, kind, agent and confidence, then its
/// description and content.
fn item_block(n: usize, s: &ScoredItem) -> String {
    let it = &s.item;
    format!(
        "\n[{n}] {} ({}, from agent `{}`, confidence {:.2})\n{}\n{}\n",
        it.title,
        it.kind.as_str(),
        s.shard,
        it.confidence,
        it.description,
        it.content
    )
}

/// Places the blocks of `ranked` in order while they fit `budget` tokens as `count` counts
/// them, under a header naming `task`.
fn pack<'a>(
    task: &str,
    ranked: &'a [ScoredItem],
    budget: usize,
    count: &mut dyn FnMut(&str) -> usize,
) -> Packed<'a> {
    let header = format!("Relevant memory for the task \"{task}\" (from past attempts):\n");
    let mut used = count(&header);
    let mut blocks: Vec<(String, usize, &ScoredItem)> = Vec::new();
    let mut omitted = 0;
    for s in ranked {
        let block = item_block(blocks.len() + 1, s);
        let t = count(&block);
        if used + t <= budget {
            used += t;
            blocks.push((block, t, s));
        } else {
            omitted += 1;
        }
    }
    if blocks.is_empty() {
        return Packed {
            text: String::new(),
            items: Vec::new(),
            tokens: 0,
            omitted,
        };
    }
    let mut text = header.clone();
    for (b, _, _) in &blocks {
        text.push_str(b);
    }
    // Counts of the parts add up for whitespace-splitting tokenizers; check the whole and
    // drop from the end should a tokenizer merge across the joins.
    let mut total = count(&text);
    while total > budget && !blocks.is_empty() {
        blocks.pop();
        omitted += 1;
        text.truncate(header.len());
        for (b, _, _) in &blocks {
            text.push_str(b);
        }
        total = if blocks.is_empty() { 0 } else { count(&text) };
    }
    if blocks.is_empty() {
        text.clear();
    }
    Packed {
        text,
        items: blocks.into_iter().map(|(_, t, s)| (s, t)).collect(),
        tokens: total,
        omitted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_estimate_is_conservative_for_prose() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 2);
        assert_eq!(estimate_tokens("東京"), 2);
        // 44 characters of English prose: all-MiniLM-L6-v2 counts 10 tokens.
        assert!(estimate_tokens("The quick brown fox jumps over the lazy dog.") >= 10);
    }
}
