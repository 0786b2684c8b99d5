//! [`SyncConfig`]: identity, allowlist, access rules and limits; [`generate_identity`].

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use reasonbank_memory::ShardId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::proto::Limits;
use crate::{Error, Reembedder, Result};

/// A peer's identity: the SHA-256 of its certificate (DER).
///
/// Displayed and parsed as 64 lowercase hex digits (`:` separators and upper case are
/// accepted when parsing).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }

    /// The fingerprint of the first certificate in `pem`.
    ///
    /// # Errors
    /// [`Error::Identity`] if `pem` holds no certificate.
    pub fn of_pem(pem: &str) -> Result<Self> {
        let der = first_cert(pem)?;
        Ok(Self::of_der(&der))
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidFingerprint { text: s.to_owned() };
        let hex: Vec<u8> = s.bytes().filter(|&b| b != b':').collect();
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            let hi = (pair[0] as char).to_digit(16).ok_or_else(bad)?;
            let lo = (pair[1] as char).to_digit(16).ok_or_else(bad)?;
            // Two hex digits are at most 255.
            *o = (hi * 16 + lo) as u8;
        }
        Ok(Fingerprint(out))
    }
}

/// What a peer may do with a shard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// May receive the shard's changes.
    pub read: bool,
    /// May send changes into the shard.
    pub write: bool,
}

impl Access {
    /// Nothing.
    pub const NONE: Access = Access {
        read: false,
        write: false,
    };
    /// Receive changes only.
    pub const READ: Access = Access {
        read: true,
        write: false,
    };
    /// Send changes only.
    pub const WRITE: Access = Access {
        read: false,
        write: true,
    };
    /// Both.
    pub const READ_WRITE: Access = Access {
        read: true,
        write: true,
    };
}

/// A peer's grants: per shard, and for every other shard.
#[derive(Clone, Debug, Default)]
struct Grants {
    shards: HashMap<ShardId, Access>,
    all: Access,
}

/// How a [`SyncServer`](crate::SyncServer) or [`SyncClient`](crate::SyncClient) runs.
/// Every setter documents its default.
///
/// The same rules apply on both ends: a peer must be in the allowlist to complete a
/// handshake, and each stream is checked against the grants of the peer for its shard.
/// A server needs `read` for a peer that pulls and `write` for one that pushes; a client
/// checks its own grants for the server the same way (`write` to pull the server's changes
/// into the local shard, `read` to push the local shard's changes).
#[derive(Clone)]
pub struct SyncConfig {
    pub(crate) cert: CertificateDer<'static>,
    pub(crate) key: std::sync::Arc<PrivateKeyDer<'static>>,
    pub(crate) fingerprint: Fingerprint,
    peers: HashMap<Fingerprint, Grants>,
    pub(crate) max_frame_bytes: usize,
    pub(crate) limits: Limits,
    pub(crate) zstd_level: i32,
    pub(crate) handshake_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) zero_rtt: bool,
    pub(crate) text_only: bool,
    pub(crate) reembedder: Option<std::sync::Arc<dyn Reembedder>>,
    pub(crate) cut_after_frames: Option<u64>,
}

impl fmt::Debug for SyncConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncConfig")
            .field("fingerprint", &self.fingerprint)
            .field("peers", &self.peers.len())
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("limits", &self.limits)
            .field("text_only", &self.text_only)
            .field("reembedder", &self.reembedder)
            .finish_non_exhaustive()
    }
}

impl SyncConfig {
    /// A configuration with this identity (a PEM certificate and its PEM private key, as made
    /// by [`generate_identity`]), an empty allowlist and the defaults below.
    ///
    /// # Errors
    /// [`Error::Identity`] if either PEM holds no certificate or key.
    pub fn new(cert_pem: &str, key_pem: &str) -> Result<Self> {
        let cert = first_cert(cert_pem)?;
        let key =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| Error::Identity {
                reason: format!("no private key in the key PEM: {e}"),
            })?;
        Ok(SyncConfig {
            fingerprint: Fingerprint::of_der(&cert),
            cert,
            key: std::sync::Arc::new(key),
            peers: HashMap::new(),
            max_frame_bytes: 16 << 20,
            limits: Limits::default(),
            zstd_level: 1,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            zero_rtt: true,
            text_only: false,
            reembedder: None,
            cut_after_frames: None,
        })
    }

    /// This end's fingerprint, to put in the peers' allowlists.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Adds `peer` to the allowlist without any grant: its handshake succeeds but it can
    /// neither read nor write a shard. Defaults to an empty allowlist.
    pub fn allow(&mut self, peer: Fingerprint) -> &mut Self {
        self.peers.entry(peer).or_default();
        self
    }

    /// Lets `peer` (added to the allowlist) `access` shard `shard`, or every shard without
    /// its own grant if `shard` is `None`. Later grants for the same shard replace earlier
    /// ones. Defaults to no grants.
    pub fn grant(
        &mut self,
        peer: Fingerprint,
        shard: Option<&ShardId>,
        access: Access,
    ) -> &mut Self {
        let g = self.peers.entry(peer).or_default();
        match shard {
            Some(s) => {
                g.shards.insert(s.clone(), access);
            }
            None => g.all = access,
        }
        self
    }

    /// Largest frame sent or accepted, in bytes, compressed or decoded; also bounds a batch.
    /// A record larger than this cannot be synced (an error, never silently skipped).
    /// Defaults to 16 MiB; must be at least 64 KiB.
    pub fn max_frame_bytes(&mut self, n: usize) -> &mut Self {
        self.max_frame_bytes = n;
        self
    }

    /// Most changes per batch (a batch is also capped at 4 MiB of changes and half the maximum
    /// frame). Each batch is one round trip and one receiver transaction, so larger batches
    /// amortize both (2,048 was about 10% faster than 512 for 384-d memories in
    /// `reasonbank-bench sync`); a cut connection loses at most one batch of work.
    /// Defaults to 2,048.
    pub fn batch_size(&mut self, n: u32) -> &mut Self {
        self.limits.batch_size = n.max(1);
        self
    }

    /// Most changes per batch of a text-only pull (capped by [`batch_size`](Self::batch_size)):
    /// the receiver re-embeds each batch in one [`Reembedder`] call while the sender waits
    /// for its next request, so one call must finish well within the sender's idle timeout.
    /// 1,000 short memories took 6–15 s to re-embed with all-MiniLM-L6-v2 on two busy cores
    /// in `reasonbank-bench sync --text-only`, the same with batches of 256 or 2,048.
    /// Defaults to 256.
    pub fn text_only_batch_size(&mut self, n: u32) -> &mut Self {
        self.limits.text_only_batch_size = n.max(1);
        self
    }

    /// zstd level for batches, 1–22, or 0 to send them uncompressed. Defaults to 1: vectors
    /// barely compress at any level (about 1.14× on 384-d embeddings, while text and metadata
    /// compress about 5×), and level 3 saved under 1% of bytes for about 20% more sync time in
    /// `reasonbank-bench sync`.
    pub fn zstd_level(&mut self, level: i32) -> &mut Self {
        self.zstd_level = level;
        self
    }

    /// How long a connection attempt (QUIC and TLS handshake) may take. Defaults to 10 seconds.
    pub fn handshake_timeout(&mut self, t: Duration) -> &mut Self {
        self.handshake_timeout = t;
        self
    }

    /// How long a stream may wait for the peer's next frame, and the QUIC idle timeout of the
    /// connection. Defaults to 30 seconds.
    pub fn idle_timeout(&mut self, t: Duration) -> &mut Self {
        self.idle_timeout = t;
        self
    }

    /// Whether a client resuming a session sends its first pull request as 0-RTT data (only
    /// pull-only syncs of a shard whose server origin it already knows; pushes always wait for
    /// the handshake). Defaults to true.
    pub fn zero_rtt(&mut self, yes: bool) -> &mut Self {
        self.zero_rtt = yes;
        self
    }

    /// Whether this client's sessions are text-only: live rows travel as text, metadata and
    /// stamps without their vector, and each receiver re-embeds the texts with its
    /// [`reembedder`](Self::reembedder) before it applies them. A pull then needs a
    /// re-embedder of the shard's model here ([`Error::NoReembedder`] otherwise, before
    /// anything is sent), a push needs one on the server (which refuses the stream with
    /// [`CODE_TEXT_ONLY`](crate::quic::CODE_TEXT_ONLY) otherwise). Sound only for shards whose
    /// vectors are the model's embeddings of their texts (everything `AgentMemory` writes).
    /// Ignored by a server: the client chooses per session. Defaults to false.
    pub fn text_only(&mut self, yes: bool) -> &mut Self {
        self.text_only = yes;
        self
    }

    /// The re-embedder for text-only batches this end receives: a client's text-only pulls,
    /// and, on a server, clients' text-only pushes (a server without one refuses them). Its
    /// model id and dimensions must equal the shard's. It runs on the async runtime, once per
    /// received batch (at most [`text_only_batch_size`](Self::text_only_batch_size) texts),
    /// while the peer already reads the next batch; one call must finish within the peer's
    /// idle timeout (30 s by default; this end gives up after its own with [`Error::Timeout`]),
    /// so lower that batch size for a slow (remote) embedder. Defaults to none.
    pub fn reembedder(&mut self, r: std::sync::Arc<dyn Reembedder>) -> &mut Self {
        self.reembedder = Some(r);
        self
    }

    /// Checks that this end can re-embed text-only batches of a shard of `model_id` and
    /// `dims`.
    pub(crate) fn check_reembedder(&self, model_id: &str, dims: u32) -> Result<()> {
        let r = self.reembedder.as_ref().ok_or(Error::NoReembedder)?;
        if r.model_id() != model_id || usize::try_from(dims).ok() != Some(r.dimensions()) {
            return Err(Error::ReembedderModel {
                shard_model: model_id.to_owned(),
                shard_dimensions: dims,
                embedder_model: r.model_id().to_owned(),
                embedder_dimensions: r.dimensions(),
            });
        }
        Ok(())
    }

    /// Test hook: this end closes the connection after receiving `n` frames on one stream,
    /// to cut a sync at a chosen point. Defaults to never.
    #[doc(hidden)]
    pub fn cut_after_frames(&mut self, n: u64) -> &mut Self {
        self.cut_after_frames = Some(n);
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_frame_bytes < (64 << 10) || self.max_frame_bytes > (u32::MAX as usize) {
            return Err(Error::InvalidOption {
                reason: format!(
                    "max_frame_bytes must be in 64 KiB..4 GiB, got {}",
                    self.max_frame_bytes
                ),
            });
        }
        if !(0..=22).contains(&self.zstd_level) {
            return Err(Error::InvalidOption {
                reason: format!("zstd_level must be in 0..=22, got {}", self.zstd_level),
            });
        }
        Ok(())
    }

    /// The protocol limits: batches leave room for the frame header and encoding overhead.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            batch_bytes: self.limits.batch_bytes.min(self.max_frame_bytes / 2),
            ..self.limits
        }
    }

    pub(crate) fn allowed_peers(&self) -> std::collections::HashSet<Fingerprint> {
        self.peers.keys().copied().collect()
    }

    pub(crate) fn is_allowed(&self, peer: &Fingerprint) -> bool {
        self.peers.contains_key(peer)
    }

    /// What `peer` may do with `shard`.
    pub fn access(&self, peer: &Fingerprint, shard: &ShardId) -> Access {
        self.peers.get(peer).map_or(Access::NONE, |g| {
            g.shards.get(shard).copied().unwrap_or(g.all)
        })
    }
}

/// Creates a self-signed identity for `name` (an ECDSA P-256 key): `(cert_pem, key_pem)`.
/// Peers are identified by the certificate's fingerprint, not by `name`.
///
/// # Errors
/// [`Error::Identity`] if key generation fails or `name` is not a valid DNS name or IP.
pub fn generate_identity(name: &str) -> Result<(String, String)> {
    let ck =
        rcgen::generate_simple_self_signed(vec![name.to_owned()]).map_err(|e| Error::Identity {
            reason: format!("could not create a certificate for {name:?}: {e}"),
        })?;
    Ok((ck.cert.pem(), ck.signing_key.serialize_pem()))
}

fn first_cert(pem: &str) -> Result<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| Error::Identity {
            reason: "no certificate in the certificate PEM".into(),
        })?
        .map_err(|e| Error::Identity {
            reason: format!("unreadable certificate PEM: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip() {
        let (cert, key) = generate_identity("peer-a").unwrap();
        let c = SyncConfig::new(&cert, &key).unwrap();
        let fp = c.fingerprint();
        assert_eq!(fp, Fingerprint::of_pem(&cert).unwrap());
        assert_eq!(fp.to_string().parse::<Fingerprint>().unwrap(), fp);
        let colons: Vec<String> = fp.as_bytes().iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(colons.join(":").parse::<Fingerprint>().unwrap(), fp);
        assert!("abc".parse::<Fingerprint>().is_err());
        assert!("zz".repeat(32).parse::<Fingerprint>().is_err());
        assert!(SyncConfig::new("nope", &key).is_err());
        assert!(SyncConfig::new(&cert, "nope").is_err());
    }

    #[test]
    fn grants() {
        let (cert, key) = generate_identity("a").unwrap();
        let mut c = SyncConfig::new(&cert, &key).unwrap();
        let p = Fingerprint::of_der(b"p");
        let s1 = ShardId::new("s1").unwrap();
        let s2 = ShardId::new("s2").unwrap();
        assert!(!c.is_allowed(&p));
        c.allow(p);
        assert!(c.is_allowed(&p));
        assert_eq!(c.access(&p, &s1), Access::NONE);
        c.grant(p, None, Access::READ)
            .grant(p, Some(&s2), Access::WRITE);
        assert_eq!(c.access(&p, &s1), Access::READ);
        assert_eq!(c.access(&p, &s2), Access::WRITE);
    }
}
