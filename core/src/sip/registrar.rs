//! The registrar agents' softphones register with (RFC 3261 §10.3), with
//! Digest authentication (RFC 3261 §22, RFC 7616, RFC 8760 for SHA-256).
//!
//! A pure state machine: every input carries `now`; it answers REGISTERs,
//! expires bindings on [`Registrar::handle_timeout`] and queues
//! [`RegistrarEvent`]s for the engine. Passwords are known only as HA1s.
//!
//! Authentication, in order:
//! - a source IP (an IPv6 /64) banned for repeated failures gets 403 with
//!   Retry-After, without a challenge;
//! - no usable `Authorization` gets 401 with one challenge per algorithm
//!   the user has an HA1 for (SHA-256 first; both for unknown users, so the
//!   first answer does not tell which users exist);
//! - realm, digest-uri (the Request-URI's resource, compared as RFC 3261
//!   compares URIs but with the default port equal to none: see
//!   [`crate::sip::uri`]) and username (the To user) must match, the user
//!   must exist and the response must be right, else 403, which counts
//!   towards the ban;
//! - a right response on a nonce that is stale or not ours (a restart) gets
//!   401 `stale=true`, so phones re-authenticate without asking the agent;
//! - a nonce count not above the highest seen for that nonce is a replay:
//!   403 (not counted: it guesses no password).
//!
//! A REGISTER's Path (RFC 3327: the proxies between the phone and us) is
//! kept with each of its bindings as the Route set for requests to it, and
//! echoed in the 200 when the phone said `Supported: path`.

use crate::sip::digest::{self, Algorithm, DigestCredentials, NonceCheck, NonceSource};
use crate::sip::message::{uri_user, SipRequest};
use crate::sip::params::{header_param, name_addr_uri};
use crate::sip::transport::Transport;
use crate::sip::uri;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Nonces whose highest nonce count is remembered, at most.
const MAX_NONCE_COUNTS: usize = 16_384;
/// Source addresses whose failures are counted, at most.
const MAX_FAILURE_RECORDS: usize = 65_536;

/// One agent's login. Passwords are configured only as HA1 (lowercase or
/// uppercase hex of H(user:realm:password)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub ha1_md5: Option<String>,
    pub ha1_sha256: Option<String>,
}

impl Credentials {
    /// Both HA1s from a clear password (for tools and tests).
    pub fn from_password(user: &str, realm: &str, password: &str) -> Self {
        Credentials {
            user: user.to_string(),
            ha1_md5: Some(digest::ha1(Algorithm::Md5, user, realm, password)),
            ha1_sha256: Some(digest::ha1(Algorithm::Sha256, user, realm, password)),
        }
    }

    fn ha1(&self, alg: Algorithm) -> Option<&str> {
        match alg {
            Algorithm::Md5 => self.ha1_md5.as_deref(),
            Algorithm::Sha256 => self.ha1_sha256.as_deref(),
        }
    }

    /// The algorithms to challenge with, in `order`, among those the user
    /// has an HA1 for.
    fn algorithms(&self, order: &[Algorithm]) -> Vec<Algorithm> {
        order
            .iter()
            .copied()
            .filter(|&a| self.ha1(a).is_some())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarSettings {
    pub realm: String,
    pub nonce_ttl: Duration,
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_auth_failures: u32,
    pub failure_window: Duration,
    pub ban: Duration,
    pub max_contacts_per_user: usize,
    /// Challenge algorithms, most preferred first (RFC 8760). Some clients
    /// (SIPp among them) answer only the first challenge.
    pub algorithms: Vec<Algorithm>,
    /// Proxies in front of the registrar (the trunk allow-list): a
    /// REGISTER from one with a Path whose `received` names the phone
    /// counts failures and bans by the phone's address, not the proxy's,
    /// so one wrong password does not lock out every phone behind it.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for RegistrarSettings {
    fn default() -> Self {
        RegistrarSettings {
            realm: "hotline".into(),
            nonce_ttl: Duration::from_secs(300),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_auth_failures: 5,
            failure_window: Duration::from_secs(60),
            ban: Duration::from_secs(300),
            max_contacts_per_user: 5,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            trusted_proxies: Vec::new(),
        }
    }
}

/// A registered contact of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub user: String,
    /// The URI inside the Contact's `<>`.
    pub contact: String,
    pub source: SocketAddr,
    /// How the phone registered: it is rung the same way, over the same
    /// TCP or TLS connection (`conn`).
    pub transport: Transport,
    pub conn: u64,
    pub expires_at: Instant,
    pub call_id: String,
    pub cseq: u32,
    /// When the binding was last (re)registered.
    pub registered_at: Instant,
    /// The REGISTER's Path values in order (RFC 3327), replaced by each
    /// refresh: the Route set, as header values, of every request to
    /// `contact`, so that it goes through the proxy the phone registered
    /// through. Empty when the phone registered directly.
    pub path: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrarEvent {
    /// A new binding (refreshes of an existing one are silent).
    Registered { user: String, contact: String },
    /// A binding went away: `expired` when its time ran out, otherwise it
    /// was removed (Expires 0, `*`, displaced by a newer contact over the
    /// limit, or the user left the configuration).
    Unregistered {
        user: String,
        contact: String,
        expired: bool,
    },
}

/// What to answer a REGISTER with: status, reason and the headers beyond
/// the ones every response carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterReply {
    pub status: u16,
    pub reason: &'static str,
    pub headers: Vec<(String, String)>,
}

impl RegisterReply {
    fn new(status: u16, reason: &'static str) -> Self {
        RegisterReply {
            status,
            reason,
            headers: Vec::new(),
        }
    }

    fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Values of the headers called `name` (case-insensitive), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Where a REGISTER came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub addr: SocketAddr,
    pub transport: Transport,
    pub conn: u64,
}

#[derive(Debug, Clone, Copy)]
struct FailureRecord {
    count: u32,
    window_start: Instant,
    banned_until: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct NonceCount {
    highest: u32,
    expires_at: Instant,
}

/// The outcome of checking a request's credentials.
enum Auth {
    Ok,
    Challenge { stale: bool },
    Forbidden { counts: bool },
}

#[derive(Debug)]
pub struct Registrar {
    settings: RegistrarSettings,
    credentials: HashMap<String, Credentials>,
    nonces: NonceSource,
    /// Per user, oldest (least recently registered) first.
    bindings: HashMap<String, Vec<Binding>>,
    /// Phones registered through other nodes sharing the store, per user
    /// (docs/cluster.md): rung like local ones, never answered for here.
    remote: HashMap<String, Vec<Binding>>,
    events: VecDeque<RegistrarEvent>,
    failures: HashMap<IpAddr, FailureRecord>,
    nonce_counts: HashMap<String, NonceCount>,
}

impl Registrar {
    /// New settings and passwords from a reloaded config; bindings stay.
    /// An agent whose credentials are gone can no longer refresh.
    pub fn reconfigure(&mut self, settings: RegistrarSettings, credentials: Vec<Credentials>) {
        self.settings = settings;
        self.credentials = credential_map(credentials);
    }

    /// `secret` keys the nonces; a fresh random one per process means a
    /// restart turns old nonces stale, which phones handle silently.
    pub fn new(
        now: Instant,
        settings: RegistrarSettings,
        credentials: Vec<Credentials>,
        secret: [u8; 32],
    ) -> Self {
        Registrar {
            settings,
            credentials: credential_map(credentials),
            nonces: NonceSource::new(now, secret),
            bindings: HashMap::new(),
            remote: HashMap::new(),
            events: VecDeque::new(),
            failures: HashMap::new(),
            nonce_counts: HashMap::new(),
        }
    }

    pub fn settings(&self) -> &RegistrarSettings {
        &self.settings
    }

    /// Handles one REGISTER (method already checked). Returns what to answer.
    pub fn handle_register(
        &mut self,
        now: Instant,
        source: Source,
        req: &SipRequest,
    ) -> RegisterReply {
        self.expire(now);
        let key = throttle_key(self.phone_address(source.addr.ip(), req));
        if let Some(until) = self.banned_until(key, now) {
            return RegisterReply::new(403, "Forbidden")
                .with("Retry-After", ceil_secs(until - now).to_string());
        }
        let aor = uri_user(name_addr_uri(&req.to)).to_string();
        match self.authenticate(now, req, &aor) {
            Auth::Ok => self.update_bindings(now, source, req, &aor),
            Auth::Challenge { stale } => self.challenge(now, &aor, stale),
            Auth::Forbidden { counts } => {
                if counts {
                    self.record_failure(key, now);
                }
                RegisterReply::new(403, "Forbidden")
            }
        }
    }

    /// Expires bindings due at `now` and forgets old failure counts and
    /// nonce counts.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire(now);
        let window = self.settings.failure_window;
        self.failures
            .retain(|_, r| failure_deadline(r, window) > now);
        self.nonce_counts.retain(|_, c| c.expires_at > now);
    }

    /// When a binding expires or a failure record can be forgotten.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let window = self.settings.failure_window;
        let bindings = self
            .bindings
            .values()
            .chain(self.remote.values())
            .flatten()
            .map(|b| b.expires_at);
        let failures = self.failures.values().map(|r| failure_deadline(r, window));
        bindings.chain(failures).min()
    }

    pub fn poll_event(&mut self) -> Option<RegistrarEvent> {
        self.events.pop_front()
    }

    /// The user's bindings, most recently registered first, then those
    /// registered through other nodes.
    pub fn bindings(&self, user: &str) -> Vec<&Binding> {
        let mut all = self.local_bindings(user);
        if let Some(remote) = self.remote.get(user) {
            all.extend(remote.iter());
        }
        all
    }

    /// The user's bindings registered here, most recent first.
    pub fn local_bindings(&self, user: &str) -> Vec<&Binding> {
        self.bindings
            .get(user)
            .map(|v| v.iter().rev().collect())
            .unwrap_or_default()
    }

    pub fn is_registered(&self, user: &str) -> bool {
        self.bindings.get(user).is_some_and(|v| !v.is_empty())
            || self.remote.get(user).is_some_and(|v| !v.is_empty())
    }

    /// The user's phones registered through other nodes now (replacing
    /// those known before). `Registered` or `Unregistered` follows when
    /// that makes the user reachable or not.
    pub fn set_remote(&mut self, user: &str, bindings: Vec<Binding>) {
        let was = self.is_registered(user);
        let contact = bindings
            .first()
            .or_else(|| self.remote.get(user).and_then(|v| v.first()))
            .map(|b| b.contact.clone())
            .unwrap_or_default();
        if bindings.is_empty() {
            self.remote.remove(user);
        } else {
            self.remote.insert(user.to_string(), bindings);
        }
        match (was, self.is_registered(user)) {
            (false, true) => self.events.push_back(RegistrarEvent::Registered {
                user: user.to_string(),
                contact,
            }),
            (true, false) => self.events.push_back(RegistrarEvent::Unregistered {
                user: user.to_string(),
                contact,
                expired: false,
            }),
            _ => {}
        }
    }

    /// Config reload: new HA1s apply to the next REGISTER; users no longer
    /// configured lose their bindings now (`Unregistered`, not expired).
    pub fn replace_credentials(&mut self, credentials: Vec<Credentials>) {
        self.credentials = credential_map(credentials);
        let gone: Vec<String> = self
            .bindings
            .keys()
            .filter(|u| !self.credentials.contains_key(*u))
            .cloned()
            .collect();
        for user in gone {
            for b in self.bindings.remove(&user).unwrap_or_default() {
                self.unregistered(b, false);
            }
        }
    }

    fn authenticate(&mut self, now: Instant, req: &SipRequest, aor: &str) -> Auth {
        let Some(creds) = req
            .authorization
            .as_deref()
            .and_then(|v| DigestCredentials::parse(v).ok())
        else {
            return Auth::Challenge { stale: false };
        };
        if creds.realm != self.settings.realm
            || creds.username != aor
            || !uri::equivalent(&creds.uri, &req.uri)
        {
            return Auth::Forbidden { counts: true };
        }
        let Some(ha1) = self
            .credentials
            .get(aor)
            .and_then(|c| c.ha1(creds.algorithm))
        else {
            return Auth::Forbidden { counts: true };
        };
        if !creds.verify(ha1, req.method.as_str()) {
            return Auth::Forbidden { counts: true };
        }
        let expires_at = match self
            .nonces
            .check(&creds.nonce, now, self.settings.nonce_ttl)
        {
            NonceCheck::Valid { expires_at } => expires_at,
            NonceCheck::Stale | NonceCheck::Invalid => return Auth::Challenge { stale: true },
        };
        if let Some(nc) = creds.nonce_count() {
            if !self.note_nonce_count(now, &creds.nonce, nc, expires_at) {
                return Auth::Forbidden { counts: false };
            }
        }
        Auth::Ok
    }

    /// Records `nc` for `nonce`; false when it is not above the highest seen.
    fn note_nonce_count(
        &mut self,
        now: Instant,
        nonce: &str,
        nc: u32,
        expires_at: Instant,
    ) -> bool {
        if let Some(seen) = self.nonce_counts.get_mut(nonce) {
            if nc <= seen.highest {
                return false;
            }
            seen.highest = nc;
            return true;
        }
        if self.nonce_counts.len() >= MAX_NONCE_COUNTS {
            self.nonce_counts.retain(|_, c| c.expires_at > now);
        }
        if self.nonce_counts.len() >= MAX_NONCE_COUNTS {
            // Still full of live nonces: forget the one closest to stale.
            let oldest = self
                .nonce_counts
                .iter()
                .min_by_key(|(_, c)| c.expires_at)
                .map(|(n, _)| n.clone());
            if let Some(n) = oldest {
                self.nonce_counts.remove(&n);
            }
        }
        self.nonce_counts.insert(
            nonce.to_string(),
            NonceCount {
                highest: nc,
                expires_at,
            },
        );
        true
    }

    /// 401 with one challenge per algorithm, sharing one fresh nonce.
    fn challenge(&mut self, now: Instant, aor: &str, stale: bool) -> RegisterReply {
        let order = &self.settings.algorithms;
        let algorithms = match self.credentials.get(aor).map(|c| c.algorithms(order)) {
            Some(algs) if !algs.is_empty() => algs,
            _ => order.clone(),
        };
        let nonce = self.nonces.issue(now);
        algorithms
            .into_iter()
            .fold(RegisterReply::new(401, "Unauthorized"), |reply, alg| {
                let value = digest::challenge(alg, &self.settings.realm, &nonce, stale);
                reply.with("WWW-Authenticate", value)
            })
    }

    /// RFC 3261 §10.3 steps 5 to 8, for an authenticated request.
    fn update_bindings(
        &mut self,
        now: Instant,
        source: Source,
        req: &SipRequest,
        aor: &str,
    ) -> RegisterReply {
        if req.contacts.is_empty() {
            return self.ok(now, req, aor);
        }
        let header_expires = req.expires.as_deref().map(|v| self.parse_expires(v));
        if req.contacts.iter().any(|c| c.trim() == "*") {
            if req.contacts.len() != 1 || header_expires != Some(0) {
                return RegisterReply::new(400, "Bad Request");
            }
            if self.out_of_order(aor, req, |_| true) {
                return RegisterReply::new(500, "Server Internal Error");
            }
            for b in self.bindings.remove(aor).unwrap_or_default() {
                self.unregistered(b, false);
            }
            return self.ok(now, req, aor);
        }
        let mut wanted = Vec::with_capacity(req.contacts.len());
        for raw in &req.contacts {
            let uri = name_addr_uri(raw);
            if uri.is_empty() || !uri.contains(':') {
                return RegisterReply::new(400, "Bad Request");
            }
            let expires = header_param(raw, "expires")
                .map(|v| self.parse_expires(&v))
                .or(header_expires)
                .unwrap_or(u64::from(self.settings.default_expires));
            if expires > 0 && expires < u64::from(self.settings.min_expires) {
                return RegisterReply::new(423, "Interval Too Brief")
                    .with("Min-Expires", self.settings.min_expires.to_string());
            }
            let expires = expires.min(u64::from(self.settings.max_expires));
            wanted.push((uri.to_string(), expires));
        }
        if self.out_of_order(aor, req, |b| wanted.iter().any(|(u, _)| *u == b.contact)) {
            return RegisterReply::new(500, "Server Internal Error");
        }
        for (contact, expires) in wanted {
            self.apply(now, source, req, aor, contact, expires);
        }
        let limit = self.settings.max_contacts_per_user.max(1);
        let excess: Vec<Binding> = match self.bindings.get_mut(aor) {
            Some(list) if list.len() > limit => {
                let n = list.len() - limit;
                list.drain(..n).collect()
            }
            _ => Vec::new(),
        };
        for b in excess {
            self.unregistered(b, false);
        }
        self.ok(now, req, aor)
    }

    /// Step 7's check: a binding this request touches that was set by the
    /// same Call-ID with an equal or higher CSeq aborts the request.
    fn out_of_order(
        &self,
        aor: &str,
        req: &SipRequest,
        touches: impl Fn(&Binding) -> bool,
    ) -> bool {
        self.bindings.get(aor).is_some_and(|list| {
            list.iter()
                .any(|b| touches(b) && b.call_id == req.call_id && req.cseq <= b.cseq)
        })
    }

    /// Adds, refreshes or (expires 0) removes one binding.
    fn apply(
        &mut self,
        now: Instant,
        source: Source,
        req: &SipRequest,
        aor: &str,
        contact: String,
        expires: u64,
    ) {
        let list = self.bindings.entry(aor.to_string()).or_default();
        let existing = list
            .iter()
            .position(|b| b.contact == contact)
            .map(|i| list.remove(i));
        if expires == 0 {
            if list.is_empty() {
                self.bindings.remove(aor);
            }
            if let Some(b) = existing {
                self.unregistered(b, false);
            }
            return;
        }
        if existing.is_none() {
            self.events.push_back(RegistrarEvent::Registered {
                user: aor.to_string(),
                contact: contact.clone(),
            });
        }
        // Re-pushed at the end: the list stays ordered by last registration.
        list.push(Binding {
            user: aor.to_string(),
            contact,
            source: source.addr,
            transport: source.transport,
            conn: source.conn,
            expires_at: now + Duration::from_secs(expires),
            call_id: req.call_id.clone(),
            cseq: req.cseq,
            registered_at: now,
            path: req.path.clone(),
        });
    }

    /// 200 listing every current binding (step 8), with the request's
    /// Path when the phone supports it: RFC 3327 section 5.3 forbids
    /// echoing it to a phone that did not say `Supported: path`.
    fn ok(&self, now: Instant, req: &SipRequest, aor: &str) -> RegisterReply {
        let mut reply = RegisterReply::new(200, "OK");
        for b in self.bindings(aor) {
            let left = ceil_secs(b.expires_at.saturating_duration_since(now));
            reply = reply.with("Contact", format!("<{}>;expires={left}", b.contact));
        }
        if req.supports("path") {
            for hop in &req.path {
                reply = reply.with("Path", hop.as_str());
            }
        }
        reply
    }

    /// An expires value; malformed counts as the default (RFC 3261
    /// §20.19 says 3600), too large saturates (and is clamped later).
    fn parse_expires(&self, value: &str) -> u64 {
        let v = value.trim();
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return u64::from(self.settings.default_expires);
        }
        v.parse().unwrap_or(u64::MAX)
    }

    fn expire(&mut self, now: Instant) {
        let mut expired = Vec::new();
        self.bindings.retain(|_, list| {
            let (gone, kept): (Vec<_>, Vec<_>) = list.drain(..).partition(|b| b.expires_at <= now);
            expired.extend(gone);
            *list = kept;
            !list.is_empty()
        });
        self.remote.retain(|_, list| {
            let (gone, kept): (Vec<_>, Vec<_>) = list.drain(..).partition(|b| b.expires_at <= now);
            expired.extend(gone);
            *list = kept;
            !list.is_empty()
        });
        expired.sort_by_key(|b| b.expires_at);
        for b in expired {
            self.unregistered(b, true);
        }
    }

    fn unregistered(&mut self, b: Binding, expired: bool) {
        self.events.push_back(RegistrarEvent::Unregistered {
            user: b.user,
            contact: b.contact,
            expired,
        });
    }

    fn banned_until(&mut self, key: IpAddr, now: Instant) -> Option<Instant> {
        let until = self.failures.get(&key)?.banned_until?;
        if until > now {
            return Some(until);
        }
        self.failures.remove(&key);
        None
    }

    fn record_failure(&mut self, key: IpAddr, now: Instant) {
        let window = self.settings.failure_window;
        if !self.failures.contains_key(&key) && self.failures.len() >= MAX_FAILURE_RECORDS {
            self.failures
                .retain(|_, r| failure_deadline(r, window) > now);
            if self.failures.len() >= MAX_FAILURE_RECORDS {
                // Fail open rather than grow without bound.
                return;
            }
        }
        let fresh = FailureRecord {
            count: 0,
            window_start: now,
            banned_until: None,
        };
        let record = self.failures.entry(key).or_insert(fresh);
        if failure_deadline(record, window) <= now {
            *record = fresh;
        }
        record.count += 1;
        let max = self.settings.max_auth_failures;
        if max > 0 && record.count >= max {
            record.banned_until = Some(now + self.settings.ban);
        }
    }
}

fn credential_map(credentials: Vec<Credentials>) -> HashMap<String, Credentials> {
    credentials
        .into_iter()
        .map(|c| {
            let lower = |h: Option<String>| h.map(|h| h.trim().to_ascii_lowercase());
            let c = Credentials {
                user: c.user,
                ha1_md5: lower(c.ha1_md5),
                ha1_sha256: lower(c.ha1_sha256),
            };
            (c.user.clone(), c)
        })
        .collect()
}

/// When a failure record stops mattering: the end of its ban, or of its
/// counting window.
fn failure_deadline(r: &FailureRecord, window: Duration) -> Instant {
    r.banned_until.unwrap_or(r.window_start + window)
}

/// Failures are counted per IPv4 address and per IPv6 /64 (one site).
impl Registrar {
    /// The phone's own address: the source, or, through a trusted proxy,
    /// the `received` its Path entry carries (Kamailio's
    /// `add_path_received()`: `<sip:proxy;lr;received=sip:IP:port>`; the
    /// last Path value is the proxy nearest the phone).
    fn phone_address(&self, source: IpAddr, req: &SipRequest) -> IpAddr {
        let trusted = self
            .settings
            .trusted_proxies
            .iter()
            .any(|n| n.contains(&source));
        if !trusted {
            return source;
        }
        req.path
            .last()
            .and_then(|p| path_received(p))
            .unwrap_or(source)
    }
}

/// The IP in a Path value's `received` URI parameter, as Kamailio writes
/// it (`received=sip:10.0.0.5:5062`, quoted or %-escaped or not).
fn path_received(path: &str) -> Option<IpAddr> {
    let uri = name_addr_uri(path);
    let (_, params) = uri.split_once(';')?;
    let value = crate::sip::params::find_param(params, "received")?;
    let value = value
        .trim_matches('"')
        .replace("%3A", ":")
        .replace("%3a", ":");
    let hostport = value
        .strip_prefix("sip:")
        .or_else(|| value.strip_prefix("sips:"))
        .unwrap_or(&value);
    let hostport = hostport.split(';').next().unwrap_or(hostport);
    if let Ok(ip) = hostport.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = hostport.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    hostport.rsplit_once(':')?.0.parse().ok()
}

fn throttle_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::digest::{auth_params, Qop};
    use crate::sip::message::Method;

    const URI: &str = "sip:pbx.test";
    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn settings() -> RegistrarSettings {
        RegistrarSettings::default()
    }

    fn registrar(t0: Instant) -> Registrar {
        let creds = vec![
            Credentials::from_password("1001", "hotline", "secret1"),
            Credentials::from_password("1002", "hotline", "secret2"),
        ];
        Registrar::new(t0, settings(), creds, [42; 32])
    }

    /// A softphone: builds REGISTERs and answers challenges with the digest
    /// module, reusing its nonce with an increasing nc as phones do.
    struct Phone {
        user: String,
        password: String,
        call_id: String,
        cseq: u32,
        addr: SocketAddr,
        /// (algorithm, realm, nonce, last nc) from the last challenge.
        auth: Option<(Algorithm, String, String, u32)>,
        prefer: Algorithm,
    }

    impl Phone {
        fn new(user: &str, password: &str) -> Phone {
            Phone {
                user: user.into(),
                password: password.into(),
                call_id: format!("reg-{user}"),
                cseq: 0,
                addr: "10.0.0.2:5060".parse().expect("addr"),
                auth: None,
                prefer: Algorithm::Sha256,
            }
        }

        fn source(&self) -> Source {
            Source {
                addr: self.addr,
                transport: Transport::Udp,
                conn: 0,
            }
        }

        fn request(&mut self, contacts: &[&str], expires: Option<&str>) -> SipRequest {
            self.cseq += 1;
            let aor = format!("<sip:{}@pbx.test>", self.user);
            let mut req = SipRequest {
                method: Method::Register,
                uri: URI.into(),
                from: format!("{aor};tag=t"),
                to: aor,
                call_id: self.call_id.clone(),
                cseq: self.cseq,
                cseq_method: Method::Register,
                contacts: contacts.iter().map(|c| c.to_string()).collect(),
                expires: expires.map(str::to_string),
                ..Default::default()
            };
            if let Some((alg, realm, nonce, nc)) = self.auth.as_mut() {
                *nc += 1;
                let (alg, nc) = (*alg, format!("{nc:08x}"));
                let ha1 = digest::ha1(alg, &self.user, realm, &self.password);
                let cnonce = "0a4f113b".to_string();
                let response = digest::response(
                    alg,
                    &ha1,
                    nonce,
                    &nc,
                    &cnonce,
                    Some(Qop::Auth),
                    "REGISTER",
                    URI,
                );
                let creds = DigestCredentials {
                    username: self.user.clone(),
                    realm: realm.clone(),
                    nonce: nonce.clone(),
                    uri: URI.into(),
                    response,
                    algorithm: alg,
                    cnonce: Some(cnonce),
                    qop: Some(Qop::Auth),
                    nc: Some(nc),
                    opaque: None,
                };
                req.authorization = Some(creds.to_header());
            }
            req
        }

        /// Reads a 401 as a softphone does: the preferred algorithm's
        /// challenge, else the first one.
        fn learn(&mut self, reply: &RegisterReply) {
            assert_eq!(reply.status, 401, "{reply:?}");
            let challenges: Vec<_> = reply
                .header_values("WWW-Authenticate")
                .map(|v| auth_params(v).expect("challenge parses"))
                .collect();
            let get = |c: &Vec<(String, String)>, k: &str| {
                c.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
            };
            let alg_of =
                |c: &Vec<(String, String)>| Algorithm::parse(&get(c, "algorithm").expect("alg"));
            let c = challenges
                .iter()
                .find(|c| alg_of(c) == Ok(self.prefer))
                .unwrap_or(&challenges[0]);
            assert_eq!(get(c, "qop").as_deref(), Some("auth"));
            self.auth = Some((
                alg_of(c).expect("known algorithm"),
                get(c, "realm").expect("realm"),
                get(c, "nonce").expect("nonce"),
                0,
            ));
        }

        /// One REGISTER, answering a 401 once.
        fn register(
            &mut self,
            reg: &mut Registrar,
            now: Instant,
            contacts: &[&str],
            expires: Option<&str>,
        ) -> RegisterReply {
            let reply = reg.handle_register(now, self.source(), &self.request(contacts, expires));
            if reply.status != 401 {
                return reply;
            }
            self.learn(&reply);
            reg.handle_register(now, self.source(), &self.request(contacts, expires))
        }
    }

    fn events(reg: &mut Registrar) -> Vec<RegistrarEvent> {
        std::iter::from_fn(|| reg.poll_event()).collect()
    }

    fn contacts(reply: &RegisterReply) -> Vec<&str> {
        reply.header_values("Contact").collect()
    }

    fn registered(user: &str, contact: &str) -> RegistrarEvent {
        RegistrarEvent::Registered {
            user: user.into(),
            contact: contact.into(),
        }
    }

    fn unregistered(user: &str, contact: &str, expired: bool) -> RegistrarEvent {
        RegistrarEvent::Unregistered {
            user: user.into(),
            contact: contact.into(),
            expired,
        }
    }

    const C1: &str = "<sip:1001@10.0.0.2:5060>";
    const C1_URI: &str = "sip:1001@10.0.0.2:5060";

    #[test]
    fn full_flow_challenge_register_refresh_unregister() {
        let t0 = crate::time::test_epoch();
        let mut reg = registrar(t0);
        let mut phone = Phone::new("1001", "secret1");

        let first = reg.handle_register(t0, phone.source(), &phone.request(&[C1], None));
        assert_eq!((first.status, first.reason), (401, "Unauthorized"));
        let offered: Vec<_> = first.header_values("WWW-Authenticate").collect();
        assert_eq!(offered.len(), 2);
        assert!(offered[0].contains("algorithm=SHA-256"), "{offered:?}");
        assert!(offered[1].contains("algorithm=MD5"), "{offered:?}");
        assert!(offered[0].starts_with("Digest realm=\"hotline\", nonce=\""));
        assert!(
            !reg.is_registered("1001"),
            "a challenged contact is not bound"
        );
        assert!(events(&mut reg).is_empty());

        phone.learn(&first);
        let ok = reg.handle_register(t0, phone.source(), &phone.request(&[C1], None));
        assert_eq!((ok.status, ok.reason), (200, "OK"));
        assert_eq!(contacts(&ok), [format!("<{C1_URI}>;expires=3600")]);
        assert_eq!(events(&mut reg), [registered("1001", C1_URI)]);
        let b = reg.bindings("1001")[0].clone();
        assert_eq!(
            (b.source, b.cseq, b.expires_at),
            (phone.addr, 2, t0 + secs(3600))
        );
        assert_eq!(reg.poll_timeout(), Some(t0 + secs(3600)));

        // Refresh half-way with the same nonce and nc=2: silent.
        let t1 = t0 + secs(100);
        let ok = reg.handle_register(t1, phone.source(), &phone.request(&[C1], Some("1800")));
        assert_eq!(ok.status, 200);
        assert_eq!(contacts(&ok), [format!("<{C1_URI}>;expires=1800")]);
        assert!(events(&mut reg).is_empty());
        assert_eq!(reg.bindings("1001")[0].expires_at, t1 + secs(1800));
        assert_eq!(reg.bindings("1001")[0].registered_at, t1);

        // Unregister.
        let ok = reg.handle_register(t1, phone.source(), &phone.request(&[C1], Some("0")));
        assert_eq!(ok.status, 200);
        assert!(contacts(&ok).is_empty());
        assert_eq!(events(&mut reg), [unregistered("1001", C1_URI, false)]);
        assert!(!reg.is_registered("1001"));
        assert_eq!(reg.poll_timeout(), None);
    }

    #[test]
    fn md5_answer_is_accepted_too() {
        let t0 = crate::time::test_epoch();
        let mut reg = registrar(t0);
        let mut phone = Phone::new("1002", "secret2");
        phone.prefer = Algorithm::Md5;
        assert_eq!(phone.register(&mut reg, t0, &[C1], None).status, 200);
        assert_eq!(phone.auth.as_ref().map(|a| a.0), Some(Algorithm::Md5));
        assert!(reg.is_registered("1002"));
    }

    #[test]
    fn challenge_offers_the_users_algorithms_and_hides_unknown_users() {
        let t0 = crate::time::test_epoch();
        let md5_only = Credentials {
            ha1_sha256: None,
            ..Credentials::from_password("2001", "hotline", "pw")
        };
        let mut reg = Registrar::new(t0, settings(), vec![md5_only], [1; 32]);
        let mut phone = Phone::new("2001", "pw");
        let r = reg.handle_register(t0, phone.source(), &phone.request(&[C1], None));
        let offered: Vec<_> = r.header_values("WWW-Authenticate").collect();
        assert_eq!(offered.len(), 1);
        assert!(offered[0].contains("algorithm=MD5"));
        phone.learn(&r);
        assert_eq!(
            reg.handle_register(t0, phone.source(), &phone.request(&[C1], None))
                .status,
            200
        );

        // An unknown user is challenged like anyone, then refused.
        let mut ghost = Phone::new("9999", "guess");
        let r = reg.handle_register(t0, ghost.source(), &ghost.request(&[C1], None));
        assert_eq!(r.status, 401);
        assert_eq!(r.header_values("WWW-Authenticate").count(), 2);
        ghost.learn(&r);
        let r = reg.handle_register(t0, ghost.source(), &ghost.request(&[C1], None));
        assert_eq!((r.status, r.reason), (403, "Forbidden"));
        assert!(r.header("WWW-Authenticate").is_none());
        assert!(!reg.is_registered("9999"));

        // Answering with an algorithm the user has no HA1 for: 403.
        phone.auth = None;
        phone.prefer = Algorithm::Sha256;
        let r = reg.handle_register(t0, phone.source(), &phone.request(&[C1], None));
        phone.learn(&r);
        if let Some(a) = phone.auth.as_mut() {
            a.0 = Algorithm::Sha256;
        }
        let r = reg.handle_register(t0, phone.source(), &phone.request(&[C1], None));
        assert_eq!(r.status, 403);
    }

    #[test]
    fn malformed_or_foreign_authorization_is_challenged() {
        let t0 = crate::time::test_epoch();
        let mut reg = registrar(t0);
        let mut phone = Phone::new("1001", "secret1");
        for bad in [
            "Basic MTAwMTpzZWNyZXQx",
            "Digest username=\"1001",
            "Digest qop=auth-int",
        ] {
            let mut req = phone.request(&[C1], None);
            req.authorization = Some(bad.into());
            assert_eq!(reg.handle_register(t0, phone.source(), &req).status, 401);
        }
        assert!(!reg.is_registered("1001"));
    }

    #[test]
    fn wrong_password_realm_uri_or_username_is_403() {
        let t0 = crate::time::test_epoch();
        let mut reg = registrar(t0);
        let mut phone = Phone::new("1001", "wrong");
        assert_eq!(phone.register(&mut reg, t0, &[C1], None).status, 403);

        let mut phone = Phone::new("1001", "secret1");
        let r = reg.handle_register(t0, phone.source(), &phone.request(&[C1], None));
        phone.learn(&r);
        let tamper = |phone: &mut Phone, f: &dyn Fn(&mut DigestCredentials)| {
            let mut req = phone.request(&[C1], None);
            let mut c = DigestCredentials::parse(req.authorization.as_deref().unwrap_or(""))
                .expect("phone writes valid credentials");
            f(&mut c);
            req.authorization = Some(c.to_header());
            req
        };
        // Each is otherwise right: the response is recomputed for the field.
        let resign = |c: &mut DigestCredentials, realm: &str, user: &str| {
            let ha1 = digest::ha1(c.algorithm, user, realm, "secret1");
            c.response = c.expected_response(&ha1, "REGISTER");
        };
        let cases: [&dyn Fn(&mut DigestCredentials); 3] = [
            &|c| {
                c.realm = "other".into();
                resign(c, "other", "1001");
            },
            &|c| {
                c.uri = "sip:elsewhere.test".into();
                resign(c, "hotline", "1001");
            },
            &|c| {
                c.username = "1002".into();
                let ha1 = digest::ha1(c.algorithm, "1002", "hotline", "secret2");
                c.response = c.expected_response(&ha1, "REGISTER");
            },
        ];
        for f in cases {
            let req = tamper(&mut phone, f);
            assert_eq!(reg.handle_register(t0, phone.source(), &req).status, 403);
        }
        assert!(!reg.is_registered("1001") && !reg.is_registered("1002"));
        // And the untampered answer still works.
        assert_eq!(
            reg.handle_register(t0, phone.source(), &phone.request(&[C1], None))
                .status,
            200
        );
    }

    #[test]
    fn a_digest_uri_naming_the_request_uri_is_accepted() {
        // SIPp answers a challenge to `REGISTER sip:127.0.0.1` with
        // uri="sip:127.0.0.1:5060" (Kamailio accepts it); the response is
        // computed over the uri the phone sent.
        let t0 = crate::time::test_epoch();
        let answer = |reg: &mut Registrar, phone: &mut Phone, digest_uri: &str| {
            let r = reg.handle_register(t0, phone.source(), &phone.request(&[C1], None));
            phone.learn(&r);
            let mut req = phone.request(&[C1], None);
            req.uri = "sip:127.0.0.1".into();
            let mut c = DigestCredentials::parse(req.authorization.as_deref().unwrap_or(""))
                .expect("phone writes valid credentials");
            c.uri = digest_uri.into();
            let ha1 = digest::ha1(c.algorithm, "1001", "hotline", "secret1");
            c.response = c.expected_response(&ha1, "REGISTER");
            req.authorization = Some(c.to_header());
            reg.handle_register(t0, phone.source(), &req).status
        };
        for same in ["sip:127.0.0.1:5060", "sip:127.0.0.1", "SIP:127.0.0.1;lr"] {
            let mut reg = registrar(t0);
            let mut phone = Phone::new("1001", "secret1");
            assert_eq!(answer(&mut reg, &mut phone, same), 200, "{same}");
        }
        for other in [
            "sip:127.0.0.1:5070",
            "sip:127.0.0.2",
            "sips:127.0.0.1",
            "sip:1001@127.0.0.1",
            "sip:127.0.0.1;transport=tcp",
            "127.0.0.1",
        ] {
            let mut reg = registrar(t0);
            let mut phone = Phone::new("1001", "secret1");
            assert_eq!(answer(&mut reg, &mut phone, other), 403, "{other}");
        }
    }

    #[test]
    fn stale_and_foreign_nonces_get_stale_challenges() {
        let t0 = crate::time::test_epoch();
        let mut reg = registrar(t0);
        let mut phone = Phone::new("1001", "secret1");
        let r = reg.handle_register(t0, phone.source(), &phone.request(&[C1], None));
        phone.learn(&r);

        let late = t0 + secs(300);
        let r = reg.handle_register(late, phone.source(), &phone.request(&[C1], None));
        assert_eq!(r.status, 401);
        assert!(r
            .header_values("WWW-Authenticate")
            .all(|v| v.ends_with(", stale=true")));
        assert!(!reg.is_registered("1001"));
        phone.learn(&r);
        assert_eq!(
            reg.handle_register(late, phone.source(), &phone.request(&[C1], None))
                .status,
            200
        );

        // After a restart (new secret) the old nonce is not ours: stale too.
        let mut restarted = Registrar::new(
            late,
            settings(),
            reg.credentials.values().cloned().collect(),
            [9; 32],
        );
        let r = restarted.handle_register(late, phone.source(), &phone.request(&[C1], None));
        assert_eq!(r.status, 401);
        assert!(r
            .header("WWW-Authenticate")
            .is_some_and(|v| v.contains("stale=true")));

        // A wrong password on a stale nonce is still a 403.
        let mut liar = Phone::new("1001", "nope");
        liar.auth = phone.auth.clone();
        let r = reg.handle_register(late + secs(300), liar.source(), &liar.request(&[C1], None));
        assert_eq!(r.status, 403);
    }

    #[test]
    fn nonce_count_replay_is_refused() {
        let t0 = crate::time::test_epoch();
        let mut reg = registrar(t0);
        let mut phone = Phone::new("1001", "secret1");
        assert_eq!(phone.register(&mut reg, t0, &[C1], None).status, 200);
        // Replay nc=1 with a new CSeq: refused; nc=3 is fine.
        if let Some(a) = phone.auth.as_mut() {
            a.3 = 0;
        }
        assert_eq!(phone.register(&mut reg, t0, &[C1], None).status, 403);
        assert_eq!(phone.register(&mut reg, t0, &[C1], None).status, 200);
        // A replay does not count towards a ban.
        for _ in 0..10 {
            if let Some(a) = phone.auth.as_mut() {
                a.3 = 0;
            }
            phone.register(&mut reg, t0, &[C1], None);
        }
        if let Some(a) = phone.auth.as_mut() {
            a.3 = 2;
        }
        assert_eq!(phone.register(&mut reg, t0, &[C1], None).status, 200);
    }

    #[test]
    fn expires_precedence_bounds_and_423() {
        let t0 = crate::time::test_epoch();
        let mut reg = registrar(t0);
        let mut phone = Phone::new("1001", "secret1");
        let r = phone.register(
            &mut reg,
            t0,
            &[
                "<sip:a@h>;expires=120",
                "<sip:b@h>",
                "sip:c@h;expires=99999",
                "<sip:d@h>;expires=soon",
            ],
            Some("600"),
        );
        assert_eq!(r.status, 200);
        let exp = |reg: &Registrar, c: &str| {
            reg.bindings("1001")
                .iter()
                .find(|b| b.contact == c)
                .map(|b| b.expires_at - t0)
        };
        assert_eq!(exp(&reg, "sip:a@h"), Some(secs(120)));
        assert_eq!(exp(&reg, "sip:b@h"), Some(secs(600)));
        assert_eq!(exp(&reg, "sip:c@h"), Some(secs(3600)), "clamped to max");
        assert_eq!(
            exp(&reg, "sip:d@h"),
            Some(secs(3600)),
            "malformed is default"
        );
        assert_eq!(
            contacts(&r),
            [
                "<sip:d@h>;expires=3600",
                "<sip:c@h>;expires=3600",
                "<sip:b@h>;expires=600",
                "<sip:a@h>;expires=120"
            ]
        );

        // No header, no param: default.
        let r = phone.register(&mut reg, t0, &["<sip:e@h>"], None);
        assert_eq!(r.status, 200);
        assert_eq!(exp(&reg, "sip:e@h"), Some(secs(3600)));
        events(&mut reg);

        // Too brief: nothing changes.
        for (contact, header) in [("<sip:f@h>;expires=30", None), ("<sip:f@h>", Some("59"))] {
            let r = phone.register(&mut reg, t0, &["<sip:a@h>;expires=0", contact], header);
            assert_eq!((r.status, r.reason), (423, "Interval Too Brief"));
            assert_eq!(r.header("Min-Expires"), Some("60"));
        }
        assert!(events(&mut reg).is_empty());
        assert_eq!(reg.bindings("1001").len(), 5);
        // Exactly the minimum is fine.
        let r = phone.register(&mut reg, t0, &["<sip:a@h>;expires=60"], None);
        assert_eq!(r.status, 200);
        assert_eq!(exp(&reg, "sip:a@h"), Some(secs(60)));
    }

    #[test]
    fn wildcard_removes_everything_only_with_expires_zero() {
        let t0 = crate::time::test_epoch();
        let mut reg = registrar(t0);
        let mut phone = Phone::new("1001", "secret1");
        phone.register(&mut reg, t0, &["<sip:a@h>", "<sip:b@h>"], None);
        events(&mut reg);
        for (contacts, expires) in [
            (&["*"][..], Some("60")),
            (&["*"][..], None),
            (&["*", "<sip:c@h>"][..], Some("0")),
        ] {
            let r = phone.register(&mut reg, t0, contacts, expires);
            assert_eq!((r.status, r.reason), (400, "Bad Request"));
        }
        assert_eq!(reg.bindings("1001").len(), 2);
        let r = phone.register(&mut reg, t0, &["*"], Some("0"));
        assert_eq!(r.status, 200);
        assert!(contacts(&r).is_empty());
        let mut ev = events(&mut reg);
        ev.sort_by_key(|e| format!("{e:?}"));
        assert_eq!(
            ev,
            [
                unregistered("1001", "sip:a@h", false),
                unregistered("1001", "sip:b@h", false)
            ]
        );
        assert!(!reg.is_registered("1001"));
    }

    #[test]
    fn same_call_id_needs_a_higher_cseq() {
        let t0 = crate::time::test_epoch();
        let mut reg = registrar(t0);
        let mut phone = Phone::new("1001", "secret1");
        assert_eq!(phone.register(&mut reg, t0, &[C1], None).status, 200);
        // Equal and lower CSeq on the same Call-ID: 500, nothing changes.
        for cseq in [2, 1] {
            phone.cseq = cseq - 1;
            let r = phone.register(&mut reg, t0, &[C1], Some("0"));
            assert_eq!((r.status, r.reason), (500, "Server Internal Error"));
            phone.cseq = cseq - 1;
            assert_eq!(phone.register(&mut reg, t0, &["*"], Some("0")).status, 500);
        }
        assert!(reg.is_registered("1001"));
        // Another Call-ID (another device or a reboot) may update it.
        phone.call_id = "reboot".into();
        phone.cseq = 0;
        assert_eq!(phone.register(&mut reg, t0, &[C1], Some("120")).status, 200);
        assert_eq!(reg.bindings("1001")[0].call_id, "reboot");
        // A lower CSeq on the old Call-ID for a contact it does not touch
        // is fine.
        phone.call_id = "reg-1001".into();
        assert_eq!(
            phone.register(&mut reg, t0, &["<sip:x@h>"], None).status,
            200
        );
    }

    #[test]
    fn contact_limit_drops_the_oldest() {
        let t0 = crate::time::test_epoch();
        let mut reg = registrar(t0);
        let mut phone = Phone::new("1001", "secret1");
        for (i, c) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            let at = t0 + secs(i as u64);
            let r = phone.register(&mut reg, at, &[&format!("<sip:{c}@h>")], None);
            assert_eq!(r.status, 200);
        }
        // Refreshing "a" makes "b" the oldest.
        phone.register(&mut reg, t0 + secs(10), &["<sip:a@h>"], None);
        events(&mut reg);
        let r = phone.register(&mut reg, t0 + secs(11), &["<sip:f@h>"], None);
        assert_eq!(contacts(&r).len(), 5);
        assert_eq!(
            events(&mut reg),
            [
                registered("1001", "sip:f@h"),
                unregistered("1001", "sip:b@h", false)
            ]
        );
        let order: Vec<_> = reg
            .bindings("1001")
            .iter()
            .map(|b| b.contact.clone())
            .collect();
        assert_eq!(
            order,
            ["sip:f@h", "sip:a@h", "sip:e@h", "sip:d@h", "sip:c@h"]
        );
    }

    #[test]
    fn query_without_contact_lists_bindings() {
        let t0 = crate::time::test_epoch();
        let mut reg = registrar(t0);
        let mut phone = Phone::new("1001", "secret1");
        let r = phone.register(&mut reg, t0, &[], None);
        assert_eq!(r.status, 200);
        assert!(contacts(&r).is_empty());
        phone.register(&mut reg, t0, &[C1], Some("300"));
        let r = phone.register(&mut reg, t0 + Duration::from_millis(100_500), &[], None);
        assert_eq!(contacts(&r), [format!("<{C1_URI}>;expires=200")]);
        // A query needs authentication too.
        let mut other = Phone::new("1001", "wrong");
        assert_eq!(other.register(&mut reg, t0, &[], None).status, 403);
    }

    #[test]
    fn bindings_expire_at_the_exact_instant() {
        let t0 = crate::time::test_epoch();
        let mut reg = registrar(t0);
        let mut phone = Phone::new("1001", "secret1");
        phone.register(
            &mut reg,
            t0,
            &["<sip:a@h>;expires=60", "<sip:b@h>;expires=90"],
            None,
        );
        events(&mut reg);
        let at = t0 + secs(60);
        assert_eq!(reg.poll_timeout(), Some(at));
        reg.handle_timeout(at - Duration::from_millis(1));
        assert!(events(&mut reg).is_empty());
        reg.handle_timeout(at);
        assert_eq!(events(&mut reg), [unregistered("1001", "sip:a@h", true)]);
        assert_eq!(reg.poll_timeout(), Some(t0 + secs(90)));
        reg.handle_timeout(t0 + secs(90));
        assert_eq!(events(&mut reg), [unregistered("1001", "sip:b@h", true)]);
        assert!(!reg.is_registered("1001"));
        assert_eq!(reg.poll_timeout(), None);
    }

    #[test]
    fn repeated_failures_ban_the_source_then_lift() {
        let t0 = crate::time::test_epoch();
        let mut reg = registrar(t0);
        let mut liar = Phone::new("1001", "guess");
        for i in 0..5 {
            let r = liar.register(&mut reg, t0 + secs(i), &[C1], None);
            assert_eq!(r.status, 403, "attempt {i}");
            assert!(r.header("Retry-After").is_none());
        }
        // Banned: even the right password, even without credentials, from
        // the same address gets a bare 403.
        let mut phone = Phone::new("1001", "secret1");
        let banned_at = t0 + secs(4);
        let r = phone.register(&mut reg, t0 + secs(10), &[C1], None);
        assert_eq!(r.status, 403);
        assert_eq!(r.header("Retry-After"), Some("294"));
        assert!(r.header("WWW-Authenticate").is_none());
        assert_eq!(reg.poll_timeout(), Some(banned_at + secs(300)));
        // Another address is unaffected.
        phone.addr = "10.0.0.3:5060".parse().expect("addr");
        assert_eq!(
            phone.register(&mut reg, t0 + secs(10), &[C1], None).status,
            200
        );
        // The ban lifts at its end.
        phone.addr = liar.addr;
        reg.handle_timeout(banned_at + secs(300));
        assert!(reg.failures.is_empty());
        assert_eq!(
            phone
                .register(&mut reg, banned_at + secs(300), &[C1], None)
                .status,
            200
        );
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let t0 = crate::time::test_epoch();
        let mut reg = registrar(t0);
        let mut liar = Phone::new("1001", "guess");
        liar.addr = "[2001:db8::1]:5060".parse().expect("addr");
        for i in 0..4 {
            assert_eq!(
                liar.register(&mut reg, t0 + secs(i), &[C1], None).status,
                403
            );
        }
        assert_eq!(reg.poll_timeout(), Some(t0 + secs(60)));
        reg.handle_timeout(t0 + secs(60));
        assert_eq!(reg.poll_timeout(), None);
        for i in 0..4 {
            let r = liar.register(&mut reg, t0 + secs(61 + i), &[C1], None);
            assert_eq!(r.status, 403);
        }
        // Fifth failure within the new window (from elsewhere in the /64).
        liar.addr = "[2001:db8::99]:5070".parse().expect("addr");
        liar.register(&mut reg, t0 + secs(70), &[C1], None);
        let r = liar.register(&mut reg, t0 + secs(71), &[C1], None);
        assert_eq!(r.header("Retry-After"), Some("299"));
        // Another /64 is not banned.
        liar.addr = "[2001:db8:0:1::1]:5060".parse().expect("addr");
        let r = liar.register(&mut reg, t0 + secs(71), &[C1], None);
        assert!(r.header("Retry-After").is_none());
    }

    #[test]
    fn credential_reload_drops_removed_users_only() {
        let t0 = crate::time::test_epoch();
        let mut reg = registrar(t0);
        Phone::new("1001", "secret1").register(&mut reg, t0, &[C1], None);
        Phone::new("1002", "secret2").register(&mut reg, t0, &["<sip:x@h>"], None);
        events(&mut reg);
        let mut upper = Credentials::from_password("1001", "hotline", "changed");
        upper.ha1_sha256 = upper.ha1_sha256.map(|h| h.to_uppercase());
        reg.replace_credentials(vec![upper]);
        assert_eq!(events(&mut reg), [unregistered("1002", "sip:x@h", false)]);
        assert!(reg.is_registered("1001"));
        assert_eq!(
            Phone::new("1001", "secret1")
                .register(&mut reg, t0, &[C1], None)
                .status,
            403
        );
        let mut phone = Phone::new("1001", "changed");
        phone.call_id = "new".into();
        assert_eq!(phone.register(&mut reg, t0, &[C1], None).status, 200);
    }

    /// Behind a trusted proxy, failures count per phone (Path's
    /// `received`), so a phone with a wrong password is banned alone; a
    /// Path from an untrusted source changes nothing.
    #[test]
    fn behind_a_trusted_proxy_bans_are_per_phone() {
        let t0 = crate::time::test_epoch();
        let creds = vec![
            Credentials::from_password("1001", "hotline", "secret1"),
            Credentials::from_password("1002", "hotline", "secret2"),
        ];
        let settings = RegistrarSettings {
            trusted_proxies: vec!["10.0.0.0/24".parse().expect("net")],
            ..settings()
        };
        let mut reg = Registrar::new(t0, settings, creds, [42; 32]);
        let via_proxy = |phone: &mut Phone, received: &str, contacts: &[&str]| {
            let mut req = phone.request(contacts, None);
            req.path = vec![format!("<sip:10.0.0.9;lr;received=sip:{received}:5060>")];
            req
        };
        let mut liar = Phone::new("1001", "guess");
        liar.addr = "10.0.0.9:5060".parse().expect("proxy");
        let r = reg.handle_register(t0, liar.source(), &via_proxy(&mut liar, "192.0.2.1", &[C1]));
        liar.learn(&r);
        for i in 0..5 {
            let r = reg.handle_register(
                t0 + secs(i),
                liar.source(),
                &via_proxy(&mut liar, "192.0.2.1", &[C1]),
            );
            assert_eq!(r.status, 403, "attempt {i}");
        }
        // The liar's phone is banned...
        let r = reg.handle_register(
            t0 + secs(6),
            liar.source(),
            &via_proxy(&mut liar, "192.0.2.1", &[C1]),
        );
        assert!(r.header("Retry-After").is_some(), "banned");
        // ...another phone behind the same proxy is not.
        let mut good = Phone::new("1002", "secret2");
        good.addr = liar.addr;
        let r = reg.handle_register(
            t0 + secs(6),
            good.source(),
            &via_proxy(&mut good, "192.0.2.2", &[C1]),
        );
        good.learn(&r);
        let r = reg.handle_register(
            t0 + secs(6),
            good.source(),
            &via_proxy(&mut good, "192.0.2.2", &[C1]),
        );
        assert_eq!(r.status, 200);
        // From a source that is not a trusted proxy, Path's received is
        // ignored: failures count by that source.
        let mut other = Phone::new("1001", "guess");
        other.addr = "198.51.100.7:5060".parse().expect("addr");
        let r = reg.handle_register(
            t0,
            other.source(),
            &via_proxy(&mut other, "192.0.2.3", &[C1]),
        );
        other.learn(&r);
        for i in 0..5 {
            let fake = format!("192.0.2.{}", 10 + i);
            reg.handle_register(
                t0 + secs(i),
                other.source(),
                &via_proxy(&mut other, &fake, &[C1]),
            );
        }
        let r = reg.handle_register(
            t0 + secs(6),
            other.source(),
            &via_proxy(&mut other, "192.0.2.99", &[C1]),
        );
        assert!(
            r.header("Retry-After").is_some(),
            "banned by its own address"
        );
        assert_eq!(
            path_received("<sip:k;lr;received=\"sip:[2001:db8::1]:5062\">"),
            "2001:db8::1".parse().ok()
        );
    }

    #[test]
    fn path_is_kept_as_the_route_set_and_echoed_only_when_supported() {
        let t0 = crate::time::test_epoch();
        let mut reg = registrar(t0);
        let mut phone = Phone::new("1001", "secret1");
        let r = reg.handle_register(t0, phone.source(), &phone.request(&[C1], None));
        phone.learn(&r);
        let path = ["<sip:edge.example.com;lr>", "<sip:core.example.com;lr>"];
        let mut through_proxy = |phone: &mut Phone, supported: &[&str]| {
            let mut req = phone.request(&[C1], None);
            req.path = path.iter().map(|p| p.to_string()).collect();
            req.supported = supported.iter().map(|t| t.to_string()).collect();
            reg.handle_register(t0, phone.source(), &req)
        };
        let r = through_proxy(&mut phone, &["outbound", "PATH"]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header_values("Path").collect::<Vec<_>>(), path);
        // Without `Supported: path` it is not echoed, but still used.
        let r = through_proxy(&mut phone, &["outbound"]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Path"), None);
        assert_eq!(reg.bindings("1001")[0].path, path);
        // A refresh straight from the phone replaces the path.
        let r = reg.handle_register(t0, phone.source(), &phone.request(&[C1], None));
        assert_eq!(r.status, 200);
        assert!(reg.bindings("1001")[0].path.is_empty());
    }

    #[test]
    fn parsed_register_text_works_end_to_end() {
        use crate::sip::message::{parse, SipMessage};
        let t0 = crate::time::test_epoch();
        let mut reg = registrar(t0);
        let text = |auth: &str| {
            format!(
                "REGISTER sip:pbx.test SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK-{}\r\n\
                 From: <sip:1001@pbx.test>;tag=a\r\n\
                 To: \"Agent\" <sip:1001@pbx.test>\r\n\
                 Call-ID: text-1\r\n\
                 CSeq: {} REGISTER\r\n\
                 m: <sip:1001@10.0.0.2:5060;transport=udp>;expires=120, <sip:1001@[::1]>\r\n\
                 Contact: <sip:1001@10.0.0.9>\r\n\
                 Expires: 300\r\n\
                 {auth}Content-Length: 0\r\n\r\n",
                auth.len(),
                if auth.is_empty() { 1 } else { 2 }
            )
        };
        let req = |s: String| match parse(s.as_bytes()) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("{other:?}"),
        };
        let mut phone = Phone::new("1001", "secret1");
        let r = reg.handle_register(t0, phone.source(), &req(text("")));
        phone.learn(&r);
        let auth = phone.request(&[], None).authorization.expect("answer");
        let r = reg.handle_register(
            t0,
            phone.source(),
            &req(text(&format!("Authorization: {auth}\r\n"))),
        );
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(
            contacts(&r),
            [
                "<sip:1001@10.0.0.9>;expires=300",
                "<sip:1001@[::1]>;expires=300",
                "<sip:1001@10.0.0.2:5060;transport=udp>;expires=120"
            ]
        );
    }
}
