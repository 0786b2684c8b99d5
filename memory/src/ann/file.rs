//! The index file `<shard file>.hnsw`: its header (see `docs/FORMAT.md`), the atomic save,
//! the checks at open, and the memory mapping whose graph is searched in place.

use std::io::Write;
use std::path::{Path, PathBuf};

use usearch::{Index, MetricKind, ScalarKind};

use super::{Graph, IndexCore, IndexError, IndexFileError, context_count, new_index};

/// A graph read from the index file, its stamp and the recall estimate saved with it, or why
/// the file cannot be used.
pub(super) type FileRead = Result<(Graph, i64, Option<f32>), IndexFileError>;

/// Suffix appended to the shard file's name for its index file.
pub const INDEX_SUFFIX: &str = ".hnsw";

const MAGIC: &[u8; 8] = b"RBKHNSW\x01";
/// Version 2 stores the graph's recall estimate at bytes 124..128 (covered by the header
/// CRC); version 1 files (zero there, outside the CRC) are still read.
const FORMAT_VERSION: u32 = 2;
pub(super) const HEADER_LEN: usize = 128;
/// Scalar kind code of the stored vectors: 1 = IEEE binary16.
const SCALAR_F16: u32 = 1;
const MAX_ORIGIN: usize = 64;

fn crc32(bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(bytes);
    h.finalize()
}

/// The header checksum of a file of format `version`: bytes 0..120, and from version 2 also
/// bytes 124..128 (the recall estimate).
fn header_crc(h: &[u8], version: u32) -> u32 {
    let mut c = crc32fast::Hasher::new();
    c.update(&h[..120]);
    if version >= 2 {
        c.update(&h[124..128]);
    }
    c.finalize()
}

/// CRC-32 of `bytes`, the same value as [`crc32`], computed in chunks on every core and
/// combined (checking a 1M-row index file is ~1 GB: half the time on two cores).
fn crc32_parallel(bytes: &[u8]) -> u32 {
    const MIN_CHUNK: usize = 16 << 20;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = bytes.len().div_ceil(threads).max(MIN_CHUNK);
    if chunk >= bytes.len() {
        return crc32(bytes);
    }
    let hash = |c: &[u8]| {
        let mut h = crc32fast::Hasher::new();
        h.update(c);
        h
    };
    let parts: Vec<crc32fast::Hasher> = std::thread::scope(|s| {
        let handles: Vec<_> = bytes
            .chunks(chunk)
            .map(|c| {
                std::thread::Builder::new()
                    .spawn_scoped(s, move || hash(c))
                    .map_err(|_| c)
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                // No thread to spare: this chunk on the calling thread.
                Err(c) => hash(c),
            })
            .collect()
    });
    let mut all = crc32fast::Hasher::new();
    for p in &parts {
        all.combine(p);
    }
    all.finalize()
}

/// What the header of a file that checks out says, and the payload it covers.
struct Checked<'a> {
    /// Every live row with `seq` up to this is in the graph with its current vector.
    stamp: i64,
    /// Rows in the graph.
    count: u64,
    /// The recall estimate saved with the graph (format 2), if it was measured.
    recall: Option<f32>,
    /// usearch's serialization of the graph.
    payload: &'a [u8],
}

fn corrupt(reason: impl Into<String>) -> IndexFileError {
    IndexFileError::Corrupt {
        reason: reason.into(),
    }
}

fn mismatch(reason: impl Into<String>) -> IndexFileError {
    IndexFileError::Mismatch {
        reason: reason.into(),
    }
}

/// Path of the index file of the shard at `shard`: the shard file's name plus
/// [`INDEX_SUFFIX`] (`coder.sqlite` → `coder.sqlite.hnsw`).
pub fn index_path(shard: &Path) -> PathBuf {
    let mut p = shard.as_os_str().to_owned();
    p.push(INDEX_SUFFIX);
    PathBuf::from(p)
}

/// Removes `<file>.<pid>-<n>.tmp` files left by saves of processes that no longer run (a
/// save killed midway). Where liveness cannot be checked (no `/proc`), they stay.
fn remove_orphans(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file
            .to_str()
            .and_then(|f| f.strip_prefix(name))
            .and_then(|r| r.strip_prefix('.'))
            .and_then(|r| r.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            // Best effort: a file that cannot be removed is only wasted space.
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl IndexCore {
    /// Writes `<shard>.hnsw` atomically (temporary file, fsync, rename, directory fsync).
    pub(super) fn save(&self) -> Result<(), IndexError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let _one = self.saving.lock().unwrap_or_else(|p| p.into_inner());
        let (stamp, unsaved, recall) = {
            let st = self.ledger();
            (st.stamp(), st.unsaved, st.recall)
        };
        let payload = {
            let graph = self.read_graph();
            let Some(index) = graph.as_ref() else {
                return Ok(());
            };
            let mut buf = vec![0u8; index.serialized_length()];
            index
                .save_to_buffer(&mut buf)
                .map_err(|e| IndexError::graph("serializing the graph", e))?;
            (buf, index.size())
        };
        let (payload, count) = payload;
        // The estimate goes into the file only if it was measured at about this size.
        let recall = recall
            .filter(|&(_, at)| count.abs_diff(at) <= at / 10)
            .map(|r| r.0);
        let header = self.header(stamp, count as u64, recall, &payload);
        // One temporary file per process and handle: two handles of one shard (threads or
        // processes) may save at once, and each renames only a file it wrote whole.
        static HANDLES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let tmp = {
            let n = HANDLES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut p = path.as_os_str().to_owned();
            p.push(format!(".{}-{n}.tmp", std::process::id()));
            PathBuf::from(p)
        };
        let io = |action: &'static str, e: std::io::Error| IndexError::Save {
            action,
            path: tmp.clone(),
            kind: e.kind(),
            message: e.to_string(),
        };
        {
            let mut f = std::fs::File::create(&tmp).map_err(|e| io("creating", e))?;
            f.write_all(&header).map_err(|e| io("writing", e))?;
            f.write_all(&payload).map_err(|e| io("writing", e))?;
            f.sync_all().map_err(|e| io("syncing", e))?;
        }
        if let Err(e) = std::fs::rename(&tmp, path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io("renaming", e));
        }
        if let Some(dir) = path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            // Makes the rename durable; a failure only means the next open may rebuild.
            let _ = d.sync_all();
        }
        let mut st = self.ledger_mut();
        st.unsaved = st.unsaved.saturating_sub(unsaved);
        Ok(())
    }

    fn header(
        &self,
        stamp: i64,
        count: u64,
        recall: Option<f32>,
        payload: &[u8],
    ) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&(self.dims as u32).to_le_bytes());
        h[16..20].copy_from_slice(&SCALAR_F16.to_le_bytes());
        h[20..24].copy_from_slice(&(self.cfg.connectivity as u32).to_le_bytes());
        h[24..32].copy_from_slice(&stamp.to_le_bytes());
        h[32..40].copy_from_slice(&count.to_le_bytes());
        h[40..48].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        h[48..52].copy_from_slice(&crc32(payload).to_le_bytes());
        let origin = &self.origin.as_bytes()[..self.origin.len().min(MAX_ORIGIN)];
        h[52..56].copy_from_slice(&(origin.len() as u32).to_le_bytes());
        h[56..56 + origin.len()].copy_from_slice(origin);
        h[124..128].copy_from_slice(&recall.unwrap_or(f32::NAN).to_le_bytes());
        let crc = header_crc(&h, FORMAT_VERSION);
        h[120..124].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Maps and checks the index file; returns a read-only view of its graph and its stamp,
    /// or why it cannot be used (`missing`, or the defect found).
    pub(super) fn read_file(&self, path: &Path) -> FileRead {
        remove_orphans(path);
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(IndexFileError::Missing);
            }
            Err(e) => {
                return Err(IndexFileError::Unreadable {
                    reason: e.to_string(),
                });
            }
        };
        #[allow(unsafe_code)]
        // SAFETY: the file is private to the shard and only ever replaced by rename (`save`),
        // never written in place, so the mapped bytes do not change while mapped. Truncating
        // it from outside would fault the process, as it would for the SQLite file it maps.
        let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }.map_err(|e| {
            IndexFileError::Unreadable {
                reason: format!("mapping it: {e}"),
            }
        })?;
        let Checked {
            stamp,
            count,
            recall,
            payload,
        } = self.check_header(&map)?;
        let meta = Index::metadata_from_buffer(payload)
            .map_err(|e| corrupt(format!("usearch header: {e}")))?;
        if meta.dimensions != self.dims as u64
            || meta.quantization != ScalarKind::F16
            || meta.metric != MetricKind::IP
            || meta.multi
        {
            return Err(mismatch("graph built with other settings"));
        }
        let mut index = new_index(&self.cfg, self.dims).map_err(|e| IndexFileError::Unusable {
            reason: e.to_string(),
        })?;
        // The thread contexts set before viewing are kept by the view.
        index
            .reserve_capacity_and_threads(0, context_count(&self.cfg))
            .map_err(|e| IndexFileError::Unusable {
                reason: format!("reserving threads: {e}"),
            })?;
        // SAFETY: the view reads from `payload`, which lives in `map`; both go into one
        // `Graph`, which drops the index before the mapping. The payload's checksum matched,
        // so these are the bytes usearch wrote.
        #[allow(unsafe_code)]
        unsafe { index.view_from_buffer(payload) }.map_err(|e| corrupt(e.to_string()))?;
        crate::kernels::install_usearch_metric(&mut index, self.dims);
        if index.size() as u64 != count {
            return Err(corrupt(format!(
                "header says {count} rows, graph has {}",
                index.size()
            )));
        }
        Ok((
            Graph {
                index,
                map: Some(map),
            },
            stamp,
            recall,
        ))
    }

    /// The header of a file whose header and payload check out, with its payload.
    fn check_header<'a>(&self, bytes: &'a [u8]) -> Result<Checked<'a>, IndexFileError> {
        if bytes.len() < HEADER_LEN {
            return Err(corrupt(format!(
                "{} bytes, shorter than the header",
                bytes.len()
            )));
        }
        let (h, payload) = bytes.split_at(HEADER_LEN);
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[i..i + 8]);
            u64::from_le_bytes(b)
        };
        if &h[0..8] != MAGIC {
            return Err(corrupt("not a reasonbank index file"));
        }
        let version = u32_at(8);
        if !(1..=FORMAT_VERSION).contains(&version) {
            return Err(IndexFileError::Unsupported { version });
        }
        if u32_at(120) != header_crc(h, version) {
            return Err(corrupt("header checksum mismatch"));
        }
        if u32_at(12) as usize != self.dims || u32_at(16) != SCALAR_F16 {
            return Err(mismatch("other dimensions or vector encoding"));
        }
        let origin_len = (u32_at(52) as usize).min(MAX_ORIGIN);
        let want = &self.origin.as_bytes()[..self.origin.len().min(MAX_ORIGIN)];
        if &h[56..56 + origin_len] != want {
            return Err(mismatch("the file belongs to another shard"));
        }
        if u64_at(40) != payload.len() as u64 {
            return Err(corrupt(format!(
                "payload is {} bytes, header says {}",
                payload.len(),
                u64_at(40)
            )));
        }
        if u32_at(48) != crc32_parallel(payload) {
            return Err(corrupt("payload checksum mismatch"));
        }
        let recall = f32::from_le_bytes([h[124], h[125], h[126], h[127]]);
        let recall = (version >= 2 && (0.0..=1.0).contains(&recall)).then_some(recall);
        Ok(Checked {
            stamp: u64_at(24) as i64,
            count: u64_at(32),
            recall,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    pub(super) fn parallel_checksum_equals_the_serial_one() {
        // Sizes around the chunking: one chunk, an uneven split, an even one.
        for len in [0usize, 1_000, (16 << 20) + 7, 48 << 20] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            assert_eq!(
                super::crc32_parallel(&bytes),
                super::crc32(&bytes),
                "{len} bytes"
            );
        }
    }
}
