//! `export` and `import`: a faithful, idempotent backup of one agent as JSONL.
//!
//! The format is `docs/FORMAT.md`'s "Export format": a header line, then one line per row
//! with its id and stamp. Import validates every line before its first write; lines with an id
//! are applied last-writer-wins through `Shard::apply_changes` (the path sync uses), re-embedded
//! locally, so importing a file twice changes nothing and an older backup never overwrites a
//! newer local edit; lines without an id are new memories, as `remember` makes them.

mod line;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::AgentMemory;
use crate::embedders::EmbedKind;
use crate::memory::{ApplyReport, Embedding, NewRecord, RecordId, Shard};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use line::{Item, parse_line};

/// The export format this build writes (the header's `reasonbank_export`). Format 1 is the
/// header-less export of earlier builds (ids and times, no stamps); it is still read.
pub const EXPORT_FORMAT: u32 = 2;

/// The `origin` given to rows of a format 1 export, which carried no stamp. Their `version`
/// is `updated_at << 16`, at or below the stamp the row really had, so a row still held
/// anywhere with its real stamp wins over its old backup.
pub const LEGACY_ORIGIN: &str = "export-v1";

/// How many invalid lines an error lists.
const LISTED_ERRORS: usize = 20;

/// The first line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    /// The format version, [`EXPORT_FORMAT`].
    reasonbank_export: u32,
    /// The agent exported.
    agent: String,
    /// Model of the shard's vectors (the export has none; import re-embeds).
    model_id: String,
    /// Its dimensions.
    dimensions: usize,
    /// When the export started, Unix milliseconds.
    exported_at: i64,
    /// Whether tombstones are included.
    tombstones: bool,
}

/// One row as `export` writes it: every `records` column but the vector, `rowid` and `seq`.
#[derive(Serialize)]
struct RowOut<'a> {
    id: RecordId,
    kind: &'a str,
    namespace: &'a str,
    text: &'a str,
    metadata: &'a Map<String, Value>,
    created_at: i64,
    updated_at: i64,
    version: u64,
    origin: &'a str,
    deleted: bool,
}

/// `--batch` lines of one kind (new memories or rows with an id), committed in one
/// transaction; `first_line` is the 1-based line number of its first item.
struct Batch {
    first_line: usize,
    items: Vec<Item>,
}

/// Some lines of an import file are invalid; nothing was written.
#[derive(Debug)]
pub struct InvalidLines {
    file: PathBuf,
    lines: usize,
    bad: Vec<(usize, String)>,
}

impl std::fmt::Display for InvalidLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} lines of {} are invalid; nothing was imported \
             (--skip-invalid imports the valid lines):",
            self.bad.len(),
            self.lines,
            self.file.display()
        )?;
        list_lines(f, &self.bad)
    }
}

impl std::error::Error for InvalidLines {}

fn list_lines(f: &mut impl std::fmt::Write, bad: &[(usize, String)]) -> std::fmt::Result {
    for (n, why) in bad.iter().take(LISTED_ERRORS) {
        write!(f, "\n  line {n}: {why}")?;
    }
    if bad.len() > LISTED_ERRORS {
        write!(f, "\n  ... and {} more", bad.len() - LISTED_ERRORS)?;
    }
    Ok(())
}

/// A write failed after validation: what is in, and how to go on.
#[derive(Debug)]
pub struct Interrupted {
    written: usize,
    next_line: usize,
    /// Lines before `next_line` without an id: a rerun of the whole file imports them again.
    new_before: usize,
    file: PathBuf,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "import stopped at line {}: {} records were written (every line before it), none \
             from line {} on",
            self.next_line, self.written, self.next_line
        )?;
        if self.new_before == 0 {
            write!(
                f,
                "; rerunning the same import is safe (rows already in are skipped by \
                 last-writer-wins)"
            )
        } else {
            write!(
                f,
                "; {} of the lines before it have no id and would be imported again, so resume \
                 from line {}",
                self.new_before, self.next_line,
            )?;
            if self.file.as_os_str() == "-" {
                write!(f, " of the input")
            } else {
                write!(
                    f,
                    ": tail -n +{} {} | reasonbank import -",
                    self.next_line,
                    self.file.display()
                )
            }
        }
    }
}

impl std::error::Error for Interrupted {}

/// What an import did, printed as the `--json` summary.
#[derive(Debug, Default, Serialize)]
struct Summary {
    /// Record lines read (headers and blank lines not counted).
    lines: usize,
    /// Rows written: `new + inserted + updated + deleted`.
    imported: usize,
    /// Lines without an id, stored as new memories.
    new: usize,
    /// Lines with an id this shard did not hold.
    inserted: usize,
    /// Lines with an id that replaced an older row.
    updated: usize,
    /// Tombstones that replaced an older row.
    deleted: usize,
    /// Lines with an id not newer than the row held (already imported, or edited since).
    unchanged: usize,
    /// Invalid lines left out with `--skip-invalid`.
    skipped: Vec<Skipped>,
    /// Wall time in milliseconds.
    elapsed_ms: f64,
}

#[derive(Debug, Serialize)]
struct Skipped {
    line: usize,
    error: String,
}

/// Writes the agent's shard to `file` (standard output if `None`): a header, then every live
/// row, and tombstones too with `tombstones`, in commit order. A file is written beside its
/// path and renamed over it when complete, so a failed export never clobbers a good backup.
pub fn export(
    shard: &Shard,
    agent: &str,
    file: Option<&Path>,
    tombstones: bool,
    json_out: bool,
) -> anyhow::Result<()> {
    let stats = shard.stats()?;
    let header = Header {
        reasonbank_export: EXPORT_FORMAT,
        agent: agent.to_owned(),
        model_id: stats.model_id,
        dimensions: stats.dimensions,
        exported_at: crate::units::now_ms(),
        tombstones,
    };
    let tmp = file.map(|p| {
        let mut name = p.file_name().unwrap_or_default().to_owned();
        name.push(format!(".{}.tmp", std::process::id()));
        p.with_file_name(name)
    });
    let mut out: Box<dyn Write> = match &tmp {
        Some(t) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(t).with_context(|| format!("creating {}", t.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let written = write_rows(shard, &header, &mut *out).and_then(|n| {
        out.flush()?;
        drop(out);
        Ok(n)
    });
    let (live, dead) = match (written, &tmp, file) {
        (Ok(n), Some(t), Some(p)) => {
            std::fs::File::open(t)
                .and_then(|f| f.sync_all())
                .and_then(|()| std::fs::rename(t, p))
                .with_context(|| format!("moving {} to {}", t.display(), p.display()))?;
            n
        }
        (Ok(n), _, _) => n,
        (Err(e), Some(t), _) => {
            let _ = std::fs::remove_file(t);
            return Err(e);
        }
        (Err(e), None, _) => return Err(e),
    };
    if let Some(p) = file {
        if json_out {
            out!(
                "{}",
                json!({ "exported": live, "tombstones": dead, "file": p })
            );
        } else {
            out!(
                "exported {live} memories{} of agent {agent} to {}",
                if tombstones {
                    format!(" and {dead} tombstones")
                } else {
                    String::new()
                },
                p.display()
            );
        }
    }
    Ok(())
}

/// Writes the header and the rows; returns (live rows, tombstones) written.
fn write_rows(shard: &Shard, header: &Header, out: &mut dyn Write) -> anyhow::Result<(u64, u64)> {
    serde_json::to_writer(&mut *out, header)?;
    out.write_all(b"\n")?;
    let (mut live, mut dead) = (0, 0);
    let mut after = 0;
    loop {
        let page = shard.changes_since(after, 1000)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for c in &page {
            if c.deleted && !header.tombstones {
                continue;
            }
            // Stored metadata is a JSON object the shard checked when it was written; as a
            // `Map` it is written with sorted keys, as the shard stores it.
            let metadata: Map<String, Value> = serde_json::from_str(&c.metadata)
                .with_context(|| format!("row {}: stored metadata is not a JSON object", c.id))?;
            let row = RowOut {
                id: c.id,
                kind: &c.kind,
                namespace: &c.namespace,
                text: &c.text,
                metadata: &metadata,
                created_at: c.created_at,
                updated_at: c.updated_at,
                version: c.version,
                origin: &c.origin,
                deleted: c.deleted,
            };
            serde_json::to_writer(&mut *out, &row)?;
            out.write_all(b"\n")?;
            if c.deleted {
                dead += 1;
            } else {
                live += 1;
            }
        }
    }
    Ok((live, dead))
}

/// An import file, read and checked: what [`import`] writes.
pub struct Plan {
    file: PathBuf,
    batches: Vec<Batch>,
    summary: Summary,
    started: Instant,
}

impl Plan {
    /// Reads and checks every line of `file` (`-` for standard input), before anything is
    /// opened or written, and groups the valid lines into batches of at most `batch`.
    ///
    /// # Errors
    /// [`InvalidLines`] if a line is invalid, unless `skip_invalid` (then the invalid lines
    /// are reported on standard error, or in the `--json` summary); reading the file.
    pub fn read(
        file: &Path,
        batch: usize,
        skip_invalid: bool,
        json_out: bool,
    ) -> anyhow::Result<Plan> {
        let started = Instant::now();
        let text = super::read_input(file)?;
        // Editors on some systems start a UTF-8 file with a byte order mark.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let (batches, summary) = check_lines(file, text, batch, skip_invalid, json_out)?;
        Ok(Plan {
            file: file.to_owned(),
            batches,
            summary,
            started,
        })
    }
}

fn check_lines(
    file: &Path,
    text: &str,
    batch: usize,
    skip_invalid: bool,
    json_out: bool,
) -> anyhow::Result<(Vec<Batch>, Summary)> {
    let mut summary = Summary::default();
    let mut bad = Vec::new();
    let mut batches: Vec<Batch> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(None) => {}
            Ok(Some(item)) => {
                summary.lines += 1;
                let same_kind = batches.last().is_some_and(|b| {
                    b.items.len() < batch.max(1)
                        && matches!(
                            (&b.items[0], &item),
                            (Item::New(_), Item::New(_)) | (Item::Row(_), Item::Row(_))
                        )
                });
                match batches.last_mut() {
                    Some(b) if same_kind => b.items.push(item),
                    _ => batches.push(Batch {
                        first_line: i + 1,
                        items: vec![item],
                    }),
                }
            }
            Err(why) => {
                summary.lines += 1;
                bad.push((i + 1, why));
            }
        }
    }
    if !bad.is_empty() && !skip_invalid {
        return Err(InvalidLines {
            file: file.to_owned(),
            lines: summary.lines,
            bad,
        }
        .into());
    }
    if !bad.is_empty() && !json_out {
        let mut msg = format!("skipping {} invalid lines:", bad.len());
        // Writing to a `String` cannot fail.
        let _ = list_lines(&mut msg, &bad);
        eprintln!("{msg}");
    }
    summary.skipped = bad
        .into_iter()
        .map(|(line, error)| Skipped { line, error })
        .collect();
    Ok((batches, summary))
}

/// Writes a checked file into `mem`'s shard; see the module docs.
///
/// # Errors
/// [`Interrupted`], as the context of the cause, when a write fails: it says how many
/// records are in and how to go on.
pub async fn import(mem: &AgentMemory, plan: Plan, json_out: bool) -> anyhow::Result<()> {
    let Plan {
        file,
        batches,
        mut summary,
        started,
    } = plan;
    let file = file.as_path();
    let total: usize = batches.iter().map(|b| b.items.len()).sum();
    let mut progress = Progress::new(total);
    let shard = Arc::clone(mem.shard());
    // The batch being committed: (first line, new memories in it, its handle).
    let mut inflight: Option<(usize, usize, tokio::task::JoinHandle<_>)> = None;
    // Lines without an id already written: a rerun of the whole file would repeat them.
    let mut new_written = 0;
    let interrupted = |written, next_line, new_before| Interrupted {
        written,
        next_line,
        new_before,
        file: file.to_owned(),
    };
    let mut batches = batches.into_iter();
    loop {
        let next = batches.next();
        // Embed the next batch while the previous one commits on the blocking pool.
        let vectors = match &next {
            Some(b) => Some(embed(mem, &b.items).await),
            None => None,
        };
        if let Some((first_line, new, h)) = inflight.take() {
            let outcome = settle(h)
                .await
                .with_context(|| interrupted(summary.imported, first_line, new_written))?;
            new_written += new;
            progress.advance(summary.add(&outcome));
        }
        let (Some(b), Some(vectors)) = (next, vectors) else {
            break;
        };
        let vectors =
            vectors.with_context(|| interrupted(summary.imported, b.first_line, new_written))?;
        let new = match b.items.first() {
            Some(Item::New(_)) => b.items.len(),
            _ => 0,
        };
        let shard = Arc::clone(&shard);
        inflight = Some((
            b.first_line,
            new,
            tokio::task::spawn_blocking(move || commit(&shard, b.items, vectors)),
        ));
    }
    progress.finish();
    summary.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    if json_out {
        out!("{}", serde_json::to_string(&summary)?);
    } else {
        out!(
            "imported {} of {} lines into agent {} ({} new, {} inserted, {} updated, {} deleted, \
             {} unchanged, {} invalid skipped)",
            summary.imported,
            summary.lines,
            mem.agent(),
            summary.new,
            summary.inserted,
            summary.updated,
            summary.deleted,
            summary.unchanged,
            summary.skipped.len()
        );
    }
    Ok(())
}

/// What one committed batch did.
enum Outcome {
    New(usize),
    Rows(ApplyReport),
}

impl Summary {
    /// Counts a committed batch; returns its number of lines.
    fn add(&mut self, o: &Outcome) -> usize {
        match o {
            Outcome::New(n) => {
                self.new += n;
                self.imported += n;
                *n
            }
            Outcome::Rows(r) => {
                self.inserted += r.inserted;
                self.updated += r.updated;
                self.deleted += r.deleted;
                self.unchanged += r.skipped;
                self.imported += r.applied();
                r.applied() + r.skipped
            }
        }
    }
}

async fn settle(h: tokio::task::JoinHandle<anyhow::Result<Outcome>>) -> anyhow::Result<Outcome> {
    h.await.context("the commit task failed")?
}

/// The vectors of the batch's live items, in order.
async fn embed(mem: &AgentMemory, items: &[Item]) -> anyhow::Result<Vec<Embedding>> {
    let texts: Vec<String> = items
        .iter()
        .filter_map(Item::text)
        .map(str::to_owned)
        .collect();
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let vectors = mem
        .embedder()
        .embed(&texts, EmbedKind::Document)
        .await
        .context("embedding the texts")?;
    anyhow::ensure!(
        vectors.len() == texts.len(),
        "the embedder returned {} vectors for {} texts",
        vectors.len(),
        texts.len()
    );
    vectors
        .into_iter()
        .map(|v| Embedding::new(v).context("the embedder returned an invalid vector"))
        .collect()
}

/// Writes one batch (all new memories, or all rows with an id) in one transaction.
fn commit(shard: &Shard, items: Vec<Item>, vectors: Vec<Embedding>) -> anyhow::Result<Outcome> {
    let mut vectors = vectors.into_iter();
    let mut new = Vec::new();
    let mut rows = Vec::new();
    for item in items {
        match item {
            Item::New(m) => {
                // `embed` checked it made one vector per item with text.
                let v = vectors.next().context("a vector is missing")?;
                let mut r = NewRecord::new(m.text, v);
                r.kind(m.kind).namespace(m.namespace).metadata(m.metadata);
                if let Some(t) = m.created_at {
                    r.created_at(t);
                }
                new.push(r);
            }
            Item::Row(mut c) => {
                if !c.deleted {
                    c.embedding = vectors.next();
                }
                rows.push(c);
            }
        }
    }
    if rows.is_empty() {
        Ok(Outcome::New(shard.insert_batch(&new)?.len()))
    } else {
        Ok(Outcome::Rows(shard.apply_changes(&rows, None)?))
    }
}

/// Progress on standard error when it is a terminal: count, rate and time left.
struct Progress {
    total: usize,
    done: usize,
    started: Instant,
    shown: bool,
}

impl Progress {
    fn new(total: usize) -> Self {
        Progress {
            total,
            done: 0,
            started: Instant::now(),
            shown: std::io::stderr().is_terminal(),
        }
    }

    fn advance(&mut self, n: usize) {
        self.done += n;
        if !self.shown {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.done as f64 / secs;
        let left = self.total.saturating_sub(self.done) as f64 / rate.max(1e-9);
        let pct = self.done * 100 / self.total.max(1);
        eprint!(
            "\r[{:<25}] {}/{} ({pct}%)  {rate:.0}/s  ETA {}   ",
            "#".repeat(pct / 4),
            self.done,
            self.total,
            eta(Duration::from_secs_f64(left.min(1e7)))
        );
        let _ = std::io::stderr().flush();
    }

    fn finish(&self) {
        if self.shown && self.done > 0 {
            eprintln!();
        }
    }
}

fn eta(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}
