//! The LLM judge and distiller against an in-test server speaking the OpenAI
//! chat-completions protocol (minimal HTTP/1.1 over a tokio `TcpListener`), including its
//! failure modes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reasonbank_reasoning::{
    ChatClient, Error, ExplicitJudge, ItemKind, LlmDistiller, LlmJudge, Outcome, ReasoningBank,
    RuleJudge,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::{Fixture, shard, trajectory};

/// What the server answers to one request.
struct Reply {
    status: u16,
    body: String,
    delay: Duration,
}

impl Reply {
    /// A 200 chat completion whose message content is `content`.
    fn content(content: &str) -> Reply {
        Reply::raw(
            200,
            json!({
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content}}]
            })
            .to_string(),
        )
    }
    fn raw(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
}

type Handler = Arc<dyn Fn(&Value) -> Reply + Send + Sync>;

/// A server on 127.0.0.1 answering every request with `handler(request JSON)`; records the
/// requests it saw.
struct Server {
    base_url: String,
    requests: Arc<Mutex<Vec<Value>>>,
}

impl Server {
    async fn start(handler: Handler) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let handler = Arc::clone(&handler);
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Headers, then Content-Length bytes of body.
                    let (head_end, len) = loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..p]).to_lowercase();
                            assert!(head.starts_with("post /v1/chat/completions "), "{head}");
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                            break (p + 4, len);
                        }
                    };
                    while buf.len() < head_end + len {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let req: Value =
                        serde_json::from_slice(&buf[head_end..head_end + len]).unwrap();
                    let reply = handler(&req);
                    seen.lock().unwrap().push(req);
                    tokio::time::sleep(reply.delay).await;
                    let resp = format!(
                        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                        reply.status,
                        reply.body.len(),
                        reply.body
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Server {
            base_url: format!("http://{addr}/v1"),
            requests,
        }
    }

    fn client(&self, timeout: Duration) -> ChatClient {
        ChatClient::builder("test-model")
            .base_url(&self.base_url)
            .api_key("sk-test")
            .timeout(timeout)
            .build()
            .unwrap()
    }

    fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

fn system_prompt(req: &Value) -> &str {
    req["messages"][0]["content"].as_str().unwrap_or("")
}

/// A well-behaved LLM: judges by whether the trajectory text mentions "error", distills JSON
/// (wrapped in prose and a code fence) for successes and the paper's Markdown for failures.
fn good_llm() -> Handler {
    Arc::new(|req: &Value| {
        let system = system_prompt(req);
        let user = req["messages"][1]["content"].as_str().unwrap_or("");
        if system.contains("evaluating the performance") {
            if user.to_lowercase().contains("error") {
                Reply::content("Thoughts: the last command failed.\nStatus: \"failure\"")
            } else {
                Reply::content("Thoughts: the file was produced as asked.\nStatus: \"success\"")
            }
        } else if system.contains("multiple trajectories") {
            Reply::content(
                r#"[{"kind": "strategy", "title": "Back up before schema changes", "description": "Successful runs dumped the table first.", "content": "Take a dump before altering a table so a bad migration can be undone."},
                    {"kind": "pitfall", "title": "NOT NULL on populated tables", "description": "Adding a NOT NULL column without a default fails.", "content": "Add the column nullable, backfill, then add the constraint."}]"#,
            )
        } else if system.contains("successfully accomplished") {
            Reply::content(
                "Here are the items:\n```json\n[{\"title\": \"Verify outputs\", \"description\": \"Check the produced file before answering.\", \"content\": \"After generating an artifact, open it and confirm its contents.\"},\n {\"title\": \"Prefer dry runs\", \"description\": \"Use dry runs first.\", \"content\": \"Run tools with --dry-run before the real run.\"}]\n```",
            )
        } else {
            Reply::content(
                "# Memory Item 1\n## Title\nCheck permissions first\n## Description\nWrites fail in read-only directories.\n## Content\nBefore writing, check that the target directory is writable.",
            )
        }
    })
}

fn llm_bank(fx: &Fixture, client: ChatClient) -> ReasoningBank {
    fx.builder()
        .judge(Arc::new(LlmJudge::new(client.clone())))
        .distiller(Arc::new(LlmDistiller::new(client)))
        .build()
        .unwrap()
}

#[tokio::test]
async fn llm_judge_and_distiller_learn_from_success_and_failure() {
    let server = Server::start(good_llm()).await;
    let fx = Fixture::new().await;
    let bank = llm_bank(&fx, server.client(Duration::from_secs(10)));
    let agent = shard("llm");

    let ok = trajectory(
        "export the report as PDF",
        &[("pandoc report.md -o report.pdf", "")],
        Some("report.pdf written"),
        None,
    );
    let r = bank.learn(&agent, &ok).await.unwrap();
    assert_eq!(r.verdicts[0].outcome, Outcome::Success);
    assert_eq!(r.verdicts[0].judge, "llm");
    assert_eq!(r.verdicts[0].reasons, "the file was produced as asked.");
    assert_eq!(r.items.len(), 2);
    assert!(
        r.items
            .iter()
            .all(|i| i.kind == ItemKind::Strategy && i.distiller == "llm")
    );
    assert_eq!(r.items[0].title, "Verify outputs");

    let bad = trajectory(
        "write the log to /var/log/app.log",
        &[(
            "echo hi > /var/log/app.log",
            "bash: /var/log/app.log: Permission denied error",
        )],
        None,
        None,
    );
    let r = bank.learn(&agent, &bad).await.unwrap();
    assert_eq!(r.verdicts[0].outcome, Outcome::Failure);
    assert_eq!(r.items.len(), 1);
    assert_eq!(r.items[0].kind, ItemKind::Pitfall);
    assert_eq!(r.items[0].title, "Check permissions first");

    // The protocol: model, messages, the paper's prompts, the trajectory in the user message.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[0]["model"], "test-model");
    assert_eq!(reqs[0]["messages"][0]["role"], "system");
    assert!(system_prompt(&reqs[0]).contains("Status: \"success\" or \"failure\""));
    assert!(
        reqs[0]["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("pandoc report.md")
    );
    assert!(system_prompt(&reqs[1]).contains("at most 3 memory items"));
    assert!(system_prompt(&reqs[3]).contains("attempted to resolve the task but failed"));
    assert!(
        reqs[3]["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("Judge's assessment: the last command failed.")
    );
}

#[tokio::test]
async fn llm_contrastive_distillation_uses_the_matts_prompt() {
    let server = Server::start(good_llm()).await;
    let fx = Fixture::new().await;
    let client = server.client(Duration::from_secs(10));
    // The caller's outcomes first; the LLM judges only trajectories without one.
    let mut judge = ExplicitJudge::new();
    judge.fallback(Arc::new(LlmJudge::new(client.clone())));
    let bank = fx
        .builder()
        .judge(Arc::new(judge))
        .distiller(Arc::new(LlmDistiller::new(client)))
        .build()
        .unwrap();
    let task = "add an email column to users";
    let runs = [
        trajectory(
            task,
            &[
                ("pg_dump users", "ok"),
                ("ALTER TABLE users ADD email text", "ALTER TABLE"),
            ],
            Some("done"),
            Some(Outcome::Success),
        ),
        trajectory(
            task,
            &[(
                "ALTER TABLE users ADD email text NOT NULL",
                "ERROR: contains null values",
            )],
            None,
            Some(Outcome::Failure),
        ),
    ];
    let r = bank
        .learn_contrastive(&shard("m"), task, &runs)
        .await
        .unwrap();
    let kinds: Vec<ItemKind> = r.items.iter().map(|i| i.kind).collect();
    assert_eq!(kinds, [ItemKind::Strategy, ItemKind::Pitfall]);
    let reqs = server.requests();
    // Explicit outcomes: no judge calls, one contrastive distillation.
    assert_eq!(reqs.len(), 1);
    let user = reqs[0]["messages"][1]["content"].as_str().unwrap();
    assert!(
        user.contains("## Trajectory 1 (success)") && user.contains("## Trajectory 2 (failure)")
    );
}

async fn learn_err(handler: Handler, timeout: Duration) -> (Error, Fixture) {
    let server = Server::start(handler).await;
    let fx = Fixture::new().await;
    let bank = llm_bank(&fx, server.client(timeout));
    let t = trajectory("x task", &[("do it", "done")], Some("ok"), None);
    let err = bank.learn(&shard("f"), &t).await.unwrap_err();
    // Nothing is stored when the LLM fails.
    assert!(bank.items(&shard("f")).await.unwrap().is_empty());
    (err, fx)
}

#[tokio::test]
async fn an_llm_that_does_not_answer_in_time_is_a_timeout() {
    let slow: Handler = Arc::new(|_req: &Value| Reply {
        delay: Duration::from_secs(3),
        ..Reply::content("Thoughts: late.\nStatus: success")
    });
    let started = std::time::Instant::now();
    let (err, _fx) = learn_err(slow, Duration::from_millis(300)).await;
    assert!(
        matches!(err, Error::Timeout { after, .. } if after == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn http_500_is_a_typed_http_error() {
    let (err, _fx) = learn_err(
        Arc::new(|_req: &Value| Reply::raw(500, r#"{"error": {"message": "overloaded"}}"#)),
        Duration::from_secs(5),
    )
    .await;
    match err {
        Error::Http { status, body, .. } => {
            assert_eq!(status, 500);
            assert!(body.contains("overloaded"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn malformed_responses_and_missing_fields_are_typed_errors() {
    // Not JSON at all.
    let (err, _fx) = learn_err(
        Arc::new(|_req: &Value| Reply::raw(200, "<html>oops</html>")),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(
            err,
            Error::MalformedLlmOutput {
                what: "chat response",
                ..
            }
        ),
        "{err:?}"
    );
    // JSON, but no choices.
    let (err, _fx) = learn_err(
        Arc::new(|_req: &Value| Reply::raw(200, r#"{"choices": []}"#)),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(
            err,
            Error::MalformedLlmOutput {
                what: "chat response",
                ..
            }
        ),
        "{err:?}"
    );
    // A judge answer without a status line.
    let (err, _fx) = learn_err(
        Arc::new(|_req: &Value| Reply::content("I think it went fine.")),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(err, Error::MalformedLlmOutput { what: "judge", .. }),
        "{err:?}"
    );
    // Distilled items missing a field.
    let missing: Handler = Arc::new(|req: &Value| {
        if system_prompt(req).contains("evaluating the performance") {
            Reply::content("Thoughts: fine.\nStatus: success")
        } else {
            Reply::content(r#"[{"title": "Only a title", "description": "and a description"}]"#)
        }
    });
    let (err, _fx) = learn_err(missing, Duration::from_secs(5)).await;
    match &err {
        Error::MalformedLlmOutput {
            what: "distill",
            reason,
            ..
        } => {
            assert!(reason.contains("content"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // Broken JSON in the content.
    let broken: Handler = Arc::new(|req: &Value| {
        if system_prompt(req).contains("evaluating the performance") {
            Reply::content("Thoughts: fine.\nStatus: success")
        } else {
            Reply::content(r#"[{"title": "x", "description": "y", "content": "z""#)
        }
    });
    let (err, _fx) = learn_err(broken, Duration::from_secs(5)).await;
    assert!(
        matches!(
            err,
            Error::MalformedLlmOutput {
                what: "distill",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_llm_is_an_error_unless_a_fallback_is_configured() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = ChatClient::builder("m")
        .base_url(format!("http://127.0.0.1:{port}/v1"))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let fx = Fixture::new().await;
    let t = trajectory("x task", &[("do it", "done")], Some("ok"), None);
    let bank = fx
        .builder()
        .judge(Arc::new(LlmJudge::new(client.clone())))
        .build()
        .unwrap();
    let err = bank.learn(&shard("u"), &t).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");

    let mut judge = LlmJudge::new(client);
    judge.fallback(Arc::new(RuleJudge::new()));
    let bank = fx.builder().judge(Arc::new(judge)).build().unwrap();
    let r = bank.learn(&shard("u"), &t).await.unwrap();
    let v = &r.verdicts[0];
    assert_eq!((v.outcome, v.judge.as_str()), (Outcome::Success, "rule"));
    assert!(
        v.fallback_from.as_deref().unwrap().contains("127.0.0.1"),
        "{v:?}"
    );
}
