//! MaTTS: learning from several attempts at one task by contrast.

use reasonbank_memory::Filter;
use reasonbank_reasoning::{Error, ItemKind, Outcome, RecallMode, RecallOptions};

use crate::common::{Fixture, shard, trajectory};

#[tokio::test]
async fn contrastive_learning_names_what_separated_success_from_failure() {
    let fx = Fixture::new().await;
    let bank = fx.bank();
    let agent = shard("matts");
    let task = "migrate the users table to add an email column";
    let runs = vec![
        trajectory(
            task,
            &[
                ("pg_dump users > backup.sql", "dump written"),
                ("ALTER TABLE users ADD COLUMN email text", "ALTER TABLE"),
                ("run the migration tests", "12 passed"),
            ],
            Some("column added"),
            Some(Outcome::Success),
        ),
        trajectory(
            task,
            &[
                ("pg_dump users > backup.sql", "dump written"),
                ("ALTER TABLE users ADD COLUMN email text", "ALTER TABLE"),
            ],
            Some("column added"),
            Some(Outcome::Success),
        ),
        trajectory(
            task,
            &[(
                "ALTER TABLE users ADD COLUMN email text NOT NULL",
                "ERROR: column \"email\" contains null values",
            )],
            None,
            None,
        ),
    ];
    let r = bank.learn_contrastive(&agent, task, &runs).await.unwrap();
    assert_eq!(r.experiences.len(), 3);
    let outcomes: Vec<Outcome> = r.verdicts.iter().map(|v| v.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Success, Outcome::Success, Outcome::Failure]
    );
    assert_eq!(r.verdicts[2].judge, "rule");
    assert_eq!(r.items.len(), 2);
    let strategy = &r.items[0];
    assert_eq!(strategy.kind, ItemKind::Strategy);
    assert_eq!(strategy.outcome, Outcome::Success);
    assert!(
        strategy
            .description
            .contains("2 successful attempts out of 3"),
        "{}",
        strategy.description
    );
    // The shortest success is the plan; the decisive shared steps are named.
    assert!(
        strategy.content.contains(
            "no failed one: pg_dump users > backup.sql; ALTER TABLE users ADD COLUMN email text"
        ),
        "{}",
        strategy.content
    );
    assert!(!strategy.content.contains("migration tests"));
    let pitfall = &r.items[1];
    assert_eq!(pitfall.kind, ItemKind::Pitfall);
    assert_eq!(pitfall.outcome, Outcome::Failure);
    assert!(pitfall.content.contains("NOT NULL") && pitfall.content.contains("null values"));

    // Every attempt is an experience linking to the items: the paper's task-query recall
    // finds them from any of them.
    let sh = fx.store.shard(&agent).unwrap();
    assert_eq!(
        sh.count(Some(&Filter::Kind("experience".into()))).unwrap(),
        3
    );
    let mut o = RecallOptions::new(vec![agent.clone()]);
    o.mode(RecallMode::TaskQuery).k(5);
    let hits = bank
        .recall_patterns("add an email column to the users table", &o)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);

    assert!(matches!(
        bank.learn_contrastive(&agent, task, &[]).await,
        Err(Error::InvalidInput { .. })
    ));
}
