//! `learn` with an LLM judge and distiller chosen by configuration (`--llm-url`,
//! `--llm-model`), against an in-test server speaking the OpenAI chat-completions protocol:
//! the verdict and the items are the LLM's, and malformed output is a clear error that
//! writes nothing.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::cli::{ok, rb};

/// Serves `reply(request)` as chat completions on 127.0.0.1; returns the `/v1` base URL.
fn serve(reply: Arc<dyn Fn(&Value) -> String + Send + Sync>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            let reply = Arc::clone(&reply);
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, len) = loop {
                    let n = sock.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..p]).to_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                        break (p + 4, len);
                    }
                };
                while buf.len() < head_end + len {
                    let n = sock.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let req: Value = serde_json::from_slice(&buf[head_end..head_end + len]).unwrap();
                let body = json!({
                    "id": "chatcmpl-test", "object": "chat.completion",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": reply(&req)}}]
                })
                .to_string();
                let _ = write!(
                    sock,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    url
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

    let good = serve(Arc::new(|req: &Value| {
        if system(req).contains("evaluating the performance") {
            "Thoughts: the file was produced as asked.\nStatus: \"success\"".to_owned()
        } else {
            "```json\n[{\"title\": \"Verify outputs\", \"description\": \"Check the produced \
             file.\", \"content\": \"After generating an artifact, open it and confirm its \
             contents.\"}]\n```"
                .to_owned()
        }
    }));
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
    let bad = serve(Arc::new(|_req: &Value| "I cannot tell.".to_owned()));
    let other = root.join("other");
    let out = rb(
        &other,
        &["--llm-url", &bad, "--llm-model", "tiny", "learn", t],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("RB_LLM"), "{err}");
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
