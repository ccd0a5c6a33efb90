//! TLS (docs/tls.md), with rustls and its ring provider:
//!
//! - [`ServerTls`]: `[tls]`'s certificate and key, read from PEM and
//!   checked to belong together. The HTTPS API and the SIP-over-TLS
//!   listeners share it through a certificate resolver, so SIGHUP's
//!   [`ServerTls::reload`] gives every new connection the new pair
//!   (connections already up keep theirs).
//! - [`HttpsListener`]: the API's listener for `axum::serve`, handing over
//!   connections once their handshake is done (handshakes run side by
//!   side, bounded in number and time, so a slow client holds up nobody).
//! - [`TrunkTls`]: how to connect to a `transport = "tls"` trunk: its
//!   certificate verified against the system's roots or its `tls_ca`, for
//!   its `domain` (or address).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use thiserror::Error;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::{server::TlsStream, TlsAcceptor, TlsConnector};
use tracing::debug;

use crate::config::{Config, TrunkTransport};

/// How long an HTTPS client may take over its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTPS handshakes in progress at once; further connections wait to be
/// accepted.
const MAX_HANDSHAKES: usize = 256;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {}: {source} (docs/tls.md says how to make one)", path.display())]
    ReadCertificate { path: PathBuf, source: io::Error },
    #[error("cannot read the TLS key {}: {source} (docs/tls.md says how to make one)", path.display())]
    ReadKey { path: PathBuf, source: io::Error },
    #[error(
        "the TLS certificate {} holds no PEM certificate (-----BEGIN CERTIFICATE-----){}",
        path.display(),
        detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    NoCertificate {
        path: PathBuf,
        detail: Option<String>,
    },
    #[error(
        "the TLS key {} holds no PEM private key (-----BEGIN PRIVATE KEY-----, RSA or EC){}",
        path.display(),
        detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    NoKey {
        path: PathBuf,
        detail: Option<String>,
    },
    #[error("the TLS key {} cannot be used: {source}", path.display())]
    UnusableKey {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("the TLS certificate {} cannot be used: {source}", path.display())]
    UnusableCertificate {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error(
        "the TLS key {} does not belong to the certificate {} (their public keys differ)",
        key.display(),
        certificate.display()
    )]
    Mismatch { certificate: PathBuf, key: PathBuf },
    #[error("trunk {trunk:?}: cannot read tls_ca {}: {source}", path.display())]
    ReadCa {
        trunk: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("trunk {trunk:?}: tls_ca {} holds no usable PEM certificate", path.display())]
    NoCa { trunk: String, path: PathBuf },
    #[error(
        "trunk {trunk:?}: no system root certificates to verify it with \
         (install ca-certificates, or give the trunk a tls_ca)"
    )]
    NoSystemRoots { trunk: String },
    #[error("trunk {trunk:?}: {name:?} is not a TLS server name")]
    ServerName { trunk: String, name: String },
    #[error("TLS setup: {0}")]
    Setup(#[from] rustls::Error),
}

/// The one crypto provider: ring, which builds with a C compiler alone
/// (aws-lc-rs wants more tools). rustls 0.23.48 marks it deprecated for
/// lacking post-quantum key exchange; the classical suites it has are
/// still rustls's safe defaults.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads `certificate` (the chain, end entity first) and `key` (PEM), and
/// checks that the key is the certificate's.
pub fn load_pair(certificate: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_pem = std::fs::read(certificate).map_err(|source| TlsError::ReadCertificate {
        path: certificate.to_path_buf(),
        source,
    })?;
    let key_pem = std::fs::read(key).map_err(|source| TlsError::ReadKey {
        path: key.to_path_buf(),
        source,
    })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::NoCertificate {
            path: certificate.to_path_buf(),
            detail: Some(e.to_string()),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: certificate.to_path_buf(),
            detail: None,
        });
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: key.to_path_buf(),
        detail: match e {
            rustls_pki_types::pem::Error::NoItemsFound => None,
            other => Some(other.to_string()),
        },
    })?;
    let signer = provider()
        .key_provider
        .load_private_key(private)
        .map_err(|source| TlsError::UnusableKey {
            path: key.to_path_buf(),
            source,
        })?;
    let pair = CertifiedKey::new(chain, signer);
    match pair.keys_match() {
        Ok(()) => Ok(pair),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::Mismatch {
                certificate: certificate.to_path_buf(),
                key: key.to_path_buf(),
            })
        }
        // The key cannot say its public half: nothing to compare.
        Err(rustls::Error::InconsistentKeys(_)) => Ok(pair),
        Err(source) => Err(TlsError::UnusableCertificate {
            path: certificate.to_path_buf(),
            source,
        }),
    }
}

/// What `hotline check-config` checks beyond the text: `[tls]`'s pair
/// reads and belongs together, and each TLS trunk's roots load.
pub fn check(config: &Config) -> Result<(), TlsError> {
    if let Some((certificate, key)) = config.tls_files() {
        load_pair(&certificate, &key)?;
    }
    trunk_tls(config)?;
    Ok(())
}

/// The pair every new server connection is given.
#[derive(Debug)]
struct CurrentPair(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentPair {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok().map(|pair| pair.clone())
    }
}

/// `[tls]`'s certificate and key, shared by the HTTPS and SIP listeners.
#[derive(Clone)]
pub struct ServerTls {
    current: Arc<CurrentPair>,
}

impl ServerTls {
    pub fn load(certificate: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        let pair = load_pair(certificate, key)?;
        Ok(ServerTls {
            current: Arc::new(CurrentPair(RwLock::new(Arc::new(pair)))),
        })
    }

    /// Reads the pair again; connections from now on get it. On an error
    /// the pair in use stays.
    pub fn reload(&self, certificate: &Path, key: &Path) -> Result<(), TlsError> {
        let pair = Arc::new(load_pair(certificate, key)?);
        match self.current.0.write() {
            Ok(mut current) => *current = pair,
            Err(poisoned) => *poisoned.into_inner() = pair,
        }
        Ok(())
    }

    /// An acceptor offering `alpn` (HTTPS: `http/1.1`; SIP: none).
    pub fn acceptor(&self, alpn: &[&[u8]]) -> Result<TlsAcceptor, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.current.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// The API's listener when it serves HTTPS: accepts TCP, runs each
/// handshake in a task of its own and hands `axum::serve` the finished
/// ones. A connection that does not speak TLS (plain HTTP) is closed.
pub struct HttpsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl HttpsListener {
    pub fn new(listener: TcpListener, acceptor: TlsAcceptor) -> io::Result<HttpsListener> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = handshakes.clone().acquire_owned().await else {
                    return;
                };
                let (stream, addr) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, say: wait instead of spinning.
                        debug!(error = %e, "HTTPS accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let shake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    let result = shake.await;
                    drop(permit);
                    match result {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => debug!(%addr, error = %e, "HTTPS handshake failed"),
                        Err(_) => debug!(%addr, "HTTPS handshake not done within 10 s"),
                    }
                });
            }
        });
        Ok(HttpsListener { ready, local })
    }
}

impl axum::serve::Listener for HttpsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task ended (the runtime is stopping).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// How to open a TLS connection to one trunk.
#[derive(Clone)]
pub struct TrunkTls {
    pub connector: TlsConnector,
    pub server_name: ServerName<'static>,
}

/// The TLS settings of every `transport = "tls"` trunk, by address (where
/// the shell opens connections). Each trunk's roots: its `tls_ca`, or the
/// system's (read once, for all).
pub fn trunk_tls(config: &Config) -> Result<HashMap<SocketAddr, TrunkTls>, TlsError> {
    let mut out = HashMap::new();
    let mut system: Option<Arc<RootCertStore>> = None;
    for t in config
        .trunks
        .iter()
        .filter(|t| t.transport == TrunkTransport::Tls)
    {
        let roots = match &t.tls_ca {
            Some(ca) => Arc::new(ca_roots(&t.name, &config.base_dir.join(ca))?),
            None => match &system {
                Some(roots) => roots.clone(),
                None => {
                    let roots = Arc::new(system_roots(&t.name)?);
                    system = Some(roots.clone());
                    roots
                }
            },
        };
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = match &t.domain {
            Some(domain) => crate::config::tls::host_of(domain).to_string(),
            None => t.address.ip().to_string(),
        };
        let server_name = ServerName::try_from(name.clone()).map_err(|_| TlsError::ServerName {
            trunk: t.name.clone(),
            name,
        })?;
        out.insert(
            t.address,
            TrunkTls {
                connector: TlsConnector::from(Arc::new(client)),
                server_name,
            },
        );
    }
    Ok(out)
}

/// What a client of our own API (`hotline campaign`) trusts: the system's
/// roots and every certificate in `[tls]`'s file (a self-signed one is
/// its own root). Either may be missing; an unreadable file is an error.
pub fn api_client_roots(config: &Config) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut roots = rustls_native_certs::load_native_certs().certs;
    if let Some((certificate, _)) = config.tls_files() {
        let pem = std::fs::read(&certificate).map_err(|source| TlsError::ReadCertificate {
            path: certificate.clone(),
            source,
        })?;
        roots.extend(CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok));
    }
    Ok(roots)
}

/// The certificates in the PEM file `path`, as roots to trust (none when
/// it holds none).
pub fn pem_roots(path: &Path) -> io::Result<RootCertStore> {
    let pem = std::fs::read(path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(certs);
    Ok(roots)
}

fn ca_roots(trunk: &str, path: &Path) -> Result<RootCertStore, TlsError> {
    let roots = pem_roots(path).map_err(|source| TlsError::ReadCa {
        trunk: trunk.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    if roots.is_empty() {
        return Err(TlsError::NoCa {
            trunk: trunk.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(roots)
}

fn system_roots(trunk: &str) -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        debug!(error = %e, "a system root certificate could not be read");
    }
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(TlsError::NoSystemRoots {
            trunk: trunk.to_string(),
        });
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A self-signed pair for `127.0.0.1`, written as cert.pem and key.pem
    /// (named `tag`) in `dir`; returns (certificate path, key path, DER).
    fn pair(dir: &Path, tag: &str) -> (PathBuf, PathBuf, CertificateDer<'static>) {
        let made =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("rcgen");
        let cert = dir.join(format!("{tag}-cert.pem"));
        let key = dir.join(format!("{tag}-key.pem"));
        std::fs::write(&cert, made.cert.pem()).expect("write cert");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
        (cert, key, made.cert.der().clone())
    }

    #[test]
    fn a_pair_loads_and_every_bad_one_names_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert_a, key_a, _) = pair(dir.path(), "a");
        let (_, key_b, _) = pair(dir.path(), "b");
        load_pair(&cert_a, &key_a).expect("a matching pair");

        let missing = dir.path().join("missing.pem");
        let e = load_pair(&missing, &key_a).expect_err("no file");
        assert!(
            e.to_string().starts_with(&format!(
                "cannot read the TLS certificate {}:",
                missing.display()
            )),
            "{e}"
        );
        let e = load_pair(&cert_a, &missing).expect_err("no key file");
        assert!(e.to_string().contains("TLS key"), "{e}");
        assert!(e.to_string().contains("missing.pem"), "{e}");

        // The files swapped: no certificate in the key, no key in the certificate.
        let e = load_pair(&key_a, &key_a).expect_err("a key is no certificate");
        assert!(matches!(e, TlsError::NoCertificate { .. }), "{e}");
        let e = load_pair(&cert_a, &cert_a).expect_err("a certificate is no key");
        assert!(matches!(e, TlsError::NoKey { .. }), "{e}");
        assert!(e.to_string().contains("a-cert.pem"), "{e}");

        let e = load_pair(&cert_a, &key_b).expect_err("another's key");
        assert_eq!(
            e.to_string(),
            format!(
                "the TLS key {} does not belong to the certificate {} (their public keys differ)",
                key_b.display(),
                cert_a.display()
            )
        );
    }

    /// Connects to `addr` trusting only `root`; Ok when the handshake and
    /// one echoed byte went through.
    async fn handshake(addr: SocketAddr, root: &CertificateDer<'static>) -> Result<(), String> {
        let mut roots = RootCertStore::empty();
        roots.add(root.clone()).map_err(|e| e.to_string())?;
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let name = ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
        let mut tls = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"x").await.map_err(|e| e.to_string())?;
        let mut echo = [0u8; 1];
        tls.read_exact(&mut echo).await.map_err(|e| e.to_string())?;
        Ok(())
    }

    #[tokio::test]
    async fn a_reload_gives_new_connections_the_new_pair_and_a_bad_one_keeps_the_old() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert_a, key_a, der_a) = pair(dir.path(), "a");
        let (cert_b, key_b, der_b) = pair(dir.path(), "b");
        let server = ServerTls::load(&cert_a, &key_a).expect("load");
        let acceptor = server.acceptor(&[]).expect("acceptor");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let mut byte = [0u8; 1];
                        if tls.read_exact(&mut byte).await.is_ok() {
                            let _ = tls.write_all(&byte).await;
                        }
                    }
                });
            }
        });
        handshake(addr, &der_a).await.expect("A is served");
        assert!(handshake(addr, &der_b).await.is_err(), "B is not yet");

        server.reload(&cert_b, &key_b).expect("reload");
        handshake(addr, &der_b).await.expect("B after the reload");
        assert!(handshake(addr, &der_a).await.is_err(), "A no more");

        // A mismatched pair is refused and B stays.
        let e = server.reload(&cert_a, &key_b).expect_err("mismatch");
        assert!(matches!(e, TlsError::Mismatch { .. }), "{e}");
        handshake(addr, &der_b).await.expect("B still");
    }

    #[test]
    fn a_trunk_ca_file_is_read_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key, _) = pair(dir.path(), "ca");
        assert_eq!(ca_roots("pstn", &cert).expect("roots").len(), 1);
        let e = ca_roots("pstn", &key).expect_err("a key is no CA");
        assert!(e.to_string().starts_with("trunk \"pstn\": tls_ca"), "{e}");
    }
}
