#!/usr/bin/env bash
# Builds a release wheel and reasonbank-bench (release), installs the wheel into a venv in the
# cache, and runs bench/recall.py with it. Arguments go to recall.py.
set -euo pipefail
cd "$(dirname "$0")/../../.."
cache="${XDG_CACHE_HOME:-$HOME/.cache}/reasonbank"
target="${CARGO_TARGET_DIR:-$PWD/target}"
"$cache/maturin-1.16.0/bin/maturin" --version >/dev/null 2>&1 || {
  python3 -m venv "$cache/maturin-1.16.0" && "$cache/maturin-1.16.0/bin/pip" install --quiet maturin==1.16.0; }
cargo build --release --locked -p reasonbank-bench
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$cache/maturin-1.16.0/bin/maturin" build --release --locked -m bindings/python/Cargo.toml --interpreter python3 --out "$work/dist"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "$work"/dist/reasonbank-*.whl
"$work/venv/bin/python" bindings/python/bench/recall.py --bench-bin "$target/release/reasonbank-bench" "$@"
