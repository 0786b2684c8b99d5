//! Time in the CLI (issue #16 point 5): `remember --at`, new-memory `created_at` in `import`,
//! `recall --since/--until` in every form `units::instant` reads, and the errors for times
//! that are not times or windows that are empty.

use serde_json::Value;

use crate::cli::{ok, rb};

fn recall_ids(root: &std::path::Path, extra: &[&str]) -> Vec<(String, i64)> {
    let out = ok(&rb(
        root,
        &[&["--json", "recall", "the billing service"][..], extra].concat(),
    ));
    let hits: Value = serde_json::from_str(out.trim()).unwrap();
    hits.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["text"].as_str().unwrap().to_owned(),
                h["created_at"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn issue_16_memories_have_times_and_recall_takes_a_window() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    ok(&rb(
        root,
        &[
            "remember",
            "We chose Postgres for the billing service.",
            "--at",
            "2026-11-02",
        ],
    ));
    ok(&rb(
        root,
        &[
            "remember",
            "The billing service now pages the on-call engineer.",
        ],
    ));
    // An imported conversation keeps the time each line gives.
    let file = root.join("history.jsonl");
    std::fs::write(
        &file,
        "{\"text\": \"We moved the billing service to the new cluster.\", \"created_at\": \"2026-11-20\"}\n",
    )
    .unwrap();
    ok(&rb(root, &["import", file.to_str().unwrap()]));

    let nov_20 = 1_795_132_800_000; // 2026-11-20T00:00:00Z
    assert_eq!(recall_ids(root, &[]).len(), 3);
    assert_eq!(
        recall_ids(
            root,
            &[
                "--since",
                "2026-11-15",
                "--until",
                "2026-11-25T00:00:00+00:00"
            ]
        ),
        vec![(
            "We moved the billing service to the new cluster.".to_owned(),
            nov_20
        )]
    );
    let fresh = recall_ids(root, &["--since", "7d"]);
    assert_eq!(fresh.len(), 1, "{fresh:?}");
    assert!(fresh[0].0.contains("pages"), "{fresh:?}");
    assert_eq!(
        recall_ids(root, &["--until", &nov_20.to_string()])
            .into_iter()
            .map(|h| h.0)
            .collect::<Vec<_>>(),
        vec!["We chose Postgres for the billing service.".to_owned()]
    );
    // People read the time in the plain output of recall and get.
    let out = ok(&rb(root, &["recall", "billing", "--until", "2026-11-03"]));
    assert!(out.contains("created 2026-11-02T00:00:00Z"), "{out}");
    let id = out.split_whitespace().nth(1).unwrap().to_owned();
    let out = ok(&rb(root, &["get", &id]));
    assert!(out.contains("created   2026-11-02T00:00:00Z"), "{out}");
    assert!(out.contains("updated   20"), "{out}");

    // What is not a time is a usage error saying what a time looks like; so is an empty window.
    for (args, want) in [
        (vec!["recall", "x", "--since", "last week"], "RFC 3339"),
        (
            vec!["recall", "x", "--since", "2026-02-30"],
            "does not exist",
        ),
        (vec!["remember", "x", "--at", "1969-12-31"], "1970"),
        (
            vec![
                "recall",
                "x",
                "--since",
                "2026-12-01",
                "--until",
                "2026-11-01",
            ],
            "the window is empty",
        ),
    ] {
        let out = rb(root, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let bad = [
        r#"{"text": "x", "created_at": -5}"#,
        r#"{"text": "x", "created_at": "soon"}"#,
        r#"{"text": "x", "created_at": true}"#,
    ];
    std::fs::write(&file, bad.join("\n")).unwrap();
    let out = rb(root, &["import", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("line 1") && err.contains("created_at"),
        "{err}"
    );
    assert!(err.contains("line 2") && err.contains("RFC 3339"), "{err}");
    assert!(
        err.contains("line 3") && err.contains("Unix milliseconds, or a date"),
        "{err}"
    );
    assert_eq!(recall_ids(root, &[]).len(), 3);
}
