//! The sync file container end to end: round trips, the committed samples, the JSON Schemas,
//! and one crafted archive for every reason a file is refused.

use std::io::{Cursor, Read, Write};
use std::path::PathBuf;

use ring::digest::{digest, SHA256};
use satellite::crypto::ed25519::SyncKeyPair;
use satellite::sync::archive::{
    self, FileKind, Header, Limits, Manifest, ManifestSignature, SyncFile, SyncFileError, ACK,
    CHANGES, INSTANCES, MANIFEST, POOLS, SATELLITE, SIGNATURE, SUMMARY,
};
use satellite::sync::model::{Ack, Change, InstanceRecord, PoolLine, SatelliteInfo, Usage, VaPool};
use serde_json::Value;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

const SATELLITE_ID: &str = "sat-0001-lab";
const AUTHORITY_ID: &str = "authority-example";

/// A fixed key per label, so that the committed samples come out byte for byte the same.
fn key(label: &str) -> SyncKeyPair {
    // PKCS#8 v1 wrapping of a raw 32-byte Ed25519 seed (RFC 8410).
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(digest(&SHA256, label.as_bytes()).as_ref());
    SyncKeyPair::from_pkcs8_der(&der).unwrap()
}

fn satellite_key() -> SyncKeyPair {
    key("sample satellite key")
}

fn authority_key() -> SyncKeyPair {
    key("sample authority key")
}

fn satellite_info() -> SatelliteInfo {
    SatelliteInfo {
        satellite_id: SATELLITE_ID.into(),
        name: "Lab satellite".into(),
        public_key: satellite_key().public_key_b64(),
        enrollment_token: Some("ENR-3f9c2a7d41b8e605".into()),
        last_imported_response: 0,
        software_version: "0.1.0".into(),
    }
}

fn instance(n: u32) -> InstanceRecord {
    InstanceRecord {
        udi_pid: "NCS-55A1-24H".into(),
        udi_serial_number: format!("FOC2231R{n:04}"),
        hostname: Some(format!("pe{n}.lab.example.net")),
        smart_account: "Example Networks".into(),
        virtual_account: "Core".into(),
        registered_at: "2025-01-06T09:00:00Z".into(),
        last_contact_at: "2025-02-03T09:00:00Z".into(),
        usage: vec![
            Usage {
                tag: "ESS-AC-100G-RTU-1".into(),
                count: 4,
            },
            Usage {
                tag: "ADV-AC-100G-RTU-1".into(),
                count: 2,
            },
            Usage {
                tag: "ESS-AC-100G-SIA-3".into(),
                count: 4,
            },
        ],
    }
}

fn instances() -> Vec<InstanceRecord> {
    let mut v = vec![instance(1), instance(2)];
    v[1].hostname = None;
    v[1].usage.truncate(1);
    v
}

fn changes() -> Vec<Change> {
    vec![
        Change {
            id: 1,
            at: "2025-01-06T09:00:00Z".into(),
            kind: "registered".into(),
            smart_account: "Example Networks".into(),
            virtual_account: "Core".into(),
            udi_pid: Some("NCS-55A1-24H".into()),
            udi_serial_number: Some("FOC2231R0001".into()),
            detail: None,
        },
        Change {
            id: 2,
            at: "2025-01-20T14:30:00Z".into(),
            kind: "license_transferred".into(),
            smart_account: "Example Networks".into(),
            virtual_account: "Core".into(),
            udi_pid: None,
            udi_serial_number: None,
            detail: Some("2 ESS-AC-100G-RTU-1 from Core to Edge".into()),
        },
    ]
}

fn pools() -> Vec<VaPool> {
    vec![VaPool {
        smart_account: "Example Networks".into(),
        virtual_account: "Core".into(),
        licenses: vec![
            PoolLine {
                tag: "ESS-AC-100G-RTU-1".into(),
                description: "Essentials 100G right-to-use".into(),
                kind: "rtu".into(),
                quantity: 16,
                starts_at: None,
                ends_at: None,
            },
            PoolLine {
                tag: "ESS-AC-100G-SIA-3".into(),
                description: "Essentials 100G software innovation access, 3 years".into(),
                kind: "sia".into(),
                quantity: 16,
                starts_at: Some("2025-01-01T00:00:00Z".into()),
                ends_at: Some("2028-01-01T00:00:00Z".into()),
            },
        ],
    }]
}

fn ack() -> Ack {
    Ack {
        request_sequence: 1,
        changes_acknowledged_through: 2,
        authority_time: "2025-02-03T10:15:00Z".into(),
        instances_recorded: 2,
    }
}

const REQUEST_SUMMARY: &str = "\
Sync request from satellite sat-0001-lab (Lab satellite) to authority-example, number 1,
created 2025-02-03T10:00:00Z.

It carries 2 product instances with their latest license usage (instances.json)
and 2 changes since the last acknowledged request (changes.json).
satellite.json says who is asking; manifest.json lists every file with its SHA-256,
and manifest.sig is the satellite's Ed25519 signature over manifest.json.
";

const RESPONSE_SUMMARY: &str = "\
Sync response from authority-example to satellite sat-0001-lab, number 1,
created 2025-02-03T10:15:00Z, answering request 1.

It carries the license pool of 1 virtual account (pools.json): Example Networks / Core,
2 license lines. ack.json acknowledges changes up to 2 and 2 product instances recorded.
manifest.json lists every file with its SHA-256, and manifest.sig is the authority's
Ed25519 signature over manifest.json.
";

fn request_header() -> Header {
    Header {
        kind: FileKind::Request,
        sender: SATELLITE_ID.into(),
        receiver: AUTHORITY_ID.into(),
        sequence: 1,
        created_at: "2025-02-03T10:00:00Z".into(),
    }
}

fn response_header() -> Header {
    Header {
        kind: FileKind::Response,
        sender: AUTHORITY_ID.into(),
        receiver: SATELLITE_ID.into(),
        sequence: 1,
        created_at: "2025-02-03T10:15:00Z".into(),
    }
}

fn request_bytes() -> Vec<u8> {
    archive::write(
        request_header(),
        &[
            (CHANGES, archive::member_json(&changes()).unwrap()),
            (SATELLITE, archive::member_json(&satellite_info()).unwrap()),
            (INSTANCES, archive::member_json(&instances()).unwrap()),
        ],
        REQUEST_SUMMARY,
        &satellite_key(),
    )
    .unwrap()
}

fn response_bytes() -> Vec<u8> {
    archive::write(
        response_header(),
        &[
            (POOLS, archive::member_json(&pools()).unwrap()),
            (ACK, archive::member_json(&ack()).unwrap()),
        ],
        RESPONSE_SUMMARY,
        &authority_key(),
    )
    .unwrap()
}

fn read_request(bytes: &[u8]) -> Result<SyncFile, SyncFileError> {
    archive::read(bytes, &Limits::default(), &satellite_key().public_key_b64())
}

fn small_limits() -> Limits {
    Limits {
        max_archive_bytes: 64 * 1024,
        max_entries: 16,
        max_entry_bytes: 32 * 1024,
        max_unpacked_bytes: 48 * 1024,
        max_manifest_bytes: 8 * 1024,
        max_ratio: 200,
        ratio_exempt_below: 64 * 1024,
    }
}

/// Every entry of an archive, in archive order.
fn entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = ZipArchive::new(Cursor::new(bytes)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().unwrap().to_string(), data)
        })
        .collect()
}

fn zip_of(list: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, data) in list {
        zip.start_file(*name, options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The request's entries with one replaced (or dropped when `with` is None) and rezipped.
fn request_with(name: &str, with: Option<&[u8]>) -> Vec<u8> {
    let list = entries(&request_bytes());
    let mut out: Vec<(&str, &[u8])> = Vec::new();
    for (n, d) in &list {
        if n == name {
            if let Some(w) = with {
                out.push((n, w));
            }
        } else {
            out.push((n, d));
        }
    }
    zip_of(&out)
}

/// The request with a manifest of our choosing, signed by `signer` under `scheme`.
fn request_signed(manifest: &[u8], signer: &SyncKeyPair, scheme: &str) -> Vec<u8> {
    let sig = serde_json::to_vec(&ManifestSignature {
        scheme: scheme.into(),
        signature: signer.sign_b64(manifest),
    })
    .unwrap();
    let list = entries(&request_bytes());
    let out: Vec<(&str, &[u8])> = list
        .iter()
        .map(|(n, d)| match n.as_str() {
            MANIFEST => (n.as_str(), manifest),
            SIGNATURE => (n.as_str(), sig.as_slice()),
            _ => (n.as_str(), d.as_slice()),
        })
        .collect();
    zip_of(&out)
}

fn request_manifest_json() -> Value {
    let list = entries(&request_bytes());
    let (_, m) = list.iter().find(|(n, _)| n == MANIFEST).unwrap();
    serde_json::from_slice(m).unwrap()
}

/// Overwrites a little-endian field of the central directory entry (and the local header)
/// of `name`: how a lying or hostile header is made.
fn patch_headers(
    bytes: &mut [u8],
    name: &str,
    central_at: usize,
    local_at: Option<usize>,
    value: u32,
) {
    let le = value.to_le_bytes();
    let n = name.as_bytes();
    let mut i = 0;
    while i + 46 + n.len() <= bytes.len() {
        let is_central = bytes[i..i + 4] == [0x50, 0x4b, 0x01, 0x02]
            && bytes[i + 46..i + 46 + n.len()] == *n
            && usize::from(u16::from_le_bytes([bytes[i + 28], bytes[i + 29]])) == n.len();
        let is_local = bytes[i..i + 4] == [0x50, 0x4b, 0x03, 0x04]
            && bytes[i + 30..i + 30 + n.len()] == *n
            && usize::from(u16::from_le_bytes([bytes[i + 26], bytes[i + 27]])) == n.len();
        if is_central {
            let width = if central_at == 8 || central_at == 10 {
                2
            } else {
                4
            };
            bytes[i + central_at..i + central_at + width].copy_from_slice(&le[..width]);
        }
        if let (true, Some(at)) = (is_local, local_at) {
            let width = if at == 6 || at == 8 { 2 } else { 4 };
            bytes[i + at..i + at + width].copy_from_slice(&le[..width]);
        }
        i += 1;
    }
}

fn refused(result: Result<SyncFile, SyncFileError>) -> SyncFileError {
    match result {
        Ok(_) => panic!("a crafted file was accepted"),
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains('\n'), "reason spans lines: {text}");
            assert!(!text.is_empty());
            e
        }
    }
}

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("export/samples")
}

fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("export/schemas")
}

/// Rewrites a committed file only when its content changed, so that runs leave git clean.
fn keep(path: PathBuf, bytes: &[u8]) {
    if std::fs::read(&path).ok().as_deref() != Some(bytes) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
}

#[test]
fn a_request_round_trips_with_every_member_intact() {
    let file = read_request(&request_bytes()).unwrap();
    let m = &file.manifest;
    assert_eq!(m.format, "satellite-sync");
    assert_eq!(m.format_version, 1);
    assert_eq!(m.kind, FileKind::Request);
    assert_eq!(
        (m.sender.as_str(), m.receiver.as_str()),
        (SATELLITE_ID, AUTHORITY_ID)
    );
    assert_eq!(m.sequence, 1);
    assert_eq!(m.signature_scheme, "ed25519");
    assert_eq!(m.signer_public_key, satellite_key().public_key_b64());
    let listed: Vec<&str> = m.members.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(listed, [SUMMARY, SATELLITE, INSTANCES, CHANGES]);
    assert_eq!(file.summary, REQUEST_SUMMARY);

    let info: SatelliteInfo = archive::parse_member(&file, SATELLITE).unwrap();
    let inst: Vec<InstanceRecord> = archive::parse_member(&file, INSTANCES).unwrap();
    let ch: Vec<Change> = archive::parse_member(&file, CHANGES).unwrap();
    assert_eq!((info, inst, ch), (satellite_info(), instances(), changes()));

    m.expect(FileKind::Request, SATELLITE_ID, AUTHORITY_ID)
        .unwrap();
    m.expect_newer_than(0).unwrap();
}

#[test]
fn a_response_round_trips_and_is_bound_to_its_satellite() {
    let bytes = response_bytes();
    let file = archive::read(
        &bytes,
        &Limits::default(),
        &authority_key().public_key_b64(),
    )
    .unwrap();
    let p: Vec<VaPool> = archive::parse_member(&file, POOLS).unwrap();
    let a: Ack = archive::parse_member(&file, ACK).unwrap();
    assert_eq!((p, a), (pools(), ack()));
    assert_eq!(file.summary, RESPONSE_SUMMARY);

    let m = &file.manifest;
    m.expect(FileKind::Response, AUTHORITY_ID, SATELLITE_ID)
        .unwrap();
    assert!(matches!(
        m.expect(FileKind::Response, AUTHORITY_ID, "sat-0002-other"),
        Err(SyncFileError::WrongReceiver { .. })
    ));
    assert!(matches!(
        m.expect(FileKind::Response, "someone-else", SATELLITE_ID),
        Err(SyncFileError::WrongSender { .. })
    ));
    assert!(matches!(
        m.expect(FileKind::Request, AUTHORITY_ID, SATELLITE_ID),
        Err(SyncFileError::WrongKind { .. })
    ));
    assert!(matches!(
        m.expect_newer_than(1),
        Err(SyncFileError::Stale {
            sequence: 1,
            last: 1
        })
    ));
    assert!(matches!(
        m.expect_newer_than(7),
        Err(SyncFileError::Stale { .. })
    ));
}

#[test]
fn the_same_content_gives_the_same_bytes_and_the_samples_are_current() {
    let (req, resp) = (request_bytes(), response_bytes());
    assert_eq!(req, request_bytes());
    assert_eq!(resp, response_bytes());

    let dir = samples_dir();
    keep(dir.join("request.zip"), &req);
    keep(dir.join("response.zip"), &resp);
    keep(
        dir.join("satellite.pub.pem"),
        satellite_key().public_key_pem().as_bytes(),
    );
    keep(
        dir.join("authority.pub.pem"),
        authority_key().public_key_pem().as_bytes(),
    );

    let on_disk = std::fs::read(dir.join("request.zip")).unwrap();
    read_request(&on_disk).unwrap();
    let on_disk = std::fs::read(dir.join("response.zip")).unwrap();
    archive::read(
        &on_disk,
        &Limits::default(),
        &authority_key().public_key_b64(),
    )
    .unwrap();
}

#[test]
fn a_file_unpacked_and_zipped_again_by_hand_still_reads() {
    let mut list = entries(&request_bytes());
    list.reverse();
    let refs: Vec<(&str, &[u8])> = list
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let file = read_request(&zip_of(&refs)).unwrap();
    assert_eq!(file.members.len(), 3);
}

#[test]
fn write_to_puts_a_complete_file_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("request.zip");
    archive::write_to(
        &path,
        request_header(),
        &[
            (SATELLITE, archive::member_json(&satellite_info()).unwrap()),
            (INSTANCES, archive::member_json(&instances()).unwrap()),
            (CHANGES, archive::member_json(&changes()).unwrap()),
        ],
        REQUEST_SUMMARY,
        &satellite_key(),
    )
    .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), request_bytes());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "no temporary file is left behind: {names:?}"
    );
}

#[test]
fn write_refuses_members_that_do_not_fit_the_kind() {
    let kp = satellite_key();
    let json = archive::member_json(&ack()).unwrap();
    for members in [
        vec![(ACK, json.clone())],
        vec![(SATELLITE, json.clone()), (INSTANCES, json.clone())],
        vec![
            (SATELLITE, json.clone()),
            (INSTANCES, json.clone()),
            (CHANGES, json.clone()),
            (CHANGES, json.clone()),
        ],
    ] {
        assert!(matches!(
            archive::write(request_header(), &members, "s", &kp),
            Err(SyncFileError::Write(_))
        ));
    }
    let mut h = request_header();
    h.sequence = 0;
    let ok = [
        (SATELLITE, json.clone()),
        (INSTANCES, json.clone()),
        (CHANGES, json.clone()),
    ];
    assert!(matches!(
        archive::write(h, &ok, "s", &kp),
        Err(SyncFileError::Write(_))
    ));
    let mut h = request_header();
    h.created_at = "last tuesday".into();
    assert!(matches!(
        archive::write(h, &ok, "s", &kp),
        Err(SyncFileError::Write(_))
    ));
}

#[test]
fn the_unverified_manifest_names_the_sender() {
    let m: Manifest = archive::read_manifest_unverified(&response_bytes()).unwrap();
    assert_eq!(m.sender, AUTHORITY_ID);
    assert_eq!(m.kind, FileKind::Response);
}

#[test]
fn garbage_and_cut_files_are_not_zips() {
    assert!(matches!(
        refused(read_request(b"hello, world")),
        SyncFileError::NotZip(_)
    ));
    assert!(matches!(
        refused(read_request(b"")),
        SyncFileError::NotZip(_)
    ));
    let bytes = request_bytes();
    for cut in [bytes.len() - 1, bytes.len() - 30, bytes.len() / 2, 100] {
        assert!(
            matches!(
                refused(read_request(&bytes[..cut])),
                SyncFileError::NotZip(_)
            ),
            "cut at {cut}"
        );
    }
    // Bytes lost from the middle leave the end record pointing at the wrong place.
    let mut holed = bytes[..200].to_vec();
    holed.extend_from_slice(&bytes[260..]);
    assert!(matches!(
        refused(read_request(&holed)),
        SyncFileError::NotZip(_)
    ));
}

#[test]
fn an_archive_over_the_size_limit_is_refused_unopened() {
    let limits = Limits {
        max_archive_bytes: 1000,
        ..Limits::default()
    };
    let e = refused(archive::read(
        &request_bytes(),
        &limits,
        &satellite_key().public_key_b64(),
    ));
    assert!(matches!(
        e,
        SyncFileError::ArchiveTooLarge { limit: 1000, .. }
    ));
}

#[test]
fn too_many_entries_are_refused() {
    let names: Vec<String> = (0..17).map(|i| format!("e{i}")).collect();
    let list: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"{}"[..])).collect();
    let e = refused(read_request(&zip_of(&list)));
    assert!(
        matches!(
            e,
            SyncFileError::TooManyEntries {
                count: 17,
                limit: 16
            }
        ),
        "{e}"
    );
}

type IsReason = fn(&SyncFileError) -> bool;

#[test]
fn hostile_entry_names_are_refused() {
    let cases: [(&str, IsReason); 6] = [
        ("/etc/x", |e| matches!(e, SyncFileError::AbsolutePath(_))),
        ("../ack.json", |e| {
            matches!(e, SyncFileError::ParentTraversal(_))
        }),
        ("a/../../ack.json", |e| {
            matches!(e, SyncFileError::ParentTraversal(_))
        }),
        ("C:\\x", |e| matches!(e, SyncFileError::Backslash(_))),
        ("C:/ack.json", |e| {
            matches!(e, SyncFileError::DriveLetter(_))
        }),
        ("notes.txt", |e| {
            matches!(e, SyncFileError::UnexpectedEntry(_))
        }),
    ];
    for (name, is) in cases {
        let bytes = request_with("none", None);
        let mut list = entries(&bytes);
        list.push((name.to_string(), b"x".to_vec()));
        let refs: Vec<(&str, &[u8])> = list
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let e = refused(read_request(&zip_of(&refs)));
        assert!(is(&e), "{name}: {e}");
        assert!(e.to_string().contains(&format!("{name:?}")), "{e}");
    }
    // A member hidden in a folder is not the member.
    let e = refused(read_request(&zip_of(&[("sub/ack.json", b"{}")])));
    assert!(matches!(e, SyncFileError::UnexpectedEntry(_)), "{e}");
}

#[test]
fn a_symlink_entry_is_refused() {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    zip.add_symlink(ACK, "/etc/passwd", SimpleFileOptions::default())
        .unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    assert!(matches!(refused(read_request(&bytes)), SyncFileError::Symlink(n) if n == ACK));
}

#[test]
fn special_files_directories_encryption_and_odd_methods_are_refused() {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    // A FIFO, as a Unix `zip` of one would record it.
    let fifo = SimpleFileOptions::default().external_attributes(0o010_644 << 16);
    zip.start_file(ACK, fifo).unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    assert!(matches!(
        refused(read_request(&bytes)),
        SyncFileError::NotRegularFile(_)
    ));

    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    zip.add_directory("ack.json", SimpleFileOptions::default())
        .unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    assert!(refused(read_request(&bytes))
        .to_string()
        .contains("ack.json"));

    let mut bytes = request_bytes();
    patch_headers(&mut bytes, INSTANCES, 8, Some(6), 0x0001);
    assert!(matches!(refused(read_request(&bytes)), SyncFileError::Encrypted(n) if n == INSTANCES));

    let mut bytes = request_bytes();
    patch_headers(&mut bytes, INSTANCES, 10, Some(8), 12);
    assert!(matches!(
        refused(read_request(&bytes)),
        SyncFileError::UnsupportedCompression { method: 12, .. }
    ));
}

#[test]
fn duplicate_names_are_refused() {
    // The writer will not write a duplicate; rename the second entry in the raw bytes.
    let mut bytes = zip_of(&[(ACK, b"{}"), ("ack.jsoX", b"[]")]);
    let from = b"ack.jsoX";
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(ACK.as_bytes());
        }
        i += 1;
    }
    assert!(matches!(refused(read_request(&bytes)), SyncFileError::DuplicateEntry(n) if n == ACK));
}

#[test]
fn a_zip_bomb_is_refused_from_its_headers() {
    let zeros = vec![0u8; 100 * 1024 * 1024];
    let bytes = zip_of(&[(INSTANCES, &zeros)]);
    drop(zeros);
    let e = refused(read_request(&bytes));
    assert!(
        matches!(e, SyncFileError::RatioTooHigh { ref name, .. } if name == INSTANCES),
        "{e}"
    );

    // With the ratio allowed, the declared size still meets the entry limit...
    let lenient = Limits {
        max_ratio: u64::MAX,
        max_archive_bytes: 1024 * 1024,
        ..small_limits()
    };
    let e = refused(archive::read(
        &bytes,
        &lenient,
        &satellite_key().public_key_b64(),
    ));
    assert!(
        matches!(e, SyncFileError::EntryDeclaredTooLarge { .. }),
        "{e}"
    );

    // ...and the sum of declared sizes meets the total limit.
    let twenty = vec![b' '; 20 * 1024];
    let bytes = zip_of(&[(INSTANCES, &twenty), (CHANGES, &twenty), (POOLS, &twenty)]);
    let e = refused(archive::read(
        &bytes,
        &lenient,
        &satellite_key().public_key_b64(),
    ));
    assert!(matches!(e, SyncFileError::TotalTooLarge { .. }), "{e}");
}

#[test]
fn a_header_that_understates_the_size_cannot_bomb_memory() {
    // manifest.sig is read before anything is trusted, so it is where a liar would aim.
    let zeros = vec![0u8; 4 * 1024 * 1024];
    let mut bytes = zip_of(&[(MANIFEST, b"{}"), (SIGNATURE, &zeros)]);
    patch_headers(&mut bytes, SIGNATURE, 24, Some(22), 100);
    let lenient = Limits {
        max_ratio: u64::MAX,
        ..small_limits()
    };
    let e = refused(archive::read(
        &bytes,
        &lenient,
        &satellite_key().public_key_b64(),
    ));
    // Either the zip reader notices the overrun or our bound does; both stop early.
    assert!(
        matches!(e, SyncFileError::EntryUnreadable { ref name, .. }
            | SyncFileError::EntryUnpacksTooLarge { ref name, .. } if name == SIGNATURE),
        "{e}"
    );

    // A smaller lie is still caught: the entry must unpack to exactly what it declares.
    let mut bytes = zip_of(&[(MANIFEST, b"{}"), (SIGNATURE, &[b'a'; 300])]);
    patch_headers(&mut bytes, SIGNATURE, 24, Some(22), 100);
    let e = refused(archive::read(
        &bytes,
        &lenient,
        &satellite_key().public_key_b64(),
    ));
    assert!(
        matches!(
            e,
            SyncFileError::EntrySizeMismatch { .. } | SyncFileError::EntryUnreadable { .. }
        ),
        "{e}"
    );
}

#[test]
fn missing_manifest_or_signature_is_refused() {
    let e = refused(read_request(&request_with(MANIFEST, None)));
    assert!(matches!(e, SyncFileError::ManifestMissing), "{e}");
    let e = refused(read_request(&request_with(SIGNATURE, None)));
    assert!(matches!(e, SyncFileError::SignatureMissing), "{e}");
}

#[test]
fn signatures_from_other_keys_or_schemes_are_refused() {
    let manifest = serde_json::to_vec_pretty(&request_manifest_json()).unwrap();
    let e = refused(read_request(&request_signed(
        &manifest,
        &authority_key(),
        "ed25519",
    )));
    assert!(matches!(e, SyncFileError::BadSignature), "{e}");

    let e = refused(read_request(&request_signed(
        &manifest,
        &satellite_key(),
        "rsa-pss",
    )));
    assert!(
        matches!(e, SyncFileError::UnknownScheme(ref s) if s == "rsa-pss"),
        "{e}"
    );

    let e = refused(read_request(&request_with(SIGNATURE, Some(b"not json"))));
    assert!(matches!(e, SyncFileError::SignatureFileInvalid(_)), "{e}");

    let e = refused(read_request(&request_with(
        SIGNATURE,
        Some(br#"{"scheme":"ed25519","signature":"AAAA"}"#),
    )));
    assert!(matches!(e, SyncFileError::BadSignature), "{e}");

    let e = refused(archive::read(
        &request_bytes(),
        &Limits::default(),
        "not a key",
    ));
    assert!(matches!(e, SyncFileError::PinnedKeyInvalid(_)), "{e}");
}

#[test]
fn the_signature_is_checked_before_the_manifest_is_parsed() {
    let e = refused(read_request(&request_with(MANIFEST, Some(b"{ not json"))));
    assert!(matches!(e, SyncFileError::BadSignature), "{e}");
}

#[test]
fn a_signed_but_malformed_manifest_is_refused() {
    let kp = satellite_key();
    let e = refused(read_request(&request_signed(b"{ not json", &kp, "ed25519")));
    assert!(matches!(e, SyncFileError::ManifestUnparseable(_)), "{e}");

    let mut m = request_manifest_json();
    m["format"] = "other-sync".into();
    let e = refused(read_request(&request_signed(
        &serde_json::to_vec(&m).unwrap(),
        &kp,
        "ed25519",
    )));
    assert!(matches!(e, SyncFileError::WrongFormat(_)), "{e}");

    let mut m = request_manifest_json();
    m["format_version"] = 2.into();
    let e = refused(read_request(&request_signed(
        &serde_json::to_vec(&m).unwrap(),
        &kp,
        "ed25519",
    )));
    assert!(matches!(e, SyncFileError::UnsupportedVersion(2)), "{e}");

    // The scheme named inside the signed bytes must agree too.
    let mut m = request_manifest_json();
    m["signature_scheme"] = "ed448".into();
    let e = refused(read_request(&request_signed(
        &serde_json::to_vec(&m).unwrap(),
        &kp,
        "ed25519",
    )));
    assert!(
        matches!(e, SyncFileError::UnknownScheme(ref s) if s == "ed448"),
        "{e}"
    );

    let mut m = request_manifest_json();
    m["surprise"] = true.into();
    let e = refused(read_request(&request_signed(
        &serde_json::to_vec(&m).unwrap(),
        &kp,
        "ed25519",
    )));
    assert!(matches!(e, SyncFileError::ManifestUnparseable(_)), "{e}");

    // A request must list exactly its three members and the summary.
    let mut m = request_manifest_json();
    m["members"].as_array_mut().unwrap().pop();
    let e = refused(read_request(&request_signed(
        &serde_json::to_vec(&m).unwrap(),
        &kp,
        "ed25519",
    )));
    assert!(matches!(e, SyncFileError::ManifestInvalid(_)), "{e}");
}

#[test]
fn members_must_match_the_manifest_exactly() {
    let e = refused(read_request(&request_with(CHANGES, None)));
    assert!(
        matches!(e, SyncFileError::MemberMissing(ref n) if n == CHANGES),
        "{e}"
    );

    let mut list = entries(&request_bytes());
    list.push((POOLS.to_string(), b"[]\n".to_vec()));
    let refs: Vec<(&str, &[u8])> = list
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let e = refused(read_request(&zip_of(&refs)));
    assert!(
        matches!(e, SyncFileError::MemberUnlisted(ref n) if n == POOLS),
        "{e}"
    );

    // Same length, different bytes: only the digest can tell.
    let original = archive::member_json(&instances()).unwrap();
    let tampered = String::from_utf8(original.clone())
        .unwrap()
        .replace("\"count\": 4", "\"count\": 9");
    assert_eq!(tampered.len(), original.len());
    let e = refused(read_request(&request_with(
        INSTANCES,
        Some(tampered.as_bytes()),
    )));
    assert!(
        matches!(e, SyncFileError::DigestMismatch(ref n) if n == INSTANCES),
        "{e}"
    );

    let longer = String::from_utf8(original)
        .unwrap()
        .replace("\"count\": 4", "\"count\": 40");
    let e = refused(read_request(&request_with(
        INSTANCES,
        Some(longer.as_bytes()),
    )));
    assert!(
        matches!(e, SyncFileError::SizeMismatch { ref name, .. } if name == INSTANCES),
        "{e}"
    );

    let e = refused(read_request(&request_with(
        SUMMARY,
        Some(b"nothing to see"),
    )));
    assert!(
        matches!(e, SyncFileError::SizeMismatch { ref name, .. } if name == SUMMARY),
        "{e}"
    );
}

#[test]
fn members_parse_strictly() {
    let file = read_request(&request_bytes()).unwrap();
    let e = archive::parse_member::<Ack>(&file, INSTANCES).unwrap_err();
    assert!(matches!(e, SyncFileError::MemberUnparseable { .. }), "{e}");
    let e = archive::parse_member::<Ack>(&file, ACK).unwrap_err();
    assert!(matches!(e, SyncFileError::MemberMissing(_)), "{e}");

    // A duplicated key is refused, even when signed properly.
    let dup = br#"{"request_sequence":1,"request_sequence":2,"changes_acknowledged_through":0,"authority_time":"x","instances_recorded":0}"#;
    let bytes = archive::write(
        response_header(),
        &[(POOLS, b"[]".to_vec()), (ACK, dup.to_vec())],
        "s",
        &authority_key(),
    )
    .unwrap();
    let file = archive::read(
        &bytes,
        &Limits::default(),
        &authority_key().public_key_b64(),
    )
    .unwrap();
    let e = archive::parse_member::<Ack>(&file, ACK).unwrap_err();
    assert!(e.to_string().contains("duplicate field"), "{e}");
}

/// A million instances must fit the default limits, with each record as the writer prints it.
#[test]
fn default_limits_carry_a_million_instances() {
    let sample: Vec<InstanceRecord> = (0..2000).map(instance).collect();
    let json = archive::member_json(&sample).unwrap();
    let per_record = json.len() as u64 / 2000;
    let unpacked = per_record * 1_000_000;
    let packed = zip_of(&[(INSTANCES, &json)]).len() as u64 * 500;
    let limits = Limits::default();
    eprintln!("per record {per_record} B, 1M: {unpacked} B unpacked, ~{packed} B packed");
    assert!(unpacked <= limits.max_entry_bytes);
    assert!(unpacked + 10 * 1024 * 1024 <= limits.max_unpacked_bytes);
    assert!(packed <= limits.max_archive_bytes);
    assert!(unpacked / packed <= limits.max_ratio);
}

/// The JSON Schemas in export/schemas must describe exactly what the writer produces.
mod schemas {
    use super::*;

    fn load(name: &str) -> Value {
        let text = std::fs::read_to_string(schemas_dir().join(name)).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        v
    }

    /// The object schema for one record: the schema itself or its single `items`.
    fn object_schema<'a>(root: &'a Value, v: &'a Value) -> &'a Value {
        let v = if v["type"] == "array" { &v["items"] } else { v };
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let key = r.trim_start_matches("#/$defs/");
                &root["$defs"][key]
            }
            None => v,
        }
    }

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    fn set(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        k.sort();
        k
    }

    /// `required` is what is always serialized; `properties` is everything that can be.
    fn check(schema: &Value, object: &Value, minimal: &Value, full: &Value) {
        assert_eq!(object["additionalProperties"], false);
        assert_eq!(
            set(&object["required"]),
            keys(minimal),
            "required of {object}"
        );
        assert_eq!(
            keys(&object["properties"]),
            keys(full),
            "properties of {object}"
        );
        let _ = schema;
    }

    #[test]
    fn required_and_properties_match_the_model() {
        let mut bare_info = satellite_info();
        bare_info.enrollment_token = None;
        let mut bare_instance = instance(1);
        bare_instance.hostname = None;
        let bare_change = Change {
            udi_pid: None,
            udi_serial_number: None,
            detail: None,
            ..changes()[0].clone()
        };
        let full_change = Change {
            detail: Some("d".into()),
            ..changes()[0].clone()
        };
        let line = pools()[0].licenses[1].clone();
        let bare_line = PoolLine {
            starts_at: None,
            ends_at: None,
            ..line.clone()
        };

        let s = load("satellite.schema.json");
        check(
            &s,
            object_schema(&s, &s),
            &to(&bare_info),
            &to(&satellite_info()),
        );

        let s = load("instances.schema.json");
        let inst = object_schema(&s, &s);
        check(&s, inst, &to(&bare_instance), &to(&instance(1)));
        let usage = object_schema(&s, &inst["properties"]["usage"]);
        check(
            &s,
            usage,
            &to(&instance(1).usage[0]),
            &to(&instance(1).usage[0]),
        );

        let s = load("changes.schema.json");
        check(
            &s,
            object_schema(&s, &s),
            &to(&bare_change),
            &to(&full_change),
        );

        let s = load("pools.schema.json");
        let pool = object_schema(&s, &s);
        check(&s, pool, &to(&pools()[0]), &to(&pools()[0]));
        let pl = object_schema(&s, &pool["properties"]["licenses"]);
        // `description` has a serde default, so a reader does not require it.
        let mut minimal = to(&bare_line);
        minimal.as_object_mut().unwrap().remove("description");
        check(&s, pl, &minimal, &to(&line));

        let s = load("ack.schema.json");
        check(&s, object_schema(&s, &s), &to(&ack()), &to(&ack()));

        let s = load("manifest.schema.json");
        let m = request_manifest_json();
        check(&s, object_schema(&s, &s), &m, &m);
        let d = object_schema(&s, &s["properties"]["members"]);
        check(&s, d, &m["members"][0], &m["members"][0]);

        let s = load("manifest.sig.schema.json");
        let sig = serde_json::to_value(ManifestSignature {
            scheme: "ed25519".into(),
            signature: "x".into(),
        })
        .unwrap();
        check(&s, object_schema(&s, &s), &sig, &sig);
    }

    #[test]
    fn the_samples_validate_against_the_schemas() {
        for (bytes, _) in [
            (request_bytes(), FileKind::Request),
            (response_bytes(), FileKind::Response),
        ] {
            for (name, data) in entries(&bytes) {
                if name == SUMMARY {
                    continue;
                }
                let schema_name = format!("{}.schema.json", name.trim_end_matches(".json"));
                let schema = load(&schema_name);
                let value: Value = serde_json::from_slice(&data).unwrap();
                let mut errors = Vec::new();
                validate(&schema, &schema, &value, &name, &mut errors);
                assert!(errors.is_empty(), "{name}: {errors:?}");
            }
        }
        // And the validator does catch something.
        let schema = load("ack.schema.json");
        let mut errors = Vec::new();
        validate(
            &schema,
            &schema,
            &serde_json::json!({"request_sequence": "1"}),
            "ack",
            &mut errors,
        );
        assert!(errors.len() >= 2, "{errors:?}");
    }

    /// The subset of JSON Schema the files use: type, const, enum, minimum, minLength,
    /// maxLength, properties, required, additionalProperties: false, items, $ref to $defs.
    fn validate(root: &Value, s: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let key = r.trim_start_matches("#/$defs/");
            return validate(root, &root["$defs"][key], v, at, errors);
        }
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            let ok = match t {
                "object" => v.is_object(),
                "array" => v.is_array(),
                "string" => v.is_string(),
                "integer" => v.is_u64() || v.is_i64(),
                "boolean" => v.is_boolean(),
                other => panic!("schema type {other} not handled"),
            };
            if !ok {
                errors.push(format!("{at}: not {t}"));
                return;
            }
        }
        if let Some(c) = s.get("const") {
            if c != v {
                errors.push(format!("{at}: not {c}"));
            }
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array) {
            if !e.contains(v) {
                errors.push(format!("{at}: not one of {e:?}"));
            }
        }
        if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_u64), v.as_u64()) {
            if n < min {
                errors.push(format!("{at}: below {min}"));
            }
        }
        if let Some(text) = v.as_str() {
            let len = text.chars().count() as u64;
            if s.get("minLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| len < m)
            {
                errors.push(format!("{at}: too short"));
            }
            if s.get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| len > m)
            {
                errors.push(format!("{at}: too long"));
            }
        }
        if let Some(obj) = v.as_object() {
            let props = s.get("properties").and_then(Value::as_object);
            for req in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !obj.contains_key(req.as_str().unwrap()) {
                    errors.push(format!("{at}: missing {req}"));
                }
            }
            for (k, child) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => validate(root, ps, child, &format!("{at}.{k}"), errors),
                    None if s["additionalProperties"] == false => {
                        errors.push(format!("{at}: unexpected {k}"))
                    }
                    None => {}
                }
            }
        }
        if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
            for (i, child) in arr.iter().enumerate() {
                validate(root, items, child, &format!("{at}[{i}]"), errors);
            }
        }
    }

    fn to<T: serde::Serialize>(v: &T) -> Value {
        serde_json::to_value(v).unwrap()
    }
}

#[test]
fn write_refuses_what_a_default_reader_would_refuse() {
    // Two hundred times and more: a bomb-like member is refused at the source.
    let zeros = vec![b' '; 4 * 1024 * 1024];
    let e = archive::write(
        response_header(),
        &[(POOLS, zeros), (ACK, archive::member_json(&ack()).unwrap())],
        "s",
        &authority_key(),
    )
    .unwrap_err();
    assert!(matches!(e, SyncFileError::RatioTooHigh { .. }), "{e}");
}

/// Many instances as one compact record per line, the way a satellite writes them.
fn instance_lines(n: u32) -> Vec<Vec<u8>> {
    let mut lines = vec![b"[\n".to_vec()];
    for i in 0..n {
        let mut line = if i > 0 { b",\n".to_vec() } else { Vec::new() };
        serde_json::to_writer(&mut line, &instance(i)).unwrap();
        lines.push(line);
    }
    lines.push(b"\n]\n".to_vec());
    lines
}

#[test]
fn a_streamed_member_gives_the_same_file_as_the_whole_member() {
    // Enough records for the deflater to take many separate writes across several blocks.
    let lines = instance_lines(20_000);
    let whole: Vec<u8> = lines.concat();
    let satellite = archive::member_json(&satellite_info()).unwrap();
    let changes = archive::member_json(&changes()).unwrap();
    let expected = archive::write(
        request_header(),
        &[
            (SATELLITE, satellite.clone()),
            (INSTANCES, whole.clone()),
            (CHANGES, changes.clone()),
        ],
        REQUEST_SUMMARY,
        &satellite_key(),
    )
    .unwrap();

    let mut streamed =
        archive::StreamedMember::new(INSTANCES, &request_header().created_at).unwrap();
    for line in &lines {
        streamed.write_all(line).unwrap();
    }
    assert_eq!(streamed.size(), whole.len() as u64);
    let bytes = archive::write_members(
        request_header(),
        vec![
            (CHANGES, archive::Body::Bytes(&changes)),
            (INSTANCES, archive::Body::Streamed(Box::new(streamed))),
            (SATELLITE, archive::Body::Bytes(&satellite)),
        ],
        REQUEST_SUMMARY,
        &satellite_key(),
    )
    .unwrap();
    assert_eq!(bytes.len(), expected.len());
    assert!(
        bytes == expected,
        "the streamed file differs from the whole one"
    );

    // And it reads back, signature and digests included, to the same records.
    let file = read_request(&bytes).unwrap();
    let back: Vec<InstanceRecord> = archive::parse_member(&file, INSTANCES).unwrap();
    assert_eq!(back.len(), 20_000);
    assert_eq!(back[12_345], instance(12_345));
}

#[test]
fn a_streamed_member_must_be_named_where_it_is_put() {
    let mut streamed = archive::StreamedMember::new(CHANGES, &request_header().created_at).unwrap();
    streamed.write_all(b"[]\n").unwrap();
    let satellite = archive::member_json(&satellite_info()).unwrap();
    let e = archive::write_members(
        request_header(),
        vec![
            (SATELLITE, archive::Body::Bytes(&satellite)),
            (INSTANCES, archive::Body::Streamed(Box::new(streamed))),
            (CHANGES, archive::Body::Bytes(b"[]\n")),
        ],
        "s",
        &satellite_key(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("instances.json was streamed as changes.json"),
        "{e}"
    );
}
