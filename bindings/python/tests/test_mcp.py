"""The wheel's `reasonbank-mcp` command with the PyPI `mcp` client (scripts/mcp_smoke.py): the
same server as the Rust binary, remembering and recalling with the real model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

SMOKE = Path(__file__).resolve().parents[3] / "scripts" / "mcp_smoke.py"


def test_mcp_server_from_the_wheel(root: Path) -> None:
    # The console script the wheel installed next to this interpreter.
    exe = shutil.which("reasonbank-mcp", path=str(Path(sys.executable).parent))
    assert exe, "the wheel installs a reasonbank-mcp command"
    r = subprocess.run(
        [sys.executable, str(SMOKE), str(root), exe], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["recalled"] == "Retry flaky HTTP calls with backoff"
    assert (root / "smoke.sqlite").exists()
