"""Recall latency through the Python package vs. the Rust bench, in the same run, on the same
shard, with the same queries, model files and ONNX Runtime library.

    bindings/python/bench/run.sh [--n 10000] [--queries 200] [--k 5] [--rounds 3] [--json]

run.sh builds a release wheel and `reasonbank-bench` (release), installs the wheel into a venv
and runs this file with it. Here:
1. Remembers --n memories through the package (two real sentences each, from
   benches/data/texts.jsonl, as `reasonbank-bench memory` makes them) into a new shard, and
   writes --queries short queries (three content words of a random sentence) to a file.
2. Each round, alternately: a fresh `AgentMemory` (so an empty query-embedding cache) recalls
   every query after the same 5 warm-up queries as the Rust bench; then `reasonbank-bench
   memory --queries-file` does the same in its own process. Both times include embedding.
3. Prints the medians over rounds of each p50 and their ratio (Python / Rust).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import reasonbank
from reasonbank import AgentMemory

REPO = Path(__file__).resolve().parents[3]


def pct(xs: list, q: float) -> float:
    s = sorted(xs)
    return s[round((len(s) - 1) * q)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bench-bin", required=True)
    ap.add_argument("--json", action="store_true")
    o = ap.parse_args()

    files = reasonbank.fetch_models()
    ort = files.ort_library  # the Rust crate's runtime for both sides
    rng = random.Random(11)
    sentences = []
    for line in (REPO / "benches/data/texts.jsonl").read_text().splitlines():
        if line.strip():
            for s in json.loads(line)["text"].split(". "):
                if len(s.split()) >= 4:
                    sentences.append(s.strip())
    texts = [f"Note {i}: {rng.choice(sentences)} {rng.choice(sentences)}" for i in range(o.n)]
    queries: list = []
    while len(queries) < o.queries:
        words = [w for w in re.split(r"\W+", rng.choice(sentences)) if len(w) > 3]
        if words:
            start = rng.randrange(max(len(words) - 2, 1))
            queries.append(" ".join(words[start : start + 3]))

    with tempfile.TemporaryDirectory(prefix="rb-bench-py-") as work:
        root = Path(work) / "shards"
        qfile = Path(work) / "queries.txt"
        qfile.write_text("\n".join(queries) + "\n")
        mem = AgentMemory.open(root, "bench", ort_library=ort)
        t = time.perf_counter()
        for i in range(0, o.n, 512):
            mem.remember_batch([{"text": x, "metadata": {"i": i + j}} for j, x in enumerate(texts[i : i + 512])])
        print(f"remembered {o.n} memories through the package in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        del mem

        def py_round() -> float:
            m = AgentMemory.open(root, "bench", ort_library=ort)
            for q in queries[:5]:
                m.recall(q, k=o.k)
            lat = []
            for q in queries:
                t0 = time.perf_counter()
                hits = m.recall(q, k=o.k)
                lat.append((time.perf_counter() - t0) * 1e3)
                assert hits, q
            return pct(lat, 0.5)

        def rust_round() -> float:
            r = subprocess.run(
                [o.bench_bin, "memory", "--root", str(root), "--agent", "bench", "--queries-file", str(qfile),
                 "--k", str(o.k), "--n", "0", "--queries", "1", "--learns", "0", "--json"],
                capture_output=True, text=True, env={**os.environ, "ORT_DYLIB_PATH": ort}, check=True,
            )
            j = json.loads(r.stdout.strip().splitlines()[-1])
            assert j["n"] == o.n and j["queries"] == len(queries), r.stdout
            return float(j["recall_p50_ms"])

        py, rust = [], []
        for r in range(o.rounds):
            py.append(py_round())
            rust.append(rust_round())
            print(f"round {r + 1}: python p50 {py[-1]:.3f} ms, Rust p50 {rust[-1]:.3f} ms "
                  f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr)
    p50, r50 = pct(py, 0.5), pct(rust, 0.5)
    result = {
        "n": o.n, "queries": len(queries), "k": o.k, "rounds": o.rounds,
        "python_recall_p50_ms": p50, "rust_recall_p50_ms": r50, "ratio": p50 / r50,
        "median_round_ratio": pct([a / b for a, b in zip(py, rust)], 0.5), "target": 1.2,
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    if o.json:
        print(json.dumps(result))
    else:
        print(f"recall p50 on {o.n} memories, k {o.k}, {len(queries)} queries, median of {o.rounds} rounds: "
              f"python {p50:.3f} ms, Rust {r50:.3f} ms, ratio {result['ratio']:.3f} "
              f"(median of per-round ratios {result['median_round_ratio']:.3f}; target <= 1.2); "
              f"load average {result['loadavg_1m']}")
    return 0 if result["ratio"] <= 1.2 else 1


if __name__ == "__main__":
    sys.exit(main())
