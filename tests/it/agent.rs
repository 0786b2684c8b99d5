//! `AgentMemory` end to end with the real model: remember, recall among 1,000 memories,
//! modes, filters, other agents' shards, update, forget, and errors.

use reasonbank::memory::{Filter, SearchMode, ShardId};
use reasonbank::{AgentMemory, Error, Memory, RecallMode, RecallOptions};
use serde_json::json;

async fn memory(root: &std::path::Path, agent: &str) -> AgentMemory {
    AgentMemory::builder(root)
        .agent(agent)
        .build()
        .await
        .expect("open agent memory")
}

const TOPICS: [&str; 10] = [
    "database",
    "network",
    "compiler",
    "frontend",
    "deployment",
    "testing",
    "security",
    "logging",
    "caching",
    "scheduling",
];
const ACTIONS: [&str; 10] = [
    "check the",
    "profile the",
    "restart the",
    "document the",
    "refactor the",
    "monitor the",
    "benchmark the",
    "review the",
    "upgrade the",
    "simplify the",
];

#[tokio::test(flavor = "multi_thread")]
async fn recall_finds_the_right_memory_among_a_thousand() {
    let dir = tempfile::tempdir().unwrap();
    let mem = memory(dir.path(), "coder").await;
    let mut batch = Vec::new();
    for i in 0..999 {
        let t = TOPICS[i % 10];
        let a = ACTIONS[(i / 10) % 10];
        batch.push(
            Memory::new(format!(
                "Routine {i}: {a} {t} module before the weekly sync."
            ))
            .metadata(json!({"topic": t, "n": i})),
        );
    }
    let needle = "Rotate the TLS certificates on the load balancer before they expire on Friday.";
    batch.insert(
        500,
        Memory::new(needle).metadata(json!({"topic": "security", "needle": true})),
    );
    let ids = mem.remember_batch(batch).await.unwrap();
    assert_eq!(ids.len(), 1000);
    assert_eq!(mem.stats().await.unwrap().records, 1000);
    // A thousand memories are scanned: no graph below the index threshold.
    let ix = mem.index_status();
    assert!(
        !ix.graph && ix.pending == 1000 && ix.error.is_none(),
        "{ix:?}"
    );

    let searches = [
        SearchMode::Auto,
        SearchMode::Exact,
        SearchMode::Quantized,
        SearchMode::Binary,
        SearchMode::Ann,
    ];
    for (mode, search) in [RecallMode::Hybrid, RecallMode::Vector]
        .into_iter()
        .flat_map(|m| searches.map(|s| (m, s)))
    {
        let mut o = RecallOptions::new();
        o.k(3).mode(mode).search_mode(search);
        let hits = mem
            .recall("our HTTPS certs are about to lapse, what do we do?", &o)
            .await
            .unwrap();
        assert_eq!(
            hits[0].id,
            ids[500],
            "{mode:?} {search:?}: {:?}",
            hits.iter().map(|h| &h.text).collect::<Vec<_>>()
        );
        assert_eq!(hits[0].shard.as_str(), "coder");
        assert!(hits[0].why.similarity.unwrap() > 0.3);
        assert!(hits[0].why.recency > 0.99);
    }
    let mut o = RecallOptions::new();
    o.mode(RecallMode::Text).k(1);
    let hits = mem.recall("certificates", &o).await.unwrap();
    assert_eq!(hits[0].id, ids[500]);
    assert!(hits[0].why.bm25.is_some() && hits[0].why.similarity.is_none());

    // Filter before ranking: only `logging` memories, and exactly k of them.
    let mut o = RecallOptions::new();
    o.k(7).filter(Filter::Eq {
        field: "topic".into(),
        value: json!("logging"),
    });
    let hits = mem.recall("TLS certificates", &o).await.unwrap();
    assert_eq!(hits.len(), 7);
    assert!(hits.iter().all(|h| h.metadata["topic"] == "logging"));
}

#[tokio::test(flavor = "multi_thread")]
async fn get_update_forget_and_other_agents() {
    let dir = tempfile::tempdir().unwrap();
    let coder = memory(dir.path(), "coder").await;
    let reviewer = memory(dir.path(), "reviewer").await;
    let a = coder
        .remember("Use cargo nextest for faster test runs.", json!({}))
        .await
        .unwrap();
    let b = reviewer
        .remember(
            "Reject pull requests that add unwrap() without a comment.",
            json!({"severity": "high"}),
        )
        .await
        .unwrap();

    let got = coder.get(a).await.unwrap().unwrap();
    assert_eq!(got.text, "Use cargo nextest for faster test runs.");
    assert_eq!(got.embedding.unwrap().len(), 384);

    // Update text: re-embedded, so recall follows the new meaning.
    coder
        .update(
            a,
            Some("Bake sourdough bread at 230 degrees."),
            Some(json!({"v": 2})),
        )
        .await
        .unwrap();
    let hits = coder
        .recall("oven temperature for a loaf", &RecallOptions::new())
        .await
        .unwrap();
    assert_eq!(hits[0].id, a);
    assert_eq!(hits[0].metadata["v"], 2);

    // Searching another agent's shard too, each hit attributed.
    let mut o = RecallOptions::new();
    o.shards(vec![ShardId::new("reviewer").unwrap()]).k(2);
    let hits = coder
        .recall("code review rules about panics", &o)
        .await
        .unwrap();
    assert_eq!(hits[0].id, b);
    assert_eq!(hits[0].shard.as_str(), "reviewer");

    assert!(coder.forget(a).await.unwrap());
    assert!(!coder.forget(a).await.unwrap());
    assert!(coder.get(a).await.unwrap().is_none());
    assert!(
        coder
            .recall("bread", &RecallOptions::new())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let mem = memory(dir.path(), "a").await;
    assert!(matches!(
        mem.remember("   ", json!({})).await,
        Err(Error::Embedder(_))
    ));
    assert!(matches!(
        mem.remember("ok", json!([1])).await,
        Err(Error::Memory(_))
    ));
    assert!(matches!(
        mem.recall("", &RecallOptions::new()).await,
        Err(Error::Embedder(_))
    ));
    let mut o = RecallOptions::new();
    o.shards(vec![ShardId::new("nobody").unwrap()]);
    assert!(matches!(mem.recall("x", &o).await, Err(Error::Memory(_))));
    let mut o = RecallOptions::new();
    o.k(0);
    assert!(matches!(mem.recall("x", &o).await, Err(Error::Memory(_))));
    assert!(matches!(
        AgentMemory::builder(dir.path())
            .agent("../etc")
            .build()
            .await,
        Err(Error::Memory(_))
    ));
    assert_eq!(mem.stats().await.unwrap().records, 0);
    assert!("fuzzy".parse::<RecallMode>().is_err());
}

/// Issue #14: after consolidation, a plain recall returned raw `experience` trajectories and
/// patterns marked `merged`. Now neither comes back unless asked for.
#[tokio::test(flavor = "multi_thread")]
async fn issue_14_recall_leaves_out_experiences_and_superseded_items() {
    use reasonbank::reasoning::{ConsolidateOptions, Outcome, Trajectory};
    let root = tempfile::tempdir().unwrap();
    let mem = memory(root.path(), "coder").await;
    mem.remember(
        "Staging deploys need DATABASE_URL exported first",
        json!({}),
    )
    .await
    .unwrap();
    for observation in ["deployed", "deployed fine"] {
        let mut t = Trajectory::new("deploy the web app to staging");
        t.step("run deploy.sh", "error: missing env var DATABASE_URL")
            .step("export DATABASE_URL and rerun deploy.sh", observation)
            .outcome(Outcome::Success);
        mem.learn(&t).await.unwrap();
    }
    let mut co = ConsolidateOptions::new();
    co.duplicate_threshold(0.8);
    let report = mem.consolidate(&co).await.unwrap();
    assert!(!report.merges.is_empty(), "{report:?}");
    let merged: Vec<_> = report.merges.iter().map(|m| m.loser).collect();

    let mut o = RecallOptions::new();
    o.k(50);
    let hits = mem
        .recall("deploy the web app to staging", &o)
        .await
        .unwrap();
    assert!(!hits.is_empty());
    for h in &hits {
        assert_ne!(h.kind, "experience", "{h:?}");
        assert!(!merged.contains(&h.id), "merged item {} recalled", h.id);
    }
    assert!(hits.iter().any(|h| h.kind == "pattern"));
    assert!(hits.iter().any(|h| h.kind == "memory"));

    // Asked for, they are there.
    let mut o = RecallOptions::new();
    o.k(50).kinds(vec!["experience".into()]);
    let hits = mem
        .recall("deploy the web app to staging", &o)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.kind == "experience"));
    let mut o = RecallOptions::new();
    o.k(50).include_inactive(true);
    let hits = mem
        .recall("deploy the web app to staging", &o)
        .await
        .unwrap();
    assert!(merged.iter().all(|m| hits.iter().any(|h| h.id == *m)));
    // A caller's filter still applies on top of the defaults.
    let mut o = RecallOptions::new();
    o.k(50).filter(Filter::Kind("memory".into()));
    let hits = mem.recall("deploy", &o).await.unwrap();
    assert_eq!(hits.len(), 1);
}

#[tokio::test]
async fn issue_16_hybrid_recall_weighs_words_by_the_models_measured_bonus() {
    use reasonbank::embedders::LocalModel;
    use reasonbank::memory::{Fusion, TEXT_BONUS};
    let dir = tempfile::tempdir().unwrap();
    for (model, bonus) in [
        (LocalModel::AllMiniLmL6V2, TEXT_BONUS),
        (LocalModel::BgeSmallEnV15, reasonbank::BGE_TEXT_BONUS),
    ] {
        assert_eq!(
            reasonbank::default_fusion(model.model_id()),
            Fusion::Score { bonus }
        );
        let mem = AgentMemory::builder(dir.path())
            .agent(model.name().replace('.', "_"))
            .local_model(model)
            .build()
            .await
            .unwrap();
        assert_eq!(mem.embedder().model_id(), model.model_id());
        for text in [
            "The zeppelin hangar opens at dawn.",
            "Bake the bread for forty minutes.",
        ] {
            mem.remember(text, json!({})).await.unwrap();
        }
        // One record shares a word with the query: the only text candidate, it gets the whole
        // bonus on top of its cosine.
        let hits = mem
            .recall("zeppelin", RecallOptions::new().k(1))
            .await
            .unwrap();
        let top = &hits[0];
        assert!(top.text.contains("zeppelin"), "{model}: {hits:?}");
        let cosine = top.why.similarity.unwrap();
        assert!(
            (top.score - cosine - bonus).abs() < 1e-4,
            "{model}: score {} = cosine {cosine} + {bonus}?",
            top.score
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_16_memories_keep_their_own_time_and_recall_takes_a_window() {
    use reasonbank::units::{instant, now_ms};
    let dir = tempfile::tempdir().unwrap();
    let mem = memory(dir.path(), "timeline").await;
    let day = |d| instant("at", d, 0).unwrap();
    let ids = mem
        .remember_batch(vec![
            Memory::new("We chose Postgres for the billing service.")
                .created_at(Some(day("2026-11-02"))),
            Memory::new("We moved the billing service to the new cluster.")
                .created_at(Some(day("2026-11-20"))),
            Memory::new("The billing service now pages the on-call engineer."),
        ])
        .await
        .unwrap();
    let ask = |since: Option<i64>, until: Option<i64>| {
        let mem = mem.clone();
        async move {
            let mut o = RecallOptions::new();
            o.k(5);
            if let Some(s) = since {
                o.since(s);
            }
            if let Some(u) = until {
                o.until(u);
            }
            mem.recall("what happened to the billing service", &o)
                .await
                .unwrap()
                .into_iter()
                .map(|h| (h.id, h.created_at))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ask(None, None).await.len(), 3);
    // A window: only what was created in it, with the time it was given.
    assert_eq!(
        ask(Some(day("2026-11-15")), Some(day("2026-11-25"))).await,
        vec![(ids[1], day("2026-11-20"))]
    );
    // An age: only the memory written now is younger than a week.
    let week = instant("since", "7d", now_ms()).unwrap();
    assert_eq!(
        ask(Some(week), None)
            .await
            .into_iter()
            .map(|h| h.0)
            .collect::<Vec<_>>(),
        vec![ids[2]]
    );
    // Before a day: the first one only (until is exclusive).
    assert_eq!(
        ask(None, Some(day("2026-11-20"))).await,
        vec![(ids[0], day("2026-11-02"))]
    );

    // An empty window and a time before 1970 are refused; nothing is written.
    let mut o = RecallOptions::new();
    o.since(day("2026-11-20")).until(day("2026-11-20"));
    let e = mem.recall("billing", &o).await.unwrap_err();
    assert!(
        matches!(e, Error::InvalidInput { what: "since", .. }),
        "{e}"
    );
    let e = mem
        .remember_batch(vec![Memory::new("too early").created_at(Some(-1))])
        .await
        .unwrap_err();
    assert_eq!(e.code(), reasonbank::error::code::INVALID_INPUT, "{e}");
    assert!(e.to_string().contains("created_at"), "{e}");
    assert_eq!(ask(None, None).await.len(), 3);
}
