//! `sync` (with a peer, or `sync keygen`) and `serve` (a hub).

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use super::Ctx;
use super::args::{SyncArgs, SyncSub};
use crate::embedders::LocalModel;
use crate::embedders::provision::ProvisionOptions;
use crate::memory::{Store, StoreOptions};
use crate::sync::SyncServer;
use crate::{Error, Identity, PeerGrant, ShardSync, SyncRequest, sync_store};

pub(super) async fn sync(ctx: &Ctx, a: SyncArgs) -> anyhow::Result<()> {
    let dir = a
        .identity
        .clone()
        .unwrap_or_else(|| Identity::default_dir(&ctx.root));
    if let Some(SyncSub::Keygen { name, out, show }) = a.sub {
        return keygen(ctx, &name, out.unwrap_or(dir), show);
    }
    let peer = a
        .peer
        .context("--peer ADDR is required (or use `sync keygen`)")?;
    let trust = a
        .trust
        .context("--trust FINGERPRINT is required: the peer's certificate fingerprint")?;
    let identity = Identity::load(&dir)?;
    let shards = if a.shards.is_empty() {
        vec![ctx.agent.clone()]
    } else {
        a.shards
    };
    let mut request = SyncRequest::new(peer, trust);
    request
        .direction(a.direction)
        .shards(shards)
        .text_only(a.text_only)
        .timeout(Duration::from_secs_f64(a.timeout));
    let reembed = if a.text_only {
        Some(load_embedder(ctx.model).await?)
    } else {
        None
    };
    let outcomes = sync_store(
        open_store_for_sync(&ctx.root, ctx.model)?,
        &request,
        &identity,
        reembed,
    )
    .await?;
    let mut failed = None;
    for ShardSync { shard: id, result } in outcomes {
        match result {
            Ok(r) => {
                if ctx.json {
                    out!("{}", crate::report_json(&id, &r));
                } else {
                    out!(
                        "{id}: sent {}, received {}, applied {} ({} bytes on the wire, {:.0?})",
                        r.changes_sent,
                        r.changes_received,
                        r.changes_applied,
                        r.bytes_on_wire(),
                        r.elapsed
                    );
                }
                if r.push_denied {
                    eprintln!(
                        "{id}: the peer denied the push (its grant for this side is read-only): \
                         pulled only; `--direction pull` says so up front"
                    );
                }
            }
            Err(e) => {
                eprintln!("{id}: {e}");
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) => Err(anyhow::Error::new(e).context("a shard failed to sync")),
        None => Ok(()),
    }
}

fn keygen(ctx: &Ctx, name: &str, out: std::path::PathBuf, show: bool) -> anyhow::Result<()> {
    if show {
        let fp = Identity::load(&out)?.fingerprint()?;
        if ctx.json {
            out!("{}", json!({ "fingerprint": fp.to_string(), "dir": out }));
        } else {
            out!("{fp}");
        }
        return Ok(());
    }
    let identity = Identity::generate(name)?;
    let (cert_path, key_path) = identity.save(&out)?;
    let fp = identity.fingerprint()?;
    if ctx.json {
        out!("{}", json!({ "fingerprint": fp.to_string(), "dir": out }));
    } else {
        out!("{fp}");
        eprintln!("wrote {} and {}", cert_path.display(), key_path.display());
    }
    Ok(())
}

/// The local embedding model (`--model`), to re-embed text-only sync (the model of
/// `open_store_for_sync`'s shards).
async fn load_embedder(model: LocalModel) -> anyhow::Result<Arc<dyn crate::embedders::Embedder>> {
    let mut p = ProvisionOptions::new();
    p.local_model(model);
    tokio::task::spawn_blocking(move || crate::embedders::default_embedder(&p))
        .await?
        .map_err(Error::from)
        .context("loading the embedding model to re-embed text-only sync")
}

/// The store sync writes into: shards that do not exist yet take the dimensions and model id
/// of the local model (`--model`), so a synced shard is immediately usable by `AgentMemory`.
fn open_store_for_sync(root: &Path, model: LocalModel) -> anyhow::Result<Arc<Store>> {
    let mut o = StoreOptions::new();
    o.shard_options_mut()
        .dimensions(model.dimensions())
        .model_id(model.model_id());
    Ok(Arc::new(Store::open(root, o).map_err(Error::from)?))
}

/// `reasonbank serve`'s config file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeConfig {
    listen: std::net::SocketAddr,
    identity: std::path::PathBuf,
    peers: Vec<PeerGrant>,
    /// Load the embedding model and accept text-only pushes.
    #[serde(default)]
    reembed: bool,
}

pub(super) async fn serve(ctx: &Ctx, config: &Path) -> anyhow::Result<()> {
    let text = super::read_input(config)?;
    let c: ServeConfig = serde_json::from_str(&text).map_err(|e| {
        super::Fail::Usage(format!(
            "{} is not a valid serve config: {e}",
            config.display()
        ))
    })?;
    let mut cfg = Identity::load(&c.identity)?.hub_config(&c.peers)?;
    if c.reembed {
        cfg.reembedder(Arc::new(crate::EmbedderReembedder::new(
            load_embedder(ctx.model).await?,
        )));
    }
    let fp = cfg.fingerprint();
    let server = SyncServer::bind(c.listen, open_store_for_sync(&ctx.root, ctx.model)?, cfg)
        .map_err(Error::from)?;
    let addr = server.local_addr().map_err(Error::from)?;
    tracing::info!(%addr, fingerprint = %fp, peers = c.peers.len(), "hub listening");
    if ctx.json {
        out!(
            "{}",
            json!({ "listening": addr.to_string(), "fingerprint": fp.to_string() })
        );
    } else {
        out!("listening on {addr} as {fp}");
    }
    std::io::stdout().flush().map_err(super::StdoutError)?;
    tokio::signal::ctrl_c().await?;
    server.close();
    Ok(())
}
