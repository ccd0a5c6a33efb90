//! The prompts the call flow needs, by name, from a folder or from the set
//! built into the binary (so `hotline run` works from any directory).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::call::flow::FlowPrompts;
use crate::config::{Config, Language};

use super::prompt::{decode_wav, read_wav, Prompt, PromptError, PromptSet};

/// Every prompt name the flow uses.
pub const NAMES: [&str; 6] = [
    "greeting",
    "silent_question",
    "silent_apology",
    "please_hold",
    "sorry_wait",
    "goodbye",
];

macro_rules! embedded {
    ($lang:literal) => {
        [
            include_bytes!(concat!("../../prompts/", $lang, "/greeting.wav")).as_slice(),
            include_bytes!(concat!("../../prompts/", $lang, "/silent_question.wav")).as_slice(),
            include_bytes!(concat!("../../prompts/", $lang, "/silent_apology.wav")).as_slice(),
            include_bytes!(concat!("../../prompts/", $lang, "/please_hold.wav")).as_slice(),
            include_bytes!(concat!("../../prompts/", $lang, "/sorry_wait.wav")).as_slice(),
            include_bytes!(concat!("../../prompts/", $lang, "/goodbye.wav")).as_slice(),
        ]
    };
}

const EMBEDDED_ZH: [&[u8]; 6] = embedded!("zh");
const EMBEDDED_EN: [&[u8]; 6] = embedded!("en");

/// Loads the configured language's prompts; any missing or unreadable file
/// is an error naming it.
pub fn load(config: &Config) -> Result<(Arc<PromptSet>, FlowPrompts), PromptError> {
    let lang = config.flow.language;
    let mut set = PromptSet::default();
    match &config.prompts.dir {
        None => {
            let files = match lang {
                Language::Zh => EMBEDDED_ZH,
                Language::En => EMBEDDED_EN,
            };
            for (name, bytes) in NAMES.iter().zip(files) {
                let origin = PathBuf::from(format!("<built-in>/{}/{name}.wav", lang.code()));
                let samples = decode_wav(name, &origin, std::io::Cursor::new(bytes))?;
                set.insert(Prompt::from_samples(name, &samples));
            }
        }
        Some(dir) => {
            let dir = config.base_dir.join(dir);
            for name in NAMES {
                let file = config
                    .prompts
                    .files
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| Path::new(lang.code()).join(format!("{name}.wav")));
                let samples = read_wav(name, &dir.join(file))?;
                set.insert(Prompt::from_samples(name, &samples));
            }
        }
    }
    let id = |name: &str| set.id(name).unwrap_or(super::prompt::PromptId(0));
    let flow = FlowPrompts {
        greeting: id("greeting"),
        silent_question: id("silent_question"),
        silent_apology: id("silent_apology"),
        please_hold: id("please_hold"),
        goodbye: id("goodbye"),
    };
    Ok((Arc::new(set), flow))
}
