//! Recall: scoring, feedback, usage, MMR and the paper's task-query mode.

use std::sync::Arc;

use reasonbank_memory::{Store, StoreOptions};
use reasonbank_reasoning::{
    Error, Feedback, ItemKind, Outcome, ReasoningBank, RecallMode, RecallOptions,
};

use crate::common::{Fixture, shard, trajectory};

#[tokio::test]
async fn feedback_moves_an_item_down_then_up() {
    let fx = Fixture::new().await;
    // λ = 1: order by score alone, so the test sees the reliability term at work.
    let bank = fx.builder().mmr_lambda(1.0).build().unwrap();
    let agent = shard("tester");
    for (task, action) in [
        (
            "stabilize the flaky HTTP client test",
            "add retries with exponential backoff around the request",
        ),
        (
            "make the network integration test deterministic",
            "replace the real server with a local mock server",
        ),
    ] {
        let t = trajectory(
            task,
            &[(action, "test passes 50 times in a row")],
            Some("fixed"),
            Some(Outcome::Success),
        );
        bank.learn(&agent, &t).await.unwrap();
    }
    let query = "the network test fails intermittently";
    let order = |bank: ReasoningBank| async move {
        let hits = bank
            .find_similar_patterns(&[shard("tester")], query, 0.0, 2)
            .await
            .unwrap();
        assert_eq!(hits.len(), 2);
        (hits[0].item.id, hits[1].item.id, hits[0].clone())
    };
    let (top, second, first_hit) = order(bank.clone()).await;
    assert_eq!(first_hit.reliability, 0.5);
    assert!(first_hit.similarity > 0.3, "{}", first_hit.similarity);

    for _ in 0..3 {
        bank.feedback(&agent, top, Feedback::Failure).await.unwrap();
    }
    let item = bank.item(&agent, top).await.unwrap().unwrap();
    assert!(
        (item.confidence - 1.0 / 5.0).abs() < 1e-6,
        "{}",
        item.confidence
    );
    let (now_top, _, _) = order(bank.clone()).await;
    assert_eq!(
        now_top, second,
        "three failures should drop the item below the other"
    );

    for _ in 0..8 {
        bank.feedback(&agent, top, Feedback::Success).await.unwrap();
    }
    let item = bank
        .feedback(&agent, top, Feedback::Reward(1.0))
        .await
        .unwrap();
    assert!(
        (item.confidence - 10.0 / 14.0).abs() < 1e-6,
        "{}",
        item.confidence
    );
    let (now_top, _, hit) = order(bank.clone()).await;
    assert_eq!(now_top, top, "nine successes should lift it back above");
    assert!(hit.reliability > 0.7);

    assert!(matches!(
        bank.feedback(&agent, top, Feedback::Reward(2.0)).await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        bank.feedback(
            &agent,
            reasonbank_memory::RecordId::new(),
            Feedback::Success
        )
        .await,
        Err(Error::NoSuchItem { .. })
    ));
}

#[tokio::test]
async fn recall_records_usage_and_honours_threshold_and_kind() {
    let fx = Fixture::new().await;
    let bank = fx.bank();
    let agent = shard("ops");
    let ok = trajectory(
        "rotate the TLS certificate of the web server",
        &[
            ("certbot renew", "Congratulations, all renewals succeeded"),
            ("systemctl reload nginx", ""),
        ],
        Some("rotated"),
        Some(Outcome::Success),
    );
    let bad = trajectory(
        "rotate the TLS certificate of the web server",
        &[(
            "systemctl restart nginx",
            "Job for nginx.service failed: error: cannot load certificate",
        )],
        None,
        Some(Outcome::Failure),
    );
    bank.learn(&agent, &ok).await.unwrap();
    bank.learn(&agent, &bad).await.unwrap();

    let mut o = RecallOptions::new(vec![agent.clone()]);
    o.k(5);
    let hits = bank
        .recall_patterns("renew the HTTPS certificate", &o)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
    for h in &hits {
        let it = bank.item(&agent, h.item.id).await.unwrap().unwrap();
        assert_eq!(it.usage_count, 1);
        assert!(it.last_used_at.is_some());
        assert!(h.score > 0.0 && h.recency > 0.99 && h.recency <= 1.0);
    }
    o.kind(ItemKind::Pitfall).record_usage(false);
    let hits = bank
        .recall_patterns("renew the HTTPS certificate", &o)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].item.kind, ItemKind::Pitfall);
    let it = bank.item(&agent, hits[0].item.id).await.unwrap().unwrap();
    assert_eq!(
        it.usage_count, 1,
        "record_usage(false) leaves the count alone"
    );

    let none = bank
        .find_similar_patterns(
            std::slice::from_ref(&agent),
            "bake a sourdough bread",
            0.6,
            5,
        )
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");

    // Reading a shard that does not exist finds nothing and does not create it.
    let ghost = shard("ghost");
    let hits = bank
        .find_similar_patterns(
            &[agent.clone(), ghost.clone()],
            "renew the certificate",
            0.0,
            5,
        )
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
    assert!(!fx.store.exists(&ghost));
}

#[tokio::test]
async fn task_query_mode_matches_past_tasks_and_returns_their_items() {
    let fx = Fixture::new().await;
    let bank = fx.bank();
    let agent = shard("assistant");
    let mut exps = Vec::new();
    for (task, action, obs) in [
        (
            "book a flight from Berlin to Paris",
            "search flights BER to CDG on 12 May",
            "14 results",
        ),
        (
            "write unit tests for the parser module",
            "cargo test -p parser",
            "test result: ok",
        ),
        (
            "resize the disk of the database VM",
            "gcloud compute disks resize db --size 200GB",
            "Resized",
        ),
    ] {
        let t = trajectory(task, &[(action, obs)], Some("done"), Some(Outcome::Success));
        let r = bank.learn(&agent, &t).await.unwrap();
        exps.push((r.experiences[0], r.items[0].id));
    }
    let mut o = RecallOptions::new(vec![agent.clone()]);
    o.mode(RecallMode::TaskQuery).k(2);
    let hits = bank
        .recall_patterns("reserve a plane ticket to Paris", &o)
        .await
        .unwrap();
    assert_eq!(hits[0].via_task, Some(exps[0].0));
    assert_eq!(hits[0].item.id, exps[0].1);
    assert_eq!(hits[0].item.source, Some(exps[0].0));
    // The item's similarity is its task's similarity to the query.
    assert!(hits[0].similarity > hits.get(1).map_or(0.0, |h| h.similarity));
}

#[tokio::test]
async fn a_shard_of_another_model_is_an_error() {
    let fx = Fixture::new().await;
    let mut opts = StoreOptions::new();
    opts.shard_options_mut()
        .dimensions(fx.embedder.dimensions())
        .model_id("some-other-model");
    let store = Arc::new(Store::open(fx.dir.path().join("other"), opts).unwrap());
    let bank = ReasoningBank::builder(store, Arc::clone(&fx.embedder))
        .build()
        .unwrap();
    let t = trajectory("x", &[("ls", "a.txt")], Some("y"), Some(Outcome::Success));
    assert!(matches!(
        bank.learn(&shard("a"), &t).await,
        Err(Error::ModelMismatch { .. })
    ));
}

#[tokio::test]
async fn builder_refuses_bad_settings() {
    let fx = Fixture::new().await;
    assert!(fx.builder().mmr_lambda(1.5).build().is_err());
    assert!(
        fx.builder()
            .weights(reasonbank_reasoning::Weights::new(0.0, 0.0, 0.0))
            .build()
            .is_err()
    );
    assert!(fx.builder().prior(0.0, 1.0).build().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_feedback_loses_no_update() {
    let fx = Fixture::new().await;
    let bank = fx.bank();
    let agent = shard("busy");
    let t = trajectory(
        "x task",
        &[("do x", "ok")],
        Some("done"),
        Some(Outcome::Success),
    );
    let id = bank.learn(&agent, &t).await.unwrap().items[0].id;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (bank, agent) = (bank.clone(), agent.clone());
        tasks.push(tokio::spawn(async move {
            let f = if i % 3 == 0 {
                Feedback::Failure
            } else {
                Feedback::Success
            };
            bank.feedback(&agent, id, f).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let item = bank.item(&agent, id).await.unwrap().unwrap();
    assert_eq!((item.successes, item.failures), (16.0, 8.0));
    assert!((item.confidence - 17.0 / 26.0).abs() < 1e-6);
}
