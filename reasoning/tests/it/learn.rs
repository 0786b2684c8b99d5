//! learn: judge → distill → store, with the offline defaults.

use reasonbank_embedders::EmbedKind;
use reasonbank_memory::{Embedding, Filter, NewRecord};
use reasonbank_reasoning::{ConsolidateOptions, Error, ItemKind, ItemStatus, Outcome, Trajectory};

use crate::common::{Fixture, shard, trajectory};

#[tokio::test]
async fn learn_from_a_success_and_a_failure_yields_a_strategy_and_a_pitfall() {
    let fx = Fixture::new().await;
    let bank = fx.bank();
    let agent = shard("coder");

    let failed = trajectory(
        "publish the crate to the registry",
        &[
            ("cargo test", "test result: ok. 12 passed"),
            (
                "cargo publish",
                "error: 1 files in the working directory contain changes that were not yet committed",
            ),
        ],
        None,
        Some(Outcome::Failure),
    );
    let worked = trajectory(
        "publish the crate to the registry",
        &[
            ("git commit -am 'release 0.2'", "1 file changed"),
            ("cargo publish", "Uploading reasonbank v0.2.0"),
        ],
        Some("published v0.2.0"),
        Some(Outcome::Success),
    );
    let f = bank.learn(&agent, &failed).await.unwrap();
    let s = bank.learn(&agent, &worked).await.unwrap();

    assert_eq!(f.verdicts[0].outcome, Outcome::Failure);
    assert_eq!(f.verdicts[0].judge, "explicit");
    assert_eq!(f.items.len(), 1);
    let pitfall = &f.items[0];
    assert_eq!(pitfall.kind, ItemKind::Pitfall);
    assert_eq!(pitfall.outcome, Outcome::Failure);
    // The failing step is the one with the error marker, not the first step.
    assert_eq!(pitfall.title, "Pitfall: cargo publish");
    assert!(
        pitfall.content.contains("not yet committed"),
        "{}",
        pitfall.content
    );
    assert_eq!(pitfall.source, Some(f.experiences[0]));
    assert_eq!(pitfall.confidence, 0.5);
    assert_eq!(pitfall.status, ItemStatus::Active);
    assert_eq!(pitfall.distiller, "extractive");

    let strategy = &s.items[0];
    assert_eq!(strategy.kind, ItemKind::Strategy);
    assert!(
        strategy.content.contains("git commit"),
        "{}",
        strategy.content
    );
    assert!(strategy.content.contains("published v0.2.0"));

    // Stored as records of the documented kinds; experiences embed the task query.
    let sh = fx.store.shard(&agent).unwrap();
    assert_eq!(
        sh.count(Some(&Filter::Kind("experience".into()))).unwrap(),
        2
    );
    assert_eq!(sh.count(Some(&Filter::Kind("pattern".into()))).unwrap(), 2);
    let exp = sh.get(f.experiences[0]).unwrap().unwrap();
    assert_eq!(exp.text, "publish the crate to the registry");
    assert_eq!(exp.metadata["outcome"], "failure");
    assert_eq!(exp.metadata["steps"][1]["action"], "cargo publish");
    assert_eq!(exp.metadata["items"][0], pitfall.id.to_string());
    let rec = sh.get(pitfall.id).unwrap().unwrap();
    assert_eq!(rec.text, pitfall.embedded_text());
    assert_eq!(rec.metadata["item_kind"], "pitfall");

    let all = bank.items(&agent).await.unwrap();
    assert_eq!(all.len(), 2);

    // A `pattern` record another layer wrote without this crate's layout is not an item.
    let text = "a plain note that happens to use the kind pattern";
    let v = fx
        .embedder
        .embed_one(text, EmbedKind::Document)
        .await
        .unwrap();
    let mut rec = NewRecord::new(text, Embedding::new(v).unwrap());
    rec.kind("pattern");
    sh.insert(&rec).unwrap();
    assert_eq!(bank.items(&agent).await.unwrap().len(), 2);
    let report = bank
        .consolidate(&agent, &ConsolidateOptions::new())
        .await
        .unwrap();
    assert_eq!(report.examined, 2);
    let hits = bank
        .find_similar_patterns(std::slice::from_ref(&agent), text, 0.0, 5)
        .await
        .unwrap();
    assert!(hits.len() <= 2 && hits.iter().all(|h| h.item.title != text));
}

#[tokio::test]
async fn without_an_outcome_the_default_judge_applies_rules_and_says_so() {
    let fx = Fixture::new().await;
    let bank = fx.bank();
    let t = trajectory(
        "read the config file",
        &[(
            "cat config.toml",
            "cat: config.toml: No such file or directory",
        )],
        Some("could not read it"),
        None,
    );
    let r = bank.learn(&shard("a"), &t).await.unwrap();
    assert_eq!(r.verdicts[0].outcome, Outcome::Failure);
    assert_eq!(r.verdicts[0].judge, "rule");
    assert!(
        r.verdicts[0].reasons.contains("no such file"),
        "{}",
        r.verdicts[0].reasons
    );
    assert_eq!(r.items[0].kind, ItemKind::Pitfall);
}

#[tokio::test]
async fn bad_trajectories_are_refused_before_anything_is_stored() {
    let fx = Fixture::new().await;
    let bank = fx.bank();
    let agent = shard("a");
    assert!(matches!(
        bank.learn(&agent, &Trajectory::new("  ")).await,
        Err(Error::InvalidInput { .. })
    ));
    let mut t = Trajectory::new("x");
    t.step("ls", "a.txt").reward(1.5);
    assert!(matches!(
        bank.learn(&agent, &t).await,
        Err(Error::InvalidInput { .. })
    ));
    // Every refusal names the field, and contrastive learning which attempt.
    let reason = |r: Result<_, Error>| match r {
        Err(Error::InvalidInput { reason, .. }) => reason,
        other => panic!("{other:?}"),
    };
    assert!(reason(bank.learn(&agent, &Trajectory::new("x")).await).contains("`steps` is empty"));
    let mut no_action = Trajectory::new("x");
    no_action.step("ls", "a.txt").step(" ", "");
    assert!(reason(bank.learn(&agent, &no_action).await).contains("`steps[1].action` is empty"));
    let mut silent = Trajectory::new("x");
    silent.step("touch a.txt", "").outcome(Outcome::Success);
    let mut other_task = Trajectory::new("y");
    other_task.step("ls", "a.txt");
    let r = reason(
        bank.learn_contrastive(&agent, "x", &[silent.clone(), Trajectory::new("x")])
            .await,
    );
    assert!(r.starts_with("attempt 2: `steps` is empty"), "{r}");
    let r = reason(
        bank.learn_contrastive(&agent, "x", &[silent, other_task])
            .await,
    );
    assert!(r.starts_with("attempt 2: `task` is \"y\""), "{r}");
    // An explicit judge without a fallback does not guess.
    let bank = fx
        .builder()
        .judge(std::sync::Arc::new(
            reasonbank_reasoning::ExplicitJudge::new(),
        ))
        .build()
        .unwrap();
    let mut undecided = Trajectory::new("x");
    undecided.step("ls", "a.txt");
    assert!(matches!(
        bank.learn(&agent, &undecided).await,
        Err(Error::NoOutcome { .. })
    ));
    assert!(bank.items(&agent).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_success_with_a_failed_step_also_teaches_the_recovery() {
    let fx = Fixture::new().await;
    let bank = fx.bank();
    let t = trajectory(
        "install the python dependencies",
        &[
            (
                "pip install -r requirements.txt",
                "error: externally-managed-environment",
            ),
            (
                "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt",
                "Successfully installed 12 packages",
            ),
        ],
        Some("installed in .venv"),
        Some(Outcome::Success),
    );
    let r = bank.learn(&shard("py"), &t).await.unwrap();
    assert_eq!(r.items.len(), 2);
    assert!(r.items.iter().all(|i| i.kind == ItemKind::Strategy));
    let recovery = &r.items[1];
    assert_eq!(
        recovery.title,
        "Recover from a failed `pip install -r requirements.txt`"
    );
    assert!(recovery.content.contains("externally-managed-environment"));
    assert!(
        recovery
            .content
            .contains("What worked next: `python3 -m venv")
    );
}
