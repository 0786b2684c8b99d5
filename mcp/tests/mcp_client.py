"""Drives the reasonbank-mcp binary with the PyPI `mcp` client over stdio.

Usage: python mcp_client.py BINARY ROOT VERSION

Initializes, lists the tools (the exact set), calls every tool and checks its result, then
makes calls that must come back as tool errors (isError) with a clear message, and checks the
server still answers after them. Prints one JSON summary line on stdout; the Rust test
(`tests/it/python.rs`) asserts on it. Any failed check raises, so the exit status is non-zero
and the traceback is on stderr.
"""

import asyncio
import http.server
import json
import math
import os
import sys
import threading
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

EXPECTED_TOOLS = {
    "vector_shard_create",
    "vector_insert",
    "vector_search",
    "vector_shard_stats",
    "vector_sync_shard",
    "memory_remember",
    "memory_recall",
    "memory_learn",
    "memory_feedback",
    "memory_find_patterns",
    "memory_consolidate",
    "memory_synthesize_context",
    "memory_get",
    "memory_update",
    "memory_forget",
    "memory_contradictions",
}

# The stdio client passes only a minimal environment to the server; forward what decides
# where the embedding model is cached so the server finds the copy the test machine has.
FORWARDED_ENV = ["REASONBANK_HOME", "XDG_CACHE_HOME", "ORT_DYLIB_PATH", "HOME"]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def call_ok(session, name, args):
    r = await session.call_tool(name, args)
    text = r.content[0].text if r.content else ""
    check(not r.is_error, f"{name}({json.dumps(args)[:200]}) failed: {text}")
    check(isinstance(r.structured_content, dict), f"{name}: no structured content")
    # The text block is the same JSON, for clients that only read text.
    check(json.loads(text) == r.structured_content, f"{name}: text and structured content differ")
    return r.structured_content


async def call_err(session, name, args, *needles):
    r = await session.call_tool(name, args)
    text = " ".join(c.text for c in r.content if getattr(c, "text", None))
    check(r.is_error, f"{name}({json.dumps(args)[:200]}) should have failed, got: {text[:300]}")
    for n in needles:
        check(n.lower() in text.lower(), f"{name}: error {text!r} does not mention {n!r}")
    return text


class RerankHandler(http.server.BaseHTTPRequestHandler):
    """`POST /v1/rerank` as llama.cpp's server answers it: a document naming DATABASE_URL
    scores 5, the others 0 (or, with `server.fail`, HTTP 503)."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        if self.server.fail:
            status, answer = 503, {"error": "loading model"}
        else:
            results = [
                {"index": i, "relevance_score": 5.0 if "DATABASE_URL" in d else 0.0}
                for i, d in enumerate(body["documents"])
            ]
            status, answer = 200, {"results": sorted(results, key=lambda r: -r["relevance_score"])}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def rerank_server(fail):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RerankHandler)
    server.requests, server.fail = [], fail
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def check_rerank(binary, root, env):
    """`--rerank-url`/`--rerank-model`: memory_recall's `rerank` returns the reranker's best
    k with `why.rerank`; a failing reranker is a tool error saying so."""
    for fail in (False, True):
        server = rerank_server(fail)
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        params = StdioServerParameters(
            command=binary,
            args=["--root", root, "--agent", "tester", "--rerank-url", url, "--rerank-model", "tiny"],
            env=env,
        )
        try:
            async with stdio_client(params) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    args = {"query": "the API request timed out, what now?", "k": 1, "rerank": 4}
                    if fail:
                        await call_err(session, "memory_recall", args, "reranker", "loading model")
                        continue
                    r = await call_ok(session, "memory_recall", args)
                    top = r["results"]
                    check(len(top) == 1 and "DATABASE_URL" in top[0]["text"], f"reranked recall: {r}")
                    check(top[0]["why"]["rerank"] == 5.0 and top[0]["score"] == 5.0, f"why.rerank: {top}")
                    sent = server.requests[0]
                    check(sent["model"] == "tiny" and len(sent["documents"]) == 4, f"rerank request: {sent}")
                    # Without `rerank` the reranker is not asked.
                    r = await call_ok(session, "memory_recall", {"query": "api timeout", "k": 2})
                    check("rerank" not in r["results"][0]["why"], f"plain recall: {r}")
                    check(len(server.requests) == 1, "plain recall called the reranker")
        finally:
            server.shutdown()


async def check_model(binary, root, env):
    """`--model bge-small-en-v1.5`: the agent's shard is created for that model and recall
    works; a server on the default model then refuses that agent's shard, naming both models."""
    params = StdioServerParameters(
        command=binary,
        args=["--root", root, "--agent", "bge", "--model", "bge-small-en-v1.5"],
        env=env,
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            for text in ("Back off exponentially when the API answers 429 Too Many Requests.",
                         "Paris is the capital of France."):
                await call_ok(session, "memory_remember", {"text": text})
            r = await call_ok(session, "memory_recall", {"query": "the server rate-limits us", "k": 1})
            check("429" in r["results"][0]["text"], f"bge recall: {r}")
            r = await call_ok(session, "vector_shard_stats", {"shard": "bge"})
            check(r["shards"][0]["model_id"] == "bge-small-en-v1.5-int8", f"bge stats: {r}")
    params = StdioServerParameters(command=binary, args=["--root", root, "--agent", "tester"], env=env)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await call_err(session, "memory_recall", {"query": "rate limits", "agent": "bge"},
                           "bge-small-en-v1.5-int8", "all-MiniLM-L6-v2-int8")


async def main(binary, root, version):
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    params = StdioServerParameters(
        command=binary, args=["--root", root, "--agent", "tester"], env=env
    )
    summary = {"calls": {}, "errors": {}}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            summary["server"] = {"name": init.server_info.name, "version": init.server_info.version}
            check(init.server_info.name == "reasonbank-mcp", f"server name {init.server_info.name}")
            check(init.server_info.version == version, f"server version {init.server_info.version}")

            tools = (await session.list_tools()).tools
            names = {t.name for t in tools}
            summary["tools"] = sorted(names)
            check(names == EXPECTED_TOOLS, f"tool set differs: {sorted(names ^ EXPECTED_TOOLS)}")
            for t in tools:
                check(len(t.description or "") >= 150, f"{t.name}: description too short")
                check(t.input_schema.get("type") == "object", f"{t.name}: schema is not an object")
            summary["read_only"] = sorted(
                t.name for t in tools if t.annotations and t.annotations.read_only_hint)
            summary["destructive"] = sorted(
                t.name for t in tools if t.annotations and t.annotations.destructive_hint)
            summary["schemas"] = {
                t.name: {
                    "properties": sorted(t.input_schema.get("properties", {})),
                    "required": sorted(t.input_schema.get("required", [])),
                }
                for t in tools
            }

            # --- raw-vector shards ---------------------------------------------------------
            r = await call_ok(session, "vector_shard_create",
                              {"shard": "vecs", "dimensions": 4, "model_id": "test-model"})
            check(r["created"] is True and r["dimensions"] == 4, f"create: {r}")
            r = await call_ok(session, "vector_shard_create",
                              {"shard": "vecs", "dimensions": 4, "model_id": "test-model"})
            check(r["created"] is False, f"re-create is idempotent: {r}")
            ids = {}
            for name, vec, color in [("north", [1, 0, 0, 0], "red"), ("east", [0, 1, 0, 0], "blue"),
                                     ("north-east", [1, 1, 0, 0], "blue")]:
                r = await call_ok(session, "vector_insert", {
                    "shard": "vecs", "vector": vec, "text": name, "metadata": {"color": color},
                })
                ids[name] = r["id"]
            summary["calls"]["vector_shard_create"] = "ok"
            summary["calls"]["vector_insert"] = "ok"

            r = await call_ok(session, "vector_search", {"shard": "vecs", "vector": [1, 0.1, 0, 0], "k": 2})
            hits = r["results"]
            check([h["id"] for h in hits] == [ids["north"], ids["north-east"]], f"search order: {hits}")
            check(hits[0]["score"] > 0.99 and hits[0]["text"] == "north", f"top hit: {hits[0]}")
            r = await call_ok(session, "vector_search", {
                "shard": "vecs", "vector": [1, 0, 0, 0], "k": 5,
                "filter": {"eq": {"field": "color", "value": "blue"}},
            })
            check([h["text"] for h in r["results"]] == ["north-east", "east"], f"filtered: {r}")
            r = await call_ok(session, "vector_search",
                              {"shard": "vecs", "vector": [1, 0, 0, 0], "threshold": 0.5})
            check(len(r["results"]) == 2, f"threshold: {r}")
            summary["calls"]["vector_search"] = "ok"

            r = await call_ok(session, "vector_shard_stats", {"shard": "vecs"})
            s = r["shards"][0]
            check(s["records"] == 3 and s["dimensions"] == 4 and s["model_id"] == "test-model", f"stats: {s}")

            # --- memory ----------------------------------------------------------------------
            facts = [
                ("Retry flaky HTTP calls with exponential backoff and jitter.", "http"),
                ("Never retry a POST that is not idempotent.", "http"),
                ("The staging database URL is in the DATABASE_URL environment variable.", "deploy"),
                ("The user prefers tabs over spaces in Go code.", "style"),
            ]
            for text, topic in facts:
                r = await call_ok(session, "memory_remember", {"text": text, "metadata": {"topic": topic}})
                check(r["agent"] == "tester" and len(r["id"]) == 36, f"remember: {r}")
            r = await call_ok(session, "memory_remember", {
                "text": "Reviews must check error handling on every network call.",
                "kind": "rule", "agent": "reviewer",
            })
            check(r["agent"] == "reviewer", f"remember for another agent: {r}")
            summary["calls"]["memory_remember"] = "ok"

            r = await call_ok(session, "memory_recall", {"query": "the API request timed out, what now?", "k": 2})
            check(len(r["results"]) == 2, f"recall k: {r}")
            check("HTTP" in r["results"][0]["text"], f"recall top: {r['results'][0]}")
            check(r["results"][0]["why"]["similarity"] is not None, f"recall why: {r['results'][0]}")
            r = await call_ok(session, "memory_recall", {
                "query": "where is the database configured", "k": 5,
                "filter": {"eq": {"field": "topic", "value": "deploy"}},
            })
            check([h["metadata"]["topic"] for h in r["results"]] == ["deploy"], f"recall filter: {r}")
            r = await call_ok(session, "memory_recall", {"query": "DATABASE_URL", "mode": "text"})
            check("DATABASE_URL" in r["results"][0]["text"], f"recall text mode: {r}")
            r = await call_ok(session, "memory_recall", {
                "query": "what should a code review look at", "k": 10, "shards": ["reviewer"],
                "threshold": 0.1,
            })
            check("reviewer" in {h["agent"] for h in r["results"]}, f"recall across agents: {r}")
            r = await call_ok(session, "memory_recall", {"query": "error handling", "agent": "reviewer"})
            check(r["agent"] == "reviewer" and r["results"], f"recall as another agent: {r}")
            # Time: a memory from an earlier conversation keeps its day, and a window finds it.
            r = await call_ok(session, "memory_remember", {
                "text": "We agreed to freeze deploys during the holidays.", "agent": "timeline",
                "at": "2026-11-20T15:00:00+01:00",
            })
            await call_ok(session, "memory_remember", {
                "text": "Deploys resume on Monday.", "agent": "timeline",
            })
            r = await call_ok(session, "memory_recall", {
                "query": "what did we decide about deploys", "agent": "timeline",
                "since": "2026-11-20", "until": "2026-11-21",
            })
            check([h["created"] for h in r["results"]] == ["2026-11-20T14:00:00Z"], f"recall window: {r}")
            check(r["results"][0]["created_at"] == 1795183200000, f"recall created_at: {r}")
            got = await call_ok(session, "memory_get", {"id": r["results"][0]["id"], "agent": "timeline"})
            check(got["created"] == "2026-11-20T14:00:00Z" and got["updated"].startswith("20"), f"get times: {got}")
            r = await call_ok(session, "memory_recall", {
                "query": "what did we decide about deploys", "agent": "timeline", "since": "7d",
            })
            check([h["text"] for h in r["results"]] == ["Deploys resume on Monday."], f"recall since: {r}")
            summary["calls"]["memory_recall"] = "ok"

            r = await call_ok(session, "memory_learn", {
                "task": "deploy the web app to staging",
                "steps": [
                    {"action": "run ./deploy.sh staging", "observation": "error: missing env var DATABASE_URL"},
                    {"action": "export DATABASE_URL from the vault and rerun ./deploy.sh staging",
                     "observation": "deployed to staging, health check passed"},
                ],
                "answer": "deployed", "outcome": "success",
            })
            check(r["items"] and r["verdicts"][0]["outcome"] == "success", f"learn: {r}")
            r = await call_ok(session, "memory_learn", {
                "task": "run the database migration on staging",
                "steps": [{"action": "run migrate up without a backup",
                           "observation": "migration failed halfway; table left locked"}],
                "outcome": "failure",
            })
            check(r["verdicts"][0]["outcome"] == "failure", f"learn failure: {r}")
            summary["calls"]["memory_learn"] = "ok"

            r = await call_ok(session, "memory_find_patterns", {"task": "ship the site to the staging server", "k": 3})
            items = r["items"]
            check(items, f"find_patterns: {r}")
            item = items[0]["item"]
            summary["calls"]["memory_find_patterns"] = "ok"

            r = await call_ok(session, "memory_feedback", {"id": item["id"], "outcome": "success"})
            check(r["id"] == item["id"] and r["confidence"] > item["confidence"], f"feedback: {r} vs {item}")
            r2 = await call_ok(session, "memory_feedback", {"id": item["id"], "reward": 0.0})
            check(r2["confidence"] < r["confidence"], f"feedback reward: {r2}")
            summary["calls"]["memory_feedback"] = "ok"

            r = await call_ok(session, "memory_synthesize_context", {
                "task": "deploy to staging", "token_budget": 200, "shards": ["reviewer"],
            })
            check(r["text"] and r["items"] and 0 < r["tokens_used"] <= 200, f"synthesize: {r}")
            summary["calls"]["memory_synthesize_context"] = "ok"

            r = await call_ok(session, "memory_consolidate", {"dry_run": True})
            check(r["dry_run"] is True and r["examined"] >= 1 and r["written"] == 0, f"consolidate: {r}")
            summary["calls"]["memory_consolidate"] = "ok"

            r = await call_ok(session, "memory_consolidate", {
                "dry_run": True, "decay_half_life_days": 30, "prune_below_confidence": 0.2,
                "prune_min_evidence": 1, "prune_idle_days": 90, "duplicate_threshold": 0.95,
            })
            check(r["dry_run"] is True and r["written"] == 0, f"consolidate with options: {r}")
            await call_err(session, "memory_consolidate", {"prune_below_confidence": 3}, "[0, 1]")

            r = await call_ok(session, "memory_contradictions", {})
            check(r["agent"] == "tester" and isinstance(r["contradictions"], list), f"contradictions: {r}")
            summary["calls"]["memory_contradictions"] = "ok"

            r = await call_ok(session, "memory_remember", {"text": "The staging database is on port 5433."})
            mid = r["id"]
            r = await call_ok(session, "memory_get", {"id": mid})
            check(r["text"] == "The staging database is on port 5433." and "embedding" not in r, f"get: {r}")
            summary["calls"]["memory_get"] = "ok"
            r = await call_ok(session, "memory_update", {
                "id": mid, "text": "The staging database is on port 6543.", "metadata": {"topic": "db"},
            })
            check(r["updated"] == mid, f"update: {r}")
            r = await call_ok(session, "memory_get", {"id": mid})
            check(r["text"].endswith("6543.") and r["metadata"] == {"topic": "db"}, f"get after update: {r}")
            await call_err(session, "memory_update", {"id": mid}, "text, metadata")
            summary["calls"]["memory_update"] = "ok"
            r = await call_ok(session, "memory_forget", {"id": mid})
            check(r["forgotten"] == mid, f"forget: {r}")
            await call_err(session, "memory_get", {"id": mid}, "no memory")
            await call_err(session, "memory_forget", {"id": mid}, "no memory")
            await call_err(session, "memory_get", {"id": "not-an-id"}, "invalid record id")
            summary["calls"]["memory_forget"] = "ok"

            r = await call_ok(session, "vector_shard_stats", {})
            listed = {s["shard"] for s in r["shards"]}
            check({"vecs", "tester", "reviewer"} <= listed, f"stats of all: {listed}")
            summary["calls"]["vector_shard_stats"] = "ok"

            # vector_sync_shard: a successful exchange with a real hub is tested in Rust
            # (tests/it/sync.rs); here, its argument checks and a missing identity.
            await call_err(session, "vector_sync_shard",
                           {"shard": "vecs", "peer": "127.0.0.1:9", "trust": "ab" * 32},
                           "reasonbank sync keygen")
            await call_err(session, "vector_sync_shard",
                           {"shard": "vecs", "peer": "nowhere", "trust": "ab" * 32}, "argument peer")
            await call_err(session, "vector_sync_shard",
                           {"shard": "vecs", "peer": "127.0.0.1:9", "trust": "xyz"}, "argument trust")
            summary["calls"]["vector_sync_shard"] = "ok"

            # --- errors: each a tool result with isError, never a dead server -------------------
            errs = summary["errors"]
            errs["missing_field"] = await call_err(session, "memory_remember", {}, "missing field", "text")
            errs["wrong_type"] = await call_err(session, "memory_recall", {"query": "x", "k": "five"}, "invalid type")
            errs["unknown_field"] = await call_err(session, "memory_recall", {"query": "x", "kk": 3}, "unknown field")
            errs["not_a_time"] = await call_err(
                session, "memory_recall", {"query": "x", "since": "last week"}, "argument since", "RFC 3339")
            errs["empty_window"] = await call_err(
                session, "memory_recall", {"query": "x", "since": "2026-12-01", "until": "2026-11-01"},
                "window is empty")
            errs["time_before_1970"] = await call_err(
                session, "memory_remember", {"text": "x", "at": "1969-07-20"}, "argument at", "1970")
            errs["unknown_shard"] = await call_err(
                session, "vector_insert", {"shard": "nope", "vector": [1, 0, 0, 0]}, "no shard", "nope")
            errs["wrong_dimensions"] = await call_err(
                session, "vector_insert", {"shard": "vecs", "vector": [1, 0, 0]}, "3 dimensions", "4")
            errs["search_wrong_dimensions"] = await call_err(
                session, "vector_search", {"shard": "vecs", "vector": [1, 0, 0, 0, 0]}, "dimensions")
            errs["nan"] = await call_err(
                session, "vector_insert", {"shard": "vecs", "vector": [1, math.nan, 0, 0]}, "NaN")
            errs["infinite"] = await call_err(
                session, "vector_insert", {"shard": "vecs", "vector": [1, 1e39, 0, 0]}, "inf")
            errs["zero_vector"] = await call_err(
                session, "vector_insert", {"shard": "vecs", "vector": [0, 0, 0, 0]}, "zero")
            errs["bad_filter"] = await call_err(
                session, "vector_search", {"shard": "vecs", "vector": [1, 0, 0, 0], "filter": {"bogus": 1}},
                "invalid filter")
            errs["bad_filter_string"] = await call_err(
                session, "memory_recall", {"query": "x", "filter": "{not json"}, "filter")
            errs["path_traversal"] = await call_err(
                session, "memory_recall", {"query": "x", "agent": "../../etc/passwd"}, "invalid shard id")
            errs["unknown_agent"] = await call_err(
                session, "memory_recall", {"query": "x", "agent": "ghost"}, "ghost", "no memory")
            errs["unknown_other_shard"] = await call_err(
                session, "memory_synthesize_context", {"task": "x", "shards": ["ghost"]}, "ghost")
            errs["bad_record_id"] = await call_err(
                session, "memory_feedback", {"id": "not-a-uuid", "outcome": "success"}, "invalid record id")
            errs["feedback_without_verdict"] = await call_err(
                session, "memory_feedback", {"id": item["id"]}, "outcome", "reward")
            errs["model_mismatch"] = await call_err(
                session, "vector_shard_create", {"shard": "vecs", "dimensions": 8, "model_id": "test-model"},
                "4-d")
            errs["empty_steps"] = await call_err(
                session, "memory_learn", {"task": "x", "steps": []}, "steps")
            errs["bad_k"] = await call_err(
                session, "vector_search", {"shard": "vecs", "vector": [1, 0, 0, 0], "k": 0}, "k must be")

            # Still serving, and nothing half-written by the failed calls.
            r = await call_ok(session, "vector_shard_stats", {"shard": "vecs"})
            check(r["shards"][0]["records"] == 3, f"failed inserts wrote nothing: {r}")
            summary["alive_after_errors"] = True

            # Round trip of a small recall, for the record (the benchmark is bench.py).
            t0 = time.perf_counter()
            for _ in range(20):
                await call_ok(session, "memory_recall", {"query": "api timeout", "k": 3})
            summary["recall_ms_avg"] = round((time.perf_counter() - t0) / 20 * 1000, 3)

            # This server has no reranker: `rerank` is refused, saying how to get one.
            await call_err(session, "memory_recall", {"query": "api", "rerank": 5}, "no reranker")
    await check_rerank(binary, root, env)
    summary["rerank"] = "ok"
    await check_model(binary, root, env)
    summary["model"] = "ok"
    summary["ok"] = True
    print(json.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
