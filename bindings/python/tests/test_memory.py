"""AgentMemory through the installed wheel with the real model: remember, recall in every
mode, get with its vector, update, forget, embed, stats, and errors with stable codes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

import reasonbank
from reasonbank import AgentMemory, ReasonbankError


def test_remember_recall_get_update_forget(memory: AgentMemory) -> None:
    http = memory.remember("Retry flaky HTTP calls with backoff and jitter", {"topic": "http"})
    memory.remember("Bake bread at 250 degrees", {"topic": "bread"}, kind="recipe", namespace="home")
    assert len(http) == 36

    hits = memory.recall("the API timed out", k=1)
    assert [h.id for h in hits] == [http]
    hit = hits[0]
    assert isinstance(hit, reasonbank.Recalled)
    assert hit.metadata == {"topic": "http"}
    assert hit.shard == "coder" and hit.kind == "memory"
    assert hit.why.similarity is not None and 0.0 < hit.why.similarity <= 1.0
    assert "Recalled(" in repr(hit)

    for mode in ("hybrid", "vector", "text"):
        for search in ("auto", "exact", "quantized", "binary", "ann"):
            got = memory.recall("HTTP calls", k=1, mode=mode, search=search)  # type: ignore[arg-type]
            assert got[0].id == http, (mode, search)
    assert memory.recall("bread", k=5, filter={"eq": {"field": "topic", "value": "bread"}})[0].kind == "recipe"
    assert memory.recall("bread", k=5, filter='{"eq": {"field": "topic", "value": "nothing"}}') == []

    rec = memory.get(http)
    assert rec is not None and rec.text.startswith("Retry flaky")
    assert isinstance(rec.embedding, np.ndarray) and rec.embedding.dtype == np.float32
    assert rec.embedding.shape == (memory.dimensions,)
    assert abs(float(np.linalg.norm(rec.embedding)) - 1.0) < 1e-3

    memory.update(http, text="Retry flaky gRPC calls with backoff", metadata={"topic": "grpc"})
    rec = memory.get(http)
    assert rec is not None and rec.text == "Retry flaky gRPC calls with backoff"
    assert rec.metadata == {"topic": "grpc"}

    assert memory.forget(http) is True
    assert memory.forget(http) is False
    assert memory.get(http) is None
    assert memory.stats().records == 1


def test_remember_batch_embed_stats(memory: AgentMemory) -> None:
    ids = memory.remember_batch(
        [{"text": f"note {i} about topic {i % 3}", "metadata": {"i": i}} for i in range(20)]
    )
    assert len(set(ids)) == 20
    s = memory.stats()
    assert s.records == 20 and s.dimensions == memory.dimensions == 384
    assert s.model_id == memory.model_id
    v = memory.embed(["hello world", "goodbye"], "query")
    assert v.shape == (2, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3)


def code_of(e: pytest.ExceptionInfo[ReasonbankError]) -> str:
    return e.value.code


def test_errors_have_stable_codes(memory: AgentMemory, root: Path) -> None:
    with pytest.raises(ReasonbankError) as e:
        memory.get("not-a-uuid")
    assert code_of(e) == "RB_INVALID_ID"
    with pytest.raises(ReasonbankError) as e:
        memory.remember("   ")
    assert code_of(e) == "RB_EMPTY_TEXT"
    with pytest.raises(ReasonbankError) as e:
        memory.recall("x", filter={"bogus": 1})
    assert code_of(e) == "RB_INVALID_FILTER"
    with pytest.raises(ReasonbankError) as e:
        memory.recall("x", mode="psychic")  # type: ignore[arg-type]
    assert code_of(e) == "RB_INVALID_INPUT"
    with pytest.raises(ReasonbankError) as e:
        memory.update("0190a0c2-5b1e-7c3d-8e4f-a1b2c3d4e5f6", text="x")
    assert code_of(e) == "RB_NOT_FOUND"
    with pytest.raises(ReasonbankError) as e:
        memory.recall("x", shards=["nobody"])
    assert code_of(e) == "RB_NO_SUCH_SHARD"
    with pytest.raises(ReasonbankError) as e:
        AgentMemory.open(root, "../etc/passwd")
    assert code_of(e) == "RB_INVALID_ID"
    with pytest.raises(ReasonbankError) as e:
        memory.remember("x", {"a": float("nan")})
    assert code_of(e) == "RB_INVALID_INPUT"
    # Nothing was written by the failed calls.
    assert memory.stats().records == 0
    assert issubclass(ReasonbankError, Exception)


def test_calls_release_the_gil(memory: AgentMemory) -> None:
    """While a long native call runs in one thread, Python code keeps running in another."""
    texts = [f"sentence number {i} about retrying network calls" for i in range(256)]
    done = threading.Event()

    def work() -> None:
        memory.embed(texts)
        done.set()

    t = threading.Thread(target=work)
    ticks = 0
    start = time.perf_counter()
    t.start()
    while not done.is_set():
        ticks += 1
    t.join()
    elapsed = time.perf_counter() - start
    # With the GIL held for the whole call this loop would barely run (a handful of
    # switch-interval slices); released, it spins freely for the call's whole duration.
    assert elapsed > 0.05, elapsed
    assert ticks > 100_000, (ticks, elapsed)


def test_models_and_identity() -> None:
    files = reasonbank.model_paths()
    assert files.model and files.tokenizer_dir and files.ort_library
    ident = reasonbank.generate_identity("tester")
    assert len(ident.fingerprint) == 64 and "PRIVATE KEY" in ident.key_pem
    assert "PRIVATE" not in repr(ident)
