"""Issue #16 through the installed wheel: ``open(..., rerank_url=, rerank_model=)`` gives recall
a reranker (an in-test server speaking the ``/v1/rerank`` protocol of llama.cpp, vLLM, Jina and
Cohere), ``recall(..., rerank=n)`` returns the reranker's best k of the first ranking's best n,
and every way it cannot rerank raises with a code, never a silent fallback."""

from __future__ import annotations

import asyncio
import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from reasonbank import AgentMemory, AsyncAgentMemory, ReasonbankError

NOTES = [
    "Cats sleep for most of the day in a warm spot.",
    "Cats purr when they are content, and sometimes when they are hurt.",
    "The cat door sticks in winter; oil the hinge.",
    "Dogs bark at the mail carrier every morning.",
]


def score(doc: str) -> float:
    """The door first, then anything about purring, the rest last: not the first ranking's."""
    return 4.0 if "door" in doc else 2.5 if "purr" in doc else -1.0


@contextmanager
def serve(status: int = 200) -> Iterator[Tuple[str, List[Dict[str, Any]]]]:
    """Serves POST /v1/rerank on 127.0.0.1: with ``status`` 200 the score of every document
    (in reverse order, as servers sorting by relevance do), else an error body. Yields the base
    URL (up to ``/v1``) and the list of requests it answered."""
    seen: List[Dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/v1/rerank":
                self.send_error(404)
                return
            request = json.loads(body)
            seen.append(request)
            if status == 200:
                results = [
                    {"index": i, "relevance_score": score(d)}
                    for i, d in enumerate(request["documents"])
                ]
                out = json.dumps({"model": request["model"], "results": results[::-1]})
            else:
                out = json.dumps({"error": "loading model"})
            data = out.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest's output for failures

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def pets(root: Path, **options: Any) -> AgentMemory:
    memory = AgentMemory.open(root, "pets", **options)
    memory.remember_batch([{"text": t} for t in NOTES])
    return memory


def test_rerank_returns_the_rerankers_best_k_of_the_first_rankings_best_n(root: Path) -> None:
    with serve() as (url, seen):
        memory = pets(root, rerank_url=url, rerank_model="test-reranker")
        hits = memory.recall("what do cats do", k=2, rerank=3)
        assert [h.text for h in hits] == [NOTES[2], NOTES[1]]
        assert [h.score for h in hits] == [4.0, 2.5]
        assert [h.why.rerank for h in hits] == [4.0, 2.5]
        assert hits[0].why.similarity is not None, "the first ranking's signals stay"

        assert len(seen) == 1
        assert seen[0]["query"] == "what do cats do"
        assert seen[0]["model"] == "test-reranker"
        assert len(seen[0]["documents"]) == 3
        assert not any("Dogs" in d for d in seen[0]["documents"]), "the dog is not in the best 3"

        # Without `rerank`, recall does not call the reranker and has no `why.rerank`.
        plain = memory.recall("what do cats do")
        assert all(h.why.rerank is None for h in plain)
        assert len(seen) == 1

        async def recall_async() -> List[str]:
            m = await AsyncAgentMemory.open(
                root, "pets", rerank_url=url, rerank_model="test-reranker"
            )
            return [h.text for h in await m.recall("what do cats do", k=1, rerank=3)]

        assert asyncio.run(recall_async()) == [NOTES[2]]
        assert len(seen) == 2


def test_with_a_reranker_find_similar_patterns_reports_its_score_as_rerank(root: Path) -> None:
    task = {
        "task": "fix the cat door",
        "steps": [{"action": "oil the door hinge", "observation": "the door swings freely"}],
        "outcome": "success",
    }
    with serve() as (url, seen):
        memory = AgentMemory.open(root / "a", "pets", rerank_url=url, rerank_model="test-reranker")
        memory.learn(task)
        before = len(seen)
        [scored] = memory.find_similar_patterns("the cat door sticks", k=1)
        assert isinstance(scored.rerank, float)
        assert len(seen) == before + 1
        assert seen[-1]["query"] == "the cat door sticks"

    plain = AgentMemory.open(root / "b", "pets")
    plain.learn(task)
    [unranked] = plain.find_similar_patterns("the cat door sticks", k=1)
    assert unranked.rerank is None


def test_rerank_without_a_reranker_or_with_fewer_candidates_than_k_is_invalid(
    root: Path,
) -> None:
    memory = pets(root / "a")
    with pytest.raises(ReasonbankError) as e:
        memory.recall("cats", k=2, rerank=10)
    assert e.value.code == "RB_INVALID_INPUT"
    assert "no reranker" in str(e.value)

    with serve() as (url, seen):
        ranked = pets(root / "b", rerank_url=url, rerank_model="test-reranker")
        with pytest.raises(ReasonbankError) as e:
            ranked.recall("cats", k=5, rerank=3)
        assert e.value.code == "RB_INVALID_INPUT"
        assert not seen, "raised before any call"


def test_a_failing_reranker_raises_rb_rerank(root: Path) -> None:
    with serve(503) as (url, seen):
        memory = pets(root, rerank_url=url, rerank_model="test-reranker")
        with pytest.raises(ReasonbankError) as e:
            memory.recall("cats", k=2, rerank=4)
        assert len(seen) == 1
    assert e.value.code == "RB_RERANK"
    assert "503" in str(e.value) and "loading model" in str(e.value)


def test_rerank_url_and_model_go_together(root: Path) -> None:
    for options in ({"rerank_url": "http://127.0.0.1:9/v1"}, {"rerank_model": "test-reranker"}):
        with pytest.raises(ReasonbankError) as e:
            AgentMemory.open(root, "pets", **options)
        assert e.value.code == "RB_INVALID_INPUT"
        assert "rerank_url and rerank_model" in str(e.value)
    with pytest.raises(ReasonbankError) as e:
        AgentMemory.open(root, "pets", rerank_url="ftp://example/v1", rerank_model="m")
    assert e.value.code == "RB_INVALID_INPUT"
