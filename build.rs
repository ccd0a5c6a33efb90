//! Embeds every prompt under prompts/ so the binary runs from any folder.
//! Writes `$OUT_DIR/embedded_prompts.rs`: a table of
//! (language or "" for shared prompts, name, WAV bytes).

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=prompts");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
    let mut entries: Vec<(String, String, String)> = Vec::new();
    let mut add_dir = |dir: &Path, lang: &str| {
        let Ok(read) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in read.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("wav") {
                continue;
            }
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            entries.push((
                lang.to_string(),
                name.to_string(),
                path.display().to_string(),
            ));
        }
    };
    add_dir(&root, "");
    if let Ok(read) = std::fs::read_dir(&root) {
        for entry in read.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if let Some(lang) = path.file_name().and_then(|s| s.to_str()) {
                    add_dir(&path, lang);
                }
            }
        }
    }
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
