//! The prompt library: every prompt of every configured language, from a
//! folder (`<dir>/<language>/<name>.wav`, shared ones in `<dir>/`) or from
//! the set built into the binary, so `hotline run` works from any folder.
//! Prompts are looked up by name in the call's language.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, Language};

use super::prompt::{decode_wav, read_wav, Prompt, PromptError, PromptId, PromptSet};

include!(concat!(env!("OUT_DIR"), "/embedded_prompts.rs"));

/// Prompts by (language, name); shared prompts (the beep) under every
/// language.
#[derive(Debug, Clone)]
pub struct PromptLibrary {
    pub set: Arc<PromptSet>,
    index: HashMap<(Language, String), PromptId>,
    languages: Vec<Language>,
}

impl PromptLibrary {
    pub fn get(&self, language: Language, name: &str) -> Option<PromptId> {
        self.index.get(&(language, name.to_string())).copied()
    }

    /// Whether `name` can be played in every configured language.
    pub fn has_everywhere(&self, name: &str) -> bool {
        self.languages.iter().all(|l| self.get(*l, name).is_some())
    }

    pub fn languages(&self) -> &[Language] {
        &self.languages
    }

    /// Loads the configured languages' prompts.
    pub fn load(config: &Config) -> Result<PromptLibrary, PromptError> {
        let languages = config.prompts.languages.clone();
        let mut set = PromptSet::default();
        let mut index = HashMap::new();
        let mut add = |lang: &str, name: &str, samples: Vec<i16>| {
            let id = set.insert(Prompt::from_samples(&format!("{lang}/{name}"), &samples));
            for l in &languages {
                if lang.is_empty() || lang == l.code() {
                    index.insert((*l, name.to_string()), id);
                }
            }
        };
        match &config.prompts.dir {
            None => {
                for (lang, name, bytes) in EMBEDDED {
                    if !lang.is_empty() && !languages.iter().any(|l| l.code() == *lang) {
                        continue;
                    }
                    let origin = PathBuf::from(format!("<built-in>/{lang}/{name}.wav"));
                    let samples = decode_wav(name, &origin, std::io::Cursor::new(*bytes))?;
                    add(lang, name, samples);
                }
            }
            Some(dir) => {
                let dir = config.base_dir.join(dir);
                for (name, path) in wav_files_flat(&dir) {
                    add("", &name, read_wav(&name, &path)?);
                }
                for lang in &languages {
                    let lang_dir = dir.join(lang.code());
                    let files = wav_files(&lang_dir);
                    if files.is_empty() {
                        return Err(PromptError::NoPrompts {
                            dir: lang_dir,
                            language: lang.code(),
                        });
                    }
                    for (name, path) in files {
                        add(lang.code(), &name, read_wav(&name, &path)?);
                    }
                }
                for (name, file) in &config.prompts.files {
                    let path = dir.join(file);
                    let samples = read_wav(name, &path)?;
                    for lang in &languages {
                        let id = set.insert(Prompt::from_samples(
                            &format!("{}/{name}", lang.code()),
                            &samples,
                        ));
                        index.insert((*lang, name.clone()), id);
                    }
                }
            }
        }
        Ok(PromptLibrary {
            set: Arc::new(set),
            index,
            languages,
        })
    }
}

/// `(name, path)` of each `*.wav` in `dir`, and in its subfolders under a
/// prefix ("digits/7"), sorted.
fn wav_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    for path in std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
    {
        if path.is_dir() {
            let Some(sub) = path.file_name().and_then(|s| s.to_str()) else {
                continue;
            };
            for (name, p) in wav_files_flat(&path) {
                files.push((format!("{sub}/{name}"), p));
            }
        }
    }
    files.extend(wav_files_flat(dir));
    files.sort();
    files
}

fn wav_files_flat(dir: &Path) -> Vec<(String, PathBuf)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("wav"))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p)))
        .collect()
}
