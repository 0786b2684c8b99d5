//! `quality --sweep`: fusion variants computed from the raw rankings (our BM25 and exact
//! cosine, 40 candidates each as hybrid search fuses them, and 100 each for the variants named
//! `…@100`), to choose the fusion on the dev half without a rebuild per variant. The chosen one
//! lives in `memory/src/search.rs`.

use std::collections::{HashMap, HashSet};

use reasonbank::memory::{Query, STOP_WORDS, SearchOptions};
use serde_json::json;

use crate::quality::{Loaded, QuerySpec, Score};

/// Candidates per ranking, as hybrid search takes them for k = 10.
const N: usize = 40;
/// Candidates per ranking of the deeper variants.
const DEEP: usize = 100;

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
        let vector_all = crate::quality::cosine(ag, qv, DEEP);
        let text_all: Vec<(usize, f32)> = match ag
            .mem
            .shard()
            .search(&Query::text(&q.text), &SearchOptions::new(DEEP))
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
        let terms = q
            .text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty() && !STOP_WORDS.contains(&w.to_lowercase().as_str()))
            .collect::<HashSet<_>>()
            .len() as f32;
        // Term proximity, a signal the shard does not have: the share of the query's
        // consecutive content-word pairs that occur as consecutive content words of the record.
        let pairs = bigrams(&q.text);
        let prox: HashMap<usize, f32> = vector_all
            .iter()
            .map(|v| v.0)
            .chain(text_all.iter().map(|t| t.0))
            .map(|i| {
                let share = if pairs.is_empty() {
                    0.0
                } else {
                    let have = bigrams(&ag.texts[i]);
                    pairs.iter().filter(|p| have.contains(*p)).count() as f32 / pairs.len() as f32
                };
                (i, share)
            })
            .collect();
        let prox = &prox;
        let mut variants: Vec<(String, Vec<Cand>, Variant<'_>)> = Vec::new();
        for depth in [N, DEEP] {
            let vector = &vector_all[..depth.min(vector_all.len())];
            let text = &text_all[..depth.min(text_all.len())];
            let cands = candidates(ag, qv, vector, text);
            let at = if depth == N {
                String::new()
            } else {
                format!("@{depth}")
            };
            let mut v = Vec::new();
            if depth == N {
                v.extend(classic(vector, text));
            }
            v.extend(extra(vector, text, terms, depth));
            for (name, f) in v {
                variants.push((format!("{name}{at}"), cands.clone(), f));
            }
        }
        for depth in [N, DEEP] {
            let s = Stats::of(
                &vector_all[..depth.min(vector_all.len())],
                &text_all[..depth.min(text_all.len())],
            );
            let at = if depth == N {
                String::new()
            } else {
                format!("@{depth}")
            };
            let cands = candidates(
                ag,
                qv,
                &vector_all[..depth.min(vector_all.len())],
                &text_all[..depth.min(text_all.len())],
            );
            for p in [0.05f32, 0.1, 0.2] {
                variants.push((
                    format!("default+prox*{p}{at}"),
                    cands.clone(),
                    Box::new(move |c: &Cand| {
                        c.cos + 0.3 * s.minmax_bm(c) + p * prox.get(&c.idx).copied().unwrap_or(0.0)
                    }),
                ));
            }
        }
        // Pseudo-relevance feedback (Rocchio): the query vector moved towards the mean of
        // the default fusion's top m, searched again and fused with the same BM25 list.
        let first = {
            let vector = &vector_all[..N.min(vector_all.len())];
            let text = &text_all[..N.min(text_all.len())];
            let s = Stats::of(vector, text);
            let mut ranked: Vec<(f32, usize)> = candidates(ag, qv, vector, text)
                .iter()
                .map(|c| (c.cos + 0.3 * s.minmax_bm(c), c.idx))
                .collect();
            ranked.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
            keep(ranked.into_iter().map(|(_, i)| ag.ids[i].clone()).collect())
        };
        for m in [1usize, 3, 5] {
            let top: Vec<usize> = first
                .iter()
                .take(m)
                .filter_map(|id| ag.index.get(id.as_str()).copied())
                .collect();
            for beta in [0.25f32, 0.5, 1.0] {
                let mut q2: Vec<f32> = qv.to_vec();
                for &i in &top {
                    for (a, b) in q2.iter_mut().zip(&ag.vectors[i]) {
                        *a += beta * b / top.len().max(1) as f32;
                    }
                }
                let norm = q2.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                q2.iter_mut().for_each(|x| *x /= norm);
                let vector = crate::quality::cosine(ag, &q2, N);
                let text = &text_all[..N.min(text_all.len())];
                let s = Stats::of(&vector, text);
                let cands = candidates(ag, &q2, &vector, text);
                variants.push((
                    format!("prf m={m} beta={beta}"),
                    cands,
                    Box::new(move |c: &Cand| c.cos + 0.3 * s.minmax_bm(c)),
                ));
            }
        }
        for (name, cands, f) in variants {
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

/// The candidates of one query: the union of the first `vector` and `text` candidates, each
/// with its cosine, BM25 (0 when not a text candidate) and ranks.
fn candidates(
    ag: &Loaded,
    qv: &[f32],
    vector: &[(usize, f32)],
    text: &[(usize, f32)],
) -> Vec<Cand> {
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
    cands.into_values().collect()
}

/// What the variants know of one query's two rankings.
#[derive(Clone, Copy)]
struct Stats {
    vmax: f32,
    vmin: f32,
    bmax: f32,
    bmin: f32,
    /// BM25 of the second text candidate.
    b2: f32,
    /// Cosine of the tenth vector candidate.
    v10: f32,
}

impl Stats {
    fn of(vector: &[(usize, f32)], text: &[(usize, f32)]) -> Self {
        Self {
            vmax: vector.first().map_or(1.0, |v| v.1),
            vmin: vector.last().map_or(0.0, |v| v.1),
            bmax: text.first().map_or(0.0, |t| t.1),
            bmin: text.last().map_or(0.0, |t| t.1),
            b2: text.get(1).map_or(0.0, |t| t.1),
            v10: vector.get(9).or(vector.last()).map_or(0.0, |v| v.1),
        }
    }

    fn norm_cos(&self, c: &Cand) -> f32 {
        if self.vmax > self.vmin {
            ((c.cos - self.vmin) / (self.vmax - self.vmin)).max(0.0)
        } else {
            1.0
        }
    }

    fn norm_bm(&self, c: &Cand) -> f32 {
        if self.bmax > 0.0 {
            c.bm25 / self.bmax
        } else {
            0.0
        }
    }

    /// The fusion the shard uses: BM25 min-max over the text candidates, 0 for the others.
    fn minmax_bm(&self, c: &Cand) -> f32 {
        if c.trank.is_none() {
            0.0
        } else if self.bmax > self.bmin {
            (c.bm25 - self.bmin) / (self.bmax - self.bmin)
        } else {
            1.0
        }
    }
}

fn rrf(c: &Cand, wv: f32, wt: f32, k: f32) -> f32 {
    c.vrank.map_or(0.0, |r| wv / (k + r as f32 + 1.0))
        + c.trank.map_or(0.0, |r| wt / (k + r as f32 + 1.0))
}

/// The variants measured when the fusion was first chosen (40 candidates each).
fn classic(vector: &[(usize, f32)], text: &[(usize, f32)]) -> Vec<(String, Variant<'static>)> {
    let s = Stats::of(vector, text);
    // Agreement of the two rankings: the share of the top 10 they have in common.
    let vtop: HashSet<usize> = vector.iter().take(10).map(|v| v.0).collect();
    let overlap = text.iter().take(10).filter(|t| vtop.contains(&t.0)).count() as f32 / 10.0;
    let mut variants: Vec<(String, Variant<'static>)> = vec![
        ("rrf60".into(), Box::new(move |c| rrf(c, 1.0, 1.0, 60.0))),
        ("rrf10".into(), Box::new(move |c| rrf(c, 1.0, 1.0, 10.0))),
    ];
    // How much BM25's best candidates stand out from the rest of its list: 1 when the
    // last candidate scores nothing, 0 when the list is flat.
    let spread = if s.bmax > 0.0 {
        (s.bmax - s.bmin) / s.bmax
    } else {
        0.0
    };
    for b in [0.1f32, 0.2, 0.3, 0.5] {
        variants.push((
            format!("rawcos+bm/max*{b}"),
            Box::new(move |c| c.cos + b * s.norm_bm(c)),
        ));
        variants.push((
            format!("rawcos+minmaxbm*{b}"),
            Box::new(move |c| c.cos + b * s.minmax_bm(c)),
        ));
        variants.push((
            format!("rawcos+bm/max*{b}*spread"),
            Box::new(move |c| c.cos + b * spread * s.norm_bm(c)),
        ));
        variants.push((
            format!("minmaxcos+bm/max*{b}*spread*2"),
            Box::new(move |c| s.norm_cos(c) + 2.0 * b * spread * s.norm_bm(c)),
        ));
    }
    for a in [0.3f32, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8] {
        variants.push((
            format!("cvx-max a={a}"),
            Box::new(move |c| a * s.norm_cos(c) + (1.0 - a) * s.norm_bm(c)),
        ));
        variants.push((
            format!("cvx-minmax a={a}"),
            Box::new(move |c| a * s.norm_cos(c) + (1.0 - a) * s.minmax_bm(c)),
        ));
    }
    for a in [0.4f32, 0.5, 0.6] {
        // Query-dependent: the less the rankings agree, the more the vector ranking decides.
        let av = (a + 0.2 * (0.5 - overlap)).clamp(0.0, 1.0);
        variants.push((
            format!("cvx-agree a={a}"),
            Box::new(move |c| av * s.norm_cos(c) + (1.0 - av) * s.norm_bm(c)),
        ));
    }
    variants
}

/// Variants aimed at issue #16's fusion target: z-scores, rank bonuses, score + RRF,
/// query-dependent bonuses (BM25's confidence, the cosine's flatness, the query's length).
fn extra(
    vector: &[(usize, f32)],
    text: &[(usize, f32)],
    terms: f32,
    depth: usize,
) -> Vec<(String, Variant<'static>)> {
    let s = Stats::of(vector, text);
    let mut variants: Vec<(String, Variant<'static>)> = Vec::new();
    for b in [0.1f32, 0.15, 0.2, 0.3, 0.4] {
        variants.push((
            format!("score b={b}"),
            Box::new(move |c| c.cos + b * s.minmax_bm(c)),
        ));
    }
    // The bonus on the cosine's own scale: times the spread of the vector candidates'
    // cosines (models differ in how far apart their cosines lie), or their deviation.
    let spread = (s.vmax - s.vmin).max(0.0);
    let cos_sd = {
        let n = vector.len().max(1) as f32;
        let mean = vector.iter().map(|v| v.1).sum::<f32>() / n;
        (vector.iter().map(|v| (v.1 - mean).powi(2)).sum::<f32>() / n).sqrt()
    };
    for b in [0.5f32, 0.75, 1.0, 1.25, 1.5] {
        variants.push((
            format!("cos+{b}*spread*minmaxbm"),
            Box::new(move |c| c.cos + b * spread * s.minmax_bm(c)),
        ));
    }
    for b in [2.0f32, 3.0, 4.0, 5.0] {
        variants.push((
            format!("cos+{b}*sd*minmaxbm"),
            Box::new(move |c| c.cos + b * cos_sd * s.minmax_bm(c)),
        ));
    }
    // z-scores of both lists (mean and deviation over each ranking's own candidates); a
    // candidate missing from the text list counts as the list's last.
    let z = |xs: Vec<f32>| {
        let n = xs.len().max(1) as f32;
        let mean = xs.iter().sum::<f32>() / n;
        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n).sqrt();
        (mean, if sd > 0.0 { sd } else { 1.0 })
    };
    let (vm, vs) = z(vector.iter().map(|v| v.1).collect());
    let (bm, bs) = z(text.iter().map(|t| t.1).collect());
    for w in [0.3f32, 0.5, 0.7, 1.0] {
        variants.push((
            format!("zscore w={w}"),
            Box::new(move |c| {
                let bz = if c.trank.is_some() {
                    (c.bm25 - bm) / bs
                } else {
                    (s.bmin - bm) / bs
                };
                (c.cos - vm) / vs + w * bz
            }),
        ));
    }
    for r in [1.0f32, 3.0, 6.0] {
        variants.push((
            format!("score0.3+rrf*{r}"),
            Box::new(move |c| c.cos + 0.3 * s.minmax_bm(c) + r * rrf(c, 1.0, 1.0, 60.0)),
        ));
    }
    for b in [0.1f32, 0.2, 0.3] {
        variants.push((
            format!("cos+rank*{b}"),
            Box::new(move |c| c.cos + c.trank.map_or(0.0, |r| b * (1.0 - r as f32 / depth as f32))),
        ));
    }
    // BM25's confidence: how far its best stands above its second, relative to its range.
    let gap = if s.bmax > s.bmin {
        (s.bmax - s.b2) / (s.bmax - s.bmin)
    } else {
        0.0
    };
    for b in [0.2f32, 0.3] {
        for g in [0.5f32, 1.0] {
            variants.push((
                format!("score b={b} +gap*{g}"),
                Box::new(move |c| c.cos + b * (1.0 + g * gap) * s.minmax_bm(c)),
            ));
        }
    }
    // A flat cosine top 10 (its best barely above its tenth) leaves more to BM25.
    let flat = 1.0 - ((s.vmax - s.v10) / 0.15).clamp(0.0, 1.0);
    for b in [0.2f32, 0.3] {
        for g in [0.5f32, 1.0] {
            variants.push((
                format!("score b={b} +flat*{g}"),
                Box::new(move |c| c.cos + b * (1.0 + g * flat) * s.minmax_bm(c)),
            ));
        }
    }
    for b in [0.3f32, 0.5, 0.8] {
        variants.push((
            format!("cos*(1+{b}*minmax)"),
            Box::new(move |c| c.cos * (1.0 + b * s.minmax_bm(c))),
        ));
    }
    variants.push((
        "score b=0.25".into(),
        Box::new(move |c| c.cos + 0.25 * s.minmax_bm(c)),
    ));
    // BM25's best is also among the cosine's top 10: the two agree, so trust BM25 more.
    let agree = text
        .first()
        .is_some_and(|t| vector.iter().take(10).any(|v| v.0 == t.0));
    for (lo, hi) in [(0.2f32, 0.3f32), (0.2, 0.4), (0.15, 0.35), (0.25, 0.4)] {
        let b = if agree { hi } else { lo };
        variants.push((
            format!("score agree {lo}/{hi}"),
            Box::new(move |c| c.cos + b * s.minmax_bm(c)),
        ));
    }
    // A weak best cosine leaves more to BM25.
    for (b, g) in [(0.2f32, 0.5f32), (0.2, 1.0), (0.25, 0.5)] {
        let eff = (b + g * (0.6 - s.vmax)).clamp(0.1, 0.5);
        variants.push((
            format!("score b={b}+{g}*(0.6-cosmax)"),
            Box::new(move |c| c.cos + eff * s.minmax_bm(c)),
        ));
    }
    // BM25 of the best text candidate per content word: how strongly it matches.
    for (b, m) in [(0.25f32, 3.0f32), (0.25, 5.0), (0.3, 4.0)] {
        let per = if terms > 0.0 { s.bmax / terms } else { 0.0 };
        let eff = b * (per / m).clamp(0.5, 1.5);
        variants.push((
            format!("score b={b} per-term/{m}"),
            Box::new(move |c| c.cos + eff * s.minmax_bm(c)),
        ));
    }
    // The more content words a query has, the more its BM25 ranking says.
    for (b, k) in [(0.4f32, 2.0f32), (0.45, 2.0), (0.5, 3.0), (0.6, 4.0)] {
        let eff = b * terms / (terms + k);
        variants.push((
            format!("score terms b={b} k={k}"),
            Box::new(move |c| c.cos + eff * s.minmax_bm(c)),
        ));
    }
    variants
}

/// The pairs of consecutive content words (lower-cased, stop words left out) of `text`.
fn bigrams(text: &str) -> HashSet<(String, String)> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .collect();
    words
        .windows(2)
        .map(|w| (w[0].clone(), w[1].clone()))
        .collect()
}
