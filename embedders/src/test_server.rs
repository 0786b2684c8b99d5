//! [`TestServer`]: an in-process HTTP/1.1 server on loopback for the tests of clients of
//! OpenAI-compatible APIs (the embedder, the chat client, the reranker, the CLI's `--llm-url`
//! and `--rerank-url`). Feature
//! `test-server`; the workspace's crates enable it for their tests only.
//!
//! It answers each request with what a handler makes of it, optionally after a delay, and
//! records every request it read. Each connection gets its own thread and one answer
//! (`Connection: close`), which is all `ureq` needs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// Largest request read (head and body), in bytes; a test's requests are far smaller.
const MAX_REQUEST_BYTES: usize = 64 << 20;

/// One request as the server read it.
#[derive(Clone, Debug)]
pub struct Request {
    /// The request line and headers, as sent (e.g. `POST /v1/embeddings HTTP/1.1\r\n...`).
    pub head: String,
    /// The body (its `Content-Length` bytes), as text.
    pub body: String,
}

impl Request {
    /// The body parsed as JSON (`Value::Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }
}

/// What the server answers to one request.
#[derive(Clone, Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body, sent as `application/json` whatever it holds.
    pub body: String,
    /// Wait before answering (to test timeouts).
    pub delay: Duration,
}

impl Reply {
    /// `status` with `body`, at once.
    pub fn new(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// 200 with `body`.
    pub fn ok(body: impl Into<String>) -> Reply {
        Reply::new(200, body)
    }

    /// 200 with a chat completion whose first choice's message content is `content`.
    pub fn chat(content: &str) -> Reply {
        Reply::ok(
            json!({
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content}}]
            })
            .to_string(),
        )
    }

    /// 200 with a rerank answer (`/v1/rerank`, llama.cpp's shape): `results` of `index` and
    /// `relevance_score`, best first, scoring each of the request's `documents` with
    /// `score(query, document)`. A request without a `query` and `documents` gets 400.
    pub fn rerank(request: &Request, score: impl Fn(&str, &str) -> f32) -> Reply {
        let body = request.json();
        let (Some(query), Some(docs)) = (body["query"].as_str(), body["documents"].as_array())
        else {
            return Reply::new(400, r#"{"error":"query and documents are required"}"#);
        };
        let mut results: Vec<(usize, f32)> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| (i, score(query, d.as_str().unwrap_or_default())))
            .collect();
        results.sort_by(|a, b| b.1.total_cmp(&a.1));
        let results: Vec<Value> = results
            .into_iter()
            .map(|(index, s)| json!({"index": index, "relevance_score": s}))
            .collect();
        Reply::ok(json!({"model": "test-reranker", "results": results}).to_string())
    }

    /// This reply after `delay`.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A server on `127.0.0.1` answering every request with its handler; stops accepting when
/// dropped.
pub struct TestServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Starts a server answering each request with `handler(request)`.
    ///
    /// # Panics
    /// If no loopback port can be bound (the test cannot run).
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (seen, stopping) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                if stopping.load(Ordering::Acquire) {
                    return;
                }
                let Ok(sock) = sock else { continue };
                let (handler, seen) = (Arc::clone(&handler), Arc::clone(&seen));
                std::thread::spawn(move || answer(sock, &*handler, &seen));
            }
        });
        TestServer {
            addr,
            requests,
            stop,
        }
    }

    /// Always `reply`.
    pub fn always(reply: Reply) -> TestServer {
        TestServer::start(move |_| reply.clone())
    }

    /// The API base, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The requests read so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads one request from `sock`, records it and writes the handler's reply.
fn answer(mut sock: TcpStream, handler: &Handler, seen: &Mutex<Vec<Request>>) {
    let Some(request) = read_request(&mut sock) else {
        return;
    };
    let reply = handler(&request);
    seen.lock().unwrap_or_else(|p| p.into_inner()).push(request);
    std::thread::sleep(reply.delay);
    let _ = write!(
        sock,
        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{}",
        reply.status,
        reply.body.len(),
        reply.body
    );
    let _ = sock.flush();
}

/// The head and `Content-Length` body of one request; `None` if the peer closes first.
fn read_request(sock: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = sock.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let partial = Request {
                head,
                body: String::new(),
            };
            let len: usize = partial
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len && buf.len() < MAX_REQUEST_BYTES {
                let n = sock.read(&mut chunk).ok().filter(|&n| n > 0)?;
                buf.extend_from_slice(&chunk[..n]);
            }
            let body_end = (end + 4 + len).min(buf.len());
            return Some(Request {
                body: String::from_utf8_lossy(&buf[end + 4..body_end]).into_owned(),
                ..partial
            });
        }
        if buf.len() >= MAX_REQUEST_BYTES {
            return None;
        }
    }
}
