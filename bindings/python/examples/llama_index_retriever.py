"""A reasonbank memory as a LlamaIndex retriever (plain example; needs ``llama-index-core``).

    pip install reasonbank-*.whl llama-index-core
    python llama_index_retriever.py

LlamaIndex's ``BaseRetriever`` asks for ``_retrieve(query_bundle) -> list[NodeWithScore]``;
each recalled memory becomes a ``TextNode`` with its id, metadata and score.
"""

import tempfile
from typing import List

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from reasonbank import AgentMemory


class ReasonbankLlamaRetriever(BaseRetriever):
    def __init__(self, memory: AgentMemory, k: int = 4) -> None:
        super().__init__()
        self._memory = memory
        self._k = k

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        hits = self._memory.recall(query_bundle.query_str, k=self._k)
        return [
            NodeWithScore(node=TextNode(id_=h.id, text=h.text, metadata=dict(h.metadata)), score=h.score)
            for h in hits
        ]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as root:
        memory = AgentMemory.open(root, "coder")
        memory.remember("Retry flaky HTTP calls with exponential backoff and jitter.", {"topic": "http"})
        memory.remember("Bake sourdough at 250 degrees for 40 minutes.", {"topic": "bread"})
        for n in ReasonbankLlamaRetriever(memory, k=1).retrieve("the API timed out"):
            print(f"{n.score:.3f} {n.node.get_content()}")
