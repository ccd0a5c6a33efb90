//! Embeds every prompt under prompts/ so the binary runs from any folder.
//! Writes `$OUT_DIR/embedded_prompts.rs`: a table of
//! (language or "" for shared prompts, name, WAV bytes). Prompts in a
//! language's subfolder are named with it: `digits/7`.

// A build script runs at compile time, not in the engine: it may read the
// prompt files that core/clippy.toml keeps out of the core itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::fmt::Write as _;
use std::path::Path;

type Entry = (String, String, String);

fn add_dir(entries: &mut Vec<Entry>, dir: &Path, lang: &str, prefix: &str) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in read.flatten() {
        let path = entry.path();
        if path.is_dir() {
            // Language folders at the top; one level of subfolders inside.
            let Some(sub) = path.file_name().and_then(|s| s.to_str()) else {
                continue;
            };
            match (lang.is_empty(), prefix.is_empty()) {
                (true, _) => add_dir(entries, &path, sub, ""),
                (false, true) => add_dir(entries, &path, lang, &format!("{sub}/")),
                (false, false) => {}
            }
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("wav") {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        entries.push((
            lang.to_string(),
            format!("{prefix}{name}"),
            path.display().to_string(),
        ));
    }
}

fn main() {
    println!("cargo:rerun-if-changed=../prompts");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../prompts");
    let mut entries = Vec::new();
    add_dir(&mut entries, &root, "", "");
    entries.sort();
    let mut out = String::from("pub const EMBEDDED: &[(&str, &str, &[u8])] = &[\n");
    for (lang, name, path) in &entries {
        let _ = writeln!(out, "    ({lang:?}, {name:?}, include_bytes!({path:?})),");
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()))
        .join("embedded_prompts.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        panic!("cannot write {}: {e}", dest.display());
    }
}
