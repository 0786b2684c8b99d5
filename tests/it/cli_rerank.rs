//! `recall --rerank` and `synthesize` with a reranker chosen by configuration
//! (`--rerank-url`, `--rerank-model`), against an in-test server speaking the `/v1/rerank`
//! protocol; the first stage uses the real model.

use reasonbank::embedders::test_server::{Reply, TestServer};
use serde_json::Value;

use crate::cli::{ok, rb};

#[test]
fn issue_16_recall_reranks_by_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for text in [
        "Cats sleep for most of the day in a warm spot.",
        "The cat door sticks in winter; oil the hinge.",
        "Dogs bark at the mail carrier every morning.",
    ] {
        ok(&rb(root, &["remember", text]));
    }
    let server = TestServer::start(|r| {
        Reply::rerank(r, |_, doc| if doc.contains("door") { 3.0 } else { 0.5 })
    });
    let url = server.base_url();
    let with = ["--rerank-url", url.as_str(), "--rerank-model", "tiny"];
    let run = |extra: &[&str]| rb(root, &[&with[..], extra].concat());

    let out = ok(&run(&[
        "--json",
        "recall",
        "what do cats do",
        "--k",
        "1",
        "--rerank",
        "3",
    ]));
    let hits: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");
    assert!(hits[0]["text"].as_str().unwrap().contains("door"), "{hits}");
    assert_eq!(hits[0]["score"], 3.0);
    assert_eq!(hits[0]["why"]["rerank"], 3.0);
    let body = server.requests()[0].json();
    assert_eq!(body["model"], "tiny");
    assert_eq!(body["documents"].as_array().unwrap().len(), 3);

    let text = ok(&run(&[
        "recall",
        "what do cats do",
        "--k",
        "1",
        "--rerank",
        "2",
    ]));
    assert!(text.contains("rerank 3.000"), "{text}");

    // Usage errors: --rerank without a reranker, fewer candidates than results, a URL
    // without a model.
    let out = rb(root, &["recall", "cats", "--rerank", "5"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("reranker"), "{err}");
    assert_eq!(
        run(&["recall", "cats", "--k", "5", "--rerank", "2"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        rb(root, &["--rerank-url", &url, "recall", "cats"])
            .status
            .code(),
        Some(2)
    );

    // A reranker that fails: exit 1 with RB_RERANK and the server's answer, no results.
    let down = TestServer::always(Reply::new(503, r#"{"error":"loading model"}"#));
    let out = rb(
        root,
        &[
            "--json",
            "--rerank-url",
            &down.base_url(),
            "--rerank-model",
            "tiny",
            "recall",
            "cats",
            "--rerank",
            "5",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("RB_RERANK") && err.contains("loading model"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}
