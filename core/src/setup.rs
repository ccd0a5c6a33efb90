//! Everything a config names, checked together: the prompts, the IVR
//! program (checked against the prompts and queues), the queues, the
//! agents and the caller directory. The shell reads the files
//! (`hotline::shell::load`); `hotline check-config` and `hotline run` both
//! go through here, so a config that passes the check has no dangling
//! name left to fail on at run time.

use std::sync::Arc;

use thiserror::Error;

use crate::config::source::hint;
use crate::config::{did_you_mean, Config, Mistake};
use crate::directory::{Directory, DirectoryError};
use crate::ivr::program::{Known, Program, ProgramError};
use crate::media::catalog::PromptLibrary;
use crate::media::prompt::{PromptError, PromptId};

#[derive(Debug, Error)]
pub enum SetupError {
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error("{origin}: {source}")]
    Program {
        origin: String,
        source: Box<ProgramError>,
    },
    /// A name outside `[ivr]` that nothing defines (an agent's queue, an
    /// overflow target).
    #[error("{origin}: {mistake}")]
    Reference { origin: String, mistake: Mistake },
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("{origin}: {}{source}", at_line(.line))]
    Acd {
        origin: String,
        line: Option<usize>,
        source: crate::acd::AcdConfigError,
    },
}

fn at_line(line: &Option<usize>) -> String {
    line.map(|l| format!("line {l}: ")).unwrap_or_default()
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
        config: Config,
        origin: &str,
        prompts: PromptLibrary,
        directory: Directory,
    ) -> Result<Setup, SetupError> {
        let reference = |mistake: Mistake| SetupError::Reference {
            origin: origin.to_string(),
            mistake,
        };
        check_queue_names(&config).map_err(reference)?;
        let settings = crate::engine::EngineSettings::from_config(&config);
        crate::acd::Acd::new(settings.queues, settings.agents).map_err(|source| {
            SetupError::Acd {
                origin: origin.to_string(),
                line: acd_line(&config, &source),
                source,
            }
        })?;
        // Prompt names without their language folder, for suggestions.
        let names: Vec<&str> = (0..prompts.set.len())
            .map(|i| {
                let name = prompts.set.get(PromptId(i as u32)).name.as_str();
                match name.split_once('/') {
                    Some((lang, rest)) if crate::config::Language::from_code(lang).is_some() => {
                        rest
                    }
                    _ => name,
                }
            })
            .collect();
        let prompt_in = |name: &str, language| prompts.get(language, name).is_some();
        let known = Known {
            queues: config.queues.iter().map(|q| q.name.as_str()).collect(),
            languages: &config.prompts.languages,
            prompt_in: &prompt_in,
            prompts: names,
        };
        let program = Program::compile(&config.ivr, &config.source, &known).map_err(|source| {
            SetupError::Program {
                origin: origin.to_string(),
                source: Box::new(source),
            }
        })?;
        check_overflows(&config, &program).map_err(reference)?;
        check_recorded_business_types(&config).map_err(reference)?;
        check_queue_prompts(&config, &known).map_err(reference)?;
        Ok(Setup {
            config,
            prompts,
            program: Arc::new(program),
            directory: Arc::new(directory),
        })
    }
}

/// Each queue is defined once, and agents serve only defined queues.
fn check_queue_names(config: &Config) -> Result<(), Mistake> {
    let at = &config.source;
    let defined: Vec<&str> = config.queues.iter().map(|q| q.name.as_str()).collect();
    for (i, name) in defined.iter().enumerate() {
        if let Some(first) = defined[..i].iter().position(|n| n == name) {
            return Err(at.at(
                &format!("queues[{i}].name"),
                format!(
                    "queue {name:?} is already defined (queues[{first}], line {})",
                    at.line(&format!("queues[{first}].name"))
                        .unwrap_or_default()
                ),
            ));
        }
    }
    for (i, agent) in config.agents.iter().enumerate() {
        for (j, queue) in agent.queues.iter().enumerate() {
            if !defined.contains(&queue.as_str()) {
                return Err(at.at(
                    &format!("agents[{i}].queues[{j}]"),
                    format!(
                        "agent {:?} serves {queue:?}, but no [[queues]] table defines it ({}){}",
                        agent.id,
                        list(&defined),
                        hint(did_you_mean(queue, defined.iter().copied()))
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The prompts a queue's in-call settings name exist in every language
/// prompts are loaded in (else the caller would hear silence).
fn check_queue_prompts(config: &Config, known: &Known) -> Result<(), Mistake> {
    for (i, q) in config.queues.iter().enumerate() {
        let named = [
            ("hold_prompt", q.hold_prompt.as_deref()),
            ("resume_prompt", q.resume_prompt.as_deref()),
            ("survey_prompt", Some(q.survey_prompt.as_str())),
            ("survey_thanks", Some(q.survey_thanks.as_str())),
        ];
        for (key, name) in named {
            let Some(name) = name else { continue };
            if let Some(language) = known
                .languages
                .iter()
                .find(|l| !(known.prompt_in)(name, **l))
            {
                return Err(config.source.at(
                    &format!("queues[{i}].{key}"),
                    format!(
                        "no prompt {name:?} in language {:?}{}",
                        language.code(),
                        hint(did_you_mean(name, known.prompts.iter().copied()))
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Business types recorded are business types of the IVR.
fn check_recorded_business_types(config: &Config) -> Result<(), Mistake> {
    let known: Vec<&str> = config
        .ivr
        .business_types
        .iter()
        .map(String::as_str)
        .collect();
    for (i, b) in config.recordings.business_types.iter().enumerate() {
        if !known.contains(&b.as_str()) {
            return Err(config.source.at(
                &format!("recordings.business_types[{i}]"),
                format!(
                    "{b:?} is not in ivr.business_types ({}){}",
                    list(&known),
                    hint(did_you_mean(b, known.iter().copied()))
                ),
            ));
        }
    }
    Ok(())
}

/// An overflow target is another queue or a node of the IVR program.
fn check_overflows(config: &Config, program: &Program) -> Result<(), Mistake> {
    let names: Vec<&str> = config
        .queues
        .iter()
        .map(|q| q.name.as_str())
        .chain(program.names.iter().map(String::as_str))
        .collect();
    for (i, q) in config.queues.iter().enumerate() {
        let Some(target) = &q.overflow else { continue };
        if names.contains(&target.as_str()) {
            continue;
        }
        return Err(config.source.at(
            &format!("queues[{i}].overflow"),
            format!(
                "queue {:?} overflows to {target:?}, but no queue or IVR node has that name{}",
                q.name,
                hint(did_you_mean(target, names.iter().copied()))
            ),
        ));
    }
    Ok(())
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none defined".into()
    } else {
        names.join(", ")
    }
}

/// The line of the queue or agent an ACD error is about.
fn acd_line(config: &Config, e: &crate::acd::AcdConfigError) -> Option<usize> {
    use crate::acd::AcdConfigError as E;
    let key = match e {
        E::DuplicateQueue(name) | E::InvalidQueue { queue: name, .. } => {
            let i = config.queues.iter().rposition(|q| &q.name == name)?;
            format!("queues[{i}]")
        }
        E::DuplicateAgent(id) | E::InvalidAgent { agent: id, .. } => {
            let i = config.agents.iter().rposition(|a| &a.id == id)?;
            format!("agents[{i}]")
        }
        E::NeedsRestart(_) => return None,
    };
    config.source.line(&key)
}
