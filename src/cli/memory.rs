//! `remember`, `recall`, `get`, `update` and `forget`.

use serde_json::{Value, json};

use super::args::RecallArgs;
use super::{Ctx, Fail};
use crate::memory::RecordId;
use crate::{Error, Memory, RecallOptions};

pub(super) async fn remember(ctx: &Ctx, m: Memory) -> anyhow::Result<()> {
    let id = ctx.create().await?.remember_batch(vec![m]).await?[0];
    if ctx.json {
        out!("{}", json!({ "id": id }));
    } else {
        out!("{id}");
    }
    Ok(())
}

pub(super) async fn recall(ctx: &Ctx, a: RecallArgs) -> anyhow::Result<()> {
    let mut o = RecallOptions::new();
    o.kinds(a.kinds)
        .include_inactive(a.include_inactive)
        .k(a.k)
        .mode(a.mode.into())
        .search_mode(a.search.into())
        .shards(a.shards);
    if let Some(t) = a.threshold {
        o.threshold(t);
    }
    if let Some(f) = a.filter {
        o.filter(f);
    }
    if let Some(n) = a.rerank {
        o.rerank(n);
    }
    if let Some(t) = a.since {
        o.since(t);
    }
    if let Some(t) = a.until {
        o.until(t);
    }
    let hits = ctx.existing().await?.recall(&a.query, &o).await?;
    if ctx.json {
        out!("{}", serde_json::to_string(&hits)?);
    } else if hits.is_empty() {
        out!("no memories match");
    } else {
        for h in hits {
            let mut why = Vec::new();
            if let Some(s) = h.why.similarity {
                why.push(format!("cosine {s:.3}"));
            }
            if let Some(b) = h.why.bm25 {
                why.push(format!("bm25 {b:.2}"));
            }
            if let Some(r) = h.why.rerank {
                why.push(format!("rerank {r:.3}"));
            }
            why.push(format!("created {}", crate::units::rfc3339(h.created_at)));
            out!(
                "{:.4}  {}  [{}/{}] {}",
                h.score,
                h.id,
                h.shard,
                h.kind,
                h.text
            );
            out!("        {}", why.join(", "));
        }
    }
    Ok(())
}

/// [`Fail::NotFound`] for memory `id` of the context's agent.
fn no_memory(ctx: &Ctx, id: RecordId) -> anyhow::Error {
    Fail::NotFound(format!("memory {id} not found in agent {}", ctx.agent)).into()
}

pub(super) fn get(ctx: &Ctx, id: RecordId) -> anyhow::Result<()> {
    let shard = ctx.existing_shard(&ctx.agent)?;
    let r = shard
        .get(id)
        .map_err(Error::from)?
        .ok_or_else(|| no_memory(ctx, id))?;
    if ctx.json {
        let mut v = serde_json::to_value(&r)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("embedding");
        }
        out!("{v}");
    } else {
        out!("id        {}", r.id);
        out!("kind      {}", r.kind);
        out!("namespace {}", r.namespace);
        out!("metadata  {}", Value::Object(r.metadata));
        out!("created   {}", crate::units::rfc3339(r.created_at));
        out!("updated   {}", crate::units::rfc3339(r.updated_at));
        out!("text      {}", r.text);
    }
    Ok(())
}

pub(super) async fn update(
    ctx: &Ctx,
    id: RecordId,
    text: Option<String>,
    meta: Option<Value>,
) -> anyhow::Result<()> {
    if text.is_none() && meta.is_none() {
        return Err(Fail::Usage("update needs --text, --meta or both".into()).into());
    }
    ctx.existing()
        .await?
        .update(id, text.as_deref(), meta)
        .await?;
    if ctx.json {
        out!("{}", json!({ "updated": id }));
    } else {
        out!("updated {id}");
    }
    Ok(())
}

pub(super) fn forget(ctx: &Ctx, id: RecordId) -> anyhow::Result<()> {
    if !ctx
        .existing_shard(&ctx.agent)?
        .delete(id)
        .map_err(Error::from)?
    {
        return Err(no_memory(ctx, id));
    }
    if ctx.json {
        out!("{}", json!({ "forgotten": id }));
    } else {
        out!("forgot {id}");
    }
    Ok(())
}
