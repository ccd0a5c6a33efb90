//! Interop test of hotline behind Kamailio (RFC 3327 Path): the real
//! `hotline` binary behind the Kamailio front shipped in
//! `config/kamailio/hotline-edge.cfg` (run as is, its ports, the modules
//! folder and the dispatcher list given with `-A`), over loopback.
//!
//! The agent's phone (SIPp) registers THROUGH Kamailio, which adds a Path
//! naming itself and the phone's real address (`add_path_received`). The
//! phone's Contact names 127.0.0.2, where nothing listens: a phone behind
//! NAT, whose Contact is not where it can be reached. So the only way an
//! INVITE reaches it is the way RFC 3327 says: hotline sends to Kamailio
//! with the Path as its Route, and Kamailio relays to the `received`
//! address. A hotline that ignored the Path would send the INVITE to
//! Kamailio without a Route, and Kamailio refuses that (404).
//!
//! A caller (SIPp) calls through Kamailio (dispatched to the node,
//! record-routed), presses 1 (RFC 4733), is queued and the agent is rung
//! through Kamailio. The agent answers; audio flows both ways (a tone each
//! way, each side must hear the other's); the caller's BYE goes through
//! Kamailio to hotline, and hotline's BYE to the agent through Kamailio.
//!
//! Two runs: everything over UDP; and the caller over TCP to Kamailio,
//! Kamailio to hotline over TCP (the REGISTER too, so hotline rings the
//! agent on the proxy's TCP connection), the phone over UDP.
//!
//! Needs `kamailio` (package kamailio; its modules folder), `sipp`
//! (package sip-tester) with its sample captures, and root (SIPp replays
//! the audio and the key through raw sockets). Without them the tests are
//! skipped, or fail under `CI=true`. With `INTEROP_KEEP=1` each test's
//! folder (engine log, kamailio.log, SIPp traces) is kept.
//!
//! Ports (their own block, see tests/README.md), k = 0 (UDP), 1 (TCP):
//! engine SIP 15900 + k, Kamailio 15910 + k, SIPp agent 15920 + k and
//! caller 15930 + k (control 15940 + k, 15950 + k), API 18600 + k,
//! engine RTP 29500 + 100k .. + 99, media 29800 + 50k .. + 19.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, SystemTime};

use hotline::media::g711::Codec;
use support::kamailio::{kamailio_and_sipp, Kamailio};
use support::*;

/// SIPp instances: the agent's phone, the caller.
const AGENT: u16 = 0;
const CALLER: u16 = 1;
/// What each says: tones told apart by frequency, each in its own codec.
const CALLER_HZ: f64 = 1000.0;
const AGENT_HZ: f64 = 400.0;
/// The address the phone's Contact names: loopback, but nothing listens
/// there (the phone "behind NAT").
const UNREACHABLE_CONTACT_IP: &str = "127.0.0.2";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Transport {
    Udp,
    Tcp,
}

fn ports(k: u16) -> Ports {
    Ports::block(
        40 + k,
        15900 + k,
        (29500 + 100 * k, 29500 + 100 * k + 99),
        PortBlock {
            sipp_sip: [15920 + k, 15930 + k],
            sipp_control: [15940 + k, 15950 + k],
            media: 29800 + 50 * k,
            api: 18600 + k,
        },
    )
}

fn kamailio_port(k: u16) -> u16 {
    15910 + k
}

// ---- SIPp scenarios --------------------------------------------------------------

/// The agent's phone (server mode, on the port it registered from) takes
/// hotline's INVITE as relayed by Kamailio, logs where it came from, rings
/// 500 ms, answers with PCMA (echoing the Record-Route), talks (a capture)
/// and takes the BYE. Keys: agent, pcap.
const AGENT_ANSWER: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="agent answers through kamailio">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="sip:[^ ]+" search_in="msg" check_it="true"
            assign_to="ruri"/>
      <ereg regexp="consultation|repair|complaint" search_in="hdr"
            header="X-Hotline-Queue:" check_it="true" assign_to="queue"/>
      <ereg regexp=".+" search_in="hdr" header="Via:" check_it="true"
            assign_to="via"/>
      <ereg regexp=".+" search_in="hdr" header="Via:" occurrence="2"
            check_it="true" assign_to="via2"/>
      <ereg regexp=".+" search_in="hdr" header="Record-Route:" check_it="true"
            assign_to="rr"/>
      <log message="invite-ruri: [$ruri]"/>
      <log message="invite-via: [$via]"/>
      <log message="invite-via2: [$via2]"/>
      <log message="invite-rr: [$rr]"/>
      <log message="queue: [$queue]"/>
    </action>
  </recv>

  <send>
    <![CDATA[

      SIP/2.0 180 Ringing
      [last_Via:]
      [last_Record-Route:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[agent]@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>

  <pause milliseconds="500"/>

  <send retrans="500">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_Record-Route:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[agent]@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=agent 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port+4] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000

    ]]>
  </send>

  <recv request="ACK" crlf="true">
    <action>
      <ereg regexp=".+" search_in="hdr" header="Via:" check_it="true"
            assign_to="ackvia"/>
      <ereg regexp=".+" search_in="hdr" header="Via:" occurrence="2"
            check_it="true" assign_to="ackvia2"/>
      <log message="ack-via: [$ackvia]"/>
      <log message="ack-via2: [$ackvia2]"/>
    </action>
  </recv>

  <nop>
    <action>
      <exec play_pcap_audio="[pcap]"/>
    </action>
  </nop>

  <recv request="BYE" timeout="60000">
    <action>
      <ereg regexp=".+" search_in="hdr" header="Via:" check_it="true"
            assign_to="byevia"/>
      <ereg regexp=".+" search_in="hdr" header="Via:" occurrence="2"
            check_it="true" assign_to="byevia2"/>
      <log message="bye-via: [$byevia]"/>
      <log message="bye-via2: [$byevia2]"/>
    </action>
  </recv>

  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[agent]@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
</scenario>
"#;

/// The caller, through Kamailio: INVITE (PCMU and telephone-event), the
/// 200 with Kamailio's Record-Route (kept: the ACK and the BYE follow it),
/// the key 1 s after the answer (RFC 4733), 500 ms later talk, hang up -d
/// ms after that. Keys: dtmf, pcap.
const CALLER_SCENARIO: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="caller through kamailio: presses 1, talks, hangs up">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "SIPp Caller" <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port+4] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000

    ]]>
  </send>

  <recv response="100" optional="true"/>
  <!-- A stateful proxy may pass the 200 before the 180. -->
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true">
    <action>
      <ereg regexp=".+" search_in="hdr" header="Record-Route:" check_it="true"
            assign_to="rr"/>
      <log message="answer-rr: [$rr]"/>
    </action>
  </recv>

  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: "SIPp Caller" <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

  <pause milliseconds="1000"/>

  <nop>
    <action>
      <exec play_pcap_audio="[dtmf]"/>
    </action>
  </nop>

  <pause milliseconds="500"/>

  <nop>
    <action>
      <exec play_pcap_audio="[pcap]"/>
    </action>
  </nop>

  <pause/>

  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: "SIPp Caller" <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

  <recv response="200" crlf="true"/>
</scenario>
"#;

/// Writes a scenario into the test's folder; SIPp is given its absolute
/// path (the harness resolves names against tests/interop/, and an
/// absolute path stays as it is).
fn write_scenario(engine: &Engine, name: &str, text: &str) -> String {
    let path = engine.path().join(name);
    fs::write(&path, text).expect("write scenario");
    path.to_string_lossy().into_owned()
}

/// `name: value` lines a scenario's `<log>` actions wrote, by name.
fn logged<'a>(logs: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}: ");
    logs.lines()
        .filter_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .collect()
}

fn logged_one<'a>(logs: &'a str, name: &str) -> &'a str {
    let values = logged(logs, name);
    assert_eq!(values.len(), 1, "one `{name}` line in SIPp's log:\n{logs}");
    values[0]
}

// ---- audio -----------------------------------------------------------------------

/// A capture of `ms` of a tone in `codec`, written to the test's folder.
fn tone_pcap(engine: &Engine, name: &str, hz: f64, ms: usize, codec: Codec) -> String {
    let path = engine.path().join(name);
    write_rtp_pcap(&path, &tone(hz, ms), codec);
    path.to_string_lossy().into_owned()
}

/// How long the caller hears "agent 0 0 7 is serving you" before the
/// bridge.
fn announcement_ms(language: &str, number: &str) -> u64 {
    let mut names = vec!["agent_intro".to_string()];
    names.extend(number.chars().map(|d| format!("digits/{d}")));
    names.push("agent_serving".into());
    names.iter().map(|n| prompt_ms(language, n) + 5).sum()
}

/// Every 20 ms frame of a prompt as the engine sends it in `codec`.
fn prompt_frames(language: &str, name: &str, codec: Codec) -> BTreeSet<Vec<u8>> {
    prompt_samples(language, name)
        .chunks(160)
        .map(|f| f.iter().map(|&x| codec.encode(x)).collect())
        .collect()
}

/// Packets mostly of a tone of `hz`, leaving out frames of prompts.
fn own_tone_packets(heard: &Heard, hz: f64, prompts: &BTreeSet<Vec<u8>>) -> usize {
    heard
        .packets
        .iter()
        .filter(|p| !prompts.contains(&p.payload))
        .filter(|p| p.samples().is_some_and(|s| tone_share(&s, hz) >= 0.5))
        .count()
}

fn first_tone(heard: &Heard, hz: f64) -> Option<SystemTime> {
    heard
        .packets
        .iter()
        .find(|p| p.samples().is_some_and(|s| tone_share(&s, hz) >= 0.5))
        .map(|p| p.at)
}

// ---- the test --------------------------------------------------------------------

/// Short queue timings; the agent is rung for at most 10 s.
fn settings() -> Settings {
    let q = |v: &str| format!("{v:?}");
    Settings {
        answer_after: "500ms",
        overrides: vec![
            ("[[queues]]", "ring_timeout", q("10s")),
            ("[[queues]]", "wrap_up", q("2s")),
            ("[[queues]]", "apology_after", q("20s")),
        ],
        ..Settings::default()
    }
}

/// The whole path through Kamailio; `caller_side` is the transport of the
/// caller to Kamailio and of Kamailio to hotline (the phone stays on UDP).
fn agent_rung_through_kamailio(k: u16, caller_side: Transport) {
    let Some((modules, dtmf)) = kamailio_and_sipp() else {
        return;
    };
    let ports = ports(k);
    let s = settings();
    let mut engine = Engine::start(ports, &s);
    let kam_port = kamailio_port(k);
    let suffix = match caller_side {
        Transport::Udp => "",
        Transport::Tcp => ";transport=tcp",
    };
    let node = format!("sip:{}{suffix}", engine.sip_addr());
    let kamailio = Kamailio::start(&engine.path().join("kamailio"), kam_port, &[node], modules);
    let kam = kamailio.addr;
    let agent_port = ports.sipp(AGENT).sip;
    let fail = |what: &str| -> String {
        format!(
            "{what}\n--- kamailio log (tail) ---\n{}\n--- hotline log (tail) ---\n{}",
            kamailio.log(),
            engine.log_tail()
        )
    };

    // 1. The agent registers through Kamailio; hotline challenges it and
    // echoes the Path (the phone said Supported: path).
    let register = "kam_agent_register.xml";
    let args = [
        "-key",
        "agent",
        "1001",
        "-key",
        "contact_ip",
        UNREACHABLE_CONTACT_IP,
        "-au",
        "1001",
        "-ap",
        "secret",
    ];
    let registered = Sipp::start_via(&engine, kam, AGENT, register, &args, 15, 1);
    let registered = registered.expect_success(&engine);
    let path = logged_one(&registered.logs(), "path").to_string();
    assert!(
        path.contains(&format!("127.0.0.1:{kam_port}")) && path.contains(";lr"),
        "{}",
        fail(&format!("the Path names Kamailio (loose routing): {path}"))
    );
    assert!(
        path.contains("received=") && path.contains(&agent_port.to_string()),
        "{}",
        fail(&format!(
            "the Path carries the phone's real address (port {agent_port}): {path}"
        ))
    );

    // 2. The caller and the agent, each talking a tone.
    let announce = announcement_ms(s.language, "007");
    // Connected for about 6 s (less if hotline plays more before the
    // bridge): the audio is checked against the record's talk time.
    let talk_ms = announce + 6000;
    let voice_ms = talk_ms as usize - 300;
    let agent_voice = tone_pcap(&engine, "agent.pcap", AGENT_HZ, voice_ms, Codec::Pcma);
    let caller_voice = tone_pcap(&engine, "caller.pcap", CALLER_HZ, voice_ms, Codec::Pcmu);
    let limit = Duration::from_secs(40);
    let agent_ear = RtpProbe::listen(ports.sipp(AGENT).sdp, limit);
    let caller_ear = RtpProbe::listen(ports.sipp(CALLER).sdp, limit);

    let answer = write_scenario(&engine, "kam_agent_answer.xml", AGENT_ANSWER);
    let args = ["-key", "agent", "1001", "-key", "pcap", &agent_voice];
    let phone = Sipp::start_via(&engine, kam, AGENT, &answer, &args, 30, 1);
    phone.wait_listening(&engine, AGENT);

    let call = write_scenario(&engine, "kam_caller.xml", CALLER_SCENARIO);
    let d = talk_ms.to_string();
    let mut args = vec![
        "-key",
        "dtmf",
        &dtmf,
        "-key",
        "pcap",
        &caller_voice,
        "-d",
        &d,
    ];
    if caller_side == Transport::Tcp {
        args.extend(["-t", "t1"]);
    }
    let caller = Sipp::start_via(&engine, kam, CALLER, &call, &args, 40, 1);
    let caller = caller.expect_success(&engine);
    let phone = phone.expect_success(&engine);
    let agent_heard = agent_ear.finish();
    let caller_heard = caller_ear.finish();

    // 3. Signalling: every request went through Kamailio.
    let kam_hop = format!("127.0.0.1:{kam_port}");
    let answer_rr = logged_one(&caller.logs(), "answer-rr").to_string();
    assert!(
        answer_rr.contains(&kam_hop),
        "{}",
        fail(&format!(
            "the caller's 200 is record-routed by Kamailio: {answer_rr}"
        ))
    );
    let logs = phone.logs();
    let ruri = logged_one(&logs, "invite-ruri");
    assert_eq!(
        ruri,
        format!("sip:1001@{UNREACHABLE_CONTACT_IP}:{agent_port};transport=UDP"),
        "the agent's INVITE is for the registered Contact"
    );
    // The top Via is Kamailio's (over UDP to the phone), the next one
    // hotline's (over UDP or TCP to Kamailio).
    let node_hop = format!("127.0.0.1:{}", ports.sip);
    let node_transport = match caller_side {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
    };
    for what in ["invite", "ack", "bye"] {
        let top = logged_one(&logs, &format!("{what}-via"));
        let next = logged_one(&logs, &format!("{what}-via2"));
        assert!(
            top.contains(&format!("SIP/2.0/UDP {kam_hop}")),
            "{}",
            fail(&format!("the agent's {what} came from Kamailio: Via {top}"))
        );
        assert!(
            next.contains(&format!("SIP/2.0/{node_transport} {node_hop}")),
            "the agent's {what} was sent by hotline over {node_transport}: second Via {next}"
        );
    }
    let invite_rr = logged_one(&logs, "invite-rr");
    assert!(
        invite_rr.contains(&kam_hop),
        "the agent's INVITE is record-routed by Kamailio: {invite_rr}"
    );
    assert_eq!(logged_one(&logs, "queue"), "consultation", "pressing 1");

    // 4. The records: answered by 1001 in consultation, the caller hung up.
    drop(kamailio);
    let records = engine.stop_and_read_records();
    let r = single(&records);
    assert_eq!(str_field(r, "disposition"), "answered", "{r}");
    assert_eq!(str_field(r, "queue"), "consultation", "{r}");
    assert_eq!(str_field(r, "queue_result"), "answered", "{r}");
    assert_eq!(str_field(r, "agent"), "1001", "{r}");
    assert_eq!(str_field(r, "agent_number"), "007", "{r}");
    assert_eq!(str_field(r, "digits"), "1", "{r}");
    assert_eq!(str_field(r, "hangup_side"), "caller", "{r}");
    assert_eq!(str_field(r, "caller_number"), "13800138000", "{r}");
    let talk = u64_field(r, "talk_ms");
    assert!(
        (2000..=7000).contains(&talk),
        "talk_ms = {talk}, expected 2 to 7 s: {r}"
    );

    // 5. Audio both ways while connected (the record's talk time): each
    // side hears the other's tone, in its own codec.
    let expected = talk as usize / 20;
    assert_eq!(agent_heard.payload_types(), [8].into(), "the agent's PCMA");
    let caller_to_agent = agent_heard.tone_packets(CALLER_HZ);
    assert!(
        caller_to_agent >= expected * 2 / 3,
        "the agent heard {caller_to_agent} packets of the caller's tone, about {expected} \
         expected, in {} packets",
        agent_heard.packets.len()
    );
    assert_eq!(
        caller_heard.payload_types(),
        [0].into(),
        "the caller's PCMU"
    );
    let agent_to_caller = caller_heard.tone_packets(AGENT_HZ);
    assert!(
        agent_to_caller >= expected * 2 / 3,
        "the caller heard {agent_to_caller} packets of the agent's tone, about {expected} \
         expected, in {} packets",
        caller_heard.packets.len()
    );
    // Neither hears itself (the whisper's speech aside: a frame of it may
    // be mostly 400 Hz).
    let whisper = prompt_frames(s.language, "consultation", Codec::Pcma);
    let agent_echo = own_tone_packets(&agent_heard, AGENT_HZ, &whisper);
    assert_eq!(agent_echo, 0, "the agent heard its own tone");
    let caller_echo = own_tone_packets(&caller_heard, CALLER_HZ, &BTreeSet::new());
    assert_eq!(caller_echo, 0, "the caller heard its own tone");
    assert!(
        first_tone(&agent_heard, CALLER_HZ).is_some()
            && first_tone(&caller_heard, AGENT_HZ).is_some(),
        "both tones heard"
    );
    for p in agent_heard.packets.iter().chain(&caller_heard.packets) {
        assert!(
            (ports.rtp.0..=ports.rtp.1).contains(&p.from.port()),
            "RTP from {}, outside the engine's range {:?}",
            p.from,
            ports.rtp
        );
    }

    let offers = engine.offers();
    let o = single(&offers);
    assert_eq!(str_field(o, "agent"), "1001", "{o}");
    assert_eq!(str_field(o, "outcome"), "answered", "{o}");
    assert_eq!(u64_field(o, "sip_status"), 200, "{o}");
}

#[test]
fn agent_registered_through_kamailio_is_rung_through_it_udp() {
    agent_rung_through_kamailio(0, Transport::Udp);
}

#[test]
fn agent_registered_through_kamailio_is_rung_through_it_tcp() {
    agent_rung_through_kamailio(1, Transport::Tcp);
}
