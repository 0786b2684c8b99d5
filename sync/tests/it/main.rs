//! Integration tests of `reasonbank-sync`, one binary: real QUIC sockets on 127.0.0.1, real
//! SQLite shards in temp dirs, and a deterministic simulator over the protocol state machine.
//! `text_only` covers text-only sync with a deterministic test re-embedder.

mod lossy;
mod net;
mod security;
mod sim;
mod text_only;

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reasonbank_memory::{
    Change, Embedding, NewRecord, RecordId, RecordUpdate, Shard, ShardId, Store, StoreOptions,
};
use reasonbank_sync::{Access, SyncConfig, generate_identity};

/// Vector dimensions of the test shards.
pub(crate) const DIM: usize = 16;

/// One peer: a store in a temp dir and an identity.
pub(crate) struct Peer {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) store: Arc<Store>,
    pub(crate) config: SyncConfig,
}

impl Peer {
    pub(crate) fn new(name: &str) -> Peer {
        let dir = tempfile::tempdir().unwrap();
        let mut o = StoreOptions::new();
        o.shard_options_mut().dimensions(DIM).model_id("test-model");
        let store = Arc::new(Store::open(dir.path(), o).unwrap());
        let (cert, key) = generate_identity(name).unwrap();
        Peer {
            _dir: dir,
            store,
            config: SyncConfig::new(&cert, &key).unwrap(),
        }
    }

    pub(crate) fn shard(&self, id: &str) -> Arc<Shard> {
        self.store.shard(&ShardId::new(id).unwrap()).unwrap()
    }
}

/// `n` peers that trust each other with read and write on every shard.
pub(crate) fn peers(n: usize) -> Vec<Peer> {
    let mut v: Vec<Peer> = (0..n).map(|i| Peer::new(&format!("peer{i}"))).collect();
    let fps: Vec<_> = v.iter().map(|p| p.config.fingerprint()).collect();
    for (i, p) in v.iter_mut().enumerate() {
        for (j, fp) in fps.iter().enumerate() {
            if i != j {
                p.config.grant(*fp, None, Access::READ_WRITE);
            }
        }
    }
    v
}

pub(crate) fn sid(s: &str) -> ShardId {
    ShardId::new(s).unwrap()
}

/// Every row, tombstones and vectors included, ordered by id, without the local `seq`.
pub(crate) fn contents(s: &Shard) -> Vec<Change> {
    let mut all = s.changes_since(0, usize::MAX).unwrap();
    for c in &mut all {
        c.seq = 0;
    }
    all.sort_by_key(|c| c.id);
    all
}

pub(crate) fn vector(rng: &mut StdRng) -> Embedding {
    Embedding::new((0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()).unwrap()
}

/// `n` random edits: inserts (some with ids from `shared`, so peers collide), updates and
/// deletes of existing records.
pub(crate) fn edit(shard: &Shard, rng: &mut StdRng, n: usize, shared: &[RecordId]) {
    for i in 0..n {
        let live = shard.scan(None, 1000, None).unwrap();
        match rng.random_range(0..10) {
            0..5 => {
                let mut r = NewRecord::new(
                    format!(
                        "note {i} about retries, caches and backoff {}",
                        rng.random::<u32>()
                    ),
                    vector(rng),
                );
                r.metadata(serde_json::json!({"n": i, "tag": "t"}));
                if rng.random_bool(0.3) && !shared.is_empty() {
                    let id = shared[rng.random_range(0..shared.len())];
                    if shard.get(id).unwrap().is_none()
                        && !contents(shard).iter().any(|c| c.id == id)
                    {
                        r.id(id);
                    }
                }
                shard.insert(&r).unwrap();
            }
            5..8 if !live.is_empty() => {
                let id = live[rng.random_range(0..live.len())].id;
                let mut u = RecordUpdate::new();
                u.text(format!("updated {}", rng.random::<u32>()));
                if rng.random_bool(0.5) {
                    u.embedding(vector(rng));
                }
                shard.update(id, &u).unwrap();
            }
            _ if !live.is_empty() => {
                let id = live[rng.random_range(0..live.len())].id;
                shard.delete(id).unwrap();
            }
            _ => {}
        }
    }
}

pub(crate) fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

impl Peer {
    /// A standalone shard file in `dir` with the test model.
    pub(crate) fn open_shard(dir: &std::path::Path) -> Shard {
        let mut o = reasonbank_memory::ShardOptions::new();
        o.dimensions(DIM).model_id("test-model");
        Shard::open(dir.join("s.sqlite"), &o).unwrap()
    }
}
