//! Integration tests of the facade crate: the real ONNX model and runtime, real shard files.

mod end_to_end;
