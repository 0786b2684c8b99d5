"""Writes distinct English sentences from the docstrings of this Python's standard library and
installed packages, one JSON object per line ({"text": ...}), for
`reasonbank-bench vectors --texts`: real text with the neighbourhood structure of real
embeddings (related functions describe related things), unlike synthetic vectors.

Usage: python3 benches/python/docstring_corpus.py > sentences.jsonl
The sentence count depends on the Python installation (CPython 3.11 alone: about 30-45K).
"""

import ast
import glob
import json
import os
import re
import sys


def docstrings(root):
    for path in sorted(glob.glob(os.path.join(root, "**", "*.py"), recursive=True)):
        try:
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    yield doc


def main():
    roots = [os.path.dirname(os.__file__)]
    roots += sorted({p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)})
    seen = set()
    for root in roots:
        for doc in docstrings(root):
            # The first paragraph is prose; later ones are often parameter lists and examples.
            paragraph = " ".join(doc.split("\n\n")[0].split())
            for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
                if 40 <= len(sentence) <= 300 and not sentence.startswith((">>>", ":")) and sentence not in seen:
                    seen.add(sentence)
                    print(json.dumps({"text": sentence}))
    print(f"{len(seen)} sentences", file=sys.stderr)


if __name__ == "__main__":
    main()
