//! Text-only shard sync with the real model: each side re-embeds what it receives with its
//! own copy of all-MiniLM-L6-v2 (`EmbedderReembedder`), over real QUIC on loopback.

use std::sync::Arc;

use reasonbank::embedders::EmbedKind;
use reasonbank::memory::{Change, Embedding, Shard, Store, StoreOptions};
use reasonbank::sync::{Access, SyncClient, SyncConfig, SyncServer, generate_identity};
use reasonbank::{AgentMemory, EmbedderReembedder, Memory, RecallOptions};

fn rows(s: &Shard) -> Vec<Change> {
    let mut all = s.changes_since(0, usize::MAX).unwrap();
    for c in &mut all {
        c.seq = 0;
    }
    all.sort_by_key(|c| c.id);
    all
}

fn without_vectors(s: &Shard) -> Vec<Change> {
    let mut v = rows(s);
    for c in &mut v {
        c.embedding = None;
    }
    v
}

fn cosine(a: &Embedding, b: &Embedding) -> f32 {
    a.as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(x, y)| x * y)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn text_only_sync_reembeds_with_the_real_model() {
    let (hub_dir, edge_dir, full_dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    // Each side loads its own model (its own embedding cache), as two machines would.
    let hub = AgentMemory::builder(hub_dir.path())
        .agent("team")
        .build()
        .await
        .unwrap();
    let edge = AgentMemory::builder(edge_dir.path())
        .agent("team")
        .build()
        .await
        .unwrap();
    let hub_texts: Vec<Memory> = (0..30)
        .map(|i| {
            Memory::new(format!(
                "Lesson {i}: when the deploy of service {i} times out, roll back and page on-call."
            ))
            .metadata(serde_json::json!({"n": i}))
        })
        .collect();
    let ids = hub.remember_batch(hub_texts).await.unwrap();
    hub.forget(ids[3]).await.unwrap();
    hub.remember(
        "Rotate the TLS certificates on the load balancer before they expire.",
        serde_json::json!({"topic": "security"}),
    )
    .await
    .unwrap();
    edge.remember("Pin dependency versions in CI.", serde_json::json!({}))
        .await
        .unwrap();

    let (cert, key) = generate_identity("hub").unwrap();
    let mut hub_cfg = SyncConfig::new(&cert, &key).unwrap();
    let (cert, key) = generate_identity("edge").unwrap();
    let mut edge_cfg = SyncConfig::new(&cert, &key).unwrap();
    hub_cfg.grant(edge_cfg.fingerprint(), None, Access::READ_WRITE);
    edge_cfg.grant(hub_cfg.fingerprint(), None, Access::READ_WRITE);
    let full_cfg = edge_cfg.clone();
    hub_cfg.reembedder(Arc::new(EmbedderReembedder::new(Arc::clone(
        hub.embedder(),
    ))));
    edge_cfg
        .text_only(true)
        .reembedder(Arc::new(EmbedderReembedder::new(Arc::clone(
            edge.embedder(),
        ))));
    let server = SyncServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        Arc::clone(hub.store()),
        hub_cfg,
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let client = SyncClient::connect(addr, edge_cfg).await.unwrap();
    let rep = client.sync(hub.agent(), edge.shard()).await.unwrap();
    assert_eq!((rep.changes_sent, rep.changes_received), (1, 31), "{rep:?}");
    assert_eq!(
        rep.changes_reembedded, 30,
        "every live row of the hub: {rep:?}"
    );

    // Text, metadata, stamps and tombstones are identical; every vector on each side is what
    // that side's model makes of the text, as for a local `remember`.
    assert_eq!(without_vectors(hub.shard()), without_vectors(edge.shard()));
    let (h, e) = (rows(hub.shard()), rows(edge.shard()));
    let mut worst = 1.0f32;
    for (h, e) in h.iter().zip(&e) {
        if h.deleted {
            continue;
        }
        let own = edge
            .embedder()
            .embed_one(&e.text, EmbedKind::Document)
            .await
            .unwrap();
        assert_eq!(
            e.embedding,
            Some(Embedding::new(own).unwrap()),
            "{}",
            e.text
        );
        let (hv, ev) = (h.embedding.as_ref().unwrap(), e.embedding.as_ref().unwrap());
        worst = worst.min(cosine(hv, ev));
    }
    eprintln!("lowest cosine between the two sides' vectors of one text: {worst}");
    assert!(worst > 0.9999, "the same model on both sides: {worst}");
    // The edge finds the hub's memory by meaning, with the vectors it made itself.
    let hits = edge
        .recall("certificate expiry", &RecallOptions::new())
        .await
        .unwrap();
    assert!(hits[0].text.contains("TLS certificates"), "{hits:?}");

    // The same rows in full, for the bytes on the wire.
    let mut o = StoreOptions::new();
    o.shard_options_mut()
        .dimensions(hub.embedder().dimensions())
        .model_id(hub.embedder().model_id());
    let full_store = Store::open(full_dir.path(), o).unwrap();
    let full_shard = full_store.shard(hub.agent()).unwrap();
    let full = SyncClient::connect(addr, full_cfg).await.unwrap();
    let full_rep = full.pull(hub.agent(), &full_shard).await.unwrap();
    assert_eq!(rows(&full_shard), rows(hub.shard()));
    let (t, f) = (rep.bytes_received, full_rep.bytes_received);
    eprintln!(
        "384-d: text-only pull {t} B, full pull {f} B ({:.2})",
        t as f64 / f as f64
    );
    assert!(t * 2 < f, "text-only {t} B vs full {f} B");
}
