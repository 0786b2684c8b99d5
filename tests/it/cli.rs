//! The `reasonbank` binary: every command, its JSON output and its exit codes.

use std::process::{Command, Output};

use serde_json::Value;

/// Runs the binary with `--root root` and `args`.
pub(crate) fn rb(root: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reasonbank"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("run reasonbank")
}

/// The stdout of a run that must have succeeded (else its stderr fails the test).
pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn remember_recall_get_forget_import_export_stats() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let out = ok(&rb(
        root,
        &[
            "--json",
            "remember",
            "Retry flaky HTTP calls with exponential backoff.",
            "--meta",
            r#"{"topic":"http"}"#,
        ],
    ));
    let id = serde_json::from_str::<Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&rb(
        root,
        &["remember", "Bake bread at 230 degrees.", "--kind", "recipe"],
    ));

    let out = ok(&rb(
        root,
        &["recall", "the API times out", "--k", "1", "--json"],
    ));
    let hits: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(hits[0]["id"], id.as_str());
    assert_eq!(hits[0]["metadata"]["topic"], "http");
    assert!(hits[0]["why"]["similarity"].as_f64().unwrap() > 0.2);
    let out = ok(&rb(
        root,
        &[
            "recall",
            "bread",
            "--filter",
            r#"{"kind":"memory"}"#,
            "--mode",
            "text",
            "--json",
        ],
    ));
    assert_eq!(
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        0
    );

    let out = ok(&rb(root, &["get", &id, "--json"]));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["text"],
        "Retry flaky HTTP calls with exponential backoff."
    );

    // Export, import into another agent, same texts (the export's header, then two rows).
    let export = dir.path().join("out.jsonl");
    ok(&rb(root, &["export", export.to_str().unwrap()]));
    let lines = std::fs::read_to_string(&export).unwrap();
    assert_eq!(lines.lines().count(), 3);
    let out = ok(&rb(
        root,
        &[
            "--agent",
            "copy",
            "--json",
            "import",
            export.to_str().unwrap(),
        ],
    ));
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["imported"], 2);
    let out = ok(&rb(root, &["stats", "--all", "--json"]));
    let stats: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(stats.len(), 2);
    assert!(
        stats
            .iter()
            .all(|s| s["records"] == 2 && s["dimensions"] == 384)
    );
    // Two memories are far below the index threshold: no graph, both rows scanned exactly.
    assert!(
        stats
            .iter()
            .all(|s| s["index"]["graph"] == false && s["index"]["pending"] == 2),
        "{stats:?}"
    );
    assert!(ok(&rb(root, &["stats"])).contains("default"));

    ok(&rb(root, &["forget", &id]));
    let gone = rb(root, &["get", &id]);
    assert_eq!(gone.status.code(), Some(3), "not found exits with 3");
    assert_eq!(rb(root, &["forget", &id]).status.code(), Some(3));
}

#[test]
fn learn_patterns_feedback_consolidate_synthesize() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let traj = dir.path().join("t.json");
    std::fs::write(
        &traj,
        r#"{"task": "deploy the web app to staging",
            "steps": [{"action": "run deploy.sh", "observation": "error: missing env var DATABASE_URL"},
                      {"action": "export DATABASE_URL from the vault and rerun deploy.sh", "observation": "deployed build 42"}],
            "answer": "deployed", "outcome": "success"}"#,
    )
    .unwrap();
    let out = ok(&rb(root, &["--json", "learn", traj.to_str().unwrap()]));
    let report: Value = serde_json::from_str(&out).unwrap();
    let items = report["items"].as_array().unwrap();
    assert!(!items.is_empty());

    let out = ok(&rb(
        root,
        &[
            "--json",
            "patterns",
            "ship the site to the test environment",
            "--k",
            "1",
        ],
    ));
    let pats: Value = serde_json::from_str(&out).unwrap();
    let id = pats[0]["item"]["id"].as_str().unwrap().to_owned();
    let before = pats[0]["item"]["confidence"].as_f64().unwrap();

    let out = ok(&rb(root, &["--json", "feedback", &id, "success"]));
    let after = serde_json::from_str::<Value>(&out).unwrap()["confidence"]
        .as_f64()
        .unwrap();
    assert!(after > before, "{before} -> {after}");
    assert_eq!(rb(root, &["feedback", &id, "1.5"]).status.code(), Some(2));

    let out = ok(&rb(root, &["--json", "consolidate", "--dry-run"]));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["dry_run"],
        true
    );

    let out = ok(&rb(
        root,
        &[
            "--json",
            "synthesize",
            "deploy to staging",
            "--budget",
            "100",
        ],
    ));
    let ctx: Value = serde_json::from_str(&out).unwrap();
    assert!(ctx["tokens_used"].as_u64().unwrap() <= 100);
    assert!(ctx["text"].as_str().unwrap().contains("deploy"));
    assert_eq!(ctx["tokens_exact"], true);
}

/// `sync keygen`, `serve` (hub) and `sync --peer` between two roots over real QUIC on
/// loopback; an untrusted identity gets nothing.
#[test]
fn sync_keygen_serve_and_peer_sync() {
    use std::io::BufRead;
    let hub = tempfile::tempdir().unwrap();
    let edge = tempfile::tempdir().unwrap();
    let stranger = tempfile::tempdir().unwrap();
    let fp = |root: &std::path::Path| {
        let out = ok(&rb(root, &["--json", "sync", "keygen", "--name", "t"]));
        serde_json::from_str::<Value>(&out).unwrap()["fingerprint"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (hub_fp, edge_fp, _) = (fp(hub.path()), fp(edge.path()), fp(stranger.path()));
    assert_eq!(hub_fp.len(), 64);
    // Keygen refuses to overwrite an identity; --show prints the existing one's fingerprint.
    assert_eq!(rb(hub.path(), &["sync", "keygen"]).status.code(), Some(1));
    assert_eq!(
        ok(&rb(hub.path(), &["sync", "keygen", "--show"])).trim(),
        hub_fp
    );
    let empty = tempfile::tempdir().unwrap();
    let none = rb(empty.path(), &["sync", "keygen", "--show"]);
    assert_eq!(none.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&none.stderr).contains("reasonbank sync keygen"));
    assert!(
        !empty.path().join(".sync").exists(),
        "--show creates nothing"
    );

    ok(&rb(
        hub.path(),
        &[
            "--agent",
            "team",
            "remember",
            "Rotate TLS certificates before they expire.",
        ],
    ));
    let config = hub.path().join("serve.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "listen": "127.0.0.1:0",
            "identity": hub.path().join(".sync"),
            "peers": [{"fingerprint": edge_fp, "shards": ["team"], "access": "read_write"}]
        })
        .to_string(),
    )
    .unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_reasonbank"))
        .arg("--root")
        .arg(hub.path())
        .args(["--json", "serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let listening: Value = serde_json::from_str(&line).unwrap();
    let addr = listening["listening"].as_str().unwrap().to_owned();
    assert_eq!(listening["fingerprint"], hub_fp.as_str());

    ok(&rb(
        edge.path(),
        &[
            "--agent",
            "team",
            "remember",
            "Pin dependency versions in CI.",
        ],
    ));
    let out = ok(&rb(
        edge.path(),
        &[
            "--agent", "team", "--json", "sync", "--peer", &addr, "--trust", &hub_fp,
        ],
    ));
    let report: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(
        (report["sent"].as_u64(), report["received"].as_u64()),
        (Some(1), Some(1))
    );
    let out = ok(&rb(
        edge.path(),
        &[
            "--agent",
            "team",
            "--json",
            "recall",
            "certificate expiry",
            "--k",
            "1",
        ],
    ));
    assert!(out.contains("Rotate TLS certificates"), "{out}");
    assert!(ok(&rb(hub.path(), &["--agent", "team", "--json", "stats"])).contains("\"records\":2"));

    // An identity the hub does not know is refused; a shard outside the grant too.
    let refused = rb(
        stranger.path(),
        &[
            "--agent", "team", "sync", "--peer", &addr, "--trust", &hub_fp,
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("the peer refused") && err.contains("not in the peer's list of peers"),
        "{err}"
    );
    assert!(err.contains("RB_SYNC_DENIED"), "{err}");
    // A pinned fingerprint that is not the hub's: this side refuses, and says both.
    let wrong_pin = "ab".repeat(32);
    let mistrust = rb(
        edge.path(),
        &[
            "--agent", "team", "sync", "--peer", &addr, "--trust", &wrong_pin,
        ],
    );
    assert_eq!(mistrust.status.code(), Some(1));
    let err = String::from_utf8_lossy(&mistrust.stderr);
    assert!(
        err.contains("this side refused")
            && err.contains(&format!("fingerprint is {hub_fp}, you pinned {wrong_pin}")),
        "{err}"
    );
    let denied = rb(
        edge.path(),
        &[
            "--agent", "other", "sync", "--peer", &addr, "--trust", &hub_fp,
        ],
    );
    assert_eq!(denied.status.code(), Some(1));
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(err.contains("access denied"), "{err}");
    assert!(
        !edge.path().join("other.sqlite").exists(),
        "a denied sync leaves no empty shard"
    );
    // A peer that does not answer fails within the handshake timeout, with a clear message.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = std::time::Instant::now();
    let dead = rb(
        edge.path(),
        &[
            "--agent",
            "team",
            "sync",
            "--peer",
            &silent.local_addr().unwrap().to_string(),
            "--trust",
            &hub_fp,
            "--timeout",
            "2",
        ],
    );
    assert_eq!(dead.status.code(), Some(1));
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    let said = String::from_utf8_lossy(&dead.stderr);
    let addr = silent.local_addr().unwrap().to_string();
    assert!(
        said.contains(&format!("no answer from {addr} within 2000 ms"))
            && said.contains("reasonbank serve")
            && said.contains("RB_SYNC_NETWORK"),
        "{said}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

/// A child process killed when dropped (also when a test panics).
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` on `hub` with `config` (JSON), returns the process and its address.
fn serve(hub: &std::path::Path, config: Value) -> (Server, String) {
    use std::io::BufRead;
    let path = hub.join("serve.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_reasonbank"))
            .arg("--root")
            .arg(hub)
            .args(["--json", "serve", "--config"])
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let listening: Value = serde_json::from_str(&line).expect("serve prints its address");
    let addr = listening["listening"].as_str().unwrap().to_owned();
    (server, addr)
}

/// `sync --text-only`: the edge re-embeds what it pulls; a hub accepts text-only pushes only
/// with `"reembed": true`.
#[test]
fn sync_text_only_reembeds_on_the_receiver() {
    let (hub, edge) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let fp = |root: &std::path::Path| {
        let out = ok(&rb(root, &["--json", "sync", "keygen"]));
        serde_json::from_str::<Value>(&out).unwrap()["fingerprint"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (hub_fp, edge_fp) = (fp(hub.path()), fp(edge.path()));
    let remember = |root: &std::path::Path, text: &str| {
        ok(&rb(root, &["--agent", "team", "remember", text]));
    };
    remember(hub.path(), "Rotate TLS certificates before they expire.");
    remember(edge.path(), "Pin dependency versions in CI.");
    let config = |reembed: bool| {
        serde_json::json!({
            "listen": "127.0.0.1:0",
            "identity": hub.path().join(".sync"),
            "peers": [{"fingerprint": edge_fp, "access": "read_write"}],
            "reembed": reembed,
        })
    };
    let sync = |addr: &str, direction: &str| {
        rb(
            edge.path(),
            &[
                "--agent",
                "team",
                "--json",
                "sync",
                "--peer",
                addr,
                "--trust",
                &hub_fp,
                "--text-only",
                "--direction",
                direction,
            ],
        )
    };

    // A hub without "reembed" refuses a text-only push, and serves text-only pulls.
    let (server, addr) = serve(hub.path(), config(false));
    let refused = sync(&addr, "push");
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("re-embed"), "{err}");
    let out = ok(&sync(&addr, "pull"));
    let report: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(report["received"], 1, "{report}");
    assert_eq!(report["reembedded"], 1, "{report}");
    drop(server);
    let out = ok(&rb(
        edge.path(),
        &["--agent", "team", "--json", "recall", "certificate expiry"],
    ));
    assert!(out.contains("Rotate TLS certificates"), "{out}");

    // With "reembed": true the hub takes the edge's text-only push.
    let (server, addr) = serve(hub.path(), config(true));
    let out = ok(&sync(&addr, "both"));
    let report: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(report["sent"], 1, "{report}");
    drop(server);
    let out = ok(&rb(
        hub.path(),
        &["--agent", "team", "--json", "recall", "pinning versions"],
    ));
    assert!(out.contains("Pin dependency versions"), "{out}");
}

/// Issue #15: `stats --all` lists every shard and reports an unreadable one in its row
/// instead of stopping at the first.
#[test]
fn stats_all_reports_unreadable_shards_inline() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    ok(&rb(
        root,
        &["--agent", "good", "remember", "a readable memory"],
    ));
    std::fs::write(root.join("broken.sqlite"), b"this is not a database").unwrap();
    ok(&rb(
        root,
        &["--agent", "zeta", "remember", "another readable memory"],
    ));
    let out = rb(root, &["stats", "--all", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let agents: Vec<&str> = rows.iter().map(|r| r["agent"].as_str().unwrap()).collect();
    assert_eq!(agents, ["broken", "good", "zeta"]);
    assert!(
        rows[0]["error"].as_str().unwrap().contains("broken"),
        "{rows:?}"
    );
    assert_eq!(rows[1]["records"], 1);
    assert_eq!(rows[2]["records"], 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 of 3 shards could not be read"));
}

/// Issue #15: commands that embed no text do not load the model. With the ONNX Runtime made
/// unloadable, `feedback`, `consolidate`, `get` and `stats` still work; `recall`, which embeds,
/// fails with the runtime named.
#[test]
fn commands_that_do_not_embed_never_load_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let traj = root.join("t.json");
    std::fs::write(
        &traj,
        r#"{"task": "rotate the logs", "steps": [{"action": "run logrotate", "observation": "rotated"}],
            "outcome": "success"}"#,
    )
    .unwrap();
    let report: Value =
        serde_json::from_str(&ok(&rb(root, &["--json", "learn", traj.to_str().unwrap()]))).unwrap();
    let item = report["items"][0]["id"].as_str().unwrap().to_owned();
    let no_runtime = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_reasonbank"))
            .arg("--root")
            .arg(root)
            .args(args)
            .env("ORT_DYLIB_PATH", root.join("no-such-libonnxruntime.so"))
            .output()
            .unwrap()
    };
    ok(&no_runtime(&["feedback", &item, "success"]));
    ok(&no_runtime(&["consolidate", "--dry-run"]));
    ok(&no_runtime(&["get", &item]));
    ok(&no_runtime(&["stats"]));
    let out = no_runtime(&["recall", "logs"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-libonnxruntime.so"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue #15: no command panics on a closed or full stdout, and a write that committed says so
/// when its output cannot be printed.
#[test]
fn closed_or_full_stdout_is_not_a_panic() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for i in 0..50 {
        rb(
            root,
            &["remember", &format!("memory number {i} about pipes")],
        );
    }
    // A reader that goes away (`reasonbank recall q | head -0`): a quiet, successful exit.
    let mut child = Command::new(env!("CARGO_BIN_EXE_reasonbank"))
        .arg("--root")
        .arg(root)
        .args(["recall", "pipes", "--k", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // A full disk (`remember x > /dev/full`): the memory is stored and the message says so.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_reasonbank"))
        .arg("--root")
        .arg(root)
        .args(["remember", "stored although its id could not be printed"])
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("committed") && err.contains("standard output"),
        "{err}"
    );
    let hits = ok(&rb(
        root,
        &["--json", "recall", "stored although its id", "--k", "1"],
    ));
    assert!(
        hits.contains("stored although its id could not be printed"),
        "{hits}"
    );
}
