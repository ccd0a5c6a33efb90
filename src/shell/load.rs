//! Loaders: the files a config names, read here and handed to the core
//! as bytes or parsed values. `hotline run`, SIGHUP and `check-config`
//! all load through these.

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};
use crate::directory::{Directory, DirectoryError};
use crate::media::catalog::{PromptFile, PromptLibrary, PromptScope};
use crate::media::prompt::PromptError;
use crate::setup::{Setup, SetupError};

/// Reads and parses a config file; relative paths in it are taken from
/// the file's folder.
pub fn config(path: &Path) -> Result<Config, ConfigError> {
    let mut config = config_without_secrets(path)?;
    trunk_secrets(&mut config, &path.display().to_string())?;
    Ok(config)
}

/// [`config`] without reading the trunks' `password_env` variables: for
/// tools that only need other tables (`hotline campaign --config` reads
/// `[api]`, and its user need not hold the trunk's secret).
pub fn config_without_secrets(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    Config::parse(&text, &path.display().to_string(), &base)
}

/// Reads each trunk's `password_env` from the environment (so the secret
/// need not be in the file); a variable that is not set is a config error.
pub fn trunk_secrets(config: &mut Config, origin: &str) -> Result<(), ConfigError> {
    for i in 0..config.trunks.len() {
        let Some(var) = config.trunks[i].password_env.clone() else {
            continue;
        };
        match std::env::var(&var) {
            Ok(secret) if !secret.is_empty() => config.trunks[i].password = Some(secret),
            _ => {
                let key = format!("trunks[{i}].password_env");
                return Err(ConfigError::Invalid {
                    origin: origin.to_string(),
                    mistake: config
                        .source
                        .mistake(&key, format!("the environment variable {var} is not set")),
                });
            }
        }
    }
    Ok(())
}

/// A config with everything it names: prompts, IVR program, directory.
pub fn setup(config: Config, origin: &str) -> Result<Setup, SetupError> {
    let prompts = prompts(&config)?;
    let directory = match config.directory_file() {
        Some(path) => directory(&path)?,
        None => Directory::default(),
    };
    Setup::assemble(config, origin, prompts, directory)
}

/// The configured prompts: from `prompts.dir` (`<dir>/<language>/*.wav`,
/// one level of subfolders such as `digits/`, shared prompts at the top,
/// and the `prompts.files` overrides), or the built-in set.
pub fn prompts(config: &Config) -> Result<PromptLibrary, PromptError> {
    let Some(dir) = config.prompts_dir() else {
        return PromptLibrary::embedded(config);
    };
    let mut files = Vec::new();
    for (name, path) in wav_files(&dir, false)? {
        files.push(read_prompt(PromptScope::Shared, name, path)?);
    }
    for lang in &config.prompts.languages {
        for (name, path) in wav_files(&dir.join(lang.code()), true)? {
            files.push(read_prompt(PromptScope::Language(*lang), name, path)?);
        }
    }
    for (name, file) in &config.prompts.files {
        files.push(read_prompt(
            PromptScope::Everywhere,
            name.clone(),
            dir.join(file),
        )?);
    }
    PromptLibrary::from_files(config, files)
}

fn read_prompt(scope: PromptScope, name: String, path: PathBuf) -> Result<PromptFile, PromptError> {
    match std::fs::read(&path) {
        Ok(bytes) => Ok(PromptFile {
            scope,
            name,
            origin: path,
            bytes,
        }),
        Err(e) => Err(PromptError::Read {
            name,
            path,
            source: hound::Error::IoError(e),
        }),
    }
}

/// `(name, path)` of each `*.wav` in `dir`, sorted; with `subfolders`,
/// also those one folder down under a prefix (`digits/7`). A folder that
/// does not exist holds none; one that cannot be read is an error.
fn wav_files(dir: &Path, subfolders: bool) -> Result<Vec<(String, PathBuf)>, PromptError> {
    let unreadable = |e: std::io::Error| PromptError::Read {
        name: String::new(),
        path: dir.to_path_buf(),
        source: hound::Error::IoError(e),
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(unreadable(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(unreadable)?.path();
        if path.is_dir() {
            let Some(sub) = path.file_name().and_then(|s| s.to_str()) else {
                continue;
            };
            if subfolders {
                for (name, p) in wav_files(&path, false)? {
                    files.push((format!("{sub}/{name}"), p));
                }
            }
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("wav") {
            continue;
        }
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            files.push((stem.to_string(), path.clone()));
        }
    }
    files.sort();
    Ok(files)
}

/// Reads and parses a caller directory file.
pub fn directory(path: &Path) -> Result<Directory, DirectoryError> {
    let bytes = std::fs::read(path).map_err(|source| DirectoryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Directory::from_bytes(&bytes, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_prompt_file_names_the_file() {
        let err = read_prompt(
            PromptScope::Shared,
            "greeting".into(),
            PathBuf::from("/nonexistent/greeting.wav"),
        )
        .expect_err("missing file");
        let msg = err.to_string();
        assert!(
            msg.contains("greeting") && msg.contains("/nonexistent/greeting.wav"),
            "{msg}"
        );
    }

    #[test]
    fn directory_files_are_read_and_bad_ones_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("callers.csv");
        std::fs::write(&path, "\u{feff}13700137000,business\r\n").expect("write");
        let d = directory(&path).expect("loads");
        assert_eq!(d.len(), 1);

        let missing = dir.path().join("missing.csv");
        let e = directory(&missing).expect_err("missing file");
        assert!(matches!(e, DirectoryError::Read { .. }));
        assert!(e.to_string().contains("missing.csv"), "{e}");

        std::fs::write(&path, b"123,group\n456,group,no,\xd5\xc5\xc8\xfd\n").expect("write");
        let e = directory(&path).expect_err("not UTF-8");
        assert_eq!(
            e.to_string(),
            format!(
                "{} line 2: not UTF-8 text (save the file as UTF-8, not GBK)",
                path.display()
            )
        );
    }

    #[test]
    fn an_unreadable_prompt_folder_is_an_error_not_an_empty_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A file where the folder should be: read_dir fails, and that is
        // reported instead of being skipped.
        let not_a_dir = dir.path().join("zh");
        std::fs::write(&not_a_dir, "x").expect("write");
        let e = wav_files(&not_a_dir, true).expect_err("not a folder");
        assert!(e.to_string().contains("zh"), "{e}");
    }
}
