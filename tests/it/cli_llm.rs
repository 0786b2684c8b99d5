//! `learn` with an LLM judge and distiller chosen by configuration (`--llm-url`,
//! `--llm-model`), against an in-test server speaking the OpenAI chat-completions protocol:
//! the verdict and the items are the LLM's, and malformed output is a clear error that
//! writes nothing.

use reasonbank::embedders::test_server::{Reply, TestServer};
use serde_json::{Value, json};

use crate::cli::{ok, rb};

/// Serves `reply(request)` as chat completions on 127.0.0.1.
fn serve(reply: impl Fn(&Value) -> String + Send + Sync + 'static) -> TestServer {
    TestServer::start(move |r| Reply::chat(&reply(&r.json())))
}

fn system(req: &Value) -> &str {
    req["messages"][0]["content"].as_str().unwrap_or("")
}

#[test]
fn issue_15_learn_with_an_llm_judge_and_distiller_by_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let trajectory = root.join("t.json");
    // No outcome: the LLM judges it.
    std::fs::write(
        &trajectory,
        json!({"task": "write the report", "steps": [
            {"action": "generate report.pdf", "observation": "report.pdf written, 12 pages"}]})
        .to_string(),
    )
    .unwrap();
    let t = trajectory.to_str().unwrap();

    let good_server = serve(|req: &Value| {
        if system(req).contains("evaluating the performance") {
            "Thoughts: the file was produced as asked.\nStatus: \"success\"".to_owned()
        } else {
            "```json\n[{\"title\": \"Verify outputs\", \"description\": \"Check the produced \
             file.\", \"content\": \"After generating an artifact, open it and confirm its \
             contents.\"}]\n```"
                .to_owned()
        }
    });
    let good = good_server.base_url();
    let out = ok(&rb(
        root,
        &[
            "--llm-url",
            &good,
            "--llm-model",
            "tiny",
            "--json",
            "learn",
            t,
        ],
    ));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["verdicts"][0]["outcome"], "success", "{report}");
    assert_eq!(report["verdicts"][0]["judge"], "llm", "{report}");
    assert_eq!(report["items"][0]["title"], "Verify outputs", "{report}");

    // Output the judge's prompt asks for, but not in its form: an error naming the LLM, and
    // nothing learned.
    let bad_server = serve(|_req: &Value| "I cannot tell.".to_owned());
    let bad = bad_server.base_url();
    let other = root.join("other");
    let out = rb(
        &other,
        &["--llm-url", &bad, "--llm-model", "tiny", "learn", t],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("RB_LLM"), "{err}");
    assert!(
        err.contains(r#"the output began: "I cannot tell.""#),
        "the error shows what the model said: {err}"
    );
    let learned = rb(
        &other,
        &[
            "--json",
            "recall",
            "report",
            "--kind",
            "pattern",
            "--kind",
            "experience",
        ],
    );
    match learned.status.code() {
        Some(3) => {} // the agent was never created
        Some(0) => assert_eq!(String::from_utf8_lossy(&learned.stdout).trim(), "[]"),
        c => panic!("{c:?}: {}", String::from_utf8_lossy(&learned.stderr)),
    }
    // A URL without a model is bad usage.
    assert_eq!(
        rb(root, &["--llm-url", &good, "stats"]).status.code(),
        Some(2)
    );
}
