#!/usr/bin/env python3
"""Python fastembed 0.9.1 on the same texts, model files and thread count as the Rust embedder.

Called by `reasonbank-bench embed`; prints one JSON line. The model and tokenizer files are
linked into a temporary directory loaded with `TextEmbedding.add_custom_model` +
`specific_model_path` (nothing is downloaded). `model_max_length` is set to 256 in the copied
tokenizer_config.json so both engines truncate alike (fastembed would otherwise use 512).
"""

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--input", required=True)
    p.add_argument("--field", default="text")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--latency-samples", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=256, help="fastembed's default")
    p.add_argument("--model", required=True)
    p.add_argument("--tokenizer-dir", required=True)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--short-query", default="how do I reset my password?")
    a = p.parse_args()

    with open(a.input) as f:
        texts = [json.loads(line)[a.field] for line in f if line.strip()]

    model_dir = Path(tempfile.mkdtemp(prefix="fastembed-bench-"))
    os.symlink(os.path.abspath(a.model), model_dir / "model.onnx")
    tok = Path(a.tokenizer_dir)
    for name in ("tokenizer.json", "config.json", "special_tokens_map.json"):
        os.symlink((tok / name).resolve(), model_dir / name)
    cfg = json.loads((tok / "tokenizer_config.json").read_text())
    cfg["model_max_length"] = a.max_length
    (model_dir / "tokenizer_config.json").write_text(json.dumps(cfg))

    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    name = "reasonbank/all-MiniLM-L6-v2-int8-bench"
    TextEmbedding.add_custom_model(
        model=name,
        pooling=PoolingType.MEAN,
        normalization=True,
        sources=ModelSource(hf="reasonbank/local-only"),
        dim=384,
        model_file="model.onnx",
    )
    start = time.perf_counter()
    model = TextEmbedding(model_name=name, specific_model_path=str(model_dir), threads=a.threads)
    load_ms = (time.perf_counter() - start) * 1e3

    list(model.embed(texts[:16], batch_size=a.batch_size))
    best = float("inf")
    vectors = []
    for _ in range(max(1, a.repeat)):
        start = time.perf_counter()
        vectors = list(model.embed(texts, batch_size=a.batch_size))
        best = min(best, time.perf_counter() - start)

    lat = []
    for _ in range(max(1, a.latency_samples)):
        start = time.perf_counter()
        list(model.embed([a.short_query]))
        lat.append((time.perf_counter() - start) * 1e3)

    print(json.dumps({
        "engine": "fastembed-python",
        "texts": len(texts),
        "threads": a.threads,
        "batch_size": a.batch_size,
        "texts_per_s": len(texts) / best,
        "p50_short_ms": round(statistics.median(lat), 3),
        "load_ms": round(load_ms, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "first_vectors": [[float(x) for x in v] for v in vectors[:3]],
    }))


if __name__ == "__main__":
    main()
