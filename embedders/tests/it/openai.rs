//! `OpenAiCompatibleEmbedder` against the in-process `TestServer`.

use std::time::Duration;

use reasonbank_embedders::test_server::{Reply, TestServer};
use reasonbank_embedders::{EmbedKind, Embedder, Error, OpenAiCompatibleEmbedder, Prefixes};

use crate::common::{dot, strings};

fn client(base: &str, dims: usize) -> OpenAiCompatibleEmbedder {
    OpenAiCompatibleEmbedder::builder("test-model", dims)
        .base_url(base)
        .api_key("sk-test")
        .timeout(Duration::from_millis(500))
        .prefixes(Prefixes::new("query: ", ""))
        .build()
        .unwrap()
}

#[tokio::test]
async fn embeds_in_order_and_normalizes() {
    // Out of order on purpose, and not normalized.
    let server = TestServer::always(Reply::ok(
        r#"{"object":"list","data":[{"index":1,"embedding":[0,2,0]},{"index":0,"embedding":[3,4,0]}],"model":"m"}"#,
    ));
    let e = client(&server.base_url(), 3);
    let v = e
        .embed(&strings(&["a", "b"]), EmbedKind::Query)
        .await
        .unwrap();
    assert_eq!(v[0], vec![0.6, 0.8, 0.0]);
    assert_eq!(v[1], vec![0.0, 1.0, 0.0]);
    assert!((dot(&v[0], &v[0]) - 1.0).abs() < 1e-6);

    let seen = server.requests();
    let head = &seen[0].head;
    assert!(head.starts_with("POST /v1/embeddings "), "{head}");
    assert_eq!(seen[0].header("authorization"), Some("Bearer sk-test"));
    let body = seen[0].json();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["input"], serde_json::json!(["query: a", "query: b"]));
}

#[tokio::test]
async fn http_error_status_is_typed() {
    let server = TestServer::always(Reply::new(401, r#"{"error":{"message":"bad key"}}"#));
    let err = client(&server.base_url(), 3)
        .embed_one("a", EmbedKind::Document)
        .await
        .unwrap_err();
    match err {
        Error::Http { status, body } => {
            assert_eq!(status, 401);
            assert!(body.contains("bad key"));
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn slow_server_times_out() {
    let server = TestServer::always(Reply::ok(r#"{"data":[]}"#).after(Duration::from_secs(3)));
    let err = client(&server.base_url(), 3)
        .embed_one("a", EmbedKind::Document)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn malformed_json_is_typed() {
    let server = TestServer::always(Reply::ok("{not json"));
    let err = client(&server.base_url(), 3)
        .embed_one("a", EmbedKind::Document)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MalformedResponse { .. }), "{err}");
}

#[tokio::test]
async fn wrong_count_is_typed() {
    let server = TestServer::always(Reply::ok(r#"{"data":[{"index":0,"embedding":[1,0,0]}]}"#));
    let err = client(&server.base_url(), 3)
        .embed(&strings(&["a", "b"]), EmbedKind::Document)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::CountMismatch {
                expected: 2,
                actual: 1
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_dimensions_are_typed() {
    let server = TestServer::always(Reply::ok(r#"{"data":[{"index":0,"embedding":[1,0]}]}"#));
    let err = client(&server.base_url(), 3)
        .embed_one("a", EmbedKind::Document)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::DimensionMismatch {
                expected: 3,
                actual: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn connection_refused_is_a_transport_error() {
    // Bind then drop, so the port is very likely closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = client(&format!("http://127.0.0.1:{port}/v1"), 3)
        .embed_one("a", EmbedKind::Document)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
}

#[tokio::test]
async fn empty_text_never_reaches_the_server() {
    let server = TestServer::always(Reply::ok(r#"{"data":[]}"#));
    let err = client(&server.base_url(), 3)
        .embed_one("", EmbedKind::Document)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::EmptyText { .. }));
    assert!(server.requests().is_empty());
}
