//! Text-only sync (issue #6) over real QUIC on 127.0.0.1 with real SQLite shards: rows travel
//! without vectors and each receiver re-embeds them with a deterministic test re-embedder
//! (sync does not own the real model; the facade tests use it).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reasonbank_memory::{Change, Embedding, NewRecord, Shard};
use reasonbank_sync::quic::{CODE_PROTOCOL, CODE_TEXT_ONLY, cursor_key};
use reasonbank_sync::{BoxError, Error, Reembedder, SyncClient, SyncConfig, SyncServer};

use crate::{DIM, Peer, contents, edit, peers, rng, sid};

fn local() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// The test model: a deterministic vector per text (FNV-1a of the text seeds each component).
pub(crate) fn embed_text(text: &str) -> Embedding {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let v = (0..DIM)
        .map(|d| {
            let x = h.rotate_left(d as u32 * 7) ^ (d as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    Embedding::new(v).unwrap()
}

/// A re-embedder of the test model that counts its calls and can fail one of them.
#[derive(Debug)]
pub(crate) struct TestReembedder {
    model: &'static str,
    calls: AtomicUsize,
    texts: AtomicUsize,
    /// The call (1-based) that fails, if any.
    fail_on: Option<usize>,
}

impl TestReembedder {
    pub(crate) fn new() -> Arc<TestReembedder> {
        Arc::new(TestReembedder {
            model: "test-model",
            calls: AtomicUsize::new(0),
            texts: AtomicUsize::new(0),
            fail_on: None,
        })
    }
}

#[async_trait::async_trait]
impl Reembedder for TestReembedder {
    fn model_id(&self) -> &str {
        self.model
    }
    fn dimensions(&self) -> usize {
        DIM
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Embedding>, BoxError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_on == Some(call) {
            return Err("the test model failed on purpose".into());
        }
        self.texts.fetch_add(texts.len(), Ordering::SeqCst);
        Ok(texts.iter().map(|t| embed_text(t)).collect())
    }
}

/// Every row without its vector (and without the local `seq`).
fn without_vectors(s: &Shard) -> Vec<Change> {
    let mut v = contents(s);
    for c in &mut v {
        c.embedding = None;
    }
    v
}

/// The receiver's vectors are its re-embedder's for every live row with a text, and the
/// sender's for rows whose text cannot be embedded.
fn assert_vectors_are_reembedded(receiver: &Shard, sender: &Shard) {
    let theirs = contents(sender);
    let mut reembedded = 0;
    for (mine, theirs) in contents(receiver).iter().zip(&theirs) {
        assert_eq!(mine.id, theirs.id);
        if mine.deleted {
            assert!(mine.embedding.is_none());
        } else if mine.text.trim().is_empty() {
            assert_eq!(
                mine.embedding, theirs.embedding,
                "an empty text keeps its vector"
            );
        } else {
            assert_eq!(
                mine.embedding,
                Some(embed_text(&mine.text)),
                "{}",
                mine.text
            );
            reembedded += 1;
        }
    }
    assert!(reembedded > 0);
}

fn text_only(config: &SyncConfig, hook: Option<Arc<TestReembedder>>) -> SyncConfig {
    let mut c = config.clone();
    c.text_only(true);
    if let Some(h) = hook {
        c.reembedder(h);
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_only_pull_converges_with_the_receivers_vectors_and_fewer_bytes() {
    let p = peers(2);
    let a = p[0].shard("s");
    edit(&a, &mut rng(11), 120, &[]);
    // A live row whose text cannot be embedded travels with its vector.
    a.insert(&NewRecord::new("  ", crate::vector(&mut rng(12))))
        .unwrap();
    assert!(contents(&a).iter().any(|c| c.deleted), "tombstones too");
    let server = SyncServer::bind(local(), Arc::clone(&p[0].store), p[0].config.clone()).unwrap();
    let addr = server.local_addr().unwrap();

    let hook = TestReembedder::new();
    let b = p[1].shard("s");
    let client = SyncClient::connect(addr, text_only(&p[1].config, Some(Arc::clone(&hook))))
        .await
        .unwrap();
    let rep = client.pull(&sid("s"), &b).await.unwrap();
    assert_eq!(
        without_vectors(&a),
        without_vectors(&b),
        "text, metadata, stamps, tombstones"
    );
    assert_vectors_are_reembedded(&b, &a);
    let live_texts = contents(&a)
        .iter()
        .filter(|c| !c.deleted && !c.text.trim().is_empty())
        .count() as u64;
    assert_eq!(rep.changes_reembedded, live_texts, "{rep:?}");
    assert_eq!(hook.texts.load(Ordering::SeqCst) as u64, live_texts);
    // Nothing more to pull, and nothing re-embedded for it.
    let again = client.pull(&sid("s"), &b).await.unwrap();
    assert_eq!((again.changes_received, again.changes_reembedded), (0, 0));

    // The same rows in full, into a fresh shard: the text-only pull sent fewer bytes.
    let dir = tempfile::tempdir().unwrap();
    let full_shard = Arc::new(Peer::open_shard(dir.path()));
    let full = SyncClient::connect(addr, p[1].config.clone())
        .await
        .unwrap();
    let full_rep = full.pull(&sid("s"), &full_shard).await.unwrap();
    assert_eq!(contents(&full_shard), contents(&a));
    assert_eq!(full_rep.changes_reembedded, 0);
    let ratio = rep.bytes_on_wire() as f64 / full_rep.bytes_on_wire() as f64;
    eprintln!(
        "{DIM}-d: text-only {} B, full {} B on the wire ({ratio:.2})",
        rep.bytes_on_wire(),
        full_rep.bytes_on_wire()
    );
    assert!(ratio < 0.9, "text-only {rep:?} vs full {full_rep:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_only_sync_both_ways_reembeds_on_each_receiver() {
    let p = peers(2);
    let (a, b) = (p[0].shard("s"), p[1].shard("s"));
    let shared: Vec<_> = (0..10)
        .map(|_| reasonbank_memory::RecordId::new())
        .collect();
    let mut r = rng(13);
    edit(&a, &mut r, 60, &shared);
    edit(&b, &mut r, 60, &shared);
    let mut sc = p[0].config.clone();
    let server_hook = TestReembedder::new();
    sc.reembedder(Arc::clone(&server_hook) as Arc<dyn Reembedder>);
    let server = SyncServer::bind(local(), Arc::clone(&p[0].store), sc).unwrap();
    let client = SyncClient::connect(
        server.local_addr().unwrap(),
        text_only(&p[1].config, Some(TestReembedder::new())),
    )
    .await
    .unwrap();
    let rep = client.sync(&sid("s"), &b).await.unwrap();
    assert!(rep.changes_sent > 0 && rep.changes_received > 0, "{rep:?}");
    assert!(
        server_hook.texts.load(Ordering::SeqCst) > 0,
        "the server re-embedded the push"
    );
    assert_eq!(without_vectors(&a), without_vectors(&b));
    // Every live vector on both sides is now the test model's vector of its text, except
    // those each side wrote itself with random vectors and never received.
    for (x, y) in contents(&a).iter().zip(contents(&b).iter()) {
        if !x.deleted && x.embedding != y.embedding {
            let (ex, ey) = (Some(embed_text(&x.text)), Some(embed_text(&y.text)));
            assert!(x.embedding == ex || y.embedding == ey, "{x:?} / {y:?}");
        }
    }
    let rep = client.sync(&sid("s"), &b).await.unwrap();
    assert_eq!((rep.changes_sent, rep.changes_received), (0, 0), "{rep:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_only_without_a_reembedder_is_a_typed_error_and_applies_nothing() {
    let p = peers(2);
    let a = p[0].shard("s");
    edit(&a, &mut rng(14), 30, &[]);
    let server = SyncServer::bind(local(), Arc::clone(&p[0].store), p[0].config.clone()).unwrap();
    let addr = server.local_addr().unwrap();
    let b = p[1].shard("s");

    // Pull without a re-embedder: refused locally, before anything is sent.
    let client = SyncClient::connect(addr, text_only(&p[1].config, None))
        .await
        .unwrap();
    for r in [
        client.pull(&sid("s"), &b).await,
        client.sync(&sid("s"), &b).await,
    ] {
        assert!(matches!(r, Err(Error::NoReembedder)), "{r:?}");
    }
    assert!(b.changes_since(0, 10).unwrap().is_empty());

    // A re-embedder of another model: refused the same way.
    let other = Arc::new(TestReembedder {
        model: "another-model",
        calls: AtomicUsize::new(0),
        texts: AtomicUsize::new(0),
        fail_on: None,
    });
    let client = SyncClient::connect(addr, text_only(&p[1].config, Some(other)))
        .await
        .unwrap();
    let r = client.pull(&sid("s"), &b).await;
    assert!(matches!(r, Err(Error::ReembedderModel { .. })), "{r:?}");
    assert!(b.changes_since(0, 10).unwrap().is_empty());

    // A text-only push to a server without a re-embedder: refused, the server's store
    // untouched (the shard is not even opened).
    edit(&p[1].shard("inbox"), &mut rng(15), 10, &[]);
    let client = SyncClient::connect(addr, text_only(&p[1].config, None))
        .await
        .unwrap();
    let e = client
        .push(&sid("inbox"), &p[1].shard("inbox"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Refused { code } if code == u64::from(CODE_TEXT_ONLY)),
        "{e:?}"
    );
    assert!(e.to_string().contains("re-embed"), "{e}");
    assert!(!p[0].store.exists(&sid("inbox")));

    // Shards of another model are refused in text-only mode too (checked on Open).
    let dir = tempfile::tempdir().unwrap();
    let mut o = reasonbank_memory::ShardOptions::new();
    o.dimensions(DIM).model_id("another-model");
    let alien = Arc::new(Shard::open(dir.path().join("s.sqlite"), &o).unwrap());
    let mut cfg = text_only(&p[1].config, None);
    cfg.reembedder(Arc::new(TestReembedder {
        model: "another-model",
        calls: AtomicUsize::new(0),
        texts: AtomicUsize::new(0),
        fail_on: None,
    }));
    let client = SyncClient::connect(addr, cfg).await.unwrap();
    let e = client.pull(&sid("s"), &alien).await.unwrap_err();
    assert!(
        matches!(e, Error::Refused { code } if code == u64::from(CODE_PROTOCOL)),
        "{e:?}"
    );
    assert!(alien.changes_since(0, 10).unwrap().is_empty());
}

/// The re-embedder fails on its third call: the first two batches stay committed with their
/// cursor, the failing one is not applied, and a retry converges from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reembed_failure_leaves_the_cursor_and_a_retry_converges() {
    let p = peers(2);
    let a = p[0].shard("s");
    // Inserts only, so that every batch has texts to embed.
    let mut r = rng(16);
    for i in 0..100 {
        a.insert(&NewRecord::new(
            format!("memory {i}: {}", rand::Rng::random::<u32>(&mut r)),
            crate::vector(&mut r),
        ))
        .unwrap();
    }
    let mut sc = p[0].config.clone();
    sc.batch_size(10);
    let server = SyncServer::bind(local(), Arc::clone(&p[0].store), sc).unwrap();
    let addr = server.local_addr().unwrap();
    let b = p[1].shard("s");
    let failing = Arc::new(TestReembedder {
        model: "test-model",
        calls: AtomicUsize::new(0),
        texts: AtomicUsize::new(0),
        fail_on: Some(3),
    });
    let mut cc = text_only(&p[1].config, Some(failing));
    cc.batch_size(10);
    let client = SyncClient::connect(addr, cc).await.unwrap();
    let e = client.pull(&sid("s"), &b).await.unwrap_err();
    assert!(matches!(e, Error::Reembed { texts: 10, .. }), "{e:?}");
    let got = b.changes_since(0, usize::MAX).unwrap();
    assert_eq!(got.len(), 20, "two batches committed, the third not");
    let key = cursor_key(&p[0].config.fingerprint(), a.origin());
    let sent = a.changes_since(0, 20).unwrap();
    assert_eq!(b.sync_cursor(&key).unwrap(), sent[19].seq);
    assert!(got.iter().all(|c| c.embedding.is_some()));

    let mut cc = text_only(&p[1].config, Some(TestReembedder::new()));
    cc.batch_size(10);
    let client = SyncClient::connect(addr, cc).await.unwrap();
    let rep = client.pull(&sid("s"), &b).await.unwrap();
    assert_eq!(rep.changes_received, 80, "resumed, not restarted");
    assert_eq!(without_vectors(&a), without_vectors(&b));
    assert_vectors_are_reembedded(&b, &a);
}

/// Rows relayed back to a peer that holds them already are not re-embedded: the receiver
/// drops changes that lose to its rows before it calls the re-embedder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_rows_the_receiver_holds_are_not_reembedded() {
    let p = peers(3);
    let (b, c) = (p[1].shard("s"), p[2].shard("s"));
    let mut r = rng(17);
    for i in 0..20 {
        b.insert(&NewRecord::new(
            format!("b wrote {i}"),
            crate::vector(&mut r),
        ))
        .unwrap();
    }
    let hub_hook = TestReembedder::new();
    let mut hc = p[0].config.clone();
    hc.reembedder(Arc::clone(&hub_hook) as Arc<dyn Reembedder>);
    let server = SyncServer::bind(local(), Arc::clone(&p[0].store), hc).unwrap();
    let addr = server.local_addr().unwrap();
    let cb = SyncClient::connect(addr, text_only(&p[1].config, Some(TestReembedder::new())))
        .await
        .unwrap();
    let cc = SyncClient::connect(addr, text_only(&p[2].config, Some(TestReembedder::new())))
        .await
        .unwrap();
    cb.push(&sid("s"), &b).await.unwrap();
    assert_eq!(hub_hook.texts.load(Ordering::SeqCst), 20);
    let rep = cc.pull(&sid("s"), &c).await.unwrap();
    assert_eq!(rep.changes_reembedded, 20);
    // C relays B's rows (written by B, not by the hub) back to the hub, which holds them.
    let rep = cc.push(&sid("s"), &c).await.unwrap();
    assert_eq!(rep.changes_sent, 20, "{rep:?}");
    assert_eq!(
        hub_hook.texts.load(Ordering::SeqCst),
        20,
        "nothing re-embedded for rows the hub holds"
    );
    let hub = without_vectors(&p[0].shard("s"));
    assert_eq!(hub, without_vectors(&b));
    assert_eq!(hub, without_vectors(&c));
}
