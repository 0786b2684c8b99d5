//! The model files: where they are (`modelPaths`), fetching them (`fetchModels`), and the
//! ONNX Runtime library the package ships (`setDefaultOrtLibrary`).

use std::path::PathBuf;

use napi::bindgen_prelude::{Env, PromiseRaw};
use napi_derive::napi;
use reasonbank::embedders::provision::{self, ProvisionOptions};

use crate::error::Failure;
use crate::{blocking, settle};

/// Options of `fetchModels` and `modelPaths`.
#[napi(object)]
#[derive(Default)]
pub struct ModelOptions {
    /// The cache directory (default as in `OpenOptions.cacheDir`).
    pub cache_dir: Option<String>,
    /// The ONNX Runtime library (default as in `OpenOptions.ortLibrary`).
    pub ort_library: Option<String>,
    /// Which local model's files (as in `OpenOptions.localModel`). Defaults to
    /// `all-MiniLM-L6-v2`.
    pub local_model: Option<String>,
}

impl ModelOptions {
    /// The provisioning options these name; with `allow_fetch` false nothing is downloaded.
    ///
    /// # Errors
    /// `RB_INVALID_INPUT` for an unknown `localModel`.
    pub(crate) fn provision(&self, allow_fetch: bool) -> Result<ProvisionOptions, Failure> {
        provision_options(
            self.cache_dir.as_deref(),
            self.ort_library.as_deref(),
            None,
            None,
            Some(allow_fetch),
            self.local_model.as_deref(),
        )
    }
}

/// The provisioning options of these parts (each `None` keeps its default), `local_model` by
/// name; what `open`, `fetchModels` and `modelPaths` share.
///
/// # Errors
/// `RB_INVALID_INPUT` for an unknown `local_model`.
pub(crate) fn provision_options(
    cache_dir: Option<&str>,
    ort_library: Option<&str>,
    model: Option<&str>,
    tokenizer_dir: Option<&str>,
    allow_fetch: Option<bool>,
    local_model: Option<&str>,
) -> Result<ProvisionOptions, Failure> {
    let mut p =
        ProvisionOptions::from_parts(cache_dir, ort_library, model, tokenizer_dir, allow_fetch);
    if let Some(m) = local_model {
        p.local_model(m.parse()?);
    }
    Ok(p)
}

/// The files the local model runs from.
#[napi(object)]
pub struct ModelFiles {
    /// The local model these files are (`all-MiniLM-L6-v2`, `bge-small-en-v1.5`).
    pub local_model: String,
    /// The ONNX Runtime shared library.
    pub ort_library: String,
    /// The model's int8 `model.onnx`.
    pub model: String,
    /// The directory of the tokenizer files.
    pub tokenizer_dir: String,
}

impl From<reasonbank::embedders::provision::ModelFiles> for ModelFiles {
    fn from(f: reasonbank::embedders::provision::ModelFiles) -> Self {
        ModelFiles {
            local_model: f.local_model.name().to_owned(),
            ort_library: f.ort_library.display().to_string(),
            model: f.model.display().to_string(),
            tokenizer_dir: f.tokenizer_dir.display().to_string(),
        }
    }
}

/// Sets (or with `null` clears) the ONNX Runtime library used when neither
/// `OpenOptions.ortLibrary` nor `ORT_DYLIB_PATH` names one. The package's entry point calls
/// it with the library of the installed `onnxruntime-node`.
#[napi]
pub fn set_default_ort_library(path: Option<String>) {
    provision::set_packaged_ort_library(path.map(PathBuf::from));
}

/// The library `setDefaultOrtLibrary` set, if any.
#[napi]
pub fn default_ort_library() -> Option<String> {
    provision::packaged_ort_library().map(|p| p.display().to_string())
}

/// Downloads (if missing) and verifies the ONNX Runtime, the model and its tokenizer, like
/// `reasonbank models fetch`, and returns their paths.
#[napi(ts_return_type = "Promise<ModelFiles>")]
pub fn fetch_models(
    env: &Env,
    options: Option<ModelOptions>,
) -> napi::Result<PromiseRaw<'_, ModelFiles>> {
    files(env, options, true)
}

/// The files the model would run from, without downloading anything (`reasonbank models
/// path`); rejects with `RB_MODEL_MISSING` naming the first missing file.
#[napi(ts_return_type = "Promise<ModelFiles>")]
pub fn model_paths(
    env: &Env,
    options: Option<ModelOptions>,
) -> napi::Result<PromiseRaw<'_, ModelFiles>> {
    files(env, options, false)
}

/// The files `options` name, fetched first (if missing) when `fetch`.
fn files(
    env: &Env,
    options: Option<ModelOptions>,
    fetch: bool,
) -> napi::Result<PromiseRaw<'_, ModelFiles>> {
    let o = options.unwrap_or_default();
    settle(
        env,
        blocking(move || {
            let p = o.provision(fetch)?;
            let files = if fetch {
                provision::fetch(&p)
            } else {
                provision::resolve(&p)
            }?;
            Ok(files.into())
        }),
    )
}
