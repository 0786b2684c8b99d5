//! Issue #14 end to end: a real hub (`SyncServer`) and two peers syncing over QUIC on
//! loopback through the facade's sync driver (`AgentMemory::sync`), each with its own copy of
//! the real model; concurrent feedback on the same items adds up on all three.

use std::sync::Arc;

use reasonbank::memory::RecordId;
use reasonbank::reasoning::{Feedback, Outcome, Trajectory};
use reasonbank::sync::{Access, SyncConfig, SyncServer, generate_identity};
use reasonbank::{AgentMemory, Identity, SyncRequest};

async fn agent(dir: &std::path::Path) -> AgentMemory {
    AgentMemory::builder(dir)
        .agent("team")
        .build()
        .await
        .unwrap()
}

async fn totals(m: &AgentMemory, id: RecordId) -> (f64, f64, f32) {
    let it = m.bank().item(m.agent(), id).await.unwrap().unwrap();
    (it.successes, it.failures, it.confidence)
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_14_concurrent_feedback_through_a_hub_adds_up_on_all_three() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let hub = agent(dirs[0].path()).await;
    let peers = [agent(dirs[1].path()).await, agent(dirs[2].path()).await];

    // The hub learns two items; both peers fetch them.
    let mut deploy = Trajectory::new("deploy the web app to staging");
    deploy
        .step("run deploy.sh staging", "error: registry login expired")
        .outcome(Outcome::Failure);
    let mut tests = Trajectory::new("fix the failing parser tests");
    tests
        .step("cargo test parser", "2 passed")
        .outcome(Outcome::Success);
    let a = hub.learn(&deploy).await.unwrap().items[0].id;
    let b = hub.learn(&tests).await.unwrap().items[0].id;

    let (cert, key) = generate_identity("hub").unwrap();
    let mut hub_cfg = SyncConfig::new(&cert, &key).unwrap();
    let hub_fp = hub_cfg.fingerprint();
    let ids: Vec<Identity> = (0..2)
        .map(|i| {
            let (cert, key) = generate_identity(&format!("peer{i}")).unwrap();
            hub_cfg.grant(
                SyncConfig::new(&cert, &key).unwrap().fingerprint(),
                None,
                Access::READ_WRITE,
            );
            Identity::from_pem(cert, key)
        })
        .collect();
    let server = SyncServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        Arc::clone(hub.store()),
        hub_cfg,
    )
    .unwrap();
    let request = SyncRequest::new(server.local_addr().unwrap().to_string(), hub_fp);
    let round = || async {
        for (p, id) in peers.iter().zip(&ids) {
            p.sync(&request, id).await.unwrap();
        }
    };
    round().await;

    // Concurrent feedback on the same items, on all three, between syncs.
    for _ in 0..3 {
        hub.feedback(a, Feedback::Success).await.unwrap();
    }
    hub.feedback(b, Feedback::Failure).await.unwrap();
    peers[0].feedback(a, Feedback::Failure).await.unwrap();
    peers[0].feedback(b, Feedback::Success).await.unwrap();
    peers[0].feedback(b, Feedback::Success).await.unwrap();
    peers[1].feedback(a, Feedback::Reward(0.25)).await.unwrap();
    peers[1].feedback(a, Feedback::Reward(0.25)).await.unwrap();
    peers[1].feedback(b, Feedback::Failure).await.unwrap();

    // Two rounds: the first peer only sees the second's feedback in the second round.
    round().await;
    round().await;

    // a: 3 + 0.5 successes, 1 + 1.5 failures; b: 2 and 2.
    for m in [&hub, &peers[0], &peers[1]] {
        let (s, f, c) = totals(m, a).await;
        assert_eq!((s, f), (3.5, 2.5));
        assert!((c - 4.5 / 8.0).abs() < 1e-6, "{c}");
        let (s, f, c) = totals(m, b).await;
        assert_eq!((s, f), (2.0, 2.0));
        assert!((c - 0.5).abs() < 1e-6, "{c}");
        // Recall ranks with the same merged evidence, not a cache the last writer left.
        let mut o = reasonbank::RecallOptions::new();
        o.k(20).kinds(vec!["pattern".into()]);
        let hits = m.recall("deploy", &o).await.unwrap();
        let got = hits.iter().find(|h| h.id == a).expect("item a recalled");
        let r = got.why.reliability.expect("a has feedback");
        assert!((r - 4.5 / 8.0).abs() < 1e-6, "recall reliability {r}");
    }
    server.close();
}

/// Issue #15: a peer whose grant on the hub is read-only gets what a default (two-way) sync
/// can give it: the pull runs, and the report says the push was denied.
#[tokio::test(flavor = "multi_thread")]
async fn issue_15_a_read_only_peer_pulls_and_reports_the_push_denied() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let hub = agent(dirs[0].path()).await;
    let peer = agent(dirs[1].path()).await;
    hub.remember(
        "Rotate the TLS certificates before they expire",
        serde_json::json!({}),
    )
    .await
    .unwrap();
    peer.remember("A note only the peer has", serde_json::json!({}))
        .await
        .unwrap();
    let (cert, key) = generate_identity("hub").unwrap();
    let mut hub_cfg = SyncConfig::new(&cert, &key).unwrap();
    let hub_fp = hub_cfg.fingerprint();
    let (pc, pk) = generate_identity("reader").unwrap();
    hub_cfg.grant(
        SyncConfig::new(&pc, &pk).unwrap().fingerprint(),
        None,
        Access::READ,
    );
    let id = Identity::from_pem(pc, pk);
    let server = SyncServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        Arc::clone(hub.store()),
        hub_cfg,
    )
    .unwrap();
    let request = SyncRequest::new(server.local_addr().unwrap().to_string(), hub_fp);
    let out = peer.sync(&request, &id).await.unwrap();
    let report = out[0].result.as_ref().expect("the pull half succeeds");
    assert!(report.push_denied);
    assert_eq!(report.changes_applied, 1);
    assert_eq!(hub.stats().await.unwrap().records, 1, "nothing was pushed");
    assert_eq!(peer.stats().await.unwrap().records, 2);
    server.close();
}
