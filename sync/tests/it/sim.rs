//! Deterministic simulator over `proto`: three replicas edit concurrently while sessions run
//! over a network that drops, delays (reorders), duplicates and partitions messages. After the
//! chaos phase, edits and partitions stop (loss, duplication and reordering go on) and every
//! pair syncs; every run must converge to identical replicas. Odd seeds run text-only: batches
//! carry no vectors and receivers re-embed them with a deterministic sim model.
//!
//! Issue #14: the edits interleave, on *items* (ids that are never deleted), feedback (a
//! replica raises its own group of the replicated counters, `_counters`, in an ordinary
//! last-writer-wins write), consolidation's merge marking (`status: merged`, `merged_into`
//! the smaller id, and the survivor's grow-only `merged_from` group) and text edits, with
//! inserts, edits and forgets (deletes) of other ids. Besides convergence, every run checks
//! that each item's evidence is exactly the feedback acknowledged on it, and that counting
//! each root item with what was validly merged into it counts every acknowledged report once.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reasonbank_memory::{
    ApplyReport, Change, Counters, Embedding, LocalRow, NewRecord, RecordId, RecordUpdate,
    Resolution, Shard, ShardId, ShardOptions, resolve,
};
use reasonbank_sync::proto::{Direction, Limits, LocalShard, Message, Replica, Session};
use serde_json::{Map, Value, json};

/// In-memory model of a shard: the same last-writer-wins and cursor rules as `Shard`.
#[derive(Default)]
struct Model {
    rows: BTreeMap<RecordId, Change>,
    seq: i64,
    cursors: BTreeMap<String, i64>,
}

struct Node {
    origin: String,
    model: RefCell<Model>,
    /// Clock skew of this node in ms.
    skew: i64,
    /// A real SQLite shard in place of the model, if set.
    shard: Option<Shard>,
    /// Text-only seeds: vectors are the sim model's embedding of the text, and every session
    /// is text-only (receivers re-embed).
    text_only: bool,
}

/// The sim model: a deterministic 4-d vector per text.
fn sim_embed(text: &str) -> Embedding {
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    Embedding::new(
        (0..4)
            .map(|d| ((h >> (d * 16)) & 0xffff) as f32 + 1.0)
            .collect(),
    )
    .unwrap()
}

impl Replica for Node {
    fn changes_since(&self, after: i64, limit: usize) -> reasonbank_sync::Result<Vec<Change>> {
        if let Some(s) = &self.shard {
            return Replica::changes_since(s, after, limit);
        }
        let m = self.model.borrow();
        let mut v: Vec<Change> = m.rows.values().filter(|c| c.seq > after).cloned().collect();
        v.sort_by_key(|c| c.seq);
        v.truncate(limit);
        Ok(v)
    }
    fn apply_changes(
        &self,
        changes: &[Change],
        cursor: (&str, i64),
    ) -> reasonbank_sync::Result<ApplyReport> {
        if let Some(s) = &self.shard {
            return Replica::apply_changes(s, changes, cursor);
        }
        let mut m = self.model.borrow_mut();
        for c in changes {
            // The storage rule itself: last-writer-wins, counters joined.
            let local = m.rows.get(&c.id).map(|l| LocalRow {
                version: l.version,
                origin: &l.origin,
                deleted: l.deleted,
                metadata: &l.metadata,
            });
            let row = match resolve(local, c).unwrap() {
                Resolution::Skip => continue,
                Resolution::Replace(meta) => {
                    assert!(
                        c.deleted || c.embedding.is_some(),
                        "a winner without vector"
                    );
                    let mut c = c.clone();
                    if let Some(meta) = meta {
                        c.metadata = meta;
                    }
                    c
                }
                Resolution::MergeCounters(meta) => Change {
                    metadata: meta,
                    ..m.rows[&c.id].clone()
                },
            };
            m.seq += 1;
            let row = Change { seq: m.seq, ..row };
            m.rows.insert(row.id, row);
        }
        let e = m.cursors.entry(cursor.0.to_owned()).or_insert(0);
        *e = (*e).max(cursor.1);
        Ok(ApplyReport::default())
    }
    fn sync_cursor(&self, peer: &str) -> reasonbank_sync::Result<i64> {
        if let Some(s) = &self.shard {
            return Replica::sync_cursor(s, peer);
        }
        Ok(self.model.borrow().cursors.get(peer).copied().unwrap_or(0))
    }
    fn stamps(&self, ids: &[RecordId]) -> reasonbank_sync::Result<Vec<Option<(u64, String)>>> {
        if let Some(s) = &self.shard {
            return Replica::stamps(s, ids);
        }
        let m = self.model.borrow();
        Ok(ids
            .iter()
            .map(|id| m.rows.get(id).map(|c| (c.version, c.origin.clone())))
            .collect())
    }
}

impl Node {
    fn local(&self) -> LocalShard {
        if let Some(s) = &self.shard {
            return LocalShard::of(s);
        }
        LocalShard {
            origin: self.origin.clone(),
            model_id: "sim".into(),
            dims: 4,
        }
    }

    /// A local write with the HLC rule: `max(now, max(version) + 1)`.
    fn edit(&self, rng: &mut StdRng, now: u64, ids: &[RecordId]) {
        let id = ids[rng.random_range(0..ids.len())];
        let text_only = self.text_only;
        let vector = |rng: &mut StdRng, text: &str| {
            if text_only {
                return sim_embed(text);
            }
            Embedding::new((0..4).map(|_| rng.random_range(0.1f32..1.0)).collect()).unwrap()
        };
        if let Some(s) = &self.shard {
            // The real write paths, with their own hybrid logical clock.
            let exists = s
                .changes_since(0, usize::MAX)
                .unwrap()
                .iter()
                .any(|c| c.id == id);
            if s.get(id).unwrap().is_some() {
                if rng.random_bool(0.3) {
                    s.delete(id).unwrap();
                } else {
                    let mut u = RecordUpdate::new();
                    let text = format!("{} edit at {now}", self.origin);
                    u.embedding(vector(rng, &text)).text(text);
                    s.update(id, &u).unwrap();
                }
            } else if !exists {
                let text = format!("{} wrote at {now}", self.origin);
                let v = vector(rng, &text);
                let mut r = NewRecord::new(text, v);
                r.id(id);
                s.insert(&r).unwrap();
            }
            return;
        }
        let mut m = self.model.borrow_mut();
        let max_v = m.rows.values().map(|c| c.version).max().unwrap_or(0);
        let clock = (1_000_000 + now as i64 + self.skew).max(1) as u64;
        let version = (clock << 16).max(max_v + 1);
        m.seq += 1;
        let delete = m.rows.get(&id).is_some_and(|c| !c.deleted) && rng.random_bool(0.3);
        let seq = m.seq;
        let text = if delete {
            String::new()
        } else {
            format!("{} wrote {version}", self.origin)
        };
        let c = Change {
            id,
            kind: "memory".into(),
            namespace: String::new(),
            embedding: (!delete).then(|| vector(rng, &text)),
            text,
            metadata: "{}".into(),
            created_at: 0,
            updated_at: now as i64,
            version,
            origin: self.origin.clone(),
            deleted: delete,
            seq,
        };
        m.rows.insert(id, c);
    }

    /// The live metadata of `id`, if it is live here.
    fn meta(&self, id: RecordId) -> Option<Map<String, Value>> {
        if let Some(s) = &self.shard {
            return s.get(id).unwrap().map(|r| r.metadata);
        }
        let m = self.model.borrow();
        let c = m.rows.get(&id).filter(|c| !c.deleted)?;
        Some(serde_json::from_str(&c.metadata).unwrap())
    }

    /// A local last-writer-wins write of `id`: `f` edits its metadata (and may return a new
    /// text); inserts the item if it is not here (a concurrent insert of the same id on
    /// another replica is a conflict like any other). Returns false if `f` declines.
    fn write_item(
        &self,
        rng: &mut StdRng,
        now: u64,
        id: RecordId,
        f: impl FnOnce(&mut Map<String, Value>) -> Option<Option<String>>,
    ) -> bool {
        let text_only = self.text_only;
        let vector = |rng: &mut StdRng, text: &str| {
            if text_only {
                return sim_embed(text);
            }
            Embedding::new((0..4).map(|_| rng.random_range(0.1f32..1.0)).collect()).unwrap()
        };
        let fresh = || {
            let mut m = Map::new();
            m.insert("status".into(), json!("active"));
            m
        };
        if let Some(s) = &self.shard {
            if s.get(id).unwrap().is_none() {
                let mut m = fresh();
                let Some(text) = f(&mut m) else { return false };
                let text = text.unwrap_or_else(|| format!("item by {} at {now}", self.origin));
                let v = vector(rng, &text);
                let mut r = NewRecord::new(text, v);
                r.id(id).metadata(Value::Object(m));
                // A tombstone or a live row of another writer may hold the id: then skip.
                return s.insert(&r).is_ok();
            }
            let v = rng.random::<u64>();
            let out = s
                .modify(id, |r| -> reasonbank_memory::Result<Option<RecordUpdate>> {
                    let mut m = r.metadata.clone();
                    let Some(text) = f(&mut m) else {
                        return Ok(None);
                    };
                    let mut u = RecordUpdate::new();
                    u.metadata(Value::Object(m));
                    if let Some(t) = text {
                        let mut r = StdRng::seed_from_u64(v);
                        u.embedding(vector(&mut r, &t)).text(t);
                    }
                    Ok(Some(u))
                })
                .unwrap();
            return out.is_some();
        }
        let mut m = self.model.borrow_mut();
        let (mut meta, old) = match m.rows.get(&id) {
            Some(c) if c.deleted => return false,
            Some(c) => (serde_json::from_str(&c.metadata).unwrap(), Some(c.clone())),
            None => (fresh(), None),
        };
        let Some(text) = f(&mut meta) else {
            return false;
        };
        let max_v = m.rows.values().map(|c| c.version).max().unwrap_or(0);
        let clock = (1_000_000 + now as i64 + self.skew).max(1) as u64;
        let version = (clock << 16).max(max_v + 1);
        m.seq += 1;
        let (text, embedding) = match (text, &old) {
            (Some(t), _) => {
                let v = vector(rng, &t);
                (t, Some(v))
            }
            (None, Some(o)) => (o.text.clone(), o.embedding.clone()),
            (None, None) => {
                let t = format!("item by {} at {now}", self.origin);
                let v = vector(rng, &t);
                (t, Some(v))
            }
        };
        let c = Change {
            id,
            kind: "pattern".into(),
            namespace: String::new(),
            embedding,
            text,
            // As a local write stores it: counters normalized.
            metadata: serde_json::to_string(&meta).unwrap(),
            created_at: 0,
            updated_at: now as i64,
            version,
            origin: self.origin.clone(),
            deleted: false,
            seq: m.seq,
        };
        m.rows.insert(id, c);
        true
    }

    /// One feedback report on item `id`: this replica raises its own group. Returns the
    /// (successes, failures) acknowledged.
    fn feedback(&self, rng: &mut StdRng, now: u64, id: RecordId) -> Option<(f64, f64)> {
        let (s, f) = match rng.random_range(0..3) {
            0 => (1.0, 0.0),
            1 => (0.0, 1.0),
            _ => (0.25, 0.75),
        };
        let me = self.origin.clone();
        self.write_item(rng, now, id, |m| {
            let mut c = Counters::of(m).unwrap();
            c.add(&me, "s", s);
            c.add(&me, "f", f);
            c.write_into(m);
            Some(None)
        })
        .then_some((s, f))
    }

    /// Consolidation's merge marking of two active items here: the greater id is merged into
    /// the smaller (the deterministic survivor), which adds it to its grow-only
    /// `merged_from` group.
    fn merge(&self, rng: &mut StdRng, now: u64, items: &[RecordId]) {
        let active: Vec<RecordId> = items
            .iter()
            .copied()
            .filter(|&id| self.meta(id).is_some_and(|m| m["status"] == "active"))
            .collect();
        if active.len() < 2 {
            return;
        }
        let a = active[rng.random_range(0..active.len())];
        let b = active[rng.random_range(0..active.len())];
        if a == b {
            return;
        }
        let (w, l) = (a.min(b), a.max(b));
        self.write_item(rng, now, w, |m| {
            let mut c = Counters::of(m).unwrap();
            c.raise("merged_from", &l.to_string(), 1.0);
            c.write_into(m);
            Some(None)
        });
        self.write_item(rng, now, l, |m| {
            m.insert("status".into(), json!("merged"));
            m.insert("merged_into".into(), json!(w.to_string()));
            Some(None)
        });
    }

    /// Evidence checks on converged contents: per item, the sum over groups equals what was
    /// acknowledged; over root items with what was validly merged into them, the same total.
    fn check_evidence(
        &self,
        seed: u64,
        items: &[RecordId],
        acked: &BTreeMap<RecordId, (f64, f64)>,
    ) {
        let metas: BTreeMap<RecordId, Map<String, Value>> = items
            .iter()
            .filter_map(|&id| Some((id, self.meta(id)?)))
            .collect();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        let mut want_total = (0.0, 0.0);
        for (&id, &(s, f)) in acked {
            let got = metas.get(&id).map_or((0.0, 0.0), own);
            assert!(
                close(got.0, s) && close(got.1, f),
                "seed {seed}: item {id} has evidence {got:?}, acknowledged {:?}",
                (s, f)
            );
            want_total = (want_total.0 + s, want_total.1 + f);
        }
        // The parent an item is validly merged into: its link, listed by the parent.
        let parent = |id: RecordId| -> Option<RecordId> {
            let m = &metas[&id];
            if m["status"] != "merged" {
                return None;
            }
            let p: RecordId = m["merged_into"].as_str()?.parse().ok()?;
            let listed = Counters::of(metas.get(&p)?)
                .unwrap()
                .get("merged_from", &id.to_string())
                > 0.0;
            listed.then_some(p)
        };
        fn effective(
            id: RecordId,
            metas: &BTreeMap<RecordId, Map<String, Value>>,
            parent: &dyn Fn(RecordId) -> Option<RecordId>,
        ) -> (f64, f64) {
            let (mut s, mut f) = own(&metas[&id]);
            for &c in metas.keys() {
                if parent(c) == Some(id) {
                    let (cs, cf) = effective(c, metas, parent);
                    s += cs;
                    f += cf;
                }
            }
            (s, f)
        }
        let mut total = (0.0, 0.0);
        for &id in metas.keys().filter(|&&id| parent(id).is_none()) {
            let (s, f) = effective(id, &metas, &parent);
            total = (total.0 + s, total.1 + f);
        }
        assert!(
            close(total.0, want_total.0) && close(total.1, want_total.1),
            "seed {seed}: roots hold {total:?}, acknowledged {want_total:?}"
        );
    }

    fn contents(&self) -> Vec<Change> {
        if let Some(s) = &self.shard {
            return crate::contents(s);
        }
        self.model
            .borrow()
            .rows
            .values()
            .map(|c| Change {
                seq: 0,
                ..c.clone()
            })
            .collect()
    }
}

/// An item's own evidence: (successes, failures) summed over the replicas' groups.
fn own(m: &Map<String, Value>) -> (f64, f64) {
    let c = Counters::of(m).unwrap();
    let sum = |n: &str| {
        c.groups()
            .filter(|(g, _)| *g != "merged_from")
            .map(|(_, e)| e.get(n).copied().unwrap_or(0.0))
            .sum::<f64>()
    };
    (sum("s"), sum("f"))
}

/// One session: a client end on node `c`, a server end on node `s`.
struct Pair {
    c: usize,
    s: usize,
    client: Session,
    server: Option<Session>,
}

/// (deliver at, tiebreak, pair, to the server?, message)
type Queued = (u64, u64, usize, bool, Msg);

struct Net {
    rng: StdRng,
    /// (deliver at, tiebreak) -> (pair, to_server, message)
    queue: BinaryHeap<Reverse<Queued>>,
    n: u64,
    drop: f64,
    dup: f64,
    /// Links cut until the given time.
    cut: HashMap<(usize, usize), u64>,
}

/// `Message` ordered by nothing (the tiebreak makes heap keys unique).
#[derive(Clone, Debug)]
struct Msg(Message);
impl PartialEq for Msg {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Msg {}
impl PartialOrd for Msg {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Msg {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl Net {
    fn send(&mut self, now: u64, pair: usize, link: (usize, usize), to_server: bool, m: Message) {
        let key = (link.0.min(link.1), link.0.max(link.1));
        if self.cut.get(&key).is_some_and(|&until| now < until) || self.rng.random_bool(self.drop) {
            return;
        }
        let copies = if self.rng.random_bool(self.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let at = now + self.rng.random_range(1..40);
            self.n += 1;
            self.queue
                .push(Reverse((at, self.n, pair, to_server, Msg(m.clone()))));
        }
    }
}

/// Ids of a seed: the first [`ITEMS`] are items (feedback, merges, text edits; never
/// deleted), the rest plain records (inserts, edits, forgets).
fn ids(seed: u64) -> Vec<RecordId> {
    (0..10u128)
        .map(|i| RecordId::from_uuid(uuid::Uuid::from_u128((u128::from(seed) << 64) | (i + 1))))
        .collect()
}

/// How many of [`ids`] are items.
const ITEMS: usize = 6;

/// The heal chain.
const CHAIN: [(usize, usize); 3] = [(0, 1), (1, 2), (0, 1)];

/// Runs one seed, on in-memory models or, with `dir`, on real SQLite shards in it; returns
/// the simulated time at which it converged.
fn run(seed: u64, dir: Option<&std::path::Path>) -> u64 {
    let mut rng = StdRng::seed_from_u64(seed);
    let nodes: Vec<Node> = (0..3)
        .map(|i| {
            let shard = dir.map(|d| {
                let mut o = ShardOptions::new();
                o.dimensions(4).model_id("sim");
                Shard::open(d.join(format!("seed{seed}-node{i}.sqlite")), &o).unwrap()
            });
            Node {
                origin: shard
                    .as_ref()
                    .map_or_else(|| format!("node-{i}"), |s| s.origin().to_owned()),
                model: RefCell::default(),
                skew: rng.random_range(-500..500),
                shard,
                text_only: seed % 2 == 1,
            }
        })
        .collect();
    let all = ids(seed);
    let (items, ids) = all.split_at(ITEMS);
    let mut acked: BTreeMap<RecordId, (f64, f64)> = BTreeMap::new();
    let limits = Limits {
        batch_size: rng.random_range(1..5),
        text_only_batch_size: rng.random_range(1..5),
        batch_bytes: 1 << 20,
        retry_ms: 100,
    };
    let mut net = Net {
        rng: StdRng::seed_from_u64(seed ^ 0x5eed),
        queue: BinaryHeap::new(),
        n: 0,
        drop: rng.random_range(0.0..0.3),
        dup: rng.random_range(0.0..0.2),
        cut: HashMap::new(),
    };
    let shard = ShardId::new("sim").unwrap();
    let mut pairs: Vec<Pair> = Vec::new();
    let chaos_end = 2_000u64;
    let mut now = 0u64;
    let mut heal: Vec<usize> = Vec::new();
    let dirs = [Direction::Pull, Direction::Push, Direction::Both];
    loop {
        if now < chaos_end {
            if rng.random_bool(0.05) {
                let n = rng.random_range(0..3);
                nodes[n].edit(&mut rng, now, ids);
            }
            if rng.random_bool(0.06) {
                let node = &nodes[rng.random_range(0..3)];
                let id = items[rng.random_range(0..items.len())];
                match rng.random_range(0..10) {
                    0..6 => {
                        if let Some((s, f)) = node.feedback(&mut rng, now, id) {
                            let e = acked.entry(id).or_default();
                            *e = (e.0 + s, e.1 + f);
                        }
                    }
                    6..8 => node.merge(&mut rng, now, items),
                    _ => {
                        let text = format!("{} edited at {now}", node.origin);
                        node.write_item(&mut rng, now, id, |_| Some(Some(text)));
                    }
                }
            }
            if rng.random_bool(0.01) {
                let (a, b) = (rng.random_range(0..3), rng.random_range(0..3));
                if a != b {
                    net.cut
                        .insert((a.min(b), a.max(b)), now + rng.random_range(50..800));
                }
            }
            if rng.random_bool(0.01) {
                let c = rng.random_range(0..3);
                let s = (c + rng.random_range(1..3)) % 3;
                let dir = dirs[rng.random_range(0..3)];
                let _ = start(&mut pairs, &mut net, &nodes, c, s, dir, &shard, limits, now);
            }
        } else if heal.is_empty() {
            // Heal: no more edits or partitions (loss, duplication and reordering go on). A
            // chain of full syncs carries every change everywhere: 0<->1, 1<->2, 0<->1, each
            // started when the previous one has received everything on both ends.
            net.cut.clear();
            heal.push(start(
                &mut pairs,
                &mut net,
                &nodes,
                0,
                1,
                Direction::Both,
                &shard,
                limits,
                now,
            ));
        }
        // Deliver everything due now.
        while let Some(Reverse((at, ..))) = net.queue.peek() {
            if *at > now {
                break;
            }
            let Reverse((_, _, p, to_server, Msg(m))) = net.queue.pop().unwrap();
            let pair = &mut pairs[p];
            let (node, link) = if to_server {
                (pair.s, (pair.c, pair.s))
            } else {
                (pair.c, (pair.s, pair.c))
            };
            let session = if to_server {
                pair.server
                    .get_or_insert_with(|| Session::server(nodes[node].local(), limits))
            } else {
                &mut pair.client
            };
            // Half the deliveries pipeline the next pull ahead of the commit, as the QUIC
            // glue does.
            if net.rng.random_bool(0.5)
                && let Some(next) = session.prefetch(&m, now)
            {
                net.send(now, p, link, !to_server, next);
            }
            let mut m = m;
            if let Message::Batch(b) = &m {
                assert!(
                    !nodes[node].text_only || b.changes.iter().all(|c| c.embedding.is_none()),
                    "seed {seed}: a text-only batch carried a vector"
                );
            }
            if session.reembeds(&m) {
                // What the QUIC glue does with its re-embedder, with the sim model.
                let texts = session
                    .prepare_text_only(&nodes[node], &mut m)
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
                if let Message::Batch(b) = &mut m {
                    b.fill_vectors(texts.iter().map(|t| sim_embed(t)).collect(), 4)
                        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
                }
            }
            let out = session
                .handle(&nodes[node], m, now)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            for m in out {
                net.send(now, p, link, !to_server, m);
            }
        }
        for (p, pair) in pairs.iter_mut().enumerate() {
            for m in pair.client.poll(now) {
                net.send(now, p, (pair.c, pair.s), true, m);
            }
            if let Some(s) = &mut pair.server {
                for m in s.poll(now) {
                    net.send(now, p, (pair.s, pair.c), false, m);
                }
            }
        }
        if let Some(&last) = heal.last() {
            let p = &pairs[last];
            if p.client.received_all() && p.server.as_ref().is_some_and(Session::received_all) {
                if heal.len() == CHAIN.len() {
                    let a = nodes[0].contents();
                    assert_eq!(a, nodes[1].contents(), "seed {seed}: 0 vs 1");
                    assert_eq!(a, nodes[2].contents(), "seed {seed}: 0 vs 2");
                    for n in &nodes {
                        n.check_evidence(seed, items, &acked);
                    }
                    return now;
                }
                let (c, s) = CHAIN[heal.len()];
                heal.push(start(
                    &mut pairs,
                    &mut net,
                    &nodes,
                    c,
                    s,
                    Direction::Both,
                    &shard,
                    limits,
                    now,
                ));
            }
        }
        now += 1;
        assert!(
            now < chaos_end + 120_000,
            "seed {seed}: no convergence within 120 s of healing"
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn start(
    pairs: &mut Vec<Pair>,
    net: &mut Net,
    nodes: &[Node],
    c: usize,
    s: usize,
    dir: Direction,
    shard: &ShardId,
    limits: Limits,
    now: u64,
) -> usize {
    let mut client = Session::client(shard.clone(), nodes[c].local(), dir, limits)
        .with_text_only(nodes[c].text_only);
    let hint = nodes[s].origin.clone();
    let known = (c + s).is_multiple_of(2);
    let out = client
        .start(&nodes[c], known.then_some(hint.as_str()), now)
        .unwrap();
    pairs.push(Pair {
        c,
        s,
        client,
        server: None,
    });
    let p = pairs.len() - 1;
    for m in out {
        net.send(now, p, (c, s), true, m);
    }
    p
}

#[test]
fn a_thousand_seeds_converge() {
    let t = std::time::Instant::now();
    let mut total = 0;
    for seed in 0..1_000 {
        total += run(seed, None);
    }
    eprintln!(
        "1000 seeds converged; mean simulated time {} ms; wall {:?}",
        total / 1000,
        t.elapsed()
    );
}

/// The same simulation with real SQLite shards (their own write paths and clocks) in place of
/// the models, for fewer seeds: SQLite commits cost real time.
#[test]
fn real_shards_converge_under_the_same_faults() {
    let dir = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    for seed in 0..50 {
        run(10_000 + seed, Some(dir.path()));
    }
    eprintln!("50 seeds on SQLite converged; wall {:?}", t.elapsed());
}
