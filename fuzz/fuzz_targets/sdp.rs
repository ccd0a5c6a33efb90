//! An SDP offer through parsing and negotiation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hotline::sip::sdp::parse_and_negotiate(data);
});
