"""The wheel's `reasonbank` command: the Rust CLI itself, with its output and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List


def run(root: Path, args: List[str]) -> "subprocess.CompletedProcess[str]":
    exe = shutil.which("reasonbank", path=str(Path(sys.executable).parent))
    assert exe, "the wheel installs a reasonbank command"
    return subprocess.run(
        [exe, "--root", str(root), *args], capture_output=True, text=True, timeout=300
    )


def test_cli_from_the_wheel(root: Path) -> None:
    r = run(root, ["--agent", "coder", "remember", "Retry flaky HTTP calls with backoff"])
    assert r.returncode == 0, r.stderr
    r = run(root, ["--agent", "coder", "--json", "recall", "the API timed out", "--k", "1"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["text"] == "Retry flaky HTTP calls with backoff"
    assert run(root, ["--agent", "coder", "recall", "x", "--mode", "fuzzy"]).returncode == 2
    missing = run(root, ["--agent", "nobody", "recall", "x"])
    assert missing.returncode == 3
    assert "agent nobody has no memories" in missing.stderr
    assert not (root / "nobody.sqlite").exists()
