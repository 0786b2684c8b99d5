"""The README's example, run as a user would paste it: every ```python block of
bindings/python/README.md, in a fresh working directory, with the installed package."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_examples_run(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has a Python example"
    for i, code in enumerate(blocks):
        r = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert r.returncode == 0, f"block {i}:\n{code}\n{r.stderr}"
    assert "Retry flaky HTTP calls" in r.stdout
