//! The `reasonbank` binary's usage contract: the exit status of every command for every kind
//! of bad input (README's exit-status table), reads that never create, and `update`.

use serde_json::Value;

use crate::cli::{ok, rb};

/// Exit status by command and case (README's table): 2 for bad usage including bad values,
/// 3 for what does not exist, 1 for failures of the work; each with a message that names
/// what was wrong.
#[test]
fn exit_codes_by_command_and_case() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let id = ok(&rb(root, &["remember", "the one memory"]))
        .trim()
        .to_owned();
    let unknown = "01890000-0000-7000-8000-000000000001";
    let bad_lines = root.join("bad.jsonl");
    std::fs::write(&bad_lines, "{\"text\": \"fine\"}\n{\"nope\": 1}\n").unwrap();
    let bad_lines = bad_lines.to_str().unwrap();
    let no_steps = root.join("no-steps.json");
    std::fs::write(
        &no_steps,
        r#"{"task": "t", "steps": [], "outcome": "success"}"#,
    )
    .unwrap();
    let no_obs = root.join("no-obs.json");
    std::fs::write(&no_obs, r#"{"task": "t", "steps": [{"action": "a"}]}"#).unwrap();
    let no_outcome = root.join("no-outcome.json");
    std::fs::write(
        &no_outcome,
        r#"[{"task": "t", "steps": [{"action": "a", "observation": "o"}]}]"#,
    )
    .unwrap();
    let p = |f: &std::path::Path| f.to_str().unwrap().to_owned();
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        // Bad usage: unknown commands and flags, bad values.
        (vec!["no-such-command"], 2, "unrecognized subcommand"),
        (vec!["recall"], 2, "QUERY"),
        (vec!["recall", "x", "--budget", "3"], 2, "--budget"),
        (
            vec!["--agent", "../x", "remember", "hi"],
            2,
            "invalid shard id",
        ),
        (vec!["remember", "hi", "--meta", "{bad"], 2, "--meta"),
        (
            vec!["remember", "hi", "--meta", "[1]"],
            2,
            "not a JSON object",
        ),
        (vec!["remember", ""], 2, "RB_EMPTY_TEXT"),
        (
            vec!["recall", "x", "--filter", "{\"like\":1}"],
            2,
            "--filter",
        ),
        // The JSON parser's reason is in the message, not only "invalid filter JSON".
        (
            vec!["recall", "x", "--filter", "{\"eq\":{\"field\":\"a\"}}"],
            2,
            "missing field `value`",
        ),
        (vec!["recall", "x", "--mode", "fuzzy"], 2, "--mode"),
        (vec!["recall", "x", "--search", "psychic"], 2, "--search"),
        (vec!["recall", "x", "--k", "0"], 2, "--k"),
        (vec!["recall", "x", "--k", "many"], 2, "--k"),
        (vec!["recall", "x", "--threshold", "2"], 2, "[-1, 1]"),
        (vec!["recall", "x", "--shard", "a/b"], 2, "--shard"),
        (vec!["get", "not-a-uuid"], 2, "invalid record id"),
        (vec!["forget", "not-a-uuid"], 2, "invalid record id"),
        (
            vec!["update", "not-a-uuid", "--text", "x"],
            2,
            "invalid record id",
        ),
        (vec!["update", &id], 2, "--text, --meta"),
        (vec!["feedback", &id, "1.5"], 2, "reward in [0, 1]"),
        (vec!["feedback", "nope", "success"], 2, "invalid record id"),
        (vec!["patterns", "x", "--k", "0"], 2, "--k"),
        (vec!["synthesize", "x", "--budget", "0"], 2, "--budget"),
        (
            vec!["consolidate", "--prune-below-confidence", "3"],
            2,
            "[0, 1]",
        ),
        (vec!["import", bad_lines], 2, "line 2"),
        (vec!["sync", "--peer", "x:1", "--trust", "zz"], 2, "--trust"),
        (vec!["sync", "--direction", "sideways"], 2, "--direction"),
        // Not found: unknown ids, agents and roots; nothing is created.
        (vec!["get", unknown], 3, "not found"),
        (vec!["forget", unknown], 3, "not found"),
        (vec!["update", unknown, "--text", "x"], 3, "not found"),
        (vec!["feedback", unknown, "success"], 3, "RB_NOT_FOUND"),
        (
            vec!["--agent", "typo", "recall", "x"],
            3,
            "agent typo has no memories",
        ),
        (vec!["--agent", "typo", "stats"], 3, "agent typo"),
        (vec!["--agent", "typo", "patterns", "x"], 3, "agent typo"),
        (vec!["--agent", "typo", "synthesize", "x"], 3, "agent typo"),
        (vec!["--agent", "typo", "consolidate"], 3, "agent typo"),
        (vec!["--agent", "typo", "contradictions"], 3, "agent typo"),
        (vec!["--agent", "typo", "export"], 3, "agent typo"),
        (vec!["--agent", "typo", "get", unknown], 3, "agent typo"),
        (vec!["recall", "x", "--shard", "typo"], 3, "typo"),
        (
            vec!["sync", "keygen", "--show", "--out", "no-such-dir"],
            3,
            "sync keygen",
        ),
        // Failures of the work.
        (
            vec!["models", "path", "--cache-dir", "no-such-cache"],
            1,
            "RB_MODEL_MISSING",
        ),
    ];
    let learn_cases: Vec<(Vec<String>, i32, &str)> = vec![
        (vec!["learn".into(), p(&no_steps)], 2, "`steps` is empty"),
        (
            vec!["learn".into(), p(&no_obs)],
            2,
            "`steps[0].observation` is missing",
        ),
        (
            vec!["learn".into(), "--contrastive".into(), p(&no_outcome)],
            2,
            "attempt 1: has no `outcome`",
        ),
        (
            vec!["learn".into(), "no-such-file.json".into()],
            1,
            "no-such-file.json",
        ),
    ];
    let learn_cases: Vec<(Vec<&str>, i32, &str)> = learn_cases
        .iter()
        .map(|(a, c, n)| (a.iter().map(String::as_str).collect(), *c, *n))
        .collect();
    for (args, code, needle) in cases.iter().chain(&learn_cases) {
        let out = rb(root, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // Only the one agent exists: no read above created another.
    let names: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sqlite"))
        .collect();
    assert_eq!(names, vec!["default.sqlite".to_owned()]);
    // A root that does not exist is an error for reads (and is not created) ...
    let missing = root.join("no-such-root");
    for args in [
        vec!["recall", "x"],
        vec!["stats"],
        vec!["stats", "--all"],
        vec!["get", unknown],
    ] {
        let out = rb(&missing, &args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
        assert!(!missing.exists(), "{args:?} created the root");
    }
    // ... and writes create it, saying so.
    let out = rb(&missing, &["remember", "the first memory"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("created"));
    ok(&out);
    // Issue #15: negative numbers are option values, not flags.
    for args in [
        vec!["recall", "thresholds", "--threshold", "-0.5"],
        vec!["patterns", "thresholds", "--threshold", "-0.5"],
    ] {
        let out = rb(root, &args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `update` changes the text (re-embedded: recall finds the new words) and the metadata.
#[test]
fn update_changes_text_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let id = ok(&rb(root, &["remember", "bake bread at 250 degrees"]))
        .trim()
        .to_owned();
    ok(&rb(
        root,
        &[
            "update",
            &id,
            "--text",
            "retry flaky HTTP calls with backoff",
            "--meta",
            r#"{"topic":"http"}"#,
        ],
    ));
    let got: Value = serde_json::from_str(&ok(&rb(root, &["--json", "get", &id]))).unwrap();
    assert_eq!(got["text"], "retry flaky HTTP calls with backoff");
    assert_eq!(got["metadata"]["topic"], "http");
    let hits: Value = serde_json::from_str(&ok(&rb(
        root,
        &["--json", "recall", "the API timed out", "--mode", "vector"],
    )))
    .unwrap();
    assert_eq!(hits[0]["id"], id.as_str());
}
