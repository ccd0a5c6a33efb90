//! HTTP Digest authentication as SIP uses it (RFC 3261 §22, RFC 7616 with
//! RFC 8760's SHA-256 for SIP): the hashes, the `Authorization` header
//! parser, the `WWW-Authenticate` challenge writer and stateless nonces
//! for the registrar, and, for hotline as a client (answering a trunk's
//! 401 or 407), the challenge reader and the answer writer.
//!
//! Only `qop=auth` and the RFC 2069 no-qop form are accepted; `auth-int`,
//! the `-sess` algorithms and `userhash` are refused with a typed error.
//!
//! Nonces carry their own issue time and a truncated SHA-256 tag keyed with
//! a per-process secret, so the registrar checks them without storing them.
//! Time is the caller's: the nonce source is given its start `Instant` and
//! every call takes `now`.

use md5::Md5;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use thiserror::Error;

use super::params::{quote, split_list, unquote};

/// The digest algorithms we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// The name as written in the `algorithm` parameter.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Parses an `algorithm` value, case-insensitively. The session
    /// variants (`MD5-sess`, `SHA-256-sess`) and anything else are refused.
    pub fn parse(name: &str) -> Result<Algorithm, DigestError> {
        if name.eq_ignore_ascii_case("MD5") {
            Ok(Algorithm::Md5)
        } else if name.eq_ignore_ascii_case("SHA-256") {
            Ok(Algorithm::Sha256)
        } else {
            Err(DigestError::UnsupportedAlgorithm(name.to_string()))
        }
    }

    /// Lowercase hex of the hash of `data`.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => to_hex(&Md5::digest(data)),
            Algorithm::Sha256 => to_hex(&Sha256::digest(data)),
        }
    }
}

/// Quality of protection. Only `auth` is supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    Auth,
}

impl Qop {
    pub fn as_str(self) -> &'static str {
        "auth"
    }
}

/// Why an `Authorization` value was not usable.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DigestError {
    #[error("authorization scheme is not Digest")]
    NotDigest,
    #[error("malformed digest parameters: {0}")]
    Syntax(&'static str),
    #[error("missing digest parameter {0}")]
    Missing(&'static str),
    #[error("digest parameter {0} given twice")]
    Duplicate(String),
    #[error("unsupported digest algorithm {0}")]
    UnsupportedAlgorithm(String),
    #[error("unsupported qop {0}")]
    UnsupportedQop(String),
    #[error("unsupported digest parameter {0}")]
    Unsupported(&'static str),
    #[error("nonce count is not 8 hex digits")]
    BadNonceCount,
}

/// H(username ":" realm ":" password), lowercase hex.
pub fn ha1(alg: Algorithm, user: &str, realm: &str, password: &str) -> String {
    alg.hex(format!("{user}:{realm}:{password}").as_bytes())
}

/// The `response` value (RFC 7616 §3.4.1): with `qop=auth`
/// KD(HA1, nonce:nc:cnonce:qop:HA2), without qop (RFC 2069)
/// KD(HA1, nonce:HA2), where HA2 = H(method:uri). `nc` and `cnonce` are
/// only used with a qop.
// The arguments are the RFC's formula, in its order.
#[allow(clippy::too_many_arguments)]
pub fn response(
    alg: Algorithm,
    ha1: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
    qop: Option<Qop>,
    method: &str,
    uri: &str,
) -> String {
    let ha2 = alg.hex(format!("{method}:{uri}").as_bytes());
    let data = match qop {
        Some(q) => format!("{ha1}:{nonce}:{nc}:{cnonce}:{}:{ha2}", q.as_str()),
        None => format!("{ha1}:{nonce}:{ha2}"),
    };
    alg.hex(data.as_bytes())
}

/// A parsed `Authorization: Digest ...` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    /// As sent (the registrar compares it case-insensitively).
    pub response: String,
    /// MD5 when the parameter is absent (RFC 7616 §3.4).
    pub algorithm: Algorithm,
    pub cnonce: Option<String>,
    pub qop: Option<Qop>,
    /// Exactly 8 hex digits, as sent (it enters the hash verbatim).
    pub nc: Option<String>,
    pub opaque: Option<String>,
}

impl DigestCredentials {
    /// Parses the header value. Parameter names are case-insensitive,
    /// values quoted or bare; unknown parameters are ignored. With a qop,
    /// `cnonce` and `nc` are required.
    pub fn parse(value: &str) -> Result<DigestCredentials, DigestError> {
        let mut fields: [Option<String>; 10] = Default::default();
        for (name, val) in auth_params(value)? {
            let slot = match name.to_ascii_lowercase().as_str() {
                "username" => 0,
                "realm" => 1,
                "nonce" => 2,
                "uri" => 3,
                "response" => 4,
                "algorithm" => 5,
                "cnonce" => 6,
                "qop" => 7,
                "nc" => 8,
                "opaque" => 9,
                "username*" => return Err(DigestError::Unsupported("username*")),
                "userhash" if val.eq_ignore_ascii_case("true") => {
                    return Err(DigestError::Unsupported("userhash"))
                }
                _ => continue,
            };
            if fields[slot].is_some() {
                return Err(DigestError::Duplicate(name));
            }
            fields[slot] = Some(val);
        }
        let [username, realm, nonce, uri, response, algorithm, cnonce, qop, nc, opaque] = fields;
        let algorithm = match algorithm {
            Some(a) => Algorithm::parse(&a)?,
            None => Algorithm::Md5,
        };
        let qop = match qop {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => Some(Qop::Auth),
            Some(q) => return Err(DigestError::UnsupportedQop(q)),
        };
        if qop.is_some() {
            if cnonce.is_none() {
                return Err(DigestError::Missing("cnonce"));
            }
            match &nc {
                None => return Err(DigestError::Missing("nc")),
                Some(n) if n.len() != 8 || !n.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    return Err(DigestError::BadNonceCount)
                }
                Some(_) => {}
            }
        }
        Ok(DigestCredentials {
            username: username.ok_or(DigestError::Missing("username"))?,
            realm: realm.ok_or(DigestError::Missing("realm"))?,
            nonce: nonce.ok_or(DigestError::Missing("nonce"))?,
            uri: uri.ok_or(DigestError::Missing("uri"))?,
            response: response.ok_or(DigestError::Missing("response"))?,
            algorithm,
            cnonce,
            qop,
            nc,
            opaque,
        })
    }

    /// The nonce count as a number (when a qop was given).
    pub fn nonce_count(&self) -> Option<u32> {
        self.nc
            .as_deref()
            .and_then(|n| u32::from_str_radix(n, 16).ok())
    }

    /// The response these credentials should carry, given the user's HA1
    /// for `self.algorithm` and the request's method.
    pub fn expected_response(&self, ha1: &str, method: &str) -> String {
        response(
            self.algorithm,
            ha1,
            &self.nonce,
            self.nc.as_deref().unwrap_or_default(),
            self.cnonce.as_deref().unwrap_or_default(),
            self.qop,
            method,
            &self.uri,
        )
    }

    /// The header value a client sends (every value quoted except
    /// `algorithm`, `qop` and `nc`, as RFC 7616 §3.4 writes them).
    pub fn to_header(&self) -> String {
        let mut out = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response={}, algorithm={}",
            quote(&self.username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(&self.uri),
            quote(&self.response),
            self.algorithm.name()
        );
        if let (Some(q), Some(nc), Some(cnonce)) = (self.qop, &self.nc, &self.cnonce) {
            let _ = write!(
                out,
                ", qop={}, nc={nc}, cnonce={}",
                q.as_str(),
                quote(cnonce)
            );
        }
        if let Some(opaque) = &self.opaque {
            let _ = write!(out, ", opaque={}", quote(opaque));
        }
        out
    }

    /// Whether `self.response` matches, compared in constant time and
    /// case-insensitively (the value is hex).
    pub fn verify(&self, ha1: &str, method: &str) -> bool {
        let expected = self.expected_response(ha1, method);
        let given = self.response.to_ascii_lowercase();
        constant_time_eq(expected.as_bytes(), given.as_bytes())
    }
}

/// The parameters of a `Digest` credentials or challenge value, in order:
/// `name=value, name="quoted, value"` pairs with quoted strings unescaped
/// and empty list elements skipped (RFC 9110 §5.6.1).
pub fn auth_params(value: &str) -> Result<Vec<(String, String)>, DigestError> {
    let value = value.trim();
    let (scheme, rest) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest);
    }
    parse_params(rest)
}

fn parse_params(input: &str) -> Result<Vec<(String, String)>, DigestError> {
    let mut out = Vec::new();
    for item in split_list(input) {
        let (name, value) = item
            .split_once('=')
            .ok_or(DigestError::Syntax("expected '='"))?;
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(DigestError::Syntax("expected a parameter name"));
        }
        let value = if value.starts_with('"') {
            unquote(value).ok_or(DigestError::Syntax("malformed quoted string"))?
        } else if value.is_empty() {
            return Err(DigestError::Syntax("empty parameter value"));
        } else if !value.bytes().all(is_token_byte) {
            return Err(DigestError::Syntax("expected ','"));
        } else {
            value.to_string()
        };
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// RFC 9110 tchar, plus '/' and ':' which bare nonces and URIs carry in
/// the wild.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:@".contains(&b)
}

/// A `WWW-Authenticate` value: `Digest realm="..", nonce="..",
/// algorithm=.., qop="auth"` with `, stale=true` when asked.
pub fn challenge(alg: Algorithm, realm: &str, nonce: &str, stale: bool) -> String {
    let mut out = format!(
        "Digest realm={}, nonce={}, algorithm={}, qop=\"auth\"",
        quote(realm),
        quote(nonce),
        alg.name()
    );
    if stale {
        out.push_str(", stale=true");
    }
    out
}

/// A `WWW-Authenticate` or `Proxy-Authenticate` value as a client reads
/// it, to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    /// MD5 when the parameter is absent (RFC 7616 §3.3).
    pub algorithm: Algorithm,
    /// `auth` when the server offers it; `None` when it offers no qop, and
    /// the answer takes the RFC 2069 form.
    pub qop: Option<Qop>,
    /// Echoed in the answer.
    pub opaque: Option<String>,
    /// The previous answer was right but its nonce too old: answering again
    /// with the same password is expected to work.
    pub stale: bool,
}

/// What a client proves itself with: the password, or the HA1 for the
/// challenge's realm and algorithm (lower- or uppercase hex).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret<'a> {
    Password(&'a str),
    Ha1(&'a str),
}

impl Challenge {
    /// Parses a challenge. A qop list without `auth` (only `auth-int`),
    /// a `-sess` or unknown algorithm, or a missing realm or nonce is an
    /// error: no answer of ours would be accepted.
    pub fn parse(value: &str) -> Result<Challenge, DigestError> {
        let mut fields: [Option<String>; 6] = Default::default();
        for (name, val) in auth_params(value)? {
            let slot = match name.to_ascii_lowercase().as_str() {
                "realm" => 0,
                "nonce" => 1,
                "algorithm" => 2,
                "qop" => 3,
                "opaque" => 4,
                "stale" => 5,
                _ => continue,
            };
            if fields[slot].is_some() {
                return Err(DigestError::Duplicate(name));
            }
            fields[slot] = Some(val);
        }
        let [realm, nonce, algorithm, qop, opaque, stale] = fields;
        let offers_auth = |list: &str| {
            list.split(',')
                .any(|q| q.trim().eq_ignore_ascii_case("auth"))
        };
        let qop = match qop {
            None => None,
            Some(list) if offers_auth(&list) => Some(Qop::Auth),
            Some(list) => return Err(DigestError::UnsupportedQop(list)),
        };
        Ok(Challenge {
            realm: realm.ok_or(DigestError::Missing("realm"))?,
            nonce: nonce.ok_or(DigestError::Missing("nonce"))?,
            algorithm: match algorithm {
                Some(a) => Algorithm::parse(&a)?,
                None => Algorithm::Md5,
            },
            qop,
            opaque,
            stale: stale.is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The first of a response's challenges (in header order) that we can
    /// answer: RFC 8760 §2.4 has the client take the topmost it supports,
    /// the server listing its preferred algorithm first.
    pub fn first_supported<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
        values.into_iter().find_map(|v| Challenge::parse(v).ok())
    }

    /// The credentials answering this challenge for a request `method` to
    /// `uri`. `cnonce` and the nonce count `nc` (1 for a nonce's first use,
    /// then one more per request) are only used with a qop.
    pub fn answer(
        &self,
        username: &str,
        secret: Secret<'_>,
        method: &str,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> DigestCredentials {
        let ha1 = match secret {
            Secret::Password(p) => ha1(self.algorithm, username, &self.realm, p),
            // The HA1 enters the hash as text: its case matters.
            Secret::Ha1(h) => h.trim().to_ascii_lowercase(),
        };
        let (nc, cnonce) = match self.qop {
            Some(_) => (Some(format!("{nc:08x}")), Some(cnonce.to_string())),
            None => (None, None),
        };
        let mut creds = DigestCredentials {
            username: username.to_string(),
            realm: self.realm.clone(),
            nonce: self.nonce.clone(),
            uri: uri.to_string(),
            response: String::new(),
            algorithm: self.algorithm,
            cnonce,
            qop: self.qop,
            nc,
            opaque: self.opaque.clone(),
        };
        creds.response = creds.expected_response(&ha1, method);
        creds
    }
}

/// The `Authorization` value answering the `WWW-Authenticate` of a 401, or
/// equally the `Proxy-Authorization` value answering the
/// `Proxy-Authenticate` of a 407 (see [`answer_header`]).
pub fn authorization(
    challenge: &str,
    method: &str,
    uri: &str,
    username: &str,
    secret: Secret<'_>,
    cnonce: &str,
    nc: u32,
) -> Result<String, DigestError> {
    let challenge = Challenge::parse(challenge)?;
    Ok(challenge
        .answer(username, secret, method, uri, cnonce, nc)
        .to_header())
}

/// The header that carries the answer to a challenge in a response with
/// this status: a 401's WWW-Authenticate is answered in Authorization, a
/// 407's Proxy-Authenticate in Proxy-Authorization.
pub fn answer_header(status: u16) -> Option<&'static str> {
    match status {
        401 => Some("Authorization"),
        407 => Some("Proxy-Authorization"),
        _ => None,
    }
}

/// What a nonce turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours and fresh; it stops being valid at `expires_at`.
    Valid { expires_at: Instant },
    /// Ours but older than the TTL.
    Stale,
    /// Not ours: malformed, forged, from the future, or from before a
    /// restart (a new secret).
    Invalid,
}

/// Issues and checks stateless nonces:
/// `<ms since start, hex>.<sequence, hex>.<first 128 bits of
/// SHA-256(secret || "ms.seq"), hex>`.
#[derive(Clone)]
pub struct NonceSource {
    start: Instant,
    secret: [u8; 32],
    sequence: u64,
}

impl std::fmt::Debug for NonceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceSource")
            .field("start", &self.start)
            .finish_non_exhaustive()
    }
}

impl NonceSource {
    pub fn new(start: Instant, secret: [u8; 32]) -> Self {
        NonceSource {
            start,
            secret,
            sequence: 0,
        }
    }

    /// A new nonce issued at `now`; the sequence makes two issued in the
    /// same millisecond differ.
    pub fn issue(&mut self, now: Instant) -> String {
        let ms = now.saturating_duration_since(self.start).as_millis() as u64;
        self.sequence = self.sequence.wrapping_add(1);
        let body = format!("{ms:x}.{:x}", self.sequence);
        let tag = self.tag(&body);
        format!("{body}.{tag}")
    }

    /// Checks a nonce we may have issued: valid for `ttl` after issue.
    pub fn check(&self, nonce: &str, now: Instant, ttl: Duration) -> NonceCheck {
        let Some((body, tag)) = nonce.rsplit_once('.') else {
            return NonceCheck::Invalid;
        };
        if !constant_time_eq(self.tag(body).as_bytes(), tag.as_bytes()) {
            return NonceCheck::Invalid;
        }
        let Some(ms) = body
            .split_once('.')
            .and_then(|(ms, _)| u64::from_str_radix(ms, 16).ok())
        else {
            return NonceCheck::Invalid;
        };
        let Some(issued) = self.start.checked_add(Duration::from_millis(ms)) else {
            return NonceCheck::Invalid;
        };
        if issued > now {
            return NonceCheck::Invalid;
        }
        let Some(expires_at) = issued.checked_add(ttl) else {
            // A TTL beyond the clock's range never runs out.
            return NonceCheck::Valid { expires_at: now };
        };
        if now >= expires_at {
            NonceCheck::Stale
        } else {
            NonceCheck::Valid { expires_at }
        }
    }

    fn tag(&self, body: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(body.as_bytes());
        to_hex(&h.finalize()[..16])
    }
}

fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Equality whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_md5_example() {
        let h = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let r = response(
            Algorithm::Md5,
            &h,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "00000001",
            "0a4f113b",
            Some(Qop::Auth),
            "GET",
            "/dir/index.html",
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    const RFC7616: &str = "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
        uri=\"/dir/index.html\", algorithm=SHA-256, \
        nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, \
        cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, \
        response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\", \
        opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";

    #[test]
    fn rfc7616_sha256_example() {
        let h = ha1(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        let r = response(
            Algorithm::Sha256,
            &h,
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            "00000001",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            Some(Qop::Auth),
            "GET",
            "/dir/index.html",
        );
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        // The same exchange through the parser and verifier.
        let c = DigestCredentials::parse(RFC7616).expect("parses");
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.nonce_count(), Some(1));
        assert!(c.verify(&h, "GET"));
        assert!(!c.verify(&h, "POST"));
        // What a client writes parses back to the same credentials.
        assert_eq!(DigestCredentials::parse(&c.to_header()), Ok(c.clone()));
        // RFC 7616's MD5 variant of the same example.
        let md5 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        let c = DigestCredentials {
            algorithm: Algorithm::Md5,
            ..c
        };
        assert_eq!(
            c.expected_response(&md5, "GET"),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn no_qop_is_rfc2069() {
        let h = ha1(Algorithm::Md5, "u", "r", "p");
        let ha2 = Algorithm::Md5.hex(b"REGISTER:sip:r");
        let want = Algorithm::Md5.hex(format!("{h}:n:{ha2}").as_bytes());
        let got = response(Algorithm::Md5, &h, "n", "", "", None, "REGISTER", "sip:r");
        assert_eq!(got, want);
        let c = DigestCredentials::parse(&format!(
            "Digest username=\"u\",realm=\"r\",nonce=\"n\",uri=\"sip:r\",response=\"{}\"",
            want.to_uppercase()
        ))
        .expect("parses");
        assert_eq!(
            (c.algorithm, c.qop, c.nc.as_deref()),
            (Algorithm::Md5, None, None)
        );
        assert!(c.verify(&h, "REGISTER"));
    }

    #[test]
    fn parser_quoting_case_and_commas() {
        let c = DigestCredentials::parse(
            "digest  USERNAME = \"a,b\\\"c\" ,, Realm=\"x, y\", nonce=abc/def, uri=\"sip:h\", \
             response=\"00\", Algorithm=sha-256, QOP=\"auth\", NC=0000000a, cnonce=\"z\", extra=1",
        )
        .expect("parses");
        assert_eq!(c.username, "a,b\"c");
        assert_eq!(c.realm, "x, y");
        assert_eq!(c.nonce, "abc/def");
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.qop, Some(Qop::Auth));
        assert_eq!(c.nonce_count(), Some(10));
        assert_eq!(c.opaque, None);
    }

    #[test]
    fn parser_errors_are_typed() {
        let base = "username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"0\"";
        let p = |s: &str| DigestCredentials::parse(s);
        assert_eq!(p("Basic dXNlcjpwYXNz"), Err(DigestError::NotDigest));
        assert_eq!(p(""), Err(DigestError::NotDigest));
        assert_eq!(
            p("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x\""),
            Err(DigestError::Missing("response"))
        );
        assert_eq!(
            p(&format!("Digest {base}, algorithm=MD5-sess")),
            Err(DigestError::UnsupportedAlgorithm("MD5-sess".into()))
        );
        assert_eq!(
            p(&format!(
                "Digest {base}, qop=auth-int, nc=00000001, cnonce=c"
            )),
            Err(DigestError::UnsupportedQop("auth-int".into()))
        );
        assert_eq!(
            p(&format!("Digest {base}, qop=auth, nc=00000001")),
            Err(DigestError::Missing("cnonce"))
        );
        assert_eq!(
            p(&format!("Digest {base}, qop=auth, nc=1, cnonce=c")),
            Err(DigestError::BadNonceCount)
        );
        assert_eq!(
            p(&format!("Digest {base}, Realm=\"r2\"")),
            Err(DigestError::Duplicate("Realm".into()))
        );
        assert_eq!(
            p(&format!("Digest {base}, userhash=true")),
            Err(DigestError::Unsupported("userhash"))
        );
        assert!(matches!(
            p("Digest username=\"u"),
            Err(DigestError::Syntax(_))
        ));
        assert!(matches!(p("Digest username"), Err(DigestError::Syntax(_))));
        assert!(matches!(p("Digest a=b c=d"), Err(DigestError::Syntax(_))));
        assert!(matches!(p("Digest =b"), Err(DigestError::Syntax(_))));
        for junk in ["Digest \"", "Digest a=\"\\", "Digest ,,,", "Digest a=,"] {
            let _ = p(junk);
        }
    }

    #[test]
    fn challenge_format() {
        assert_eq!(
            challenge(Algorithm::Sha256, "hotline", "abc", false),
            "Digest realm=\"hotline\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\""
        );
        assert_eq!(
            challenge(Algorithm::Md5, "a\"b", "n", true),
            "Digest realm=\"a\\\"b\", nonce=\"n\", algorithm=MD5, qop=\"auth\", stale=true"
        );
    }

    #[test]
    fn client_answers_rfc2617_example() {
        let challenge = "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
            nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
            opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
        let answer = authorization(
            challenge,
            "GET",
            "/dir/index.html",
            "Mufasa",
            Secret::Password("Circle Of Life"),
            "0a4f113b",
            1,
        );
        assert_eq!(
            answer.as_deref(),
            Ok("Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
                nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
                response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, qop=auth, \
                nc=00000001, cnonce=\"0a4f113b\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"")
        );
    }

    #[test]
    fn client_answers_rfc7616_example_with_either_algorithm() {
        // RFC 7616 §3.9.1: the server offers SHA-256 first, then MD5.
        let offer = |alg: &str| {
            format!(
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
                 algorithm={alg}, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                 opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            )
        };
        let (sha, md5) = (offer("SHA-256"), offer("MD5"));
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let chosen = Challenge::first_supported([offer("SHA-256-sess").as_str(), &sha, &md5])
            .expect("one is supported");
        assert_eq!(chosen.algorithm, Algorithm::Sha256);
        assert_eq!(chosen.qop, Some(Qop::Auth));
        let password = Secret::Password("Circle of Life");
        let c = chosen.answer("Mufasa", password, "GET", "/dir/index.html", cnonce, 1);
        assert_eq!(
            c.response,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert_eq!(DigestCredentials::parse(RFC7616), Ok(c));
        // MD5, from the HA1 (in uppercase, as a config may hold it).
        let md5_ha1 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        )
        .to_uppercase();
        let header = authorization(
            &md5,
            "GET",
            "/dir/index.html",
            "Mufasa",
            Secret::Ha1(&md5_ha1),
            cnonce,
            1,
        )
        .expect("answers");
        let c = DigestCredentials::parse(&header).expect("parses");
        assert_eq!(c.response, "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(
            c.opaque.as_deref(),
            Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
        );
    }

    #[test]
    fn client_answers_without_qop_in_the_rfc2069_form() {
        let challenge = "Digest realm=\"trunk\", nonce=\"n1\", algorithm=SHA-256, stale=TRUE";
        let parsed = Challenge::parse(challenge).expect("parses");
        assert!(parsed.stale && parsed.qop.is_none());
        let header = authorization(
            challenge,
            "INVITE",
            "sip:4000@trunk.example",
            "hotline",
            Secret::Password("pw"),
            "ignored",
            7,
        )
        .expect("answers");
        assert!(!header.contains("qop=") && !header.contains("nc=") && !header.contains("cnonce="));
        let h = ha1(Algorithm::Sha256, "hotline", "trunk", "pw");
        let ha2 = Algorithm::Sha256.hex(b"INVITE:sip:4000@trunk.example");
        let want = Algorithm::Sha256.hex(format!("{h}:n1:{ha2}").as_bytes());
        let c = DigestCredentials::parse(&header).expect("parses");
        assert_eq!(c.response, want);
        // What the registrar side checks accepts it.
        assert!(c.verify(&h, "INVITE"));
    }

    #[test]
    fn client_refuses_challenges_it_cannot_answer() {
        let p = Challenge::parse;
        assert_eq!(
            p("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""),
            Err(DigestError::UnsupportedQop("auth-int".into()))
        );
        assert_eq!(
            p("Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess"),
            Err(DigestError::UnsupportedAlgorithm("MD5-sess".into()))
        );
        assert_eq!(p("Digest realm=\"r\""), Err(DigestError::Missing("nonce")));
        assert_eq!(p("Basic realm=\"r\""), Err(DigestError::NotDigest));
        assert_eq!(Challenge::first_supported(["Basic realm=\"r\""]), None);
        assert_eq!(answer_header(401), Some("Authorization"));
        assert_eq!(answer_header(407), Some("Proxy-Authorization"));
        assert_eq!(answer_header(403), None);
    }

    #[test]
    fn nonces_verify_without_storage_and_expire() {
        let t0 = crate::time::test_epoch();
        let ttl = Duration::from_secs(300);
        let mut src = NonceSource::new(t0, [7; 32]);
        let at = t0 + Duration::from_millis(1500);
        let n1 = src.issue(at);
        let n2 = src.issue(at);
        assert_ne!(n1, n2);
        assert_eq!(
            src.check(&n1, at + ttl - Duration::from_millis(1), ttl),
            NonceCheck::Valid {
                expires_at: at + ttl
            }
        );
        assert_eq!(src.check(&n1, at + ttl, ttl), NonceCheck::Stale);
        // From the future, tampered, foreign secret, garbage.
        assert_eq!(src.check(&n1, t0, ttl), NonceCheck::Invalid);
        let forged = n1.replacen("5dc", "5dd", 1);
        assert_eq!(src.check(&forged, at, ttl), NonceCheck::Invalid);
        let other = NonceSource::new(t0, [8; 32]);
        assert_eq!(other.check(&n1, at, ttl), NonceCheck::Invalid);
        for junk in ["", ".", "..", "zz.1.00", "x"] {
            assert_eq!(src.check(junk, at, ttl), NonceCheck::Invalid);
        }
    }
}
