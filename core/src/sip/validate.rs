//! Syntax checks on a request's start line and header fields, made on the
//! raw text before (and independently of) rsipstack's parser, which is
//! lenient where RFC 3261 is not: multiple Content-Lengths, spaces inside
//! `<...>`, unquoted display names with commas, headers in a Request-URI,
//! extra spaces in the request line (RFC 4475 section 3.1.2 and 3.3).
//!
//! Every check says which field is wrong, so the 400 says it too.

use std::borrow::Cow;

use super::params::{name_addr_uri, name_value, quoted_end, split_list, split_params};

/// Limits on one message, checked before anything else is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Bytes in one message (a datagram, or head and body on TCP): 513.
    pub max_message_size: usize,
    /// Header fields in one message: 400 "Too Many Headers".
    pub max_headers: usize,
    /// Bytes in one header field (continuation lines included) or in the
    /// request line: 400 "Header Too Long".
    pub max_header_line: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_message_size: 65_535,
            max_headers: 100,
            max_header_line: 8 * 1024,
        }
    }
}

/// Why a request is refused, before any state is touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 400 Bad Request with this reason phrase.
    Bad(&'static str),
    /// Another final status (505, 513, ...), with headers to add.
    Status {
        status: u16,
        reason: &'static str,
        headers: &'static [(&'static str, &'static str)],
    },
    /// No reply can be addressed (no Via): the message is dropped.
    Unanswerable(&'static str),
}

/// Header fields that may appear once (RFC 3261 section 7.3.1); a second
/// copy makes the message ambiguous (RFC 4475 3.3.8, 3.3.9).
const SINGLE: [(&str, &str); 6] = [
    ("to", "Duplicate To"),
    ("from", "Duplicate From"),
    ("call-id", "Duplicate Call-ID"),
    ("cseq", "Duplicate CSeq"),
    ("max-forwards", "Duplicate Max-Forwards"),
    ("content-length", "Duplicate Content-Length"),
];

/// Offset of the blank line ending the header section (start of "\r\n\r\n").
pub fn find_head_end(data: &[u8]) -> Option<usize> {
    data.windows(4).position(|w| w == b"\r\n\r\n")
}

/// The header section as text (lossy: the checks only look at ASCII
/// structure), up to the blank line or the end of the data.
pub fn head_text(data: &[u8]) -> Cow<'_, str> {
    let end = find_head_end(data).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end])
}

/// The start line and the header fields, unfolded (continuation lines
/// joined with one space), names trimmed. A line with no colon is kept
/// with an empty name so that the checks can refuse it.
pub fn header_lines(head: &str) -> (&str, Vec<(&str, String)>) {
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or_default();
    let mut fields: Vec<(&str, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
                continue;
            }
        }
        match line.split_once(':') {
            Some((name, value)) => fields.push((name.trim(), value.trim().to_string())),
            None => fields.push(("", line.to_string())),
        }
    }
    (start, fields)
}

/// Header count and line length limits, checked before anything else so
/// that a hostile head costs little.
pub fn check_limits(head: &str, limits: &ParseLimits) -> Result<(), Fault> {
    let mut headers = 0usize;
    let mut logical = 0usize;
    for (i, line) in head.split("\r\n").enumerate() {
        if i == 0 {
            if line.len() > limits.max_header_line {
                return Err(Fault::Bad("Request-Line Too Long"));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            logical += line.len();
        } else {
            headers += 1;
            logical = line.len();
        }
        if headers > limits.max_headers {
            return Err(Fault::Bad("Too Many Headers"));
        }
        if logical > limits.max_header_line {
            return Err(Fault::Bad("Header Too Long"));
        }
    }
    Ok(())
}

/// `Method SP Request-URI SP SIP-Version`, single spaces, nothing else
/// (RFC 3261 section 25.1; RFC 4475 3.1.2.7 to 3.1.2.11 and 3.1.2.16).
pub fn check_request_line(start: &str) -> Result<(), Fault> {
    let parts: Vec<&str> = start.split(' ').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(Fault::Bad("Bad Request-Line"));
    }
    let (method, uri, version) = (parts[0], parts[1], parts[2]);
    if !is_token(method) {
        return Err(Fault::Bad("Bad Method"));
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        let numbered = version
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
            && version[4..]
                .split_once('.')
                .is_some_and(|(a, b)| is_digits(a) && is_digits(b));
        return Err(if numbered {
            Fault::Status {
                status: 505,
                reason: "Version Not Supported",
                headers: &[],
            }
        } else {
            Fault::Bad("Bad Request-Line")
        });
    }
    check_request_uri(uri)
}

fn check_request_uri(uri: &str) -> Result<(), Fault> {
    let bad = Err(Fault::Bad("Bad Request-URI"));
    let Some((scheme, rest)) = uri.split_once(':') else {
        return bad;
    };
    if !is_scheme(scheme) || rest.is_empty() || uri.contains(['<', '>', '"', '\t']) {
        return bad;
    }
    // Headers (`?Route=...`) are not allowed in a Request-URI (RFC 3261
    // section 19.1.5, RFC 4475 3.1.2.11).
    // The user part may hold a `?`; headers come after the host.
    let sip = scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips");
    let host_part = rest.split_once('@').map_or(rest, |(_, host)| host);
    if sip && host_part.contains('?') {
        return bad;
    }
    Ok(())
}

/// The header fields of a request with method `method`.
pub fn check_headers(method: &str, fields: &[(&str, String)]) -> Result<(), Fault> {
    let mut counts = [0usize; SINGLE.len()];
    let mut has_via = false;
    for (name, value) in fields {
        if name.is_empty() {
            return Err(Fault::Bad("Malformed Header Line"));
        }
        if !is_token(name) {
            return Err(Fault::Bad("Bad Header Name"));
        }
        let canonical = canonical(name);
        if let Some(i) = SINGLE.iter().position(|(n, _)| *n == canonical) {
            counts[i] += 1;
            if counts[i] > 1 {
                return Err(Fault::Bad(SINGLE[i].1));
            }
        }
        match canonical {
            "via" => {
                has_via = true;
                let values = split_list(value);
                if values.is_empty() || !values.iter().all(|v| valid_via(v)) {
                    return Err(Fault::Bad("Bad Via"));
                }
            }
            "from" if !valid_name_addr(value) => return Err(Fault::Bad("Bad From")),
            "to" if !valid_name_addr(value) => return Err(Fault::Bad("Bad To")),
            "contact" if value != "*" && !split_list(value).iter().all(|v| valid_name_addr(v)) => {
                return Err(Fault::Bad("Bad Contact"))
            }
            "cseq" if !valid_cseq(value) => return Err(Fault::Bad("Bad CSeq")),
            "max-forwards" if !valid_max_forwards(value) => {
                return Err(Fault::Bad("Bad Max-Forwards"))
            }
            "content-length" if !is_digits(value) => return Err(Fault::Bad("Bad Content-Length")),
            "date" if !valid_date(value) => return Err(Fault::Bad("Bad Date")),
            _ => {}
        }
    }
    if !has_via {
        return Err(Fault::Unanswerable("no Via"));
    }
    for (i, missing) in [
        "Missing To",
        "Missing From",
        "Missing Call-ID",
        "Missing CSeq",
    ]
    .into_iter()
    .enumerate()
    {
        if counts[i] == 0 {
            return Err(Fault::Bad(missing));
        }
    }
    if method.eq_ignore_ascii_case("REGISTER") {
        // The To of a REGISTER is the address of record: a SIP URI
        // (RFC 3261 section 10.2; RFC 4475 3.3.4).
        let to = fields
            .iter()
            .find(|(n, _)| canonical(n) == "to")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        let scheme = name_addr_uri(to)
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if scheme != "sip" && scheme != "sips" {
            return Err(Fault::Bad("Bad To"));
        }
    }
    Ok(())
}

/// An INVITE's body must be SDP (415), and its Accept, when present, must
/// let the answer carry SDP (406) (RFC 3261 sections 21.4.13 and 21.4.7;
/// RFC 4475 3.3.6 and 3.3.15). Both replies say what would do.
pub fn check_invite_media(fields: &[(&str, String)], has_body: bool) -> Result<(), Fault> {
    const ACCEPT_SDP: &[(&str, &str)] = &[("Accept", "application/sdp")];
    let content_type = fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type") || n.eq_ignore_ascii_case("c"))
        .map(|(_, v)| media_type(v));
    if has_body && content_type.is_some_and(|t| !t.eq_ignore_ascii_case("application/sdp")) {
        return Err(Fault::Status {
            status: 415,
            reason: "Unsupported Media Type",
            headers: ACCEPT_SDP,
        });
    }
    let mut accepts = fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("accept"))
        .peekable();
    if accepts.peek().is_none() {
        return Ok(());
    }
    let sdp_ok = accepts
        .flat_map(|(_, v)| v.split(','))
        .map(media_type)
        .any(|m| {
            ["application/sdp", "application/*", "*/*"]
                .iter()
                .any(|ok| m.eq_ignore_ascii_case(ok))
        });
    if sdp_ok {
        Ok(())
    } else {
        Err(Fault::Status {
            status: 406,
            reason: "Not Acceptable",
            headers: ACCEPT_SDP,
        })
    }
}

/// `type/subtype` of a media type, parameters dropped.
fn media_type(value: &str) -> &str {
    value.split(';').next().unwrap_or_default().trim()
}

/// Long and compact names of the fields checked here, lowercased.
fn canonical(name: &str) -> &str {
    const COMPACT: [(&str, &str); 6] = [
        ("v", "via"),
        ("f", "from"),
        ("t", "to"),
        ("i", "call-id"),
        ("m", "contact"),
        ("l", "content-length"),
    ];
    const LONG: [&str; 8] = [
        "via",
        "from",
        "to",
        "call-id",
        "cseq",
        "contact",
        "max-forwards",
        "content-length",
    ];
    if let Some((_, long)) = COMPACT.iter().find(|(c, _)| name.eq_ignore_ascii_case(c)) {
        return long;
    }
    if let Some(long) = LONG.iter().find(|l| name.eq_ignore_ascii_case(l)) {
        return long;
    }
    if name.eq_ignore_ascii_case("date") {
        return "date";
    }
    ""
}

/// `SIP / 2.0 / transport LWS host[:port] *(; name[=value])`, with the
/// optional whitespace RFC 3261 allows around the slashes (RFC 4475 3.1.1.1).
fn valid_via(value: &str) -> bool {
    let mut rest = value.trim_start();
    // protocol-name SLASH protocol-version SLASH transport
    for part in 0..3 {
        let end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
        if end == 0 {
            return false;
        }
        rest = &rest[end..];
        if part < 2 {
            let Some(after) = rest.trim_start().strip_prefix('/') else {
                return false;
            };
            rest = after.trim_start();
        }
    }
    // LWS, then sent-by.
    if !rest.starts_with([' ', '\t']) {
        return false;
    }
    let rest = rest.trim_start();
    let (sent_by, params) = match rest.split_once(';') {
        Some((s, p)) => (s.trim_end(), Some(p)),
        None => (rest.trim_end(), None),
    };
    valid_host_port(sent_by) && params.is_none_or(valid_params)
}

fn valid_host_port(s: &str) -> bool {
    let (host_ok, port) = if let Some(v6) = s.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return false;
        };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        let ok = !addr.is_empty()
            && addr
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        (ok, port)
    } else {
        let (host, port) = match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        let ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        (ok, port)
    };
    host_ok && port.is_none_or(|p| is_digits(p) && p.parse::<u32>().is_ok_and(|n| n <= 65535))
}

/// `name[=value]` separated by `;` (the text after the first `;`): no
/// empty parameters (RFC 4475 3.1.2.1).
fn valid_params(params: &str) -> bool {
    split_params(params).into_iter().all(|p| {
        let (name, value) = name_value(p);
        is_token(name) && value.is_none_or(|v| !v.is_empty() && valid_param_value(v))
    })
}

fn valid_param_value(v: &str) -> bool {
    if let Some(inner) = v.strip_prefix('"') {
        // The closing quote must be the last character (`"` alone has none).
        return quoted_end(inner).is_some_and(|end| end + 1 == inner.len());
    }
    // token, host or IPv6 reference: no whitespace or separators.
    !v.contains(|c: char| c.is_whitespace() || "\",;<>".contains(c))
}

/// From, To or one Contact value: `[display-name] <URI> *(;param)` or
/// `URI *(;param)` (RFC 3261 section 20.10, RFC 4475 3.1.2.6, 3.1.2.13 to
/// 3.1.2.15).
fn valid_name_addr(value: &str) -> bool {
    let value = value.trim();
    let (uri, params) = if let Some(quoted) = value.strip_prefix('"') {
        let Some(close) = quoted_end(quoted) else {
            return false;
        };
        let after = quoted[close + 1..].trim_start();
        let Some(inner) = after.strip_prefix('<') else {
            return false;
        };
        match angle_uri(inner) {
            Some(parts) => parts,
            None => return false,
        }
    } else if let Some(open) = value.find('<') {
        // An unquoted display name is tokens (RFC 4475 3.1.2.15: a comma
        // is not one). Non-ASCII words are let through: some PBXs send
        // callers' names unquoted in UTF-8, and they are unambiguous.
        let display = value[..open].trim();
        if !display
            .split([' ', '\t'])
            .filter(|w| !w.is_empty())
            .all(|w| w.chars().all(|c| is_token_char(c) || !c.is_ascii()))
        {
            return false;
        }
        match angle_uri(&value[open + 1..]) {
            Some(parts) => parts,
            None => return false,
        }
    } else {
        // addr-spec: a URI with a comma, `?` or `;` of its own would need
        // the angle brackets; the `;` here starts the header parameters.
        let (uri, params) = match value.split_once(';') {
            Some((u, p)) => (u.trim_end(), Some(p)),
            None => (value, None),
        };
        if uri.contains(['?', ',', '"']) {
            return false;
        }
        (uri, params)
    };
    valid_uri_text(uri) && params.is_none_or(valid_params)
}

/// The URI inside `<...>` (after the `<`) and the parameters after `>`.
fn angle_uri(inner: &str) -> Option<(&str, Option<&str>)> {
    let close = inner.find('>')?;
    let uri = &inner[..close];
    let after = inner[close + 1..].trim_start();
    if after.is_empty() {
        return Some((uri, None));
    }
    after.strip_prefix(';').map(|p| (uri, Some(p)))
}

/// A URI as written: `scheme:rest`, with no whitespace or brackets in it
/// (RFC 4475 3.1.2.14: `< sip:a@b >` is malformed).
fn valid_uri_text(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    is_scheme(scheme)
        && !rest.is_empty()
        && !uri.contains(|c: char| c.is_whitespace() || c == '<' || c == '>')
}

/// `1*DIGIT LWS Method`, the number below 2**31 (RFC 3261 section 8.1.1.5;
/// RFC 4475 3.1.2.4).
fn valid_cseq(value: &str) -> bool {
    let mut parts = value.split_ascii_whitespace();
    let (Some(number), Some(method), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    is_digits(number) && number.parse::<u32>().is_ok_and(|n| n < 1 << 31) && is_token(method)
}

/// 0 to 255 (RFC 3261 section 20.22 allows leading zeros).
fn valid_max_forwards(value: &str) -> bool {
    is_digits(value) && value.parse::<u32>().is_ok_and(|n| n <= 255)
}

/// RFC 1123 date in GMT: `Sat, 13 Nov 2010 23:29:00 GMT` (RFC 3261
/// section 20.17; RFC 4475 3.1.2.12).
fn valid_date(value: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = value.split_ascii_whitespace().collect();
    let [day, date, month, year, time, zone] = parts.as_slice() else {
        return false;
    };
    let Some(day) = day.strip_suffix(',') else {
        return false;
    };
    let clock: Vec<&str> = time.split(':').collect();
    DAYS.contains(&day)
        && date.len() == 2
        && is_digits(date)
        && MONTHS.contains(month)
        && year.len() == 4
        && is_digits(year)
        && clock.len() == 3
        && clock.iter().all(|c| c.len() == 2 && is_digits(c))
        && *zone == "GMT"
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// RFC 3261 token characters.
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vias() {
        for ok in [
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport",
            "SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw",
            "SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8",
            "SIP/2.0/UDP [::1]:5070;branch=x",
            "SIP/2.0/TCP host.example.com;received=192.0.2.5;branch=abc",
            "SIP/2.0/UDP iftgw.example.com",
        ] {
            assert!(valid_via(ok), "{ok}");
        }
        for bad in [
            "SIP/2.0/UDP 192.0.2.15;;",
            ";",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP host;branch=",
            "SIP/2.0UDP host",
            "SIP/2.0/UDP ho st",
            "SIP/2.0/UDP host:99999999",
            "SIP/2.0/UDP [::1",
        ] {
            assert!(!valid_via(bad), "{bad}");
        }
    }

    #[test]
    fn name_addrs() {
        for ok in [
            "sip:user@example.com",
            "<sip:a@b>;tag=1",
            "\"A <b>\" <sip:a@b>;tag=1",
            "caller<sip:caller@example.com>;tag=323",
            "token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;x=\"y;z\"",
            "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
            "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>   ;   tag = 98asjd8",
            "张三 <sip:13800138000@example.com>;tag=1",
            "sip:+19725552222@gw1.example.net;unknownparam",
            "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>",
        ] {
            assert!(valid_name_addr(ok), "{ok}");
        }
        for bad in [
            "\"Mr. J. User <sip:j.user@example.com>",
            "\"Watson, Thomas\" < sip:t.watson@example.org >",
            "Watson, Thomas <sip:t.watson@example.org>",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "\"Joe\" <sip:joe@example.org>;;;;",
            "<sip:a@b",
            "",
            "<>",
            "<sip:a@b>;p=\"",
            "<sip:a@b>;p=\"x\"y",
        ] {
            assert!(!valid_name_addr(bad), "{bad}");
        }
    }

    #[test]
    fn request_lines() {
        assert_eq!(check_request_line("INVITE sip:a@b SIP/2.0"), Ok(()));
        assert_eq!(
            check_request_line("OPTIONS sip:a@b SIP/7.0"),
            Err(Fault::Status {
                status: 505,
                reason: "Version Not Supported",
                headers: &[],
            })
        );
        for bad in [
            "INVITE  sip:a@b SIP/2.0",
            "INVITE sip:a@b SIP/2.0  ",
            "INVITE sip:a@b; lr SIP/2.0",
            "INVITE sip:a@b",
            "INVITE sip:a@b HTTP/1.1",
        ] {
            assert_eq!(
                check_request_line(bad),
                Err(Fault::Bad("Bad Request-Line")),
                "{bad}"
            );
        }
        for bad in [
            "INVITE <sip:a@b> SIP/2.0",
            "INVITE sip:a@b?Route=x SIP/2.0",
            "INVITE nocolon SIP/2.0",
        ] {
            assert_eq!(
                check_request_line(bad),
                Err(Fault::Bad("Bad Request-URI")),
                "{bad}"
            );
        }
    }

    #[test]
    fn scalars() {
        assert!(valid_cseq("0009 INVITE"));
        assert!(!valid_cseq("36893488147419103232 REGISTER"));
        // 2**31 = 2147483648 is one past the largest CSeq.
        assert!(valid_cseq("2147483647 INVITE"));
        assert!(!valid_cseq("2147483648 INVITE"));
        assert!(valid_max_forwards("0068"));
        assert!(!valid_max_forwards("300"));
        assert!(valid_date("Sat, 15 Oct 2005 04:44:56 GMT"));
        assert!(!valid_date("Fri, 01 Jan 2010 16:00:00 EST"));
    }

    #[test]
    fn limits() {
        let limits = ParseLimits {
            max_headers: 2,
            max_header_line: 20,
            ..ParseLimits::default()
        };
        assert_eq!(
            check_limits("M sip:a SIP/2.0\r\nA: 1\r\nB: 2", &limits),
            Ok(())
        );
        assert_eq!(
            check_limits("M sip:a SIP/2.0\r\nA: 1\r\nB: 2\r\nC: 3", &limits),
            Err(Fault::Bad("Too Many Headers"))
        );
        // Folding does not hide a long header: 8 + 10 + 10 > 20.
        assert_eq!(
            check_limits(
                "M sip:a SIP/2.0\r\nA: 123456\r\n 123456789\r\n 123456789",
                &limits
            ),
            Err(Fault::Bad("Header Too Long"))
        );
    }
}
