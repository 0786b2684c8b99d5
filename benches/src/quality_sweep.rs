//! `quality --sweep`: fusion variants computed from the raw rankings (our BM25 and exact
//! cosine, 40 candidates each, as hybrid search fuses them), to choose the fusion on the dev
//! half without a rebuild per variant. The chosen one lives in `memory/src/search.rs`.

use std::collections::{HashMap, HashSet};

use reasonbank::memory::{Query, SearchOptions};
use serde_json::json;

use crate::quality::{Loaded, QuerySpec, Score};

/// Candidates per ranking.
const N: usize = 40;

/// A fused score of one candidate.
type Variant<'a> = Box<dyn Fn(&Cand) -> f32 + 'a>;

/// The scores of every variant.
#[derive(Default)]
pub struct Sweep {
    scores: Vec<(String, Score)>,
}

/// One candidate: record index, cosine, BM25 (0 when it was not in the text ranking), and its
/// ranks in the two lists.
#[derive(Clone, Copy)]
struct Cand {
    idx: usize,
    cos: f32,
    bm25: f32,
    vrank: Option<usize>,
    trank: Option<usize>,
}

impl Sweep {
    /// Adds one query to every variant.
    pub fn add(
        &mut self,
        ag: &Loaded,
        q: &QuerySpec,
        qv: &[f32],
        relevant: &HashSet<&str>,
        keep: impl Fn(Vec<String>) -> Vec<String>,
    ) -> anyhow::Result<()> {
        let vector = crate::quality::cosine(ag, qv, N);
        let text: Vec<(usize, f32)> = match ag
            .mem
            .shard()
            .search(&Query::text(&q.text), &SearchOptions::new(N))
        {
            Ok(hits) => hits
                .into_iter()
                .filter_map(|h| {
                    let rid = h.record.metadata.get("rid")?.as_str()?;
                    Some((*ag.index.get(rid)?, h.bm25?))
                })
                .collect(),
            // A query of stop words only has no text ranking.
            Err(_) => Vec::new(),
        };
        let mut cands: HashMap<usize, Cand> = HashMap::new();
        for (rank, (idx, cos)) in vector.iter().enumerate() {
            cands.insert(
                *idx,
                Cand {
                    idx: *idx,
                    cos: *cos,
                    bm25: 0.0,
                    vrank: Some(rank),
                    trank: None,
                },
            );
        }
        for (rank, (idx, bm25)) in text.iter().enumerate() {
            let cos = ag.vectors[*idx].iter().zip(qv).map(|(a, b)| a * b).sum();
            let c = cands.entry(*idx).or_insert(Cand {
                idx: *idx,
                cos,
                bm25: 0.0,
                vrank: None,
                trank: None,
            });
            c.bm25 = *bm25;
            c.trank = Some(rank);
        }
        let cands: Vec<Cand> = cands.into_values().collect();
        let vmax = vector.first().map_or(1.0, |v| v.1);
        let vmin = vector.last().map_or(0.0, |v| v.1);
        let bmax = text.first().map_or(0.0, |t| t.1);
        let bmin = text.last().map_or(0.0, |t| t.1);
        // Agreement of the two rankings: the share of the top 10 they have in common.
        let vtop: HashSet<usize> = vector.iter().take(10).map(|v| v.0).collect();
        let overlap = text.iter().take(10).filter(|t| vtop.contains(&t.0)).count() as f32 / 10.0;
        let norm_cos = |c: &Cand| {
            if vmax > vmin {
                ((c.cos - vmin) / (vmax - vmin)).max(0.0)
            } else {
                1.0
            }
        };
        let norm_bm = |c: &Cand| if bmax > 0.0 { c.bm25 / bmax } else { 0.0 };
        let minmax_bm = |c: &Cand| {
            if c.trank.is_none() {
                0.0
            } else if bmax > bmin {
                (c.bm25 - bmin) / (bmax - bmin)
            } else {
                1.0
            }
        };
        let rrf = |c: &Cand, wv: f32, wt: f32, k: f32| {
            c.vrank.map_or(0.0, |r| wv / (k + r as f32 + 1.0))
                + c.trank.map_or(0.0, |r| wt / (k + r as f32 + 1.0))
        };
        let mut variants: Vec<(String, Variant<'_>)> = vec![
            ("rrf60".into(), Box::new(move |c| rrf(c, 1.0, 1.0, 60.0))),
            ("rrf10".into(), Box::new(move |c| rrf(c, 1.0, 1.0, 10.0))),
        ];
        // How much BM25's best candidates stand out from the rest of its list: 1 when the
        // last candidate scores nothing, 0 when the list is flat.
        let spread = if bmax > 0.0 {
            (bmax - bmin) / bmax
        } else {
            0.0
        };
        for b in [0.1f32, 0.2, 0.3, 0.5] {
            variants.push((
                format!("rawcos+bm/max*{b}"),
                Box::new(move |c| c.cos + b * norm_bm(c)),
            ));
            variants.push((
                format!("rawcos+minmaxbm*{b}"),
                Box::new(move |c| c.cos + b * minmax_bm(c)),
            ));
            variants.push((
                format!("rawcos+bm/max*{b}*spread"),
                Box::new(move |c| c.cos + b * spread * norm_bm(c)),
            ));
            variants.push((
                format!("minmaxcos+bm/max*{b}*spread*2"),
                Box::new(move |c| norm_cos(c) + 2.0 * b * spread * norm_bm(c)),
            ));
        }
        for a in [0.3f32, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8] {
            variants.push((
                format!("cvx-max a={a}"),
                Box::new(move |c| a * norm_cos(c) + (1.0 - a) * norm_bm(c)),
            ));
            variants.push((
                format!("cvx-minmax a={a}"),
                Box::new(move |c| a * norm_cos(c) + (1.0 - a) * minmax_bm(c)),
            ));
        }
        for a in [0.4f32, 0.5, 0.6] {
            // Query-dependent: the less the rankings agree, the more the vector ranking, whose
            // scores are comparable across queries, decides... or the text one.
            let av = (a + 0.2 * (0.5 - overlap)).clamp(0.0, 1.0);
            variants.push((
                format!("cvx-agree a={a}"),
                Box::new(move |c| av * norm_cos(c) + (1.0 - av) * norm_bm(c)),
            ));
        }
        for (name, f) in variants {
            let mut ranked: Vec<(f32, usize)> = cands.iter().map(|c| (f(c), c.idx)).collect();
            ranked.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
            let ids = keep(ranked.into_iter().map(|(_, i)| ag.ids[i].clone()).collect());
            let slot = match self.scores.iter().position(|(n, _)| *n == name) {
                Some(i) => i,
                None => {
                    self.scores.push((name, Score::default()));
                    self.scores.len() - 1
                }
            };
            self.scores[slot].1.add(&ids, relevant, 0.0);
        }
        Ok(())
    }

    /// Prints every variant's scores.
    pub fn print(&mut self, dataset: &str, as_json: bool) {
        for (name, s) in &mut self.scores {
            let v = s.json();
            if as_json {
                println!("{}", json!({"dataset": dataset, "sweep": name, "score": v}));
            } else {
                println!(
                    "  sweep {name:<22} R@1 {:.3} R@5 {:.3} R@10 {:.3} MRR {:.3}",
                    v["recall_at_1"].as_f64().unwrap_or(f64::NAN),
                    v["recall_at_5"].as_f64().unwrap_or(f64::NAN),
                    v["recall_at_10"].as_f64().unwrap_or(f64::NAN),
                    v["mrr"].as_f64().unwrap_or(f64::NAN),
                );
            }
        }
    }
}
