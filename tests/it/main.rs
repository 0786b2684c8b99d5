//! Integration tests of the facade crate: the real ONNX model and runtime, real shard files,
//! the real `reasonbank` binary.

mod agent;
mod backup;
mod cli;
mod cli_llm;
mod cli_model;
mod cli_rerank;
mod cli_time;
mod cli_usage;
mod end_to_end;
mod evidence;
mod rerank;
mod sync;
mod tidy;
