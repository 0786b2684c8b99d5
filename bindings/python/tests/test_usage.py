"""The typed usage file runs (mypy --strict checks it in scripts/python-test.sh)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_usage_file_runs() -> None:
    usage = Path(__file__).with_name("usage.py")
    r = subprocess.run([sys.executable, str(usage)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["Retry flaky HTTP calls with backoff"] * 2
