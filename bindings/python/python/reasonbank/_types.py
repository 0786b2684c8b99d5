"""Typed results of :class:`reasonbank.AgentMemory`.

Each is a frozen dataclass built from the JSON the native half returns (the same fields, in
snake_case, as the CLI's ``--json``). Building one from a dict with a field it does not know is
an error: the Python and Rust halves ship in one wheel, and the tests catch any drift.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Literal, Mapping, Optional, Type, TypeVar

T = TypeVar("T")

ItemKind = Literal["strategy", "pitfall", "insight"]
Outcome = Literal["success", "failure"]
ItemStatus = Literal["active", "merged", "archived"]


def _build(cls: Type[T], d: Mapping[str, Any], **nested: Any) -> T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(d) - names
    if unknown:
        raise TypeError(f"{cls.__name__}: unexpected fields {sorted(unknown)}")
    values = {k: v for k, v in d.items()}
    values.update(nested)
    return cls(**values)


@dataclass(frozen=True)
class Why:
    """Why a memory was recalled: each ranking signal that contributed."""

    similarity: Optional[float]
    """Cosine similarity to the query (``None`` in text mode)."""
    bm25: Optional[float]
    """BM25 score of the query's words (``None`` in vector mode or without a word match)."""
    recency: float
    """Recency weight in (0, 1]."""
    reliability: Optional[float]
    """Confidence of a learned item (``None`` for plain memories)."""
    rerank: Optional[float] = None
    """The reranker's score against the query, when the recall was reranked."""


@dataclass(frozen=True)
class Recalled:
    """A recalled memory."""

    id: str
    shard: str
    kind: str
    text: str
    metadata: Dict[str, Any]
    score: float
    why: Why
    created_at: int
    """Unix milliseconds."""
    updated_at: int
    """Unix milliseconds."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Recalled":
        return _build(cls, d, why=_build(Why, d["why"]))


@dataclass(frozen=True)
class MemoryRecord:
    """A stored memory, with its embedding (``numpy.float32`` array) when it has one."""

    id: str
    kind: str
    namespace: str
    text: str
    metadata: Dict[str, Any]
    created_at: int
    updated_at: int
    version: int
    origin: str
    deleted: bool
    embedding: Any = None
    """The unit-length vector as a ``numpy.ndarray`` of ``float32``, or ``None``."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], embedding: Any = None) -> "MemoryRecord":
        return _build(cls, d, embedding=embedding)


@dataclass(frozen=True)
class MemoryItem:
    """A learned strategy, pitfall or insight (a ReasoningBank item)."""

    id: str
    title: str
    description: str
    content: str
    kind: ItemKind
    outcome: Outcome
    source: Optional[str]
    task: str
    distiller: str
    confidence: float
    successes: float
    failures: float
    usage_count: int
    last_used_at: Optional[int]
    status: ItemStatus
    merged_into: Optional[str]
    merged_from: List[str]
    contradicts: List[str]
    created_at: int
    updated_at: int

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "MemoryItem":
        return _build(cls, d)


@dataclass(frozen=True)
class ScoredItem:
    """A learned item ranked for a task."""

    item: MemoryItem
    shard: str
    score: float
    similarity: float
    recency: float
    reliability: float
    via_task: Optional[str]
    rerank: Optional[float] = None
    """The reranker's score, when the memory was opened with a reranker."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ScoredItem":
        return _build(cls, d, item=MemoryItem.from_dict(d["item"]))


@dataclass(frozen=True)
class Verdict:
    """A judge's verdict on a trajectory."""

    outcome: Outcome
    reasons: str
    judge: str
    fallback_from: Optional[str]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Verdict":
        return _build(cls, d)


@dataclass(frozen=True)
class Merge:
    winner: str
    loser: str
    similarity: float


@dataclass(frozen=True)
class ContradictionPair:
    a: str
    b: str
    similarity: float


@dataclass(frozen=True)
class Contradiction:
    """Two active items that consolidation flagged as contradicting each other."""

    a: MemoryItem
    b: MemoryItem
    similarity: float

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Contradiction":
        return _build(cls, d, a=MemoryItem.from_dict(d["a"]), b=MemoryItem.from_dict(d["b"]))


@dataclass(frozen=True)
class Pruned:
    id: str
    reason: str


@dataclass(frozen=True)
class ConsolidationReport:
    """What a consolidation did (or, with ``dry_run``, would do)."""

    dry_run: bool
    examined: int
    merges: List[Merge]
    contradictions: List[ContradictionPair]
    decayed: int
    pruned: List[Pruned]
    written: int
    revived: List[str]
    """Items that stand again after a merge cycle between replicas (the oldest of each)."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ConsolidationReport":
        return _build(
            cls,
            d,
            merges=[_build(Merge, m) for m in d["merges"]],
            contradictions=[_build(ContradictionPair, c) for c in d["contradictions"]],
            pruned=[_build(Pruned, p) for p in d["pruned"]],
        )


@dataclass(frozen=True)
class LearnReport:
    """What learning from a trajectory stored."""

    experiences: List[str]
    verdicts: List[Verdict]
    items: List[MemoryItem]
    consolidation: Optional[ConsolidationReport]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LearnReport":
        c = d.get("consolidation")
        return _build(
            cls,
            d,
            verdicts=[Verdict.from_dict(v) for v in d["verdicts"]],
            items=[MemoryItem.from_dict(i) for i in d["items"]],
            consolidation=None if c is None else ConsolidationReport.from_dict(c),
        )


@dataclass(frozen=True)
class ContextItem:
    shard: str
    id: str
    kind: ItemKind
    title: str
    score: float
    tokens: int


@dataclass(frozen=True)
class SynthesizedContext:
    """A prompt-ready block of learned items within a token budget."""

    text: str
    items: List[ContextItem]
    tokens_used: int
    token_budget: int
    tokens_exact: bool
    duplicates_removed: int
    omitted: int
    below_relevance_floor: int
    """Candidates left out because their relevance was far below the best one's."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SynthesizedContext":
        return _build(cls, d, items=[_build(ContextItem, i) for i in d["items"]])


@dataclass(frozen=True)
class ShardStats:
    """Counters and sizes of a shard."""

    records: int
    tombstones: int
    dimensions: int
    model_id: str
    metric: str
    schema_version: int
    file_bytes: int
    vector_bytes: int

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ShardStats":
        return _build(cls, d)


@dataclass(frozen=True)
class SyncReport:
    """What a sync moved for one shard."""

    shard: str
    sent: int
    received: int
    applied: int
    reembedded: int
    reembed_ms: float
    bytes_on_wire: int
    compression_ratio: float
    ms: float
    push_denied: bool
    """A two-way sync whose push the peer denied (a read-only grant): only the pull ran."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SyncReport":
        return _build(cls, d)


@dataclass(frozen=True)
class ModelFiles:
    """The files the local model runs from, and which model they are (``local_model``:
    ``all-MiniLM-L6-v2`` or ``bge-small-en-v1.5``)."""

    ort_library: str
    model: str
    tokenizer_dir: str
    local_model: str

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelFiles":
        return _build(cls, d)


@dataclass(frozen=True)
class Identity:
    """A sync identity: certificate, private key (PEM) and the certificate's fingerprint."""

    cert_pem: str
    key_pem: str
    fingerprint: str

    def __repr__(self) -> str:  # never print the private key
        return f"Identity(fingerprint={self.fingerprint!r})"
