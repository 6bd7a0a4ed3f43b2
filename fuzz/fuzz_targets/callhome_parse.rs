//! Any bytes into the Call Home parser; what it accepts must survive `build` and `parse`.
//! It never asserts more than the builder promises (non-XML characters become U+FFFD).
#![no_main]

use libfuzzer_sys::fuzz_target;
use satellite::gateway::callhome;

/// The characters XML 1.0 allows; the parser passes others through, the builder replaces them.
fn xml_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t'
            | '\n'
            | '\r'
            | '\u{20}'..='\u{D7FF}'
            | '\u{E000}'..='\u{FFFD}'
            | '\u{10000}'.. => c,
            _ => '\u{FFFD}',
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = callhome::parse(data) else {
        return;
    };
    let _ = msg.smart_licensing_data();
    let (name, body) = msg
        .block
        .attachments
        .first()
        .map(|a| (a.name.as_str(), a.data.as_str()))
        .unwrap_or(("", ""));
    let rebuilt = callhome::build(
        &msg.session,
        &msg.block.message_type,
        &msg.block.creation_date,
        name,
        body,
    );
    let again = match callhome::parse(rebuilt.as_bytes()) {
        Ok(m) => m,
        Err(e) => panic!("a message built from parsed fields does not parse: {e}"),
    };
    assert_eq!(again.session.to, xml_safe(&msg.session.to));
    assert_eq!(again.session.from, xml_safe(&msg.session.from));
    assert_eq!(again.session.message_id, xml_safe(&msg.session.message_id));
    assert_eq!(again.block.message_type, xml_safe(&msg.block.message_type));
    assert_eq!(
        again.block.creation_date,
        xml_safe(&msg.block.creation_date)
    );
    let first = again.block.attachments.first();
    assert_eq!(first.map(|a| a.name.as_str()).unwrap_or(""), xml_safe(name));
    assert_eq!(first.map(|a| a.data.as_str()).unwrap_or(""), xml_safe(body));
});
