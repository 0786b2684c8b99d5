//! Smoke run with `@modelcontextprotocol/inspector` in CLI mode.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support;

/// Runs the inspector CLI against the server with `args` after the server command line, and
/// returns its JSON output.
fn inspect(root: &std::path::Path, args: &[&str]) -> Value {
    let mut cmd = Command::new(support::inspector());
    cmd.arg("--cli");
    for (k, v) in support::model_env() {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    cmd.arg(support::binary())
        .arg("--root")
        .arg(root)
        .args(args);
    let out = support::output_with_deadline(&mut cmd, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "inspector failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("inspector output is not JSON ({e}):\n{stdout}\n{stderr}"))
}

#[test]
fn inspector_cli_lists_tools_and_calls_one() {
    let root = tempfile::tempdir().expect("temp root");
    let listed = inspect(root.path(), &["--method", "tools/list"]);
    let mut names: Vec<&str> = listed["tools"]
        .as_array()
        .expect("tools/list returns tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names.len(), 16, "{names:?}");
    assert!(names.contains(&"memory_recall") && names.contains(&"vector_search"));

    let remembered = inspect(
        root.path(),
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "memory_remember",
            "--tool-arg",
            "text=The build cache lives in /work/cache.",
        ],
    );
    assert_eq!(remembered["isError"], false, "{remembered}");
    let recalled = inspect(
        root.path(),
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "memory_recall",
            "--tool-arg",
            "query=where is the build cache",
        ],
    );
    assert_eq!(
        recalled["structuredContent"]["results"][0]["text"],
        "The build cache lives in /work/cache.",
        "{recalled}"
    );
}
