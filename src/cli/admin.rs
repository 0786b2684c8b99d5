//! `stats` and `models`.

use serde_json::json;

use super::Ctx;
use super::args::Models;
use crate::Error;
use crate::embedders::LocalModel;
use crate::embedders::provision::{self, ModelFiles, ProvisionOptions};
use crate::memory::ShardId;

pub(super) fn stats(ctx: &Ctx, all: bool) -> anyhow::Result<()> {
    let ids: Vec<ShardId> = if all {
        ctx.existing_store()?.list().map_err(Error::from)?
    } else {
        ctx.require_agent(&ctx.agent)?;
        vec![ctx.agent.clone()]
    };
    if !ctx.json {
        out!(
            "{:<24} {:>9} {:>10} {:>5} {:>10}  {:<22} model",
            "agent",
            "memories",
            "forgotten",
            "dims",
            "size",
            "vector index"
        );
    }
    let total = ids.len();
    let mut unreadable = 0;
    for id in ids {
        let read = ctx.existing_shard(&id).and_then(|shard| {
            let s = shard.stats().map_err(Error::from)?;
            Ok((s, shard.index_status()))
        });
        let (s, ix) = match read {
            Ok(r) => r,
            // With --all, one damaged shard is reported in its row, not a stop for the rest.
            Err(e) if all => {
                unreadable += 1;
                let why = format!("{e:#}");
                if ctx.json {
                    out!("{}", json!({ "agent": id, "error": why }));
                } else {
                    out!("{id:<24} unreadable: {why}");
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        if ctx.json {
            let mut v = serde_json::to_value(&s)?;
            v["agent"] = json!(id);
            v["index"] = serde_json::to_value(&ix)?;
            out!("{v}");
        } else {
            let index = if ix.graph {
                format!("HNSW {} rows, {} pending", ix.indexed, ix.pending)
            } else {
                "none (exact/quantized)".to_owned()
            };
            out!(
                "{:<24} {:>9} {:>10} {:>5} {:>9.1}M  {:<22} {}",
                id,
                s.records,
                s.tombstones,
                s.dimensions,
                s.file_bytes as f64 / 1e6,
                index,
                s.model_id
            );
        }
    }
    if unreadable > 0 {
        anyhow::bail!("{unreadable} of {total} shards could not be read (see their rows above)");
    }
    Ok(())
}

pub(super) fn models(m: Models, model: LocalModel, json_out: bool) -> anyhow::Result<()> {
    let (a, fetch) = match m {
        Models::Fetch(a) => (a, true),
        Models::Path(a) => (a, false),
    };
    let mut opts = ProvisionOptions::new();
    opts.local_model(model);
    if let Some(d) = &a.cache_dir {
        opts.cache_dir(d);
    }
    let files = if fetch {
        provision::fetch(&opts).map_err(Error::from)?
    } else {
        opts.allow_fetch(false);
        provision::resolve(&opts).map_err(Error::from)?
    };
    print_files(&files, json_out)
}

fn print_files(f: &ModelFiles, json_out: bool) -> anyhow::Result<()> {
    if json_out {
        let v = json!({
            "local_model": f.local_model.name(),
            "model_id": f.local_model.model_id(),
            "ort_library": f.ort_library,
            "model": f.model,
            "tokenizer_dir": f.tokenizer_dir,
        });
        out!("{v}");
    } else {
        out!(
            "local_model    {} ({})",
            f.local_model,
            f.local_model.model_id()
        );
        out!("ort_library    {}", f.ort_library.display());
        out!("model          {}", f.model.display());
        out!("tokenizer_dir  {}", f.tokenizer_dir.display());
    }
    Ok(())
}
