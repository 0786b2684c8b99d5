//! Errors as JavaScript sees them: an `Error` with a stable `code` (`RB_*`), the whole cause
//! chain in `message`, and the chain again as nested `cause` errors.
//!
//! The code is chosen from the innermost reasonbank error variant (a storage error inside a
//! reasoning error is a storage error), so it names what went wrong, not which layer noticed.

use std::error::Error as StdError;

use napi::bindgen_prelude::{Env, JsObjectValue, JsValue, Status};
use reasonbank::{embedders, memory, sync};

/// A failure computed off the JS thread, turned into a JS `Error` on it by [`Failure::into_js`].
#[derive(Debug)]
pub struct Failure {
    /// The stable `code` property.
    code: &'static str,
    /// The error and each of its sources, outermost first.
    chain: Vec<String>,
}

/// Every code a rejection can carry: the facade's, shared by every front end.
pub use reasonbank::error::code;

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
        Failure::of(e.code(), &e)
    }
}

impl From<memory::Error> for Failure {
    fn from(e: memory::Error) -> Self {
        reasonbank::Error::from(e).into()
    }
}

impl From<embedders::Error> for Failure {
    fn from(e: embedders::Error) -> Self {
        reasonbank::Error::from(e).into()
    }
}

impl From<sync::Error> for Failure {
    fn from(e: sync::Error) -> Self {
        reasonbank::Error::from(e).into()
    }
}
