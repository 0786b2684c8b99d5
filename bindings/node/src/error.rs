//! Errors as JavaScript sees them: an `Error` with a stable `code` (`RB_*`), the whole cause
//! chain in `message`, and the chain again as nested `cause` errors.
//!
//! The code is chosen from the innermost reasonbank error variant (a storage error inside a
//! reasoning error is a storage error), so it names what went wrong, not which layer noticed.

use std::error::Error as StdError;

use napi::bindgen_prelude::{Env, JsObjectValue, JsValue, Status};
use reasonbank::{embedders, memory, reasoning, sync};

/// A failure computed off the JS thread, turned into a JS `Error` on it by [`Failure::into_js`].
#[derive(Debug)]
pub struct Failure {
    /// The stable `code` property.
    code: &'static str,
    /// The error and each of its sources, outermost first.
    chain: Vec<String>,
}

/// Every code a rejection can carry; the README's error table lists the same set.
pub mod code {
    /// An argument was rejected (bad option, text, metadata, trajectory, address, ...).
    pub const INVALID_INPUT: &str = "RB_INVALID_INPUT";
    /// An agent, shard or memory id is malformed (e.g. `../x`, not a UUID).
    pub const INVALID_ID: &str = "RB_INVALID_ID";
    /// A metadata filter does not parse or is not valid.
    pub const INVALID_FILTER: &str = "RB_INVALID_FILTER";
    /// A vector is NaN, infinite, zero or empty.
    pub const INVALID_VECTOR: &str = "RB_INVALID_VECTOR";
    /// A vector has the wrong number of dimensions for the shard.
    pub const DIMENSION_MISMATCH: &str = "RB_DIMENSION_MISMATCH";
    /// A text or metadata object is over its size limit.
    pub const TOO_LARGE: &str = "RB_TOO_LARGE";
    /// A text to embed is empty or whitespace.
    pub const EMPTY_TEXT: &str = "RB_EMPTY_TEXT";
    /// The memory or memory item does not exist.
    pub const NOT_FOUND: &str = "RB_NOT_FOUND";
    /// A record with this id already exists.
    pub const ALREADY_EXISTS: &str = "RB_ALREADY_EXISTS";
    /// Another agent's shard named in the call does not exist.
    pub const NO_SUCH_SHARD: &str = "RB_NO_SUCH_SHARD";
    /// The shard was written with a different embedding model.
    pub const MODEL_MISMATCH: &str = "RB_MODEL_MISMATCH";
    /// The file is not a reasonbank shard.
    pub const NOT_A_SHARD: &str = "RB_NOT_A_SHARD";
    /// The shard or a record in it is corrupt.
    pub const CORRUPT: &str = "RB_CORRUPT";
    /// The shard was written by a newer reasonbank.
    pub const UNSUPPORTED_SCHEMA: &str = "RB_UNSUPPORTED_SCHEMA";
    /// SQLite or the file system failed.
    pub const STORAGE: &str = "RB_STORAGE";
    /// The model, tokenizer or runtime file is missing (run `reasonbank models fetch`).
    pub const MODEL_MISSING: &str = "RB_MODEL_MISSING";
    /// A model file does not match its pinned checksum.
    pub const MODEL_CORRUPT: &str = "RB_MODEL_CORRUPT";
    /// Downloading the model files failed.
    pub const FETCH_FAILED: &str = "RB_FETCH_FAILED";
    /// The ONNX Runtime library cannot be loaded (or another one already was).
    pub const RUNTIME: &str = "RB_RUNTIME";
    /// The embedder failed while running (inference, tokenizer, remote embedder).
    pub const EMBEDDER: &str = "RB_EMBEDDER";
    /// An LLM judge or distiller failed or answered nonsense.
    pub const LLM: &str = "RB_LLM";
    /// The peer refused: unknown fingerprint, no grant for the shard.
    pub const SYNC_DENIED: &str = "RB_SYNC_DENIED";
    /// The peer cannot be reached or the connection broke.
    pub const SYNC_NETWORK: &str = "RB_SYNC_NETWORK";
    /// The peer broke the protocol or speaks another version.
    pub const SYNC_PROTOCOL: &str = "RB_SYNC_PROTOCOL";
    /// A bug: a blocking task panicked or was cancelled.
    pub const INTERNAL: &str = "RB_INTERNAL";
}

impl Failure {
    /// A failure with `code` and `message` that has no Rust source.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Failure {
            code,
            chain: vec![message.into()],
        }
    }

    /// A failure of a binding argument (`RB_INVALID_INPUT`).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_INPUT, message)
    }

    /// A failure from a reasonbank error, with its code and whole source chain.
    pub fn of(code: &'static str, err: &(dyn StdError + 'static)) -> Self {
        let mut chain = vec![err.to_string()];
        let mut next = err.source();
        while let Some(e) = next {
            let msg = e.to_string();
            // `#[error(transparent)]` wrappers repeat their source's message.
            if chain.last() != Some(&msg) {
                chain.push(msg);
            }
            next = e.source();
        }
        Failure { code, chain }
    }

    /// The same failure with `msg` in front of its chain (what was being done).
    pub fn context(mut self, msg: impl Into<String>) -> Self {
        self.chain.insert(0, msg.into());
        self
    }

    /// The JS `Error`: `message` is the chain joined by "; caused by: ", `code` is the stable
    /// code and `cause` holds each source as a plain `Error`. Returned as a `napi::Error`
    /// that refers to that object, so a promise rejects with it unchanged.
    pub fn into_js(self, env: &Env) -> napi::Error {
        match self.build(env) {
            Ok(e) => e,
            // Creating the object failed (the VM is out of memory or shutting down): the
            // message and code still reach JS, as napi-rs' own error.
            Err(e) => napi::Error::new(
                Status::GenericFailure,
                format!(
                    "{}: {} (and building the error failed: {e})",
                    self.code,
                    self.chain.join("; caused by: ")
                ),
            ),
        }
    }

    fn build(&self, env: &Env) -> napi::Result<napi::Error> {
        let mut cause = None;
        for msg in self.chain.iter().skip(1).rev() {
            let mut e = env.create_error(napi::Error::new(Status::GenericFailure, msg.clone()))?;
            e.delete_named_property("code")?;
            if let Some(c) = cause.take() {
                e.set_named_property("cause", c)?;
            }
            cause = Some(e);
        }
        let mut top = env.create_error(napi::Error::new(
            Status::GenericFailure,
            self.chain.join("; caused by: "),
        ))?;
        top.set_named_property("code", self.code)?;
        if let Some(c) = cause {
            top.set_named_property("cause", c)?;
        }
        Ok(napi::Error::from(top.to_unknown()))
    }
}

impl From<reasonbank::Error> for Failure {
    fn from(e: reasonbank::Error) -> Self {
        let code = match &e {
            reasonbank::Error::Memory(m) => memory_code(m),
            reasonbank::Error::Embedder(m) => embedder_code(m),
            reasonbank::Error::Reasoning(m) => reasoning_code(m),
            reasonbank::Error::InvalidInput { .. } => code::INVALID_INPUT,
            _ => code::INTERNAL,
        };
        Failure::of(code, &e)
    }
}

impl From<memory::Error> for Failure {
    fn from(e: memory::Error) -> Self {
        Failure::of(memory_code(&e), &e)
    }
}

impl From<embedders::Error> for Failure {
    fn from(e: embedders::Error) -> Self {
        Failure::of(embedder_code(&e), &e)
    }
}

impl From<sync::Error> for Failure {
    fn from(e: sync::Error) -> Self {
        Failure::of(sync_code(&e), &e)
    }
}

fn memory_code(e: &memory::Error) -> &'static str {
    use memory::Error as E;
    match e {
        E::InvalidShardId { .. } | E::InvalidRecordId { .. } => code::INVALID_ID,
        E::DimensionMismatch { .. } => code::DIMENSION_MISMATCH,
        E::InvalidVector { .. } => code::INVALID_VECTOR,
        E::ModelMismatch { .. } => code::MODEL_MISMATCH,
        E::TooLarge { .. } => code::TOO_LARGE,
        E::InvalidInput { .. } | E::InvalidOption { .. } | E::InvalidChange { .. } => {
            code::INVALID_INPUT
        }
        E::InvalidFilter { .. } | E::FilterJson(_) => code::INVALID_FILTER,
        E::NotFound { .. } => code::NOT_FOUND,
        E::AlreadyExists { .. } => code::ALREADY_EXISTS,
        E::NoSuchShard { .. } | E::MissingShardSpec { .. } => code::NO_SUCH_SHARD,
        E::NotAShard { .. } => code::NOT_A_SHARD,
        E::Corrupt { .. } | E::CorruptRecord { .. } => code::CORRUPT,
        E::UnsupportedSchema { .. } => code::UNSUPPORTED_SCHEMA,
        _ => code::STORAGE,
    }
}

fn embedder_code(e: &embedders::Error) -> &'static str {
    use embedders::Error as E;
    match e {
        E::EmptyText { .. } => code::EMPTY_TEXT,
        E::MissingFile { .. } | E::NoCacheDir => code::MODEL_MISSING,
        E::ChecksumMismatch { .. } => code::MODEL_CORRUPT,
        E::Fetch { .. } | E::PackageLayout { .. } => code::FETCH_FAILED,
        E::RuntimeLoad { .. }
        | E::RuntimeAlreadyInitialized { .. }
        | E::UnsupportedPlatform { .. } => code::RUNTIME,
        E::InvalidConfig(_) => code::INVALID_INPUT,
        E::Join(_) => code::INTERNAL,
        _ => code::EMBEDDER,
    }
}

fn reasoning_code(e: &reasoning::Error) -> &'static str {
    use reasoning::Error as E;
    match e {
        E::Memory(m) => memory_code(m),
        E::Embedder(m) => embedder_code(m),
        E::NoSuchItem { .. } => code::NOT_FOUND,
        E::NoOutcome { .. } | E::InvalidInput { .. } => code::INVALID_INPUT,
        E::ModelMismatch { .. } => code::MODEL_MISMATCH,
        E::InvalidRecord { .. } => code::CORRUPT,
        E::Join(_) => code::INTERNAL,
        _ => code::LLM,
    }
}

fn sync_code(e: &sync::Error) -> &'static str {
    use sync::Error as E;
    match e {
        E::Memory(m) => memory_code(m),
        E::ModelMismatch { .. } => code::MODEL_MISMATCH,
        E::Identity { .. } | E::InvalidFingerprint { .. } | E::InvalidOption { .. } => {
            code::INVALID_INPUT
        }
        E::UnknownPeer { .. } | E::AccessDenied { .. } | E::Refused { .. } => code::SYNC_DENIED,
        E::Io(_)
        | E::Connect(_)
        | E::Connection(_)
        | E::Write(_)
        | E::Read(_)
        | E::Timeout { .. }
        | E::UnexpectedEnd
        | E::Tls { .. } => code::SYNC_NETWORK,
        E::Task(_) => code::INTERNAL,
        _ => code::SYNC_PROTOCOL,
    }
}
