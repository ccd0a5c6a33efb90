//! Energy-based voice activity: a caller is speaking when enough
//! consecutive 20 ms frames are louder than a threshold.

/// Decides speech from per-frame energy.
#[derive(Debug, Clone)]
pub struct SpeechDetector {
    /// Mean-square threshold on 16-bit samples.
    threshold: f64,
    frames_needed: u32,
    loud_run: u32,
}

impl SpeechDetector {
    /// `threshold_dbfs` (e.g. -40) and how many consecutive loud frames
    /// make speech (e.g. 5 = 100 ms, so clicks and line noise do not count).
    pub fn new(threshold_dbfs: f64, frames_needed: u32) -> Self {
        let full_scale = 32768.0f64;
        let rms = full_scale * 10f64.powf(threshold_dbfs / 20.0);
        SpeechDetector {
            threshold: rms * rms,
            frames_needed: frames_needed.max(1),
            loud_run: 0,
        }
    }

    /// Feeds one frame of decoded samples; returns true on the frame at
    /// which speech starts (once per talk spurt).
    pub fn handle_frame(&mut self, samples: impl Iterator<Item = i16>) -> bool {
        let (mut sum, mut n) = (0f64, 0u32);
        for s in samples {
            sum += (s as f64) * (s as f64);
            n += 1;
        }
        if n == 0 {
            return false;
        }
        if sum / n as f64 >= self.threshold {
            self.loud_run += 1;
            self.loud_run == self.frames_needed
        } else {
            self.loud_run = 0;
            false
        }
    }
}

impl SpeechDetector {
    /// Whether the last frame was above the threshold.
    pub fn last_frame_loud(&self) -> bool {
        self.loud_run > 0
    }
}

/// Frame energy in dBFS, for logs and tests.
pub fn dbfs(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return f64::NEG_INFINITY;
    }
    let ms = samples.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / samples.len() as f64;
    10.0 * (ms / (32768.0f64 * 32768.0)).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(amplitude: f64) -> Vec<i16> {
        (0..160)
            .map(|i| (amplitude * (i as f64 * 0.3).sin()) as i16)
            .collect()
    }

    #[test]
    fn needs_consecutive_loud_frames() {
        let mut d = SpeechDetector::new(-40.0, 3);
        let loud = tone(3000.0);
        let quiet = tone(50.0);
        assert!(!d.handle_frame(loud.iter().copied()));
        assert!(!d.handle_frame(quiet.iter().copied()));
        assert!(!d.handle_frame(loud.iter().copied()));
        assert!(!d.handle_frame(loud.iter().copied()));
        assert!(d.handle_frame(loud.iter().copied()));
        assert!(!d.handle_frame(loud.iter().copied()), "reported once");
    }

    #[test]
    fn dbfs_of_full_scale_sine_is_about_minus_3() {
        let s = tone(32767.0);
        assert!((dbfs(&s) + 3.0).abs() < 0.3, "{}", dbfs(&s));
    }
}
