//! Provisioning: fetching from scratch, missing files, corrupt files.

use std::fs;
use std::path::Path;

use reasonbank_embedders::provision::{self, ProvisionOptions, TOKENIZER_FILES};
use reasonbank_embedders::{Error, FIX_COMMAND, OnnxEmbedder};

use crate::common::{embedder, model_files};

fn offline(cache: &Path) -> ProvisionOptions {
    let mut opts = ProvisionOptions::new();
    opts.cache_dir(cache)
        .ort_library(&model_files().ort_library)
        .allow_fetch(false);
    opts
}

/// What CI does on a fresh machine: an empty cache, two processes' worth of concurrent fetches.
#[test]
fn fetch_from_scratch_into_an_empty_directory() {
    // Commit this process's runtime first (see `runtime_cannot_be_switched` below).
    let _ = embedder();
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = ProvisionOptions::new();
    opts.cache_dir(tmp.path());
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| provision::fetch(&opts));
        let b = s.spawn(|| provision::fetch(&opts));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    assert!(a.ort_library.starts_with(tmp.path()));
    assert!(a.model.is_file());
    for f in TOKENIZER_FILES {
        assert!(a.tokenizer_dir.join(f).is_file(), "{f}");
    }
    // No temporary directories are left behind.
    let leftovers: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
    // Offline now works, and finds the same files.
    let mut offline = opts.clone();
    offline.allow_fetch(false);
    assert_eq!(provision::resolve(&offline).unwrap(), a);

    // The process already runs another ONNX Runtime: switching is a typed error, not a crash.
    let err = OnnxEmbedder::builder().files(a).build().unwrap_err();
    assert!(
        matches!(err, Error::RuntimeAlreadyInitialized { .. }),
        "{err}"
    );
}

#[test]
fn missing_model_names_the_file_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let err = provision::resolve(&offline(tmp.path())).unwrap_err();
    match &err {
        Error::MissingFile { path, .. } => assert!(path.ends_with("model.onnx"), "{err}"),
        other => panic!("unexpected {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("model.onnx") && msg.contains(FIX_COMMAND),
        "{msg}"
    );
}

#[test]
fn missing_ort_library_names_the_file_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = offline(tmp.path());
    opts.ort_library(tmp.path().join("libonnxruntime.so"));
    let err = provision::resolve(&opts).unwrap_err();
    assert!(matches!(err, Error::MissingFile { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("libonnxruntime.so") && msg.contains(FIX_COMMAND),
        "{msg}"
    );

    // The same through the embedder builder.
    let err = OnnxEmbedder::builder().provision(opts).build().unwrap_err();
    assert!(matches!(err, Error::MissingFile { .. }), "{err}");
}

fn copy_cache(from: &reasonbank_embedders::provision::ModelFiles, to: &Path) {
    let model_dir = to.join("all-MiniLM-L6-v2-int8");
    fs::create_dir_all(&model_dir).unwrap();
    fs::copy(&from.model, model_dir.join("model.onnx")).unwrap();
    let tok_dir = to.join("all-MiniLM-L6-v2-tokenizer");
    fs::create_dir_all(&tok_dir).unwrap();
    for f in TOKENIZER_FILES {
        fs::copy(from.tokenizer_dir.join(f), tok_dir.join(f)).unwrap();
    }
}

#[test]
fn corrupt_model_is_a_checksum_error_and_fetch_repairs_it() {
    let tmp = tempfile::tempdir().unwrap();
    copy_cache(model_files(), tmp.path());
    let opts = offline(tmp.path());
    // An intact copy resolves (and is hashed, since it has no stamp).
    provision::resolve(&opts).unwrap();

    let model = tmp.path().join("all-MiniLM-L6-v2-int8/model.onnx");
    let mut bytes = fs::read(&model).unwrap();
    bytes[1000] ^= 0xff;
    fs::write(&model, &bytes).unwrap();
    let err = provision::resolve(&opts).unwrap_err();
    match &err {
        Error::ChecksumMismatch { path, expected, .. } => {
            assert_eq!(path, &model);
            assert_eq!(
                *expected,
                "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
            );
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains(FIX_COMMAND));

    // The fix command replaces the corrupt file.
    let fixed = provision::fetch(&opts).unwrap();
    assert_eq!(fixed.model, model);
    provision::resolve(&opts).unwrap();
}

#[test]
fn explicit_model_with_wrong_checksum_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("model.onnx");
    fs::write(&fake, b"not a model").unwrap();
    let mut opts = offline(tmp.path());
    opts.model(&fake);
    let err = provision::resolve(&opts).unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
}
