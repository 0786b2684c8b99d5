#!/usr/bin/env bash
# The npm package as a user installs it: `npm pack` the built package (bindings/node, addon
# included; scripts/test.sh builds it first), install the tarball into a fresh project from the
# registry (onnxruntime-node's download-more postinstall skipped: its CPU runtime ships inside
# the package), remember and recall with the real model through the installed package, and run
# `npx reasonbank mcp` under the PyPI `mcp` client (scripts/mcp_smoke.py). No Rust toolchain is
# used after the pack.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
cache="${XDG_CACHE_HOME:-$HOME/.cache}/reasonbank"
MCP_VERSION=2.3.0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=$(cd bindings/node && npm pack --silent --pack-destination "$work" | tail -1)
echo "packed $tarball ($(du -h "$work/$tarball" | cut -f1))"

mkdir "$work/project"
cd "$work/project"
npm init -y >/dev/null
ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --silent "$work/$tarball"

# The API from the installed package.
node -e '
const { AgentMemory } = require("reasonbank")
;(async () => {
  const m = await AgentMemory.open(process.argv[1], "smoke")
  const id = await m.remember("Retry flaky HTTP calls with backoff", { topic: "http" })
  const [hit] = await m.recall("the API timed out", { k: 1 })
  if (hit.id !== id) throw new Error("recalled " + JSON.stringify(hit))
  console.log(JSON.stringify({ installed: "reasonbank", recalled: hit.text }))
})().catch((e) => { console.error(e); process.exit(1) })
' "$work/api-root"

# The installed bin, as README shows it.
npx --no-install reasonbank --root "$work/cli-root" remember "Bake bread at 250 degrees" >/dev/null
npx --no-install reasonbank --root "$work/cli-root" --json recall "oven temperature" --k 1 | grep -q "Bake bread"

# `npx reasonbank mcp` with a real MCP client (the same venv the mcp crate's tests use).
venv="$cache/mcp-venv-$MCP_VERSION"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "mcp==$MCP_VERSION"
  venv="$work/venv"
fi
"$venv/bin/python" "$repo/scripts/mcp_smoke.py" "$work/mcp-root" npx --no-install reasonbank mcp
echo "npm package: installed from the tarball, API, bin and MCP server work"
