//! `export` and `import` as a backup (issue #14 point 2), through the real binary, real files
//! and the real model: a faithful round trip, idempotent re-import, last-writer-wins against
//! newer local edits, and invalid files that write nothing.

use std::path::Path;
use std::process::{Command, Output};

use crate::cli::{ok, rb};

use serde_json::{Value, json};

fn json_of(out: &Output) -> Value {
    serde_json::from_str(ok(out).trim()).unwrap()
}

/// An export file: its header and its rows.
fn read_export(path: &Path) -> (Value, Vec<Value>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap());
    let header = lines.next().expect("a header line");
    (header, lines.collect())
}

fn export(root: &Path, file: &Path) -> (Value, Vec<Value>) {
    ok(&rb(
        root,
        &["--json", "export", "--tombstones", file.to_str().unwrap()],
    ));
    read_export(file)
}

fn import(root: &Path, file: &Path) -> Value {
    json_of(&rb(root, &["--json", "import", file.to_str().unwrap()]))
}

const FIELDS: [&str; 10] = [
    "id",
    "kind",
    "namespace",
    "text",
    "metadata",
    "created_at",
    "updated_at",
    "version",
    "origin",
    "deleted",
];

fn assert_same_rows(a: &[Value], b: &[Value]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.as_object().unwrap().len(), FIELDS.len(), "{x}");
        for f in FIELDS {
            assert_eq!(x[f], y[f], "field {f} of {x} and {y}");
        }
    }
}

#[test]
fn issue_14_export_import_is_a_faithful_idempotent_backup() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let remember = |text: &str, extra: &[&str]| {
        let mut args = vec!["--json", "remember", text];
        args.extend_from_slice(extra);
        json_of(&rb(a.path(), &args))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let http = remember(
        "Retry flaky HTTP calls with exponential backoff.",
        &["--meta", r#"{"topic":"http","tries":3}"#],
    );
    remember(
        "Bake bread at 230 degrees.",
        &["--kind", "recipe", "--namespace", "kitchen"],
    );
    let gone = remember("A memory to forget.", &[]);
    ok(&rb(a.path(), &["forget", &gone]));
    // A learned item with feedback evidence in its metadata.
    let traj = a.path().join("t.json");
    std::fs::write(
        &traj,
        json!({"task": "deploy the web app to staging",
               "steps": [{"action": "run deploy.sh", "observation": "error: missing DATABASE_URL"},
                         {"action": "export DATABASE_URL and rerun deploy.sh", "observation": "deployed"}],
               "answer": "deployed", "outcome": "success"})
        .to_string(),
    )
    .unwrap();
    let learned = json_of(&rb(a.path(), &["--json", "learn", traj.to_str().unwrap()]));
    let item = learned["items"][0]["id"].as_str().unwrap().to_owned();
    ok(&rb(a.path(), &["feedback", &item, "success"]));

    let first = a.path().join("first.jsonl");
    let (header, rows) = export(a.path(), &first);
    assert_eq!(header["reasonbank_export"], 2);
    assert_eq!(header["agent"], "default");
    assert_eq!(header["tombstones"], true);
    assert!(rows.iter().any(|r| r["id"] == http.as_str()));
    let tomb = rows.iter().find(|r| r["id"] == gone.as_str()).unwrap();
    assert_eq!(
        (tomb["deleted"].clone(), tomb["text"].clone()),
        (json!(true), json!(""))
    );
    let pattern = rows.iter().find(|r| r["id"] == item.as_str()).unwrap();
    assert_eq!(pattern["metadata"]["successes"], 1.0, "{pattern}");

    // Into an empty root: the same rows, field by field.
    let summary = import(b.path(), &first);
    assert_eq!(summary["imported"], rows.len(), "{summary}");
    assert_eq!(
        summary["inserted"].as_u64().unwrap() + summary["deleted"].as_u64().unwrap(),
        rows.len() as u64
    );
    let second = b.path().join("second.jsonl");
    let (_, restored) = export(b.path(), &second);
    assert_same_rows(&rows, &restored);
    // The vectors were made again: recall finds the memory; the forgotten one stays forgotten.
    let hits = ok(&rb(
        b.path(),
        &["--json", "recall", "the API times out", "--k", "1"],
    ));
    assert!(hits.contains(&http), "{hits}");
    assert_eq!(rb(b.path(), &["get", &gone]).status.code(), Some(3));

    // Twice is once.
    let again = import(b.path(), &first);
    assert_eq!(
        (again["imported"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(rows.len() as u64)),
        "{again}"
    );
    let (_, after) = export(b.path(), &b.path().join("third.jsonl"));
    assert_same_rows(&rows, &after);

    // A newer local edit wins over the older backup.
    let edited = json_of(&rb(b.path(), &["--json", "feedback", &item, "failure"]));
    let again = import(b.path(), &first);
    assert_eq!(again["imported"], 0, "{again}");
    let now = json_of(&rb(b.path(), &["--json", "get", &item]));
    assert_eq!(now["metadata"]["failures"], 1.0, "{now}");
    assert_eq!(now["metadata"]["confidence"], edited["confidence"]);
}

#[test]
fn issue_14_invalid_lines_write_nothing_and_skip_invalid_imports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let file = root.join("in.jsonl");
    let mut lines: Vec<String> = (1..=300)
        .map(|i| json!({"text": format!("note number {i} about topic {}", i % 7)}).to_string())
        .collect();
    lines[4] = r#"{"text": "fine", "tags": ["unknown field"]}"#.into();
    lines[99] = r#"{"text": "bad kind", "kind": "Not A Kind"}"#.into();
    lines[299] = "not json".into();
    std::fs::write(&file, lines.join("\n")).unwrap();

    let out = rb(root, &["import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "invalid lines are bad input");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 of 300 lines"), "{err}");
    assert!(err.contains("line 5: unknown field `tags`"), "{err}");
    assert!(err.contains("line 100: ") && err.contains("kind"), "{err}");
    assert!(err.contains("line 300: not JSON: expected"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    // Not even the agent's shard was created.
    assert_eq!(rb(root, &["stats"]).status.code(), Some(3));

    let summary = json_of(&rb(
        root,
        &[
            "--json",
            "import",
            "--skip-invalid",
            "--batch",
            "64",
            file.to_str().unwrap(),
        ],
    ));
    assert_eq!(summary["imported"], 297, "{summary}");
    assert_eq!(summary["new"], 297);
    let skipped: Vec<u64> = summary["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["line"].as_u64().unwrap())
        .collect();
    assert_eq!(skipped, [5, 100, 300]);
    assert_eq!(json_of(&rb(root, &["--json", "stats"]))["records"], 297);

    // Only the first 20 bad lines are listed.
    let many = root.join("many.jsonl");
    std::fs::write(&many, "{}\n".repeat(25)).unwrap();
    let out = rb(root, &["import", many.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 20: missing field `text`"), "{err}");
    assert!(!err.contains("line 21:"), "{err}");
    assert!(err.contains("and 5 more"), "{err}");
}

/// Exports of earlier builds (no header, no stamps) still import, keeping ids and times, and
/// importing them twice changes nothing.
#[test]
fn issue_14_format_1_exports_still_import() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let file = root.join("old.jsonl");
    let id = "01890000-0000-7000-8000-000000000001";
    let row = json!({"id": id, "kind": "memory", "namespace": "", "text": "Cache the parsed config.",
                     "metadata": {"topic": "perf"}, "created_at": 1_700_000_000_000_i64,
                     "updated_at": 1_700_000_000_500_i64});
    // With a byte order mark, as some editors save it.
    std::fs::write(&file, format!("\u{feff}{row}")).unwrap();
    assert_eq!(import(root, &file)["inserted"], 1);
    let got = json_of(&rb(root, &["--json", "get", id]));
    assert_eq!(got["created_at"], 1_700_000_000_000_i64);
    assert_eq!(got["metadata"]["topic"], "perf");
    assert_eq!(got["origin"], "export-v1");
    assert_eq!(import(root, &file)["unchanged"], 1);

    // A stamp without an id, or half a stamp, is refused with the reason.
    std::fs::write(
        &file,
        format!(
            "{}\n{}\n",
            json!({"text": "x", "version": 5}),
            json!({"id": id, "text": "x", "created_at": 1, "updated_at": 1, "version": 5})
        ),
    )
    .unwrap();
    let out = rb(root, &["import", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 1: `version` is kept only for a row with an `id`"),
        "{err}"
    );
    assert!(
        err.contains("line 2: a line with an `id` needs both `version` and `origin`"),
        "{err}"
    );
}

/// Runs `reasonbank --root ROOT import --batch 100 FILE --json` with writes limited to 512 KiB
/// per file (`ulimit -f`, with SIGXFSZ ignored so a write past it fails with EFBIG, as on a
/// full disk).
#[cfg(unix)]
fn import_on_a_small_disk(root: &Path, file: &Path) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 1024; exec "$0" --root "$1" import --batch 100 "$2""#)
        .arg(env!("CARGO_BIN_EXE_reasonbank"))
        .arg(root)
        .arg(file)
        .output()
        .expect("run sh")
}

#[cfg(unix)]
#[test]
fn issue_14_a_failure_after_validation_says_what_was_written_and_how_to_go_on() {
    let dir = tempfile::tempdir().unwrap();
    // The model is fetched before writes are limited.
    ok(&rb(dir.path(), &["models", "fetch"]));
    let rows: Vec<String> = (1..=600_u64)
        .map(|i| {
            json!({"id": format!("01890000-0000-7000-8000-{i:012x}"), "kind": "memory",
                   "namespace": "", "text": format!("note {i} on topic {} with some filler", i % 13),
                   "metadata": {"n": i}, "created_at": 1_700_000_000_000_u64 + i,
                   "updated_at": 1_700_000_000_000_u64 + i,
                   "version": (1_700_000_000_000_u64 + i) << 16, "origin": "peer-a",
                   "deleted": false})
            .to_string()
        })
        .collect();
    let file = dir.path().join("rows.jsonl");
    std::fs::write(&file, rows.join("\n")).unwrap();
    let root = dir.path().join("rows");
    let out = import_on_a_small_disk(&root, &file);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rerunning the same import is safe"), "{err}");
    let written: u64 = err
        .split(" records were written")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        err.contains(&format!("import stopped at line {}", written + 1)),
        "{err}"
    );
    assert!(
        (100..600).contains(&written) && written.is_multiple_of(100),
        "{err}"
    );
    assert_eq!(
        json_of(&rb(&root, &["--json", "stats"]))["records"],
        written
    );
    // The rerun, with room, completes it.
    let again = import(&root, &file);
    assert_eq!(again["imported"], 600 - written, "{again}");
    assert_eq!(again["unchanged"], written, "{again}");

    // New memories would be imported twice by a rerun: the message says where to resume.
    let texts: Vec<String> = (1..=600)
        .map(|i| json!({"text": format!("new note {i} with some filler words")}).to_string())
        .collect();
    std::fs::write(&file, texts.join("\n")).unwrap();
    let out = import_on_a_small_disk(&dir.path().join("new"), &file);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("would be imported again, so resume from line"),
        "{err}"
    );
    assert!(err.contains("| reasonbank import -"), "{err}");
}
