//! Issue #14: feedback evidence and consolidation across replicas. Two banks over two stores
//! (two replicas of one agent's shard) exchange rows through the storage half of sync
//! (`changes_since` / `apply_changes`, what `reasonbank-sync` runs over QUIC), with the real
//! model: concurrent feedback adds up, concurrent consolidations converge, old rows count.

use reasonbank_memory::{RecordUpdate, Shard};
use reasonbank_reasoning::{ConsolidateOptions, Feedback, ItemStatus, Outcome};
use serde_json::json;

use crate::common::{Fixture, shard, trajectory};

/// Pulls everything `from` has after `to`'s cursor for it, as one sync direction does.
fn pull(to: &Shard, from: &Shard) {
    let after = to.sync_cursor(from.origin()).unwrap();
    let batch = from.changes_since(after, usize::MAX).unwrap();
    let upto = batch.last().map_or(after, |c| c.seq);
    to.apply_changes(&batch, Some((from.origin(), upto)))
        .unwrap();
}

/// Both directions, `rounds` times.
fn sync(a: &Shard, b: &Shard, rounds: usize) {
    for _ in 0..rounds {
        pull(a, b);
        pull(b, a);
    }
}

fn rows(s: &Shard) -> Vec<reasonbank_memory::Change> {
    let mut all = s.changes_since(0, usize::MAX).unwrap();
    for c in &mut all {
        c.seq = 0;
    }
    all.sort_by_key(|c| c.id);
    all
}

fn deploy(outcome: Outcome, variant: &str) -> reasonbank_reasoning::Trajectory {
    trajectory(
        "deploy the web service to production",
        &[(
            "kubectl apply -f deploy.yaml",
            &format!("error: image web:latest not found in the registry{variant}"),
        )],
        None,
        Some(outcome),
    )
}

/// Hub A records three successes, peer B one failure and uses: after any number of syncs in
/// either order both hold 3 and 1 (not B's 0 and 1, as whole-row last-writer-wins did), with
/// the confidence of the merged evidence.
#[tokio::test]
async fn issue_14_concurrent_feedback_adds_up_after_sync() {
    let (fa, fb) = (Fixture::new().await, Fixture::new().await);
    let (a, b) = (fa.bank(), fb.bank());
    let agent = shard("shared");
    let item = a
        .learn(&agent, &deploy(Outcome::Failure, ""))
        .await
        .unwrap()
        .items[0]
        .clone();
    let (sa, sb) = (
        fa.store.shard(&agent).unwrap(),
        fb.store.shard(&agent).unwrap(),
    );
    sync(&sa, &sb, 1);
    for _ in 0..3 {
        a.feedback(&agent, item.id, Feedback::Success)
            .await
            .unwrap();
    }
    b.feedback(&agent, item.id, Feedback::Failure)
        .await
        .unwrap();
    b.feedback(&agent, item.id, Feedback::Reward(0.5))
        .await
        .unwrap();
    for (first, second) in [(&sa, &sb), (&sb, &sa), (&sa, &sb)] {
        pull(first, second);
        pull(second, first);
        for bank in [&a, &b] {
            let it = bank.item(&agent, item.id).await.unwrap().unwrap();
            assert_eq!((it.successes, it.failures), (3.5, 1.5));
            assert!(
                (it.confidence - 4.5 / 7.0).abs() < 1e-6,
                "{}",
                it.confidence
            );
        }
    }
    assert_eq!(rows(&sa), rows(&sb));
}

/// Both replicas consolidate the same duplicates at once, after feedback on each: they pick
/// the same survivor, converge to the same rows, and the survivor holds the evidence of
/// everything merged, each report once; feedback later given to the merged item by a
/// replica that had not seen the merge counts once too.
#[tokio::test]
async fn issue_14_concurrent_consolidation_converges_without_double_counting() {
    let (fa, fb) = (Fixture::new().await, Fixture::new().await);
    let (a, b) = (fa.bank(), fb.bank());
    let agent = shard("twice");
    let x = a
        .learn(&agent, &deploy(Outcome::Failure, ""))
        .await
        .unwrap()
        .items[0]
        .clone();
    let y = a
        .learn(&agent, &deploy(Outcome::Failure, "."))
        .await
        .unwrap()
        .items[0]
        .clone();
    let (sa, sb) = (
        fa.store.shard(&agent).unwrap(),
        fb.store.shard(&agent).unwrap(),
    );
    sync(&sa, &sb, 1);
    // Different evidence on each side: A would have picked Y by evidence, B X.
    for _ in 0..2 {
        a.feedback(&agent, y.id, Feedback::Success).await.unwrap();
    }
    b.feedback(&agent, x.id, Feedback::Failure).await.unwrap();
    let ra = a
        .consolidate(&agent, &ConsolidateOptions::new())
        .await
        .unwrap();
    let rb = b
        .consolidate(&agent, &ConsolidateOptions::new())
        .await
        .unwrap();
    assert_eq!(ra.merges.len(), 1, "{ra:?}");
    assert_eq!(
        (ra.merges[0].winner, ra.merges[0].loser),
        (rb.merges[0].winner, rb.merges[0].loser),
        "the same survivor on both replicas"
    );
    let (w, l) = (ra.merges[0].winner, ra.merges[0].loser);
    assert_eq!(w, x.id.min(y.id));
    // B gives feedback to the loser before it hears of A's merge; here B merged too, so
    // write it at the storage level the way a replica without the merge would.
    sb.modify(l, |r| -> reasonbank_memory::Result<_> {
        let mut m = r.metadata.clone();
        let mut c = reasonbank_memory::Counters::of(&m)?;
        c.add(sb.origin(), "s", 1.0);
        c.write_into(&mut m);
        let mut u = RecordUpdate::new();
        u.metadata(serde_json::Value::Object(m));
        Ok(Some(u))
    })
    .unwrap();
    sync(&sa, &sb, 2);
    assert_eq!(rows(&sa), rows(&sb));
    for bank in [&a, &b] {
        let survivor = bank.item(&agent, w).await.unwrap().unwrap();
        let loser = bank.item(&agent, l).await.unwrap().unwrap();
        assert_eq!(survivor.status, ItemStatus::Active);
        assert_eq!(
            (loser.status, loser.merged_into),
            (ItemStatus::Merged, Some(w))
        );
        assert_eq!(survivor.merged_from, vec![l]);
        assert_eq!((survivor.successes, survivor.failures), (3.0, 1.0));
        let items = bank.items(&agent).await.unwrap();
        let active: Vec<_> = items
            .iter()
            .filter(|i| i.status == ItemStatus::Active)
            .collect();
        assert_eq!(active.len(), 1);
    }
    // Consolidating again changes nothing.
    let again = a
        .consolidate(&agent, &ConsolidateOptions::new())
        .await
        .unwrap();
    assert!(again.merges.is_empty(), "{again:?}");
}

/// A shard written before replicated counters (plain `successes`, `failures`,
/// `usage_count`) reads as it was, and the first feedback moves the plain counts into the
/// group of the writer that made them, so a replica migrating the same row keeps them once.
#[tokio::test]
async fn issue_14_plain_counts_of_older_shards_still_count() {
    let (fa, fb) = (Fixture::new().await, Fixture::new().await);
    let (a, b) = (fa.bank(), fb.bank());
    let agent = shard("old");
    let item = a
        .learn(&agent, &deploy(Outcome::Success, ""))
        .await
        .unwrap()
        .items[0]
        .clone();
    let sa = fa.store.shard(&agent).unwrap();
    // Rewrite it as the previous layout stored it: plain counts, no `_counters`.
    sa.modify(item.id, |r| -> reasonbank_memory::Result<_> {
        let mut m = r.metadata.clone();
        m.remove("_counters");
        m.insert("successes".into(), json!(4.0));
        m.insert("failures".into(), json!(1.0));
        m.insert("usage_count".into(), json!(7));
        let mut u = RecordUpdate::new();
        u.metadata(serde_json::Value::Object(m));
        Ok(Some(u))
    })
    .unwrap();
    let old = a.item(&agent, item.id).await.unwrap().unwrap();
    assert_eq!(
        (old.successes, old.failures, old.usage_count),
        (4.0, 1.0, 7)
    );
    assert!((old.confidence - 5.0 / 7.0).abs() < 1e-6);

    let sb = fb.store.shard(&agent).unwrap();
    sync(&sa, &sb, 1);
    // Both replicas migrate the same old row while giving feedback.
    a.feedback(&agent, item.id, Feedback::Success)
        .await
        .unwrap();
    b.feedback(&agent, item.id, Feedback::Failure)
        .await
        .unwrap();
    sync(&sa, &sb, 2);
    for bank in [&a, &b] {
        let it = bank.item(&agent, item.id).await.unwrap().unwrap();
        assert_eq!((it.successes, it.failures, it.usage_count), (5.0, 2.0, 7));
    }
    assert_eq!(rows(&sa), rows(&sb));
}

/// Marks `loser` merged into `winner` on `s` at the storage level, as a replica of another
/// version (or a hand edit) could: the loser's link, the winner's provenance.
fn mark_merged(s: &Shard, loser: reasonbank_memory::RecordId, winner: reasonbank_memory::RecordId) {
    let edit = |id, f: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        s.modify(id, |r| -> reasonbank_memory::Result<_> {
            let mut m = r.metadata.clone();
            f(&mut m);
            let mut u = RecordUpdate::new();
            u.metadata(serde_json::Value::Object(m));
            Ok(Some(u))
        })
        .unwrap();
    };
    edit(winner, &|m| {
        let mut c = reasonbank_memory::Counters::of(m).unwrap();
        c.raise("merged_from", &loser.to_string(), 1.0);
        c.write_into(m);
        m.insert("merged_from".into(), json!([loser.to_string()]));
    });
    edit(loser, &|m| {
        m.insert("status".into(), json!("merged"));
        m.insert("merged_into".into(), json!(winner.to_string()));
    });
}

/// A merged into B on one replica while B went into A on the other: after sync the links
/// form a cycle (neither item would be recalled); the next consolidation on either side
/// makes the older item stand again with the evidence of both, and both sides converge.
#[tokio::test]
async fn issue_14_opposite_merges_on_two_replicas_are_repaired() {
    let (fa, fb) = (Fixture::new().await, Fixture::new().await);
    let (a, b) = (fa.bank(), fb.bank());
    let agent = shard("cycle");
    let x = a
        .learn(&agent, &deploy(Outcome::Failure, ""))
        .await
        .unwrap()
        .items[0]
        .clone();
    let y = a
        .learn(&agent, &deploy(Outcome::Success, " twice"))
        .await
        .unwrap()
        .items[0]
        .clone();
    let (sa, sb) = (
        fa.store.shard(&agent).unwrap(),
        fb.store.shard(&agent).unwrap(),
    );
    sync(&sa, &sb, 1);
    a.feedback(&agent, x.id, Feedback::Success).await.unwrap();
    b.feedback(&agent, y.id, Feedback::Failure).await.unwrap();
    // B merges Y into X, then A merges X into Y; last-writer-wins keeps A's X (merged into
    // Y) and, once B writes Y again, B's Y (merged into X): both links survive.
    mark_merged(&sb, y.id, x.id);
    mark_merged(&sa, x.id, y.id);
    sb.modify(y.id, |r| -> reasonbank_memory::Result<_> {
        let mut u = RecordUpdate::new();
        u.metadata(serde_json::Value::Object(r.metadata.clone()));
        Ok(Some(u))
    })
    .unwrap();
    sync(&sa, &sb, 2);
    let status = |it: &reasonbank_reasoning::MemoryItem| (it.status, it.merged_into);
    let (ix, iy) = (
        a.item(&agent, x.id).await.unwrap().unwrap(),
        a.item(&agent, y.id).await.unwrap().unwrap(),
    );
    assert_eq!(status(&ix), (ItemStatus::Merged, Some(y.id)), "a cycle");
    assert_eq!(status(&iy), (ItemStatus::Merged, Some(x.id)), "a cycle");

    let report = b
        .consolidate(&agent, &ConsolidateOptions::new())
        .await
        .unwrap();
    assert_eq!(report.revived, vec![x.id.min(y.id)], "{report:?}");
    sync(&sa, &sb, 2);
    assert_eq!(rows(&sa), rows(&sb));
    let (w, l) = (x.id.min(y.id), x.id.max(y.id));
    for bank in [&a, &b] {
        let survivor = bank.item(&agent, w).await.unwrap().unwrap();
        let loser = bank.item(&agent, l).await.unwrap().unwrap();
        assert_eq!(status(&survivor), (ItemStatus::Active, None));
        assert_eq!(status(&loser), (ItemStatus::Merged, Some(w)));
        assert_eq!((survivor.successes, survivor.failures), (1.0, 1.0));
    }
}
