//! The one error type of `reasonbank-sync`.

use reasonbank_memory::ShardId;

use crate::Fingerprint;
use crate::reembed::BoxError;

/// Everything that can go wrong while syncing.
///
/// Frame and protocol errors name what was wrong with the peer's bytes; a peer's bytes never
/// cause a panic.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A storage error from the local shard (invalid changes from the peer included:
    /// [`reasonbank_memory::Error::InvalidChange`]).
    #[error(transparent)]
    Memory(#[from] reasonbank_memory::Error),
    /// A frame (or the message in it) over the maximum frame size.
    #[error("frame of {size} bytes is over the limit of {limit} bytes")]
    FrameTooLarge {
        /// Its size (or declared decoded size) in bytes.
        size: usize,
        /// The configured maximum.
        limit: usize,
    },
    /// A frame that does not follow the frame layout (unknown codec, truncated, trailing bytes).
    #[error("malformed frame: {reason}")]
    MalformedFrame {
        /// What is wrong with it.
        reason: String,
    },
    /// A frame body that is not a protocol message.
    #[error("frame body is not a valid message")]
    Decode {
        /// The decoder's report.
        #[source]
        source: postcard::Error,
    },
    /// A message that could not be encoded.
    #[error("could not encode a message")]
    Encode {
        /// The encoder's report.
        #[source]
        source: postcard::Error,
    },
    /// A zstd body that is corrupt or decompresses to more than it declared.
    #[error("could not decompress a frame")]
    Decompress {
        /// zstd's report.
        #[source]
        source: std::io::Error,
    },
    /// zstd failed to compress a batch.
    #[error("could not compress a frame")]
    Compress {
        /// zstd's report.
        #[source]
        source: std::io::Error,
    },
    /// The peer sent a message that its role or the session state does not allow.
    #[error("protocol violation: {reason}")]
    Protocol {
        /// What it did.
        reason: String,
    },
    /// The peer speaks another protocol version.
    #[error("peer speaks sync protocol version {remote}, this build speaks {local}")]
    ProtocolVersion {
        /// Our version.
        local: u16,
        /// Theirs.
        remote: u16,
    },
    /// The two shards hold vectors of different models or dimensions.
    #[error(
        "shard model mismatch: local {local_dimensions}-d {local_model:?}, \
         remote {remote_dimensions}-d {remote_model:?}"
    )]
    ModelMismatch {
        /// Local model id.
        local_model: String,
        /// Local dimensions.
        local_dimensions: u32,
        /// Remote model id.
        remote_model: String,
        /// Remote dimensions.
        remote_dimensions: u32,
    },
    /// A certificate or key that cannot be used as an identity.
    #[error("invalid identity: {reason}")]
    Identity {
        /// What is wrong with it.
        reason: String,
    },
    /// A fingerprint that is not 64 hexadecimal digits.
    #[error("invalid certificate fingerprint {text:?}: expected 64 hex digits (SHA-256)")]
    InvalidFingerprint {
        /// The rejected text.
        text: String,
    },
    /// A configuration value out of range.
    #[error("invalid sync option: {reason}")]
    InvalidOption {
        /// Why it was rejected.
        reason: String,
    },
    /// TLS setup failed.
    #[error("TLS configuration error")]
    Tls {
        /// rustls' report.
        #[source]
        source: rustls::Error,
    },
    /// The peer's certificate is not in the allowlist (or it presented none).
    #[error("peer {fingerprint:?} is not in the allowlist")]
    UnknownPeer {
        /// Its fingerprint, if it presented a certificate.
        fingerprint: Option<Fingerprint>,
    },
    /// The local access rules do not allow this operation with this peer.
    #[error("peer {peer} may not {access} shard {shard}")]
    AccessDenied {
        /// The peer.
        peer: Fingerprint,
        /// The shard.
        shard: ShardId,
        /// `read` or `write`.
        access: &'static str,
    },
    /// Nothing answered the handshake: no server on that address and UDP port, a firewall,
    /// or a host that is down.
    #[error(
        "no answer from {addr} within {millis} ms: is a reasonbank server (`reasonbank serve`) \
         listening on that UDP port, and can this host reach it?"
    )]
    Unreachable {
        /// The peer's address.
        addr: std::net::SocketAddr,
        /// How long this side waited (the handshake timeout).
        millis: u64,
    },
    /// The TLS handshake failed over a certificate: `by` ("this side" or "the peer") did not
    /// accept the other's, and `reason` says whose and what to do.
    #[error("{by} refused the connection to {addr}: {reason}")]
    HandshakeRefused {
        /// The peer's address.
        addr: std::net::SocketAddr,
        /// Which side refused: "this side" or "the peer".
        by: &'static str,
        /// Why, in words: the fingerprints involved and the fix.
        reason: String,
    },
    /// The peer refused the stream or the connection (access denied, protocol error, frame
    /// error); the code is one of the `CODE_*` constants of [`crate::quic`].
    #[error("peer closed the stream: {} (error code {code})", crate::quic::code_reason(*code))]
    Refused {
        /// The application error code.
        code: u64,
    },
    /// Text-only sync was asked for, but the side that receives the changes has no
    /// [`Reembedder`](crate::Reembedder) to turn their texts into vectors. Nothing was applied.
    #[error(
        "text-only sync needs a re-embedder on the receiving side and there is none: \
         configure one with SyncConfig::reembedder (the CLI: `sync --text-only` loads the \
         embedding model; a hub accepts text-only pushes with \"reembed\": true in its config)"
    )]
    NoReembedder,
    /// The [`Reembedder`](crate::Reembedder) makes vectors of another model or length than the
    /// shard holds; text-only sync of that shard would mix models.
    #[error(
        "the re-embedder makes {embedder_dimensions}-d {embedder_model:?} vectors, the shard \
         holds {shard_dimensions}-d {shard_model:?}"
    )]
    ReembedderModel {
        /// The shard's model id.
        shard_model: String,
        /// The shard's dimensions.
        shard_dimensions: u32,
        /// The re-embedder's model id.
        embedder_model: String,
        /// The re-embedder's dimensions.
        embedder_dimensions: usize,
    },
    /// Re-embedding the texts of a text-only batch failed (or returned the wrong number or
    /// length of vectors). The batch was not applied; the cursor did not move.
    #[error("could not re-embed the {texts} texts of a text-only batch")]
    Reembed {
        /// Texts in the failed call.
        texts: usize,
        /// The re-embedder's report.
        #[source]
        source: BoxError,
    },
    /// The peer ended the stream before the session finished.
    #[error("peer ended the stream before the sync finished")]
    UnexpectedEnd,
    /// Nothing arrived within the timeout.
    #[error("timed out after {millis} ms waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// The timeout.
        millis: u64,
    },
    /// Binding or using a UDP socket failed.
    #[error("I/O error")]
    Io(#[from] std::io::Error),
    /// Starting a connection failed.
    #[error("could not start a QUIC connection")]
    Connect(#[from] quinn::ConnectError),
    /// The QUIC connection failed or was closed.
    #[error("QUIC connection error")]
    Connection(#[from] quinn::ConnectionError),
    /// Writing to a stream failed.
    #[error("QUIC stream write error")]
    Write(#[from] quinn::WriteError),
    /// Reading from a stream failed.
    #[error("QUIC stream read error")]
    Read(#[from] quinn::ReadError),
    /// A blocking storage task panicked or was cancelled.
    #[error("a storage task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
