//! How hotline reaches PostgreSQL: the URL (`[store] url`), and TLS when
//! it asks for it, with rustls and ring as for SIP and HTTPS. Every
//! connection goes through here: the store's and the cluster thread's.
//!
//! The URL's `sslmode`, as libpq reads it, with one difference: hotline
//! verifies the server's certificate whenever it uses TLS.
//! - none given, or `disable`: plain TCP (a database on a private network
//!   or a local socket);
//! - `prefer`: TLS if the server offers it;
//! - `require`, `verify-ca`, `verify-full`: TLS or no connection.
//!
//! The certificate is checked against `sslrootcert` (a PEM file, named in
//! the URL as libpq names it) or else the system's roots, and must name
//! the host the URL names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use thiserror::Error;
use tokio_postgres_rustls::MakeRustlsConnect;

#[derive(Debug, Error)]
pub enum PgUrlError {
    #[error("{0}")]
    Parse(#[from] postgres::Error),
    #[error("sslrootcert {path}: {source}")]
    ReadRoot {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sslrootcert {path}: no certificate in it")]
    NoRoot { path: PathBuf },
    #[error("sslmode needs TLS, and the system has no root certificates: give sslrootcert")]
    NoSystemRoots,
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// A parsed URL and how to connect to it.
#[derive(Clone)]
pub struct PgTarget {
    pub config: postgres::Config,
    pub tls: MakeRustlsConnect,
}

impl PgTarget {
    /// Reads `url` (`postgres://...` or `key=value ...`), with its
    /// `sslmode` and `sslrootcert`.
    pub fn parse(url: &str) -> Result<PgTarget, PgUrlError> {
        let (rest, mode, root) = take_tls_params(url);
        let mut config: postgres::Config = rest.parse()?;
        config.ssl_mode(match mode.as_deref() {
            None | Some("disable") | Some("allow") => postgres::config::SslMode::Disable,
            Some("prefer") => postgres::config::SslMode::Prefer,
            // require, verify-ca, verify-full; anything else is refused
            // by the parser below.
            Some("require" | "verify-ca" | "verify-full") => postgres::config::SslMode::Require,
            Some(other) => {
                // Let rust-postgres name the bad value.
                let probe = format!("sslmode={other}");
                probe.parse::<postgres::Config>()?;
                postgres::config::SslMode::Require
            }
        });
        let roots = match &root {
            Some(path) => file_roots(path)?,
            None if config.get_ssl_mode() == postgres::config::SslMode::Disable => {
                RootCertStore::empty()
            }
            None => system_roots()?,
        };
        let client = rustls::ClientConfig::builder_with_provider(crate::shell::tls::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(Arc::new(roots))
            .with_no_client_auth();
        Ok(PgTarget {
            config,
            tls: MakeRustlsConnect::new(client),
        })
    }

    /// Connects (blocking: never on an async runtime's thread).
    pub fn connect(&self) -> Result<postgres::Client, postgres::Error> {
        self.config.connect(self.tls.clone())
    }
}

/// Takes `sslmode` and `sslrootcert` out of `url` (the first in either
/// form; rust-postgres does not know `sslrootcert` nor libpq's
/// `verify-*` modes): what is left, and the two values.
fn take_tls_params(url: &str) -> (String, Option<String>, Option<PathBuf>) {
    let (mut mode, mut root) = (None, None);
    let mut keep = |key: &str, value: &str| match key {
        "sslmode" => {
            mode = Some(value.to_ascii_lowercase());
            false
        }
        "sslrootcert" => {
            root = Some(PathBuf::from(value));
            false
        }
        _ => true,
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        keep(k, &percent_decoded(v))
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => url.to_string(),
        }
    } else {
        url.split_whitespace()
            .filter(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                keep(k, v)
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    (rest, mode, root)
}

/// `%2F` and friends, as a path in a URL's query is written.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn file_roots(path: &Path) -> Result<RootCertStore, PgUrlError> {
    let roots = crate::shell::tls::pem_roots(path).map_err(|source| PgUrlError::ReadRoot {
        path: path.to_path_buf(),
        source,
    })?;
    if roots.is_empty() {
        return Err(PgUrlError::NoRoot {
            path: path.to_path_buf(),
        });
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, PgUrlError> {
    let mut roots = RootCertStore::empty();
    let (added, _) =
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if added == 0 {
        return Err(PgUrlError::NoSystemRoots);
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_are_read_and_taken_out_of_either_form() {
        let (rest, mode, root) = take_tls_params(
            "postgres://h@db/x?application_name=a&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        );
        assert_eq!(rest, "postgres://h@db/x?application_name=a");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root, Some(PathBuf::from("/etc/ca.pem")));
        let (rest, mode, root) =
            take_tls_params("host=db user=h sslmode=require sslrootcert=/ca.pem");
        assert_eq!(rest, "host=db user=h");
        assert_eq!(mode.as_deref(), Some("require"));
        assert_eq!(root, Some(PathBuf::from("/ca.pem")));
        let (rest, mode, root) = take_tls_params("postgres://h@db/x");
        assert_eq!(
            (rest.as_str(), mode, root),
            ("postgres://h@db/x", None, None)
        );
    }

    #[test]
    fn no_sslmode_is_plain_tcp_and_a_bad_one_or_root_file_is_named() {
        let plain = PgTarget::parse("postgres://h@db/x").expect("parses");
        assert_eq!(
            plain.config.get_ssl_mode(),
            postgres::config::SslMode::Disable
        );
        let strict = PgTarget::parse("postgres://h@db/x?sslmode=verify-full&sslrootcert=/nowhere")
            .err()
            .map(|e| e.to_string());
        assert!(
            strict.as_deref().is_some_and(|e| e.contains("/nowhere")),
            "{strict:?}"
        );
        let bad = PgTarget::parse("postgres://h@db/x?sslmode=sometimes")
            .err()
            .map(|e| e.to_string());
        assert!(bad.is_some(), "a bad sslmode is refused");
    }
}
