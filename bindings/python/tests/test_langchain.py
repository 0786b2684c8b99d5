"""The LangChain retriever against the real model (offline: langchain-core only)."""

from __future__ import annotations

import asyncio

from langchain_core.documents import Document

from reasonbank import AgentMemory
from reasonbank.langchain import ReasonbankRetriever


def test_retriever(memory: AgentMemory) -> None:
    retriever = ReasonbankRetriever(memory=memory, k=1)
    ids = retriever.add_documents(
        [
            Document(page_content="Retry flaky HTTP calls with exponential backoff", metadata={"topic": "http"}),
            Document(page_content="Sourdough needs a long cold proof", metadata={"topic": "bread"}),
        ]
    )
    docs = retriever.invoke("the API timed out")
    assert len(docs) == 1
    assert docs[0].page_content.startswith("Retry flaky HTTP")
    assert docs[0].metadata["topic"] == "http" and docs[0].metadata["id"] == ids[0]
    assert docs[0].metadata["score"] > 0
    adocs = asyncio.run(retriever.ainvoke("bread baking"))
    assert adocs[0].metadata["topic"] == "bread"
    filtered = ReasonbankRetriever(memory=memory, k=5, filter={"eq": {"field": "topic", "value": "bread"}})
    assert [d.metadata["topic"] for d in filtered.invoke("anything")] == ["bread"]
