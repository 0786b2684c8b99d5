"""A typed usage file: `mypy --strict` checks it against the installed package's types
(`py.typed`, dataclasses, `_native.pyi`). It is also run by test_usage.py, so it must work."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from typing import Any, List, Optional

import numpy as np

from reasonbank import (
    AgentMemory,
    AsyncAgentMemory,
    LearnReport,
    MemoryItem,
    MemoryRecord,
    ReasonbankError,
    Recalled,
    ScoredItem,
    ShardStats,
    SynthesizedContext,
)


def remember_and_recall(root: str) -> List[Recalled]:
    memory: AgentMemory = AgentMemory.open(root, "typed", allow_fetch=True)
    memory_id: str = memory.remember("Retry flaky HTTP calls with backoff", {"topic": "http"})
    hits: List[Recalled] = memory.recall("the API timed out", k=3, mode="hybrid", search="auto")
    similarity: Optional[float] = hits[0].why.similarity
    assert similarity is not None
    rerank: Optional[float] = hits[0].why.rerank
    assert rerank is None, "no reranker, no rerank score"
    record: Optional[MemoryRecord] = memory.get(memory_id)
    assert record is not None
    vectors: "np.ndarray[Any, np.dtype[np.float32]]" = memory.embed(["a", "b"])
    assert vectors.shape[0] == 2
    report: LearnReport = memory.learn(
        {"task": "t", "steps": [{"action": "a", "observation": "o"}], "outcome": "success"}
    )
    item: MemoryItem = memory.feedback(report.items[0].id, "success")
    scored: List[ScoredItem] = memory.find_similar_patterns("t", k=1)
    assert all(s.rerank is None for s in scored)
    context: SynthesizedContext = memory.synthesize_context("t", token_budget=64)
    stats: ShardStats = memory.stats()
    try:
        memory.get("bad id")
    except ReasonbankError as e:
        code: str = e.code
        assert code == "RB_INVALID_ID"
    assert item.confidence > 0 and scored and context.tokens_used >= 0 and stats.records >= 1
    return hits


async def recall_async(root: str) -> List[Recalled]:
    memory = await AsyncAgentMemory.open(root, "typed")
    try:
        await memory.recall("HTTP", k=1, rerank=5)
    except ReasonbankError as e:
        assert e.code == "RB_INVALID_INPUT", "rerank needs open(rerank_url=, rerank_model=)"
    else:
        raise AssertionError("rerank without a reranker must raise")
    return await memory.recall("HTTP", k=1)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        print(remember_and_recall(d)[0].text)
        print(asyncio.run(recall_async(d))[0].text)
    sys.exit(0)
