//! Where everything is in the config text, and mistakes reported there.
//!
//! The TOML is parsed once into toml's spanned tree; every key path
//! (`ivr.nodes.silent.wait`, `queues[1].overflow`) is noted with its span
//! before serde reads the tree. A serde error carries only a span, and a
//! later check (the IVR compiler, the cross-references) only a key path:
//! [`Source`] turns either into "line 131: ivr.nodes.silent.wait =
//! \"five\": ...".

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::de::DeserializeOwned;
use thiserror::Error;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// A mistake at one place in the config: `line 131:
/// ivr.nodes.silent.wait = "five": not a duration (...)`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct Mistake {
    pub line: Option<usize>,
    /// The key path; empty for the document as a whole.
    pub key: String,
    /// The value as written, when the problem is with a short value.
    pub value: Option<String>,
    pub problem: String,
}

impl fmt::Display for Mistake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.key.is_empty() {
            f.write_str(&self.key)?;
            if let Some(value) = &self.value {
                write!(f, " = {value}")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.problem)
    }
}

#[derive(Debug, Clone)]
struct Spot {
    key: Range<usize>,
    value: Range<usize>,
    /// A value written on the key's line (not a `[table]`).
    inline: bool,
}

/// The config text and the span of every key path in it.
#[derive(Debug, Clone, Default)]
pub struct Source {
    text: String,
    spots: BTreeMap<String, Spot>,
}

impl Source {
    /// The line `key` is written on (a table's header line for a table).
    pub fn line(&self, key: &str) -> Option<usize> {
        self.spots.get(key).map(|s| self.line_at(s.key.start))
    }

    /// The value of `key` as written, when it is short and on one line.
    pub fn value(&self, key: &str) -> Option<&str> {
        let spot = self.spots.get(key).filter(|s| s.inline)?;
        let text = self.text.get(spot.value.clone())?;
        (text.len() <= 60 && !text.contains('\n')).then_some(text)
    }

    /// A mistake at `key`, with its line and written value.
    pub fn mistake(&self, key: &str, problem: impl Into<String>) -> Mistake {
        Mistake {
            line: self.line(key),
            key: key.to_string(),
            value: self.value(key).map(str::to_string),
            problem: problem.into(),
        }
    }

    /// Like [`mistake`](Self::mistake) without the value: for problems
    /// that are not about how it is written (the message names it).
    pub fn at(&self, key: &str, problem: impl Into<String>) -> Mistake {
        Mistake {
            value: None,
            ..self.mistake(key, problem)
        }
    }

    fn line_at(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    /// The key a span belongs to: the one it names, or the innermost whose
    /// value holds it.
    fn key_at(&self, span: &Range<usize>) -> Option<&str> {
        if let Some((key, _)) = self.spots.iter().find(|(_, s)| s.key == *span) {
            return Some(key);
        }
        self.spots
            .iter()
            .filter(|(_, s)| s.value.start <= span.start && span.end <= s.value.end)
            .min_by_key(|(key, s)| (s.value.len(), usize::MAX - key.len()))
            .map(|(key, _)| key.as_str())
    }

    fn note_table(&mut self, prefix: &str, table: &DeTable) {
        for (key, value) in table.iter() {
            let path = if prefix.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{prefix}.{}", key.get_ref())
            };
            self.note(path, key.span(), value);
        }
    }

    fn note(&mut self, path: String, key: Range<usize>, value: &Spanned<DeValue>) {
        let inline = self.is_inline(value);
        match value.get_ref() {
            DeValue::Table(t) => self.note_table(&path, t),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.note(format!("{path}[{i}]"), item.span(), item);
                }
            }
            _ => {}
        }
        let spot = Spot {
            key,
            value: value.span(),
            inline,
        };
        self.spots.insert(path, spot);
    }

    /// Whether a value is written on its key's line: not a `[table]` nor
    /// an array of `[[tables]]`.
    fn is_inline(&self, value: &Spanned<DeValue>) -> bool {
        match value.get_ref() {
            DeValue::Table(_) => self
                .text
                .get(value.span())
                .is_some_and(|t| t.starts_with('{')),
            DeValue::Array(items) => items.iter().all(|i| self.is_inline(i)),
            _ => true,
        }
    }

    /// A serde or TOML error as a [`Mistake`] at its key.
    fn describe(&self, e: &toml::de::Error) -> Mistake {
        let (problem, candidates) = reword(e.message());
        let Some(span) = e.span() else {
            return Mistake {
                line: None,
                key: String::new(),
                value: None,
                problem,
            };
        };
        let Some(key) = self.key_at(&span).map(str::to_string) else {
            return Mistake {
                line: None,
                key: String::new(),
                value: None,
                problem,
            };
        };
        // An unknown key, or a value that is not one of those expected:
        // suggest the closest of what serde expected.
        let about_key = self
            .spots
            .get(&key)
            .is_some_and(|s| s.key == span && s.key != s.value);
        let value = (!about_key)
            .then(|| self.value(&key))
            .flatten()
            .map(str::to_string);
        let written = match &value {
            Some(v) => v.trim_matches('"'),
            None => key.rsplit('.').next().unwrap_or_default(),
        };
        let near = did_you_mean(written, candidates.iter().map(String::as_str));
        Mistake {
            line: Some(self.line_at(span.start)),
            problem: format!("{problem}{}", hint(near)),
            key,
            value,
        }
    }
}

/// serde's wording made an operator's, and the names it expected (for a
/// suggestion).
fn reword(message: &str) -> (String, Vec<String>) {
    let message = message.trim_end();
    // toml, for enum variants' tables.
    if let Some(rest) = message.strip_prefix("unexpected keys in table: ") {
        let (_, available) = rest.split_once(", available keys: ").unwrap_or((rest, ""));
        let candidates = available
            .split(", ")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        return ("unknown key".into(), candidates);
    }
    let backticked = |s: &str| -> Vec<String> {
        s.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let expected = rest.split_once(", expected ").map(|(_, e)| e).unwrap_or("");
        return ("unknown key".into(), backticked(expected));
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        // The value itself is shown with the key.
        let expected = rest.split_once(", expected ").map(|(_, e)| e).unwrap_or("");
        let problem = match expected.strip_prefix("one of ") {
            Some(list) => format!("not one of {list}"),
            None => format!("expected {expected}"),
        };
        return (problem, backticked(expected));
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        return (format!("missing key {rest}"), Vec::new());
    }
    (message.to_string(), Vec::new())
}

/// Parses config text into `T`, keeping every key's place. Node tables
/// under `ivr.nodes` are tagged by their `type` key.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<(T, Source), Mistake> {
    let mut source = Source {
        text: text.to_string(),
        spots: BTreeMap::new(),
    };
    let mut doc = DeTable::parse(text).map_err(|e| Mistake {
        line: e.span().map(|s| source.line_at(s.start)),
        key: String::new(),
        value: None,
        problem: e.message().trim_end().to_string(),
    })?;
    source.note_table("", doc.get_ref());
    if source.spots.contains_key("ivr.queues") {
        return Err(source.at(
            "ivr.queues",
            "queues are defined once, as [[queues]] tables (docs/acd.md); remove ivr.queues and give each queue a [[queues]] table",
        ));
    }
    tag_nodes(&mut doc, &source)?;
    let value =
        T::deserialize(toml::de::Deserializer::from(doc)).map_err(|e| source.describe(&e))?;
    Ok((value, source))
}

/// The node types, for the message when `type` is missing.
const NODE_TYPES: &str =
    "play, menu, collect, business, language, queue, message, silent_caller, hangup, notified";

/// `[ivr.nodes.x] type = "play" ...` becomes `{ play = { ... } }`, which
/// serde reads as an externally tagged enum with every span kept (an
/// internally tagged one buffers the table and loses the spans, so its
/// errors could only point at the table's header).
fn tag_nodes(doc: &mut Spanned<DeTable>, source: &Source) -> Result<(), Mistake> {
    let Some(DeValue::Table(ivr)) = doc.get_mut().get_mut("ivr").map(Spanned::get_mut) else {
        return Ok(());
    };
    let Some(DeValue::Table(nodes)) = ivr.get_mut("nodes").map(Spanned::get_mut) else {
        return Ok(());
    };
    for (name, node) in nodes.iter_mut() {
        let key = format!("ivr.nodes.{}", name.get_ref());
        let span = node.span();
        let DeValue::Table(fields) = node.get_mut() else {
            continue;
        };
        let Some((_, kind)) = fields.remove_entry("type") else {
            return Err(source.at(&key, format!("missing key `type` ({NODE_TYPES})")));
        };
        let kind_span = kind.span();
        let DeValue::String(kind) = kind.into_inner() else {
            return Err(source.mistake(
                &format!("{key}.type"),
                format!("expected a node type in quotes ({NODE_TYPES})"),
            ));
        };
        let fields = std::mem::take(fields);
        let DeValue::Table(tagged) = node.get_mut() else {
            continue;
        };
        tagged.insert(
            Spanned::new(kind_span, kind),
            Spanned::new(span, DeValue::Table(fields)),
        );
    }
    Ok(())
}

/// The closest of `candidates` to a misspelt `name`, if one is close
/// enough to be a likely slip (case, a swapped pair, a letter or two).
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let name = name.to_lowercase();
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (distance(&name, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "; did you mean `x`?" or nothing.
pub fn hint(near: Option<&str>) -> String {
    near.map(|n| format!("; did you mean `{n}`?"))
        .unwrap_or_default()
}

/// Edit distance counting a swap of neighbours as one edit (optimal
/// string alignment).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses() {
        let names = ["consultation", "repair", "complaint"];
        assert_eq!(did_you_mean("consultaion", names), Some("consultation"));
        assert_eq!(did_you_mean("repiar", names), Some("repair"));
        assert_eq!(did_you_mean("Repair", names), Some("repair"));
        assert_eq!(did_you_mean("billing", names), None);
        assert_eq!(did_you_mean("pley", ["play", "menu"]), Some("play"));
        assert_eq!(distance("ab", "ba"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn keys_and_lines_of_nested_tables_and_arrays() {
        let text = "[a]\nx = 1\n\n[[q]]\nname = \"n\"\nlist = [\"p\", \"r\"]\n\n[t.u]\nopts = { 1 = \"v\" }\n";
        let (_, source): (toml::Table, Source) = parse(text).expect("parses");
        assert_eq!(source.line("a"), Some(1));
        assert_eq!(source.line("a.x"), Some(2));
        assert_eq!(source.line("q[0]"), Some(4));
        assert_eq!(source.line("q[0].name"), Some(5));
        assert_eq!(source.line("q[0].list[1]"), Some(6));
        assert_eq!(source.value("q[0].list[1]"), Some("\"r\""));
        assert_eq!(source.line("t.u.opts.1"), Some(9));
        assert_eq!(source.value("t.u"), None, "a [table] has no one-line value");
        assert_eq!(source.value("t.u.opts"), Some("{ 1 = \"v\" }"));
    }
}
