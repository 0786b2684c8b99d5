//! Every request gets an answer (issue #15), with raw bytes over the real binary's pipes: lines
//! that are not JSON-RPC get a JSON-RPC error with their id, and reads of an agent that does
//! not exist are tool errors. Each wait has a deadline, so a dropped line fails the test
//! instead of hanging it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support;

/// How long an answer may take (the model loads before the first one).
const DEADLINE: Duration = Duration::from_secs(60);

/// A server with an initialized session on a fresh root.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    root: tempfile::TempDir,
}

impl Session {
    fn start() -> Session {
        let root = tempfile::tempdir().expect("temp root");
        let mut child = Command::new(support::binary())
            .arg("--root")
            .arg(root.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut s = Session {
            stdin: child.stdin.take(),
            child,
            lines,
            root,
        };
        s.send(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "protocol-test", "version": "0"}}}),
        );
        assert!(s.answer(&json!(1)).get("result").is_some());
        s.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        s
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write a line");
        stdin.write_all(b"\n").expect("write a line");
        stdin.flush().expect("flush");
    }

    fn send(&mut self, v: &Value) {
        self.send_raw(v.to_string().as_bytes());
    }

    /// The next line on stdout with this `id`; every line must be JSON-RPC.
    fn answer(&mut self, id: &Value) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no answer with id {id} within {DEADLINE:?}: the server dropped the line")
            });
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            assert_eq!(v["jsonrpc"], "2.0", "{line}");
            if &v["id"] == id {
                return v;
            }
        }
    }

    /// The JSON-RPC error answering `id`, after checking the server still answers a ping.
    fn error(&mut self, id: &Value) -> (i64, String) {
        let v = self.answer(id);
        let code = v["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("expected an error: {v}"));
        let msg = v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.send(&json!({"jsonrpc": "2.0", "id": "alive", "method": "ping"}));
        assert!(self.answer(&json!("alive")).get("result").is_some());
        (code, msg)
    }

    fn call(&mut self, id: u64, tool: &str, arguments: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}));
        self.answer(&json!(id))["result"].clone()
    }

    fn finish(mut self) {
        drop(self.stdin.take());
        let status = support::wait_with_deadline(&mut self.child, DEADLINE);
        assert!(status.success(), "exit {status}");
    }
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
}

#[test]
fn issue_15_metadata_nested_125_levels_is_answered() {
    let mut s = Session::start();
    let line = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"memory_remember","arguments":{{"text":"deep","metadata":{}}}}}}}"#,
        nested(125)
    );
    s.send_raw(line.as_bytes());
    let (code, msg) = s.error(&json!(2));
    assert_eq!(code, -32600, "{msg}");
    assert!(
        msg.contains("nested more than 127 levels deep at params.arguments.metadata.a"),
        "{msg}"
    );
    // Within the limit, metadata nested 120 levels is stored and read back.
    let deep: Value = serde_json::from_str(&nested(120)).expect("nested JSON");
    let r = s.call(
        3,
        "memory_remember",
        json!({"text": "deep", "metadata": deep}),
    );
    assert_eq!(r["isError"], false, "{r}");
    let r = s.call(4, "memory_recall", json!({"query": "deep"}));
    assert_eq!(
        r["structuredContent"]["results"][0]["metadata"], deep,
        "{r}"
    );
    s.finish();
}

#[test]
fn issue_15_lone_surrogate_is_a_parse_error_with_the_id() {
    let mut s = Session::start();
    s.send_raw(
        br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"memory_remember","arguments":{"text":"a \ud800 b"}}}"#,
    );
    let (code, msg) = s.error(&json!(3));
    assert_eq!(code, -32700, "{msg}");
    assert!(
        msg.contains("params.arguments.text holds the escape \\ud800") && msg.contains("surrogate"),
        "{msg}"
    );
    s.finish();
}

#[test]
fn issue_15_invalid_utf8_is_a_parse_error_with_the_id() {
    let mut s = Session::start();
    s.send_raw(
        b"{\"jsonrpc\":\"2.0\",\"id\":\"u8\",\"method\":\"tools/call\",\"params\":{\"name\":\"memory_remember\",\"arguments\":{\"text\":\"\xff\xfe\"}}}",
    );
    let (code, msg) = s.error(&json!("u8"));
    assert_eq!(code, -32700, "{msg}");
    assert!(msg.contains("UTF-8"), "{msg}");
    s.finish();
}

#[test]
fn issue_15_a_line_that_is_not_json_is_a_parse_error() {
    let mut s = Session::start();
    s.send_raw(b"hello");
    let (code, _) = s.error(&Value::Null);
    assert_eq!(code, -32700);
    // Cut short: still a parse error, and the id is read from what is there.
    s.send_raw(br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"#);
    let (code, _) = s.error(&json!(5));
    assert_eq!(code, -32700);
    s.finish();
}

#[test]
fn issue_15_tools_call_without_name_is_invalid_params() {
    let mut s = Session::start();
    s.send(&json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call",
        "params": {"arguments": {"text": "x"}}}));
    let (code, msg) = s.error(&json!(6));
    assert_eq!(code, -32602, "{msg}");
    assert!(
        msg.contains("tools/call") && msg.contains("`name`"),
        "{msg}"
    );
    s.send(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call"}));
    assert_eq!(s.error(&json!(7)).0, -32602);
    s.finish();
}

#[test]
fn issue_15_batches_and_non_requests_are_invalid_requests() {
    let mut s = Session::start();
    s.send_raw(br#"[{"jsonrpc":"2.0","id":8,"method":"ping"}]"#);
    assert_eq!(s.error(&Value::Null).0, -32600);
    s.send_raw(br#"{"jsonrpc":"2.0","id":9,"method":42}"#);
    assert_eq!(s.error(&json!(9)).0, -32600);
    s.finish();
}

#[test]
fn issue_15_reads_of_an_unknown_agent_are_refused_and_create_nothing() {
    let mut s = Session::start();
    let reads = [
        (
            "memory_recall",
            json!({"query": "deploys", "agent": "nobody"}),
        ),
        (
            "memory_find_patterns",
            json!({"task": "deploy", "agent": "nobody"}),
        ),
        (
            "memory_synthesize_context",
            json!({"task": "deploy", "agent": "nobody"}),
        ),
        (
            "memory_consolidate",
            json!({"dry_run": true, "agent": "nobody"}),
        ),
        ("memory_consolidate", json!({"agent": "nobody"})),
        (
            "memory_feedback",
            json!({"id": "0190a4b2-7c1d-7e3f-8a9b-0c1d2e3f4a5b", "outcome": "success",
                "agent": "nobody"}),
        ),
        ("memory_contradictions", json!({"agent": "nobody"})),
        (
            "memory_get",
            json!({"id": "0190a4b2-7c1d-7e3f-8a9b-0c1d2e3f4a5b", "agent": "nobody"}),
        ),
        (
            "memory_update",
            json!({"id": "0190a4b2-7c1d-7e3f-8a9b-0c1d2e3f4a5b", "text": "x", "agent": "nobody"}),
        ),
        (
            "memory_forget",
            json!({"id": "0190a4b2-7c1d-7e3f-8a9b-0c1d2e3f4a5b", "agent": "nobody"}),
        ),
        ("vector_shard_stats", json!({"shard": "nobody"})),
        (
            "vector_search",
            json!({"shard": "nobody", "vector": [1.0, 0.0]}),
        ),
        (
            "memory_recall",
            json!({"query": "deploys", "shards": ["nobody"]}),
        ),
        (
            "memory_synthesize_context",
            json!({"task": "deploy", "shards": ["nobody"]}),
        ),
    ];
    for (i, (tool, args)) in reads.iter().enumerate() {
        let r = s.call(10 + i as u64, tool, args.clone());
        assert_eq!(r["isError"], true, "{tool} {args}: {r}");
        let text = r["content"][0]["text"].as_str().unwrap_or_default();
        assert!(text.contains("\"nobody\""), "{tool} {args}: {text}");
    }
    assert!(
        !s.root.path().join("nobody.sqlite").exists(),
        "a read created the agent"
    );
    // Writes still create.
    let r = s.call(
        30,
        "memory_remember",
        json!({"text": "hello", "agent": "newbie"}),
    );
    assert_eq!(r["isError"], false, "{r}");
    assert!(s.root.path().join("newbie.sqlite").is_file());
    let r = s.call(
        31,
        "memory_recall",
        json!({"query": "hello", "agent": "newbie"}),
    );
    assert_eq!(r["isError"], false, "{r}");
    s.finish();
}

#[test]
fn issue_15_a_line_over_16_mib_is_answered() {
    let mut s = Session::start();
    let line = format!(
        r#"{{"jsonrpc":"2.0","id":"big","method":"tools/call","params":{{"name":"memory_remember","arguments":{{"text":"{}"}}}}}}"#,
        "x".repeat(17 << 20)
    );
    s.send_raw(line.as_bytes());
    let (code, msg) = s.error(&json!("big"));
    assert_eq!(code, -32600, "{msg}");
    assert!(msg.contains("longer than 16 MiB"), "{msg}");
    s.finish();
}
