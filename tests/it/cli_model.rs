//! `--model` (env `REASONBANK_MODEL`): the CLI on the second local model, bge-small-en-v1.5;
//! a shard keeps its model, and the error for another one says which `--model` opens it (or,
//! for another agent's shard read beside one's own, whose shard it is).

use serde_json::Value;

use crate::cli::{ok, rb};

#[test]
fn issue_16_the_model_is_chosen_by_configuration_and_kept_by_the_shard() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let bge = ["--model", "bge-small-en-v1.5"];
    for text in [
        "Back off exponentially when the API answers 429 Too Many Requests.",
        "Paris is the capital of France.",
    ] {
        ok(&rb(root, &[&bge[..], &["remember", text]].concat()));
    }
    let out = ok(&rb(
        root,
        &[
            &bge[..],
            &["--json", "recall", "the server rate-limits us", "--k", "1"],
        ]
        .concat(),
    ));
    let hits: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(hits[0]["text"].as_str().unwrap().contains("429"), "{hits}");
    let stats: Value = serde_json::from_str(ok(&rb(root, &["--json", "stats"])).trim()).unwrap();
    assert_eq!(stats["model_id"], "bge-small-en-v1.5-int8", "{stats}");

    // The default model is refused on that shard, with the flag that opens it.
    let out = rb(root, &["recall", "rate limits"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("RB_MODEL_MISMATCH"), "{err}");
    assert!(
        err.contains("hint: that shard was written with --model bge-small-en-v1.5"),
        "{err}"
    );

    // Another agent on the default model cannot draw from it either; the hint names that
    // agent, since the flag that opens its shard would not open the reader's own.
    ok(&rb(
        root,
        &["--agent", "mini", "remember", "Paris is in France."],
    ));
    let out = rb(
        root,
        &[
            "--agent",
            "mini",
            "synthesize",
            "rate limits",
            "--shard",
            "default",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("RB_MODEL_MISMATCH"), "{err}");
    assert!(
        err.contains("hint: agent default's shard was written with --model bge-small-en-v1.5"),
        "{err}"
    );

    // An unknown model is a usage error naming the models there are.
    let out = rb(root, &["--model", "e5-large", "recall", "x"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bge-small-en-v1.5"), "{err}");

    // `models path` says which model's files it names.
    let files: Value = serde_json::from_str(
        ok(&rb(
            root,
            &[&bge[..], &["--json", "models", "path"]].concat(),
        ))
        .trim(),
    )
    .unwrap();
    assert_eq!(files["local_model"], "bge-small-en-v1.5", "{files}");
    assert!(
        files["model"]
            .as_str()
            .unwrap()
            .contains("bge-small-en-v1.5-int8"),
        "{files}"
    );
}
