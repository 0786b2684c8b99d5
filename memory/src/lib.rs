//! Per-agent SQLite shards with SIMD exact vector search, metadata filters and BM25 hybrid search.
