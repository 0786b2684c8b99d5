//! The LLM judge and distiller against the in-process `TestServer` speaking the OpenAI
//! chat-completions protocol, including its failure modes.

use std::sync::Arc;
use std::time::Duration;

use reasonbank_embedders::test_server::{Reply, Request, TestServer};
use reasonbank_reasoning::{
    ChatClient, Error, ExplicitJudge, ItemKind, LlmDistiller, LlmJudge, Outcome, ReasoningBank,
    RuleJudge,
};
use serde_json::Value;

use crate::common::{Fixture, shard, trajectory};

type Handler = Arc<dyn Fn(&Value) -> Reply + Send + Sync>;

/// The shared in-process test server, answering every request with `handler(request JSON)`.
struct Server(TestServer);

impl Server {
    fn start(handler: Handler) -> Server {
        Server(TestServer::start(move |r| handler(&r.json())))
    }

    fn client(&self, timeout: Duration) -> ChatClient {
        ChatClient::builder("test-model")
            .base_url(self.0.base_url())
            .api_key("sk-test")
            .timeout(timeout)
            .build()
            .unwrap()
    }

    /// The requests seen, as JSON; every one a chat completion request.
    fn requests(&self) -> Vec<Value> {
        let seen = self.0.requests();
        for r in &seen {
            assert!(
                r.head.starts_with("POST /v1/chat/completions "),
                "{}",
                r.head
            );
        }
        seen.iter().map(Request::json).collect()
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
                Reply::chat("Thoughts: the last command failed.\nStatus: \"failure\"")
            } else {
                Reply::chat("Thoughts: the file was produced as asked.\nStatus: \"success\"")
            }
        } else if system.contains("multiple trajectories") {
            Reply::chat(
                r#"[{"kind": "strategy", "title": "Back up before schema changes", "description": "Successful runs dumped the table first.", "content": "Take a dump before altering a table so a bad migration can be undone."},
                    {"kind": "pitfall", "title": "NOT NULL on populated tables", "description": "Adding a NOT NULL column without a default fails.", "content": "Add the column nullable, backfill, then add the constraint."}]"#,
            )
        } else if system.contains("successfully accomplished") {
            Reply::chat(
                "Here are the items:\n```json\n[{\"title\": \"Verify outputs\", \"description\": \"Check the produced file before answering.\", \"content\": \"After generating an artifact, open it and confirm its contents.\"},\n {\"title\": \"Prefer dry runs\", \"description\": \"Use dry runs first.\", \"content\": \"Run tools with --dry-run before the real run.\"}]\n```",
            )
        } else {
            Reply::chat(
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
    let server = Server::start(good_llm());
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
    let server = Server::start(good_llm());
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
    let server = Server::start(handler);
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
        ..Reply::chat("Thoughts: late.\nStatus: success")
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
        Arc::new(|_req: &Value| Reply::new(500, r#"{"error": {"message": "overloaded"}}"#)),
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
        Arc::new(|_req: &Value| Reply::new(200, "<html>oops</html>")),
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
        Arc::new(|_req: &Value| Reply::new(200, r#"{"choices": []}"#)),
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
        Arc::new(|_req: &Value| Reply::chat("I think it went fine.")),
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
            Reply::chat("Thoughts: fine.\nStatus: success")
        } else {
            Reply::chat(r#"[{"title": "Only a title", "description": "and a description"}]"#)
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
            Reply::chat("Thoughts: fine.\nStatus: success")
        } else {
            Reply::chat(r#"[{"title": "x", "description": "y", "content": "z""#)
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
