"""Time through the package (issue #16 point 5): ``created_at`` on remember, ``since``/``until``
on recall as datetimes, dates, seconds and text, with the same errors as every front end."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

import reasonbank
from reasonbank import AgentMemory, AsyncAgentMemory, ReasonbankError

UTC = dt.timezone.utc
NOV2 = dt.datetime(2026, 11, 2, tzinfo=UTC)
NOV20 = dt.datetime(2026, 11, 20, tzinfo=UTC)


def _ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


def test_memories_keep_their_time_and_recall_takes_a_window(memory: AgentMemory) -> None:
    chose, moved = memory.remember_batch(
        [
            {"text": "We chose Postgres for the billing service.", "created_at": NOV2},
            {"text": "We moved the billing service to the new cluster.", "created_at": "2026-11-20"},
        ]
    )
    fresh = memory.remember("The billing service now pages the on-call engineer.")

    def ids(**window: object) -> list:
        hits = memory.recall("what happened to the billing service", k=5, **window)  # type: ignore[arg-type]
        return [h.id for h in hits]

    assert len(ids()) == 3
    assert ids(since=dt.date(2026, 11, 15), until=NOV20 + dt.timedelta(days=5)) == [moved]
    assert ids(until=NOV20.timestamp()) == [chose]
    assert ids(since="7d") == [fresh]
    hit = memory.recall("Postgres", k=1, until="2026-11-03")[0]
    assert hit.created_at == _ms(NOV2)
    got = memory.get(moved)
    assert got is not None and got.created_at == _ms(NOV20)

    with pytest.raises(ReasonbankError) as e:
        memory.recall("x", since="last week")
    assert e.value.code == "RB_INVALID_INPUT" and "RFC 3339" in str(e.value)
    with pytest.raises(ReasonbankError) as e:
        memory.recall("x", since=NOV20, until=NOV2)
    assert e.value.code == "RB_INVALID_INPUT" and "window is empty" in str(e.value)
    with pytest.raises(ReasonbankError) as e:
        memory.remember("too early", created_at=-1.0)
    assert e.value.code == "RB_INVALID_INPUT" and "created_at" in str(e.value)
    with pytest.raises(TypeError):
        memory.recall("x", since=True)  # type: ignore[arg-type]
    assert len(ids()) == 3


def test_async_api_takes_the_same_times(root: Path) -> None:
    async def main() -> None:
        mem = await AsyncAgentMemory.open(root, "timeline")
        await mem.remember("The holiday deploy freeze starts Friday.", created_at=NOV20)
        await mem.remember("Deploys resume on Monday.")
        hits = await mem.recall("deploy freeze", since=NOV20, until=NOV20 + dt.timedelta(days=1))
        assert [h.text for h in hits] == ["The holiday deploy freeze starts Friday."]

    asyncio.run(main())
    assert reasonbank.Instant is not None
