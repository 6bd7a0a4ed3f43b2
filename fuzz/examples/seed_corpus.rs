//! Writes the seed corpora under `fuzz/corpus/<target>/` (`cargo run --example seed_corpus`):
//! fixtures, simulated requests, signed sync files. It never writes outside `fuzz/corpus/`.

use chrono::{TimeZone, Utc};
use satellite::gateway::callhome;
use satellite::simulate::client::SimDevice;
use satellite::simulate::device::seed_scenario;
use satellite::sync::archive::{self, FileKind, Header};
use std::path::{Path, PathBuf};

fn put(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("corpus");
    let fixtures = root.join("../tests/fixtures/callhome");

    let ch = corpus.join("callhome_parse");
    let pd = corpus.join("payload_decode");
    for entry in std::fs::read_dir(&fixtures)? {
        let path = entry?.path();
        let bytes = std::fs::read(&path)?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("fixture");
        put(&ch, name, &bytes)?;
        if let Ok(msg) = callhome::parse(&bytes) {
            for (i, a) in msg.block.attachments.iter().enumerate() {
                put(&pd, &format!("{name}-{i}.json"), a.data.as_bytes())?;
            }
        }
    }

    // Every request type from a simulated router, as XML and as its JSON parts.
    let now = Utc
        .with_ymd_and_hms(2025, 2, 3, 10, 0, 0)
        .single()
        .ok_or("time")?;
    let mut dev = SimDevice::new(seed_scenario(), "http://satellite/")?;
    let requests = [
        ("register", dev.register_request("TOKEN", now)?),
        ("authorize", dev.authorize_request(now)?),
        (
            "renew_id",
            dev.plain_request(satellite::gateway::message::MessageType::RenewId, now)?,
        ),
        (
            "deregister",
            dev.plain_request(satellite::gateway::message::MessageType::Deregister, now)?,
        ),
    ];
    for (kind, xml) in &requests {
        put(&ch, &format!("sim-{kind}.xml"), xml.as_bytes())?;
        let msg = callhome::parse(xml.as_bytes())?;
        let data = msg.smart_licensing_data().ok_or("no attachment")?;
        put(&pd, &format!("sim-{kind}-envelope.json"), data.as_bytes())?;
        let env = satellite::gateway::message::decode_envelope(data)?;
        put(
            &pd,
            &format!("sim-{kind}-payload.json"),
            env.payload.as_bytes(),
        )?;
    }

    // A request and a response as a satellite and an authority write them.
    let key = satellite_fuzz::fuzz_key().ok_or("fuzz key")?;
    let si = corpus.join("sync_import");
    let request = archive::write(
        Header {
            kind: FileKind::Request,
            sender: "sat-0001".into(),
            receiver: "authority".into(),
            sequence: 1,
            created_at: "2025-02-03T10:00:00Z".into(),
        },
        &[
            (
                archive::SATELLITE,
                br#"{"satellite_id":"sat-0001","name":"site-1","public_key":"AAAA","last_imported_response":0,"software_version":"0.1.0"}"#.to_vec(),
            ),
            (
                archive::INSTANCES,
                br#"[{"udi_pid":"NCS560-4","udi_serial_number":"FOX2305P81D","hostname":"r1","smart_account":"Acme","virtual_account":"CORE","registered_at":"2025-02-01T00:00:00Z","last_contact_at":"2025-02-03T09:00:00Z","usage":[{"tag":"ESS-AC-100G-RTU-1","count":2}]}]"#.to_vec(),
            ),
            (
                archive::CHANGES,
                br#"[{"id":1,"at":"2025-02-01T00:00:00Z","kind":"registered","smart_account":"Acme","virtual_account":"CORE","udi_pid":"NCS560-4","udi_serial_number":"FOX2305P81D"}]"#.to_vec(),
            ),
        ],
        "request 1 from sat-0001\n",
        &key,
    )?;
    put(&si, "request.zip", &request)?;
    let response = archive::write(
        Header {
            kind: FileKind::Response,
            sender: "authority".into(),
            receiver: "sat-0001".into(),
            sequence: 1,
            created_at: "2025-02-03T10:15:00Z".into(),
        },
        &[
            (
                archive::POOLS,
                br#"[{"smart_account":"Acme","virtual_account":"CORE","licenses":[{"tag":"ESS-AC-100G-RTU-1","kind":"rtu","quantity":10,"ends_at":"2026-01-01T00:00:00Z"}]}]"#.to_vec(),
            ),
            (
                archive::ACK,
                br#"{"request_sequence":1,"changes_acknowledged_through":1,"authority_time":"2025-02-03T10:15:00Z","instances_recorded":1}"#.to_vec(),
            ),
        ],
        "response 1 for sat-0001\n",
        &key,
    )?;
    put(&si, "response.zip", &response)?;
    println!("seed corpora written under {}", corpus.display());
    Ok(())
}
