//! The config files in the repo load with everything they name, a call
//! placed through the example reaches a real queue, and mistakes are
//! reported with the key and the line.

mod common;

#[path = "support/engine.rs"]
mod engine;

use std::path::Path;

use common::{caller_presses, invite_to, register, Sim};
use hotline::config::Config;

#[test]
fn example_config_loads_with_prompts_from_disk() {
    let c = hotline::shell::load::config(Path::new("config/example.toml")).expect("example config");
    let setup = hotline::shell::load::setup(c, "config/example.toml").expect("prompts and program");
    assert!(setup.prompts.has_everywhere("main_menu"));
    assert!(setup.prompts.has_everywhere("beep"));
    assert!(setup.program.nodes.len() >= 10);
    // Everything an operator needs is in it.
    let c = &setup.config;
    assert!(c
        .api
        .as_ref()
        .is_some_and(|api| api.token.as_deref().is_some_and(|t| !t.is_empty())));
    assert!(!c.security.trunks.is_empty());
    assert_eq!(c.agents.len(), 2);
    let queues: Vec<&str> = c.queues.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(queues, ["consultation", "repair", "complaint"]);
    assert!(c.directory.file.is_some());
    assert_eq!(c.recordings_dir(), Path::new("config/../var/recordings"));
    assert!(c.queues[0].record && c.queues[0].recording_notice);
    assert!(c.queues[2].survey);
    // TLS on, for files docs/tls.md's command makes.
    assert_eq!(
        c.tls_files(),
        Some((
            Path::new("config/tls/cert.pem").to_path_buf(),
            Path::new("config/tls/key.pem").to_path_buf()
        ))
    );
}

/// The embedded demo records the consultation queue, with the notice,
/// so a new user hears one and finds its WAV at once; its queues have
/// the extensions a transfer announces.
#[test]
fn the_demo_records_consultation_with_the_notice() {
    let c =
        hotline::config::Config::parse(hotline::config::DEFAULT_TOML, "default", Path::new("."))
            .expect("default config");
    let q = &c.queues[0];
    assert_eq!(q.name, "consultation");
    assert!(q.record && q.recording_notice);
    assert_eq!(q.hold_prompt.as_deref(), Some("hold_start"));
    assert_eq!(c.recordings_dir(), Path::new("./var/recordings"));
    let extensions: Vec<_> = c.queues.iter().map(|q| q.extension.as_deref()).collect();
    assert_eq!(extensions, [Some("8001"), Some("8002"), Some("8003")]);
}

/// What check-config passes must work at run time: a caller of the example
/// who presses 1 is queued for consultation and the agent's phone rings
/// (not refused with an unknown queue).
#[test]
fn a_caller_of_the_example_config_reaches_a_real_queue() {
    let c = hotline::shell::load::config(Path::new("config/example.toml")).expect("example config");
    let mut sim = Sim::new(c);
    register(&mut sim, "1001");
    caller_presses(&mut sim, "example-1", '1');
    let inv = invite_to(&sim, "1001").expect("agent 1001 is rung for the caller");
    assert!(inv.contains("X-Hotline-Queue: consultation"), "{inv}");
    assert!(inv.contains("X-Hotline-Business: consultation"), "{inv}");
    assert!(sim.records.is_empty(), "the call goes on");
}

/// The example config, parsed from its own folder, edited, then set up.
fn example_setup(edit: impl FnOnce(&mut Config)) -> Result<(), String> {
    let text = std::fs::read_to_string("config/example.toml").expect("read");
    let mut c = Config::parse(&text, "example.toml", Path::new("config")).expect("parses");
    edit(&mut c);
    hotline::shell::load::setup(c, "example.toml")
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn queue_nodes_must_name_a_defined_queue() {
    let err = example_setup(|c| {
        c.queues.clear();
        c.agents.clear();
    })
    .expect_err("no [[queues]]: the queue nodes dangle");
    let text = std::fs::read_to_string("config/example.toml").expect("read");
    let line = line_of(&text, "queue = \"complaint\"");
    assert_eq!(
        err,
        format!(
            "example.toml: line {line}: ivr.nodes.complaint_queue.queue: no queue named \"complaint\" in [[queues]] (none defined)"
        )
    );
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

    // The example, with the TLS pair its comment tells how to make (here
    // by rcgen, in a copy of its folder: the repo has no key).
    let dir = tempfile::tempdir().expect("tempdir");
    let prompts = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
    let text = std::fs::read_to_string("config/example.toml")
        .expect("read")
        .replace(
            "dir = \"../prompts\"",
            &format!("dir = {:?}", prompts.display().to_string()),
        );
    std::fs::write(dir.path().join("example.toml"), text).expect("write");
    std::fs::copy("config/callers.csv", dir.path().join("callers.csv")).expect("callers");
    std::fs::create_dir_all(dir.path().join("tls")).expect("tls folder");
    let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("rcgen");
    std::fs::write(dir.path().join("tls/cert.pem"), pair.cert.pem()).expect("cert");
    std::fs::write(
        dir.path().join("tls/key.pem"),
        pair.signing_key.serialize_pem(),
    )
    .expect("key");
    let ok = engine::command()
        .arg("check-config")
        .arg(dir.path().join("example.toml"))
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
            "no queue named \"complaints\" in [[queues]] (consultation, repair, complaint); did you mean `complaint`?",
        ),
        (
            Box::new(|t| t.replace("business = \"consultation\"", "business = \"consultaton\"")),
            "consultaton",
            "ivr.nodes.consultation.business",
            "did you mean `consultation`?",
        ),
        (
            Box::new(|t| t.replace("\nwait = \"5s\"", "\nwait = \"five\"")),
            "wait = \"five\"",
            "ivr.nodes.silent.wait = \"five\"",
            "not a duration (durations: 500ms, 5s, 2m, 1h)",
        ),
        (
            Box::new(|t| t.replace("apology_wait = \"5s\"", "apology_wait = \"1.5s\"")),
            "apology_wait = \"1.5s\"",
            "ivr.nodes.silent.apology_wait = \"1.5s\"",
            "not a duration (durations: 500ms, 5s, 2m, 1h)",
        ),
        (
            Box::new(|t| t.replace("on_response = \"main\"", "on_responce = \"main\"")),
            "on_responce",
            "ivr.nodes.silent.on_responce",
            "unknown key; did you mean `on_response`?",
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
fn check_config_follows_every_cross_reference() {
    let cases: Vec<Case> = vec![
        (
            Box::new(|t| {
                t.replacen(
                    "queues = [\"consultation\", \"repair\", \"complaint\"]",
                    "queues = [\"consultation\", \"repair\", \"complains\"]",
                    1,
                )
            }),
            "\"complains\"",
            "agents[0].queues[2]",
            "agent \"1001\" serves \"complains\", but no [[queues]] table defines it (consultation, repair, complaint); did you mean `complaint`?",
        ),
        (
            Box::new(|t| t.replace("join_empty = false", "join_empty = false\noverflow = \"mesage\"")),
            "overflow = \"mesage\"",
            "queues[0].overflow",
            "no queue or IVR node has that name; did you mean `message`?",
        ),
        (
            Box::new(|t| t.replace("name = \"complaint\"", "name = \"repair\" # twice")),
            "name = \"repair\" # twice",
            "queues[2].name",
            "queue \"repair\" is already defined (queues[1], line",
        ),
    ];
    for (edit, needle, key, what) in cases {
        let (ok, err, text) = check(edit);
        assert!(!ok, "{key}: accepted");
        assert!(err.contains(key), "{key} not in: {err}");
        assert!(err.contains(what), "{what} not in: {err}");
        let line = line_of(&text, needle);
        assert!(
            err.contains(&format!("line {line}:")),
            "line {line} not in: {err}"
        );
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

/// The demo's public secrets are refused once hotline listens beyond
/// loopback, naming the key: the API token `demo-token` (with
/// `api.listen` public) and agents whose HA1 is that of the password
/// `secret` (with `sip.listen` public). On loopback the demo runs as is.
#[test]
fn demo_secrets_are_refused_beyond_loopback() {
    let (ok, err, _) =
        check(|t| t.replace("listen = \"127.0.0.1:8088\"", "listen = \"0.0.0.0:8088\""));
    assert!(!ok, "the demo token on a public API");
    assert!(err.contains("api.token"), "{err}");
    assert!(err.contains("demo-token"), "{err}");

    let (ok, err, text) = check(|t| {
        t.replace(
            "listen = [\"127.0.0.1:5060\"]",
            "listen = [\"192.0.2.7:5060\"]",
        )
    });
    assert!(!ok, "the demo agents on a public SIP address");
    assert!(err.contains("agents[0].ha1_md5"), "{err}");
    assert!(err.contains("\"secret\"") && err.contains("1001"), "{err}");
    assert!(
        err.contains(&format!(
            "line {}",
            line_of(&text, "ha1_md5 = \"9825b4c9c75afc481a419b95f9c54647\"")
        )),
        "{err}"
    );

    // Agents with passwords of their own may listen anywhere.
    let (ok, err, _) = check(|t| {
        t.replace(
            "listen = [\"127.0.0.1:5060\"]",
            "listen = [\"192.0.2.7:5060\"]",
        )
        .replace("9825b4c9c75afc481a419b95f9c54647", &"a".repeat(32))
        .replace("2fc269d4f146ef4418f8f20afe3d8a87", &"b".repeat(32))
        .replace(
            "ceaf51d05610e9e0762530bc66589f6a3265c1a4462084a8e2a914ec293b35c6",
            &"c".repeat(64),
        )
        .replace(
            "7d993e4122ced63500d2a46544627be99bfc8ac871579c1701b347e2ff0a4395",
            &"d".repeat(64),
        )
    });
    assert!(ok, "{err}");
    // The demo itself, on loopback, is accepted.
    let (ok, err, _) = check(|t| t);
    assert!(ok, "{err}");
}

/// An agent on a PBX extension: `trunk` must name a `[[trunks]]` entry
/// and come with `extension`; it needs no HA1.
#[test]
fn a_pbx_agent_names_a_trunk_and_an_extension() {
    let trunk =
        "\n[[trunks]]\nname = \"pbx\"\naddress = \"127.0.0.1:5090\"\ncaller_id = \"4008001234\"\n";
    let agent = |extra: &str| {
        format!(
            "{trunk}\n[[agents]]\nid = \"2001\"\nnumber = \"021\"\nqueues = [\"repair\"]\n{extra}"
        )
    };
    let (ok, err, _) = check(|t| t + &agent("trunk = \"pbx\"\nextension = \"8001\"\n"));
    assert!(ok, "{err}");
    let (ok, err, _) = check(|t| t + &agent("trunk = \"pabx\"\nextension = \"8001\"\n"));
    assert!(
        !ok && err.contains("agents[2].trunk") && err.contains("\"pabx\""),
        "{err}"
    );
    let (ok, err, _) = check(|t| t + &agent("extension = \"8001\"\n"));
    assert!(!ok && err.contains("agents[2].extension"), "{err}");
    let (ok, err, _) = check(|t| t + &agent("trunk = \"pbx\"\n"));
    assert!(!ok && err.contains("agents[2].trunk"), "{err}");
    let (ok, err, _) = check(|t| t + &agent(""));
    assert!(!ok && err.contains("ha1_md5 or ha1_sha256"), "{err}");
}

/// `[recordings] business_types` names business types of the IVR; a near
/// miss is refused with a suggestion.
#[test]
fn a_recorded_business_type_must_be_one_of_the_ivr() {
    let text = hotline::config::DEFAULT_TOML.replace(
        "retention_days = 90",
        "retention_days = 90\nbusiness_types = [\"repairs\"]",
    );
    let c = hotline::config::Config::parse(&text, "test", Path::new(".")).expect("parses");
    let msg = match hotline::shell::load::setup(c, "test") {
        Ok(_) => panic!("a business type the IVR does not have was accepted"),
        Err(e) => format!("{e:#}"),
    };
    assert!(msg.contains("recordings.business_types[0]"), "{msg}");
    assert!(msg.contains("did you mean `repair`"), "{msg}");
}

/// A queue's hold or survey prompt that does not exist is refused, with
/// the key, not heard as silence at run time.
#[test]
fn a_queue_prompt_that_does_not_exist_is_refused() {
    let text = hotline::config::DEFAULT_TOML.replace(
        "hold_prompt = \"hold_start\"",
        "hold_prompt = \"hold_strat\"",
    );
    let c = hotline::config::Config::parse(&text, "test", Path::new(".")).expect("parses");
    let msg = match hotline::shell::load::setup(c, "test") {
        Ok(_) => panic!("a missing prompt was accepted"),
        Err(e) => format!("{e:#}"),
    };
    assert!(msg.contains("queues[0].hold_prompt"), "{msg}");
    assert!(msg.contains("did you mean `hold_start`"), "{msg}");
}

#[test]
fn a_store_url_whose_tls_root_file_is_missing_is_named_with_its_line() {
    let url = "postgres://hotline:s3cret@db.example/hotline?sslmode=verify-full&sslrootcert=/nowhere/db-ca.pem";
    let (ok, err, text) = check(|t| format!("{t}\n[store]\nurl = {url:?}\n"));
    assert!(!ok, "{err}");
    assert!(err.contains("store.url"), "{err}");
    assert!(err.contains("/nowhere/db-ca.pem"), "{err}");
    assert!(
        err.contains(&format!("line {}", line_of(&text, "sslrootcert"))),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "the password is not shown: {err}");
    // The same URL with a root that is there passes.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("ca.pem");
    let made = rcgen::generate_simple_self_signed(vec!["db.example".to_string()]).expect("rcgen");
    std::fs::write(&root, made.cert.pem()).expect("write");
    let good = url.replace("/nowhere/db-ca.pem", &root.display().to_string());
    let (ok, err, _) = check(|t| format!("{t}\n[store]\nurl = {good:?}\n"));
    assert!(ok, "{err}");
}
