//! Any text into the smart-licensing envelope and payload decoders, as every message type;
//! it never touches storage or keys. A decoded response must encode and decode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use satellite::gateway::message::{self, MessageType};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(env) = message::decode_envelope(text) {
        let _ = env.request_kind();
        let _ = env.response_kind();
        for kind in MessageType::ALL {
            let _ = message::decode_payload(kind, &env.payload);
        }
        let _ = message::decode_response_payload(&env.payload);
    }
    for kind in MessageType::ALL {
        let _ = message::decode_payload(kind, text);
    }
    if let Ok(resp) = message::decode_response_payload(text) {
        let json = match resp.to_json() {
            Ok(j) => j,
            Err(e) => panic!("a decoded response does not encode: {e}"),
        };
        match message::decode_response_payload(&json) {
            Ok(back) => assert_eq!(back, resp),
            Err(e) => panic!("an encoded response does not decode: {e}"),
        }
    }
});
