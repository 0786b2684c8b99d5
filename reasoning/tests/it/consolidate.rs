//! Consolidation: merges with provenance, contradictions, dry runs, decay and pruning.

use std::time::Duration;

use reasonbank_reasoning::{
    ConsolidateOptions, Feedback, ItemKind, ItemStatus, Outcome, RecallMode, RecallOptions,
};

use crate::common::{Fixture, dot, shard, trajectory};

fn failed_deploy() -> reasonbank_reasoning::Trajectory {
    trajectory(
        "deploy the web service to production",
        &[(
            "kubectl apply -f deploy.yaml",
            "error: image web:latest not found in the registry",
        )],
        None,
        Some(Outcome::Failure),
    )
}

fn good_deploy() -> reasonbank_reasoning::Trajectory {
    trajectory(
        "deploy the web service to production",
        &[
            (
                "docker build -t web:1.4 . && docker push web:1.4",
                "pushed web:1.4",
            ),
            (
                "kubectl apply -f deploy.yaml",
                "deployment.apps/web configured",
            ),
        ],
        Some("deployed web 1.4"),
        Some(Outcome::Success),
    )
}

#[tokio::test]
async fn consolidate_merges_duplicates_with_provenance_and_flags_a_contradiction() {
    let fx = Fixture::new().await;
    let bank = fx.bank();
    let agent = shard("deployer");
    let f1 = bank.learn(&agent, &failed_deploy()).await.unwrap().items[0].clone();
    let f2 = bank.learn(&agent, &failed_deploy()).await.unwrap().items[0].clone();
    let s = bank.learn(&agent, &good_deploy()).await.unwrap().items[0].clone();
    let unrelated = trajectory(
        "summarize the quarterly sales report",
        &[("open sales_q3.xlsx", "loaded 4 sheets")],
        Some("sales grew 4%"),
        Some(Outcome::Success),
    );
    let u = bank.learn(&agent, &unrelated).await.unwrap().items[0].clone();
    bank.feedback(&agent, f2.id, Feedback::Success)
        .await
        .unwrap();

    let sh = fx.store.shard(&agent).unwrap();
    let vec_of = |id| sh.get(id).unwrap().unwrap().embedding.unwrap().into_vec();
    let (vf, vs, vu) = (vec_of(f1.id), vec_of(s.id), vec_of(u.id));
    println!(
        "pitfall/strategy {:.3}, pitfall/unrelated {:.3}",
        dot(&vf, &vs),
        dot(&vf, &vu)
    );
    let versions = |ids: &[reasonbank_memory::RecordId]| -> Vec<u64> {
        ids.iter()
            .map(|id| sh.get(*id).unwrap().unwrap().version)
            .collect()
    };
    let ids = [f1.id, f2.id, s.id, u.id];
    let before = versions(&ids);

    // Dry run: the full report, no writes.
    let mut o = ConsolidateOptions::new();
    o.dry_run(true);
    let dry = bank.consolidate(&agent, &o).await.unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.examined, 4);
    assert_eq!(dry.merges.len(), 1, "{dry:?}");
    // The older item survives (the same choice on every replica, issue #14); the evidence of
    // the one it absorbs counts as its own.
    assert_eq!((dry.merges[0].winner, dry.merges[0].loser), (f1.id, f2.id));
    assert_eq!(dry.contradictions.len(), 1, "{dry:?}");
    assert_eq!(dry.written, 0);
    assert_eq!(versions(&ids), before, "a dry run writes nothing");
    assert!(bank.contradictions(&agent).await.unwrap().is_empty());

    // For real.
    let report = bank
        .consolidate(&agent, &ConsolidateOptions::new())
        .await
        .unwrap();
    assert_eq!(report.merges, dry.merges);
    assert_eq!(report.contradictions, dry.contradictions);
    assert_eq!(report.written, 3);
    let loser = bank.item(&agent, f2.id).await.unwrap().unwrap();
    assert_eq!(loser.status, ItemStatus::Merged);
    assert_eq!(loser.merged_into, Some(f1.id));
    assert_eq!(loser.content, f2.content, "a merged item keeps its content");
    let winner = bank.item(&agent, f1.id).await.unwrap().unwrap();
    assert_eq!(winner.merged_from, vec![f2.id]);
    assert_eq!(winner.successes, 1.0);

    let found = bank.contradictions(&agent).await.unwrap();
    assert_eq!(found.len(), 1);
    let kinds = [found[0].a.kind, found[0].b.kind];
    assert!(kinds.contains(&ItemKind::Strategy) && kinds.contains(&ItemKind::Pitfall));
    assert!(found[0].similarity >= 0.65);
    let unrelated_item = bank.item(&agent, u.id).await.unwrap().unwrap();
    assert!(unrelated_item.contradicts.is_empty());

    // Recall no longer returns the merged item; feedback on it reaches the survivor.
    let mut ro = RecallOptions::new(vec![agent.clone()]);
    ro.k(10).record_usage(false);
    let hits = bank
        .recall_patterns("deploy the service", &ro)
        .await
        .unwrap();
    assert!(hits.iter().all(|h| h.item.id != f2.id));
    let updated = bank
        .feedback(&agent, f2.id, Feedback::Success)
        .await
        .unwrap();
    assert_eq!((updated.id, updated.successes), (f1.id, 2.0));

    // Idempotent.
    let again = bank
        .consolidate(&agent, &ConsolidateOptions::new())
        .await
        .unwrap();
    assert!(
        again.merges.is_empty() && again.contradictions.is_empty(),
        "{again:?}"
    );
    assert_eq!(again.examined, 3);
}

#[tokio::test]
async fn prune_archives_unreliable_items_and_decay_forgets_old_evidence() {
    let fx = Fixture::new().await;
    let bank = fx.bank();
    let agent = shard("p");
    let bad = bank.learn(&agent, &failed_deploy()).await.unwrap().items[0].clone();
    let good = bank.learn(&agent, &good_deploy()).await.unwrap().items[0].clone();
    for _ in 0..5 {
        bank.feedback(&agent, bad.id, Feedback::Failure)
            .await
            .unwrap();
        bank.feedback(&agent, good.id, Feedback::Success)
            .await
            .unwrap();
    }
    let mut o = ConsolidateOptions::new();
    o.contradiction_threshold(1.0)
        .prune_below_confidence(0.3)
        .dry_run(true);
    let dry = bank.consolidate(&agent, &o).await.unwrap();
    assert_eq!(dry.pruned.len(), 1);
    assert_eq!(dry.pruned[0].id, bad.id);
    assert_eq!(
        bank.item(&agent, bad.id).await.unwrap().unwrap().status,
        ItemStatus::Active
    );
    o.dry_run(false);
    bank.consolidate(&agent, &o).await.unwrap();
    assert_eq!(
        bank.item(&agent, bad.id).await.unwrap().unwrap().status,
        ItemStatus::Archived
    );
    let hits = bank
        .find_similar_patterns(
            std::slice::from_ref(&agent),
            "deploy the web service",
            0.0,
            5,
        )
        .await
        .unwrap();
    assert!(hits.iter().all(|h| h.item.id != bad.id));

    // Evidence halves every 50 ms: after ~200 ms the good item's 5 successes are worth < 1.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut o = ConsolidateOptions::new();
    o.contradiction_threshold(1.0)
        .evidence_half_life(Duration::from_millis(50));
    let r = bank.consolidate(&agent, &o).await.unwrap();
    assert_eq!(r.decayed, 1);
    let g = bank.item(&agent, good.id).await.unwrap().unwrap();
    assert!(g.successes < 1.0, "{}", g.successes);
    assert!(
        g.confidence < 0.67 && g.confidence > 0.5,
        "{}",
        g.confidence
    );
}

#[tokio::test]
async fn a_survivor_inherits_the_contradictions_of_the_item_it_absorbs() {
    let fx = Fixture::new().await;
    let bank = fx.bank();
    let agent = shard("inherit");
    let f1 = bank.learn(&agent, &failed_deploy()).await.unwrap().items[0].clone();
    let s = bank.learn(&agent, &good_deploy()).await.unwrap().items[0].clone();
    let first = bank
        .consolidate(&agent, &ConsolidateOptions::new())
        .await
        .unwrap();
    assert_eq!(first.contradictions.len(), 1);

    // A duplicate with more evidence arrives; the older, flagged item absorbs it (the
    // survivor is the older item on every replica, issue #14) and keeps its flag.
    let f2 = bank.learn(&agent, &failed_deploy()).await.unwrap().items[0].clone();
    bank.feedback(&agent, f2.id, Feedback::Failure)
        .await
        .unwrap();
    let second = bank
        .consolidate(&agent, &ConsolidateOptions::new())
        .await
        .unwrap();
    assert_eq!(second.merges.len(), 1);
    assert_eq!(
        (second.merges[0].winner, second.merges[0].loser),
        (f1.id, f2.id)
    );
    assert!(second.contradictions.is_empty(), "{second:?}");
    let found = bank.contradictions(&agent).await.unwrap();
    assert_eq!(found.len(), 1);
    let ids = [found[0].a.id, found[0].b.id];
    assert!(ids.contains(&f1.id) && ids.contains(&s.id), "{ids:?}");
    let survivor = if found[0].a.id == f1.id {
        &found[0].a
    } else {
        &found[0].b
    };
    assert_eq!(survivor.failures, 1.0, "the absorbed item's evidence");
}

/// The measurement behind the default duplicate threshold (0.90): rephrasings of one lesson
/// against different lessons on the same topic, with the real model. `--nocapture` prints it.
#[tokio::test]
async fn duplicate_threshold_separates_rephrasings_from_different_lessons() {
    use reasonbank_embedders::EmbedKind;
    let e = crate::common::embedder().await;
    let pairs: [(&str, &str, bool); 6] = [
        (
            "Pitfall: cargo publish\nThis failed while attempting: publish the crate to the registry\nAction `cargo publish` produced: error: 1 files in the working directory contain changes that were not yet committed",
            "Pitfall: cargo publish\nThis failed while attempting: publish the crate to crates.io\nAction `cargo publish` produced: error: 2 files in the working directory contain changes that were not yet committed",
            true,
        ),
        (
            "Commit before publishing\nUncommitted changes make cargo publish fail.\nAlways commit or stash your changes before running cargo publish.",
            "Commit changes before you publish\ncargo publish fails when there are uncommitted changes.\nCommit or stash all changes before running cargo publish.",
            true,
        ),
        (
            "Check disk space first\nWrites fail when the disk is full.\nBefore large writes, check free space with df -h.",
            "Verify free disk space first\nLarge writes fail on a full disk.\nCheck the free space with df -h before writing big files.",
            true,
        ),
        (
            "Commit before publishing\nUncommitted changes make cargo publish fail.\nAlways commit or stash your changes before running cargo publish.",
            "Bump the version before publishing\ncrates.io rejects a version that already exists.\nIncrease the version in Cargo.toml before running cargo publish.",
            false,
        ),
        (
            "Mock the server in network tests\nReal servers make tests flaky.\nReplace the remote server with a local mock in integration tests.",
            "Retry network calls in tests\nTransient errors make tests flaky.\nWrap requests in tests with retries and exponential backoff.",
            false,
        ),
        (
            "How to: deploy the web service to production\n2 step(s) that achieved: deploy the web service to production\n1. docker build -t web:1.4 .\n2. kubectl apply -f deploy.yaml",
            "How to: deploy the worker service to staging\n2 step(s) that achieved: deploy the worker service to staging\n1. docker build -t worker:2.0 .\n2. helm upgrade worker ./chart",
            false,
        ),
    ];
    for (a, b, duplicate) in pairs {
        let v = e
            .embed(&[a.to_owned(), b.to_owned()], EmbedKind::Document)
            .await
            .unwrap();
        let sim = dot(&v[0], &v[1]);
        println!(
            "{sim:.3} duplicate={duplicate}: {:?}",
            a.lines().next().unwrap()
        );
        if duplicate {
            assert!(sim >= 0.90, "{sim}");
        } else {
            assert!(sim < 0.90, "{sim}");
        }
    }
}

#[tokio::test]
async fn consolidate_on_learn_merges_as_items_arrive() {
    let fx = Fixture::new().await;
    let bank = fx.builder().consolidate_on_learn(true).build().unwrap();
    let agent = shard("auto");
    let first = bank.learn(&agent, &failed_deploy()).await.unwrap();
    assert!(first.consolidation.as_ref().unwrap().merges.is_empty());
    let second = bank.learn(&agent, &failed_deploy()).await.unwrap();
    let report = second.consolidation.unwrap();
    assert_eq!(report.merges.len(), 1);
    assert_eq!(report.merges[0].winner, first.items[0].id);
    let active: Vec<_> = bank
        .items(&agent)
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.status == ItemStatus::Active)
        .collect();
    assert_eq!(active.len(), 1);
}

/// Feedback from two banks over two handles of the same shard (as two processes would have)
/// while consolidation merges the items they rate: every piece of feedback is counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_feedback_and_consolidation_lose_nothing() {
    let fx = Fixture::new().await;
    let a = fx.bank();
    let mut opts = reasonbank_memory::StoreOptions::new();
    opts.shard_options_mut()
        .dimensions(fx.embedder.dimensions())
        .model_id(fx.embedder.model_id());
    let other_store =
        std::sync::Arc::new(reasonbank_memory::Store::open(fx.dir.path(), opts).unwrap());
    let b = reasonbank_reasoning::ReasoningBank::builder(other_store, fx.embedder.clone())
        .build()
        .unwrap();
    let agent = shard("deployer");
    let f1 = a.learn(&agent, &failed_deploy()).await.unwrap().items[0].clone();
    let f2 = a.learn(&agent, &failed_deploy()).await.unwrap().items[0].clone();
    const N: usize = 20;
    let rate = |bank: reasonbank_reasoning::ReasoningBank, id, fb| {
        let agent = agent.clone();
        tokio::spawn(async move {
            for _ in 0..N {
                bank.feedback(&agent, id, fb).await.unwrap();
            }
        })
    };
    let ta = rate(a.clone(), f1.id, Feedback::Success);
    let tb = rate(b.clone(), f2.id, Feedback::Failure);
    let consolidator = {
        let (a, agent) = (a.clone(), agent.clone());
        tokio::spawn(async move {
            let mut merges = 0;
            for _ in 0..5 {
                merges += a
                    .consolidate(&agent, &ConsolidateOptions::new())
                    .await
                    .unwrap()
                    .merges
                    .len();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            merges
        })
    };
    ta.await.unwrap();
    tb.await.unwrap();
    assert_eq!(consolidator.await.unwrap(), 1, "the duplicates merge once");
    let i1 = a.item(&agent, f1.id).await.unwrap().unwrap();
    let i2 = a.item(&agent, f2.id).await.unwrap().unwrap();
    let survivor = if i1.status == ItemStatus::Merged {
        &i2
    } else {
        &i1
    };
    assert_eq!(survivor.status, ItemStatus::Active);
    assert_eq!(survivor.successes, N as f64, "{i1:?} {i2:?}");
    assert_eq!(survivor.failures, N as f64, "{i1:?} {i2:?}");
}

#[tokio::test]
async fn recall_in_either_mode_and_synthesis_leave_out_merged_and_archived_items() {
    let fx = Fixture::new().await;
    let bank = fx.builder().record_usage(false).build().unwrap();
    let agent = shard("keeper");
    let f1 = bank.learn(&agent, &failed_deploy()).await.unwrap().items[0].clone();
    let f2 = bank.learn(&agent, &failed_deploy()).await.unwrap().items[0].clone();
    let good = bank.learn(&agent, &good_deploy()).await.unwrap().items[0].clone();
    bank.feedback(&agent, f2.id, Feedback::Success)
        .await
        .unwrap();
    for _ in 0..5 {
        bank.feedback(&agent, good.id, Feedback::Failure)
            .await
            .unwrap();
    }
    let mut o = ConsolidateOptions::new();
    o.contradiction_threshold(1.0).prune_below_confidence(0.3);
    let report = bank.consolidate(&agent, &o).await.unwrap();
    assert_eq!(
        (report.merges[0].winner, report.merges[0].loser),
        (f1.id, f2.id)
    );
    assert_eq!(report.pruned[0].id, good.id);

    let task = "deploy the web service to production";
    let (merged, archived) = (f2.id, good.id);
    for mode in [RecallMode::Items, RecallMode::TaskQuery] {
        let mut ro = RecallOptions::new(vec![agent.clone()]);
        ro.k(10).mode(mode);
        let hits = bank.recall_patterns(task, &ro).await.unwrap();
        let ids: Vec<_> = hits.iter().map(|h| h.item.id).collect();
        assert_eq!(ids, [f1.id], "{mode:?}: {hits:?}");
        assert!(hits.iter().all(|h| h.item.status == ItemStatus::Active));
        assert_eq!(hits[0].item.successes, 1.0, "the merged item's evidence");
    }
    let ctx = bank
        .synthesize_context(task, std::slice::from_ref(&agent), 1000)
        .await
        .unwrap();
    let ids: Vec<_> = ctx.items.iter().map(|i| i.id).collect();
    assert_eq!(ids, [f1.id]);
    assert!(!ids.contains(&merged) && !ids.contains(&archived));
}

#[tokio::test]
async fn consolidate_refuses_out_of_range_options_naming_them_and_writes_nothing() {
    let fx = Fixture::new().await;
    let bank = fx.bank();
    let agent = shard("deployer");
    bank.learn(&agent, &failed_deploy()).await.unwrap();
    let before = fx.store.shard(&agent).unwrap().stats().unwrap();
    type Set = fn(&mut ConsolidateOptions);
    let cases: [(&str, Set); 5] = [
        ("duplicate_threshold", |o| {
            o.duplicate_threshold(1.5);
        }),
        ("contradiction_threshold", |o| {
            o.contradiction_threshold(f32::NAN);
        }),
        ("prune_below_confidence", |o| {
            o.prune_below_confidence(3.0);
        }),
        ("prune_min_evidence", |o| {
            o.prune_min_evidence(-1.0);
        }),
        ("evidence_half_life", |o| {
            o.evidence_half_life(Duration::ZERO);
        }),
    ];
    for (name, set) in cases {
        let mut o = ConsolidateOptions::new();
        set(&mut o);
        let e = bank.consolidate(&agent, &o).await.unwrap_err();
        assert!(
            matches!(e, reasonbank_reasoning::Error::InvalidInput { .. }),
            "{name}: {e:?}"
        );
        assert!(e.to_string().contains(name), "{name}: {e}");
    }
    let after = fx.store.shard(&agent).unwrap().stats().unwrap();
    assert_eq!(before, after);
}
