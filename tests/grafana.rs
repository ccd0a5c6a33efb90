//! grafana/hotline-dashboard.json is an importable Grafana dashboard: it
//! parses, takes its Prometheus data source from a variable, and every
//! metric and label its queries use is one that /metrics exposes. The
//! exposed names are taken from the encoder itself (the same code that
//! answers /metrics), fed a snapshot with every family populated.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use hotline::acd::{AgentState, AgentStatus};
use hotline::ids::CallKey;
use hotline::live::prometheus::{encode, RtpTotals};
use hotline::live::{LiveAgent, LiveEvent, LiveSettings, LiveStats, QueueResult};
use serde_json::Value;

/// Metric name -> label names, from the encoder's output.
fn exposed() -> BTreeMap<String, BTreeSet<String>> {
    let t0 = Instant::now();
    let mut stats = LiveStats::new(
        LiveSettings::default(),
        &["repair".to_string()],
        vec![LiveAgent {
            id: "1001".into(),
            name: "A".into(),
            number: "007".into(),
            queues: vec!["repair".into()],
        }],
        t0,
        (t0, 1_795_600_800_000),
    );
    stats.handle(
        t0,
        LiveEvent::QueueJoined {
            call: CallKey(1),
            queue: "repair",
            arrival: t0,
        },
    );
    stats.handle(
        t0,
        LiveEvent::QueueLeft {
            call: CallKey(1),
            result: QueueResult::Answered,
        },
    );
    stats.handle(
        t0,
        LiveEvent::Agent {
            id: "1001",
            status: &AgentStatus::Available,
            state: AgentState::Idle,
            registered: true,
        },
    );
    stats.sip_response_sent(200);
    let snapshot = stats.snapshot(t0, false, |c| c.0.to_string());
    let text = encode(&snapshot, RtpTotals::default());
    let mut metrics: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().expect("name");
            metrics.entry(name.to_string()).or_default();
        } else if !line.starts_with('#') {
            let (name, rest) = line.split_once(['{', ' ']).expect("sample");
            let labels = metrics.entry(name.to_string()).or_default();
            if line.as_bytes()[name.len()] == b'{' {
                let set = rest.split('}').next().unwrap_or_default();
                for pair in set.split("\",") {
                    if let Some((label, _)) = pair.split_once('=') {
                        labels.insert(label.to_string());
                    }
                }
            }
        }
    }
    metrics
}

/// `hotline_*` names in a PromQL expression, each with the label names of
/// its selector (`name{a="x",b=~"y"}`).
fn selectors(expr: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("hotline_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let mut labels = Vec::new();
        if let Some(set) = tail[end..].strip_prefix('{') {
            let set = set.split('}').next().expect("closed selector");
            for matcher in set.split(',') {
                let label = matcher.split(['=', '!', '~']).next().expect("label").trim();
                labels.push(label.to_string());
            }
        }
        found.push((name.to_string(), labels));
        rest = &tail[end..];
    }
    found
}

/// Label names in `by (...)` clauses.
fn grouping(expr: &str) -> Vec<String> {
    expr.split("by (")
        .skip(1)
        .flat_map(|rest| {
            rest.split(')')
                .next()
                .unwrap_or_default()
                .split(',')
                .map(|l| l.trim().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn dashboard() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/hotline-dashboard.json");
    let text = std::fs::read_to_string(&path).expect("read the dashboard");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

#[test]
fn the_dashboard_uses_only_exposed_metrics_and_labels() {
    let exposed = exposed();
    let dashboard = dashboard();
    let mut used = BTreeSet::new();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("every target has an expr");
            queries += 1;
            let mut labels_here = BTreeSet::new();
            for (name, labels) in selectors(expr) {
                let known = exposed
                    .get(&name)
                    .unwrap_or_else(|| panic!("{name} (in {expr:?}) is not exposed"));
                for label in labels {
                    assert!(
                        known.contains(&label),
                        "{name} has no label {label:?} (in {expr:?}); it has {known:?}"
                    );
                }
                labels_here.extend(known.iter().cloned());
                used.insert(name);
            }
            for label in grouping(expr) {
                assert!(
                    labels_here.contains(&label),
                    "by ({label}) in {expr:?}: no metric there has it"
                );
            }
        }
    }
    assert!(queries >= 20, "{queries} queries");
    // What the dashboard must show: calls in progress, waiting, longest
    // wait, SL from the within-threshold counters, offered / answered /
    // abandoned, agents, SIP responses by code, RTP errors.
    for name in [
        "hotline_calls_in_progress",
        "hotline_queue_waiting_calls",
        "hotline_queue_longest_wait_seconds",
        "hotline_queue_answered_within_threshold_total",
        "hotline_queue_calls_total",
        "hotline_queue_short_abandons_total",
        "hotline_queue_offered_total",
        "hotline_queue_service_level_today_ratio",
        "hotline_agents",
        "hotline_sip_responses_total",
        "hotline_rtp_errors_total",
    ] {
        assert!(used.contains(name), "the dashboard does not show {name}");
    }
    let sl_from_counters = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .any(|e| e.contains("increase(hotline_queue_answered_within_threshold_total"));
    assert!(sl_from_counters, "no service level from increase()");
}

#[test]
fn the_dashboard_is_importable_with_a_datasource_variable() {
    let dashboard = dashboard();
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(dashboard["schemaVersion"].as_u64().is_some());
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    let datasource = variables
        .iter()
        .find(|v| v["type"] == "datasource")
        .expect("a data source variable");
    assert_eq!(datasource["query"], "prometheus");
    let name = datasource["name"].as_str().expect("name");
    let reference = format!("${{{name}}}");
    let mut ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let id = panel["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "panel id {id} twice");
        for key in ["x", "y", "w", "h"] {
            assert!(
                panel["gridPos"][key].as_u64().is_some(),
                "gridPos.{key} of {panel}"
            );
        }
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"],
            reference.as_str(),
            "{}",
            panel["title"]
        );
        for target in panel["targets"].as_array().expect("targets") {
            assert_eq!(target["datasource"]["uid"], reference.as_str());
            assert!(target["refId"].as_str().is_some());
        }
    }
    // Every variable a query uses is defined (or one of Grafana's own).
    let defined: BTreeSet<String> = variables
        .iter()
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect();
    let text = dashboard["panels"].to_string();
    for piece in text.split('$').skip(1) {
        let var: String = piece
            .trim_start_matches('{')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            var.starts_with("__") || defined.contains(&var),
            "${var} is not a variable of the dashboard"
        );
    }
}
