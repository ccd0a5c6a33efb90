//! The config files in the repo load, with their prompts, and mistakes are
//! reported with the key and the line.

use std::path::Path;

use hotline::config::Config;
use hotline::media::catalog;

#[test]
fn example_config_loads_with_prompts_from_disk() {
    let c = Config::load(Path::new("config/example.toml")).expect("example config");
    let (prompts, _) = catalog::load(&c).expect("prompts from prompts/");
    assert_eq!(prompts.len(), catalog::NAMES.len());
}

#[test]
fn a_missing_prompt_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string("config/example.toml")
        .expect("read")
        .replace("dir = \"../prompts\"", "dir = \"nowhere\"");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).expect("write");
    let c = Config::load(&path).expect("config itself is fine");
    let err = catalog::load(&c).expect_err("prompt missing").to_string();
    assert!(err.contains("nowhere/zh/greeting.wav"), "{err}");
}

#[test]
fn check_config_cli_names_key_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string("config/default.toml")
        .expect("read")
        .replace("answer_after = \"2s\"", "answer_after = \"16s\"");
    let line = text
        .lines()
        .position(|l| l.starts_with("answer_after"))
        .expect("key")
        + 1;
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["check-config"])
        .arg(&path)
        .output()
        .expect("run hotline");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("answer_after"), "{err}");
    assert!(err.contains(&format!("line {line}")), "{err}");

    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["check-config", "config/example.toml"])
        .output()
        .expect("run hotline");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}
