//! `HttpReranker` against the in-process `TestServer`.

use std::time::Duration;

use reasonbank_embedders::test_server::{Reply, TestServer};
use reasonbank_embedders::{Error, HttpReranker, Reranker};

use crate::common::strings;

fn client(base: &str) -> HttpReranker {
    HttpReranker::builder("test-reranker")
        .base_url(base)
        .api_key("sk-test")
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// Scores a document by how many of the query's words it contains.
fn overlap(query: &str, doc: &str) -> f32 {
    query
        .split_whitespace()
        .filter(|w| doc.contains(*w))
        .count() as f32
}

#[tokio::test]
async fn scores_come_back_in_document_order() {
    let server = TestServer::start(|r| Reply::rerank(r, overlap));
    let docs = strings(&["cats purr", "reset the password here", "the password"]);
    let scores = client(&server.base_url())
        .rerank("reset the password", &docs)
        .await
        .unwrap();
    assert_eq!(scores, vec![0.0, 3.0, 2.0]);

    let seen = server.requests();
    assert!(
        seen[0].head.starts_with("POST /v1/rerank "),
        "{}",
        seen[0].head
    );
    assert_eq!(seen[0].header("authorization"), Some("Bearer sk-test"));
    let body = seen[0].json();
    assert_eq!(body["model"], "test-reranker");
    assert_eq!(body["query"], "reset the password");
    assert_eq!(body["documents"], serde_json::json!(docs));
    assert_eq!(body["top_n"], 3);
}

#[tokio::test]
async fn nothing_to_rerank_sends_nothing() {
    let server = TestServer::start(|r| Reply::rerank(r, overlap));
    let scores = client(&server.base_url()).rerank("q", &[]).await.unwrap();
    assert!(scores.is_empty());
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn empty_texts_are_refused_before_a_request() {
    let server = TestServer::start(|r| Reply::rerank(r, overlap));
    let c = client(&server.base_url());
    let err = c.rerank(" ", &strings(&["a"])).await.unwrap_err();
    assert!(matches!(err, Error::EmptyText { index: 0 }), "{err}");
    let err = c.rerank("q", &strings(&["a", ""])).await.unwrap_err();
    assert!(matches!(err, Error::EmptyText { index: 2 }), "{err}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn bad_answers_are_typed_errors() {
    let cases = [
        ("{not json", "malformed"),
        (r#"{"data":[]}"#, "malformed"),
        (r#"{"results":[{"index":0,"relevance_score":1}]}"#, "count"),
        (
            r#"{"results":[{"index":0,"relevance_score":1},{"index":0,"relevance_score":2}]}"#,
            "malformed",
        ),
        (
            r#"{"results":[{"index":0,"relevance_score":1},{"index":9,"relevance_score":2}]}"#,
            "malformed",
        ),
    ];
    for (body, want) in cases {
        let server = TestServer::always(Reply::ok(body));
        let err = client(&server.base_url())
            .rerank("q", &strings(&["a", "b"]))
            .await
            .unwrap_err();
        let ok = match want {
            "malformed" => matches!(err, Error::MalformedResponse { .. }),
            _ => matches!(err, Error::CountMismatch { .. }),
        };
        assert!(ok, "{body}: {err}");
    }
}

#[tokio::test]
async fn http_errors_and_timeouts_are_typed() {
    let server = TestServer::always(Reply::new(404, r#"{"error":"no reranking model"}"#));
    let err = client(&server.base_url())
        .rerank("q", &strings(&["a"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Http { status: 404, body } if body.contains("no reranking")),
        "{err}"
    );
    let slow = TestServer::always(Reply::ok("{}").after(Duration::from_secs(3)));
    let err = client(&slow.base_url())
        .rerank("q", &strings(&["a"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
}
