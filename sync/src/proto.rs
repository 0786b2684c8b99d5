//! The sync protocol as a pure state machine: messages (and `now`) in, messages out.
//!
//! No sockets and no clock: [`Session::handle`] takes a received [`Message`] and returns the
//! messages to send; [`Session::poll`] takes the current time and returns retransmissions.
//! Storage is reached through the [`Replica`] trait ([`Shard`] implements it), so the same
//! code runs over QUIC (`crate::quic`) and in the deterministic simulator of the tests, which
//! drops, reorders, duplicates and partitions messages.
//!
//! # One session per shard per stream
//!
//! The initiator (client) opens with [`Open`] naming the shard and the directions it wants;
//! the responder (server) answers [`Opened`]. Each direction is a *delta pull* driven by the
//! side that receives the data:
//!
//! 1. the receiver sends [`Pull`] with its cursor for the sender (the highest sender `seq` it
//!    has committed) and a request number;
//! 2. the sender answers [`Batch`]: at most `limit` changes with `seq > after` in `seq` order
//!    (bounded in bytes too), `upto` (the last `seq` included) and `more`;
//! 3. the receiver applies the batch and stores `upto` as its cursor **in one transaction**
//!    ([`Shard::apply_changes`]), then pulls again from `upto`, or sends [`Done`](Message::Done)
//!    when `more` is false.
//!
//! Push is the same pull with the roles of the data swapped (the server pulls from the
//! client). The sender keeps no state between requests and applying is idempotent, so a
//! lost, repeated or reordered message costs at most a retransmission: a reply to a request
//! that is no longer outstanding is ignored, a cursor never moves without its rows, and a
//! resumed session starts from the committed cursor, losing and duplicating nothing.
//!
//! The cursor is keyed by the sender shard's `origin` (a UUID per shard file), so a shard that
//! is deleted and recreated under the same name is pulled from the start. The QUIC layer
//! further scopes it by the peer's certificate fingerprint (`quic::cursor_key`).
//!
//! # Text-only sessions
//!
//! A client may open a session with [`Open::text_only`]: both sides then pull with
//! [`Pull::text_only`], and a sender answering such a pull leaves out the vector of every
//! live row whose text is [`embeddable`](crate::reembed::embeddable) (tombstones have none;
//! rows with an empty text keep theirs). The receiver fills the vectors in *before*
//! [`Session::handle`] applies the batch ([`Session::reembeds`], [`Batch::missing_vectors`],
//! [`Batch::fill_vectors`]; the QUIC glue calls the [`Reembedder`](crate::Reembedder)), so a
//! row is never committed without its vector and the cursor still moves only with its rows.
//! A live row without a vector that reaches [`Replica::apply_changes`] is refused whole.
//! Sessions only start between shards of the same model id and dimensions (checked by both
//! sides on [`Open`] / [`Opened`], and a sender serves a pull only after that check).

use reasonbank_memory::{ApplyReport, Change, Embedding, RecordId, Shard, ShardId};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Version of this protocol, sent in [`Open`]; a peer speaking another version is refused
/// with [`Error::ProtocolVersion`] (the frame decoder reads the version of an `Open` it cannot
/// decode, so a peer whose `Open` has other fields gets that error too).
///
/// Version 2 added [`Open::text_only`] and [`Pull::text_only`]. Version 3 merges replicated
/// counters on apply ([`reasonbank_memory::Counters`]) and serves a peer's own rows back when
/// they hold them; a version 2 peer would replace them whole, losing increments.
pub const PROTOCOL_VERSION: u16 = 3;

/// Every message of the protocol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// Client → server, first on a stream: which shard and which directions.
    Open(Open),
    /// Server → client: the server's side of the shard.
    Opened(Opened),
    /// Receiver → sender: send changes after my cursor.
    Pull(Pull),
    /// Sender → receiver: the answer to a [`Pull`].
    Batch(Batch),
    /// Receiver → sender: I have everything; this direction is finished.
    Done,
}

/// Opens a session for one shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Open {
    /// [`PROTOCOL_VERSION`] of the client.
    pub protocol: u16,
    /// The shard to sync (the same name on both sides).
    pub shard: ShardId,
    /// The client shard's origin id.
    pub origin: String,
    /// The client shard's embedding model id; both sides must match.
    pub model_id: String,
    /// The client shard's dimensions; both sides must match.
    pub dims: u32,
    /// The client pulls from the server (needs read access on the server).
    pub pull: bool,
    /// The client pushes to the server (needs write access on the server).
    pub push: bool,
    /// Text-only session: every pull of it (both directions) asks for rows without vectors,
    /// and each receiver re-embeds the texts. A server without a re-embedder for the shard
    /// refuses a text-only push.
    pub text_only: bool,
}

/// The server's answer to [`Open`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Opened {
    /// The server shard's origin id.
    pub origin: String,
    /// The server shard's embedding model id.
    pub model_id: String,
    /// The server shard's dimensions.
    pub dims: u32,
}

/// A request for changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pull {
    /// Request number, echoed in the [`Batch`]; only the outstanding one is accepted.
    pub req: u64,
    /// The sender origin the cursor belongs to; if it is not the sender's, the sender starts
    /// from 0 (its shard was recreated, or the receiver does not know it yet).
    pub origin: Option<String>,
    /// The receiver's cursor: send changes with `seq > after`.
    pub after: i64,
    /// Most changes wanted.
    pub limit: u32,
    /// Send live rows without their vector (the receiver re-embeds their text); rows whose
    /// text is not embeddable keep it.
    pub text_only: bool,
}

/// Changes answering a [`Pull`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The request answered.
    pub req: u64,
    /// The sender shard's origin id (the key of the receiver's cursor).
    pub origin: String,
    /// The `after` the changes follow (0 if the request's origin did not match).
    pub after: i64,
    /// The sender `seq` of the last row scanned for this batch (`after` if none): the
    /// receiver's next cursor. Rows the receiver wrote itself are scanned but not sent.
    pub upto: i64,
    /// Whether more changes follow `upto`.
    pub more: bool,
    /// The changes, in sender `seq` order.
    pub changes: Vec<Change>,
}

impl Batch {
    /// The texts of the live changes that arrived without a vector, in order: what a
    /// text-only receiver embeds before it applies the batch.
    ///
    /// # Errors
    /// [`Error::Protocol`] for a live change without a vector whose text cannot be embedded
    /// (the sender must send the vector of such rows).
    pub fn missing_vectors(&self) -> Result<Vec<String>> {
        let mut texts = Vec::new();
        for c in self
            .changes
            .iter()
            .filter(|c| !c.deleted && c.embedding.is_none())
        {
            if !crate::reembed::embeddable(&c.text) {
                return Err(protocol(
                    "a live row with an empty text arrived without its vector",
                ));
            }
            texts.push(c.text.clone());
        }
        Ok(texts)
    }

    /// Puts `vectors` (one per text of [`missing_vectors`](Self::missing_vectors), in order)
    /// into the changes that lack them.
    ///
    /// # Errors
    /// [`Error::Reembed`] if there are more or fewer vectors than missing ones, or one has
    /// another length than `dims`; the batch is then unchanged.
    pub fn fill_vectors(&mut self, vectors: Vec<Embedding>, dims: usize) -> Result<()> {
        let missing = self
            .changes
            .iter()
            .filter(|c| !c.deleted && c.embedding.is_none())
            .count();
        let bad = |reason: String| Error::Reembed {
            texts: missing,
            source: reason.into(),
        };
        if vectors.len() != missing {
            return Err(bad(format!(
                "the re-embedder returned {} vectors for {missing} texts",
                vectors.len()
            )));
        }
        if let Some(v) = vectors.iter().find(|v| v.len() != dims) {
            return Err(bad(format!(
                "the re-embedder returned a {}-d vector for a {dims}-d shard",
                v.len()
            )));
        }
        let slots = self
            .changes
            .iter_mut()
            .filter(|c| !c.deleted && c.embedding.is_none());
        for (c, v) in slots.zip(vectors) {
            c.embedding = Some(v);
        }
        Ok(())
    }
}

/// Storage as the protocol needs it. [`Shard`] implements it; the simulator has an in-memory
/// model.
pub trait Replica {
    /// Up to `limit` changes with `seq > after`, in `seq` order.
    ///
    /// # Errors
    /// Storage failures.
    fn changes_since(&self, after: i64, limit: usize) -> Result<Vec<Change>>;
    /// Applies changes (last-writer-wins) and stores `cursor` in the same transaction.
    ///
    /// # Errors
    /// Invalid changes (nothing is written) and storage failures.
    fn apply_changes(&self, changes: &[Change], cursor: (&str, i64)) -> Result<ApplyReport>;
    /// The cursor stored for `peer`, 0 if none.
    ///
    /// # Errors
    /// Storage failures.
    fn sync_cursor(&self, peer: &str) -> Result<i64>;
    /// The `(version, origin)` stamps of the local rows with these ids, in order (`None` for
    /// ids not held). A row's stamp never decreases.
    ///
    /// # Errors
    /// Storage failures.
    fn stamps(&self, ids: &[RecordId]) -> Result<Vec<Option<(u64, String)>>>;
}

impl Replica for Shard {
    fn changes_since(&self, after: i64, limit: usize) -> Result<Vec<Change>> {
        Ok(Shard::changes_since(self, after, limit)?)
    }
    fn apply_changes(&self, changes: &[Change], cursor: (&str, i64)) -> Result<ApplyReport> {
        Ok(Shard::apply_changes(self, changes, Some(cursor))?)
    }
    fn sync_cursor(&self, peer: &str) -> Result<i64> {
        Ok(Shard::sync_cursor(self, peer)?)
    }
    fn stamps(&self, ids: &[RecordId]) -> Result<Vec<Option<(u64, String)>>> {
        Ok(Shard::stamps(self, ids)?)
    }
}

/// This side's shard, as announced to the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalShard {
    /// Its origin id ([`Shard::origin`]).
    pub origin: String,
    /// Its model id.
    pub model_id: String,
    /// Its dimensions.
    pub dims: u32,
}

impl LocalShard {
    /// The description of `shard`.
    pub fn of(shard: &Shard) -> Self {
        LocalShard {
            origin: shard.origin().to_owned(),
            model_id: shard.model_id().to_owned(),
            // `Shard` refuses more than 65,536 dimensions.
            dims: u32::try_from(shard.dimensions()).unwrap_or(u32::MAX),
        }
    }
}

/// Limits of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most changes per batch.
    pub batch_size: u32,
    /// Most changes this side asks for per pull in a text-only session (also capped by
    /// `batch_size`): the receiver re-embeds a batch in one call, which must finish before the
    /// sender's idle timeout.
    pub text_only_batch_size: u32,
    /// Most bytes of changes per batch (estimated before encoding); a single change larger
    /// than this still travels alone, as long as its frame fits the maximum frame size.
    pub batch_bytes: usize,
    /// Milliseconds after which an unanswered [`Open`] or [`Pull`] is sent again (only the
    /// simulator needs this: QUIC streams do not lose messages).
    pub retry_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            batch_size: 2048,
            text_only_batch_size: 256,
            batch_bytes: 4 << 20,
            retry_ms: 1_000,
        }
    }
}

/// Which directions a client wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Receive the server's changes.
    Pull,
    /// Send this side's changes.
    Push,
    /// Both.
    Both,
}

impl Direction {
    fn pull(self) -> bool {
        matches!(self, Direction::Pull | Direction::Both)
    }
    fn push(self) -> bool {
        matches!(self, Direction::Push | Direction::Both)
    }
}

/// Counters of one session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Changes sent in batches (retransmissions included).
    pub changes_sent: u64,
    /// Changes received in accepted batches.
    pub changes_received: u64,
    /// Received changes that were written (the rest were not newer than the local rows).
    pub changes_applied: u64,
    /// Batches sent.
    pub batches_sent: u64,
    /// Batches received and applied.
    pub batches_applied: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Recv {
    /// This side receives nothing in this session.
    Unwanted,
    /// Waiting to know the sender's origin before the first pull.
    Idle,
    /// A pull is outstanding.
    Waiting { req: u64, after: i64, sent_at: u64 },
    /// Everything was received.
    Done,
}

#[derive(Clone, Debug, PartialEq)]
enum Role {
    Client { open: Open, open_sent_at: u64 },
    Server,
}

/// One end of a session for one shard.
#[derive(Clone, Debug)]
pub struct Session {
    role: Role,
    local: LocalShard,
    limits: Limits,
    /// The peer shard, once known.
    remote: Option<LocalShard>,
    recv: Recv,
    /// Whether the peer pulls from this side.
    serving: bool,
    /// Whether the peer said [`Message::Done`] for the direction this side serves.
    served: bool,
    next_req: u64,
    /// The request whose batch [`prefetch`](Session::prefetch) already sent the next pull for.
    prefetched: Option<u64>,
    /// Text-only session: pulls ask for rows without vectors.
    text_only: bool,
    /// Text-only receive: the changes [`prepare_text_only`](Session::prepare_text_only) took
    /// out of batch `.0` because they lose to the local row but carry replicated counters;
    /// they are applied with that batch, without vectors (a losing change needs none).
    held: Option<(u64, Vec<Change>)>,
    stats: Stats,
}

impl Session {
    /// The initiating end for shard `shard`.
    pub fn client(shard: ShardId, local: LocalShard, dir: Direction, limits: Limits) -> Self {
        let open = Open {
            protocol: PROTOCOL_VERSION,
            shard,
            origin: local.origin.clone(),
            model_id: local.model_id.clone(),
            dims: local.dims,
            pull: dir.pull(),
            push: dir.push(),
            text_only: false,
        };
        Session {
            recv: if dir.pull() {
                Recv::Idle
            } else {
                Recv::Unwanted
            },
            serving: dir.push(),
            role: Role::Client {
                open,
                open_sent_at: 0,
            },
            local,
            limits,
            remote: None,
            served: false,
            next_req: 1,
            prefetched: None,
            text_only: false,
            held: None,
            stats: Stats::default(),
        }
    }

    /// Makes a client session text-only (see the module docs): its [`Open`] says so, and
    /// every pull of the session, in both directions, asks for rows without vectors. The
    /// server learns it from the `Open`. Call before [`start`](Self::start).
    #[must_use]
    pub fn with_text_only(mut self, yes: bool) -> Self {
        if let Role::Client { open, .. } = &mut self.role {
            open.text_only = yes;
            self.text_only = yes;
        }
        self
    }

    /// Whether this session is text-only.
    pub fn text_only(&self) -> bool {
        self.text_only
    }

    /// Whether `msg` is a batch this side will apply ([`handle`](Self::handle)) in a
    /// text-only session: its live changes without a vector must then get one first
    /// ([`Batch::missing_vectors`], [`Batch::fill_vectors`]). Late duplicates and batches of
    /// other sessions are `false`: `handle` ignores them, so they need no embedding.
    pub fn reembeds(&self, msg: &Message) -> bool {
        let Message::Batch(b) = msg else {
            return false;
        };
        let Recv::Waiting { req, .. } = self.recv else {
            return false;
        };
        self.text_only && self.remote.is_some() && (b.req == req || self.prefetched == Some(b.req))
    }

    /// Text-only receive, before [`handle`](Self::handle): if this side [`reembeds`](Self::reembeds)
    /// `msg`, takes out the changes without a vector that lose to the local row anyway (a
    /// row's stamp never decreases, so they lose when applied too), so they are never
    /// embedded, and returns the texts of the rest ([`Batch::missing_vectors`]) for
    /// [`Batch::fill_vectors`]. Those of them that carry replicated counters
    /// ([`COUNTERS_KEY`](reasonbank_memory::COUNTERS_KEY)) are kept aside and applied with
    /// the batch, so their counters still merge. Empty for any other message.
    ///
    /// # Errors
    /// Storage failures and [`Batch::missing_vectors`]' protocol error.
    pub fn prepare_text_only(
        &mut self,
        replica: &dyn Replica,
        msg: &mut Message,
    ) -> Result<Vec<String>> {
        self.held = None;
        if !self.reembeds(msg) {
            return Ok(Vec::new());
        }
        let Message::Batch(batch) = msg else {
            return Ok(Vec::new());
        };
        let lacking = |c: &Change| !c.deleted && c.embedding.is_none();
        let ids: Vec<RecordId> = batch
            .changes
            .iter()
            .filter(|c| lacking(c))
            .map(|c| c.id)
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut stamps = replica.stamps(&ids)?.into_iter();
        let before = batch.changes.len();
        let mut held = Vec::new();
        batch.changes.retain(|c| {
            if !lacking(c) {
                return true;
            }
            // One stamp per lacking change, in order (`stamps` answers every id).
            let keep = match stamps.next().flatten() {
                Some((v, o)) => c.stamp() > (v, o.as_str()),
                None => true,
            };
            if !keep && c.metadata.contains(reasonbank_memory::COUNTERS_KEY) {
                held.push(c.clone());
            }
            keep
        });
        // Received all the same: `handle` counts the rest.
        self.stats.changes_received += (before - batch.changes.len()) as u64;
        self.held = (!held.is_empty()).then_some((batch.req, held));
        batch.missing_vectors()
    }

    /// The responding end; it learns the shard and directions from the client's [`Open`],
    /// which the caller has already checked against its access rules.
    pub fn server(local: LocalShard, limits: Limits) -> Self {
        Session {
            role: Role::Server,
            local,
            limits,
            remote: None,
            recv: Recv::Unwanted,
            serving: false,
            served: false,
            next_req: 1,
            prefetched: None,
            text_only: false,
            held: None,
            stats: Stats::default(),
        }
    }

    /// The client's first messages: [`Open`] and, when the server's origin is already known
    /// from an earlier session (`known_remote`), the first [`Pull`] right behind it, so that
    /// an idempotent pull can travel in 0-RTT data. Servers return nothing.
    ///
    /// # Errors
    /// Storage failures reading the cursor.
    pub fn start(
        &mut self,
        replica: &dyn Replica,
        known_remote: Option<&str>,
        now: u64,
    ) -> Result<Vec<Message>> {
        let Role::Client { open, open_sent_at } = &mut self.role else {
            return Ok(Vec::new());
        };
        *open_sent_at = now;
        let mut out = vec![Message::Open(open.clone())];
        if let (Recv::Idle, Some(origin)) = (&self.recv, known_remote) {
            let after = replica.sync_cursor(origin)?;
            out.push(self.pull(Some(origin.to_owned()), after, now));
        }
        Ok(out)
    }

    /// Handles one received message and returns the messages to send.
    ///
    /// Messages that answer nothing outstanding (late duplicates, replies to retransmitted
    /// requests) are ignored.
    ///
    /// # Errors
    /// [`Error::Protocol`] for a message this end must never receive, [`Error::ModelMismatch`]
    /// for peers whose shards hold vectors of another model, and storage failures (a batch
    /// with an invalid change fails whole, nothing written, the cursor unchanged).
    pub fn handle(
        &mut self,
        replica: &dyn Replica,
        msg: Message,
        now: u64,
    ) -> Result<Vec<Message>> {
        if self.role == Role::Server && self.remote.is_none() && !matches!(msg, Message::Open(_)) {
            // Only a network that reorders can deliver this before `Open` (a QUIC stream does
            // not; the glue requires `Open` first): drop it, the peer retransmits.
            return Ok(Vec::new());
        }
        match msg {
            Message::Open(open) => self.on_open(replica, open, now),
            Message::Opened(opened) => self.on_opened(replica, opened, now),
            Message::Pull(pull) => self.on_pull(replica, pull),
            Message::Batch(batch) => self.on_batch(replica, batch, now),
            Message::Done => {
                if !self.serving {
                    return Err(protocol("Done for a direction this side does not serve"));
                }
                self.served = true;
                Ok(Vec::new())
            }
        }
    }

    /// Pipelining: if `msg` is the batch this side is waiting for and more follow it, returns
    /// the pull for the next batch, to send *before* handling `msg`, so that the peer reads and
    /// sends the next batch while this side commits this one. The cursor still moves only
    /// with the commit: [`handle`](Self::handle) then applies `msg` and sends no second pull.
    /// Optional: without it, `handle` sends the next pull after the commit.
    pub fn prefetch(&mut self, msg: &Message, now: u64) -> Option<Message> {
        let Message::Batch(b) = msg else { return None };
        let Recv::Waiting { req, .. } = self.recv else {
            return None;
        };
        let origin = self.remote.as_ref()?.origin.clone();
        if b.req != req || !b.more || b.origin != origin || b.upto <= b.after {
            return None;
        }
        self.prefetched = Some(req);
        Some(self.pull(Some(origin), b.upto, now))
    }

    /// Retransmissions due at `now`: the [`Open`] or the outstanding [`Pull`] if unanswered
    /// for [`Limits::retry_ms`].
    pub fn poll(&mut self, now: u64) -> Vec<Message> {
        let retry = self.limits.retry_ms;
        let mut out = Vec::new();
        if let Role::Client { open, open_sent_at } = &mut self.role
            && self.remote.is_none()
            && now.saturating_sub(*open_sent_at) >= retry
        {
            *open_sent_at = now;
            out.push(Message::Open(open.clone()));
        }
        if let Recv::Waiting {
            req,
            after,
            sent_at,
        } = &mut self.recv
            && now.saturating_sub(*sent_at) >= retry
        {
            *sent_at = now;
            out.push(Message::Pull(Pull {
                req: *req,
                origin: self.remote.as_ref().map(|r| r.origin.clone()),
                after: *after,
                limit: self.pull_limit(),
                text_only: self.text_only,
            }));
        }
        out
    }

    /// Whether both directions this session covers are finished: everything was received and
    /// committed, and the peer confirmed it has everything this side serves.
    pub fn is_done(&self) -> bool {
        self.remote.is_some()
            && matches!(self.recv, Recv::Unwanted | Recv::Done)
            && (!self.serving || self.served)
    }

    /// Whether this side has received and committed everything it asked for (the peer's
    /// confirmation for the other direction may still be in flight).
    pub fn received_all(&self) -> bool {
        self.remote.is_some() && matches!(self.recv, Recv::Unwanted | Recv::Done)
    }

    /// The peer shard's origin, once known.
    pub fn remote_origin(&self) -> Option<&str> {
        self.remote.as_ref().map(|r| r.origin.as_str())
    }

    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn pull(&mut self, origin: Option<String>, after: i64, now: u64) -> Message {
        let req = self.next_req;
        self.next_req += 1;
        self.recv = Recv::Waiting {
            req,
            after,
            sent_at: now,
        };
        Message::Pull(Pull {
            req,
            origin,
            after,
            limit: self.pull_limit(),
            text_only: self.text_only,
        })
    }

    /// The `limit` of this side's pulls.
    fn pull_limit(&self) -> u32 {
        if self.text_only {
            self.limits
                .batch_size
                .min(self.limits.text_only_batch_size)
                .max(1)
        } else {
            self.limits.batch_size
        }
    }

    fn check_model(&self, model_id: &str, dims: u32) -> Result<()> {
        if model_id != self.local.model_id || dims != self.local.dims {
            return Err(Error::ModelMismatch {
                local_model: self.local.model_id.clone(),
                local_dimensions: self.local.dims,
                remote_model: model_id.to_owned(),
                remote_dimensions: dims,
            });
        }
        Ok(())
    }

    fn on_open(&mut self, replica: &dyn Replica, open: Open, now: u64) -> Result<Vec<Message>> {
        if self.role != Role::Server {
            return Err(protocol("Open sent to the client"));
        }
        if open.protocol != PROTOCOL_VERSION {
            return Err(Error::ProtocolVersion {
                local: PROTOCOL_VERSION,
                remote: open.protocol,
            });
        }
        self.check_model(&open.model_id, open.dims)?;
        if open.origin == self.local.origin {
            return Err(protocol("a shard cannot sync with itself"));
        }
        let opened = Message::Opened(Opened {
            origin: self.local.origin.clone(),
            model_id: self.local.model_id.clone(),
            dims: self.local.dims,
        });
        if let Some(r) = &self.remote {
            // A retransmitted Open: answer again, with the outstanding pull if any.
            if r.origin != open.origin {
                return Err(protocol("a second Open for another shard"));
            }
            let mut out = vec![opened];
            out.extend(self.poll_now());
            return Ok(out);
        }
        self.remote = Some(LocalShard {
            origin: open.origin.clone(),
            model_id: open.model_id,
            dims: open.dims,
        });
        self.serving = open.pull;
        self.text_only = open.text_only;
        let mut out = vec![opened];
        if open.push {
            let after = replica.sync_cursor(&open.origin)?;
            out.push(self.pull(Some(open.origin), after, now));
        }
        Ok(out)
    }

    /// The outstanding pull, resent regardless of its timer.
    fn poll_now(&mut self) -> Option<Message> {
        match &self.recv {
            Recv::Waiting { req, after, .. } => Some(Message::Pull(Pull {
                req: *req,
                origin: self.remote.as_ref().map(|r| r.origin.clone()),
                after: *after,
                limit: self.pull_limit(),
                text_only: self.text_only,
            })),
            _ => None,
        }
    }

    fn on_opened(
        &mut self,
        replica: &dyn Replica,
        opened: Opened,
        now: u64,
    ) -> Result<Vec<Message>> {
        if self.role == Role::Server {
            return Err(protocol("Opened sent to the server"));
        }
        self.check_model(&opened.model_id, opened.dims)?;
        if let Some(r) = &self.remote {
            if r.origin != opened.origin {
                return Err(protocol("the server changed its origin mid-session"));
            }
            return Ok(Vec::new());
        }
        let origin = opened.origin.clone();
        self.remote = Some(LocalShard {
            origin: opened.origin,
            model_id: opened.model_id,
            dims: opened.dims,
        });
        match &self.recv {
            Recv::Idle => {
                let after = replica.sync_cursor(&origin)?;
                Ok(vec![self.pull(Some(origin), after, now)])
            }
            // A 0-RTT pull already went out for the origin we expected; if the server's
            // origin is another one, it answers from 0, which is safe.
            _ => Ok(Vec::new()),
        }
    }

    fn on_pull(&mut self, replica: &dyn Replica, pull: Pull) -> Result<Vec<Message>> {
        // The client serves only if it asked to push; the server only a client that opened
        // with `pull` (checked by the ACL).
        if !self.serving {
            return Err(protocol("Pull for a direction that was not opened"));
        }
        if self.remote.is_none() {
            // Serve only a peer whose shard model this side has checked ([`Opened`] arrives
            // before the server's first pull on a stream; only a reordering network gets
            // here): drop it, the peer retransmits.
            return Ok(Vec::new());
        }
        let after = if pull.origin.as_deref() == Some(self.local.origin.as_str()) {
            pull.after.max(0)
        } else {
            0
        };
        let limit = pull.limit.clamp(1, self.limits.batch_size.max(1)) as usize;
        let mut changes = replica.changes_since(after, limit)?;
        let full = changes.len() == limit;
        if pull.text_only {
            // Both shards hold the same model (checked on Open/Opened): the receiver makes the
            // same vectors from the text. Rows it could not embed keep theirs.
            for c in &mut changes {
                if !c.deleted && crate::reembed::embeddable(&c.text) {
                    c.embedding = None;
                }
            }
        }
        let mut bytes = 0usize;
        let mut keep = changes.len();
        for (i, c) in changes.iter().enumerate() {
            bytes += approx_size(c);
            if bytes > self.limits.batch_bytes && i > 0 {
                keep = i;
                break;
            }
        }
        let trimmed = keep < changes.len();
        changes.truncate(keep);
        // `upto` is the last row scanned, so the cursor moves past rows that are not sent.
        let upto = changes.last().map_or(after, |c| c.seq);
        // A row whose stamp the receiver made itself is one it holds already, or holds a newer
        // version of (its rows only move forward): don't send its own writes back. Unless it
        // holds replicated counters: this side may have joined other replicas' counters into
        // it under the receiver's stamp ([`Shard::apply_changes`]), and those must flow back.
        if let Some(r) = &self.remote {
            changes.retain(|c| {
                c.origin != r.origin || c.metadata.contains(reasonbank_memory::COUNTERS_KEY)
            });
        }
        self.stats.changes_sent += changes.len() as u64;
        self.stats.batches_sent += 1;
        Ok(vec![Message::Batch(Batch {
            req: pull.req,
            origin: self.local.origin.clone(),
            after,
            upto,
            more: full || trimmed,
            changes,
        })])
    }

    fn on_batch(&mut self, replica: &dyn Replica, batch: Batch, now: u64) -> Result<Vec<Message>> {
        let outstanding = match &self.recv {
            Recv::Unwanted => return Err(protocol("Batch for a direction that was not opened")),
            Recv::Waiting { req, .. } => *req,
            Recv::Idle | Recv::Done => return Ok(Vec::new()),
        };
        let Some(remote) = &self.remote else {
            // Reordered ahead of `Opened`: the retransmitted pull will fetch it again.
            return Ok(Vec::new());
        };
        let prefetched = self.prefetched.is_some_and(|p| p == batch.req);
        if batch.req != outstanding && !prefetched {
            return Ok(Vec::new());
        }
        if prefetched {
            self.prefetched = None;
        }
        if batch.origin != remote.origin {
            return Err(protocol("Batch from another origin than the peer's shard"));
        }
        let seqs_ok = batch.upto >= batch.after
            && batch.changes.windows(2).all(|w| w[0].seq < w[1].seq)
            && batch
                .changes
                .iter()
                .all(|c| c.seq > batch.after && c.seq <= batch.upto)
            && (!batch.more || batch.upto > batch.after);
        if !seqs_ok {
            return Err(protocol("Batch sequence numbers out of order or range"));
        }
        if batch
            .changes
            .iter()
            .any(|c| !c.deleted && c.embedding.is_none())
        {
            // In a text-only session the caller fills the vectors in before `handle`; a batch
            // that still lacks some is never applied.
            return Err(if self.text_only {
                Error::NoReembedder
            } else {
                protocol("a live row without a vector in a session that is not text-only")
            });
        }
        let origin = remote.origin.clone();
        let cursor = replica.sync_cursor(&origin)?;
        if batch.after > cursor {
            // A gap (cannot happen with a well-behaved peer): ask again from the cursor.
            self.held = None;
            return Ok(vec![self.pull(Some(origin), cursor, now)]);
        }
        let received = batch.changes.len();
        let mut changes = batch.changes;
        if let Some((req, held)) = self.held.take()
            && req == batch.req
        {
            // Losing changes kept for their counters: `apply_changes` merges them without
            // needing a vector (and would refuse one that won, which a stamp that never
            // decreases rules out).
            changes.extend(held);
        }
        let report = replica.apply_changes(&changes, (&origin, batch.upto))?;
        self.stats.changes_received += received as u64;
        self.stats.changes_applied += report.applied() as u64;
        self.stats.batches_applied += 1;
        if batch.more && prefetched {
            // The next pull went out before this commit.
            Ok(Vec::new())
        } else if batch.more {
            let after = batch.upto.max(cursor);
            Ok(vec![self.pull(Some(origin), after, now)])
        } else {
            self.recv = Recv::Done;
            Ok(vec![Message::Done])
        }
    }
}

fn protocol(reason: &str) -> Error {
    Error::Protocol {
        reason: reason.to_owned(),
    }
}

/// Encoded size of a change, give or take a few bytes of varints.
fn approx_size(c: &Change) -> usize {
    48 + c.kind.len()
        + c.namespace.len()
        + c.text.len()
        + c.metadata.len()
        + c.origin.len()
        + c.embedding.as_ref().map_or(0, |e| e.len() * 4)
}

/// Helpers shared by the unit tests of this crate.
#[cfg(test)]
pub(crate) mod tests_support {
    use reasonbank_memory::{Change, Embedding, RecordId};

    /// A live change with a deterministic id, text and `dims`-d vector.
    pub(crate) fn change(i: u32, dims: usize) -> Change {
        let v: Vec<f32> = (0..dims)
            .map(|d| ((i as usize + d) % 7) as f32 + 0.5)
            .collect();
        Change {
            id: RecordId::from_uuid(uuid_from(i)),
            kind: "memory".into(),
            namespace: String::new(),
            text: format!("record number {i}: retry the request with exponential backoff"),
            metadata: format!(r#"{{"i":{i},"lang":"rust"}}"#),
            embedding: Some(Embedding::new(v).expect("positive components")),
            created_at: 1_700_000_000_000,
            updated_at: 1_700_000_000_000,
            version: (1_700_000_000_000u64 << 16) + u64::from(i),
            origin: "peer-a".into(),
            deleted: false,
            seq: i64::from(i) + 1,
        }
    }

    fn uuid_from(i: u32) -> uuid::Uuid {
        uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | u128::from(i))
    }
}

#[cfg(test)]
mod tests {
    use reasonbank_memory::Embedding;

    use super::tests_support::change;
    use super::*;

    fn batch(changes: Vec<Change>) -> Batch {
        Batch {
            req: 1,
            origin: "o".into(),
            after: 0,
            upto: changes.last().map_or(0, |c| c.seq),
            more: false,
            changes,
        }
    }

    fn unit(dims: usize) -> Embedding {
        Embedding::new(vec![1.0; dims]).expect("non-zero")
    }

    #[test]
    fn missing_vectors_and_fill_vectors() {
        let mut changes: Vec<Change> = (0..4).map(|i| change(i, 8)).collect();
        changes[0].embedding = None;
        changes[2].embedding = None;
        // A tombstone needs no vector.
        changes[3].deleted = true;
        changes[3].embedding = None;
        changes[3].text.clear();
        let mut b = batch(changes);
        let texts = b.missing_vectors().unwrap();
        assert_eq!(
            texts,
            vec![b.changes[0].text.clone(), b.changes[2].text.clone()]
        );

        // Wrong count or length: an error, and the batch is unchanged.
        let before = b.clone();
        for (vectors, dims) in [
            (vec![unit(8)], 8),
            (vec![unit(8); 3], 8),
            (vec![unit(4); 2], 8),
        ] {
            assert!(matches!(
                b.fill_vectors(vectors, dims),
                Err(Error::Reembed { texts: 2, .. })
            ));
            assert_eq!(b, before);
        }
        b.fill_vectors(vec![unit(8), unit(8)], 8).unwrap();
        assert!(b.missing_vectors().unwrap().is_empty());
        assert!(
            b.changes[3].embedding.is_none(),
            "tombstones stay without a vector"
        );
    }

    #[test]
    fn a_live_row_with_an_empty_text_must_carry_its_vector() {
        let mut c = change(1, 8);
        c.text = " \n".into();
        c.embedding = None;
        assert!(matches!(
            batch(vec![c]).missing_vectors(),
            Err(Error::Protocol { .. })
        ));
    }

    /// A replica that holds nothing and must never be written.
    struct Empty;

    impl Replica for Empty {
        fn changes_since(&self, _: i64, _: usize) -> Result<Vec<Change>> {
            Ok(Vec::new())
        }
        fn apply_changes(&self, _: &[Change], _: (&str, i64)) -> Result<ApplyReport> {
            panic!("a batch with rows lacking vectors reached apply_changes");
        }
        fn sync_cursor(&self, _: &str) -> Result<i64> {
            Ok(0)
        }
        fn stamps(&self, ids: &[RecordId]) -> Result<Vec<Option<(u64, String)>>> {
            Ok(vec![None; ids.len()])
        }
    }

    /// A batch whose live rows lack vectors is never applied: a protocol error outside
    /// text-only sessions, `NoReembedder` inside one when nobody filled them in.
    #[test]
    fn rows_without_vectors_are_never_applied() {
        for text_only in [false, true] {
            let local = LocalShard {
                origin: "client".into(),
                model_id: "m".into(),
                dims: 8,
            };
            let shard = ShardId::new("s").unwrap();
            let mut s = Session::client(shard, local, Direction::Pull, Limits::default())
                .with_text_only(text_only);
            s.start(&Empty, None, 0).unwrap();
            let out = s
                .handle(
                    &Empty,
                    Message::Opened(Opened {
                        origin: "server".into(),
                        model_id: "m".into(),
                        dims: 8,
                    }),
                    0,
                )
                .unwrap();
            let [Message::Pull(pull)] = &out[..] else {
                panic!("{out:?}")
            };
            assert_eq!(pull.text_only, text_only);
            let mut c = change(0, 8);
            c.embedding = None;
            let mut b = batch(vec![c]);
            b.req = pull.req;
            b.origin = "server".into();
            let msg = Message::Batch(b);
            assert_eq!(s.reembeds(&msg), text_only);
            let e = s.handle(&Empty, msg, 1).unwrap_err();
            if text_only {
                assert!(matches!(e, Error::NoReembedder), "{e:?}");
            } else {
                assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
            }
        }
    }
}
