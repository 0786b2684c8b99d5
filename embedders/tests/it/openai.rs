//! `OpenAiCompatibleEmbedder` against a minimal HTTP/1.1 server started in the test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reasonbank_embedders::{EmbedKind, Embedder, Error, OpenAiCompatibleEmbedder, Prefixes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::{dot, strings};

/// One canned answer: status, body, delay before answering.
#[derive(Clone)]
struct Answer {
    status: u16,
    body: String,
    delay: Duration,
}

fn ok(body: &str) -> Answer {
    Answer {
        status: 200,
        body: body.to_owned(),
        delay: Duration::ZERO,
    }
}

/// Serves `answer` to every request on a loopback port; returns the base URL and the requests seen
/// (head and body).
async fn serve(answer: Answer) -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        // Bounded: a test makes at most a handful of requests.
        for _ in 0..16 {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let answer = answer.clone();
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let head = text[..end].to_owned();
                        let len = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let body =
                                String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                            break (head, body);
                        }
                    }
                };
                log.lock().unwrap().push((head, body));
                tokio::time::sleep(answer.delay).await;
                let reply = format!(
                    "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    answer.status,
                    answer.body.len(),
                    answer.body
                );
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}/v1"), seen)
}

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
    let (base, seen) = serve(ok(
        r#"{"object":"list","data":[{"index":1,"embedding":[0,2,0]},{"index":0,"embedding":[3,4,0]}],"model":"m"}"#,
    ))
    .await;
    let e = client(&base, 3);
    let v = e
        .embed(&strings(&["a", "b"]), EmbedKind::Query)
        .await
        .unwrap();
    assert_eq!(v[0], vec![0.6, 0.8, 0.0]);
    assert_eq!(v[1], vec![0.0, 1.0, 0.0]);
    assert!((dot(&v[0], &v[0]) - 1.0).abs() < 1e-6);

    let seen = seen.lock().unwrap();
    let (head, body) = &seen[0];
    assert!(head.starts_with("POST /v1/embeddings "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer sk-test"),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["input"], serde_json::json!(["query: a", "query: b"]));
}

#[tokio::test]
async fn http_error_status_is_typed() {
    let (base, _) = serve(Answer {
        status: 401,
        body: r#"{"error":{"message":"bad key"}}"#.into(),
        delay: Duration::ZERO,
    })
    .await;
    let err = client(&base, 3)
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
    let (base, _) = serve(Answer {
        delay: Duration::from_secs(3),
        ..ok(r#"{"data":[]}"#)
    })
    .await;
    let err = client(&base, 3)
        .embed_one("a", EmbedKind::Document)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn malformed_json_is_typed() {
    let (base, _) = serve(ok("{not json")).await;
    let err = client(&base, 3)
        .embed_one("a", EmbedKind::Document)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MalformedResponse { .. }), "{err}");
}

#[tokio::test]
async fn wrong_count_is_typed() {
    let (base, _) = serve(ok(r#"{"data":[{"index":0,"embedding":[1,0,0]}]}"#)).await;
    let err = client(&base, 3)
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
    let (base, _) = serve(ok(r#"{"data":[{"index":0,"embedding":[1,0]}]}"#)).await;
    let err = client(&base, 3)
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
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
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
    let (base, seen) = serve(ok(r#"{"data":[]}"#)).await;
    let err = client(&base, 3)
        .embed_one("", EmbedKind::Document)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::EmptyText { .. }));
    assert!(seen.lock().unwrap().is_empty());
}
