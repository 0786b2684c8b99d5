//! Shared fixtures: one real ONNX embedder per test process.

#![allow(dead_code)]

#[cfg(feature = "onnx")]
use std::sync::OnceLock;

#[cfg(feature = "onnx")]
use reasonbank_embedders::OnnxEmbedder;
#[cfg(feature = "onnx")]
use reasonbank_embedders::provision::{self, ModelFiles, ProvisionOptions};

/// The model files from the default cache, fetched on first use.
#[cfg(feature = "onnx")]
pub fn model_files() -> &'static ModelFiles {
    static FILES: OnceLock<ModelFiles> = OnceLock::new();
    FILES.get_or_init(|| {
        provision::resolve(&ProvisionOptions::new())
            .unwrap_or_else(|e| panic!("provisioning the default model failed: {e}"))
    })
}

/// The real default embedder (2 intra-op threads), built once per process.
#[cfg(feature = "onnx")]
pub fn embedder() -> &'static OnnxEmbedder {
    static EMBEDDER: OnceLock<OnnxEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| {
        OnnxEmbedder::builder()
            .files(model_files().clone())
            .intra_threads(2)
            .build()
            .unwrap_or_else(|e| panic!("loading the default model failed: {e}"))
    })
}

pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
