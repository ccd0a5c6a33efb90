//! Everything a config names, checked together: the prompts, the IVR
//! program (checked against the prompts), the queues and the caller
//! directory. The shell reads the files (`hotline::shell::load`);
//! `hotline check-config` and `hotline run` both go through here.

use std::sync::Arc;

use thiserror::Error;

use crate::config::Config;
use crate::directory::{Directory, DirectoryError};
use crate::ivr::interpreter::BEEP;
use crate::ivr::program::Program;
use crate::media::catalog::PromptLibrary;
use crate::media::prompt::PromptError;

#[derive(Debug, Error)]
pub enum SetupError {
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error("{origin}: {message}")]
    Program { origin: String, message: String },
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("{origin}: {source}")]
    Acd {
        origin: String,
        source: crate::acd::AcdConfigError,
    },
}

/// A config with all it refers to.
pub struct Setup {
    pub config: Config,
    pub prompts: PromptLibrary,
    pub program: Arc<Program>,
    pub directory: Arc<Directory>,
}

impl Setup {
    /// Checks `config` with the prompts and directory the shell loaded for
    /// it. `origin` names the config in messages (its path).
    pub fn assemble(
        mut config: Config,
        origin: &str,
        prompts: PromptLibrary,
        directory: Directory,
    ) -> Result<Setup, SetupError> {
        // Queue nodes may name any queue the ACD runs.
        for q in &config.queues {
            if !config.ivr.queues.contains(&q.name) {
                config.ivr.queues.push(q.name.clone());
            }
        }
        let settings = crate::engine::EngineSettings::from_config(&config);
        crate::acd::Acd::new(settings.queues, settings.agents).map_err(|source| {
            SetupError::Acd {
                origin: origin.to_string(),
                source,
            }
        })?;
        let program = Program::compile(&config.ivr, &config.source, &|name| {
            prompts.has_everywhere(name)
        })
        .map_err(|message| SetupError::Program {
            origin: origin.to_string(),
            message,
        })?;
        if !prompts.has_everywhere(BEEP)
            && program
                .nodes
                .iter()
                .any(|n| matches!(n, crate::ivr::program::Node::Message { .. }))
        {
            return Err(SetupError::Program {
                origin: origin.to_string(),
                message: format!(
                    "message nodes need a shared prompt named {BEEP:?} (prompts/beep.wav)"
                ),
            });
        }
        for (i, q) in config.queues.iter().enumerate() {
            if let Some(target) = &q.overflow {
                let known = config.queues.iter().any(|o| &o.name == target)
                    || program.names.iter().any(|n| n == target);
                if !known {
                    return Err(SetupError::Program {
                        origin: origin.to_string(),
                        message: format!(
                            "queues[{i}] ({}).overflow = {target:?}: no queue or IVR node has that name",
                            q.name
                        ),
                    });
                }
            }
        }
        Ok(Setup {
            config,
            prompts,
            program: Arc::new(program),
            directory: Arc::new(directory),
        })
    }
}
