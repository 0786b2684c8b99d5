"""The wheel's ``reasonbank-mcp`` with ``--llm-url``/``--llm-model`` pointing at an in-test
OpenAI-compatible server, driven by the PyPI ``mcp`` client: ``memory_learn`` stores what the
LLM judged and distilled, and malformed LLM output is a tool error naming the problem, with
nothing stored."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, Tuple

from llm_server import UNJUDGED, good, malformed, serve
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from reasonbank import AgentMemory

# MCP clients give servers a minimal environment: forward what decides where the model is.
FORWARDED_ENV = ["REASONBANK_HOME", "XDG_CACHE_HOME", "ORT_DYLIB_PATH", "HOME", "PATH"]


def learn_over_mcp(root: Path, url: str) -> Tuple[bool, str, Dict[str, Any]]:
    """Starts the server for agent ``llm`` with the LLM at ``url``, calls ``memory_learn``
    once; returns (is_error, text, structured content)."""
    exe = shutil.which("reasonbank-mcp", path=str(Path(sys.executable).parent))
    assert exe, "the wheel installs a reasonbank-mcp command"
    params = StdioServerParameters(
        command=exe,
        args=["--root", str(root), "--agent", "llm", "--llm-url", url, "--llm-model", "tiny"],
        env={k: os.environ[k] for k in FORWARDED_ENV if k in os.environ},
    )

    async def main() -> Tuple[bool, str, Dict[str, Any]]:
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                r = await session.call_tool("memory_learn", dict(UNJUDGED))
                text = getattr(r.content[0], "text", "") if r.content else ""
                return bool(r.is_error), text, dict(r.structured_content or {})

    return asyncio.run(asyncio.wait_for(main(), timeout=300))


def test_memory_learn_with_the_llm_stores_its_items(root: Path) -> None:
    with serve(good) as url:
        is_error, text, body = learn_over_mcp(root, url)
    assert not is_error, text
    assert json.loads(text) == body
    assert body["agent"] == "llm"
    assert body["verdicts"][0]["outcome"] == "success"
    assert body["verdicts"][0]["judge"] == "llm"
    assert [i["title"] for i in body["items"]] == ["Verify outputs"]
    stored = AgentMemory.open(root, "llm", create=False).recall("verify the file", kinds=["pattern"])
    assert [h.id for h in stored] == [body["items"][0]["id"]]


def test_malformed_llm_output_is_a_tool_error_and_stores_nothing(root: Path) -> None:
    with serve(malformed) as url:
        is_error, text, _ = learn_over_mcp(root, url)
    assert is_error
    assert "malformed LLM output (distill)" in text, text
    # The server created its own agent's shard at startup; learning wrote nothing into it.
    assert AgentMemory.open(root, "llm", create=False).stats().records == 0
