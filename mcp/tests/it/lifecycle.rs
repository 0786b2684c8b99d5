//! Process lifecycle with raw JSON-RPC over pipes: a client that goes away mid-call, stdout
//! that carries only the protocol, startup errors and `RUST_LOG` logs on stderr.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support;

/// `initialize` + `initialized`, then `calls` tool calls (ids 2..) that keep the server busy:
/// each remembers a long text (embedding it takes a few milliseconds) and learns a trajectory.
fn session_lines(calls: usize) -> String {
    let mut lines = vec![
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "lifecycle-test", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ];
    let long = "Deploys fail when DATABASE_URL is missing from the environment. ".repeat(40);
    for i in 0..calls {
        let call = if i % 2 == 0 {
            json!({"name": "memory_remember", "arguments": {"text": format!("{i}: {long}")}})
        } else {
            json!({"name": "memory_learn", "arguments": {"task": format!("deploy #{i}"),
                "steps": [{"action": "run deploy.sh", "observation": "deployed"}],
                "outcome": "success"}})
        };
        lines.push(json!({"jsonrpc": "2.0", "id": i + 2, "method": "tools/call", "params": call}));
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn spawn(root: &std::path::Path) -> std::process::Child {
    Command::new(support::binary())
        .arg("--root")
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server")
}

fn read_stderr(child: &mut std::process::Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut s);
    }
    s
}

#[test]
fn stdin_eof_mid_call_exits_cleanly_and_stdout_is_only_protocol() {
    let root = tempfile::tempdir().expect("temp root");
    let mut child = spawn(root.path());
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(session_lines(8).as_bytes())
        .expect("send the session");
    // EOF while the calls are still being worked on.
    drop(stdin);
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let lines: Vec<String> = stdout.lines().map(|l| l.expect("read stdout")).collect();
    let status = support::wait_with_deadline(&mut child, Duration::from_secs(60));
    let stderr = read_stderr(&mut child);
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // rmcp drains calls in flight at EOF: every call is answered (and so every write that was
    // acknowledged is durable) before the process exits.
    assert_eq!(lines.len(), 9, "initialize + 8 calls answered: {lines:?}");
    for l in &lines {
        let v: Value = serde_json::from_str(l)
            .unwrap_or_else(|e| panic!("stdout line is not JSON-RPC ({e}): {l}"));
        assert_eq!(v["jsonrpc"], "2.0", "{l}");
    }
}

#[test]
fn client_vanishing_mid_call_exits_cleanly_and_leaves_a_usable_root() {
    let root = tempfile::tempdir().expect("temp root");
    let mut child = spawn(root.path());
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(session_lines(8).as_bytes())
        .expect("send the session");
    // Read the initialize response so the calls are under way, then drop both pipes: the
    // responses hit a closed pipe and the next read sees EOF.
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("initialize response");
    assert!(first.contains("\"id\":1"), "{first}");
    drop(stdout);
    drop(stdin);
    let status = support::wait_with_deadline(&mut child, Duration::from_secs(60));
    let stderr = read_stderr(&mut child);
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The shard is intact: a new server on the same root answers.
    let mut child = spawn(root.path());
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut session = session_lines(0);
    session.push_str(
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "vector_shard_stats", "arguments": {"shard": "default"}}})
        .to_string(),
    );
    session.push('\n');
    stdin.write_all(session.as_bytes()).expect("send");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut answer = None;
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(&line.expect("read")).expect("JSON-RPC");
        if v["id"] == 2 {
            answer = Some(v);
            break;
        }
    }
    drop(stdin);
    let status = support::wait_with_deadline(&mut child, Duration::from_secs(60));
    assert!(status.success());
    let answer = answer.expect("an answer to vector_shard_stats");
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    assert_eq!(
        answer["result"]["structuredContent"]["shards"][0]["model_id"], "all-MiniLM-L6-v2-int8",
        "{answer}"
    );
}

#[test]
fn hostile_agent_id_is_a_startup_error_on_stderr() {
    let root = tempfile::tempdir().expect("temp root");
    let out = support::output_with_deadline(
        Command::new(support::binary())
            .arg("--root")
            .arg(root.path())
            .args(["--agent", "../../etc/passwd"]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "stdout is for the protocol only");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid shard id"), "{stderr}");
}

#[test]
fn agent_from_env_is_used() {
    let root = tempfile::tempdir().expect("temp root");
    let mut child = Command::new(support::binary())
        .env("REASONBANK_ROOT", root.path())
        .env("REASONBANK_AGENT", "from-env")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(session_lines(1).as_bytes())
        .expect("send the session");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut answer = None;
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(&line.expect("read")).expect("JSON-RPC");
        if v["id"] == 2 {
            answer = Some(v);
            break;
        }
    }
    drop(stdin);
    assert!(support::wait_with_deadline(&mut child, Duration::from_secs(60)).success());
    let answer = answer.expect("an answer");
    assert_eq!(
        answer["result"]["structuredContent"]["agent"], "from-env",
        "{answer}"
    );
    assert!(root.path().join("from-env.sqlite").is_file());
}

#[test]
fn missing_runtime_is_a_startup_error_on_stderr() {
    let root = tempfile::tempdir().expect("temp root");
    let missing = root.path().join("no-such-libonnxruntime.so");
    let out = support::output_with_deadline(
        Command::new(support::binary())
            .arg("--root")
            .arg(root.path())
            .env("ORT_DYLIB_PATH", &missing),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "stdout is for the protocol only");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("loading the embedding model")
            && stderr.contains("no-such-libonnxruntime.so")
            && stderr.contains("reasonbank models fetch"),
        "{stderr}"
    );
}

/// Runs one session on `input` with `RUST_LOG` set to `rust_log` (or unset), returning stdout
/// and stderr once the server exits (within a deadline).
fn session_with_log(rust_log: Option<&str>, input: &str) -> (String, String) {
    let root = tempfile::tempdir().expect("temp root");
    let mut cmd = Command::new(support::binary());
    cmd.arg("--root")
        .arg(root.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(l) = rust_log {
        cmd.env("RUST_LOG", l);
    }
    let mut child = cmd.spawn().expect("start the server");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input.as_bytes()).expect("send the session");
    drop(stdin);
    let mut so = child.stdout.take().expect("piped stdout");
    let mut se = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut so, &mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut se, &mut s).map(|_| s)
    });
    let status = support::wait_with_deadline(&mut child, Duration::from_secs(60));
    let (out, err) = (
        out.join().expect("stdout reader").expect("read stdout"),
        err.join().expect("stderr reader").expect("read stderr"),
    );
    assert!(status.success(), "exit {status}; stderr:\n{err}");
    for l in out.lines() {
        let v: Value = serde_json::from_str(l)
            .unwrap_or_else(|e| panic!("stdout line is not JSON-RPC ({e}): {l}"));
        assert_eq!(v["jsonrpc"], "2.0", "{l}");
    }
    (out, err)
}

#[test]
fn issue_15_logs_follow_rust_log_on_stderr_only() {
    let mut input = session_lines(1);
    // An unreadable response: never answered, so it is logged as a warning.
    input.push_str("{\"jsonrpc\":\"2.0\",\"id\":99,\"result\":5,\"error\":5}\n");

    let (out, err) = session_with_log(None, &input);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        err.contains("WARN") && err.contains("ignored a line"),
        "{err}"
    );
    assert!(
        !err.contains("serving MCP"),
        "info is off by default: {err}"
    );

    let (out, err) = session_with_log(Some("debug"), &input);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        err.contains("INFO") && err.contains("serving MCP on stdio"),
        "{err}"
    );
    assert!(err.contains("DEBUG"), "{err}");

    let (_, err) = session_with_log(Some("error"), &input);
    assert!(!err.contains("ignored a line"), "{err}");

    let (out, err) = session_with_log(Some("=^bogus"), &input);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        err.contains("RUST_LOG") && err.contains("ignored a line"),
        "{err}"
    );
}
