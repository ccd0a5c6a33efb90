//! A config file whose `[api]` differs from every default, for the tools
//! that take their local time and service level from `--config`. Use with
//!
//! ```ignore
//! #[path = "support/api_config.rs"]
//! mod api_config;
//! ```

use std::path::{Path, PathBuf};

/// The embedded default config with `[api]` edited: +05:30, T = 20 s, a
/// 90% target and short abandons under 4 s; written into `dir`.
pub fn write(dir: &Path) -> PathBuf {
    let text = hotline::config::DEFAULT_TOML
        .replace("utc_offset = \"+08:00\"", "utc_offset = \"+05:30\"")
        .replace("service_level = \"15s\"", "service_level = \"20s\"")
        .replace("service_level_target = 0.8", "service_level_target = 0.9")
        .replace("# short_abandon = \"5s\"", "short_abandon = \"4s\"");
    for edited in [
        "utc_offset = \"+05:30\"",
        "service_level = \"20s\"",
        "service_level_target = 0.9",
        "\nshort_abandon = \"4s\"",
    ] {
        assert!(
            text.contains(edited),
            "config/default.toml changed: {edited} not set"
        );
    }
    let path = dir.join("hotline.toml");
    std::fs::write(&path, text).expect("write config");
    path
}
