"""``reasonbank-mcp``: the MCP server over stdio, the same one as the Rust ``reasonbank-mcp``
binary, from the installed wheel (no Rust toolchain needed).

An MCP client starts ``reasonbank-mcp [--root DIR] [--agent ID]`` and speaks JSON-RPC on its
stdin/stdout; diagnostics go to stderr. The model runs on the ``onnxruntime`` package's
runtime unless ``ORT_DYLIB_PATH`` names another.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

from . import _native


def main(argv: Optional[List[str]] = None) -> None:
    """Runs the server until the client closes the session, then exits with its status."""
    args = sys.argv[1:] if argv is None else argv
    # Importing the package set its runtime (the `onnxruntime` wheel's) for this process.
    code = _native.run_mcp_server(["reasonbank-mcp", *args])
    sys.stdout.flush()
    # The server's runtime may still hold a read of stdin: leave at once.
    os._exit(code)


if __name__ == "__main__":
    main()
