//! Parsing SIP messages into the small views the engine works with.
//!
//! The grammar work is done by rsipstack's maintained fork of rsip's types
//! (`rsipstack::sip::parser`). This module is the only place that touches it:
//! it validates what that parser lets through (Content-Length, the mandatory
//! headers, the CSeq), and keeps only the fields the engine reads, so a
//! change of parser stays behind this wall.

use std::fmt;

use rsipstack::sip::{parser::parse_message, HasHeaders, Header, SipMessage as RawMessage};
use thiserror::Error;

use super::params::{display_name, split_list};
use super::validate::{self, Fault};

// The helpers for reading the raw header values kept here, and the limits
// `parse_with` takes, are part of this module's API.
pub use super::params::{header_param, name_addr_uri, via_param};
pub use super::validate::{find_head_end, ParseLimits};

/// SIP request methods the engine knows by name. Method names are
/// case-sensitive (RFC 3261 section 7.1), so `parse` and `as_str` give back
/// exactly the token received: an extension method is echoed as sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Info,
    Register,
    Other(String),
}

impl Method {
    pub fn parse(token: &str) -> Method {
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "REGISTER" => Method::Register,
            other => Method::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Register => "REGISTER",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The empty token: what a request salvaged without a readable CSeq
/// carries as its CSeq method. It equals no parsed method.
impl Default for Method {
    fn default() -> Self {
        Method::Other(String::new())
    }
}

/// Why a message was refused. `reason` goes into the 400's reason phrase, so
/// it is short, ASCII and says what was wrong.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not answerable: no usable Via/Call-ID/CSeq/From/To to address a reply.
    #[error("unanswerable message: {0}")]
    Unanswerable(&'static str),
    /// Answerable with a 400 carrying this reason.
    #[error("bad request: {reason}")]
    BadRequest {
        reason: String,
        request: Box<SipRequest>,
    },
    /// Request-URI scheme we do not serve: 416.
    #[error("unsupported URI scheme")]
    UnsupportedScheme { request: Box<SipRequest> },
    /// Answerable with another final status: 505 (SIP version), 513 (too
    /// large), 413 (declared body too large), 415 or 406 (not SDP).
    #[error("refused: {status} {reason}")]
    Refused {
        status: u16,
        reason: &'static str,
        headers: &'static [(&'static str, &'static str)],
        request: Box<SipRequest>,
    },
    /// A response we could not make sense of: dropped.
    #[error("bad response: {0}")]
    BadResponse(&'static str),
}

/// The parts of a request the engine reads. Header values are kept raw
/// (as received) where they are only echoed back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SipRequest {
    pub method: Method,
    pub uri: String,
    /// Each Via value in order, one entry per hop (comma lists are split).
    pub vias: Vec<String>,
    pub branch: String,
    pub sent_by: String,
    pub from: String,
    pub from_tag: Option<String>,
    pub to: String,
    pub to_tag: Option<String>,
    pub call_id: String,
    pub cseq: u32,
    /// The CSeq's method: equal to `method` in every request that parsed.
    pub cseq_method: Method,
    /// The CSeq as received when it could not be read (echoed in the 400).
    pub cseq_raw: Option<String>,
    pub contact: Option<String>,
    /// Every Contact value as received (REGISTER may carry several, or `*`).
    pub contacts: Vec<String>,
    pub record_route: Vec<String>,
    /// Path values (RFC 3327) in order, one entry per hop, as received.
    pub path: Vec<String>,
    pub require: Vec<String>,
    /// Option tags of the Supported headers (`k` in compact form).
    pub supported: Vec<String>,
    pub content_type: Option<String>,
    pub max_forwards: Option<u32>,
    pub expires: Option<String>,
    pub authorization: Option<String>,
    /// REFER's target (RFC 3515).
    pub refer_to: Option<String>,
    /// The first P-Asserted-Identity value (RFC 3325), as received.
    pub p_asserted_identity: Option<String>,
    /// The first Remote-Party-ID value naming the calling party (not
    /// `party=called`), as received.
    pub remote_party_id: Option<String>,
    /// The name-addr the engine took as the caller's identity at INVITE
    /// ([`SipRequest::take_caller_id`]); `None`: From.
    pub caller_id: Option<String>,
    pub body: Vec<u8>,
}

/// Which header names the caller (`calls.caller_id_from`): a PBX or trunk
/// in front often puts the real number in P-Asserted-Identity or
/// Remote-Party-ID and its own in From.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallerIdFrom {
    #[default]
    From,
    PAssertedIdentity,
    RemotePartyId,
}

impl SipRequest {
    /// Takes the caller's identity from the header `from` names; a
    /// request without that header keeps From.
    pub fn take_caller_id(&mut self, from: CallerIdFrom) {
        self.caller_id = match from {
            CallerIdFrom::From => None,
            CallerIdFrom::PAssertedIdentity => self.p_asserted_identity.clone(),
            CallerIdFrom::RemotePartyId => self.remote_party_id.clone(),
        };
    }
    /// The caller's number: the user of the identity taken at INVITE
    /// (`sip:` or `tel:`), else From's.
    pub fn caller_number(&self) -> &str {
        match &self.caller_id {
            Some(id) => uri_user(name_addr_uri(id)),
            None => self.from_user(),
        }
    }
    /// The caller's display name, from the same header when it has one.
    pub fn caller_name(&self) -> Option<String> {
        self.caller_id
            .as_deref()
            .and_then(display_name)
            .or_else(|| self.from_display_name())
    }
    /// Whether a Supported header lists `tag` (e.g. `path`).
    pub fn supports(&self, tag: &str) -> bool {
        self.supported.iter().any(|t| t.eq_ignore_ascii_case(tag))
    }
    /// The user part of the Request-URI: the dialled number.
    pub fn uri_user(&self) -> &str {
        uri_user(&self.uri)
    }
    /// Scheme of the Request-URI, lowercased.
    pub fn uri_scheme(&self) -> String {
        self.uri
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    }
    /// Caller's number (From URI user part).
    pub fn from_user(&self) -> &str {
        uri_user(name_addr_uri(&self.from))
    }
    /// Caller's display name from From, unquoted.
    pub fn from_display_name(&self) -> Option<String> {
        display_name(&self.from)
    }
}

/// The parts of a response the engine reads (to its own requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipResponse {
    pub status: u16,
    pub branch: String,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: Method,
    /// The remote party's tag (dialog id once it answers).
    pub to_tag: Option<String>,
    /// The URI inside the first Contact: the remote target.
    pub contact: Option<String>,
    pub record_route: Vec<String>,
    /// WWW-Authenticate (401) and Proxy-Authenticate (407) values, in
    /// order: a trunk's challenges to our INVITE.
    pub challenges: Vec<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

// Requests are the common case; boxing them would cost an allocation each
// for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipMessage {
    Request(SipRequest),
    Response(SipResponse),
}

/// Parses one complete message (a datagram, or one framed TCP message)
/// with the default [`ParseLimits`].
pub fn parse(data: &[u8]) -> Result<SipMessage, ParseError> {
    parse_with(data, &ParseLimits::default())
}

/// Parses one complete message within `limits`. Requests are checked
/// first against RFC 3261's grammar where rsipstack is lenient (see
/// [`super::validate`]); responses only for size, as the engine drops a
/// response it cannot match anyway.
pub fn parse_with(data: &[u8], limits: &ParseLimits) -> Result<SipMessage, ParseError> {
    let is_response = first_line(data).starts_with(b"SIP/");
    if data.len() > limits.max_message_size {
        if is_response {
            return Err(ParseError::BadResponse("too large"));
        }
        // Only the first `max_message_size` bytes are looked at: enough
        // to address a 513 when the head is there.
        let head = &data[..limits.max_message_size];
        return Err(fault_error(
            head,
            Fault::Status {
                status: 513,
                reason: "Message Too Large",
                headers: &[],
            },
        ));
    }
    if is_response {
        return parse_unchecked(data);
    }
    let head = validate::head_text(data);
    let (start, fields) = validate::header_lines(&head);
    let method = start.split(' ').next().unwrap_or_default();
    let checked = validate::check_limits(&head, limits)
        .and_then(|()| validate::check_request_line(start))
        .and_then(|()| validate::check_headers(method, &fields));
    if let Err(fault) = checked {
        return Err(fault_error(data, fault));
    }
    // A body declared beyond the size limit is refused as such, before
    // "Content-Length exceeds body": on TCP only the head was read.
    if let Ok(Some(len)) = declared_content_length(data) {
        let body_start = find_head_end(data).map_or(data.len(), |p| p + 4);
        if body_start.saturating_add(len) > limits.max_message_size {
            return Err(fault_error(
                data,
                Fault::Status {
                    status: 413,
                    reason: "Request Entity Too Large",
                    headers: &[],
                },
            ));
        }
    }
    let message = parse_unchecked(data)?;
    if let SipMessage::Request(req) = &message {
        if req.method == Method::Invite {
            if let Err(fault) = validate::check_invite_media(&fields, !req.body.is_empty()) {
                return Err(fault_error(data, fault));
            }
        }
    }
    Ok(message)
}

/// The error for a request refused by a check, with what could be read of
/// it to address the answer.
fn fault_error(data: &[u8], fault: Fault) -> ParseError {
    let (status, reason, headers) = match fault {
        Fault::Unanswerable(why) => return ParseError::Unanswerable(why),
        Fault::Bad(reason) => (400, reason, &[][..]),
        Fault::Status {
            status,
            reason,
            headers,
        } => (status, reason, headers),
    };
    let Some(request) = salvage_lenient(data) else {
        return ParseError::Unanswerable("no Via");
    };
    let request = Box::new(request);
    if status == 400 {
        ParseError::BadRequest {
            reason: reason.to_string(),
            request,
        }
    } else {
        ParseError::Refused {
            status,
            reason,
            headers,
            request,
        }
    }
}

/// Parses with rsipstack and the checks that need its result.
fn parse_unchecked(data: &[u8]) -> Result<SipMessage, ParseError> {
    match parse_known_method(data) {
        Err(ParseError::BadRequest { request, .. })
            if is_extension_method(request.method.as_str()) =>
        {
            // rsipstack refuses methods it does not know, but RFC 3261 allows
            // any token: parse with a stand-in method, then put it back, so
            // the engine can answer 501 rather than 400.
            let method = request.method.clone();
            let mut stand_in = b"OPTIONS".to_vec();
            stand_in.extend_from_slice(&data[method.as_str().len()..]);
            match parse_known_method(&stand_in) {
                Ok(SipMessage::Request(mut req)) => {
                    req.method = method;
                    if req.method != req.cseq_method {
                        return Err(ParseError::BadRequest {
                            reason: Malformed::CSeqMethod.to_string(),
                            request: Box::new(req),
                        });
                    }
                    Ok(SipMessage::Request(req))
                }
                // The stand-in's only fault is its CSeq method, which is the
                // real method's: the request is well formed.
                Err(ParseError::BadRequest { mut request, .. })
                    if request.cseq_method == method
                        && uri_scheme_supported(&request.uri)
                        && check_request(&request, Ok(None), &[]).is_err() =>
                {
                    request.method = method;
                    match check_request(&request, Ok(None), &[]) {
                        Ok(()) => Ok(SipMessage::Request(*request)),
                        Err(fault) => Err(ParseError::BadRequest {
                            reason: fault.to_string(),
                            request,
                        }),
                    }
                }
                other => other.map_err(|e| match e {
                    ParseError::BadRequest {
                        reason,
                        mut request,
                    } => {
                        request.method = method;
                        ParseError::BadRequest { reason, request }
                    }
                    e => e,
                }),
            }
        }
        other => other,
    }
}

/// A request-method token (RFC 3261 25.1) that rsipstack has no name for.
fn is_extension_method(token: &str) -> bool {
    const KNOWN: [&str; 14] = [
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "INFO",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "REFER",
        "MESSAGE",
        "UPDATE",
    ];
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
        && !KNOWN.contains(&token)
}

fn parse_known_method(data: &[u8]) -> Result<SipMessage, ParseError> {
    let raw = parse_message(data);
    let start = first_line(data);
    let is_response = start.starts_with(b"SIP/");
    let raw = match raw {
        Ok(m) => m,
        Err(_) if is_response => return Err(ParseError::BadResponse("unparseable")),
        Err(e) => {
            // Try to salvage enough headers to say 400 with a reason.
            let request = salvage_request(data)?;
            if !uri_scheme_supported(&request.uri) {
                return Err(ParseError::UnsupportedScheme {
                    request: Box::new(request),
                });
            }
            return Err(ParseError::BadRequest {
                reason: short_reason(&e.to_string()),
                request: Box::new(request),
            });
        }
    };
    let declared = declared_content_length(data);
    match raw {
        RawMessage::Response(resp) => {
            let fields = Fields::collect(resp.headers().iter());
            let (cseq, cseq_method) =
                parse_cseq(&fields.cseq).ok_or(ParseError::BadResponse("CSeq"))?;
            let branch = fields
                .vias
                .first()
                .and_then(|v| via_param(v, "branch"))
                .ok_or(ParseError::BadResponse("Via branch"))?;
            Ok(SipMessage::Response(SipResponse {
                status: resp.status_code.code(),
                branch,
                to_tag: fields.to.as_deref().and_then(|t| header_param(t, "tag")),
                call_id: fields.call_id,
                cseq,
                cseq_method,
                contact: fields.contact,
                record_route: fields.record_route,
                challenges: fields.challenges,
                content_type: fields.content_type,
                body: resp.body,
            }))
        }
        RawMessage::Request(req) => {
            let fields = Fields::collect(req.headers().iter());
            let mut request = fields.into_request(&req.method.to_string(), &req.uri.to_string())?;
            request.uri = request_line_uri(start).unwrap_or(request.uri);
            request.body = req.body;
            if let Err(fault) = check_request(&request, declared, data) {
                return Err(ParseError::BadRequest {
                    reason: fault.to_string(),
                    request: Box::new(request),
                });
            }
            if !uri_scheme_supported(&request.uri) {
                return Err(ParseError::UnsupportedScheme {
                    request: Box::new(request),
                });
            }
            Ok(SipMessage::Request(request))
        }
    }
}

fn uri_scheme_supported(uri: &str) -> bool {
    let scheme = uri.split(':').next().unwrap_or_default();
    ["sip", "sips", "tel"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
}

fn first_line(data: &[u8]) -> &[u8] {
    let end = data
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(data.len());
    &data[..end]
}

/// The Request-URI exactly as written on the request line.
fn request_line_uri(start: &[u8]) -> Option<String> {
    let line = std::str::from_utf8(start).ok()?;
    let mut parts = line.split_ascii_whitespace();
    parts.next()?;
    parts.next().map(str::to_string)
}

/// The Content-Length the sender declared, `Err` when it is not a number.
fn declared_content_length(data: &[u8]) -> Result<Option<usize>, ()> {
    let head_end = find_head_end(data).unwrap_or(data.len());
    // On bytes: the header names and digits sought are ASCII, and the
    // rest of the head need not be valid UTF-8 to find them (no copy).
    for line in data[..head_end].split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let value = std::str::from_utf8(line[colon + 1..].trim_ascii()).map_err(|_| ())?;
            return value.parse::<usize>().map(Some).map_err(|_| ());
        }
    }
    Ok(None)
}

/// What [`check_request`] refuses; the text is the 400's reason phrase.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
enum Malformed {
    #[error("Bad Content-Length")]
    ContentLength,
    #[error("Content-Length exceeds body")]
    ShortBody,
    #[error("Bad Via")]
    Via,
    #[error("CSeq method does not match")]
    CSeqMethod,
}

fn check_request(
    req: &SipRequest,
    declared: Result<Option<usize>, ()>,
    data: &[u8],
) -> Result<(), Malformed> {
    let declared = declared.map_err(|_| Malformed::ContentLength)?;
    if let Some(len) = declared {
        let body_start = find_head_end(data).map(|p| p + 4).unwrap_or(data.len());
        if data.len().saturating_sub(body_start) < len {
            return Err(Malformed::ShortBody);
        }
    }
    if !req.sent_by.contains(|c: char| c.is_ascii_alphanumeric()) {
        return Err(Malformed::Via);
    }
    // Checked last: the extension-method path relies on this order.
    if req.method != req.cseq_method {
        return Err(Malformed::CSeqMethod);
    }
    Ok(())
}

fn short_reason(detail: &str) -> String {
    let cleaned: String = detail
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(60)
        .collect();
    format!("Malformed: {cleaned}")
}

/// Header fields we pick out, in order.
#[derive(Default)]
struct Fields {
    vias: Vec<String>,
    from: Option<String>,
    to: Option<String>,
    call_id: String,
    cseq: String,
    contact: Option<String>,
    contacts: Vec<String>,
    record_route: Vec<String>,
    path: Vec<String>,
    require: Vec<String>,
    supported: Vec<String>,
    content_type: Option<String>,
    max_forwards: Option<String>,
    expires: Option<String>,
    authorization: Option<String>,
    challenges: Vec<String>,
    refer_to: Option<String>,
    p_asserted_identity: Option<String>,
    remote_party_id: Option<String>,
}

impl Fields {
    fn collect<'a>(headers: impl Iterator<Item = &'a Header>) -> Fields {
        let mut f = Fields::default();
        for h in headers {
            f.add(h.name(), h.value());
        }
        f
    }

    fn add(&mut self, name: &str, value: &str) {
        let unfolded = unfold(value.trim());
        let value = unfolded.as_ref();
        match canonical_name(name) {
            "via" => self
                .vias
                .extend(split_list(value).into_iter().map(str::to_string)),
            "from" => self.from = Some(value.to_string()),
            "to" => self.to = Some(value.to_string()),
            "call-id" => self.call_id = value.to_string(),
            "cseq" => self.cseq = value.to_string(),
            "contact" => {
                let values = split_list(value);
                if self.contact.is_none() {
                    self.contact = values.first().map(|c| name_addr_uri(c).to_string());
                }
                self.contacts.extend(values.into_iter().map(str::to_string));
            }
            "expires" => self.expires = Some(value.to_string()),
            "authorization" => self.authorization = Some(value.to_string()),
            "www-authenticate" | "proxy-authenticate" => self.challenges.push(value.to_string()),
            "refer-to" => self.refer_to = Some(value.to_string()),
            "record-route" => self
                .record_route
                .extend(split_list(value).into_iter().map(str::to_string)),
            "path" => self
                .path
                .extend(split_list(value).into_iter().map(str::to_string)),
            "require" => self.require.extend(option_tags(value)),
            "supported" => self.supported.extend(option_tags(value)),
            "content-type" => self.content_type = Some(value.to_string()),
            "max-forwards" => self.max_forwards = Some(value.to_string()),
            "p-asserted-identity" if self.p_asserted_identity.is_none() => {
                self.p_asserted_identity = split_list(value).first().map(|v| v.to_string());
            }
            "remote-party-id" if self.remote_party_id.is_none() => {
                self.remote_party_id = split_list(value)
                    .into_iter()
                    .find(|v| {
                        !header_param(v, "party").is_some_and(|p| p.eq_ignore_ascii_case("called"))
                    })
                    .map(str::to_string);
            }
            _ => {}
        }
    }

    fn into_request(self, method: &str, uri: &str) -> Result<SipRequest, ParseError> {
        let top_via = self
            .vias
            .first()
            .ok_or(ParseError::Unanswerable("no Via"))?
            .clone();
        let from = self.from.ok_or(ParseError::Unanswerable("no From"))?;
        let to = self.to.ok_or(ParseError::Unanswerable("no To"))?;
        if self.call_id.is_empty() {
            return Err(ParseError::Unanswerable("no Call-ID"));
        }
        let (cseq, cseq_method) =
            parse_cseq(&self.cseq).ok_or(ParseError::Unanswerable("bad CSeq"))?;
        let branch = via_param(&top_via, "branch").unwrap_or_default();
        let sent_by = via_sent_by(&top_via).to_string();
        let max_forwards = self
            .max_forwards
            .map(|v| v.trim().parse::<u32>().unwrap_or(0));
        Ok(SipRequest {
            method: Method::parse(method),
            uri: uri.to_string(),
            from_tag: header_param(&from, "tag"),
            to_tag: header_param(&to, "tag"),
            vias: self.vias,
            branch,
            sent_by,
            from,
            to,
            call_id: self.call_id,
            cseq,
            cseq_method,
            cseq_raw: None,
            contact: self.contact,
            contacts: self.contacts,
            record_route: self.record_route,
            path: self.path,
            require: self.require,
            supported: self.supported,
            content_type: self.content_type,
            max_forwards,
            expires: self.expires,
            authorization: self.authorization,
            refer_to: self.refer_to,
            p_asserted_identity: self.p_asserted_identity,
            remote_party_id: self.remote_party_id,
            caller_id: None,
            body: Vec::new(),
        })
    }
}

/// The option tags of a Require or Supported value.
fn option_tags(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// A header value with its line folds (CRLF and the whitespace after it)
/// turned into one space, as RFC 3261 section 7.3.1 makes them equivalent.
fn unfold(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\r', '\n']) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' || c == '\n' {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            if !out.ends_with([' ', '\t']) {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Long and compact header names to one lowercase key.
fn canonical_name(name: &str) -> &'static str {
    let n = name.trim();
    let eq = |a: &str| n.eq_ignore_ascii_case(a);
    if eq("via") || eq("v") {
        "via"
    } else if eq("from") || eq("f") {
        "from"
    } else if eq("to") || eq("t") {
        "to"
    } else if eq("call-id") || eq("i") {
        "call-id"
    } else if eq("cseq") {
        "cseq"
    } else if eq("contact") || eq("m") {
        "contact"
    } else if eq("record-route") {
        "record-route"
    } else if eq("path") {
        "path"
    } else if eq("require") {
        "require"
    } else if eq("supported") || eq("k") {
        "supported"
    } else if eq("content-type") || eq("c") {
        "content-type"
    } else if eq("max-forwards") {
        "max-forwards"
    } else if eq("expires") {
        "expires"
    } else if eq("authorization") {
        "authorization"
    } else if eq("refer-to") || eq("r") {
        "refer-to"
    } else if eq("www-authenticate") {
        "www-authenticate"
    } else if eq("proxy-authenticate") {
        "proxy-authenticate"
    } else if eq("p-asserted-identity") {
        "p-asserted-identity"
    } else if eq("remote-party-id") {
        "remote-party-id"
    } else {
        ""
    }
}

/// Salvages the reply-addressing headers from a message the parser refused,
/// reading the header lines directly (unfolding continuation lines).
fn salvage_request(data: &[u8]) -> Result<SipRequest, ParseError> {
    let head_end = find_head_end(data).unwrap_or(data.len());
    let head = std::str::from_utf8(&data[..head_end])
        .map_err(|_| ParseError::Unanswerable("not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or_default();
    let mut parts = start.split_ascii_whitespace();
    let method = parts
        .next()
        .ok_or(ParseError::Unanswerable("empty start line"))?;
    let uri = parts.next().unwrap_or_default();
    let mut fields = Fields::default();
    let mut current: Option<(String, String)> = None;
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some((_, v)) = current.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((n, v)) = current.take() {
            fields.add(&n, &v);
        }
        if let Some((n, v)) = line.split_once(':') {
            current = Some((n.to_string(), v.to_string()));
        }
    }
    if let Some((n, v)) = current.take() {
        fields.add(&n, &v);
    }
    fields.into_request(method, uri)
}

/// Salvages what can address a reply to a request refused by a check:
/// any field may be missing except a Via (the reply goes to the packet's
/// source, and a client matches it by the Via branch). Missing fields are
/// left empty and left out of the reply.
fn salvage_lenient(data: &[u8]) -> Option<SipRequest> {
    let head = validate::head_text(data);
    let (start, lines) = validate::header_lines(&head);
    let mut parts = start.split_ascii_whitespace();
    let method = parts.next()?;
    let uri = parts.next().unwrap_or_default();
    let mut fields = Fields::default();
    for (name, value) in &lines {
        fields.add(name, value);
    }
    let top_via = fields.vias.first()?.clone();
    let (cseq, cseq_method, cseq_raw) = match parse_cseq(&fields.cseq) {
        Some((n, m)) => (n, m, None),
        None if fields.cseq.is_empty() => (0, Method::default(), None),
        None => (0, Method::default(), Some(fields.cseq.clone())),
    };
    let from = fields.from.unwrap_or_default();
    let to = fields.to.unwrap_or_default();
    Some(SipRequest {
        method: Method::parse(method),
        uri: uri.to_string(),
        branch: via_param(&top_via, "branch").unwrap_or_default(),
        sent_by: via_sent_by(&top_via).to_string(),
        vias: fields.vias,
        from_tag: header_param(&from, "tag"),
        to_tag: header_param(&to, "tag"),
        from,
        to,
        call_id: fields.call_id,
        cseq,
        cseq_method,
        cseq_raw,
        ..SipRequest::default()
    })
}

fn parse_cseq(value: &str) -> Option<(u32, Method)> {
    let mut parts = value.split_ascii_whitespace();
    let num = parts.next()?.parse::<u32>().ok()?;
    let method = Method::parse(parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some((num, method))
}

/// "SIP/2.0/UDP host:port;branch=..." -> "host:port". RFC 3261 allows
/// whitespace around the slashes ("SIP / 2.0 / UDP host"), so the sent-by
/// is what follows the transport after the second slash.
pub fn via_sent_by(via: &str) -> &str {
    let mut rest = via;
    for _ in 0..2 {
        rest = rest.split_once('/').map(|(_, r)| r).unwrap_or_default();
    }
    let after_transport = rest
        .trim_start()
        .split_once([' ', '\t'])
        .map(|(_, r)| r)
        .unwrap_or_default();
    after_transport.split(';').next().unwrap_or_default().trim()
}

/// User part of a sip:/tel: URI ("sip:4001@host;x" -> "4001").
pub fn uri_user(uri: &str) -> &str {
    let rest = uri.split_once(':').map(|(_, r)| r).unwrap_or(uri);
    let rest = rest.split(['?']).next().unwrap_or_default();
    match rest.split_once('@') {
        Some((user, _)) => user.split(';').next().unwrap_or_default(),
        None if uri.to_ascii_lowercase().starts_with("tel:") => {
            rest.split(';').next().unwrap_or_default()
        }
        None => "",
    }
}

/// The Call-ID of a message the engine wrote (full or compact header
/// name), without parsing the rest: for routing outputs, not for input.
pub fn call_id_of(data: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(data).ok()?;
    let head = text.split("\r\n\r\n").next()?;
    head.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("Call-ID") || name.eq_ignore_ascii_case("i"))
            .then(|| value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_id_of_reads_the_header_only() {
        let bye = b"BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\ncall-id:  abc@h \r\nCSeq: 2 BYE\r\n\r\nCall-ID: body";
        assert_eq!(call_id_of(bye), Some("abc@h"));
        assert_eq!(call_id_of(b"SIP/2.0 200 OK\r\ni: x\r\n\r\n"), Some("x"));
        assert_eq!(call_id_of(b"SIP/2.0 200 OK\r\n\r\n"), None);
    }

    const INVITE: &str = "INVITE sip:4008@127.0.0.1:5060 SIP/2.0\r\n\
v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n\
f: \"Alice Li\" <sip:13800138000@127.0.0.1:5070>;tag=abc\r\n\
t: <sip:4008@127.0.0.1>\r\n\
i: call-1@host\r\n\
CSeq: 1 INVITE\r\n\
m: <sip:alice@127.0.0.1:5070>\r\n\
Record-Route: <sip:p1;lr>, <sip:p2;lr>\r\n\
Subject: folded\r\n continued\r\n\
c: application/sdp\r\n\
l: 4\r\n\r\nv=0\r\n";

    #[test]
    fn the_caller_comes_from_the_header_chosen() {
        let msg = INVITE.replace(
            "Subject:",
            "p-asserted-identity: <tel:+86-138-0013-8001>, <sip:x@h>\r\n\
             Remote-Party-ID: <sip:4008@h>;party=called\r\n\
             Remote-Party-ID: \"Bo\" <sip:13900139000@h>;party=calling\r\nSubject:",
        );
        let SipMessage::Request(mut r) = parse(msg.as_bytes()).expect("parses") else {
            panic!("expected a request")
        };
        assert_eq!(r.caller_number(), "13800138000", "From until chosen");
        r.take_caller_id(CallerIdFrom::PAssertedIdentity);
        assert_eq!(r.caller_number(), "+86-138-0013-8001");
        assert_eq!(r.caller_name().as_deref(), Some("Alice Li"), "From's name");
        r.take_caller_id(CallerIdFrom::RemotePartyId);
        assert_eq!(r.caller_number(), "13900139000", "the calling party's");
        assert_eq!(r.caller_name().as_deref(), Some("Bo"));
        r.take_caller_id(CallerIdFrom::From);
        assert_eq!(r.caller_number(), "13800138000");
        let toml: CallerIdFrom =
            serde::Deserialize::deserialize(serde::de::value::StrDeserializer::<
                serde::de::value::Error,
            >::new("p-asserted-identity"))
            .expect("config form");
        assert_eq!(toml, CallerIdFrom::PAssertedIdentity);
    }

    #[test]
    fn compact_forms_folding_and_lists() {
        let SipMessage::Request(r) = parse(INVITE.as_bytes()).expect("parses") else {
            panic!("expected a request")
        };
        assert_eq!(r.method, Method::Invite);
        assert_eq!(r.branch, "z9hG4bK-1");
        assert_eq!(r.sent_by, "127.0.0.1:5070");
        assert_eq!(r.from_tag.as_deref(), Some("abc"));
        assert_eq!(r.from_user(), "13800138000");
        assert_eq!(r.from_display_name().as_deref(), Some("Alice Li"));
        assert_eq!(r.to_tag, None);
        assert_eq!(r.uri_user(), "4008");
        assert_eq!(r.call_id, "call-1@host");
        assert_eq!(r.contact.as_deref(), Some("sip:alice@127.0.0.1:5070"));
        assert_eq!(r.record_route, vec!["<sip:p1;lr>", "<sip:p2;lr>"]);
        // Content-Length cuts the body.
        assert_eq!(r.body, b"v=0\r");
    }

    #[test]
    fn content_length_beyond_body_is_400() {
        let msg = INVITE.replace("l: 4", "l: 400");
        match parse(msg.as_bytes()) {
            Err(ParseError::BadRequest { reason, .. }) => {
                assert!(reason.contains("Content-Length"))
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = INVITE.replace("l: 4", "l: four");
        assert!(matches!(
            parse(msg.as_bytes()),
            Err(ParseError::BadRequest { .. })
        ));
    }

    #[test]
    fn missing_call_id_is_400_and_missing_via_unanswerable() {
        // RFC 4475 3.3.1: answer what lacks a required field, when a Via
        // says where the answer goes.
        let msg = INVITE.replace("i: call-1@host\r\n", "");
        match parse(msg.as_bytes()) {
            Err(ParseError::BadRequest { reason, request }) => {
                assert_eq!(reason, "Missing Call-ID");
                assert_eq!(request.branch, "z9hG4bK-1");
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = INVITE.replace(
            "v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n",
            "",
        );
        assert!(matches!(
            parse(msg.as_bytes()),
            Err(ParseError::Unanswerable(_))
        ));
    }

    #[test]
    fn overlong_message_is_513_when_answerable() {
        let limits = ParseLimits {
            max_message_size: 400,
            ..ParseLimits::default()
        };
        // INVITE is 340 bytes (its body 5 bytes, 4 declared); 100 more
        // bytes make 440, past 400.
        let mut big = INVITE.replace("l: 4", "l: 104").into_bytes();
        big.extend_from_slice(&[b'x'; 100]);
        assert!(big.len() > 400);
        match parse_with(&big, &limits) {
            Err(ParseError::Refused {
                status, request, ..
            }) => {
                assert_eq!(status, 513);
                assert_eq!(request.call_id, "call-1@host");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            parse_with(&[b'a'; 500], &limits),
            Err(ParseError::Unanswerable(_))
        ));
    }

    #[test]
    fn declared_body_over_the_limit_is_413() {
        let limits = ParseLimits {
            max_message_size: 1000,
            ..ParseLimits::default()
        };
        let msg = INVITE.replace("l: 4", "l: 5000");
        match parse_with(msg.as_bytes(), &limits) {
            Err(ParseError::Refused { status, .. }) => assert_eq!(status, 413),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unreadable_cseq_is_echoed() {
        let msg = INVITE.replace("CSeq: 1 INVITE", "CSeq: 99999999999 INVITE");
        match parse(msg.as_bytes()) {
            Err(ParseError::BadRequest { reason, request }) => {
                assert_eq!(reason, "Bad CSeq");
                assert_eq!(request.cseq_raw.as_deref(), Some("99999999999 INVITE"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unknown_scheme_is_416() {
        let msg = INVITE.replace("sip:4008@127.0.0.1:5060 SIP", "http://example.com SIP");
        assert!(matches!(
            parse(msg.as_bytes()),
            Err(ParseError::UnsupportedScheme { .. })
        ));
    }

    #[test]
    fn escaped_quote_in_a_parameter_hides_no_tag() {
        // The parser and the checks split parameters with one lexer: the
        // `;tag=b` inside the quoted value is not the From tag.
        let msg = INVITE.replace(";tag=abc", r#";x="a\";tag=b";tag=real"#);
        let SipMessage::Request(r) = parse(msg.as_bytes()).expect("parses") else {
            panic!()
        };
        assert_eq!(r.from_tag.as_deref(), Some("real"));
    }

    #[test]
    fn ipv6_reference_in_via() {
        let msg = INVITE.replace("127.0.0.1:5070;branch", "[::1]:5070;branch");
        let SipMessage::Request(r) = parse(msg.as_bytes()).expect("parses") else {
            panic!()
        };
        assert_eq!(r.sent_by, "[::1]:5070");
    }

    #[test]
    fn garbage_never_panics() {
        for data in [
            &b""[..],
            b"\r\n\r\n",
            b"INVITE",
            b"SIP/2.0 200\r\n\r\n",
            &[0xff; 40],
        ] {
            let _ = parse(data);
        }
    }

    #[test]
    fn contact_with_quoted_angle_brackets_in_a_parameter() {
        let c = "<sip:1002-0x55e5@127.0.0.1:15593>;expires=60;+sip.instance=\"<urn:uuid:9014>\"";
        assert_eq!(name_addr_uri(c), "sip:1002-0x55e5@127.0.0.1:15593");
        assert_eq!(header_param(c, "expires").as_deref(), Some("60"));
        assert_eq!(
            header_param(c, "+sip.instance").as_deref(),
            Some("\"<urn:uuid:9014>\"")
        );
        let named = "\"A <b>\" <sip:a@b>;tag=1";
        assert_eq!(name_addr_uri(named), "sip:a@b");
        assert_eq!(header_param(named, "tag").as_deref(), Some("1"));
    }

    #[test]
    fn path_and_supported_keep_their_order() {
        let msg = "REGISTER sip:pbx.test SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-p\r\n\
Path: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
From: <sip:1001@pbx.test>;tag=a\r\n\
To: <sip:1001@pbx.test>\r\n\
path: \"Edge, \\\"B\\\"\" <sip:p3.example.com;lr>\r\n\
Call-ID: p-1\r\n\
CSeq: 1 REGISTER\r\n\
k: outbound, path\r\n\
Supported: gruu\r\n\
Content-Length: 0\r\n\r\n";
        let SipMessage::Request(r) = parse(msg.as_bytes()).expect("parses") else {
            panic!()
        };
        assert_eq!(
            r.path,
            [
                "<sip:p1.example.com;lr>",
                "<sip:p2.example.com;lr>",
                r#""Edge, \"B\"" <sip:p3.example.com;lr>"#
            ]
        );
        assert_eq!(r.supported, ["outbound", "path", "gruu"]);
        assert!(r.supports("path") && !r.supports("100rel"));
    }

    #[test]
    fn response_fields() {
        let msg = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
        let SipMessage::Response(r) = parse(msg.as_bytes()).expect("parses") else {
            panic!()
        };
        assert_eq!((r.status, r.cseq, r.cseq_method), (200, 2, Method::Bye));
        assert_eq!(r.branch, "z9hG4bKx");
    }
}
