//! The live figures in the Prometheus text format (0.0.4), encoded with
//! the `prometheus-client` crate from a [`LiveSnapshot`] taken for each
//! scrape. Names follow Prometheus conventions: a `hotline_` prefix,
//! `_total` on counters, base units (`_seconds`, `_ratio`). Every metric
//! is listed, with its meaning, in docs/live-view.md.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

use super::{outcome_label, LiveSnapshot, QueueResult, OUTCOMES, STATES, STATUSES};

/// The `Content-Type` of the encoding.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// RTP counters from the media tasks (the runtime keeps them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RtpTotals {
    pub packets_sent: u64,
    pub packets_received: u64,
    /// Datagrams received on an RTP port that are not valid RTP.
    pub packets_invalid: u64,
    /// Packets that could not be sent (socket buffer full, no route).
    pub send_errors: u64,
}

type Labels = Vec<(&'static str, String)>;
type F64Gauge = Gauge<f64, AtomicU64>;
type F64Counter = Counter<f64, AtomicU64>;

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Encodes `snapshot` and the RTP counters as Prometheus text.
/// Writes the shell retried: an operator must hear of them even when the
/// retry worked (a disk filling up, a folder gone).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageAlarms {
    pub record_write_failures: u64,
    pub records_not_written: u64,
    pub message_write_failures: u64,
    pub messages_kept_elsewhere: u64,
    pub call_recordings_stopped: u64,
}

pub fn encode(snapshot: &LiveSnapshot, rtp: RtpTotals) -> String {
    encode_with(snapshot, rtp, StorageAlarms::default())
}

/// [`encode`], with the shell's storage alarms.
pub fn encode_with(snapshot: &LiveSnapshot, rtp: RtpTotals, alarms: StorageAlarms) -> String {
    let mut registry = Registry::with_prefix("hotline");

    // ---- calls ----
    let in_progress = Gauge::<i64>::default();
    in_progress.set(snapshot.calls.in_progress as i64);
    registry.register(
        "calls_in_progress",
        "Calls the engine holds now (ringing, in the IVR, queued or with an agent)",
        in_progress,
    );
    let calls = &snapshot.calls.total;
    for (name, help, value) in [
        (
            "calls_offered",
            "Calls offered: answered by the engine, or ended unanswered for a reason other than a bad request or an unknown number",
            calls.offered,
        ),
        (
            "calls_answered",
            "Calls the engine answered (200 OK sent)",
            calls.answered,
        ),
        (
            "calls_invalid",
            "INVITEs that were not calls to the hotline: bad requests and unknown numbers",
            calls.invalid,
        ),
    ] {
        let counter = Counter::<u64>::default();
        counter.inc_by(value);
        registry.register(name, help, counter);
    }
    let ended = Family::<Labels, Counter>::default();
    for outcome in OUTCOMES {
        let label = outcome_label(outcome);
        let n = calls.ended.get(label).copied().unwrap_or(0);
        ended
            .get_or_create(&labels(&[("outcome", label)]))
            .inc_by(n);
    }
    registry.register(
        "calls_ended",
        "Calls ended, by outcome (as in the call records)",
        ended,
    );

    // ---- queues ----
    let waiting = Family::<Labels, Gauge>::default();
    let longest = Family::<Labels, F64Gauge>::default();
    let offered = Family::<Labels, Counter>::default();
    let results = Family::<Labels, Counter>::default();
    let within = Family::<Labels, Counter>::default();
    let short = Family::<Labels, Counter>::default();
    let wait_sum = Family::<Labels, F64Counter>::default();
    let sl_today = Family::<Labels, F64Gauge>::default();
    let queue_agents = Family::<Labels, Gauge>::default();
    for q in &snapshot.queues {
        let name = q.name.as_str();
        let f = &q.total.figures;
        waiting
            .get_or_create(&labels(&[("queue", name)]))
            .set(q.waiting as i64);
        longest
            .get_or_create(&labels(&[("queue", name)]))
            .set(secs(q.longest_wait_ms));
        offered
            .get_or_create(&labels(&[("queue", name)]))
            .inc_by(f.offered);
        for r in QueueResult::ALL {
            results
                .get_or_create(&labels(&[("queue", name), ("result", r.as_str())]))
                .inc_by(f.result(r));
        }
        for (from, n, sl) in [
            (
                "arrival",
                f.answered_within_from_arrival,
                q.today.service_level_from_arrival,
            ),
            (
                "queue_entry",
                f.answered_within_from_queue_entry,
                q.today.service_level_from_queue_entry,
            ),
        ] {
            let l = labels(&[("queue", name), ("measured_from", from)]);
            within.get_or_create(&l).inc_by(n);
            // No call with a result yet today: not a number, not 0 or 1.
            sl_today.get_or_create(&l).set(sl.unwrap_or(f64::NAN));
        }
        short
            .get_or_create(&labels(&[("queue", name)]))
            .inc_by(f.short_abandons);
        wait_sum
            .get_or_create(&labels(&[("queue", name)]))
            .inc_by(secs(f.answered_wait_ms));
    }
    registry.register(
        "queue_waiting_calls",
        "Callers waiting in the queue now (not yet connected to an agent)",
        waiting,
    );
    registry.register_with_unit(
        "queue_longest_wait",
        "Wait so far of the caller who has waited longest in the queue now, from queue entry",
        Unit::Seconds,
        longest,
    );
    registry.register(
        "queue_offered",
        "Callers put in the queue (each visit; refused ones included)",
        offered,
    );
    registry.register(
        "queue_calls",
        "Queue visits by result, counted when the result is known",
        results,
    );
    registry.register(
        "queue_answered_within_threshold",
        "Visits answered by an agent within the service-level threshold, measured from the call's arrival or from queue entry",
        within,
    );
    registry.register(
        "queue_short_abandons",
        "Abandons shorter than the short-abandon threshold (also counted as abandoned)",
        short,
    );
    registry.register_with_unit(
        "queue_answered_wait",
        "Sum of the waits (queue entry to bridge) of answered visits",
        Unit::Seconds,
        wait_sum,
    );
    // `_ratio` is the Prometheus convention; the crate's Unit::Ratios
    // would make it `_ratios`.
    registry.register(
        "queue_service_level_today_ratio",
        "Service level since local midnight: answered within the threshold / visits with a result less short abandons (NaN before the first result)",
        sl_today,
    );
    let threshold = F64Gauge::default();
    threshold.set(secs(snapshot.service_level_threshold_ms));
    registry.register_with_unit(
        "service_level_threshold",
        "The service-level threshold T",
        Unit::Seconds,
        threshold,
    );
    let target = F64Gauge::default();
    target.set(snapshot.service_level_target);
    registry.register(
        "service_level_target_ratio",
        "The service level the hotline aims at",
        target,
    );

    // ---- agents ----
    let agents = Family::<Labels, Gauge>::default();
    for status in STATUSES {
        for state in STATES {
            let n = snapshot
                .agents
                .iter()
                .filter(|a| a.status == status && a.state == state)
                .count();
            agents
                .get_or_create(&labels(&[("status", status), ("state", state)]))
                .set(n as i64);
            for q in &snapshot.queues {
                let n = snapshot
                    .agents
                    .iter()
                    .filter(|a| a.status == status && a.state == state)
                    .filter(|a| a.queues.contains(&q.name))
                    .count();
                queue_agents
                    .get_or_create(&labels(&[
                        ("queue", q.name.as_str()),
                        ("status", status),
                        ("state", state),
                    ]))
                    .set(n as i64);
            }
        }
    }
    registry.register(
        "agents",
        "Agents by status (what the agent chose) and state (what the system is doing with them)",
        agents,
    );
    registry.register(
        "queue_agents",
        "Agents serving the queue, by status and state (an agent in several queues counts in each)",
        queue_agents,
    );
    let registered = Gauge::<i64>::default();
    registered.set(snapshot.agents.iter().filter(|a| a.registered).count() as i64);
    registry.register(
        "agents_registered",
        "Agents whose phone is registered",
        registered,
    );

    // ---- SIP and RTP ----
    let responses = Family::<Labels, Counter>::default();
    for (code, n) in &snapshot.sip_responses {
        responses
            .get_or_create(&vec![("code", code.to_string())])
            .inc_by(*n);
    }
    registry.register(
        "sip_responses",
        "SIP responses sent, by status code (retransmissions included)",
        responses,
    );
    let packets = Family::<Labels, Counter>::default();
    packets
        .get_or_create(&labels(&[("direction", "sent")]))
        .inc_by(rtp.packets_sent);
    packets
        .get_or_create(&labels(&[("direction", "received")]))
        .inc_by(rtp.packets_received);
    registry.register(
        "rtp_packets",
        "RTP packets sent and received, callers' and agents' legs",
        packets,
    );
    let errors = Family::<Labels, Counter>::default();
    errors
        .get_or_create(&labels(&[("kind", "invalid_received")]))
        .inc_by(rtp.packets_invalid);
    errors
        .get_or_create(&labels(&[("kind", "send_failed")]))
        .inc_by(rtp.send_errors);
    registry.register(
        "rtp_errors",
        "RTP errors: datagrams received that are not valid RTP, and packets that could not be sent",
        errors,
    );
    let trunk_channels = Family::<Labels, Gauge>::default();
    let trunk_max = Family::<Labels, Gauge>::default();
    for t in &snapshot.outbound.trunks {
        let l = labels(&[("trunk", &t.name)]);
        trunk_channels.get_or_create(&l).set(i64::from(t.channels));
        trunk_max.get_or_create(&l).set(i64::from(t.max_channels));
    }
    registry.register(
        "trunk_channels",
        "Calls hotline is placing through each trunk now",
        trunk_channels,
    );
    registry.register(
        "trunk_channels_max",
        "The most calls each trunk may carry at once (max_channels)",
        trunk_max,
    );
    let campaign_numbers = Family::<Labels, Gauge>::default();
    for c in &snapshot.outbound.campaigns {
        for state in crate::campaign::NUMBER_STATES {
            let id = c.id.to_string();
            let l = labels(&[("campaign", &id), ("state", state.as_str())]);
            let n = c.counts.get(state.as_str()).copied().unwrap_or(0);
            campaign_numbers.get_or_create(&l).set(n as i64);
        }
    }
    registry.register(
        "campaign_numbers",
        "Each campaign's numbers by state (pending, dialing, waiting_retry, confirmed, failed, invalid, opted_out, cancelled)",
        campaign_numbers,
    );
    let tasks_open = Family::<Labels, Gauge>::default();
    let tasks_at_risk = Family::<Labels, Gauge>::default();
    let tasks_overdue = Family::<Labels, Gauge>::default();
    for k in &snapshot.tasks.kinds {
        let l = labels(&[("kind", k.kind)]);
        tasks_open.get_or_create(&l).set(k.open as i64);
        tasks_at_risk.get_or_create(&l).set(k.at_risk as i64);
        tasks_overdue.get_or_create(&l).set(k.overdue as i64);
    }
    registry.register(
        "tasks_open",
        "Tasks not yet done, by kind (callback, message, follow_up, complaint)",
        tasks_open,
    );
    registry.register(
        "tasks_at_risk",
        "Open tasks within tasks.at_risk_margin of their deadline, by kind",
        tasks_at_risk,
    );
    registry.register(
        "tasks_overdue",
        "Open tasks past their deadline, by kind",
        tasks_overdue,
    );
    let callbacks_waiting = Gauge::<i64>::default();
    callbacks_waiting.set(snapshot.tasks.callbacks.waiting as i64);
    registry.register(
        "callbacks_waiting",
        "Callbacks booked and not yet done, keeping their callers' places",
        callbacks_waiting,
    );
    let repeat = Counter::<u64>::default();
    repeat.inc_by(calls.repeat_contacts);
    registry.register(
        "repeat_contacts",
        "Offered calls from a number that called within tasks.repeat_window (or has an open task)",
        repeat,
    );
    let storage = Family::<Labels, Counter>::default();
    for (kind, value) in [
        ("record_write_retried", alarms.record_write_failures),
        ("record_not_written", alarms.records_not_written),
        ("message_write_retried", alarms.message_write_failures),
        ("message_kept_elsewhere", alarms.messages_kept_elsewhere),
        ("call_recording_stopped", alarms.call_recordings_stopped),
    ] {
        storage
            .get_or_create(&labels(&[("kind", kind)]))
            .inc_by(value);
    }
    registry.register(
        "storage_failures",
        "Record, voice-message and call-recording writes that failed: retried, printed to stderr instead (record), kept in the fallback folder (message), or the recording stopped with the call going on (call_recording)",
        storage,
    );

    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_text::encode(&mut text, &registry);
    text
}
