#!/usr/bin/env bash
# The Python package (bindings/python), tested the way a user installs it: build the wheel with
# maturin (pinned, from PyPI, in a build venv kept in the cache), install it into a fresh venv
# with the pinned test requirements from PyPI, type-check a usage file and the package with
# `mypy --strict`, and run pytest against the installed package (never the source tree) with
# the real model. Usage: scripts/python-test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
cache="${XDG_CACHE_HOME:-$HOME/.cache}/reasonbank"
MATURIN_VERSION=1.16.0

build_venv="$cache/maturin-$MATURIN_VERSION"
if [[ ! -x "$build_venv/bin/maturin" ]]; then
  python3 -m venv "$build_venv"
  "$build_venv/bin/pip" install --quiet --disable-pip-version-check "maturin==$MATURIN_VERSION"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# An abi3 wheel (CPython >= 3.9) for this machine; debug profile, as the Node addon's tests.
"$build_venv/bin/maturin" build --manifest-path bindings/python/Cargo.toml --locked \
  --interpreter python3 --out "$work/dist" ${PYTHON_WHEEL_PROFILE:+--profile "$PYTHON_WHEEL_PROFILE"}
wheel=$(ls "$work"/dist/reasonbank-*.whl)
echo "built $(basename "$wheel")"

python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check \
  -r bindings/python/tests/requirements.txt "$wheel"

# The tests import the installed package: run from a directory that holds no source.
cd "$work"
"$py" -m mypy --strict --no-incremental "$repo/bindings/python/tests/usage.py"
"$py" -m mypy --strict --no-incremental -p reasonbank
"$py" -m pytest -q -p no:cacheprovider "$repo/bindings/python/tests" "$@"
