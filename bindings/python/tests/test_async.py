"""AsyncAgentMemory: coroutines over the blocking calls, concurrent on one event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

from reasonbank import AsyncAgentMemory


def test_async_api(root: Path) -> None:
    async def main() -> None:
        memory = await AsyncAgentMemory.open(root, "async-agent")
        assert memory.agent == "async-agent"
        ids = await asyncio.gather(*(memory.remember(f"fact {i} about caching layers") for i in range(8)))
        assert len(set(ids)) == 8
        results = await asyncio.gather(*(memory.recall("caching", k=3) for _ in range(16)))
        assert all(len(r) == 3 for r in results)
        got = await memory.get(ids[0])
        assert got is not None and got.text == "fact 0 about caching layers"
        await memory.update(ids[0], metadata={"checked": True})
        assert await memory.forget(ids[1])
        assert (await memory.stats()).records == 7
        report = await memory.learn({"task": "warm the cache", "steps": [{"action": "prefetch keys", "observation": "hit rate 99%"}], "outcome": "success"})
        assert report.items
        assert await memory.find_similar_patterns("warm up the cache")
        ctx = await memory.synthesize_context("cache warmup", token_budget=128)
        assert ctx.tokens_used <= 128

    asyncio.run(main())
