//! reasonbank: agent memory that learns.

pub use reasonbank_memory as memory;
