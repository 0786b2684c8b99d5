"""MCP smoke test of an installed reasonbank MCP server, with the PyPI `mcp` client.

    python scripts/mcp_smoke.py ROOT COMMAND [ARGS...]

Starts `COMMAND ARGS --root ROOT --agent smoke` over stdio (e.g. `reasonbank-mcp` from the
wheel, or `npx reasonbank mcp` from the npm package), checks the server's name and tools,
remembers a text with the real model and recalls it, checks that a bad filter is a tool error,
and prints one JSON line. Exits non-zero on any failure.
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main(root: str, command: list) -> dict:
    params = StdioServerParameters(
        command=command[0], args=[*command[1:], "--root", root, "--agent", "smoke"]
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "reasonbank-mcp", init.server_info
            tools = {t.name for t in (await session.list_tools()).tools}
            want = {"memory_remember", "memory_recall", "memory_learn", "vector_search"}
            assert want <= tools, tools
            r = await session.call_tool("memory_remember", {"text": "Retry flaky HTTP calls with backoff"})
            assert not r.is_error, r
            r = await session.call_tool("memory_recall", {"query": "the API timed out", "k": 1})
            assert not r.is_error, r
            body = r.structured_content
            text = body["results"][0]["text"]
            assert text == "Retry flaky HTTP calls with backoff", body
            r = await session.call_tool("memory_recall", {"query": "x", "filter": {"bogus": 1}})
            assert r.is_error, r
            return {"server": init.server_info.name, "tools": len(tools), "recalled": text}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2:]))))
