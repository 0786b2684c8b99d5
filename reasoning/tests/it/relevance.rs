//! Issue #14: diversity never promotes an item far less relevant than the best candidate, and
//! synthesis never spends budget on one.

use reasonbank_reasoning::{
    ConsolidateOptions, DEFAULT_RELEVANCE_FLOOR, Error, Outcome, ReasoningBank, RecallMode,
    RecallOptions,
};

use crate::common::{Fixture, shard, trajectory};

/// The new user's session of issue #14: a deployment and a parser fix learned (each with a
/// recovered failure) and a changelog written, then consolidated.
async fn deploy_and_parser(bank: &ReasoningBank) {
    let agent = shard("newcomer");
    let deploy = trajectory(
        "deploy the web app to staging",
        &[
            ("run deploy.sh", "error: missing env var DATABASE_URL"),
            (
                "export DATABASE_URL from the vault and rerun deploy.sh",
                "deployed build 42",
            ),
        ],
        Some("deployed"),
        Some(Outcome::Success),
    );
    let parser = trajectory(
        "fix the failing parser tests",
        &[
            ("cargo test parser", "error: test parser::nested failed"),
            (
                "handle nested brackets in parse_expr and rerun cargo test parser",
                "test result: ok. 12 passed",
            ),
        ],
        Some("fixed"),
        Some(Outcome::Success),
    );
    let changelog = trajectory(
        "write the changelog for the release",
        &[("git log --oneline v0.3.0..HEAD", "41 commits")],
        Some("CHANGELOG.md updated"),
        Some(Outcome::Success),
    );
    for t in [&deploy, &parser, &changelog] {
        bank.learn(&agent, t).await.unwrap();
    }
    bank.consolidate(&agent, &ConsolidateOptions::new())
        .await
        .unwrap();
}

const QUERY: &str = "ship the site to staging";

#[tokio::test]
async fn issue_14_diversity_never_promotes_an_item_off_the_task() {
    let fx = Fixture::new().await;
    let bank = fx.builder().record_usage(false).build().unwrap();
    deploy_and_parser(&bank).await;
    let agent = [shard("newcomer")];
    let recover = "Recover from a failed `run deploy.sh`";

    let hits = bank
        .find_similar_patterns(&agent, QUERY, 0.0, 3)
        .await
        .unwrap();
    for h in &hits {
        println!(
            "{:.3} similarity {:.3} {}",
            h.score, h.similarity, h.item.title
        );
    }
    let titles: Vec<&str> = hits.iter().map(|h| h.item.title.as_str()).collect();
    assert_eq!(
        titles[..2],
        ["How to: deploy the web app to staging", recover],
        "{titles:?}"
    );
    // Whatever fills the last slot is off the task and comes after every item on it.
    let floor = DEFAULT_RELEVANCE_FLOOR * hits[0].similarity;
    assert!(hits[1].similarity >= floor && hits[2].similarity < floor);

    // Without the floor, MMR promotes an item of another task over the relevant recovery:
    // the session the issue reported.
    let unfloored = fx
        .builder()
        .record_usage(false)
        .relevance_floor(0.0)
        .build()
        .unwrap();
    let hits = unfloored
        .find_similar_patterns(&agent, QUERY, 0.0, 3)
        .await
        .unwrap();
    let titles: Vec<&str> = hits.iter().map(|h| h.item.title.as_str()).collect();
    assert!(!titles.contains(&recover), "{titles:?}");
    assert!(hits.iter().any(|h| h.similarity < 0.1), "{titles:?}");

    // The task-query mode ranks under the same floor.
    let mut o = RecallOptions::new(agent.to_vec());
    o.mode(RecallMode::TaskQuery).k(3);
    let hits = bank.recall_patterns(QUERY, &o).await.unwrap();
    let floor = DEFAULT_RELEVANCE_FLOOR * hits[0].similarity;
    let first_below = hits.iter().position(|h| h.similarity < floor);
    if let Some(i) = first_below {
        assert!(hits[i..].iter().all(|h| h.similarity < floor), "{hits:?}");
    }
}

#[tokio::test]
async fn issue_14_synthesis_spends_no_budget_off_the_task_and_refuses_unknown_shards() {
    let fx = Fixture::new().await;
    let bank = fx.builder().record_usage(false).build().unwrap();
    deploy_and_parser(&bank).await;
    let agent = shard("newcomer");
    let ctx = bank
        .synthesize_context(QUERY, std::slice::from_ref(&agent), 1000)
        .await
        .unwrap();
    println!("{}\n{ctx:?}", ctx.text);
    let titles: Vec<&str> = ctx.items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "How to: deploy the web app to staging",
            "Recover from a failed `run deploy.sh`"
        ]
    );
    assert_eq!(ctx.omitted, 0);
    assert!(ctx.below_relevance_floor >= 2, "{ctx:?}");
    assert!(!ctx.text.contains("parser") && !ctx.text.contains("changelog"));

    // Another agent's shard that does not exist is an error, not an empty contribution.
    let err = bank
        .synthesize_context(QUERY, &[agent, shard("no-such-agent")], 1000)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Memory(reasonbank_memory::Error::NoSuchShard { .. })
        ),
        "{err:?}"
    );
    assert!(!fx.store.exists(&shard("no-such-agent")));
}

/// Issue #16: a configured reranker decides the order of recall's and synthesis' candidates
/// (here one that prefers the recovery lesson), the cosine keeps the scale, and a failing
/// reranker is an error, not a silent fallback to the cosine order.
#[tokio::test]
async fn a_reranker_orders_recall_and_synthesis_and_its_failure_is_an_error() {
    use reasonbank_embedders::HttpReranker;
    use reasonbank_embedders::test_server::{Reply, TestServer};
    use std::sync::Arc;

    let server = TestServer::start(|r| {
        Reply::rerank(r, |_, doc| {
            if doc.starts_with("Recover") {
                10.0
            } else if doc.contains("staging") {
                1.0
            } else {
                -5.0
            }
        })
    });
    let mut rr = HttpReranker::builder("test-reranker");
    rr.base_url(server.base_url());
    let fx = Fixture::new().await;
    let bank = fx
        .builder()
        .record_usage(false)
        .reranker(Arc::new(rr.build().unwrap()))
        .build()
        .unwrap();
    deploy_and_parser(&bank).await;
    let agent = shard("newcomer");
    let recover = "Recover from a failed `run deploy.sh`";

    let hits = bank
        .find_similar_patterns(std::slice::from_ref(&agent), QUERY, 0.0, 3)
        .await
        .unwrap();
    let titles: Vec<&str> = hits.iter().map(|h| h.item.title.as_str()).collect();
    assert_eq!(
        titles[..2],
        [recover, "How to: deploy the web app to staging"],
        "{hits:?}"
    );
    assert_eq!(hits[0].rerank, Some(10.0));
    assert_eq!(hits[1].rerank, Some(1.0));
    // The similarity reported is still the item's own cosine.
    assert!(hits[0].similarity < hits[1].similarity, "{hits:?}");
    // One call per recall, with every candidate (the shard holds fewer than 40).
    let calls = server.requests();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].json()["query"], QUERY);

    let ctx = bank
        .synthesize_context(QUERY, std::slice::from_ref(&agent), 1000)
        .await
        .unwrap();
    let titles: Vec<&str> = ctx.items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(
        titles,
        [recover, "How to: deploy the web app to staging"],
        "{ctx:?}"
    );

    let down = TestServer::always(Reply::new(500, r#"{"error":"model not loaded"}"#));
    let mut rr = HttpReranker::builder("test-reranker");
    rr.base_url(down.base_url());
    let failing = fx
        .builder()
        .record_usage(false)
        .reranker(Arc::new(rr.build().unwrap()))
        .build()
        .unwrap();
    let err = failing
        .find_similar_patterns(std::slice::from_ref(&agent), QUERY, 0.0, 3)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rerank { .. }), "{err:?}");
    assert!(
        std::error::Error::source(&err).is_some_and(|s| s.to_string().contains("model not loaded")),
        "{err:?}"
    );
}
