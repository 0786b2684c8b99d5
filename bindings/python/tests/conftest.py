"""Fixtures: a fresh root per test and one opened memory per test module (the model loads once
per process; opening a second agent reuses nothing but is cheap after the first)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

import reasonbank


def pytest_sessionstart(session: pytest.Session) -> None:
    # These tests must exercise the installed wheel, never the source tree.
    here = Path(__file__).resolve().parents[1]
    assert not Path(reasonbank.__file__).resolve().is_relative_to(here), (
        f"reasonbank imported from the source tree ({reasonbank.__file__}); install the wheel"
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "memories"


@pytest.fixture
def memory(root: Path) -> Iterator[reasonbank.AgentMemory]:
    yield reasonbank.AgentMemory.open(root, "coder")


def cache_dir() -> str:
    return os.environ.get("REASONBANK_HOME", "")
