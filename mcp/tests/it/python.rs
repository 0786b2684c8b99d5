//! The PyPI `mcp` client drives the server through every tool and every error case.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support;

const EXPECTED_TOOLS: [&str; 16] = [
    "memory_consolidate",
    "memory_contradictions",
    "memory_feedback",
    "memory_find_patterns",
    "memory_forget",
    "memory_get",
    "memory_learn",
    "memory_recall",
    "memory_remember",
    "memory_synthesize_context",
    "memory_update",
    "vector_insert",
    "vector_search",
    "vector_shard_create",
    "vector_shard_stats",
    "vector_sync_shard",
];

#[test]
fn pypi_mcp_client_calls_every_tool_and_gets_tool_errors() {
    let python = support::mcp_python();
    let root = tempfile::tempdir().expect("temp root");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp_client.py");
    let out = support::output_with_deadline(
        Command::new(&python)
            .arg(script)
            .arg(support::binary())
            .arg(root.path())
            .arg(env!("CARGO_PKG_VERSION")),
        Duration::from_secs(300),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "mcp_client.py failed ({}):\n{stderr}",
        out.status
    );
    assert!(
        !stderr.contains("panicked"),
        "the server panicked:\n{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no JSON summary ({e}) in:\n{stdout}"));

    assert_eq!(summary["ok"], true);
    assert_eq!(summary["server"]["name"], "reasonbank-mcp");
    assert_eq!(summary["server"]["version"], env!("CARGO_PKG_VERSION"));
    let tools: Vec<&str> = summary["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        tools, EXPECTED_TOOLS,
        "exactly the tools that are implemented"
    );
    for t in EXPECTED_TOOLS {
        assert_eq!(summary["calls"][t], "ok", "tool {t} was called and checked");
    }
    // Hints clients use to decide what needs the user's confirmation.
    assert_eq!(
        summary["read_only"],
        serde_json::json!([
            "memory_contradictions",
            "memory_get",
            "memory_recall",
            "vector_search",
            "vector_shard_stats"
        ])
    );
    assert_eq!(
        summary["destructive"],
        serde_json::json!(["memory_consolidate", "memory_forget", "memory_update"])
    );
    // Required arguments as advertised in the schemas.
    let required = |t: &str| summary["schemas"][t]["required"].clone();
    assert_eq!(required("memory_remember"), serde_json::json!(["text"]));
    assert_eq!(
        required("vector_insert"),
        serde_json::json!(["shard", "vector"])
    );
    assert_eq!(
        required("vector_shard_create"),
        serde_json::json!(["dimensions", "model_id", "shard"])
    );

    let errors = summary["errors"].as_object().expect("errors");
    for case in [
        "missing_field",
        "wrong_type",
        "unknown_shard",
        "wrong_dimensions",
        "nan",
        "bad_filter",
        "path_traversal",
        "unknown_agent",
    ] {
        let msg = errors
            .get(case)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("error case {case} missing"));
        assert!(!msg.is_empty(), "error case {case} has a message");
    }
    assert_eq!(summary["alive_after_errors"], true);
    assert_eq!(
        summary["rerank"], "ok",
        "--rerank-url and memory_recall's rerank"
    );
    assert_eq!(summary["model"], "ok", "--model bge-small-en-v1.5");
}
