//! The prompt library: every prompt of every configured language, from
//! files the shell read (`<dir>/<language>/<name>.wav`, shared ones in
//! `<dir>/`) or from the set built into the binary, so `hotline run` works
//! from any folder.
//! Prompts are looked up by name in the call's language.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Config, Language};

use super::prompt::{decode_wav, Prompt, PromptError, PromptId, PromptSet};

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

    /// This library with one more prompt, `name`, played in every
    /// language (a campaign's uploaded notice).
    pub fn with_shared(&self, name: &str, samples: &[i16]) -> PromptLibrary {
        let mut set = (*self.set).clone();
        let mut index = self.index.clone();
        let id = set.insert(Prompt::from_samples(&format!("/{name}"), samples));
        for l in &self.languages {
            index.insert((*l, name.to_string()), id);
        }
        PromptLibrary {
            set: Arc::new(set),
            index,
            languages: self.languages.clone(),
        }
    }

    /// The prompts built into the binary, for the configured languages.
    pub fn embedded(config: &Config) -> Result<PromptLibrary, PromptError> {
        let languages = &config.prompts.languages;
        let files = EMBEDDED
            .iter()
            .filter(|(lang, _, _)| lang.is_empty() || languages.iter().any(|l| l.code() == *lang))
            .map(|(lang, name, bytes)| PromptFile {
                scope: match Language::from_code(lang) {
                    Some(l) => PromptScope::Language(l),
                    None => PromptScope::Shared,
                },
                name: (*name).to_string(),
                origin: PathBuf::from(format!("<built-in>/{lang}/{name}.wav")),
                bytes: bytes.to_vec(),
            });
        PromptLibrary::from_files(config, files)
    }

    /// The configured languages' prompts from files the shell has read.
    /// Every configured language needs at least one file of its own.
    pub fn from_files(
        config: &Config,
        files: impl IntoIterator<Item = PromptFile>,
    ) -> Result<PromptLibrary, PromptError> {
        let languages = config.prompts.languages.clone();
        let mut set = PromptSet::default();
        let mut index = HashMap::new();
        let mut overrides = Vec::new();
        let mut with_files = Vec::new();
        for file in files {
            let samples = decode_wav(&file.name, &file.origin, std::io::Cursor::new(&file.bytes))?;
            match file.scope {
                PromptScope::Everywhere => overrides.push((file.name, samples)),
                PromptScope::Shared => {
                    let id = set.insert(Prompt::from_samples(&format!("/{}", file.name), &samples));
                    for l in &languages {
                        index.insert((*l, file.name.clone()), id);
                    }
                }
                PromptScope::Language(l) => {
                    if !languages.contains(&l) {
                        continue;
                    }
                    if !with_files.contains(&l) {
                        with_files.push(l);
                    }
                    let full = format!("{}/{}", l.code(), file.name);
                    let id = set.insert(Prompt::from_samples(&full, &samples));
                    index.insert((l, file.name), id);
                }
            }
        }
        if let Some(missing) = languages.iter().find(|l| !with_files.contains(l)) {
            return Err(PromptError::NoPrompts {
                dir: config
                    .prompts_dir()
                    .map(|d| d.join(missing.code()))
                    .unwrap_or_else(|| PathBuf::from("<built-in>")),
                language: missing.code(),
            });
        }
        // `prompts.files` overrides apply in every language.
        for (name, samples) in overrides {
            for l in &languages {
                let id = set.insert(Prompt::from_samples(
                    &format!("{}/{name}", l.code()),
                    &samples,
                ));
                index.insert((*l, name.clone()), id);
            }
        }
        Ok(PromptLibrary {
            set: Arc::new(set),
            index,
            languages,
        })
    }
}

/// Which calls may play a prompt file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptScope {
    /// A prompt in the folder's top level (the beep): every language.
    Shared,
    /// A prompt in a language's folder.
    Language(Language),
    /// A `prompts.files` override: every language, over the folders' own.
    Everywhere,
}

/// One prompt's WAV bytes as the shell read them.
#[derive(Debug, Clone)]
pub struct PromptFile {
    pub scope: PromptScope,
    /// e.g. `greeting` or `digits/7`.
    pub name: String,
    /// Where the bytes came from, for error messages.
    pub origin: PathBuf,
    pub bytes: Vec<u8>,
}
