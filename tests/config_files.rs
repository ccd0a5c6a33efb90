//! The config files in the repo load with everything they name, and
//! mistakes are reported with the key and the line.

#[path = "support/engine.rs"]
mod engine;

use std::path::Path;

#[test]
fn example_config_loads_with_prompts_from_disk() {
    let c = hotline::shell::load::config(Path::new("config/example.toml")).expect("example config");
    let setup = hotline::shell::load::setup(c, "config/example.toml").expect("prompts and program");
    assert!(setup.prompts.has_everywhere("main_menu"));
    assert!(setup.prompts.has_everywhere("beep"));
    assert!(setup.program.nodes.len() >= 10);
}

#[test]
fn a_missing_prompt_folder_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string("config/example.toml")
        .expect("read")
        .replace("dir = \"../prompts\"", "dir = \"nowhere\"");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).expect("write");
    let c = hotline::shell::load::config(&path).expect("config itself is fine");
    let err = hotline::shell::load::setup(c, "c.toml")
        .err()
        .expect("prompts missing")
        .to_string();
    assert!(err.contains("nowhere/zh"), "{err}");
}

/// Runs `hotline check-config` on the default config edited by `edit`.
fn check(edit: impl Fn(String) -> String) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = edit(std::fs::read_to_string("config/default.toml").expect("read"));
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, &text).expect("write");
    let out = engine::command()
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run hotline");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        text,
    )
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle")
        + 1
}

#[test]
fn check_config_names_key_and_line() {
    let (ok, err, text) = check(|t| t.replace("answer_after = \"2s\"", "answer_after = \"16s\""));
    assert!(!ok);
    assert!(err.contains("answer_after"), "{err}");
    assert!(
        err.contains(&format!("line {}", line_of(&text, "answer_after ="))),
        "{err}"
    );

    let ok = engine::command()
        .args(["check-config", "config/example.toml"])
        .output()
        .expect("run hotline");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// An edit of the default config, the text to find its line by, the key
/// path the error must name, and what it must say.
type Case = (
    Box<dyn Fn(String) -> String>,
    &'static str,
    &'static str,
    &'static str,
);

#[test]
fn check_config_catches_ivr_mistakes() {
    let cases: Vec<Case> = vec![
        (
            Box::new(|t| t.replace("next = \"repair_queue\"", "next = \"repiar_queue\"")),
            "repiar_queue",
            "ivr.nodes.repair.next",
            "no node named",
        ),
        (
            Box::new(|t| t.replace("prompt = \"no_agents\"", "prompt = \"no_agent\"")),
            "prompt = \"no_agent\"",
            "ivr.nodes.no_agents.prompt",
            "no prompt named",
        ),
        (
            Box::new(|t| t.replace("queue = \"complaint\"", "queue = \"complaints\"")),
            "queue = \"complaints\"",
            "ivr.nodes.complaint_queue.queue",
            "no queue named",
        ),
        (
            Box::new(|t| format!("{t}\n[ivr.nodes.orphan]\ntype = \"hangup\"\n")),
            "[ivr.nodes.orphan]",
            "ivr.nodes.orphan",
            "unreachable",
        ),
        (
            Box::new(|t| {
                t.replace(
                    "next = \"message\"\n\n[ivr.nodes.message]",
                    "next = \"no_agents\"\n\n[ivr.nodes.message]",
                )
            }),
            "[ivr.nodes.no_agents]",
            "ivr.nodes.no_agents",
            "loop without ever waiting",
        ),
    ];
    for (edit, needle, key, what) in cases {
        let (ok, err, text) = check(edit);
        assert!(!ok, "{key}: accepted");
        assert!(err.contains(key), "{key} not in: {err}");
        assert!(err.contains(what), "{what} not in: {err}");
        if key != "ivr.nodes.orphan" && key != "ivr.nodes.no_agents" || what != "unreachable" {
            let line = line_of(&text, needle);
            assert!(
                err.contains(&format!("line {line}")),
                "line {line} not in: {err}"
            );
        }
    }
}

#[test]
fn a_bad_caller_directory_names_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("callers.csv"),
        "138*,public,no,\n13800,gold,no,x\n",
    )
    .expect("write");
    let text = std::fs::read_to_string("config/default.toml")
        .expect("read")
        .replace("# file = \"callers.csv\"", "file = \"callers.csv\"");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).expect("write");
    let out = engine::command()
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run hotline");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("line 2") && err.contains("gold"), "{err}");
}
