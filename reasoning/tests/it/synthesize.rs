//! Context synthesis across shards within a token budget.

use std::sync::Arc;

use reasonbank_reasoning::{Outcome, ReasoningBank, estimate_tokens};

use crate::common::{Fixture, NoTokenizer, shard, trajectory};

async fn two_agents(bank: &ReasoningBank) {
    let cache = trajectory(
        "make the CI build faster",
        &[
            (
                "add actions/cache for ~/.cargo and target/",
                "cache saved, 1.2 GB",
            ),
            ("rerun the workflow", "build took 3m instead of 11m"),
        ],
        Some("CI build is 3 minutes"),
        Some(Outcome::Success),
    );
    let lto = trajectory(
        "make the CI build faster",
        &[(
            "enable lto = \"fat\" in the release profile",
            "error: linking took 14 minutes and the job timed out",
        )],
        None,
        Some(Outcome::Failure),
    );
    let docker = trajectory(
        "speed up the docker image build in CI",
        &[
            (
                "reorder the Dockerfile so dependencies are copied before sources",
                "ok",
            ),
            (
                "docker build with --cache-from the last image",
                "build took 40s",
            ),
        ],
        Some("image builds in 40 seconds"),
        Some(Outcome::Success),
    );
    let a = shard("agent-a");
    let b = shard("agent-b");
    bank.learn(&a, &cache).await.unwrap();
    bank.learn(&a, &lto).await.unwrap();
    // The same lesson learned by the second agent: deduplicated in the context.
    bank.learn(&b, &cache).await.unwrap();
    bank.learn(&b, &docker).await.unwrap();
}

#[tokio::test]
async fn synthesize_stays_within_budget_across_two_shards_with_attribution() {
    let fx = Fixture::new().await;
    let bank = fx.bank();
    two_agents(&bank).await;
    let shards = [shard("agent-a"), shard("agent-b")];

    let ctx = bank
        .synthesize_context("speed up our slow CI pipeline", &shards, 1000)
        .await
        .unwrap();
    println!("{}\n{ctx:?}", ctx.text);
    assert!(ctx.tokens_exact);
    assert_eq!(ctx.duplicates_removed, 1);
    assert_eq!(ctx.items.len(), 3);
    assert_eq!(ctx.omitted, 0);
    assert!(ctx.tokens_used <= 1000);
    assert_eq!(fx.embedder.count_tokens(&ctx.text), Some(ctx.tokens_used));
    assert!(ctx.text.contains("from agent `agent-a`"));
    assert!(ctx.text.contains("from agent `agent-b`"));
    let from: Vec<&str> = ctx.items.iter().map(|i| i.shard.as_str()).collect();
    assert!(from.contains(&"agent-a") && from.contains(&"agent-b"));

    for budget in [0, 20, 60, 100, 150, 200] {
        let ctx = bank
            .synthesize_context("speed up our slow CI pipeline", &shards, budget)
            .await
            .unwrap();
        let real = fx.embedder.count_tokens(&ctx.text).unwrap();
        assert!(real <= budget, "budget {budget}: {real} tokens");
        assert_eq!(real, ctx.tokens_used);
        assert_eq!(
            ctx.items.len() + ctx.omitted + ctx.duplicates_removed + ctx.below_relevance_floor,
            4
        );
        if ctx.items.is_empty() {
            assert!(ctx.text.is_empty());
        }
    }
}

#[tokio::test]
async fn without_a_tokenizer_the_estimate_is_used_and_reported() {
    let real = crate::common::embedder().await;
    let fx = Fixture::with_embedder(Arc::new(NoTokenizer(Arc::clone(&real)))).await;
    let bank = fx.bank();
    two_agents(&bank).await;
    let ctx = bank
        .synthesize_context(
            "speed up our slow CI pipeline",
            &[shard("agent-a"), shard("agent-b")],
            150,
        )
        .await
        .unwrap();
    assert!(!ctx.tokens_exact);
    assert!(!ctx.items.is_empty());
    assert_eq!(estimate_tokens(&ctx.text), ctx.tokens_used);
    assert!(ctx.tokens_used <= 150);
    // Conservative: the real tokenizer counts fewer tokens than the estimate on this text.
    assert!(real.count_tokens(&ctx.text).unwrap() <= ctx.tokens_used);
}
