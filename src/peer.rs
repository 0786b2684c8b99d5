//! Shard sync as every front end drives it: this side's [`Identity`], which way data flows
//! ([`SyncDirection`]), and [`AgentMemory::sync`](crate::AgentMemory::sync), the one driver
//! that the CLI, the MCP server and the Node and Python packages call.
//!
//! The protocol and its QUIC transport are `reasonbank-sync`'s; this module only decides
//! which shards go over one connection and in which direction.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::embedders::Embedder;
use crate::error::{Error, Result};
use crate::memory::{ShardId, Store};
use crate::sync::{Access, Fingerprint, SyncClient, SyncConfig, SyncReport};

/// The file names of an identity in its directory.
const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";
const KEYGEN_HINT: &str = "create it with `reasonbank sync keygen`";

/// Which way a sync moves rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum SyncDirection {
    /// Pull the peer's changes, then push ours (the default).
    #[default]
    Both,
    /// Only pull the peer's changes.
    Pull,
    /// Only push our changes.
    Push,
}

impl SyncDirection {
    /// The name used on the command line and in the bindings.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncDirection::Both => "both",
            SyncDirection::Pull => "pull",
            SyncDirection::Push => "push",
        }
    }
}

impl fmt::Display for SyncDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SyncDirection {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "both" => Ok(SyncDirection::Both),
            "pull" => Ok(SyncDirection::Pull),
            "push" => Ok(SyncDirection::Push),
            _ => Err(Error::InvalidInput {
                what: "sync direction",
                reason: format!("{s:?} is not both, pull or push"),
            }),
        }
    }
}

/// This side of a sync: a certificate and its private key (PEM), as `reasonbank sync keygen`
/// writes them into a directory (`cert.pem`, `key.pem`; by default `<root>/.sync`).
#[derive(Clone)]
pub struct Identity {
    cert_pem: String,
    key_pem: String,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private key.
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint().ok())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// An identity from its PEM texts (checked when a sync uses them).
    pub fn from_pem(cert_pem: impl Into<String>, key_pem: impl Into<String>) -> Self {
        Identity {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
        }
    }

    /// A new self-signed identity named `name`.
    ///
    /// # Errors
    /// Key generation failed.
    pub fn generate(name: &str) -> Result<Self> {
        let (cert_pem, key_pem) = crate::sync::generate_identity(name)?;
        Ok(Identity { cert_pem, key_pem })
    }

    /// Where `reasonbank sync keygen` writes the identity of the root `root` by default:
    /// `<root>/.sync`.
    pub fn default_dir(root: &Path) -> PathBuf {
        root.join(".sync")
    }

    /// This side's identity as every front end takes it: both PEM texts, or neither, and then
    /// the files in `dir` (default [`default_dir`](Self::default_dir) of `root`). Blocking
    /// when it reads files.
    ///
    /// # Errors
    /// Only one of the two PEM texts; [`Error::IdentityFile`] naming a file that cannot be read.
    pub fn resolve(
        root: &Path,
        dir: Option<&Path>,
        cert_pem: Option<String>,
        key_pem: Option<String>,
    ) -> Result<Self> {
        match (cert_pem, key_pem) {
            (Some(c), Some(k)) => Ok(Identity::from_pem(c, k)),
            (None, None) => match dir {
                Some(d) => Identity::load(d),
                None => Identity::load(&Identity::default_dir(root)),
            },
            _ => Err(Error::InvalidInput {
                what: "sync identity",
                reason: "give both the certificate and the key (PEM), or neither to read them \
                         from the identity directory"
                    .into(),
            }),
        }
    }

    /// The identity in `dir` (`cert.pem`, `key.pem`).
    ///
    /// # Errors
    /// [`Error::IdentityFile`] naming the file that cannot be read.
    pub fn load(dir: &Path) -> Result<Self> {
        let read = |f: &str| {
            let path = dir.join(f);
            std::fs::read_to_string(&path).map_err(|source| Error::IdentityFile {
                action: "reading",
                path,
                hint: KEYGEN_HINT,
                source,
            })
        };
        Ok(Identity {
            cert_pem: read(CERT_FILE)?,
            key_pem: read(KEY_FILE)?,
        })
    }

    /// Writes `cert.pem` and `key.pem` (readable by its owner only) into `dir`, creating it;
    /// never overwrites an existing identity. Returns the two paths.
    ///
    /// # Errors
    /// [`Error::IdentityFile`] if either file exists or cannot be written.
    pub fn save(&self, dir: &Path) -> Result<(PathBuf, PathBuf)> {
        let fail = |path: &Path, source| Error::IdentityFile {
            action: "writing",
            path: path.to_owned(),
            hint: "an existing identity is never overwritten; remove it first to replace it",
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
        let (cert, key) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
        for p in [&cert, &key] {
            if p.exists() {
                return Err(fail(p, std::io::ErrorKind::AlreadyExists.into()));
            }
        }
        write_new(&key, &self.key_pem, true).map_err(|e| fail(&key, e))?;
        write_new(&cert, &self.cert_pem, false).map_err(|e| fail(&cert, e))?;
        Ok((cert, key))
    }

    /// The certificate's fingerprint: what the other side pins with `trust`.
    ///
    /// # Errors
    /// The certificate is not valid PEM.
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        Ok(Fingerprint::of_pem(&self.cert_pem)?)
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A sync configuration with this identity and no peer granted yet.
    ///
    /// # Errors
    /// The certificate or key does not parse.
    pub fn config(&self) -> Result<SyncConfig> {
        Ok(SyncConfig::new(&self.cert_pem, &self.key_pem)?)
    }
}

/// Creates `path` (failing if it exists) with `contents`; `private` makes it owner-only.
fn write_new(path: &Path, contents: &str, private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = o.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

/// What a hub lets a peer do with the shards of a [`PeerGrant`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// Pull only.
    Read,
    /// Push only.
    Write,
    /// Pull and push.
    ReadWrite,
}

impl FromStr for Grant {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "read" => Ok(Grant::Read),
            "write" => Ok(Grant::Write),
            "read_write" => Ok(Grant::ReadWrite),
            _ => Err(Error::InvalidInput {
                what: "peer access",
                reason: format!("{s:?} is not read, write or read_write"),
            }),
        }
    }
}

impl From<Grant> for Access {
    fn from(g: Grant) -> Access {
        match g {
            Grant::Read => Access::READ,
            Grant::Write => Access::WRITE,
            Grant::ReadWrite => Access::READ_WRITE,
        }
    }
}

/// One peer a hub serves: its certificate fingerprint, the shards it may use (`"*"`: all;
/// the default) and what it may do with them. The `peers` entries of `reasonbank serve`'s
/// config file have this shape.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerGrant {
    /// The peer's certificate fingerprint (hex SHA-256).
    pub fingerprint: String,
    /// Shard ids, or `"*"` for every shard.
    #[serde(default = "every_shard")]
    pub shards: Vec<String>,
    /// What the peer may do.
    pub access: Grant,
}

fn every_shard() -> Vec<String> {
    vec!["*".to_owned()]
}

impl Identity {
    /// A hub's sync configuration: this identity, serving `peers` with their grants.
    ///
    /// # Errors
    /// The identity does not parse, a fingerprint or shard id is malformed.
    pub fn hub_config(&self, peers: &[PeerGrant]) -> Result<SyncConfig> {
        let mut cfg = self.config()?;
        for p in peers {
            let fp: Fingerprint = p.fingerprint.parse()?;
            for s in &p.shards {
                let shard = if s == "*" {
                    None
                } else {
                    Some(ShardId::new(s.clone())?)
                };
                cfg.grant(fp, shard.as_ref(), p.access.into());
            }
        }
        Ok(cfg)
    }
}

/// One sync call: the peer, whom to trust there, which shards and which way.
#[derive(Clone, Debug)]
pub struct SyncRequest {
    peer: String,
    trust: Fingerprint,
    direction: SyncDirection,
    shards: Vec<ShardId>,
    text_only: bool,
    timeout: Duration,
}

/// How long [`sync_store`] waits for a peer to answer the handshake by default: 5 s.
pub const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(5);

impl SyncRequest {
    /// A sync with the peer at `peer` (`host:port`), whose certificate fingerprint must be
    /// `trust`.
    pub fn new(peer: impl Into<String>, trust: Fingerprint) -> Self {
        SyncRequest {
            peer: peer.into(),
            trust,
            direction: SyncDirection::Both,
            shards: Vec::new(),
            text_only: false,
            timeout: DEFAULT_SYNC_TIMEOUT,
        }
    }
    /// How long to wait for the peer to complete the handshake before giving up with a
    /// timeout error. Defaults to [`DEFAULT_SYNC_TIMEOUT`] (5 s).
    pub fn timeout(&mut self, t: Duration) -> &mut Self {
        self.timeout = t;
        self
    }
    /// Which way rows move. Defaults to [`SyncDirection::Both`].
    pub fn direction(&mut self, d: SyncDirection) -> &mut Self {
        self.direction = d;
        self
    }
    /// The shards to sync, all over one connection. Defaults to (empty means) the agent's own.
    pub fn shards(&mut self, shards: Vec<ShardId>) -> &mut Self {
        self.shards = shards;
        self
    }
    /// Send text without vectors; the receiver re-embeds with its model (a bandwidth option,
    /// not a speed one). Defaults to off.
    pub fn text_only(&mut self, yes: bool) -> &mut Self {
        self.text_only = yes;
        self
    }
}

/// What happened to one shard of a [`SyncRequest`].
#[derive(Debug)]
pub struct ShardSync {
    /// The shard.
    pub shard: ShardId,
    /// Its report, or why it failed (other shards of the same call are not affected).
    pub result: Result<SyncReport>,
}

impl ShardSync {
    /// Every shard's report, or the first failure (naming its shard) if any shard failed: for
    /// front ends that report a sync as one result.
    ///
    /// # Errors
    /// [`Error::ShardSync`] of the first shard that failed.
    pub fn all(outcomes: Vec<ShardSync>) -> Result<Vec<(ShardId, SyncReport)>> {
        let mut reports = Vec::with_capacity(outcomes.len());
        for ShardSync { shard, result } in outcomes {
            match result {
                Ok(r) => reports.push((shard, r)),
                Err(e) => {
                    return Err(Error::ShardSync {
                        shard,
                        source: Box::new(e),
                    });
                }
            }
        }
        Ok(reports)
    }
}

/// A shard's sync report as the JSON every front end prints (CLI `--json`, MCP, Python):
/// `shard`, `sent`, `received`, `applied`, `reembedded`, `reembed_ms`, `bytes_on_wire`,
/// `compression_ratio`, `ms`.
pub fn report_json(shard: &ShardId, r: &SyncReport) -> serde_json::Value {
    serde_json::json!({
        "shard": shard, "sent": r.changes_sent, "received": r.changes_received,
        "applied": r.changes_applied, "reembedded": r.changes_reembedded,
        "reembed_ms": r.reembed_time.as_secs_f64() * 1e3, "bytes_on_wire": r.bytes_on_wire(),
        "compression_ratio": r.compression_ratio(), "ms": r.elapsed.as_secs_f64() * 1e3,
        "push_denied": r.push_denied,
    })
}

impl crate::AgentMemory {
    /// Syncs shards of this memory's store with a peer (see [`sync_store`]); a request that
    /// names no shard syncs this agent's. Text-only requests re-embed received rows with this
    /// memory's embedder.
    ///
    /// # Errors
    /// As [`sync_store`].
    pub async fn sync(&self, request: &SyncRequest, identity: &Identity) -> Result<Vec<ShardSync>> {
        let mut request = request.clone();
        if request.shards.is_empty() {
            request.shards = vec![self.agent().clone()];
        }
        let reembed = request.text_only.then(|| Arc::clone(self.embedder()));
        sync_store(Arc::clone(self.store()), &request, identity, reembed).await
    }
}

/// Whether `e` is the peer refusing a stream for lack of a grant.
fn denied(e: &crate::sync::Error) -> bool {
    matches!(e, crate::sync::Error::Refused { code } if *code == u64::from(crate::sync::quic::CODE_DENIED))
}

/// Syncs the request's shards of `store` with a peer over QUIC: mutual TLS as `identity`, the
/// peer pinned by the request's `trust`, one stream per shard over one connection, all at
/// once. Shards missing locally are created with the store's shard options. A text-only
/// request needs `reembed`, the embedder of the shards' model, to fill in received vectors.
///
/// Returns one [`ShardSync`] per shard, in request order; a shard that failed does not stop
/// the others.
///
/// # Errors
/// Before any shard moves: a request without shards, a text-only request without `reembed`,
/// an address that does not resolve, an identity that does not parse, a peer that cannot be
/// reached or refuses the handshake.
pub async fn sync_store(
    store: Arc<Store>,
    request: &SyncRequest,
    identity: &Identity,
    reembed: Option<Arc<dyn Embedder>>,
) -> Result<Vec<ShardSync>> {
    if request.shards.is_empty() {
        return Err(Error::InvalidInput {
            what: "sync request",
            reason: "it names no shard".into(),
        });
    }
    let peer = tokio::net::lookup_host(request.peer.as_str())
        .await
        .map_err(|e| Error::InvalidInput {
            what: "peer address",
            reason: format!("{:?}: {e}", request.peer),
        })?
        .next()
        .ok_or_else(|| Error::InvalidInput {
            what: "peer address",
            reason: format!("{:?} resolves to nothing", request.peer),
        })?;
    let mut cfg = identity.config()?;
    cfg.handshake_timeout(request.timeout);
    // The caller trusts this peer explicitly; which way data flows is chosen by `direction`.
    cfg.grant(request.trust, None, Access::READ_WRITE);
    if request.text_only {
        let embedder = reembed.ok_or(Error::InvalidInput {
            what: "sync request",
            reason: "text-only sync needs an embedder to re-embed received rows".into(),
        })?;
        cfg.text_only(true)
            .reembedder(Arc::new(crate::EmbedderReembedder::new(embedder)));
    }
    let client = Arc::new(SyncClient::connect(peer, cfg).await?);
    let direction = request.direction;
    let tasks: Vec<_> = request
        .shards
        .iter()
        .cloned()
        .map(|id| {
            let store = Arc::clone(&store);
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                let sid = id.clone();
                let st = Arc::clone(&store);
                let existed = store.exists(&id);
                let result = async {
                    let shard = tokio::task::spawn_blocking(move || st.shard(&sid)).await??;
                    Ok(match direction {
                        SyncDirection::Both => match client.sync(&id, &shard).await {
                            // A read-only grant: pull what we may, and say the push was denied.
                            Err(e) if denied(&e) => {
                                let mut r = client.pull(&id, &shard).await?;
                                r.push_denied = true;
                                r
                            }
                            other => other?,
                        },
                        SyncDirection::Pull => client.pull(&id, &shard).await?,
                        SyncDirection::Push => client.push(&id, &shard).await?,
                    })
                }
                .await;
                if result.is_err() && !existed {
                    // A refused or denied sync leaves no empty shard behind.
                    let sid = id.clone();
                    match tokio::task::spawn_blocking(move || store.discard_if_empty(&sid)).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => tracing::warn!(shard = %id, error = %e,
                            "could not remove the empty shard a failed sync created"),
                        Err(e) => tracing::warn!(shard = %id, error = %e,
                            "could not remove the empty shard a failed sync created"),
                    }
                }
                ShardSync { shard: id, result }
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await?);
    }
    client.close();
    Ok(out)
}

/// The default directory of shards: `$XDG_DATA_HOME/reasonbank`, else
/// `~/.local/share/reasonbank`. Front ends use it when neither `--root` nor
/// `REASONBANK_ROOT` says otherwise.
///
/// # Errors
/// Neither `XDG_DATA_HOME` nor `HOME` is set.
pub fn default_root() -> Result<PathBuf> {
    let var = |n: &str| {
        std::env::var_os(n)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("XDG_DATA_HOME") {
        return Ok(d.join("reasonbank"));
    }
    if let Some(h) = var("HOME") {
        return Ok(h.join(".local/share/reasonbank"));
    }
    Err(Error::InvalidInput {
        what: "shard root",
        reason: "neither XDG_DATA_HOME nor HOME is set: pass --root DIR or set REASONBANK_ROOT"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_resolves_from_pem_or_the_directory_and_refuses_half_a_pair() {
        let root = tempfile::tempdir().unwrap();
        let made = Identity::generate("t").unwrap();
        let fp = made.fingerprint().unwrap();
        let got = Identity::resolve(
            root.path(),
            None,
            Some(made.cert_pem().into()),
            Some(made.key_pem().into()),
        )
        .unwrap();
        assert_eq!(got.fingerprint().unwrap(), fp);

        let e = Identity::resolve(root.path(), None, Some(made.cert_pem().into()), None);
        assert_eq!(e.unwrap_err().code(), crate::error::code::INVALID_INPUT);
        let e = Identity::resolve(root.path(), None, None, None).unwrap_err();
        assert!(
            e.to_string().contains(".sync") && e.to_string().contains("keygen"),
            "{e}"
        );

        made.save(&Identity::default_dir(root.path())).unwrap();
        let loaded = Identity::resolve(root.path(), None, None, None).unwrap();
        assert_eq!(loaded.fingerprint().unwrap(), fp);
        assert!(
            made.save(&Identity::default_dir(root.path())).is_err(),
            "never overwrites"
        );
    }

    #[test]
    fn a_failed_shard_names_itself_and_keeps_its_code() {
        let ok = ShardSync {
            shard: ShardId::new("a").unwrap(),
            result: Ok(SyncReport::default()),
        };
        assert_eq!(ShardSync::all(vec![ok]).unwrap().len(), 1);
        let bad = ShardSync {
            shard: ShardId::new("b").unwrap(),
            result: Err(Error::from(crate::sync::Error::UnexpectedEnd)),
        };
        let e = ShardSync::all(vec![bad]).unwrap_err();
        assert_eq!(e.to_string(), "syncing shard b");
        assert_eq!(e.code(), crate::error::code::SYNC_NETWORK);
    }
}
