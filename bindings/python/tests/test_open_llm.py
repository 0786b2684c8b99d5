"""Issue #15 through the installed wheel: ``open(..., create=False)`` opens existing agents
only and creates nothing, and ``llm_url``/``llm_model`` make ``learn`` judge and distill with
an LLM (an in-test OpenAI-compatible server), whose malformed output is a clear error that
stores nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from llm_server import SEEN, UNJUDGED, good, malformed, serve

from reasonbank import AgentMemory, AsyncAgentMemory, ReasonbankError


def test_create_false_opens_an_existing_agent_and_creates_nothing(tmp_path: Path) -> None:
    root = tmp_path / "memories"
    with pytest.raises(ReasonbankError) as e:
        AgentMemory.open(root, "ghost", create=False)
    assert e.value.code == "RB_NO_SUCH_SHARD"
    assert "ghost.sqlite" in str(e.value)
    assert not root.exists(), "neither the root nor the shard is created"

    AgentMemory.open(root, "known").remember("Retry flaky HTTP calls with backoff")
    with pytest.raises(ReasonbankError) as e:
        AgentMemory.open(root, "ghost", create=False)
    assert e.value.code == "RB_NO_SUCH_SHARD"
    assert sorted(p.name for p in root.iterdir() if p.suffix == ".sqlite") == ["known.sqlite"]

    known = AgentMemory.open(root, "known", create=False)
    assert known.recall("the API timed out", k=1)[0].text == "Retry flaky HTTP calls with backoff"

    async def open_async() -> None:
        with pytest.raises(ReasonbankError) as e:
            await AsyncAgentMemory.open(root, "ghost", create=False)
        assert e.value.code == "RB_NO_SUCH_SHARD"
        assert (await AsyncAgentMemory.open(root, "known", create=False)).agent == "known"

    asyncio.run(open_async())
    assert not (root / "ghost.sqlite").exists()


def test_learn_with_an_llm_judge_and_distiller(root: Path) -> None:
    with serve(good) as url:
        memory = AgentMemory.open(root, "llm", llm_url=url, llm_model="tiny")
        report = memory.learn(UNJUDGED)
        requests = list(SEEN[url])
    assert report.verdicts[0].outcome == "success"
    assert report.verdicts[0].judge == "llm"
    assert [i.title for i in report.items] == ["Verify outputs"]
    assert report.items[0].distiller == "llm"
    assert {r["model"] for r in requests} == {"tiny"}
    assert len(requests) == 2, "one judge call, one distiller call"
    stored = memory.recall("check the generated file", k=5, kinds=["pattern"])
    assert [h.id for h in stored] == [report.items[0].id]


def test_malformed_llm_output_is_an_error_and_stores_nothing(root: Path) -> None:
    with serve(malformed) as url:
        memory = AgentMemory.open(root, "llm", llm_url=url, llm_model="tiny")
        with pytest.raises(ReasonbankError) as e:
            memory.learn(UNJUDGED)
    assert e.value.code == "RB_LLM"
    assert "malformed LLM output (distill)" in str(e.value)
    assert memory.stats().records == 0, "neither the experience nor an item is stored"


def test_llm_url_and_model_go_together(root: Path) -> None:
    with pytest.raises(ReasonbankError) as e:
        AgentMemory.open(root, "llm", llm_url="http://127.0.0.1:9/v1")
    assert e.value.code == "RB_INVALID_INPUT"
    assert "llm_url and llm_model" in str(e.value)
    with pytest.raises(ReasonbankError) as e:
        AgentMemory.open(root, "llm", llm_url="ftp://example/v1", llm_model="tiny")
    assert e.value.code == "RB_INVALID_INPUT"
