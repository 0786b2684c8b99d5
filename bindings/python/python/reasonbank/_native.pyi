"""Type stubs of the native half (``bindings/python/src/lib.rs``). Use :mod:`reasonbank`."""

from typing import List, Optional, Tuple, Union

class ReasonbankError(Exception):
    code: str

def set_default_ort_library(path: Optional[str]) -> None: ...
def default_ort_library() -> Optional[str]: ...
def model_files(
    fetch: bool,
    cache_dir: Optional[str] = None,
    ort_library: Optional[str] = None,
    local_model: Optional[str] = None,
) -> str: ...
def generate_identity(name: str = "reasonbank") -> Tuple[str, str, str]: ...
def run_mcp_server(argv: List[str]) -> int: ...
def run_cli(argv: List[str]) -> int: ...

class NativeServer:
    @property
    def address(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    def close(self) -> None: ...

class NativeMemory:
    @staticmethod
    def open(
        root: str,
        agent: str,
        cache_dir: Optional[str] = None,
        ort_library: Optional[str] = None,
        model: Optional[str] = None,
        tokenizer_dir: Optional[str] = None,
        allow_fetch: Optional[bool] = None,
        max_open_shards: Optional[int] = None,
        recency_half_life_s: Optional[float] = None,
        create: Optional[bool] = None,
        llm_url: Optional[str] = None,
        llm_model: Optional[str] = None,
        rerank_url: Optional[str] = None,
        rerank_model: Optional[str] = None,
        local_model: Optional[str] = None,
    ) -> "NativeMemory": ...
    @property
    def agent(self) -> str: ...
    @property
    def root(self) -> str: ...
    @property
    def model_id(self) -> str: ...
    @property
    def dimensions(self) -> int: ...
    def remember_batch(self, memories_json: str) -> List[str]: ...
    def recall(
        self,
        query: str,
        k: int,
        threshold: Optional[float] = None,
        filter: Optional[str] = None,
        mode: Optional[str] = None,
        search: Optional[str] = None,
        shards: Optional[List[str]] = None,
        kinds: Optional[List[str]] = None,
        include_inactive: bool = False,
        rerank: Optional[int] = None,
        since: Union[str, float, None] = None,
        until: Union[str, float, None] = None,
    ) -> str: ...
    def get(self, id: str) -> Optional[Tuple[str, Optional[List[float]]]]: ...
    def update(self, id: str, text: Optional[str] = None, metadata_json: Optional[str] = None) -> None: ...
    def forget(self, id: str) -> bool: ...
    def embed(self, texts: List[str], kind: str) -> List[List[float]]: ...
    def learn(self, trajectory_json: str) -> str: ...
    def learn_contrastive(self, task: str, trajectories_json: str) -> str: ...
    def feedback(self, id: str, outcome: Optional[str] = None, reward: Optional[float] = None) -> str: ...
    def consolidate(
        self,
        dry_run: Optional[bool] = None,
        duplicate_threshold: Optional[float] = None,
        contradiction_threshold: Optional[float] = None,
        evidence_half_life_s: Optional[float] = None,
        prune_below_confidence: Optional[float] = None,
        prune_min_evidence: Optional[float] = None,
        prune_idle_s: Optional[float] = None,
    ) -> str: ...
    def contradictions(self) -> str: ...
    def find_similar_patterns(self, task: str, threshold: float, k: int) -> str: ...
    def synthesize_context(self, task: str, token_budget: int, shards: Optional[List[str]] = None) -> str: ...
    def stats(self) -> str: ...
    def sync(
        self,
        peer: str,
        trust: str,
        direction: Optional[str] = None,
        shards: Optional[List[str]] = None,
        identity_dir: Optional[str] = None,
        cert_pem: Optional[str] = None,
        key_pem: Optional[str] = None,
        text_only: bool = False,
    ) -> str: ...
    def serve(
        self,
        listen: str,
        peers_json: str,
        identity_dir: Optional[str] = None,
        cert_pem: Optional[str] = None,
        key_pem: Optional[str] = None,
    ) -> NativeServer: ...
