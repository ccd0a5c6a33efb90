//! The caller directory: which customer class (集团 / 商务 / 公众) a calling
//! number belongs to and whether it is a VIP.
//!
//! The file is CSV-like UTF-8 text, one entry per line:
//!
//! ```text
//! # number,class,vip,name
//! +86 138-0013-8000,group,yes,深圳某某集团
//! 0755*,business,,深圳商务热线
//! 13900139000,公众,no
//! ```
//!
//! * `#` starts a comment (anywhere on a line); blank lines are ignored.
//! * `number` is digits with an optional leading `+` (spaces, dashes,
//!   dots and brackets are ignored), or a prefix of digits ending in `*`.
//!   Numbers and callers are compared by [`crate::number::number_key`]'s
//!   rule, so `+86 138 0013 8000` and `13800138000` are one entry, and
//!   `+86 755*` is `0755*`.
//! * `class` is `group`, `business` or `public`, or 集团, 商务 or 公众.
//! * `vip` is `yes`, `no`, `true`, `false`, `1`, `0` or empty (no).
//! * `name` is the rest of the line after the third comma, so it may
//!   contain commas; it may be empty or left out.
//!
//! Lookup: an exact number beats the longest matching prefix; numbers not
//! in the directory are public and not VIP. A number listed twice is an
//! error naming both lines.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DirectoryError {
    #[error("cannot read caller directory {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin} line {line}: {message}")]
    Invalid {
        origin: String,
        line: usize,
        message: String,
    },
}

/// A caller's customer class. Higher [`priority`](Self::priority) is
/// served first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CustomerClass {
    /// 集团客户
    Group,
    /// 商务客户
    Business,
    /// 公众客户
    #[default]
    Public,
}

impl CustomerClass {
    /// Group 3, business 2, public 1: higher first.
    pub fn priority(self) -> u8 {
        match self {
            CustomerClass::Group => 3,
            CustomerClass::Business => 2,
            CustomerClass::Public => 1,
        }
    }

    /// The name used in files, records and logs: `group`, `business`, `public`.
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerClass::Group => "group",
            CustomerClass::Business => "business",
            CustomerClass::Public => "public",
        }
    }

    /// Parses `group` / `business` / `public` (any case) or 集团 / 商务 / 公众.
    pub fn from_label(label: &str) -> Option<CustomerClass> {
        let l = label.trim();
        if l == "集团" || l.eq_ignore_ascii_case("group") {
            Some(CustomerClass::Group)
        } else if l == "商务" || l.eq_ignore_ascii_case("business") {
            Some(CustomerClass::Business)
        } else if l == "公众" || l.eq_ignore_ascii_case("public") {
            Some(CustomerClass::Public)
        } else {
            None
        }
    }
}

impl fmt::Display for CustomerClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the directory says about a caller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerInfo {
    pub class: CustomerClass,
    pub vip: bool,
    pub name: Option<String>,
    /// Which entry matched, for logs: the number as compared
    /// ([`crate::number::number_key`], `13800138000`) or prefix (`0755*`);
    /// `None` when the number is not in the directory.
    pub matched: Option<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    class: CustomerClass,
    vip: bool,
    name: Option<String>,
    line: usize,
}

/// The caller directory. Cheap to look up in whatever its size: one hash
/// probe for the exact number, then one per prefix length.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    exact: HashMap<String, Entry>,
    /// Keyed by the digits before the `*`.
    prefixes: HashMap<String, Entry>,
    /// Length of the longest prefix, to skip lengths no prefix has.
    longest_prefix: usize,
}

impl Directory {
    /// Parses directory text. `origin` names it in errors (usually the path).
    pub fn parse(text: &str, origin: &str) -> Result<Directory, DirectoryError> {
        let mut dir = Directory::default();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let invalid = |message: String| DirectoryError::Invalid {
                origin: origin.to_string(),
                line,
                message,
            };
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let mut fields = content.splitn(4, ',');
            let number = fields.next().unwrap_or("").trim();
            let Some(class) = fields.next() else {
                return Err(invalid(format!(
                    "expected number,class,vip,name but found only {content:?}"
                )));
            };
            let vip = fields.next().unwrap_or("");
            let name = fields.next().unwrap_or("").trim();

            let (key, is_prefix) = parse_number(number).map_err(invalid)?;
            let class = CustomerClass::from_label(class).ok_or_else(|| {
                invalid(format!(
                    "unknown class {:?} (expected group, business or public, or 集团, 商务 or 公众)",
                    class.trim()
                ))
            })?;
            let vip = parse_vip(vip).ok_or_else(|| {
                invalid(format!(
                    "unknown vip value {:?} (expected yes, no, true, false, 1, 0 or empty)",
                    vip.trim()
                ))
            })?;
            let entry = Entry {
                class,
                vip,
                name: (!name.is_empty()).then(|| name.to_string()),
                line,
            };
            let (map, shown) = if is_prefix {
                (&mut dir.prefixes, format!("prefix {key}*"))
            } else {
                (&mut dir.exact, format!("number {key}"))
            };
            if let Some(first) = map.get(&key) {
                return Err(invalid(format!(
                    "{shown} is already listed on line {}",
                    first.line
                )));
            }
            if is_prefix {
                dir.longest_prefix = dir.longest_prefix.max(key.len());
            }
            map.insert(key, entry);
        }
        Ok(dir)
    }

    /// Parses a directory file's bytes; `origin` names it in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Directory, DirectoryError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Directory::parse(text, origin),
            Err(e) => {
                let line = 1 + bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                Err(DirectoryError::Invalid {
                    origin: origin.to_string(),
                    line,
                    message: "not UTF-8 text (save the file as UTF-8, not GBK)".into(),
                })
            }
        }
    }

    /// Exact number beats the longest matching prefix; unknown numbers are
    /// public, not VIP.
    pub fn lookup(&self, number: &str) -> CustomerInfo {
        self.lookup_counting(number).0
    }

    /// [`lookup`](Self::lookup), and how many hash probes it took: at most
    /// one plus the longest prefix's length, whatever the directory's size.
    fn lookup_counting(&self, number: &str) -> (CustomerInfo, usize) {
        if !crate::number::is_number(number) {
            return (CustomerInfo::default(), 0);
        }
        let key = crate::number::number_key(number);
        if let Some(e) = self.exact.get(&key) {
            return (e.info(key), 1);
        }
        let mut probes = 1;
        // All ASCII digits, so every byte index is a char boundary.
        for len in (1..=key.len().min(self.longest_prefix)).rev() {
            let prefix = &key[..len];
            probes += 1;
            if let Some(e) = self.prefixes.get(prefix) {
                return (e.info(format!("{prefix}*")), probes);
            }
        }
        (CustomerInfo::default(), probes)
    }

    /// Number of entries, exact numbers and prefixes together.
    pub fn len(&self) -> usize {
        self.exact.len() + self.prefixes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Entry {
    fn info(&self, matched: String) -> CustomerInfo {
        CustomerInfo {
            class: self.class,
            vip: self.vip,
            name: self.name.clone(),
            matched: Some(matched),
        }
    }
}

/// Returns the normalised digits and whether the entry is a prefix.
fn parse_number(field: &str) -> Result<(String, bool), String> {
    if field.is_empty() {
        return Err("missing number".into());
    }
    let (body, is_prefix) = match field.strip_suffix('*') {
        Some(body) => (body, true),
        None => (field, false),
    };
    let key = if is_prefix {
        crate::number::prefix_key(body)
    } else {
        crate::number::number_key(body)
    };
    if key.is_empty() {
        return Err(format!(
            "number {field:?} has no digits (a prefix needs at least one digit before the *)"
        ));
    }
    if !crate::number::is_number(body) {
        return Err(format!(
            "number {field:?} must be digits with an optional leading +, or a digit prefix ending in *"
        ));
    }
    Ok((key, is_prefix))
}

fn parse_vip(field: &str) -> Option<bool> {
    let v = field.trim();
    if v.is_empty() {
        return Some(false);
    }
    for yes in ["yes", "true", "1"] {
        if v.eq_ignore_ascii_case(yes) {
            return Some(true);
        }
    }
    for no in ["no", "false", "0"] {
        if v.eq_ignore_ascii_case(no) {
            return Some(false);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# number,class,vip,name
+86 138-0013-8000,group,yes,深圳某某集团

0755*,business,,深圳商务热线   # trailing comment
075588*,group,no,Acme, Inc. (Shenzhen)
13900139000,公众,no
13700137000,商务,TRUE
   # indented comment
10086,public
";

    fn sample() -> Directory {
        Directory::parse(SAMPLE, "dir.csv").expect("sample parses")
    }

    fn invalid(text: &str) -> String {
        Directory::parse(text, "dir.csv")
            .expect_err("should be refused")
            .to_string()
    }

    #[test]
    fn parses_entries_comments_and_blank_lines() {
        let d = sample();
        assert_eq!(d.len(), 6);
        assert!(!d.is_empty());
        assert!(Directory::default().is_empty());

        let g = d.lookup("8613800138000");
        assert_eq!(g.class, CustomerClass::Group);
        assert!(g.vip);
        assert_eq!(g.name.as_deref(), Some("深圳某某集团"));
        assert_eq!(g.matched.as_deref(), Some("13800138000"));

        let b = d.lookup("13700137000");
        assert_eq!(
            (b.class, b.vip, b.name),
            (CustomerClass::Business, true, None)
        );

        let p = d.lookup("13900139000");
        assert_eq!((p.class, p.vip), (CustomerClass::Public, false));

        let short = d.lookup("10086");
        assert_eq!(short.class, CustomerClass::Public);
        assert_eq!(short.matched.as_deref(), Some("10086"));
    }

    #[test]
    fn names_keep_commas_and_drop_trailing_comments() {
        let d = sample();
        assert_eq!(
            d.lookup("07558800").name.as_deref(),
            Some("Acme, Inc. (Shenzhen)")
        );
        assert_eq!(d.lookup("07551234").name.as_deref(), Some("深圳商务热线"));
    }

    #[test]
    fn exact_beats_prefix_and_longest_prefix_wins() {
        let d = Directory::parse(
            "0755*,business,no,short\n075588*,group,yes,long\n07558812345,public,no,exact\n",
            "t",
        )
        .expect("parses");
        let exact = d.lookup("07558812345");
        assert_eq!(exact.class, CustomerClass::Public);
        assert_eq!(exact.matched.as_deref(), Some("07558812345"));

        let long = d.lookup("07558800000");
        assert_eq!((long.class, long.vip), (CustomerClass::Group, true));
        assert_eq!(long.matched.as_deref(), Some("075588*"));

        let short = d.lookup("07551234567");
        assert_eq!(short.class, CustomerClass::Business);
        assert_eq!(short.matched.as_deref(), Some("0755*"));

        // A prefix also matches the prefix itself.
        assert_eq!(d.lookup("0755").matched.as_deref(), Some("0755*"));
        // Shorter than every prefix, or another area: unknown.
        assert_eq!(d.lookup("075"), CustomerInfo::default());
        assert_eq!(d.lookup("01012345678"), CustomerInfo::default());
    }

    #[test]
    fn unknown_numbers_are_public_not_vip() {
        let d = sample();
        for n in ["12345", "", "anonymous", "+", "张三", "0755x"] {
            let info = d.lookup(n);
            assert_eq!(info.class, CustomerClass::Public, "{n}");
            assert!(!info.vip, "{n}");
            assert_eq!(info.matched, None, "{n}");
        }
    }

    #[test]
    fn numbers_are_normalised_both_sides() {
        let d = sample();
        for n in [
            "13800138000",
            "8613800138000",
            "+8613800138000",
            "+86 138-0013-8000",
            " 86-138 0013 8000 ",
            "013800138000",
        ] {
            assert_eq!(d.lookup(n).class, CustomerClass::Group, "{n}");
        }
        // Prefixes too, in whichever form the caller's number comes.
        let d = Directory::parse("+86 755-*,group,yes\n", "t").expect("parses");
        for n in ["+86 755 1234 5678", "0755-1234-5678", "86 755 1234 5678"] {
            assert_eq!(d.lookup(n).matched.as_deref(), Some("0755*"), "{n}");
        }
    }

    #[test]
    fn classes_and_vip_values() {
        assert_eq!(CustomerClass::Group.priority(), 3);
        assert_eq!(CustomerClass::Business.priority(), 2);
        assert_eq!(CustomerClass::Public.priority(), 1);
        assert_eq!(CustomerClass::default(), CustomerClass::Public);
        assert_eq!(
            CustomerClass::from_label(" Group "),
            Some(CustomerClass::Group)
        );
        assert_eq!(
            CustomerClass::from_label("集团"),
            Some(CustomerClass::Group)
        );
        assert_eq!(CustomerClass::from_label("gold"), None);
        assert_eq!(
            serde_json::to_string(&CustomerClass::Business).expect("json"),
            "\"business\""
        );
        assert_eq!(CustomerClass::Public.to_string(), "public");

        for (v, want) in [
            ("yes", true),
            ("YES", true),
            ("true", true),
            ("1", true),
            ("no", false),
            ("False", false),
            ("0", false),
            ("", false),
            ("  ", false),
        ] {
            assert_eq!(parse_vip(v), Some(want), "{v:?}");
        }
        assert_eq!(parse_vip("maybe"), None);
    }

    #[test]
    fn errors_name_origin_and_line() {
        assert_eq!(
            invalid("# header\n\n123,gold,no\n"),
            "dir.csv line 3: unknown class \"gold\" (expected group, business or public, or 集团, 商务 or 公众)"
        );
        assert_eq!(
            invalid("123,group,maybe\n"),
            "dir.csv line 1: unknown vip value \"maybe\" (expected yes, no, true, false, 1, 0 or empty)"
        );
        assert!(invalid("\n12a4,group\n").starts_with("dir.csv line 2: number \"12a4\""));
        assert!(invalid("*,group\n").starts_with("dir.csv line 1: number \"*\" has no digits"));
        assert!(invalid("07*55,group\n").starts_with("dir.csv line 1: number \"07*55\""));
        assert!(invalid(",group\n").starts_with("dir.csv line 1: missing number"));
        assert!(invalid("123\n").starts_with("dir.csv line 1: expected number,class,vip,name"));
    }

    #[test]
    fn duplicates_name_both_lines() {
        assert_eq!(
            invalid("123,group\n# c\n+1-23,public\n"),
            "dir.csv line 3: number 123 is already listed on line 1"
        );
        assert_eq!(
            invalid("0755*,group\n0755*,business\n"),
            "dir.csv line 2: prefix 0755* is already listed on line 1"
        );
        // A number and the same digits as a prefix are different entries.
        let d = Directory::parse("0755,group\n0755*,business\n", "t").expect("parses");
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn bytes_with_a_bom_and_crlf_parse_and_gbk_is_refused() {
        let bytes = format!("\u{feff}{SAMPLE}").replace('\n', "\r\n");
        let d = Directory::from_bytes(bytes.as_bytes(), "callers.csv").expect("parses");
        assert_eq!(d.len(), 6);
        assert_eq!(d.lookup("13700137000").class, CustomerClass::Business);

        // "张三" in GBK on line 2.
        let e = Directory::from_bytes(b"123,group\n456,group,no,\xd5\xc5\xc8\xfd\n", "c.csv")
            .expect_err("not UTF-8");
        assert_eq!(
            e.to_string(),
            "c.csv line 2: not UTF-8 text (save the file as UTF-8, not GBK)"
        );
    }

    #[test]
    fn big_directory_lookups_take_a_few_probes_each() {
        const CLASSES: [CustomerClass; 3] = [
            CustomerClass::Group,
            CustomerClass::Business,
            CustomerClass::Public,
        ];
        let mut text = String::with_capacity(100_000 * 40);
        for i in 0..100_000u64 {
            let class = CLASSES[(i % 3) as usize].as_str();
            text.push_str(&format!("+86 139{i:08},{class},{},客户{i}\n", i % 2));
        }
        // 1,000 area codes (01000..01999), as national prefixes.
        for i in 1_000..2_000u64 {
            text.push_str(&format!("0{i}*,business,no,area {i}\n"));
        }
        let d = Directory::parse(&text, "big").expect("parses");
        assert_eq!(d.len(), 101_000);

        // Counted, not timed (a busy machine cannot make this flake): each
        // lookup is one probe for the number and one per prefix length, so
        // the cost does not grow with the 101,000 entries.
        let longest = 5;
        let mut probes = 0;
        for i in 0..100_000u64 {
            let (info, n) = d.lookup_counting(&format!("86139{i:08}"));
            assert_eq!(info.class, CLASSES[(i % 3) as usize], "{i}");
            assert_eq!(info.vip, i % 2 == 1, "{i}");
            probes += n;
        }
        assert_eq!(probes, 100_000, "exact numbers take one probe each");
        for i in 1_000..2_000u64 {
            let (info, n) = d.lookup_counting(&format!("0{i}123456"));
            assert_eq!(info.matched, Some(format!("0{i}*")));
            assert!(n <= 1 + longest, "{n} probes");
        }
        let (info, n) = d.lookup_counting("99999999999");
        assert_eq!(info.matched, None);
        assert_eq!(n, 1 + longest);
    }
}
