//! Integration tests of the `reasonbank-mcp` binary, driven by real MCP clients over stdio.
//!
//! - `python`: the PyPI `mcp` client (`tests/mcp_client.py`) in a venv the test provisions.
//! - `inspector`: `@modelcontextprotocol/inspector` in CLI mode, installed with npm.
//! - `lifecycle`: a client that disconnects mid-call, and startup errors, with raw JSON-RPC.
//! - `protocol`: every request is answered (malformed lines, unknown agents), with raw bytes.
//!
//! The clients are installed from PyPI and npm into a cache directory outside the repository
//! (`$XDG_CACHE_HOME/reasonbank`, else `~/.cache/reasonbank`) and reused from there. A missing
//! `python3`, `pip` or `npm` fails the test with what to install; nothing is skipped.

mod inspector;
mod lifecycle;
mod protocol;
mod python;
mod support;
mod sync;
