//! RFC 4733 telephone-event payloads: a digit is reported once per event,
//! however many times its packets (including the three end packets) arrive.

/// Which way a digit arrived; the engine reports a digit once even when a
/// trunk sends it two ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitSource {
    /// RFC 4733 telephone-event in RTP.
    Rfc4733,
    /// Tones in the audio.
    Inband,
    /// A SIP INFO request (application/dtmf-relay or application/dtmf).
    SipInfo,
}

/// Events 0-15: digits, `*`, `#`, A-D.
pub fn event_char(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// Tracks the RTP timestamp of the event being received; every packet of
/// one event shares it (RFC 4733 section 2.5.1.3).
#[derive(Debug, Default)]
pub struct TelephoneEventDecoder {
    last_timestamp: Option<u32>,
}

impl TelephoneEventDecoder {
    /// Feeds one telephone-event payload; returns the digit if this packet
    /// starts a new event.
    pub fn handle(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        if payload.len() < 4 {
            return None;
        }
        if self.last_timestamp == Some(timestamp) {
            return None;
        }
        let digit = event_char(payload[0])?;
        self.last_timestamp = Some(timestamp);
        Some(digit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
        let d = duration.to_be_bytes();
        [event, if end { 0x80 | 10 } else { 10 }, d[0], d[1]]
    }

    #[test]
    fn one_digit_per_event_with_retransmitted_ends() {
        let mut dec = TelephoneEventDecoder::default();
        let mut got = Vec::new();
        for (ts, p) in [
            (1000, payload(5, false, 160)),
            (1000, payload(5, false, 320)),
            (1000, payload(5, true, 480)),
            (1000, payload(5, true, 480)),
            (1000, payload(5, true, 480)),
            (2000, payload(11, true, 480)),
            (2000, payload(11, true, 480)),
            (3000, payload(5, false, 160)),
        ] {
            got.extend(dec.handle(ts, &p));
        }
        assert_eq!(got, vec!['5', '#', '5']);
    }

    #[test]
    fn short_or_unknown_payloads_are_ignored() {
        let mut dec = TelephoneEventDecoder::default();
        assert_eq!(dec.handle(1, &[1, 2]), None);
        assert_eq!(dec.handle(2, &[200, 0, 0, 0]), None);
    }
}
