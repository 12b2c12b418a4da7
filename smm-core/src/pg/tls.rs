//! TLS to the server, with rustls (its `ring` provider, already in the
//! tree for signatures), in libpq's `sslmode`s:
//!
//! - `disable`: never.
//! - `prefer` (the default, as in libpq): TLS when the server offers it,
//!   without checking its certificate; plain otherwise.
//! - `require`: TLS or no connection; the certificate is not checked
//!   unless `sslrootcert` names the CA file (then as `verify-ca`).
//! - `verify-ca`: TLS, and a certificate chain to a CA of `sslrootcert`.
//! - `verify-full`: as `verify-ca`, and the certificate names the host.
//!
//! Without a check of the certificate, TLS keeps a passive listener out,
//! not a man in the middle: use `verify-full` on any network you do not
//! own. `sslrootcert` defaults to `~/.postgresql/root.crt`, as in libpq.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::Socket;
use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// libpq's `sslmode`s (`allow` is refused: it falls back to plain text
/// after a failed TLS attempt, which no caller of this library wants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub(crate) fn parse(s: &str) -> Option<SslMode> {
        match s {
            "disable" => Some(SslMode::Disable),
            "prefer" => Some(SslMode::Prefer),
            "require" => Some(SslMode::Require),
            "verify-ca" => Some(SslMode::VerifyCa),
            "verify-full" => Some(SslMode::VerifyFull),
            _ => None,
        }
    }

    /// The client crate's mode: whether to try TLS, and whether to insist.
    pub(crate) fn client_mode(self) -> postgres::config::SslMode {
        match self {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                postgres::config::SslMode::Require
            }
        }
    }
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Not at all (the handshake's signature still is).
    None,
    /// A chain to a trusted CA.
    Chain,
    /// A chain, and the host's name or address in the certificate.
    ChainAndName,
}

/// The TLS connector of a target: a rustls configuration shared by every
/// connection.
#[derive(Clone)]
pub(crate) struct RustlsConnect {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for RustlsConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RustlsConnect")
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl RustlsConnect {
    /// The connector for `mode`, with the CA file `root` (when given, or
    /// `~/.postgresql/root.crt` when it exists). A mode that checks
    /// certificates without a CA file, or a CA file that does not read, is
    /// an error naming the file.
    pub(crate) fn new(mode: SslMode, root: Option<&Path>) -> Result<RustlsConnect, String> {
        let default_root = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".postgresql").join("root.crt"))
            .filter(|p| p.is_file());
        let root: Option<PathBuf> = root.map(Path::to_path_buf).or(default_root);
        let check = match (mode, &root) {
            (SslMode::VerifyFull, _) => Check::ChainAndName,
            (SslMode::VerifyCa, _) => Check::Chain,
            // libpq: `require` with a CA file checks the chain.
            (SslMode::Require, Some(_)) => Check::Chain,
            _ => Check::None,
        };
        let provider = provider();
        let verifier: Arc<dyn ServerCertVerifier> = match check {
            Check::None => Arc::new(Unchecked(Arc::clone(&provider))),
            Check::Chain | Check::ChainAndName => {
                let path = root.ok_or_else(|| {
                    "sslmode=verify-ca and verify-full need the CA's certificate: add \
                     sslrootcert=PATH to the URL (or put it in ~/.postgresql/root.crt)"
                        .to_string()
                })?;
                let roots = roots_of(&path)?;
                let webpki = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&provider),
                )
                .build()
                .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                if check == Check::Chain {
                    Arc::new(ChainOnly(webpki))
                } else {
                    webpki
                }
            }
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(RustlsConnect {
            config: Arc::new(config),
        })
    }
}

/// The certificates of a PEM file, as trust anchors.
fn roots_of(path: &Path) -> Result<RootCertStore, String> {
    let shown = path.display();
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("sslrootcert {shown} does not read: {e}"))?;
    for c in certs {
        let c = c.map_err(|e| format!("sslrootcert {shown} is not PEM certificates: {e}"))?;
        roots
            .add(c)
            .map_err(|e| format!("sslrootcert {shown}: a certificate is refused: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("sslrootcert {shown} holds no certificate"));
    }
    Ok(roots)
}

/// No check of the certificate (`prefer`, `require`): encryption only.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain, not the name (webpki checks the chain first,
/// so a name mismatch means the chain passed).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl MakeTlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnector;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnector, Self::Error> {
        Ok(RustlsConnector {
            config: Arc::clone(&self.config),
            name: ServerName::try_from(domain.to_string())?,
        })
    }
}

/// One connection's handshake.
pub(crate) struct RustlsConnector {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl TlsConnect<Socket> for RustlsConnector {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await
                .map(|s| RustlsStream(Box::new(s)))
        })
    }
}

/// A TLS connection to the server.
pub(crate) struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM channel binding would need the certificate's hash; the
        // server accepts its absence (channel_binding=prefer).
        ChannelBinding::none()
    }
}

/// Whether a connection error is a TLS refusal (a certificate, the
/// handshake, a server without TLS under `require`): a setting to fix,
/// never worth a retry. `None` when the error is not TLS's.
pub(crate) fn tls_refusal(e: &postgres::Error) -> Option<String> {
    let text = e.to_string();
    if !text.starts_with("error performing TLS handshake") {
        return None;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>()
            && io
                .get_ref()
                .is_none_or(|inner| !inner.is::<rustls::Error>())
            && matches!(
                io.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::TimedOut
            )
        {
            // The connection broke during the handshake: a retry may pass.
            return None;
        }
        source = s.source();
    }
    Some(text)
}
