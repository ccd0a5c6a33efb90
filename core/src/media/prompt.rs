//! The prompt cache: WAV bytes decoded once at start, turned into 8 kHz mono,
//! and pre-encoded into 20 ms G.711 frames for both laws, so playing a
//! prompt is a copy of 160 bytes per packet.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use super::g711::Codec;

pub const SAMPLE_RATE: u32 = 8000;
pub const FRAME_SAMPLES: usize = 160;
pub const FRAME: Duration = Duration::from_millis(20);

#[derive(Debug, Error)]
pub enum PromptError {
    #[error("prompt {name:?}: cannot read {path}: {source}")]
    Read {
        name: String,
        path: PathBuf,
        source: hound::Error,
    },
    #[error("prompt {name:?}: {path} is {bits}-bit {format}; prompts must be 16-bit PCM WAV (convert with: sox in.wav -r 8000 -c 1 -b 16 out.wav)")]
    Format {
        name: String,
        path: PathBuf,
        bits: u16,
        format: &'static str,
    },
    #[error("prompt {name:?}: {path} holds no audio")]
    Empty { name: String, path: PathBuf },
    #[error("no prompts for language {language:?}: {dir} holds no .wav files")]
    NoPrompts {
        dir: PathBuf,
        language: &'static str,
    },
}

/// Index of a prompt in a [`PromptSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PromptId(pub u32);

/// One prompt, encoded.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub name: String,
    frames: usize,
    pcmu: Vec<u8>,
    pcma: Vec<u8>,
}

impl Prompt {
    /// Encodes 8 kHz mono samples; the last frame is padded with silence.
    pub fn from_samples(name: &str, samples: &[i16]) -> Prompt {
        let frames = samples.len().div_ceil(FRAME_SAMPLES);
        let encode = |codec: Codec| {
            let mut out = vec![codec.silence(); frames * FRAME_SAMPLES];
            for (o, &s) in out.iter_mut().zip(samples) {
                *o = codec.encode(s);
            }
            out
        };
        Prompt {
            name: name.to_string(),
            frames,
            pcmu: encode(Codec::Pcmu),
            pcma: encode(Codec::Pcma),
        }
    }

    pub fn frames(&self) -> usize {
        self.frames
    }

    pub fn duration(&self) -> Duration {
        FRAME * self.frames as u32
    }

    /// The encoded bytes of frame `index`.
    pub fn frame(&self, codec: Codec, index: usize) -> &[u8] {
        let bytes = match codec {
            Codec::Pcmu => &self.pcmu,
            Codec::Pcma => &self.pcma,
        };
        let start = index * FRAME_SAMPLES;
        &bytes[start..start + FRAME_SAMPLES]
    }
}

/// All prompts, loaded once; shared read-only by every call.
#[derive(Debug, Default, Clone)]
pub struct PromptSet {
    prompts: Vec<Prompt>,
    by_name: HashMap<String, PromptId>,
}

impl PromptSet {
    pub fn insert(&mut self, prompt: Prompt) -> PromptId {
        let id = PromptId(self.prompts.len() as u32);
        self.by_name.insert(prompt.name.clone(), id);
        self.prompts.push(prompt);
        id
    }

    pub fn id(&self, name: &str) -> Option<PromptId> {
        self.by_name.get(name).copied()
    }

    pub fn get(&self, id: PromptId) -> &Prompt {
        &self.prompts[id.0 as usize]
    }

    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }
}

/// Decodes WAV bytes from `source`; `path` only names it in errors.
pub fn decode_wav<R: std::io::Read>(
    name: &str,
    path: &Path,
    source: R,
) -> Result<Vec<i16>, PromptError> {
    let read_err = |source| PromptError::Read {
        name: name.to_string(),
        path: path.to_path_buf(),
        source,
    };
    let reader = hound::WavReader::new(source).map_err(read_err)?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        return Err(PromptError::Format {
            name: name.to_string(),
            path: path.to_path_buf(),
            bits: spec.bits_per_sample,
            format: match spec.sample_format {
                hound::SampleFormat::Int => "integer PCM",
                hound::SampleFormat::Float => "float",
            },
        });
    }
    let interleaved = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<i16>, _>>()
        .map_err(read_err)?;
    let channels = spec.channels.max(1) as usize;
    let mono: Vec<i16> = interleaved
        .chunks(channels)
        .map(|c| (c.iter().map(|&s| s as i32).sum::<i32>() / c.len() as i32) as i16)
        .collect();
    let samples = resample(&mono, spec.sample_rate, SAMPLE_RATE);
    if samples.is_empty() {
        return Err(PromptError::Empty {
            name: name.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(samples)
}

/// Resamples by averaging over each output sample's span (a box filter
/// against aliasing when going down) and linear interpolation going up.
/// Good enough for speech prompts, which should be rendered at 8 kHz anyway.
pub fn resample(input: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || input.is_empty() || from == 0 {
        return input.to_vec();
    }
    let out_len = (input.len() as u64 * to as u64 / from as u64) as usize;
    let ratio = from as f64 / to as f64;
    (0..out_len)
        .map(|i| {
            let pos = i as f64 * ratio;
            if ratio > 1.0 {
                let start = pos as usize;
                let end = (((i + 1) as f64 * ratio) as usize).clamp(start + 1, input.len());
                let span = &input[start.min(input.len() - 1)..end];
                (span.iter().map(|&s| s as i64).sum::<i64>() / span.len().max(1) as i64) as i16
            } else {
                let idx = pos as usize;
                let frac = pos - idx as f64;
                let a = input[idx.min(input.len() - 1)] as f64;
                let b = input[(idx + 1).min(input.len() - 1)] as f64;
                (a + (b - a) * frac) as i16
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_padded_with_silence() {
        let p = Prompt::from_samples("x", &[1000; 200]);
        assert_eq!(p.frames(), 2);
        assert_eq!(p.duration(), Duration::from_millis(40));
        assert_eq!(p.frame(Codec::Pcmu, 1)[39], Codec::Pcmu.encode(1000));
        assert_eq!(p.frame(Codec::Pcmu, 1)[40], Codec::Pcmu.silence());
        assert_eq!(p.frame(Codec::Pcma, 0)[0], Codec::Pcma.encode(1000));
    }

    #[test]
    fn wav_at_16k_stereo_becomes_8k_mono() {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut bytes = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut bytes, spec).expect("create");
        for _ in 0..16000 {
            w.write_sample(1000i16).expect("write");
            w.write_sample(3000i16).expect("write");
        }
        w.finalize().expect("finalize");
        bytes.set_position(0);
        let s = decode_wav("t", Path::new("t.wav"), bytes).expect("reads");
        assert_eq!(s.len(), 8000);
        assert!(s.iter().all(|&x| x == 2000));
    }

    #[test]
    fn unreadable_bytes_name_the_prompt_and_file() {
        let err = decode_wav("greeting", Path::new("/x/greeting.wav"), &b"not a wav"[..])
            .expect_err("not a WAV");
        let msg = err.to_string();
        assert!(
            msg.contains("greeting") && msg.contains("/x/greeting.wav"),
            "{msg}"
        );
    }
}
