//! Any bytes as a sync file, read with the fuzz key pinned and small limits, members parsed
//! as the importer would; it never writes anything. Nothing may panic or pass the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use satellite::sync::archive;
use satellite::sync::model::{Ack, Change, InstanceRecord, SatelliteInfo, VaPool};
use std::sync::OnceLock;

fn pinned() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        satellite_fuzz::fuzz_key()
            .map(|k| k.public_key_b64())
            .unwrap_or_default()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = archive::read_manifest_unverified(data);
    let Ok(file) = archive::read(data, &satellite_fuzz::small_limits(), pinned()) else {
        return;
    };
    let _ = file.manifest.expect_newer_than(0);
    let _ = archive::parse_member::<SatelliteInfo>(&file, archive::SATELLITE);
    let _ = archive::parse_member::<Vec<InstanceRecord>>(&file, archive::INSTANCES);
    let _ = archive::parse_member::<Vec<Change>>(&file, archive::CHANGES);
    let _ = archive::parse_member::<Vec<VaPool>>(&file, archive::POOLS);
    let _ = archive::parse_member::<Ack>(&file, archive::ACK);
});
