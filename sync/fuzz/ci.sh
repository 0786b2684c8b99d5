#!/usr/bin/env bash
# Runs the frame-decoder fuzz target for FUZZ_SECONDS (default 30) with cargo-fuzz, installing
# cargo-fuzz from crates.io if it is missing. cargo-fuzz passes nightly-only flags to rustc
# (sanitizer coverage); with no nightly toolchain (as on the CI machine) RUSTC_BOOTSTRAP=1
# enables them on stable for this build only. A crash fails the run and leaves its input in
# sync/fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
if cargo +nightly --version >/dev/null 2>&1; then
    cargo +nightly fuzz run frame_decode -- -max_total_time="${FUZZ_SECONDS:-30}"
else
    RUSTC_BOOTSTRAP=1 cargo fuzz run frame_decode -- -max_total_time="${FUZZ_SECONDS:-30}"
fi
