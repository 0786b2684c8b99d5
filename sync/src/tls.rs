//! TLS 1.3 with mutual authentication by pinned certificate fingerprints.
//!
//! Both ends present a certificate; neither uses certificate authorities or names. A
//! certificate is accepted when the SHA-256 of its DER is in the allowlist, and the handshake
//! signature is then checked against its public key (so the peer holds the private key).
//! Validity dates are not checked: the pinned fingerprint is the trust decision, and a peer
//! is revoked by removing it from the allowlist. A handshake that fails over a certificate is
//! reported in words by [`in_words`]: which side refused, the fingerprints, the fix.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::{Error, Fingerprint, Result, SyncConfig};

/// ALPN protocol id of reasonbank sync.
pub const ALPN: &[u8] = b"reasonbank-sync/1";

/// Accepts exactly the certificates whose fingerprint is in the allowlist.
#[derive(Debug)]
pub(crate) struct PinnedPeers {
    allowed: HashSet<Fingerprint>,
    algorithms: WebPkiSupportedAlgorithms,
    /// The fingerprint of the last certificate this verifier refused, so that a failed
    /// handshake can say in words whose certificate it was.
    refused: std::sync::Mutex<Option<Fingerprint>>,
}

impl PinnedPeers {
    fn check(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let presented = Fingerprint::of_der(end_entity);
        if self.allowed.contains(&presented) {
            Ok(())
        } else {
            *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(presented);
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    /// The fingerprint of the last certificate refused, if any.
    pub(crate) fn refused(&self) -> Option<Fingerprint> {
        *self.refused.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

fn no_tls12() -> rustls::Error {
    rustls::Error::General("TLS 1.2 is not offered".into())
}

impl ServerCertVerifier for PinnedPeers {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(no_tls12())
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for PinnedPeers {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        true
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(no_tls12())
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pinned(config: &SyncConfig, provider: &CryptoProvider) -> Arc<PinnedPeers> {
    Arc::new(PinnedPeers {
        allowed: config.allowed_peers(),
        algorithms: provider.signature_verification_algorithms,
        refused: std::sync::Mutex::new(None),
    })
}

fn tls(source: rustls::Error) -> Error {
    Error::Tls { source }
}

fn quic_config<E: std::fmt::Display>(e: E) -> Error {
    Error::InvalidOption {
        reason: format!("QUIC crypto configuration: {e}"),
    }
}

fn transport(config: &SyncConfig) -> Result<Arc<quinn::TransportConfig>> {
    let mut t = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(config.idle_timeout).map_err(quic_config)?;
    t.max_idle_timeout(Some(idle));
    // Keep idle-but-open connections (between syncs) alive well inside the idle timeout.
    t.keep_alive_interval(Some(config.idle_timeout / 3));
    Ok(Arc::new(t))
}

/// The QUIC server configuration: TLS 1.3 only, client certificate mandatory and pinned.
///
/// 0-RTT is *accepted* at the TLS layer (`max_early_data_size`), but the server never uses
/// quinn's `into_0rtt`: a connection reaches the application only after the handshake has
/// completed, i.e. after the client's certificate was verified, so early data is read only
/// once the peer's identity is established. Clients send only idempotent pulls as early data.
pub(crate) fn server_config(config: &SyncConfig) -> Result<quinn::ServerConfig> {
    let provider = provider();
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls)?
        .with_client_cert_verifier(pinned(config, &provider))
        .with_single_cert(vec![config.cert.clone()], config.key.clone_key())
        .map_err(tls)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.max_early_data_size = if config.zero_rtt { u32::MAX } else { 0 };
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(quic_config)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(transport(config)?);
    Ok(server)
}

/// The QUIC client configuration: TLS 1.3 only, the server certificate pinned, our
/// certificate presented, session resumption (and 0-RTT if enabled) on.
/// Also returns the verifier, which remembers a server certificate it refused.
pub(crate) fn client_config(
    config: &SyncConfig,
) -> Result<(quinn::ClientConfig, Arc<PinnedPeers>)> {
    let provider = provider();
    let verifier = pinned(config, &provider);
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&verifier) as _)
        .with_client_auth_cert(vec![config.cert.clone()], config.key.clone_key())
        .map_err(tls)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.enable_early_data = config.zero_rtt;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(quic_config)?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(transport(config)?);
    Ok((client, verifier))
}

/// The fingerprint of the peer's end-entity certificate on an established connection.
///
/// Checked by the application on every connection, in addition to the verifiers: a resumed
/// TLS session does not run the certificate verifier again, so this is what keeps a peer
/// removed from the allowlist since its ticket was issued out.
pub(crate) fn peer_fingerprint(conn: &quinn::Connection) -> Option<Fingerprint> {
    let certs = conn
        .peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?;
    certs.first().map(|c| Fingerprint::of_der(c))
}

/// A failed client handshake as [`Error::HandshakeRefused`] when a certificate was the
/// reason: ours refused by the peer, or the peer's by us (`refused`, what it presented).
pub(crate) fn in_words(
    e: Error,
    addr: SocketAddr,
    config: &SyncConfig,
    refused: Option<Fingerprint>,
) -> Error {
    let pinned = || {
        let mut p: Vec<String> = config
            .allowed_peers()
            .iter()
            .map(ToString::to_string)
            .collect();
        p.sort();
        p.join(", ")
    };
    if let Some(presented) = refused {
        return Error::HandshakeRefused {
            addr,
            by: "this side",
            reason: format!(
                "the peer's certificate fingerprint is {presented}, you pinned {} (check --trust)",
                pinned()
            ),
        };
    }
    if let Error::Timeout {
        what: "the handshake",
        millis,
    } = e
    {
        return Error::Unreachable { addr, millis };
    }
    // The connection's end, however the failure surfaced (connecting, writing or reading).
    let lost = match &e {
        Error::Connection(c)
        | Error::Write(quinn::WriteError::ConnectionLost(c))
        | Error::Read(quinn::ReadError::ConnectionLost(c)) => Some(c),
        _ => None,
    };
    match lost {
        // A TLS alert from the peer: it did not accept our certificate.
        Some(quinn::ConnectionError::ConnectionClosed(c))
            if (0x100..0x200).contains(&u64::from(c.error_code)) =>
        {
            Error::HandshakeRefused {
                addr,
                by: "the peer",
                reason: format!(
                    "this side's certificate (fingerprint {}) is not in the peer's list of \
                     peers; add it to the hub's config (`peers`), or check --identity",
                    config.fingerprint()
                ),
            }
        }
        Some(quinn::ConnectionError::ApplicationClosed(c))
            if u64::from(c.error_code) == u64::from(crate::quic::CODE_DENIED) =>
        {
            Error::HandshakeRefused {
                addr,
                by: "the peer",
                reason: format!(
                    "this side (fingerprint {}) is not in the peer's list of peers",
                    config.fingerprint()
                ),
            }
        }
        _ => e,
    }
}
