//! Telephone numbers as hotline compares them: the dialled number against
//! the IVR's `[[ivr.numbers]]`, a caller's number against the caller
//! directory, the do-not-call list and the notices heard lately. One rule,
//! [`number_key`], so that a number written `+86 10 8888 0000` by a trunk,
//! `010-8888-0000` by a PBX and `tel:+86-10-8888-0000` in a Request-URI is
//! one number everywhere.

/// A number in the one form it is compared in (China's national form):
///
/// 1. Only digits count: `+`, spaces, dashes, dots and brackets (a `tel:`
///    URI's visual separators) are dropped, as is anything after a `;`
///    (`;phone-context=...`).
/// 2. An international number (`+` or `00` first) of China (`86`) is
///    taken in its national form; so is one written with a bare `86`
///    (11 to 13 digits in all, no `0` after the 86). Other countries'
///    numbers keep their country code, without the `+` or `00`.
/// 3. In the national form a landline keeps (or gets back) its trunk
///    prefix `0` before the area code (`+86 10 8888 0000` is
///    `01088880000`), while a mobile number (11 digits from `1`) and a
///    400/800 service number (10 digits) have none: a `0` written before
///    one is dropped (`013800138000` is `13800138000`).
/// 4. Short numbers (service codes such as `95588`, extensions, the demo's
///    `4008`) are kept as they are; so is `*`.
pub fn number_key(text: &str) -> String {
    let text = text.split(';').next().unwrap_or_default().trim();
    if text == "*" {
        return text.to_string();
    }
    let plus = text.starts_with('+');
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let international = if plus {
        Some(digits.as_str())
    } else {
        digits.strip_prefix("00")
    };
    let national = match international {
        Some(n) => match n.strip_prefix("86") {
            Some(national) => national,
            None => return n.to_string(),
        },
        None => match digits.strip_prefix("86") {
            Some(rest) if (9..=11).contains(&rest.len()) && !rest.starts_with('0') => rest,
            _ => digits.as_str(),
        },
    };
    national_form(national)
}

/// The start of a number (a caller directory's `0755*`) in the same form:
/// digits only; written with China's country code (`+86 755*`, `0086
/// 755*`), its national form, an area code getting its trunk prefix `0` (`0755`) and a
/// mobile (`1` and 3 to 9) or 400/800 prefix none.
pub fn prefix_key(text: &str) -> String {
    let text = text.trim();
    let plus = text.starts_with('+');
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    // `00` alone may start a national prefix (a test range, say): only
    // `0086` is read as the country code here.
    let international = if plus {
        Some(digits.as_str())
    } else {
        digits.strip_prefix("00").filter(|n| n.starts_with("86"))
    };
    let Some(n) = international else {
        return digits;
    };
    let Some(p) = n.strip_prefix("86") else {
        return n.to_string();
    };
    let mobile = p.starts_with('1') && p[1..].starts_with(|c: char| ('3'..='9').contains(&c));
    if p.is_empty() {
        // `+86*` alone: no national form; kept as written.
        digits
    } else if mobile || p.starts_with("400") || p.starts_with("800") {
        p.to_string()
    } else {
        format!("0{p}")
    }
}

/// Whether `text` is written as a number at all: digits with only the
/// separators [`number_key`] drops (not `anonymous`, not `0755x`).
pub fn is_number(text: &str) -> bool {
    let text = text.split(';').next().unwrap_or_default().trim();
    text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b" +-.()".contains(&b))
}

/// A national number (after any country code) with the trunk prefix `0`
/// exactly where China's numbering plan has one.
fn national_form(n: &str) -> String {
    let bare = match n.strip_prefix('0') {
        Some(rest) if !rest.starts_with('0') => rest,
        _ => n,
    };
    let mobile = bare.len() == 11 && bare.starts_with('1');
    let service = bare.len() == 10 && (bare.starts_with("400") || bare.starts_with("800"));
    if mobile || service {
        bare.to_string()
    } else if bare.len() >= 9 {
        // An area code and a local number: a landline.
        format!("0{bare}")
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mobile_however_written() {
        for same in [
            "13800138000",
            "138-0013-8000",
            "+86 138 0013 8000",
            "+86 (138) 0013 8000",
            "008613800138000",
            "8613800138000",
            "013800138000",
            "+86-138-0013-8000;phone-context=+86",
        ] {
            assert_eq!(number_key(same), "13800138000", "{same}");
        }
    }

    #[test]
    fn a_landline_keeps_its_trunk_prefix() {
        for same in [
            "010-8888-0000",
            "01088880000",
            "+86 10 8888 0000",
            "0086 10 8888 0000",
            "861088880000",
            "+86-10-8888-0000",
        ] {
            assert_eq!(number_key(same), "01088880000", "{same}");
        }
        assert_eq!(number_key("+86 755 1234 5678"), "075512345678");
        assert_eq!(number_key("0755-1234-5678"), "075512345678");
    }

    #[test]
    fn service_and_short_numbers() {
        for same in [
            "4008001234",
            "400-800-1234",
            "+86 400 800 1234",
            "04008001234",
        ] {
            assert_eq!(number_key(same), "4008001234", "{same}");
        }
        assert_eq!(number_key("95588"), "95588");
        assert_eq!(number_key("4008"), "4008");
        assert_eq!(number_key("0"), "0");
        assert_eq!(number_key("*"), "*");
        // A local number that starts with 86 is not a country code.
        assert_eq!(number_key("86123456"), "86123456");
    }

    #[test]
    fn prefixes_take_the_same_form() {
        assert_eq!(prefix_key("0755"), "0755");
        assert_eq!(prefix_key("+86 755-"), "0755");
        assert_eq!(prefix_key("0086 10"), "010");
        assert_eq!(prefix_key("+86 138"), "138");
        assert_eq!(prefix_key("+86 400"), "400");
        assert_eq!(prefix_key("138"), "138");
        assert_eq!(prefix_key("+1 202"), "1202");
        assert!(number_key("+86 755 1234 5678").starts_with(&prefix_key("+86 755")));
    }

    #[test]
    fn only_numbers_are_numbers() {
        assert!(is_number("+86 (138) 0013-8000"));
        for not in ["anonymous", "0755x", "", "+", "张三"] {
            assert!(!is_number(not), "{not}");
        }
    }

    #[test]
    fn other_countries_keep_their_code() {
        assert_eq!(number_key("+1 202 555 0123"), "12025550123");
        assert_eq!(number_key("001 202 555 0123"), "12025550123");
        assert_eq!(number_key("+852 2345 6789"), "85223456789");
    }
}
