"""Issue #16 item 4 through the installed wheel: ``open(..., local_model=)`` picks the local
embedding model (bge-small-en-v1.5 next to the default all-MiniLM-L6-v2), the shard remembers
it, and another model or an unknown name raises with a stable code."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import reasonbank
from reasonbank import AgentMemory, AsyncAgentMemory, ReasonbankError

BGE = "bge-small-en-v1.5"


def test_bge_embeds_stores_under_its_model_id_and_recalls(root: Path) -> None:
    mem = AgentMemory.open(root, "bge", local_model=BGE)
    assert mem.model_id == "bge-small-en-v1.5-int8"
    assert mem.dimensions == 384
    mem.remember_batch(
        [
            {"text": "Back off exponentially when the API answers 429 Too Many Requests."},
            {"text": "Paris is the capital of France."},
        ]
    )
    hits = mem.recall("the server is rate-limiting us", k=1)
    assert "429" in hits[0].text

    with pytest.raises(ReasonbankError) as e:
        AgentMemory.open(root, "bge")
    assert e.value.code == "RB_MODEL_MISMATCH"
    assert "bge-small-en-v1.5-int8" in str(e.value) and "all-MiniLM-L6-v2-int8" in str(e.value)


def test_unknown_local_model_is_invalid_input_and_creates_nothing(root: Path) -> None:
    with pytest.raises(ReasonbankError) as e:
        AgentMemory.open(root, "a", local_model="e5-large")
    assert e.value.code == "RB_INVALID_INPUT"
    assert "e5-large" in str(e.value) and BGE in str(e.value)
    assert not root.exists()
    with pytest.raises(ReasonbankError) as e:
        reasonbank.model_paths(local_model="e5-large")
    assert e.value.code == "RB_INVALID_INPUT"


def test_fetch_models_and_model_paths_name_the_model() -> None:
    bge = reasonbank.fetch_models(local_model=BGE)
    assert bge.local_model == BGE
    assert os.path.exists(bge.model)
    assert reasonbank.model_paths(local_model=BGE) == bge
    minilm = reasonbank.model_paths()
    assert minilm.local_model == "all-MiniLM-L6-v2"
    assert minilm.model != bge.model


def test_async_open_takes_local_model(root: Path) -> None:
    async def main() -> None:
        mem = await AsyncAgentMemory.open(root, "bge-async", local_model=BGE)
        assert mem.model_id == "bge-small-en-v1.5-int8"

    asyncio.run(main())
