//! The thin QUIC layer: quinn endpoints, one connection per peer, one bidirectional stream
//! per shard, frames in and out of the [`proto`](crate::proto) state machine.
//!
//! Storage calls run on tokio's blocking pool (`spawn_blocking`); nothing else here blocks.
//! A stream that breaks the protocol, sends a bad frame or asks for a shard it may not use is
//! reset with one of the `CODE_*` application error codes and receives nothing more.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reasonbank_memory::{ApplyReport, Change, RecordId, Shard, ShardId, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::frame::{self, LEN_BYTES};
use crate::proto::{Batch, Direction, LocalShard, Message, Replica, Session};
use crate::tls::{client_config, in_words, peer_fingerprint, server_config};
use crate::{Error, Fingerprint, Result, SyncConfig};

/// Application error code: the peer or shard is not allowed.
pub const CODE_DENIED: u32 = 1;
/// Application error code: a protocol violation.
pub const CODE_PROTOCOL: u32 = 2;
/// Application error code: a malformed, oversized or undecodable frame.
pub const CODE_FRAME: u32 = 3;
/// Application error code: a local failure (storage, timeout).
pub const CODE_INTERNAL: u32 = 4;
/// Application error code: the connection was cut on purpose (test hook).
pub const CODE_CUT: u32 = 5;
/// Application error code: the peer speaks another protocol version.
pub const CODE_VERSION: u32 = 6;
/// Application error code: text-only sync the peer cannot receive (no re-embedder for the
/// shard's model).
pub const CODE_TEXT_ONLY: u32 = 7;

/// What an application error code of a refused stream means.
pub fn code_reason(code: u64) -> &'static str {
    match u32::try_from(code) {
        Ok(CODE_DENIED) => "access denied",
        Ok(CODE_PROTOCOL) => "protocol violation or shard model mismatch",
        Ok(CODE_FRAME) => "malformed frame",
        Ok(CODE_INTERNAL) => "the peer failed locally",
        Ok(CODE_CUT) => "connection cut",
        Ok(CODE_VERSION) => "the peer speaks another sync protocol version",
        Ok(CODE_TEXT_ONLY) => "the peer cannot re-embed text-only changes of this shard",
        _ => "unknown error code",
    }
}

/// Server name sent in the TLS handshake; peers are identified by fingerprint, not name.
const SERVER_NAME: &str = "reasonbank-sync";

/// What one sync of one shard did, as seen from the client.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct SyncReport {
    /// Changes sent to the peer.
    pub changes_sent: u64,
    /// Changes received from the peer.
    pub changes_received: u64,
    /// Received changes that were newer than the local rows and written.
    pub changes_applied: u64,
    /// Frame bytes sent on the stream (length prefixes included).
    pub bytes_sent: u64,
    /// Frame bytes received on the stream.
    pub bytes_received: u64,
    /// Bytes of batch messages before compression, both directions.
    pub batch_raw_bytes: u64,
    /// Bytes of batch frames on the wire, both directions.
    pub batch_wire_bytes: u64,
    /// Whether the first request went out as 0-RTT data.
    pub zero_rtt: bool,
    /// Received changes whose vector this side made from their text (text-only sync).
    pub changes_reembedded: u64,
    /// Time spent in the [`Reembedder`](crate::Reembedder) (text-only sync).
    pub reembed_time: Duration,
    /// Wall time of the sync.
    pub elapsed: Duration,
    /// A two-way sync whose push the peer denied (its grant is read-only), so only the pull
    /// ran (set by the caller that retried; the sync itself fails on a denied push).
    pub push_denied: bool,
}

impl SyncReport {
    /// Frame bytes in both directions.
    pub fn bytes_on_wire(&self) -> u64 {
        self.bytes_sent + self.bytes_received
    }

    /// Batch bytes before compression divided by batch bytes on the wire (1.0 without batches).
    pub fn compression_ratio(&self) -> f64 {
        if self.batch_wire_bytes == 0 {
            1.0
        } else {
            self.batch_raw_bytes as f64 / self.batch_wire_bytes as f64
        }
    }
}

/// A stream carrying frames, with byte counters.
struct FrameIo {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    conn: quinn::Connection,
    config: Arc<SyncConfig>,
    frames_in: u64,
    report: SyncReport,
}

impl FrameIo {
    async fn read(&mut self) -> Result<Message> {
        let idle = self.config.idle_timeout;
        let timed_out = || Error::Timeout {
            what: "the next frame",
            millis: u64::try_from(idle.as_millis()).unwrap_or(u64::MAX),
        };
        let mut prefix = [0u8; LEN_BYTES];
        tokio::time::timeout(idle, self.recv.read_exact(&mut prefix))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| read_error(e, true))?;
        let len = frame::body_len(prefix, self.config.max_frame_bytes)?;
        let mut body = vec![0u8; len];
        tokio::time::timeout(idle, self.recv.read_exact(&mut body))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| read_error(e, false))?;
        let (msg, raw) = frame::decode_body(&body, self.config.max_frame_bytes)?;
        let wire = (LEN_BYTES + len) as u64;
        self.report.bytes_received += wire;
        if matches!(msg, Message::Batch(_)) {
            self.report.batch_raw_bytes += raw as u64;
            self.report.batch_wire_bytes += wire;
        }
        self.frames_in += 1;
        if self.config.cut_after_frames == Some(self.frames_in) {
            self.conn.close(CODE_CUT.into(), b"cut (test hook)");
            return Err(Error::Refused {
                code: CODE_CUT.into(),
            });
        }
        Ok(msg)
    }

    async fn write(&mut self, msgs: &[Message]) -> Result<()> {
        if msgs.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for m in msgs {
            let f = frame::encode(m, self.config.zstd_level, self.config.max_frame_bytes)?;
            if matches!(m, Message::Batch(_)) {
                self.report.batch_raw_bytes += f.raw_len as u64;
                self.report.batch_wire_bytes += f.bytes.len() as u64;
            }
            self.report.bytes_sent += f.bytes.len() as u64;
            buf.extend_from_slice(&f.bytes);
        }
        self.send.write_all(&buf).await.map_err(|e| match e {
            quinn::WriteError::Stopped(code) => Error::Refused {
                code: code.into_inner(),
            },
            e => Error::Write(e),
        })
    }

    /// Resets both halves of the stream with the code that fits `err`.
    fn abort(&mut self, err: &Error) {
        let code = match err {
            Error::AccessDenied { .. } | Error::UnknownPeer { .. } => CODE_DENIED,
            Error::Protocol { .. } | Error::ModelMismatch { .. } => CODE_PROTOCOL,
            Error::ProtocolVersion { .. } => CODE_VERSION,
            Error::NoReembedder | Error::ReembedderModel { .. } => CODE_TEXT_ONLY,
            Error::FrameTooLarge { .. }
            | Error::MalformedFrame { .. }
            | Error::Decode { .. }
            | Error::Decompress { .. } => CODE_FRAME,
            // A change the shard refuses is the peer's fault too.
            Error::Memory(reasonbank_memory::Error::InvalidChange { .. }) => CODE_PROTOCOL,
            _ => CODE_INTERNAL,
        };
        let _ = self.send.reset(code.into());
        let _ = self.recv.stop(code.into());
    }
}

fn read_error(e: quinn::ReadExactError, at_boundary: bool) -> Error {
    match e {
        quinn::ReadExactError::FinishedEarly(0) if at_boundary => Error::UnexpectedEnd,
        quinn::ReadExactError::FinishedEarly(n) => Error::MalformedFrame {
            reason: format!("stream ended {n} bytes into a frame"),
        },
        quinn::ReadExactError::ReadError(quinn::ReadError::Reset(code)) => Error::Refused {
            code: code.into_inner(),
        },
        quinn::ReadExactError::ReadError(e) => Error::Read(e),
    }
}

/// The key under which a shard stores its pull cursor for the shard `origin` of `peer`:
/// `<peer fingerprint>:<origin>` (read it with [`Shard::sync_cursor`]).
///
/// Scoping cursors by the authenticated peer keeps one peer from moving the cursor another
/// peer's changes are pulled with by announcing that peer's shard origin as its own.
pub fn cursor_key(peer: &Fingerprint, origin: &str) -> String {
    format!("{peer}:{origin}")
}

/// A shard as the protocol sees it through one authenticated peer: cursors scoped by peer.
struct PeerShard {
    shard: Arc<Shard>,
    peer: Fingerprint,
}

impl Replica for PeerShard {
    fn changes_since(&self, after: i64, limit: usize) -> Result<Vec<Change>> {
        Ok(self.shard.changes_since(after, limit)?)
    }
    fn apply_changes(&self, changes: &[Change], cursor: (&str, i64)) -> Result<ApplyReport> {
        let key = cursor_key(&self.peer, cursor.0);
        Ok(self.shard.apply_changes(changes, Some((&key, cursor.1)))?)
    }
    fn sync_cursor(&self, origin: &str) -> Result<i64> {
        Ok(self.shard.sync_cursor(&cursor_key(&self.peer, origin))?)
    }
    fn stamps(&self, ids: &[RecordId]) -> Result<Vec<Option<(u64, String)>>> {
        Ok(self.shard.stamps(ids)?)
    }
}

/// Runs `session` to completion on `io`: sends `first`, then answers every frame.
async fn drive(
    io: &mut FrameIo,
    mut session: Session,
    shard: Arc<PeerShard>,
    first: Vec<Message>,
    start: Instant,
) -> Result<Session> {
    io.write(&first).await?;
    while !session.is_done() {
        let mut msg = io.read().await?;
        let now = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Some(next) = session.prefetch(&msg, now) {
            io.write(&[next]).await?;
        }
        if session.reembeds(&msg) {
            // Before the blocking apply, while the peer already reads the prefetched batch:
            // the rows commit with their vectors, or not at all.
            let s = Arc::clone(&shard);
            let (sess, m, texts) = tokio::task::spawn_blocking(move || {
                let texts = session.prepare_text_only(&*s, &mut msg);
                (session, msg, texts)
            })
            .await?;
            (session, msg) = (sess, m);
            let texts = texts?;
            if let (false, Message::Batch(batch)) = (texts.is_empty(), &mut msg) {
                reembed(io, batch, &texts, shard.shard.dimensions()).await?;
            }
        }
        let shard = Arc::clone(&shard);
        let (s, out) = tokio::task::spawn_blocking(move || {
            let out = session.handle(&*shard, msg, now);
            (session, out)
        })
        .await?;
        session = s;
        io.write(&out?).await?;
    }
    let _ = io.send.finish();
    Ok(session)
}

/// Fills in the vectors a text-only `batch` lacks (for `texts`, its
/// [`Batch::missing_vectors`]) with the configured re-embedder.
async fn reembed(io: &mut FrameIo, batch: &mut Batch, texts: &[String], dims: usize) -> Result<()> {
    let hook = io.config.reembedder.as_ref().ok_or(Error::NoReembedder)?;
    let t = Instant::now();
    // The sender gives up on this stream after its idle timeout (ours, by default): a call
    // that takes longer cannot commit anything anyway.
    let idle = io.config.idle_timeout;
    let vectors = tokio::time::timeout(idle, hook.embed(texts))
        .await
        .map_err(|_| Error::Timeout {
            what: "the re-embedding of a text-only batch",
            millis: u64::try_from(idle.as_millis()).unwrap_or(u64::MAX),
        })?
        .map_err(|source| Error::Reembed {
            texts: texts.len(),
            source,
        })?;
    batch.fill_vectors(vectors, dims)?;
    io.report.reembed_time += t.elapsed();
    io.report.changes_reembedded += texts.len() as u64;
    Ok(())
}

/// Serves the shards of a [`Store`] to authenticated peers.
///
/// Dropping it closes the endpoint and every connection.
#[derive(Debug)]
pub struct SyncServer {
    endpoint: quinn::Endpoint,
    task: JoinHandle<()>,
}

impl SyncServer {
    /// Binds a UDP socket at `addr` and serves `store` in a background task of the current
    /// tokio runtime. Shards are opened (and, as the store's options allow, created) when a
    /// peer with access asks for them.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a bad configuration, [`Error::Tls`] for an unusable
    /// identity, [`Error::Io`] if the socket cannot be bound or there is no tokio runtime.
    pub fn bind(addr: SocketAddr, store: Arc<Store>, config: SyncConfig) -> Result<SyncServer> {
        config.validate()?;
        let endpoint = quinn::Endpoint::server(server_config(&config)?, addr)?;
        let config = Arc::new(config);
        let ep = endpoint.clone();
        let task = tokio::spawn(async move {
            while let Some(incoming) = ep.accept().await {
                let store = Arc::clone(&store);
                let config = Arc::clone(&config);
                let remote = incoming.remote_address();
                tokio::spawn(async move {
                    if let Err(e) = serve_connection(incoming, store, config).await {
                        tracing::warn!(%remote, error = %e, "peer refused");
                    }
                });
            }
        });
        Ok(SyncServer { endpoint, task })
    }

    /// The bound address (with the real port when bound to port 0).
    ///
    /// # Errors
    /// [`Error::Io`] from the socket.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.endpoint.local_addr()?)
    }

    /// Closes every connection and stops accepting new ones.
    pub fn close(&self) {
        self.endpoint.close(0u32.into(), b"server shutting down");
        self.task.abort();
    }
}

impl Drop for SyncServer {
    fn drop(&mut self) {
        self.close();
    }
}

async fn serve_connection(
    incoming: quinn::Incoming,
    store: Arc<Store>,
    config: Arc<SyncConfig>,
) -> Result<()> {
    // The whole handshake, client certificate included, completes before the application sees
    // the connection or any stream on it (no `into_0rtt` here: see `tls::server_config`).
    let conn = tokio::time::timeout(config.handshake_timeout, incoming)
        .await
        .map_err(|_| Error::Timeout {
            what: "the handshake",
            millis: u64::try_from(config.handshake_timeout.as_millis()).unwrap_or(u64::MAX),
        })??;
    let peer = match peer_fingerprint(&conn) {
        Some(p) if config.is_allowed(&p) => p,
        other => {
            conn.close(CODE_DENIED.into(), b"");
            return Err(Error::UnknownPeer { fingerprint: other });
        }
    };
    tracing::info!(remote = %conn.remote_address(), %peer, "peer connected");
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(_) => return Ok(()),
        };
        let io = FrameIo {
            send,
            recv,
            conn: conn.clone(),
            config: Arc::clone(&config),
            frames_in: 0,
            report: SyncReport::default(),
        };
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut io = io;
            match serve_stream(&mut io, peer, store).await {
                Ok((shard, s)) => tracing::info!(
                    %peer,
                    %shard,
                    sent = s.changes_sent,
                    received = s.changes_received,
                    applied = s.changes_applied,
                    bytes_in = io.report.bytes_received,
                    bytes_out = io.report.bytes_sent,
                    "shard synced"
                ),
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "shard session failed");
                    io.abort(&e);
                }
            }
        });
    }
}

/// Serves one shard session; returns the shard and what moved.
async fn serve_stream(
    io: &mut FrameIo,
    peer: Fingerprint,
    store: Arc<Store>,
) -> Result<(ShardId, crate::proto::Stats)> {
    let start = Instant::now();
    let Message::Open(open) = io.read().await? else {
        return Err(Error::Protocol {
            reason: "the first message on a stream must be Open".into(),
        });
    };
    let access = io.config.access(&peer, &open.shard);
    for (wanted, granted, what) in [
        (open.pull, access.read, "read"),
        (open.push, access.write, "write"),
    ] {
        if wanted && !granted {
            return Err(Error::AccessDenied {
                peer,
                shard: open.shard,
                access: what,
            });
        }
    }
    if open.text_only && open.push {
        // This side receives the client's rows without vectors: it must be able to embed them
        // with the shard's model (the session checks the shard's model against `open`).
        io.config.check_reembedder(&open.model_id, open.dims)?;
    }
    let id = open.shard.clone();
    let open_shard_id = id.clone();
    let shard = tokio::task::spawn_blocking(move || store.shard(&id)).await??;
    let mut session = Session::server(LocalShard::of(&shard), io.config.limits());
    let shard = Arc::new(PeerShard { shard, peer });
    let first = {
        let shard = Arc::clone(&shard);
        let (s, out) = tokio::task::spawn_blocking(move || {
            let out = session.handle(&*shard, Message::Open(open), 0);
            (session, out)
        })
        .await?;
        session = s;
        out?
    };
    let id = open_shard_id;
    drive(io, session, shard, first, start)
        .await
        .map(|s| (id, s.stats().clone()))
}

/// A connection to one peer, over which shards sync on parallel streams.
///
/// `pull`, `push` and `sync` take `&self`: run several at once (one per shard) and they use
/// one stream each on the same connection.
#[derive(Debug)]
pub struct SyncClient {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    addr: SocketAddr,
    peer: Fingerprint,
    config: Arc<SyncConfig>,
    /// `true` once the handshake of `conn` has completed.
    handshake: watch::Receiver<bool>,
    /// Whether `conn` started with 0-RTT data.
    early: bool,
    /// Whether the server accepted that 0-RTT data, once the handshake has told.
    early_accepted: Arc<Mutex<Option<bool>>>,
    /// The server shard origins seen on this client, so a resumed connection can send its
    /// first pull as 0-RTT data.
    origins: Mutex<HashMap<ShardId, String>>,
}

impl SyncClient {
    /// Connects to the server at `addr` with a full handshake; the server's certificate must
    /// be in `config`'s allowlist and ours in the server's.
    ///
    /// # Errors
    /// [`Error::InvalidOption`], [`Error::Tls`] for the configuration, [`Error::Connect`] /
    /// [`Error::Connection`] if the handshake fails (an unknown certificate on either side
    /// fails it), [`Error::Timeout`] after the handshake timeout, [`Error::UnknownPeer`].
    pub async fn connect(addr: SocketAddr, config: SyncConfig) -> Result<SyncClient> {
        config.validate()?;
        let bind: SocketAddr = if addr.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let mut endpoint = quinn::Endpoint::client(bind)?;
        let (client, verifier) = client_config(&config)?;
        endpoint.set_default_client_config(client);
        let config = Arc::new(config);
        let connecting = endpoint.connect(addr, SERVER_NAME)?;
        let conn = handshake(connecting, &config)
            .await
            .map_err(|e| in_words(e, addr, &config, verifier.refused()))?;
        let peer = peer_fingerprint(&conn)
            .filter(|p| config.is_allowed(p))
            .ok_or(Error::UnknownPeer { fingerprint: None })?;
        let (_, handshake) = watch::channel(true);
        Ok(SyncClient {
            endpoint,
            conn,
            addr,
            peer,
            config,
            handshake,
            early: false,
            early_accepted: Arc::new(Mutex::new(None)),
            origins: Mutex::new(HashMap::new()),
        })
    }

    /// Closes the connection and connects again, resuming the TLS session. With 0-RTT enabled
    /// (and a ticket from the server), the connection is usable at once: pull-only syncs of
    /// shards pulled before send their first request as 0-RTT data; everything else waits for
    /// the handshake. Returns whether the connection started with 0-RTT.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn reconnect(&mut self) -> Result<bool> {
        self.conn.close(0u32.into(), b"reconnecting");
        let connecting = self.endpoint.connect(self.addr, SERVER_NAME)?;
        let (tx, rx) = watch::channel(false);
        self.early_accepted = Arc::new(Mutex::new(None));
        if self.config.zero_rtt {
            match connecting.into_0rtt() {
                Ok((conn, accepted)) => {
                    let flag = Arc::clone(&self.early_accepted);
                    tokio::spawn(async move {
                        let ok = accepted.await;
                        *flag.lock().unwrap_or_else(|p| p.into_inner()) = Some(ok);
                        let _ = tx.send(true);
                    });
                    self.conn = conn;
                    self.handshake = rx;
                    self.early = true;
                    return Ok(true);
                }
                Err(connecting) => {
                    self.conn = handshake(connecting, &self.config).await?;
                }
            }
        } else {
            self.conn = handshake(connecting, &self.config).await?;
        }
        let _ = tx.send(true);
        self.handshake = rx;
        self.early = false;
        self.check_peer()?;
        Ok(false)
    }

    fn check_peer(&self) -> Result<()> {
        match peer_fingerprint(&self.conn) {
            Some(p) if p == self.peer && self.config.is_allowed(&p) => Ok(()),
            other => {
                self.conn.close(CODE_DENIED.into(), b"");
                Err(Error::UnknownPeer { fingerprint: other })
            }
        }
    }

    /// For a connection opened by [`reconnect`](Self::reconnect) with 0-RTT: whether the
    /// server accepted the early data (`None` before the handshake completes, or without 0-RTT).
    pub fn zero_rtt_accepted(&self) -> Option<bool> {
        *self
            .early_accepted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The server's fingerprint.
    pub fn peer(&self) -> Fingerprint {
        self.peer
    }

    /// Receives the server's changes of shard `id` into `local` (the same shard on this side).
    ///
    /// # Errors
    /// [`Error::AccessDenied`] if this side's grants do not let the server write `id`;
    /// [`Error::Refused`] if the server refuses; storage, frame, protocol and connection errors.
    /// Whatever was committed before an error stays committed, with its cursor: the next
    /// sync resumes from there.
    pub async fn pull(&self, id: &ShardId, local: &Arc<Shard>) -> Result<SyncReport> {
        self.run(id, local, Direction::Pull).await
    }

    /// Sends the changes of `local` to the server's shard `id`.
    ///
    /// # Errors
    /// As [`pull`](Self::pull); this side needs to grant the server `read` on `id`.
    pub async fn push(&self, id: &ShardId, local: &Arc<Shard>) -> Result<SyncReport> {
        self.run(id, local, Direction::Push).await
    }

    /// Pulls and pushes shard `id` on one stream; afterwards both sides hold the same rows
    /// (unless either side wrote meanwhile).
    ///
    /// # Errors
    /// As [`pull`](Self::pull) and [`push`](Self::push).
    pub async fn sync(&self, id: &ShardId, local: &Arc<Shard>) -> Result<SyncReport> {
        self.run(id, local, Direction::Both).await
    }

    /// Test hook: a raw stream on the connection, to send hand-made frames.
    #[doc(hidden)]
    pub async fn raw_stream(&self) -> Result<(quinn::SendStream, quinn::RecvStream)> {
        self.wait_handshake().await?;
        Ok(self.conn.open_bi().await?)
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.conn.close(0u32.into(), b"done");
    }

    async fn run(&self, id: &ShardId, local: &Arc<Shard>, dir: Direction) -> Result<SyncReport> {
        // In TLS 1.3 the server checks our certificate after our side of the handshake is
        // done: its refusal arrives on the first stream.
        self.run_shard(id, local, dir)
            .await
            .map_err(|e| in_words(e, self.addr, &self.config, None))
    }

    async fn run_shard(
        &self,
        id: &ShardId,
        local: &Arc<Shard>,
        dir: Direction,
    ) -> Result<SyncReport> {
        let need = match dir {
            Direction::Pull => [false, true],
            Direction::Push => [true, false],
            Direction::Both => [true, true],
        };
        let access = self.config.access(&self.peer, id);
        if (need[0] && !access.read) || (need[1] && !access.write) {
            return Err(Error::AccessDenied {
                peer: self.peer,
                shard: id.clone(),
                access: if need[0] && !access.read {
                    "read"
                } else {
                    "write"
                },
            });
        }
        if self.config.text_only && need[1] {
            // Refused before anything is sent: rows must never arrive without a way to embed
            // them.
            let l = LocalShard::of(local);
            self.config.check_reembedder(&l.model_id, l.dims)?;
        }
        let known = self
            .origins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned();
        // Only an idempotent pull of a shard whose server origin is known goes out before the
        // handshake completes; everything else waits for it.
        let early =
            self.early && dir == Direction::Pull && known.is_some() && !*self.handshake.borrow();
        if !early {
            self.wait_handshake().await?;
        }
        match self.run_once(id, local, dir, known.as_deref(), early).await {
            Err(Error::Write(quinn::WriteError::ZeroRttRejected))
            | Err(Error::Read(quinn::ReadError::ZeroRttRejected))
                if early =>
            {
                // The server did not accept the early data: nothing of it was processed.
                self.wait_handshake().await?;
                self.run_once(id, local, dir, known.as_deref(), false).await
            }
            Ok(report) if early => {
                // The answer came from the holder of the resumed session's keys; still check
                // the certificate of the completed handshake, as for every connection.
                self.wait_handshake().await?;
                Ok(report)
            }
            other => other,
        }
    }

    async fn wait_handshake(&self) -> Result<()> {
        let mut rx = self.handshake.clone();
        let limit = self.config.handshake_timeout;
        tokio::time::timeout(limit, rx.wait_for(|done| *done))
            .await
            .map_err(|_| Error::Timeout {
                what: "the handshake",
                millis: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            })?
            .map_err(|_| Error::UnexpectedEnd)?;
        if self.early {
            if let Some(reason) = self.conn.close_reason() {
                return Err(Error::Connection(reason));
            }
            self.check_peer()?;
        }
        Ok(())
    }

    async fn run_once(
        &self,
        id: &ShardId,
        local: &Arc<Shard>,
        dir: Direction,
        known: Option<&str>,
        early: bool,
    ) -> Result<SyncReport> {
        let start = Instant::now();
        let (send, recv) = self.conn.open_bi().await?;
        let mut io = FrameIo {
            send,
            recv,
            conn: self.conn.clone(),
            config: Arc::clone(&self.config),
            frames_in: 0,
            report: SyncReport::default(),
        };
        let mut session =
            Session::client(id.clone(), LocalShard::of(local), dir, self.config.limits())
                .with_text_only(self.config.text_only);
        let replica = Arc::new(PeerShard {
            shard: Arc::clone(local),
            peer: self.peer,
        });
        let first = {
            let shard = Arc::clone(&replica);
            let known = known.map(str::to_owned);
            let (s, out) = tokio::task::spawn_blocking(move || {
                let out = session.start(&*shard, known.as_deref(), 0);
                (session, out)
            })
            .await?;
            session = s;
            out?
        };
        let session = match drive(&mut io, session, replica, first, start).await {
            Ok(s) => s,
            Err(e) => {
                io.abort(&e);
                return Err(e);
            }
        };
        if let Some(origin) = session.remote_origin() {
            self.origins
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.clone(), origin.to_owned());
        }
        let stats = session.stats();
        let mut report = io.report;
        report.changes_sent = stats.changes_sent;
        report.changes_received = stats.changes_received;
        report.changes_applied = stats.changes_applied;
        report.zero_rtt = early;
        report.elapsed = start.elapsed();
        Ok(report)
    }
}

impl Drop for SyncClient {
    fn drop(&mut self) {
        self.conn.close(0u32.into(), b"client dropped");
    }
}

async fn handshake(
    connecting: quinn::Connecting,
    config: &SyncConfig,
) -> Result<quinn::Connection> {
    let limit = config.handshake_timeout;
    Ok(tokio::time::timeout(limit, connecting)
        .await
        .map_err(|_| Error::Timeout {
            what: "the handshake",
            millis: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
        })??)
}
