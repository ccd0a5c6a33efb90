//! The demo IVR program under simulated time: the menu, its retries and
//! timeouts, the silent-caller routine to the millisecond, keys from every
//! source, queues with no agent, messages, customer classes, hours and
//! languages, and what the record says about each.

mod common;

use std::time::Duration;

use common::*;
use hotline::cdr::{HangupSide, Outcome};
use hotline::config::ivr::NodeConfig;
use hotline::media::dtmf::DigitSource;
use hotline::media::session::{MediaEvent, RecordingEnd};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Places a call and acknowledges the answer; returns the To tag.
fn answered_call(sim: &mut Sim, call_id: &str, sdp: &str) -> String {
    sim.send(&invite(call_id, "z9hG4bK-inv", Some(sdp)));
    sim.run_for(ms(2000));
    let tag = sim.to_tag();
    sim.send(&in_dialog("ACK", call_id, "z9hG4bK-ack", 1, &tag, None));
    tag
}

fn key(sim: &mut Sim, digit: char) {
    let call = sim.media_started[0];
    sim.media_event(
        call,
        MediaEvent::Digit {
            digit,
            source: DigitSource::Rfc4733,
        },
    );
}

/// 8 kHz samples of a DTMF key: `on` of tone, then `off` of silence.
fn dtmf_tone(digit: char, on: Duration, off: Duration) -> Vec<i16> {
    let rows = [697.0, 770.0, 852.0, 941.0];
    let cols = [1209.0, 1336.0, 1477.0, 1633.0];
    let keys = ["123A", "456B", "789C", "*0#D"];
    let (r, c) = keys
        .iter()
        .enumerate()
        .find_map(|(r, row)| row.find(digit).map(|c| (r, c)))
        .expect("a DTMF key");
    let n_on = (on.as_millis() * 8) as usize;
    let n_off = (off.as_millis() * 8) as usize;
    (0..n_on)
        .map(|i| {
            let t = i as f64 / 8000.0;
            (6000.0 * (2.0 * std::f64::consts::PI * rows[r] * t).sin()
                + 6000.0 * (2.0 * std::f64::consts::PI * cols[c] * t).sin()) as i16
        })
        .chain(std::iter::repeat_n(0, n_off))
        .collect()
}

fn speech_like(duration: Duration) -> Vec<i16> {
    (0..(duration.as_millis() * 8) as usize)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let envelope = 0.6 + 0.4 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
            (envelope * 7000.0 * (2.0 * std::f64::consts::PI * 220.0 * t).sin()) as i16
        })
        .collect()
}

#[test]
fn silent_caller_routine_to_the_millisecond() {
    let mut sim = Sim::new(config(|_| {}));
    answered_call(&mut sim, "silent", SDP_OFFER);
    let acked = sim.now;
    sim.run_for(secs(90));
    let menu_at = sim.duration_of("greeting");
    let question_at = menu_at + sim.duration_of("main_menu") + secs(5);
    let apology_at = question_at + sim.duration_of("silent_question") + secs(5);
    let bye_at = apology_at + sim.duration_of("silent_apology") + secs(5);
    let plays: Vec<(Duration, String)> = sim
        .played
        .iter()
        .map(|(at, _, _)| *at - acked)
        .zip(sim.played_names())
        .collect();
    assert_eq!(
        plays,
        vec![
            (Duration::ZERO, "greeting".to_string()),
            (menu_at, "main_menu".to_string()),
            (question_at, "silent_question".to_string()),
            (apology_at, "silent_apology".to_string()),
        ]
    );
    assert_eq!(sim.sent_starting("BYE ")[0].at - acked, bye_at);
    let rec = &sim.records[0];
    assert_eq!(rec.outcome, Outcome::SilentHangup);
    assert_eq!(rec.hangup_side, Some(HangupSide::Engine));
    assert_eq!(rec.ivr_path, ["welcome", "main", "silent"]);
    assert_eq!(rec.time_in_ivr_ms, Some(bye_at.as_millis() as u64));
    assert_eq!(rec.language.as_deref(), Some("zh"));
}

#[test]
fn silent_timings_follow_the_config() {
    let mut sim = Sim::new(config(|c| {
        if let Some(NodeConfig::SilentCaller {
            wait, apology_wait, ..
        }) = c.ivr.nodes.get_mut("silent")
        {
            *wait = ms(2000);
            *apology_wait = ms(1500);
        }
        if let Some(NodeConfig::Menu { timeout, .. }) = c.ivr.nodes.get_mut("main") {
            *timeout = ms(3000);
        }
    }));
    answered_call(&mut sim, "silent2", SDP_OFFER);
    let acked = sim.now;
    sim.run_for(secs(90));
    let expected = sim.duration_of("greeting")
        + sim.duration_of("main_menu")
        + ms(3000)
        + sim.duration_of("silent_question")
        + ms(2000)
        + sim.duration_of("silent_apology")
        + ms(1500);
    assert_eq!(sim.sent_starting("BYE ")[0].at - acked, expected);
}

#[test]
fn a_silent_caller_who_speaks_goes_back_to_the_menu() {
    let mut sim = Sim::new(config(|_| {}));
    answered_call(&mut sim, "talker", SDP_OFFER);
    let question_end = sim.duration_of("greeting")
        + sim.duration_of("main_menu")
        + secs(5)
        + sim.duration_of("silent_question");
    sim.run_for(question_end + secs(2));
    let call = sim.media_started[0];
    sim.caller_audio(call, &speech_like(ms(400)), 0);
    assert_eq!(
        sim.played_names(),
        ["greeting", "main_menu", "silent_question", "main_menu"]
    );
    assert!(sim.records.is_empty());
    key(&mut sim, '3');
    sim.run_for(secs(1));
    let tag = sim.to_tag();
    sim.send(&in_dialog("BYE", "talker", "z9hG4bK-b", 2, &tag, None));
    let rec = &sim.records[0];
    assert!(rec.caller_spoke);
    assert_eq!(rec.business_type.as_deref(), Some("complaint"));
    assert_eq!(
        rec.ivr_path,
        [
            "welcome",
            "main",
            "silent",
            "main",
            "complaint",
            "complaint_queue",
            "no_agents"
        ]
    );
}

#[test]
fn invalid_keys_retry_then_the_default() {
    let mut sim = Sim::new(config(|_| {}));
    answered_call(&mut sim, "invalid", SDP_OFFER);
    sim.run_for(sim.duration_of("greeting") + sim.duration_of("main_menu"));
    for _ in 0..3 {
        key(&mut sim, '7');
        sim.run_for(sim.duration_of("invalid_choice") + sim.duration_of("main_menu"));
    }
    sim.run_for(secs(20));
    assert_eq!(
        sim.played_names(),
        [
            "greeting",
            "main_menu",
            "invalid_choice",
            "main_menu",
            "invalid_choice",
            "main_menu",
            "goodbye"
        ]
    );
    let rec = &sim.records[0];
    assert_eq!(rec.outcome, Outcome::Completed);
    assert_eq!(rec.digits, "777");
    assert_eq!(rec.ivr_path, ["welcome", "main", "goodbye"]);
}

#[test]
fn a_key_during_the_greeting_interrupts_it() {
    let mut sim = Sim::new(config(|_| {}));
    answered_call(&mut sim, "typeahead", SDP_OFFER);
    sim.run_for(ms(800));
    let pressed = sim.now;
    key(&mut sim, '9');
    assert_eq!(sim.stops, vec![(pressed, sim.media_started[0])]);
    assert_eq!(sim.played_names(), ["greeting", "leave_message"]);
    assert_eq!(sim.played[1].0, pressed, "no wait");
}

#[test]
fn a_key_sent_two_ways_counts_once() {
    let mut sim = Sim::new(config(|_| {}));
    let tag = answered_call(&mut sim, "twice", SDP_OFFER);
    sim.run_for(sim.duration_of("greeting") + sim.duration_of("main_menu"));
    let call = sim.media_started[0];
    // The trunk sends '7' as RFC 4733 and as SIP INFO: one invalid key.
    sim.media_event(
        call,
        MediaEvent::Digit {
            digit: '7',
            source: DigitSource::Rfc4733,
        },
    );
    sim.run_for(ms(40));
    let info = in_dialog(
        "INFO",
        "twice",
        "z9hG4bK-i1",
        2,
        &tag,
        Some("Signal=7\r\nDuration=160\r\n"),
    )
    .replace("application/sdp", "application/dtmf-relay");
    sim.send(&info);
    assert!(sim
        .sent_starting("SIP/2.0 200")
        .iter()
        .any(|s| s.text.contains("CSeq: 2 INFO")));
    assert_eq!(sim.records.len(), 0);
    sim.run_for(secs(10));
    // Then a real second press, by INFO only: '2' is repair.
    let info = in_dialog("INFO", "twice", "z9hG4bK-i2", 3, &tag, Some("2"))
        .replace("application/sdp", "application/dtmf");
    sim.send(&info);
    sim.send(&in_dialog("BYE", "twice", "z9hG4bK-b", 4, &tag, None));
    let rec = &sim.records[0];
    assert_eq!(rec.digits, "72");
    assert_eq!(rec.business_type.as_deref(), Some("repair"));
    assert_eq!(
        sim.played_names()[..4],
        ["greeting", "main_menu", "invalid_choice", "main_menu"]
    );
}

#[test]
fn inband_tones_choose_a_branch_when_the_trunk_has_no_telephone_event() {
    let mut sim = Sim::new(config(|_| {}));
    let no_events = SDP_OFFER
        .replace("RTP/AVP 0 8 101", "RTP/AVP 0")
        .replace("a=rtpmap:101 telephone-event/8000\r\n", "");
    answered_call(&mut sim, "inband", &no_events);
    sim.run_for(sim.duration_of("greeting") + sim.duration_of("main_menu"));
    let call = sim.media_started[0];
    sim.caller_audio(call, &dtmf_tone('2', ms(60), ms(60)), 0);
    sim.run_for(secs(1));
    let tag = sim.to_tag();
    sim.send(&in_dialog("BYE", "inband", "z9hG4bK-b", 2, &tag, None));
    let rec = &sim.records[0];
    assert_eq!(rec.digits, "2");
    assert_eq!(rec.business_type.as_deref(), Some("repair"));
}

#[test]
fn no_agent_then_a_message_ended_by_pound() {
    let mut sim = Sim::new(config(|_| {}));
    let tag = answered_call(&mut sim, "msg", SDP_OFFER);
    sim.run_for(ms(500));
    key(&mut sim, '2'); // repair: no agent is logged in
                        // Prompts start on the 20 ms frame grid: allow one frame.
    sim.run_for(
        sim.duration_of("no_agents")
            + sim.duration_of("leave_message")
            + sim.duration_of("beep")
            + ms(20),
    );
    assert_eq!(
        sim.played_names(),
        ["greeting", "no_agents", "leave_message", "beep"]
    );
    let call = sim.media_started[0];
    sim.caller_audio(call, &speech_like(secs(3)), 0);
    key(&mut sim, '#');
    sim.run_for(sim.duration_of("message_saved") + secs(1));
    assert_eq!(
        sim.played_names().last().map(String::as_str),
        Some("message_saved")
    );
    let (_, samples, end) = &sim.recordings[0];
    assert_eq!(*end, RecordingEnd::Pound);
    assert_eq!(samples.len(), 3 * 8000, "3 s of the caller's audio");
    assert!(samples.iter().any(|s| s.abs() > 3000), "not silent");
    let message = &sim.messages[0];
    assert_eq!(message.ended_by, "pound");
    assert_eq!(message.duration_ms, 3000);
    assert_eq!(message.business_type.as_deref(), Some("repair"));
    assert_eq!(message.caller_number, "13800138000");
    let rec = &sim.records[0];
    assert_eq!(rec.outcome, Outcome::Completed);
    assert_eq!(rec.message_file.as_deref(), Some(message.file.as_str()));
    assert!(message.file.ends_with(".wav") && message.file.starts_with("2026-11-25/"));
    assert!(sim
        .sent_starting("BYE ")
        .iter()
        .any(|b| b.text.contains(&tag)));
}

#[test]
fn a_message_ends_on_silence_and_on_hangup() {
    let mut sim = Sim::new(config(|_| {}));
    answered_call(&mut sim, "quiet", SDP_OFFER);
    sim.run_for(ms(100));
    key(&mut sim, '9');
    sim.run_for(sim.duration_of("leave_message") + sim.duration_of("beep") + ms(20));
    let call = sim.media_started[0];
    sim.caller_audio(call, &speech_like(secs(1)), 0);
    let last_loud_frame = sim.now - ms(20);
    sim.run_for(secs(10));
    let (_, _, end) = &sim.recordings[0];
    assert_eq!(*end, RecordingEnd::Silence);
    assert_eq!(sim.messages[0].ended_by, "silence");
    // Ended 5 s (end_silence) after the last loud frame.
    let saved_at = sim.played.last().expect("message_saved").0;
    assert_eq!(saved_at - last_loud_frame, secs(5));

    let mut sim = Sim::new(config(|_| {}));
    let tag = answered_call(&mut sim, "hangup", SDP_OFFER);
    key(&mut sim, '9');
    sim.run_for(sim.duration_of("leave_message") + sim.duration_of("beep") + ms(20));
    let call = sim.media_started[0];
    sim.caller_audio(call, &speech_like(secs(2)), 0);
    sim.send(&in_dialog("BYE", "hangup", "z9hG4bK-b", 2, &tag, None));
    assert_eq!(sim.messages[0].ended_by, "hangup");
    assert_eq!(sim.messages[0].duration_ms, 2000);
    assert_eq!(sim.records[0].outcome, Outcome::CallerHangup);
    assert!(sim.records[0].message_file.is_some());
}

/// A caller who hangs up while "please leave a message" plays never
/// reached the beep: nothing was recorded, nothing is kept, and nothing
/// is left pending (the engine's drain can finish).
#[test]
fn a_hang_up_during_the_message_prompt_leaves_no_message() {
    let mut sim = Sim::new(config(|_| {}));
    let tag = answered_call(&mut sim, "prompt", SDP_OFFER);
    key(&mut sim, '9');
    sim.run_for(sim.duration_of("leave_message") / 2);
    assert_eq!(
        sim.played_names().last().map(String::as_str),
        Some("leave_message")
    );
    sim.send(&in_dialog("BYE", "prompt", "z9hG4bK-b", 2, &tag, None));
    sim.run_for(secs(1));
    assert!(sim.recordings.is_empty(), "no WAV");
    assert!(sim.messages.is_empty(), "no index line");
    assert_eq!(sim.engine.pending_messages(), 0);
    let rec = &sim.records[0];
    assert_eq!(rec.message_file, None);
    assert_eq!(rec.message_discarded_ms, None, "no message was begun");
}

/// `messages.min_length` (1 s by default): a message ended by `#` after
/// 0.5 s, or by a hang-up right after the beep, is discarded: no WAV, no
/// index line, nothing pending, and the record says how long it was.
#[test]
fn a_message_shorter_than_min_length_is_discarded() {
    for ending in ["pound", "hangup"] {
        let mut sim = Sim::new(config(|_| {}));
        let tag = answered_call(&mut sim, "short", SDP_OFFER);
        key(&mut sim, '9');
        sim.run_for(sim.duration_of("leave_message") + sim.duration_of("beep") + ms(20));
        assert_eq!(sim.played_names().last().map(String::as_str), Some("beep"));
        let call = sim.media_started[0];
        let said = if ending == "pound" { 500 } else { 0 };
        sim.caller_audio(call, &speech_like(ms(said)), 0);
        if ending == "pound" {
            key(&mut sim, '#');
            sim.run_for(sim.duration_of("message_saved") + secs(1));
        }
        sim.send(&in_dialog("BYE", "short", "z9hG4bK-b", 2, &tag, None));
        sim.run_for(secs(1));
        assert!(sim.recordings.is_empty(), "{ending}: no WAV");
        assert!(sim.messages.is_empty(), "{ending}: no index line");
        assert_eq!(sim.engine.pending_messages(), 0, "{ending}");
        let rec = &sim.records[0];
        assert_eq!(rec.message_file, None, "{ending}");
        // Recording starts on the 20 ms frame grid after the beep.
        let discarded = rec.message_discarded_ms.expect("the record says so");
        assert!(
            (said..=said + 20).contains(&discarded),
            "{ending}: {discarded} ms"
        );
    }

    // At exactly the minimum it is kept.
    let mut sim = Sim::new(config(|c| c.messages.min_length = ms(500)));
    answered_call(&mut sim, "kept", SDP_OFFER);
    key(&mut sim, '9');
    sim.run_for(sim.duration_of("leave_message") + sim.duration_of("beep") + ms(20));
    let call = sim.media_started[0];
    sim.caller_audio(call, &speech_like(ms(520)), 0);
    key(&mut sim, '#');
    sim.run_for(secs(1));
    assert_eq!(sim.messages.len(), 1);
    assert_eq!(sim.records.len(), 0, "the call goes on");
    assert_eq!(sim.engine.pending_messages(), 0);
}

#[test]
fn the_caller_directory_classes_the_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("callers.csv");
    std::fs::write(
        &file,
        "# number,class,vip,name\n138*,business,no,\n13800138000,group,yes,李雷\n",
    )
    .expect("write");
    let mut sim = Sim::new(config(|c| c.directory.file = Some(file.clone())));
    let tag = answered_call(&mut sim, "vip", SDP_OFFER);
    sim.send(&in_dialog("BYE", "vip", "z9hG4bK-b", 2, &tag, None));
    let rec = &sim.records[0];
    assert_eq!(rec.customer_class.as_deref(), Some("group"));
    assert!(rec.vip);
    assert_eq!(rec.customer_name.as_deref(), Some("李雷"));
}

#[test]
fn hours_choose_the_entry_node() {
    // The simulated clock reads 2026-11-25 10:00 UTC: 18:00 in +08:00.
    let at_hours = |close: &str| {
        let mut sim = Sim::new(config(|c| {
            let plan = &mut c.ivr.numbers[0];
            plan.schedule = Some("office".into());
            plan.night_entry = Some("message".into());
            if let Some(s) = c.ivr.schedules.get_mut("office") {
                s.close = close.into();
            }
        }));
        answered_call(&mut sim, "hours", SDP_OFFER);
        sim.played_names()
    };
    assert_eq!(at_hours("20:00"), ["greeting"]);
    assert_eq!(at_hours("17:00"), ["leave_message"]);
}

#[test]
fn the_dialled_number_picks_the_language() {
    let mut sim = Sim::new(config(|c| {
        let mut english = c.ivr.numbers[0].clone();
        english.number = "4008".into();
        english.language = Some(hotline::config::Language::En);
        c.ivr.numbers.insert(0, english);
    }));
    answered_call(&mut sim, "en", SDP_OFFER);
    let name = &sim.prompts.get(sim.played[0].2).name;
    assert_eq!(name, "en/greeting");
}

/// One rule (`hotline::number::number_key`) matches the dialled number to
/// `[[ivr.numbers]]`: with or without +86 or 0086, a trunk prefix 0,
/// separators, and as a `tel:` Request-URI (RFC 3966), which is answered
/// like a `sip:` one.
#[test]
fn dialled_numbers_match_in_national_form_and_tel_uris_are_answered() {
    let edit = |c: &mut hotline::config::Config| {
        let mut english = c.ivr.numbers[0].clone();
        english.number = "+86 400-800-1234".into();
        english.language = Some(hotline::config::Language::En);
        c.ivr.numbers.insert(0, english);
    };
    for (uri, language) in [
        ("sip:4008001234@127.0.0.1:5060", "en"),
        ("sip:04008001234@127.0.0.1:5060", "en"),
        ("sip:+864008001234@127.0.0.1:5060", "en"),
        ("sip:008640080012340@127.0.0.1:5060", "zh"),
        ("sip:4008001235@127.0.0.1:5060", "zh"),
        ("tel:+86-400-800-1234", "en"),
        ("tel:4008001234;phone-context=+86", "en"),
        ("TEL:+86.400.800.1234", "en"),
    ] {
        let mut sim = Sim::new(config(edit));
        let inv = invite("num", "z9hG4bK-inv", Some(SDP_OFFER)).replacen(
            "INVITE sip:4008@127.0.0.1:5060",
            &format!("INVITE {uri}"),
            1,
        );
        sim.send(&inv);
        sim.run_for(ms(2000));
        assert_eq!(sim.sent_starting("SIP/2.0 200").len(), 1, "{uri} answered");
        let tag = sim.to_tag();
        sim.send(&in_dialog("ACK", "num", "z9hG4bK-ack", 1, &tag, None));
        let name = &sim.prompts.get(sim.played[0].2).name;
        assert_eq!(name, &format!("{language}/greeting"), "{uri}");
        sim.send(&in_dialog("BYE", "num", "z9hG4bK-b", 2, &tag, None));
        let dialled = uri.split([':', '@', ';']).nth(1).expect("user");
        assert_eq!(sim.records[0].dialled_number, dialled, "kept as dialled");
    }
}

#[test]
fn an_unknown_number_without_a_catch_all_gets_404() {
    let mut sim = Sim::new(config(|c| c.ivr.numbers[0].number = "4000".into()));
    sim.send(&invite("nf", "z9hG4bK-nf", Some(SDP_OFFER)));
    assert_eq!(sim.sent_starting("SIP/2.0 404").len(), 1);
    assert_eq!(sim.records[0].outcome, Outcome::UnknownNumber);
}
