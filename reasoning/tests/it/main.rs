//! Integration tests of `reasonbank-reasoning`: the real ONNX model (provisioned on first use)
//! and real SQLite shards in temporary directories; the LLM judge and distiller against an
//! in-test HTTP server speaking the OpenAI chat-completions protocol.

mod common;
mod consolidate;
mod learn;
mod llm;
mod matts;
mod recall;
mod relevance;
mod replicas;
mod synthesize;
