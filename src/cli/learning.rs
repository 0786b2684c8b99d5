//! `learn`, `feedback`, `consolidate`, `patterns` and `synthesize`: the ReasoningBank.

use std::path::Path;

use super::args::ConsolidateArgs;
use super::{Ctx, Fail};
use crate::memory::{RecordId, ShardId};
use crate::reasoning::{ConsolidateOptions, Feedback, Trajectory};
use crate::units::{TimeUnit, duration};

pub(super) async fn learn(ctx: &Ctx, file: &Path, contrastive: bool) -> anyhow::Result<()> {
    let text = super::read_input(file)?;
    // The input is checked before the agent is opened (or created).
    let runs = parse_trajectories(&text, contrastive)?;
    let mem = ctx.create().await?;
    let report = if contrastive {
        mem.learn_contrastive(&runs[0].task, &runs).await?
    } else {
        mem.learn(&runs[0]).await?
    };
    if ctx.json {
        out!("{}", serde_json::to_string(&report)?);
    } else {
        for v in &report.verdicts {
            out!("verdict: {}", serde_json::to_string(v)?);
        }
        for i in &report.items {
            out!("learned {} {:?}: {}", i.id, i.kind, i.title);
        }
    }
    Ok(())
}

/// One trajectory, or with `contrastive` an array of attempts at one task, checked field by
/// field; errors name the attempt and field ([`Fail::Usage`]).
fn parse_trajectories(text: &str, contrastive: bool) -> anyhow::Result<Vec<Trajectory>> {
    let usage = |m: String| anyhow::Error::from(Fail::Usage(m));
    let runs: Vec<Trajectory> = if contrastive {
        serde_json::from_str(text).map_err(|e| {
            usage(format!(
                "expected a JSON array of trajectories ({{\"task\", \"steps\": [{{\"action\", \
                 \"observation\"}}], \"outcome\"}}): {e}"
            ))
        })?
    } else {
        vec![serde_json::from_str(text).map_err(|e| {
            usage(format!(
                "expected a trajectory as JSON ({{\"task\", \"steps\": [{{\"action\", \
                 \"observation\"}}], \"answer\", \"outcome\"}}): {e}"
            ))
        })?]
    };
    if runs.is_empty() {
        return Err(usage("the array of attempts is empty".into()));
    }
    for (i, t) in runs.iter().enumerate() {
        let at = if contrastive {
            format!("attempt {}: ", i + 1)
        } else {
            String::new()
        };
        // The rules every front end shares, naming the field; then the command line's own
        // for a hand-written file, where a step without its observation is most likely a slip.
        if let Err(crate::reasoning::Error::InvalidInput { reason, .. }) = t.validate() {
            return Err(usage(format!("{at}{reason}")));
        }
        if let Some(j) = t.steps.iter().position(|s| s.observation.trim().is_empty()) {
            return Err(usage(format!(
                "{at}`steps[{j}].observation` is missing or empty: what came back from the action"
            )));
        }
        if contrastive && t.outcome.is_none() && t.reward.is_none() {
            return Err(usage(format!(
                "{at}has no `outcome` (\"success\" or \"failure\") or `reward`: contrastive \
                 learning compares successes with failures"
            )));
        }
        if contrastive && t.task != runs[0].task {
            return Err(usage(format!(
                "{at}`task` is {:?}, not the first attempt's {:?}: every attempt is at one task",
                t.task, runs[0].task
            )));
        }
    }
    Ok(runs)
}

pub(super) async fn feedback(ctx: &Ctx, id: RecordId, verdict: Feedback) -> anyhow::Result<()> {
    let item = ctx.existing().await?.feedback(id, verdict).await?;
    if ctx.json {
        out!("{}", serde_json::to_string(&item)?);
    } else {
        out!(
            "{} confidence {:.3} ({} successes, {} failures)",
            item.id,
            item.confidence,
            item.successes,
            item.failures
        );
    }
    Ok(())
}

pub(super) async fn consolidate(ctx: &Ctx, a: ConsolidateArgs) -> anyhow::Result<()> {
    let mut o = ConsolidateOptions::new();
    o.dry_run(a.dry_run);
    if let Some(t) = a.duplicate_threshold {
        o.duplicate_threshold(t);
    }
    if let Some(t) = a.contradiction_threshold {
        o.contradiction_threshold(t);
    }
    if let Some(d) = a.decay_half_life_days {
        o.evidence_half_life(duration("--decay-half-life-days", d, TimeUnit::Days)?);
    }
    if let Some(c) = a.prune_below_confidence {
        o.prune_below_confidence(c);
    }
    if let Some(n) = a.prune_min_evidence {
        o.prune_min_evidence(n);
    }
    if let Some(d) = a.prune_idle_days {
        o.prune_idle(duration("--prune-idle-days", d, TimeUnit::Days)?);
    }
    let r = ctx.existing().await?.consolidate(&o).await?;
    if ctx.json {
        out!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    out!(
        "{}examined {}, merged {}, contradictions {}, decayed {}, pruned {}, rows written {}",
        if r.dry_run { "dry run: " } else { "" },
        r.examined,
        r.merges.len(),
        r.contradictions.len(),
        r.decayed,
        r.pruned.len(),
        r.written
    );
    for m in &r.merges {
        out!(
            "merged    {} into {} (similarity {:.3})",
            m.loser,
            m.winner,
            m.similarity
        );
    }
    for c in &r.contradictions {
        out!(
            "conflict  {} and {} (similarity {:.3}): review them",
            c.a,
            c.b,
            c.similarity
        );
    }
    for p in &r.pruned {
        out!("archived  {} ({})", p.id, p.reason);
    }
    Ok(())
}

pub(super) async fn contradictions(ctx: &Ctx) -> anyhow::Result<()> {
    let pairs = ctx.existing().await?.contradictions().await?;
    if ctx.json {
        out!("{}", serde_json::to_string(&pairs)?);
    } else if pairs.is_empty() {
        out!("no contradictions flagged");
    } else {
        for c in pairs {
            out!("{:.3}  {}  {}", c.similarity, c.a.id, c.a.title);
            out!("       {}  {}", c.b.id, c.b.title);
        }
    }
    Ok(())
}

pub(super) async fn patterns(
    ctx: &Ctx,
    task: &str,
    k: usize,
    threshold: f32,
) -> anyhow::Result<()> {
    let items = ctx
        .existing()
        .await?
        .find_similar_patterns(task, threshold, k)
        .await?;
    if ctx.json {
        out!("{}", serde_json::to_string(&items)?);
    } else if items.is_empty() {
        out!("no patterns match");
    } else {
        for s in items {
            out!(
                "{:.3}  {}  [{:?}] {} (similarity {:.3}, reliability {:.2})",
                s.score,
                s.item.id,
                s.item.kind,
                s.item.title,
                s.similarity,
                s.reliability
            );
        }
    }
    Ok(())
}

pub(super) async fn synthesize(
    ctx: &Ctx,
    task: &str,
    budget: u32,
    others: Vec<ShardId>,
) -> anyhow::Result<()> {
    let ctx_block = ctx
        .existing()
        .await?
        .synthesize_context(task, &others, budget as usize)
        .await?;
    if ctx.json {
        out!("{}", serde_json::to_string(&ctx_block)?);
    } else {
        out!("{}", ctx_block.text);
        eprintln!(
            "({} of {} tokens, {} items)",
            ctx_block.tokens_used,
            ctx_block.token_budget,
            ctx_block.items.len()
        );
    }
    Ok(())
}
