//! Inputs the fuzz targets in `fuzz/` turned up, replayed on every build through the same
//! public functions; each test says what the input taught. Never a place for fuzzing itself.

use satellite::gateway::callhome;
use std::path::Path;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fuzz")
            .join(name),
    )
    .unwrap()
}

/// A register request whose payload carries a raw U+0008, which XML 1.0 does not allow.
/// The parser takes it as sent (the signature covers those exact bytes); an answer built
/// from it carries U+FFFD instead, so what the satellite writes is always well-formed.
#[test]
fn control_character_parses_and_is_replaced_when_written_back() {
    let msg = callhome::parse(&fixture("callhome-control-char.xml")).unwrap();
    let data = msg.smart_licensing_data().unwrap();
    assert!(data.contains('\u{8}'));
    let rebuilt = callhome::build(
        &msg.session,
        &msg.block.message_type,
        &msg.block.creation_date,
        callhome::SMART_LICENSING_ATTACHMENT,
        data,
    );
    let again = callhome::parse(rebuilt.as_bytes()).unwrap();
    assert_eq!(again.session, msg.session);
    assert_eq!(
        again.smart_licensing_data().unwrap(),
        data.replace('\u{8}', "\u{FFFD}")
    );
}
