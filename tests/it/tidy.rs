//! Tidy checks of the whole repository (in the spirit of rust-analyzer's `tidy.rs`): the crate
//! graph points one way, every Rust file opens with a `//!` header, `unsafe` stays in the
//! modules `docs/ARCHITECTURE.md` lists, and long files are long for a written reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest a source file may be without an entry in [`LONG_FILES`].
const MAX_LINES: usize = 800;

/// Files allowed over [`MAX_LINES`], each with the reason. Keep it short.
const LONG_FILES: &[(&str, &str)] = &[
    (
        "sync/src/proto.rs",
        "the sync protocol as one pure state machine: its messages, states and transitions \
         read together, and the simulator tests it as a unit",
    ),
    (
        "benches/src/vectors.rs",
        "one benchmark command: set-up, the sqlite-vec peer, every search mode and the report",
    ),
];

/// Which workspace crates each crate may depend on (normal and build dependencies): the
/// graph of `docs/ARCHITECTURE.md`. `memory` and `embedders` at the bottom, `reasoning` and
/// `sync` above them and not on each other, the facade above, front ends on top.
const ALLOWED_DEPS: &[(&str, &[&str])] = &[
    ("reasonbank-memory", &[]),
    ("reasonbank-embedders", &[]),
    (
        "reasonbank-reasoning",
        &["reasonbank-memory", "reasonbank-embedders"],
    ),
    ("reasonbank-sync", &["reasonbank-memory"]),
    (
        "reasonbank",
        &[
            "reasonbank-memory",
            "reasonbank-embedders",
            "reasonbank-reasoning",
            "reasonbank-sync",
        ],
    ),
    ("reasonbank-mcp", &["reasonbank"]),
    ("reasonbank-node", &["reasonbank", "reasonbank-mcp"]),
    ("reasonbank-python", &["reasonbank", "reasonbank-mcp"]),
    ("reasonbank-bench", &["reasonbank"]),
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every tracked-looking `.rs` file: the repository minus build outputs, dependencies and the
/// separate fuzz workspace's generated corpus.
fn rust_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            if p.is_dir() {
                if !name.starts_with('.')
                    && !["target", "node_modules", "corpus", "artifacts"].contains(&&*name)
                {
                    walk(&p, out);
                }
            } else if name.ends_with(".rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo(), &mut out);
    out.sort();
    assert!(out.len() > 50, "found only {} Rust files", out.len());
    out
}

fn rel(p: &Path) -> String {
    p.strip_prefix(repo())
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let missing: Vec<String> = rust_files()
        .iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|p| rel(p))
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` header: {missing:?}"
    );
}

#[test]
fn long_files_have_a_reason() {
    let allowed: BTreeMap<&str, &str> = LONG_FILES.iter().copied().collect();
    let mut too_long = Vec::new();
    let mut seen = BTreeSet::new();
    for p in rust_files() {
        let r = rel(&p);
        let lines = std::fs::read_to_string(&p)
            .unwrap_or_default()
            .lines()
            .count();
        if lines > MAX_LINES {
            seen.insert(r.clone());
            if !allowed.contains_key(r.as_str()) {
                too_long.push(format!("{r} ({lines} lines)"));
            }
        }
    }
    assert!(
        too_long.is_empty(),
        "files over {MAX_LINES} lines without an entry in LONG_FILES: {too_long:?}"
    );
    let stale: Vec<&str> = allowed
        .keys()
        .filter(|f| !seen.contains(**f))
        .copied()
        .collect();
    assert!(
        stale.is_empty(),
        "LONG_FILES entries no longer needed (remove them): {stale:?}"
    );
}

/// The paths in backticks of ARCHITECTURE.md's paragraph that starts with the unsafe marker.
fn unsafe_allowed() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(repo().join("docs/ARCHITECTURE.md")).unwrap();
    let marker = "**Architecture Invariant:** `unsafe` lives only in";
    let start = doc
        .find(marker)
        .expect("ARCHITECTURE.md lists where `unsafe` lives");
    let para = doc[start..].split("\n\n").next().unwrap_or_default();
    para.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.ends_with(".rs") || s.ends_with('/'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn unsafe_stays_in_the_listed_modules() {
    let allowed = unsafe_allowed();
    assert!(!allowed.is_empty());
    let mut outside = Vec::new();
    for p in rust_files() {
        let r = rel(&p);
        if r.starts_with("tests/it/tidy.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let uses = text.lines().any(|l| {
            let code = l.split("//").next().unwrap_or_default();
            code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|w| w == "unsafe")
        });
        let listed = allowed
            .iter()
            .any(|a| r == *a || (a.ends_with('/') && r.starts_with(a.as_str())));
        if uses && !listed {
            outside.push(r);
        }
    }
    assert!(
        outside.is_empty(),
        "`unsafe` outside the modules ARCHITECTURE.md lists ({allowed:?}): {outside:?}"
    );
}

/// The `reasonbank*` crates named in a manifest's `[dependencies]`, `[build-dependencies]` and
/// target-specific dependency tables.
fn workspace_deps(manifest: &str) -> (String, BTreeSet<String>) {
    let mut name = String::new();
    let mut deps = BTreeSet::new();
    let mut section = String::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_owned();
            continue;
        }
        if section == "package" && line.starts_with("name") {
            name = line.split('"').nth(1).unwrap_or_default().to_owned();
        }
        let is_deps = section == "dependencies"
            || section == "build-dependencies"
            || (section.starts_with("target.") && section.ends_with(".dependencies"));
        if is_deps && line.starts_with("reasonbank") {
            let dep = line
                .split(|c: char| c == '=' || c == '.' || c.is_whitespace())
                .next()
                .unwrap_or_default();
            deps.insert(dep.to_owned());
        }
    }
    (name, deps)
}

#[test]
fn crates_depend_only_downward() {
    let root = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let members: Vec<String> = root
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("workspace members")
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED_DEPS
        .iter()
        .map(|(c, d)| (*c, d.iter().copied().collect()))
        .collect();
    let mut wrong = Vec::new();
    for m in &members {
        let manifest = std::fs::read_to_string(repo().join(m).join("Cargo.toml")).unwrap();
        let (name, deps) = workspace_deps(&manifest);
        let Some(ok) = allowed.get(name.as_str()) else {
            wrong.push(format!("{m}: crate {name:?} has no entry in ALLOWED_DEPS"));
            continue;
        };
        for d in deps {
            if !ok.contains(d.as_str()) {
                wrong.push(format!("{name} depends on {d}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies against the graph: {wrong:?}"
    );
}
