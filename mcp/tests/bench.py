"""Round-trip latency of memory_recall through the stdio transport on a 10K-memory shard.

Usage (with the venv the tests provision, see tests/it/support.rs):

    cargo build --release -p reasonbank-mcp
    ~/.cache/reasonbank/mcp-venv-2.3.0/bin/python mcp/tests/bench.py \
        "$CARGO_TARGET_DIR/release/reasonbank-mcp" [--n 10000] [--queries 200] [--root DIR]

Fills a fresh root (or reuses --root if it already holds N memories) with N distinct
memories through memory_remember, then times `queries` memory_recall calls (k = 5) per mode,
measured at the client: PyPI `mcp` client -> JSON-RPC on stdin -> server -> embed the query ->
exact search + BM25 -> JSON-RPC on stdout -> client. Prints one JSON line. Not a test: it
asserts nothing about timings.
"""

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

SUBJECTS = [
    "the deploy script", "the payment service", "the login page", "the nightly build",
    "the search index", "the billing cron job", "the mobile app", "the API gateway",
    "the staging database", "the CI pipeline", "the cache layer", "the email worker",
    "the metrics exporter", "the feature flag service", "the PDF renderer", "the upload handler",
    "the rate limiter", "the websocket server", "the backup job", "the audit log",
    "the config loader", "the DNS resolver", "the image resizer", "the queue consumer",
    "the session store",
]
EVENTS = [
    "fails when an environment variable is missing", "times out under heavy load",
    "leaks memory after a few hours", "returns stale data after a restart",
    "needs a retry with exponential backoff", "breaks when the clock skews",
    "must run before the schema migration", "logs secrets unless redacted",
    "slows down when the disk is almost full", "crashes on non-UTF-8 input",
    "drops messages if the broker restarts", "needs the feature flag turned on first",
    "double-charges when a POST is retried", "works only with TLS 1.2 or newer",
    "was fixed by pinning the dependency version", "is owned by the platform team",
    "depends on the region being us-east", "is flaky in CI but fine locally",
    "reads its limits from a YAML file", "was rewritten in Rust last quarter",
]
CONTEXTS = [
    "on Mondays", "in production", "during the migration", "since the last release",
    "for enterprise customers", "behind the VPN", "in the EU cluster", "after the upgrade",
    "in dry-run mode", "on ARM machines", "with the new SDK", "when autoscaling kicks in",
    "under the holiday traffic", "in the canary", "for the batch tenants", "on cold start",
    "with IPv6 only", "while the cache warms up", "for anonymous users", "in the test fixtures",
]
QUERIES = [
    "why did the deployment fail", "the request timed out, should I retry", "memory keeps growing",
    "data looks old after restarting", "who owns this service", "it only breaks in CI",
    "what must happen before migrating the schema", "secrets showed up in the logs",
    "customers were charged twice", "disk almost full and everything is slow",
]


def texts(n):
    out = []
    i = 0
    for c in CONTEXTS:
        for e in EVENTS:
            for s in SUBJECTS:
                out.append(f"{s[0].upper()}{s[1:]} {e} {c}.")
                i += 1
                if i == n:
                    return out
    # More than the templates give: number the repeats so every text stays distinct.
    while len(out) < n:
        out.append(f"{out[len(out) % 10000]} (note {len(out)})")
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--root")
    a = ap.parse_args()
    root = a.root or tempfile.mkdtemp(prefix="reasonbank-mcp-bench-")
    env = {k: os.environ[k] for k in ["REASONBANK_HOME", "XDG_CACHE_HOME", "ORT_DYLIB_PATH", "HOME"]
           if k in os.environ}
    params = StdioServerParameters(command=a.binary, args=["--root", root, "--agent", "bench"], env=env)
    result = {"n": a.n, "queries": a.queries, "root": root}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            await s.initialize()
            have = (await s.call_tool("vector_shard_stats", {"shard": "bench"})).structured_content
            records = have["shards"][0]["records"]
            todo = texts(a.n)[records:]
            t0 = time.perf_counter()
            remember_ms = []
            for t in todo:
                t1 = time.perf_counter()
                r = await s.call_tool("memory_remember", {"text": t, "metadata": {"i": len(remember_ms)}})
                remember_ms.append((time.perf_counter() - t1) * 1000)
                assert not r.is_error, r.content
            if todo:
                result["fill_s"] = round(time.perf_counter() - t0, 1)
                result["remember_p50_ms"] = round(statistics.median(remember_ms), 3)
            have = (await s.call_tool("vector_shard_stats", {"shard": "bench"})).structured_content
            result["records"] = have["shards"][0]["records"]
            for mi, mode in enumerate(["hybrid", "vector", "text"]):
                # Warm-up: the first calls fault in pages and the embedder's cache sees the
                # queries, as a real session would after its first few recalls.
                for q in QUERIES:
                    await s.call_tool("memory_recall", {"query": q, "k": 5, "mode": mode})
                lat = []
                for i in range(a.queries):
                    # Distinct queries each time, so the embedder's cache does not answer. Text
                    # mode matches every query word, so its queries use the corpus' words.
                    if mode == "text":
                        q = f"{SUBJECTS[i % len(SUBJECTS)]} {CONTEXTS[(i // len(SUBJECTS)) % len(CONTEXTS)]}"
                    else:
                        q = f"{QUERIES[i % len(QUERIES)]} (case {i + mi * a.queries})"
                    t1 = time.perf_counter()
                    r = await s.call_tool("memory_recall", {"query": q, "k": 5, "mode": mode})
                    lat.append((time.perf_counter() - t1) * 1000)
                    assert not r.is_error and len(r.structured_content["results"]) == 5, r.content
                result[f"recall_{mode}_ms"] = {
                    "p50": round(pct(lat, 50), 3), "p90": round(pct(lat, 90), 3),
                    "p99": round(pct(lat, 99), 3),
                }
            # The floor of the transport and client: a call that does no work.
            lat = []
            for _ in range(a.queries):
                t1 = time.perf_counter()
                await s.call_tool("vector_shard_stats", {"shard": "bench"})
                lat.append((time.perf_counter() - t1) * 1000)
            result["shard_stats_p50_ms"] = round(pct(lat, 50), 3)
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
