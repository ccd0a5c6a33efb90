//! The lexer for header field values, shared by the parser (`message`),
//! the syntax checks (`validate`) and the digest code, so that a value
//! splits the same way wherever it is read: quoted strings with `\`
//! escapes, `;name=value` parameters, comma-separated values, and the
//! `<...>` of a name-addr (RFC 3261 section 25.1).

/// Where the lexer is within a header value.
#[derive(Clone, Copy)]
enum State {
    Plain,
    Quoted,
    /// Just after a `\` inside a quoted string.
    Escaped,
    /// Inside `<...>`, where only `>` matters (a URI holds no quote).
    Angle,
}

/// The characters of `value` that stand outside quoted strings (and, with
/// `angles`, outside `<...>`), with their offsets. An opening `<` is
/// reported; the quotes and everything between them are not.
fn top_level(value: &str, angles: bool) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut state = State::Plain;
    value.char_indices().filter(move |&(_, c)| {
        let (next, top) = match (state, c) {
            (State::Plain, '"') => (State::Quoted, false),
            (State::Plain, '<') if angles => (State::Angle, true),
            (State::Plain, _) => (State::Plain, true),
            (State::Quoted, '\\') => (State::Escaped, false),
            (State::Quoted, '"') => (State::Plain, false),
            (State::Quoted | State::Escaped, _) => (State::Quoted, false),
            (State::Angle, '>') => (State::Plain, false),
            (State::Angle, _) => (State::Angle, false),
        };
        state = next;
        top
    })
}

/// The pieces between top-level `sep`s, empty ones kept; lazily, so a
/// lookup that stops at its parameter allocates nothing (responses look
/// up Via parameters for every message).
fn pieces_top(value: &str, sep: char, angles: bool) -> impl Iterator<Item = &str> + '_ {
    let mut cuts = top_level(value, angles)
        .filter(move |&(_, c)| c == sep)
        .map(|(i, _)| i);
    let mut start = Some(0);
    std::iter::from_fn(move || {
        let from = start?;
        match cuts.next() {
            Some(i) => {
                start = Some(i + sep.len_utf8());
                Some(&value[from..i])
            }
            None => {
                start = None;
                Some(&value[from..])
            }
        }
    })
}

/// Splits at every top-level `sep`, keeping empty pieces.
fn split_top(value: &str, sep: char, angles: bool) -> Vec<&str> {
    pieces_top(value, sep, angles).collect()
}

/// The values of a comma-separated header (Via, Contact, Route, Path ...),
/// trimmed, empty elements dropped. Commas inside quoted strings and
/// `<...>` do not split.
pub fn split_list(value: &str) -> Vec<&str> {
    split_top(value, ',', true)
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Splits parameters (`a=1;b="x;y"`, the text after the first `;`) at the
/// semicolons outside quoted strings. Pieces are not trimmed and empty
/// ones are kept, so that a check can refuse `;;`.
pub fn split_params(params: &str) -> Vec<&str> {
    split_top(params, ';', false)
}

/// One parameter as (name, value), trimmed; `None` for a flag (`lr`).
pub fn name_value(param: &str) -> (&str, Option<&str>) {
    match param.split_once('=') {
        Some((name, value)) => (name.trim(), Some(value.trim())),
        None => (param.trim(), None),
    }
}

/// The value of parameter `name` (case-insensitive) among `params`, as
/// written (quoted values keep their quotes); `Some("")` for a flag.
pub fn find_param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    pieces_top(params, ';', false).find_map(|p| {
        let (n, v) = name_value(p);
        n.eq_ignore_ascii_case(name).then_some(v.unwrap_or(""))
    })
}

/// Offset in `s` of the quote closing a quoted string whose opening quote
/// comes just before `s`, honouring `\` escapes.
pub fn quoted_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// The text of `s` when it is exactly one quoted string, with its escapes
/// (`\"`, `\\`) undone.
pub fn unquote(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?;
    if quoted_end(inner)? + 1 != inner.len() {
        return None;
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner[..inner.len() - 1].chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(out)
}

/// `s` as a quoted string, with `"` and `\` escaped: what [`unquote`]
/// undoes.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Where the `<...>` of a name-addr is: the first `<` outside a quoted
/// display name, and the first `>` after it (a URI holds no `>`). Quoted
/// parameter values after it may hold `<`/`>` (`+sip.instance="<urn:..>"`).
pub fn angle_span(value: &str) -> Option<(usize, usize)> {
    let (open, _) = top_level(value, true).find(|&(_, c)| c == '<')?;
    let close = value[open..].find('>')? + open;
    Some((open, close))
}

/// The URI inside a name-addr (`"Name" <sip:..>;tag=x`) or an addr-spec.
pub fn name_addr_uri(value: &str) -> &str {
    match angle_span(value) {
        Some((open, close)) => value[open + 1..close].trim(),
        None => value.split(';').next().unwrap_or_default().trim(),
    }
}

/// The display name of a name-addr, unquoted and trimmed.
pub fn display_name(value: &str) -> Option<String> {
    let (open, _) = angle_span(value)?;
    let written = value[..open].trim();
    let name = unquote(written).unwrap_or_else(|| written.to_string());
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// The header parameters after a name-addr or addr-spec (the text after
/// `>`, or after an addr-spec's first `;`, where its parameters begin).
pub fn header_params(value: &str) -> &str {
    match angle_span(value) {
        Some((_, close)) => &value[close + 1..],
        None => value.split_once(';').map_or("", |(_, p)| p),
    }
}

/// A header parameter outside the URI (the From/To tag, a Contact's
/// expires) that has a value, quoted values kept whole.
pub fn header_param(value: &str, name: &str) -> Option<String> {
    find_param(header_params(value), name)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A Via parameter's value (`Some("")` for a flag such as `rport`).
pub fn via_param(via: &str, name: &str) -> Option<String> {
    let params = via.split_once(';').map_or("", |(_, p)| p);
    find_param(params, name).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_outside_quotes_and_angles() {
        assert_eq!(
            split_list("<sip:p1;lr>, <sip:p2;lr>"),
            ["<sip:p1;lr>", "<sip:p2;lr>"]
        );
        // A comma in a display name, in a URI and in a quoted parameter.
        assert_eq!(
            split_list("\"Watson, T\" <sip:a@b>;x=\"1,2\" ,, <sip:c,d@e>"),
            ["\"Watson, T\" <sip:a@b>;x=\"1,2\"", "<sip:c,d@e>"]
        );
        // An escaped quote does not end the string: the comma after it is
        // still inside.
        assert_eq!(
            split_list(r#""a\", b" <sip:a@b>, <sip:c@d>"#),
            [r#""a\", b" <sip:a@b>"#, "<sip:c@d>"]
        );
        // An escaped backslash does end it.
        assert_eq!(split_list(r#""a\\", <sip:c@d>"#), [r#""a\\""#, "<sip:c@d>"]);
        assert!(split_list(" , ,").is_empty());
    }

    #[test]
    fn params_split_outside_quotes_and_keep_empty_pieces() {
        assert_eq!(split_params("a=1;b=\"x;y\";c"), ["a=1", "b=\"x;y\"", "c"]);
        assert_eq!(split_params(r#"a="x\";y";b"#), [r#"a="x\";y""#, "b"]);
        assert_eq!(split_params(";;"), ["", "", ""]);
        assert_eq!(name_value(" branch  =  z9 "), ("branch", Some("z9")));
        assert_eq!(name_value("lr"), ("lr", None));
        assert_eq!(find_param("a=1; LR ;b=2", "lr"), Some(""));
        assert_eq!(find_param("a=1;b=\"x;b=3\"", "B"), Some("\"x;b=3\""));
        assert_eq!(find_param("a=1", "b"), None);
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(quoted_end(r#"ab\"c"d"#), Some(5));
        assert_eq!(quoted_end(r#"ab\""#), None);
        assert_eq!(unquote(r#""a,b\"c\\""#).as_deref(), Some(r#"a,b"c\"#));
        assert_eq!(unquote("\"\"").as_deref(), Some(""));
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(unquote(&quote(r#"a"b\c"#)).as_deref(), Some(r#"a"b\c"#));
        for bad in ["\"", "x", "\"a\"b", "\"a\\\"", "\"a\" "] {
            assert_eq!(unquote(bad), None, "{bad}");
        }
    }

    #[test]
    fn name_addrs_and_their_parameters() {
        let c = "<sip:1002@127.0.0.1:15593>;expires=60;+sip.instance=\"<urn:uuid:9014>\"";
        assert_eq!(name_addr_uri(c), "sip:1002@127.0.0.1:15593");
        assert_eq!(header_param(c, "expires").as_deref(), Some("60"));
        assert_eq!(
            header_param(c, "+sip.instance").as_deref(),
            Some("\"<urn:uuid:9014>\"")
        );
        // `<`, `>`, `;` and an escaped quote in the display name.
        let named = r#""A \"<b>;tag=2" <sip:a@b;lr>;tag=1"#;
        assert_eq!(name_addr_uri(named), "sip:a@b;lr");
        assert_eq!(header_param(named, "tag").as_deref(), Some("1"));
        // An addr-spec's parameters are the header's.
        assert_eq!(name_addr_uri("sip:a@b ;tag = 9"), "sip:a@b");
        assert_eq!(
            header_param("sip:a@b ;tag = 9", "tag").as_deref(),
            Some("9")
        );
        assert_eq!(header_param("<sip:a@b>;tag", "tag"), None);
        assert_eq!(display_name(named).as_deref(), Some(r#"A "<b>;tag=2"#));
        assert_eq!(display_name("Bob Li <sip:b@c>").as_deref(), Some("Bob Li"));
        assert_eq!(display_name("\" \" <sip:b@c>"), None);
        assert_eq!(display_name("sip:b@c"), None);
    }

    #[test]
    fn via_parameters() {
        let via = "SIP/2.0/UDP h:5060;branch=z9hG4bK1;rport;x=\"a;rport=1\"";
        assert_eq!(via_param(via, "branch").as_deref(), Some("z9hG4bK1"));
        assert_eq!(via_param(via, "rport").as_deref(), Some(""));
        assert_eq!(via_param(via, "received"), None);
        assert_eq!(via_param("SIP/2.0/UDP h", "rport"), None);
    }
}
