//! The stdio transport: one JSON-RPC message per line between the client and rmcp, and an
//! answer to every line that is not a message rmcp can take (issue #15).
//!
//! rmcp's own stdio transport drops a line it cannot parse without a word, so a client that
//! sent one waits forever: a line that is not JSON, invalid UTF-8, a string with an unpaired
//! surrogate escape (`"\ud800"`, which no Rust `String` can hold), JSON nested deeper than
//! serde_json's recursion limit (127 levels). It also answers `tools/call` without a `name`
//! with -32601 (method not found), since such a request falls through to its catch-all custom
//! request. Here [`classify`] turns each line into a message for rmcp, a JSON-RPC error reply,
//! or nothing (an unreadable notification or response, which JSON-RPC never answers):
//!
//! - -32700 parse error: not UTF-8, not JSON, or a lone surrogate escape (refused, not
//!   replaced: the text would not be what the client sent);
//! - -32600 invalid request: well-formed JSON that is not a request (an array, i.e. a batch,
//!   which MCP does not have; a non-object; a request rmcp cannot read), or nesting beyond the
//!   recursion limit;
//! - -32602 invalid params: a method the server serves (`initialize`, `ping`, `tools/list`,
//!   `tools/call`) with params that do not fit it, with serde's reason.
//!
//! A reply carries the request's `id` whenever a lenient scan of the raw bytes can read it
//! ([`scan_id`]), else `null`, as JSON-RPC says.
//!
//! Two tasks do the I/O, so nothing here depends on rmcp polling `receive` to completion (it
//! polls it inside a `select!`): the reader classifies lines and queues messages (bounded, so
//! it never runs ahead of the server) and error replies; the writer owns stdout and writes
//! every line whole, in the order queued, error replies and rmcp's messages alike.

use std::io;

use rmcp::RoleServer;
use rmcp::model::{
    CallToolRequestParams, ClientRequest, InitializeRequestParams, JsonRpcMessage,
    PaginatedRequestParams,
};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Longest line read whole: 16 MiB, rmcp's own cap. A longer line is answered with -32600
/// (its id read from the first 16 MiB) instead of being buffered without bound.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// Messages read ahead of the server at most.
const READ_AHEAD: usize = 16;

/// JSON-RPC 2.0 error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const INVALID_PARAMS: i64 = -32602;

/// The deepest nesting of arrays and objects serde_json reads: its recursion limit of 128 counts
/// one more (the limit is not configurable without its `unbounded_depth` feature, which would
/// let a hostile line overflow the stack).
const MAX_DEPTH: usize = 127;

/// What one input line is.
#[derive(Debug)]
pub enum Line {
    /// A message for rmcp.
    Message(Box<RxJsonRpcMessage<RoleServer>>),
    /// A JSON-RPC error reply to write back instead.
    Reply(Value),
    /// Nothing to do: blank, or an unreadable notification or response (never answered);
    /// the reason is logged as a warning when there is one.
    Skip(Option<String>),
}

/// One line for stdout, and who waits for it to be written.
struct Outgoing {
    line: Vec<u8>,
    written: Option<oneshot::Sender<io::Result<()>>>,
}

/// The server's transport over a reader and a writer (stdin and stdout in the binary).
pub struct LineTransport {
    incoming: mpsc::Receiver<RxJsonRpcMessage<RoleServer>>,
    out: Option<mpsc::UnboundedSender<Outgoing>>,
    reader: JoinHandle<()>,
}

impl LineTransport {
    /// Starts the reader and writer tasks on the current tokio runtime.
    pub fn new<R, W>(read: R, write: W) -> LineTransport
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (out, out_rx) = mpsc::unbounded_channel();
        let (in_tx, incoming) = mpsc::channel(READ_AHEAD);
        tokio::spawn(write_loop(write, out_rx));
        let reader = tokio::spawn(read_loop(BufReader::new(read), in_tx, out.clone()));
        LineTransport {
            incoming,
            out: Some(out),
            reader,
        }
    }
}

impl Drop for LineTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the output is closed")
}

impl Transport<RoleServer> for LineTransport {
    type Error = io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        // Queued now, so a caller that drops the future still gets a whole line written.
        let queued = serde_json::to_vec(&item)
            .map_err(io::Error::from)
            .and_then(|mut line| {
                line.push(b'\n');
                let (tx, rx) = oneshot::channel();
                let out = self.out.as_ref().ok_or_else(closed)?;
                out.send(Outgoing {
                    line,
                    written: Some(tx),
                })
                .map_err(|_| closed())?;
                Ok(rx)
            });
        async move { queued?.await.unwrap_or_else(|_| Err(closed())) }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        self.incoming.recv().await
    }

    async fn close(&mut self) -> io::Result<()> {
        self.reader.abort();
        let Some(out) = self.out.take() else {
            return Ok(());
        };
        // An empty line as a barrier: once it is acknowledged, everything queued before it
        // is written.
        let (tx, rx) = oneshot::channel();
        if out
            .send(Outgoing {
                line: Vec::new(),
                written: Some(tx),
            })
            .is_err()
        {
            return Ok(());
        }
        rx.await.unwrap_or(Ok(()))
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
    while let Some(o) = rx.recv().await {
        let r = async {
            w.write_all(&o.line).await?;
            w.flush().await
        }
        .await;
        let failed = r.is_err();
        if let Some(done) = o.written {
            let _ = done.send(r);
        }
        if failed {
            // The client is gone; rmcp learns it from the failed sends that follow.
            return;
        }
    }
}

async fn read_loop<R: AsyncBufRead + Unpin>(
    mut read: R,
    incoming: mpsc::Sender<RxJsonRpcMessage<RoleServer>>,
    out: mpsc::UnboundedSender<Outgoing>,
) {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let line = match read_line(&mut read, &mut buf, MAX_LINE).await {
            Ok(None) => return,
            Ok(Some(false)) => classify(&buf),
            Ok(Some(true)) => Line::Reply(error_reply(
                scan_id(&buf),
                INVALID_REQUEST,
                format!(
                    "Invalid Request: the line is longer than {} MiB",
                    MAX_LINE >> 20
                ),
            )),
            Err(e) => {
                tracing::error!("reading the input failed, ending the session: {e}");
                return;
            }
        };
        match line {
            Line::Message(m) => {
                if incoming.send(*m).await.is_err() {
                    return;
                }
            }
            Line::Reply(v) => {
                tracing::debug!(reply = %v, "answered a line that is not a message");
                // In the order rmcp writes its own (a `Value` would sort the keys).
                let line = format!(
                    "{{\"jsonrpc\":\"2.0\",\"id\":{},\"error\":{}}}\n",
                    v["id"], v["error"]
                )
                .into_bytes();
                if out
                    .send(Outgoing {
                        line,
                        written: None,
                    })
                    .is_err()
                {
                    return;
                }
            }
            Line::Skip(Some(why)) => tracing::warn!("ignored a line: {why}"),
            Line::Skip(None) => {}
        }
    }
}

/// Reads one line, without its `\n`, into `buf`, keeping at most `max` bytes of it. `None` at
/// the end of input; `Some(true)` if the line was longer than `max` (the rest is discarded).
async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<bool>> {
    let mut oversized = false;
    let mut any = false;
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            // A last line without `\n` still counts.
            return Ok(any.then_some(oversized));
        }
        any = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let data = &available[..newline.unwrap_or(available.len())];
        let room = max.saturating_sub(buf.len());
        oversized |= data.len() > room;
        buf.extend_from_slice(&data[..data.len().min(room)]);
        let consumed = newline.map_or(available.len(), |i| i + 1);
        r.consume(consumed);
        if newline.is_some() {
            return Ok(Some(oversized));
        }
    }
}

/// A JSON-RPC error response.
fn error_reply(id: Value, code: i64, message: String) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// Decides what one line (without its `\n`) is. Pure: no I/O.
pub fn classify(line: &[u8]) -> Line {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // RFC 8259 §8.1 lets a parser ignore a byte order mark; rmcp does.
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Line::Skip(None);
    }
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => {
            return Line::Reply(error_reply(
                scan_id(line),
                PARSE_ERROR,
                format!(
                    "Parse error: invalid UTF-8 at byte {}; JSON-RPC messages are UTF-8 text",
                    e.valid_up_to()
                ),
            ));
        }
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Line::Reply(parse_failure(line, &e)),
    };
    let Value::Object(obj) = &value else {
        let why = if value.is_array() {
            "Invalid Request: batches are not part of MCP; send one message per line"
        } else {
            "Invalid Request: a JSON-RPC message is a JSON object"
        };
        return Line::Reply(error_reply(Value::Null, INVALID_REQUEST, why.into()));
    };
    let id = obj
        .get("id")
        .filter(|id| id.is_string() || id.is_i64())
        .cloned()
        .unwrap_or(Value::Null);
    let has_method = obj.get("method").is_some_and(Value::is_string);
    let has_id = obj.contains_key("id");
    let is_response = !has_method && (obj.contains_key("result") || obj.contains_key("error"));
    // Only a request rmcp cannot read as its method's type is checked again, for the reason.
    let bad_params = || {
        let m = obj.get("method")?.as_str()?;
        let why = params_error(m, obj.get("params"))?;
        Some(format!("Invalid params for {m}: {why}"))
    };
    match RxJsonRpcMessage::<RoleServer>::deserialize(&value) {
        Ok(JsonRpcMessage::Request(r)) => {
            // rmcp reads a known method whose params do not fit as its catch-all custom
            // request, and then answers "method not found".
            if let ClientRequest::CustomRequest(_) = &r.request
                && let Some(why) = bad_params()
            {
                return Line::Reply(error_reply(id, INVALID_PARAMS, why));
            }
            Line::Message(Box::new(JsonRpcMessage::Request(r)))
        }
        Ok(m) => Line::Message(Box::new(m)),
        // JSON-RPC answers neither notifications nor responses, even unreadable ones.
        Err(e) if is_response => Line::Skip(Some(format!("an unreadable response: {e}"))),
        Err(e) if has_method && !has_id => {
            Line::Skip(Some(format!("an unreadable notification: {e}")))
        }
        Err(e) => Line::Reply(match bad_params() {
            Some(why) => error_reply(id, INVALID_PARAMS, why),
            None => error_reply(id, INVALID_REQUEST, format!("Invalid Request: {e}")),
        }),
    }
}

/// The reply to a line serde_json cannot parse.
fn parse_failure(line: &[u8], e: &serde_json::Error) -> Value {
    let id = scan_id(line);
    // serde_json's error codes are private; its messages are stable and these are the two
    // failures of well-formed-looking JSON worth telling apart.
    let msg = e.to_string();
    if msg.starts_with("recursion limit exceeded") {
        let at = too_deep(line, MAX_DEPTH).map_or_else(String::new, |at| {
            let mut path = path_to(line, at);
            if path.len() > 4 {
                path.truncate(4);
                path.push("…".into());
            }
            format!(" at {}", path.join("."))
        });
        return error_reply(
            id,
            INVALID_REQUEST,
            format!(
                "Invalid Request: JSON nested more than {MAX_DEPTH} levels deep{at} ({msg}); \
                 flatten it"
            ),
        );
    }
    if let Some(at) = lone_surrogate(line) {
        return error_reply(
            id,
            PARSE_ERROR,
            format!(
                "Parse error: {} holds the escape {}, an unpaired UTF-16 surrogate, which is not \
                 Unicode text; send the character itself or a valid surrogate pair",
                path_to(line, at).join("."),
                String::from_utf8_lossy(&line[at..at + 6])
            ),
        );
    }
    error_reply(id, PARSE_ERROR, format!("Parse error: {msg}"))
}

/// Where the first array or object nested deeper than `limit` opens, if any (strings skipped).
fn too_deep(s: &[u8], limit: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'"' => {
                i = string_end(s, i)?;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return Some(i);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The path (`["params", "arguments", "text"]`, array elements as `[i]`) of the value that
/// holds byte `at`, read leniently: keys as written, escapes undone where they decode.
fn path_to(s: &[u8], at: usize) -> Vec<String> {
    enum Frame {
        Object { key: Option<String>, in_key: bool },
        Array(usize),
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < at.min(s.len()) {
        match s[i] {
            b'"' => {
                let Some(end) = string_end(s, i) else { break };
                if end > at {
                    break;
                }
                if let Some(Frame::Object { key, in_key: true }) = stack.last_mut() {
                    let raw = &s[i..end];
                    *key = Some(serde_json::from_slice::<String>(raw).unwrap_or_else(|_| {
                        String::from_utf8_lossy(&raw[1..raw.len() - 1]).into()
                    }));
                }
                i = end;
                continue;
            }
            b'{' => stack.push(Frame::Object {
                key: None,
                in_key: true,
            }),
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Frame::Object { in_key, .. }) = stack.last_mut() {
                    *in_key = false;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key, in_key }) => {
                    *key = None;
                    *in_key = true;
                }
                Some(Frame::Array(n)) => *n += 1,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    stack
        .into_iter()
        .filter_map(|f| match f {
            Frame::Object { key, in_key: false } => key,
            Frame::Object { .. } => None,
            Frame::Array(n) => Some(format!("[{n}]")),
        })
        .collect()
}

/// Where the first `\uXXXX` escape of an unpaired UTF-16 surrogate starts, if any.
fn lone_surrogate(s: &[u8]) -> Option<usize> {
    let escape = |i: usize| -> Option<u16> {
        let hex = s.get(i..i + 6)?.strip_prefix(b"\\u")?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            i += 1;
            continue;
        }
        match escape(i) {
            Some(0xD800..=0xDBFF) if matches!(escape(i + 6), Some(0xDC00..=0xDFFF)) => i += 12,
            Some(0xD800..=0xDFFF) => return Some(i),
            Some(_) => i += 6,
            None => i += 2,
        }
    }
    None
}

/// Why `params` do not fit `method`, for the methods this server serves; `None` for others
/// (rmcp answers those -32601 itself) or if they fit.
fn params_error(method: &str, params: Option<&Value>) -> Option<String> {
    fn check<T: serde::de::DeserializeOwned>(params: Option<&Value>) -> Option<String> {
        let p = params.cloned().unwrap_or_else(|| json!({}));
        serde_json::from_value::<T>(p).err().map(|e| e.to_string())
    }
    match method {
        "tools/call" => check::<CallToolRequestParams>(params),
        "initialize" => check::<InitializeRequestParams>(params),
        "tools/list" => check::<Option<PaginatedRequestParams>>(params),
        "ping" => check::<serde_json::Map<String, Value>>(params),
        _ => None,
    }
}

/// The top-level `id` of a JSON-RPC message read leniently from raw bytes (which may be
/// invalid UTF-8, nested beyond any limit, or cut short): an integer or a string, else `null`.
pub fn scan_id(line: &[u8]) -> Value {
    let mut depth = 0usize;
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'"' => {
                let Some(end) = string_end(line, i) else {
                    return Value::Null;
                };
                if depth == 1 && &line[i..end] == b"\"id\"" {
                    let j = skip_ws(line, end);
                    if line.get(j) == Some(&b':') {
                        return id_value(&line[skip_ws(line, j + 1)..]);
                    }
                }
                i = end;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Value::Null
}

/// The index just past the string that opens at `start` (a `"`), if it closes.
fn string_end(s: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while s.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// An id value at the start of `s`: a string or an integer.
fn id_value(s: &[u8]) -> Value {
    let end = if s.first() == Some(&b'"') {
        string_end(s, 0)
    } else {
        Some(
            s.iter()
                .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .unwrap_or(s.len()),
        )
    };
    let Some(token) = end.map(|e| &s[..e]) else {
        return Value::Null;
    };
    match serde_json::from_slice::<Value>(token) {
        Ok(v) if v.is_string() || v.is_i64() => v,
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(line: &[u8]) -> Value {
        match classify(line) {
            Line::Reply(v) => v,
            other => panic!(
                "expected a reply to {:?}, got {other:?}",
                line.escape_ascii()
            ),
        }
    }

    fn nested(depth: usize) -> String {
        format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
    }

    #[test]
    fn ids_are_read_leniently_at_the_top_level_only() {
        assert_eq!(
            scan_id(br#"{"jsonrpc":"2.0","id":7,"method":"x"}"#),
            json!(7)
        );
        assert_eq!(scan_id(br#"{"id" : "a\"b", "x": 1}"#), json!("a\"b"));
        assert_eq!(
            scan_id(br#"{"params":{"id":9},"method":"id","id":-3}"#),
            json!(-3)
        );
        assert_eq!(scan_id(b"{\"x\":\"\xff\",\"id\":4,"), json!(4));
        assert_eq!(scan_id(br#"{"id":1.5}"#), Value::Null);
        assert_eq!(scan_id(br#"{"id":"\ud800"}"#), Value::Null);
        assert_eq!(scan_id(br#"{"params":{"id":9}}"#), Value::Null);
        assert_eq!(scan_id(b"not json"), Value::Null);
        assert_eq!(lone_surrogate(br#""\ud83d\ude00 \\ud800 \u00e9""#), None);
        assert_eq!(lone_surrogate(br#""a\ud800""#), Some(2));
        assert_eq!(lone_surrogate(br#""\udc00\ud800""#), Some(1));
        assert_eq!(lone_surrogate(br#""\ud800\u0041""#), Some(1));
        let line = br#"{"id":1,"params":{"a\u0062":[0,{"k":"x"},"\ud800"],"t":"\ud800"}}"#;
        let at = |needle: &str, nth: usize| {
            line.windows(needle.len())
                .enumerate()
                .filter(|(_, w)| *w == needle.as_bytes())
                .nth(nth)
                .unwrap()
                .0
        };
        assert_eq!(path_to(line, at("\\ud800", 0)), ["params", "ab", "[2]"]);
        assert_eq!(path_to(line, at("\\ud800", 1)), ["params", "t"]);
        assert_eq!(path_to(line, at("x", 0)), ["params", "ab", "[1]", "k"]);
        let deep = format!(r#"{{"p":{{"m":{}}}}}"#, nested(200));
        let d = too_deep(deep.as_bytes(), MAX_DEPTH).unwrap();
        assert_eq!(path_to(deep.as_bytes(), d).len(), MAX_DEPTH);
        assert!(serde_json::from_str::<Value>(&nested(MAX_DEPTH)).is_ok());
        assert!(serde_json::from_str::<Value>(&nested(MAX_DEPTH + 1)).is_err());
        assert_eq!(path_to(deep.as_bytes(), d)[..3], ["p", "m", "a"]);
        let deep = format!(r#"{{"id":5,"params":{}}}"#, nested(500));
        assert_eq!(scan_id(deep.as_bytes()), json!(5));
    }

    #[test]
    fn issue_15_unparseable_lines_are_answered_with_their_id() {
        let r = reply(b"hello");
        assert_eq!(r["error"]["code"], PARSE_ERROR, "{r}");
        assert_eq!(r["id"], Value::Null, "{r}");

        let r = reply(b"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"x\":\"\xff\xfe\"}}");
        assert_eq!(
            (r["id"].clone(), r["error"]["code"].clone()),
            (json!(4), json!(PARSE_ERROR))
        );
        assert!(
            r["error"]["message"].as_str().unwrap().contains("UTF-8"),
            "{r}"
        );

        let r = reply(br#"{"jsonrpc":"2.0","id":"s","method":"tools/call","params":{"name":"t","arguments":{"text":"\ud800"}}}"#);
        assert_eq!(
            (r["id"].clone(), r["error"]["code"].clone()),
            (json!("s"), json!(PARSE_ERROR))
        );
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("params.arguments.text holds the escape \\ud800,"),
            "{r}"
        );

        let line = format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"t","arguments":{{"metadata":{}}}}}}}"#,
            nested(125)
        );
        let r = reply(line.as_bytes());
        assert_eq!(
            (r["id"].clone(), r["error"]["code"].clone()),
            (json!(2), json!(INVALID_REQUEST))
        );
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("more than 127 levels deep at params.arguments.metadata.a.…"),
            "{r}"
        );
    }

    #[test]
    fn issue_15_tools_call_without_name_is_invalid_params() {
        for params in [r#","params":{"arguments":{}}"#, "", r#","params":5"#] {
            let line = format!(r#"{{"jsonrpc":"2.0","id":6,"method":"tools/call"{params}}}"#);
            let r = reply(line.as_bytes());
            assert_eq!(r["id"], 6, "{r}");
            assert_eq!(r["error"]["code"], INVALID_PARAMS, "{r}");
        }
        let r =
            reply(br#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"arguments":{}}}"#);
        assert!(
            r["error"]["message"].as_str().unwrap().contains("`name`"),
            "{r}"
        );
    }

    #[test]
    fn invalid_requests_and_batches_get_invalid_request() {
        for line in [
            &b"[]"[..],
            b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
            b"42",
            b"\"x\"",
        ] {
            assert_eq!(reply(line)["error"]["code"], INVALID_REQUEST);
        }
        let r = reply(br#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#);
        assert_eq!(
            (r["id"].clone(), r["error"]["code"].clone()),
            (json!(3), json!(INVALID_REQUEST))
        );
    }

    #[test]
    fn messages_pass_and_unreadable_responses_are_not_answered() {
        for line in [
            &br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#[..],
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}"#,
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            b"\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\r",
        ] {
            assert!(
                matches!(classify(line), Line::Message(_)),
                "{:?}",
                line.escape_ascii()
            );
        }
        assert!(matches!(classify(b"  \r"), Line::Skip(None)));
        assert!(matches!(
            classify(br#"{"jsonrpc":"2.0","id":1,"result":5,"error":5}"#),
            Line::Skip(Some(_))
        ));
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_flagged() {
        let input = b"abcdef\nxy\nlast".to_vec();
        let mut r = BufReader::with_capacity(2, &input[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut r, &mut buf, 4).await.unwrap(), Some(true));
        assert_eq!(buf, b"abcd");
        buf.clear();
        assert_eq!(read_line(&mut r, &mut buf, 4).await.unwrap(), Some(false));
        assert_eq!(buf, b"xy");
        buf.clear();
        assert_eq!(read_line(&mut r, &mut buf, 4).await.unwrap(), Some(false));
        assert_eq!(buf, b"last");
        buf.clear();
        assert_eq!(read_line(&mut r, &mut buf, 4).await.unwrap(), None);
    }
}
