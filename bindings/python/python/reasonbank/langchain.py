"""LangChain adapter: :class:`ReasonbankRetriever`, an agent's memory as a LangChain retriever.

Needs ``langchain-core`` (``pip install 'reasonbank[langchain]'``).

>>> from reasonbank import AgentMemory
>>> from reasonbank.langchain import ReasonbankRetriever
>>> retriever = ReasonbankRetriever(memory=AgentMemory.open("memories", "coder"), k=3)  # doctest: +SKIP
>>> retriever.invoke("the API timed out")[0].page_content                               # doctest: +SKIP
'Retry flaky HTTP calls with backoff'
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from ._memory import AgentMemory, RecallModeName, SearchModeName
from ._types import Recalled


def to_document(hit: Recalled) -> Document:
    """A recalled memory as a LangChain ``Document``: its text, its metadata plus ``id``,
    ``shard``, ``kind``, ``score`` and the ranking signals under ``why``."""
    metadata: Dict[str, Any] = dict(hit.metadata)
    metadata.update(
        id=hit.id,
        shard=hit.shard,
        kind=hit.kind,
        score=hit.score,
        why={
            "similarity": hit.why.similarity,
            "bm25": hit.why.bm25,
            "recency": hit.why.recency,
            "reliability": hit.why.reliability,
        },
        created_at=hit.created_at,
    )
    return Document(page_content=hit.text, metadata=metadata, id=hit.id)


class ReasonbankRetriever(BaseRetriever):
    """Retrieves an agent's memories with :meth:`AgentMemory.recall` (hybrid meaning and
    words by default). The async path runs the recall in a worker thread."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: AgentMemory
    """The memory to recall from."""
    k: int = 4
    """How many documents to return."""
    threshold: Optional[float] = None
    """Minimum cosine similarity."""
    filter: Optional[Union[str, Mapping[str, Any]]] = None
    """A metadata filter (see ``AgentMemory.recall``)."""
    mode: Optional[RecallModeName] = None
    """``hybrid`` (default), ``vector`` or ``text``."""
    search: Optional[SearchModeName] = None
    """How vectors are searched (``auto`` default)."""
    shards: Optional[Sequence[str]] = None
    """Other agents' shards to search too."""

    def _recall(self, query: str) -> List[Document]:
        hits = self.memory.recall(
            query,
            k=self.k,
            threshold=self.threshold,
            filter=self.filter,
            mode=self.mode,
            search=self.search,
            shards=self.shards,
        )
        return [to_document(h) for h in hits]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> List[Document]:
        return self._recall(query)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> List[Document]:
        return await asyncio.to_thread(self._recall, query)

    def add_documents(self, documents: Sequence[Document]) -> List[str]:
        """Remembers LangChain documents (text and metadata) in one transaction; their ids."""
        return self.memory.remember_batch(
            [{"text": d.page_content, "metadata": dict(d.metadata)} for d in documents]
        )
