#!/usr/bin/env python3
"""Regenerate embedders/tests/data/reference*.json with Python onnxruntime + tokenizers.

The vectors are computed on the very files the Rust crate uses (the cache that
`reasonbank models fetch [--model M]` / `cargo test -p reasonbank-embedders` fills), one text at
a time, with the same recipe: tokenizer.json truncated to 256 tokens, no padding,
token_type_ids = 0, the model's pooling (all-MiniLM-L6-v2: mean over the attention mask;
bge-small-en-v1.5: the [CLS] token), L2 normalization. Texts are embedded as documents (no
prefix).

Usage:
    python3 embedders/scripts/make_reference.py [--model NAME] [--cache DIR] [--out FILE]

It creates a virtualenv under DIR/venv-reference with onnxruntime==1.31.1, tokenizers and numpy
(via pip) and re-runs itself inside it.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ORT_VERSION = "1.31.1"
HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"
# name -> (model dir, tokenizer dir, pooling, reference file), as in embedders/src/provision.
MODELS = {
    "all-MiniLM-L6-v2": ("all-MiniLM-L6-v2-int8", "all-MiniLM-L6-v2-tokenizer", "mean",
                         "reference.json"),
    "bge-small-en-v1.5": ("bge-small-en-v1.5-int8", "bge-small-en-v1.5-int8", "cls",
                          "reference-bge-small-en-v1.5.json"),
}

# Fixed inputs: short and long, paraphrases, non-ASCII, emoji, and one text longer than 256
# tokens (so truncation is covered).
SENTENCES = [
    "The cat sits on the mat.",
    "A cat is sitting on a mat.",
    "How do I reset my password?",
    "I forgot my password and need to change it.",
    "The stock market fell sharply on Monday.",
    "Photosynthesis converts light energy into chemical energy.",
    "Rust guarantees memory safety without a garbage collector.",
    "What is the capital of France?",
    "Paris is the capital and largest city of France.",
    "She plays the violin in the city orchestra.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Le renard brun rapide saute par-dessus le chien paresseux.",
    "東京は日本の首都です。",
    "Москва — столица России.",
    "I love pizza 🍕🍕 and tacos 🌮!",
    "naïve café résumé coöperate",
    "x",
    "   leading and trailing spaces   ",
    "Agents remember what worked: a reasoning bank stores distilled strategies from past "
    "trajectories and retrieves them for new tasks.",
    " ".join(
        f"Sentence number {i} talks about memory, retrieval, embeddings and vectors."
        for i in range(60)
    ),
]


def default_cache() -> Path:
    home = os.environ.get("REASONBANK_HOME")
    if home:
        return Path(home) / "models"
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "reasonbank"
    return Path.home() / ".cache" / "reasonbank"


def ensure_venv(cache: Path) -> None:
    """Re-exec inside a venv that has onnxruntime, tokenizers and numpy."""
    try:
        import numpy  # noqa: F401
        import onnxruntime
        import tokenizers  # noqa: F401

        if onnxruntime.__version__ == ORT_VERSION:
            return
    except ImportError:
        pass
    venv = cache / "venv-reference"
    python = venv / "bin" / "python"
    if os.environ.get("REASONBANK_REFERENCE_VENV") == "1":
        sys.exit("venv is active but the packages are missing")
    if not python.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
    subprocess.check_call(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"onnxruntime=={ORT_VERSION}", "tokenizers", "numpy"]
    )
    env = dict(os.environ, REASONBANK_REFERENCE_VENV="1")
    os.execve(str(python), [str(python), *sys.argv], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="all-MiniLM-L6-v2")
    parser.add_argument("--cache", type=Path, default=default_cache())
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    model_dir, tokenizer_dir, pooling, out_name = MODELS[args.model]
    out_path = args.out or DATA / out_name
    ensure_venv(args.cache)

    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    model = args.cache / model_dir / "model.onnx"
    tok_path = args.cache / tokenizer_dir / "tokenizer.json"
    for p in (model, tok_path):
        if not p.exists():
            sys.exit(f"{p} is missing; run `reasonbank models fetch --model {args.model}` "
                     "(or `cargo test -p reasonbank-embedders`) first")

    tok = Tokenizer.from_file(str(tok_path))
    tok.no_padding()
    tok.enable_truncation(max_length=256)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])

    vectors = []
    tokens = []
    for text in SENTENCES:
        enc = tok.encode(text)
        ids = np.array([enc.ids], dtype=np.int64)
        mask = np.array([enc.attention_mask], dtype=np.int64)
        types = np.zeros_like(ids)
        (hidden,) = sess.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
        )
        if pooling == "cls":
            pooled = hidden[:, 0, :]
        else:
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        v = pooled[0] / max(float(np.linalg.norm(pooled[0])), 1e-12)
        vectors.append([float(x) for x in v.astype(np.float32)])
        tokens.append(len(enc.ids))

    out = {
        "generator": "embedders/scripts/make_reference.py",
        "onnxruntime": ort.__version__,
        "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "max_length": 256,
        "model": args.model,
        "pooling": pooling,
        "sentences": SENTENCES,
        "tokens": tokens,
        "embeddings": vectors,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {len(vectors)} vectors to {out_path}")


if __name__ == "__main__":
    main()
