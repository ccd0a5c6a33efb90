//! A campaign as the API takes it (JSON), checked field by field: a bad
//! request is answered 400 with the field named.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

use super::normalise_number;
use super::window::CallingWindow;
use crate::forms::{parse_date, parse_duration, parse_hhmm, parse_offset, DURATION_FORMS};

/// A field that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

fn err(field: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// The standard's schedule: first call 1 minute after the trigger, then
/// after failures 10 minutes, 1 hour and 3 hours later.
pub const FIRST_AFTER: Duration = Duration::from_secs(60);
pub const RETRY: [Duration; 3] = [
    Duration::from_secs(600),
    Duration::from_secs(3600),
    Duration::from_secs(3 * 3600),
];
pub const RING_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an answered callee has after the notice to press a key.
pub const KEY_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq)]
pub struct CampaignSpec {
    pub name: String,
    pub trunk: String,
    /// A prompt of the prompt set, or the name given to an uploaded WAV.
    pub prompt: String,
    pub numbers: Vec<String>,
    pub first_after: Duration,
    pub retry: Vec<Duration>,
    pub confirm_key: Option<char>,
    pub repeat_key: Option<char>,
    pub optout_key: Option<char>,
    /// Wall-clock ms of the trigger, if not the creation.
    pub start_at_ms: Option<u64>,
    pub window: Option<CallingWindow>,
    pub max_concurrent: Option<u32>,
    pub ring_timeout: Duration,
}

/// The most numbers one campaign takes (a bigger list is several
/// campaigns).
pub const MAX_NUMBERS: usize = 100_000;

impl CampaignSpec {
    /// Reads and checks a campaign. `numbers_csv` is an uploaded list
    /// (one number per line, in the first column; a header line that is
    /// not a number is skipped), added to `numbers`. Window times are in
    /// `default_offset_minutes` unless the window names its own.
    pub fn parse(
        json: &Value,
        numbers_csv: Option<&[u8]>,
        default_offset_minutes: i32,
    ) -> Result<CampaignSpec, SpecError> {
        let obj = json
            .as_object()
            .ok_or_else(|| err("body", "a JSON object is expected"))?;
        const KNOWN: [&str; 14] = [
            "name",
            "trunk",
            "prompt",
            "numbers",
            "first_after",
            "retry",
            "confirm_key",
            "repeat_key",
            "optout_key",
            "start_at",
            "window",
            "max_concurrent",
            "ring_timeout",
            "id",
        ];
        if let Some(unknown) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(err(unknown, "unknown field"));
        }
        let text = |field: &str| -> Result<String, SpecError> {
            match obj.get(field) {
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                Some(_) => Err(err(field, "a non-empty string is expected")),
                None => Err(err(field, "missing")),
            }
        };
        let duration = |field: &str, default: Duration| -> Result<Duration, SpecError> {
            match obj.get(field) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::String(s)) => parse_duration(s).ok_or_else(|| {
                    err(field, format!("{s:?} is not a duration ({DURATION_FORMS})"))
                }),
                Some(_) => Err(err(
                    field,
                    format!("a string is expected ({DURATION_FORMS})"),
                )),
            }
        };
        let key = |field: &str| -> Result<Option<char>, SpecError> {
            match obj.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => {
                    let mut chars = s.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => {
                            Ok(Some(c))
                        }
                        _ => Err(err(field, "one key is expected: 0-9, * or #")),
                    }
                }
                Some(_) => Err(err(field, "one key is expected: 0-9, * or #")),
            }
        };
        let name = text("name")?;
        let trunk = text("trunk")?;
        let prompt = text("prompt")?;

        let mut numbers = Vec::new();
        match obj.get("numbers") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for (i, n) in list.iter().enumerate() {
                    let field = format!("numbers[{i}]");
                    let Value::String(s) = n else {
                        return Err(err(&field, "a string is expected"));
                    };
                    numbers.push(
                        checked_number(s)
                            .ok_or_else(|| err(&field, format!("{s:?} is not a phone number")))?,
                    );
                }
            }
            Some(_) => return Err(err("numbers", "a list of strings is expected")),
        }
        if let Some(csv) = numbers_csv {
            numbers.extend(numbers_from_csv(csv)?);
        }
        let mut seen = BTreeSet::new();
        numbers.retain(|n| seen.insert(n.clone()));
        if numbers.is_empty() {
            return Err(err("numbers", "no numbers to call"));
        }
        if numbers.len() > MAX_NUMBERS {
            return Err(err(
                "numbers",
                format!(
                    "{} numbers; at most {MAX_NUMBERS} per campaign",
                    numbers.len()
                ),
            ));
        }

        let first_after = duration("first_after", FIRST_AFTER)?;
        let retry = match obj.get("retry") {
            None | Some(Value::Null) => RETRY.to_vec(),
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let field = format!("retry[{i}]");
                    v.as_str()
                        .and_then(parse_duration)
                        .ok_or_else(|| err(&field, format!("not a duration ({DURATION_FORMS})")))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(err("retry", "a list of durations is expected")),
        };
        if retry.len() > 10 {
            return Err(err("retry", "at most 10 retries"));
        }
        let confirm_key = key("confirm_key")?;
        let repeat_key = key("repeat_key")?;
        let optout_key = key("optout_key")?;
        let keys: Vec<char> = [confirm_key, repeat_key, optout_key]
            .into_iter()
            .flatten()
            .collect();
        if keys.iter().collect::<BTreeSet<_>>().len() != keys.len() {
            return Err(err(
                "optout_key",
                "confirm, repeat and opt-out keys must differ",
            ));
        }
        let start_at_ms = match obj.get("start_at") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                parse_rfc3339_ms(s)
                    .ok_or_else(|| err("start_at", format!("{s:?} is not an RFC 3339 time")))?,
            ),
            Some(_) => return Err(err("start_at", "an RFC 3339 time is expected")),
        };
        let window = match obj.get("window") {
            None | Some(Value::Null) => None,
            Some(w) => Some(parse_window(w, default_offset_minutes)?),
        };
        let max_concurrent = match obj.get("max_concurrent") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=10_000).contains(&n) => Some(n as u32),
                _ => return Err(err("max_concurrent", "a whole number from 1 to 10000")),
            },
        };
        let ring_timeout = duration("ring_timeout", RING_TIMEOUT)?;
        if !(Duration::from_secs(5)..=Duration::from_secs(180)).contains(&ring_timeout) {
            return Err(err("ring_timeout", "from 5s to 3m"));
        }
        Ok(CampaignSpec {
            name,
            trunk,
            prompt,
            numbers,
            first_after,
            retry,
            confirm_key,
            repeat_key,
            optout_key,
            start_at_ms,
            window,
            max_concurrent,
            ring_timeout,
        })
    }

    /// The spec back as JSON, as the store keeps it and the API shows it.
    pub fn to_json(&self) -> Value {
        let d = |d: &Duration| format_duration(*d);
        let mut v = serde_json::json!({
            "name": self.name,
            "trunk": self.trunk,
            "prompt": self.prompt,
            "first_after": d(&self.first_after),
            "retry": self.retry.iter().map(d).collect::<Vec<_>>(),
            "ring_timeout": d(&self.ring_timeout),
        });
        let keys = [
            ("confirm_key", self.confirm_key),
            ("repeat_key", self.repeat_key),
            ("optout_key", self.optout_key),
        ];
        for (name, k) in keys {
            if let Some(k) = k {
                v[name] = Value::String(k.to_string());
            }
        }
        if let Some(ms) = self.start_at_ms {
            v["start_at"] = Value::String(crate::cdr::format_ms(ms));
        }
        if let Some(n) = self.max_concurrent {
            v["max_concurrent"] = n.into();
        }
        if let Some(w) = &self.window {
            v["window"] = window_json(w);
        }
        v
    }
}

/// A number from a list, or `None` if it is not one: 3 to 20 digits, a
/// leading + allowed, spaces, dashes and brackets ignored.
fn checked_number(text: &str) -> Option<String> {
    let n = normalise_number(text);
    let digits = n.trim_start_matches('+').len();
    let clean = text
        .trim()
        .chars()
        .all(|c| c.is_ascii_digit() || " +-()".contains(c));
    (clean && (3..=20).contains(&digits)).then_some(n)
}

/// Numbers from an uploaded CSV: the first column of each line; a first
/// line that is not a number (a header) is skipped.
pub fn numbers_from_csv(bytes: &[u8]) -> Result<Vec<String>, SpecError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| err("numbers_csv", "not UTF-8 text"))?
        .trim_start_matches('\u{feff}');
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let first = line.split([',', ';', '\t']).next().unwrap_or("").trim();
        let first = first.trim_matches('"');
        if first.is_empty() {
            continue;
        }
        match checked_number(first) {
            Some(n) => out.push(n),
            None if i == 0 => {}
            None => {
                return Err(err(
                    "numbers_csv",
                    format!("line {}: {first:?} is not a phone number", i + 1),
                ))
            }
        }
    }
    Ok(out)
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn parse_window(w: &Value, default_offset_minutes: i32) -> Result<CallingWindow, SpecError> {
    let obj = w
        .as_object()
        .ok_or_else(|| err("window", "an object is expected"))?;
    if let Some(unknown) = obj.keys().find(|k| {
        ![
            "from",
            "to",
            "days",
            "skip_dates",
            "work_dates",
            "utc_offset",
        ]
        .contains(&k.as_str())
    }) {
        return Err(err(&format!("window.{unknown}"), "unknown field"));
    }
    let time = |field: &str, default: u32| -> Result<u32, SpecError> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::String(s)) => parse_hhmm(s)
                .ok_or_else(|| err(&format!("window.{field}"), format!("{s:?} is not HH:MM"))),
            Some(_) => Err(err(&format!("window.{field}"), "HH:MM is expected")),
        }
    };
    let from = time("from", 0)?;
    let to = time("to", 24 * 60)?;
    if from >= to {
        return Err(err("window.to", "must be after window.from"));
    }
    let days = match obj.get("days") {
        None | Some(Value::Null) => 0x7f,
        Some(Value::Array(list)) => {
            let mut bits = 0u8;
            for (i, d) in list.iter().enumerate() {
                let day = d
                    .as_str()
                    .and_then(|s| DAYS.iter().position(|x| x.eq_ignore_ascii_case(s)))
                    .ok_or_else(|| {
                        err(
                            &format!("window.days[{i}]"),
                            "one of mon tue wed thu fri sat sun",
                        )
                    })?;
                bits |= 1 << day;
            }
            bits
        }
        Some(_) => return Err(err("window.days", "a list of days is expected")),
    };
    let dates = |field: &str| -> Result<BTreeSet<i64>, SpecError> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(BTreeSet::new()),
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    d.as_str().and_then(parse_date).ok_or_else(|| {
                        err(
                            &format!("window.{field}[{i}]"),
                            "a YYYY-MM-DD date is expected",
                        )
                    })
                })
                .collect(),
            Some(_) => Err(err(
                &format!("window.{field}"),
                "a list of dates is expected",
            )),
        }
    };
    let utc_offset_minutes = match obj.get("utc_offset") {
        None | Some(Value::Null) => default_offset_minutes,
        Some(Value::String(s)) => parse_offset(s)
            .ok_or_else(|| err("window.utc_offset", format!("{s:?} is not like +08:00")))?,
        Some(_) => return Err(err("window.utc_offset", "like +08:00")),
    };
    Ok(CallingWindow {
        utc_offset_minutes,
        from,
        to,
        days,
        skip: dates("skip_dates")?,
        work: dates("work_dates")?,
    })
}

fn window_json(w: &CallingWindow) -> Value {
    let hhmm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
    let date = |d: &i64| crate::cdr::format_ms((*d as u64) * 86_400_000)[..10].to_string();
    let sign = if w.utc_offset_minutes < 0 { '-' } else { '+' };
    let off = w.utc_offset_minutes.unsigned_abs();
    serde_json::json!({
        "from": hhmm(w.from),
        "to": hhmm(w.to),
        "days": DAYS.iter().enumerate().filter(|(i, _)| w.days & (1 << i) != 0).map(|(_, d)| *d).collect::<Vec<_>>(),
        "skip_dates": w.skip.iter().map(date).collect::<Vec<_>>(),
        "work_dates": w.work.iter().map(date).collect::<Vec<_>>(),
        "utc_offset": format!("{sign}{:02}:{:02}", off / 60, off % 60),
    })
}

/// A duration in the form it is written (`90s` stays `90s`, `600s` is
/// `10m`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Milliseconds since the epoch of an RFC 3339 time with an offset
/// (`2026-12-06T09:00:00+08:00`, or `Z`).
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let (date, rest) = text.split_once(['T', ' '])?;
    let day = parse_date(date)?;
    let (time, offset) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, 0)
    } else {
        let at = rest.rfind(['+', '-'])?;
        (&rest[..at], parse_offset(&rest[at..])?)
    };
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, frac),
        None => (time, ""),
    };
    let mut parts = hms.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let s: i64 = parts.next().unwrap_or("0").parse().ok()?;
    if parts.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let ms: i64 = match frac.len() {
        0 => 0,
        n if frac.bytes().all(|b| b.is_ascii_digit()) => {
            let digits = &frac[..n.min(3)];
            digits.parse::<i64>().ok()? * 10_i64.pow(3 - digits.len() as u32)
        }
        _ => return None,
    };
    let total = ((day * 24 + h) * 60 + m - i64::from(offset)) * 60_000 + s * 1000 + ms;
    u64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<CampaignSpec, SpecError> {
        CampaignSpec::parse(&v, None, 8 * 60)
    }

    #[test]
    fn the_standard_schedule_is_the_default() {
        let s = parse(json!({"name": "outage", "trunk": "pstn", "prompt": "notice", "numbers": ["138 0013 8000"]}))
            .expect("valid");
        assert_eq!(s.first_after, Duration::from_secs(60));
        assert_eq!(s.retry, RETRY.to_vec());
        assert_eq!(s.numbers, vec!["13800138000"]);
        assert_eq!(s.confirm_key, None);
        assert_eq!(s.ring_timeout, Duration::from_secs(30));
        assert!(s.window.is_none());
    }

    #[test]
    fn every_bad_field_is_named() {
        let base = json!({"name": "n", "trunk": "t", "prompt": "p", "numbers": ["10086"]});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            parse(b).expect_err("refused").field
        };
        assert_eq!(with("first_after", json!("1.5m")), "first_after");
        assert_eq!(with("retry", json!(["10m", "soon"])), "retry[1]");
        assert_eq!(with("numbers", json!(["10086", "call me"])), "numbers[1]");
        assert_eq!(with("numbers", json!([])), "numbers");
        assert_eq!(with("confirm_key", json!("12")), "confirm_key");
        assert_eq!(with("max_concurrent", json!(0)), "max_concurrent");
        assert_eq!(with("ring_timeout", json!("2s")), "ring_timeout");
        assert_eq!(with("start_at", json!("tomorrow")), "start_at");
        assert_eq!(with("window", json!({"from": "25:00"})), "window.from");
        assert_eq!(
            with("window", json!({"days": ["mon", "funday"]})),
            "window.days[1]"
        );
        assert_eq!(with("colour", json!("red")), "colour");
        assert_eq!(parse(json!({"trunk": "t"})).expect_err("x").field, "name");
        let mut clash = base.clone();
        clash["confirm_key"] = json!("1");
        clash["optout_key"] = json!("1");
        assert_eq!(
            parse(clash).expect_err("same key twice").field,
            "optout_key"
        );
    }

    #[test]
    fn numbers_from_a_csv_upload_join_the_list_once() {
        let csv =
            "\u{feff}phone,name\r\n13800000001,Zhang\r\n\"13800000002\",Li\r\n13800000001,dup\r\n";
        let s = CampaignSpec::parse(
            &json!({"name": "n", "trunk": "t", "prompt": "p", "numbers": ["13800000003"]}),
            Some(csv.as_bytes()),
            480,
        )
        .expect("valid");
        assert_eq!(s.numbers, ["13800000003", "13800000001", "13800000002"]);
        let bad = numbers_from_csv(b"13800000001\nnot a number\n").expect_err("line 2");
        assert_eq!(bad.field, "numbers_csv");
        assert!(bad.message.contains("line 2"), "{bad}");
    }

    #[test]
    fn a_window_and_start_time_read_in_local_time() {
        let s = parse(json!({
            "name": "n", "trunk": "t", "prompt": "p", "numbers": ["10086"],
            "start_at": "2026-12-07T09:00:00+08:00",
            "window": {"from": "09:00", "to": "20:00", "days": ["mon", "tue", "wed", "thu", "fri"],
                       "skip_dates": ["2026-12-25"], "work_dates": ["2026-12-27"]},
            "retry": ["1s", "1s", "1s"], "confirm_key": "1", "optout_key": "9"
        }))
        .expect("valid");
        assert_eq!(s.start_at_ms, Some(1_796_605_200_000));
        let w = s.window.clone().expect("window");
        assert_eq!(
            (w.from, w.to, w.days, w.utc_offset_minutes),
            (540, 1200, 0x1f, 480)
        );
        assert_eq!(s.retry, vec![Duration::from_secs(1); 3]);
        // And back: the JSON reads as the same spec.
        let again = parse(
            s.to_json()
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("numbers".into(), json!(["10086"]));
                    Value::Object(o)
                })
                .expect("object"),
        )
        .expect("round trip");
        assert_eq!(again, s);
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_rfc3339_ms("1970-01-01T08:00:00.250+08:00"), Some(250));
        assert_eq!(
            parse_rfc3339_ms("2026-12-07 09:00:00+08:00"),
            Some(1_796_605_200_000)
        );
        assert_eq!(parse_rfc3339_ms("2026-12-07T09:00"), None);
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(10_800)), "3h");
    }
}
