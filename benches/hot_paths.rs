//! Per-request costs on the device path: parsing one authorize Call Home message, and
//! the compliance work of one report (aggregate update plus the VA and instance views).

use criterion::{criterion_group, criterion_main, Criterion};
use satellite::domain::catalog::LicenseKind;
use satellite::domain::compliance::{apply_usage_delta, instance_view, va_summary, PoolLicense};
use satellite::gateway::{callhome, message};
use satellite::simulate::client::SimDevice;
use satellite::simulate::device::seed_scenario;
use std::collections::BTreeMap;
use std::hint::black_box;

fn parse_authorize(c: &mut Criterion) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut dev = SimDevice::new(seed_scenario(), "http://satellite").expect("device");
    let body = dev.authorize_request(chrono::Utc::now()).expect("request");
    c.bench_function(
        "parse one authorize message (XML + envelope + payload)",
        |b| {
            b.iter(|| {
                let msg = callhome::parse(black_box(body.as_bytes())).expect("parse");
                let env = message::decode_envelope(msg.smart_licensing_data().expect("data"))
                    .expect("envelope");
                let kind = env.request_kind().expect("kind");
                black_box(message::decode_payload(kind, &env.payload).expect("payload"));
            })
        },
    );
}

fn compliance_of_one_report(c: &mut Criterion) {
    let now = chrono::Utc::now();
    let pool = vec![
        PoolLicense {
            tag: "ESS-AC-100G-RTU-1".into(),
            kind: LicenseKind::Rtu,
            quantity: 5000,
            starts_at: None,
            ends_at: None,
        },
        PoolLicense {
            tag: "ESS-AC-400G-RTU-1".into(),
            kind: LicenseKind::Rtu,
            quantity: 500,
            starts_at: None,
            ends_at: None,
        },
        PoolLicense {
            tag: "ESS-AC-100G-SIA-3".into(),
            kind: LicenseKind::Sia,
            quantity: 5000,
            starts_at: None,
            ends_at: None,
        },
        PoolLicense {
            tag: "ADV-AC-100G-RTU-1".into(),
            kind: LicenseKind::Rtu,
            quantity: 2000,
            starts_at: None,
            ends_at: None,
        },
    ];
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    totals.insert("ESS-AC-100G-RTU-1".into(), 6200);
    totals.insert("ADV-AC-100G-RTU-1".into(), 1500);
    totals.insert("N560-4-SYS-E-TRK".into(), 7000);
    let old = vec![
        ("ESS-AC-100G-RTU-1".to_string(), 1u64),
        ("N560-4-SYS-E-TRK".to_string(), 1),
    ];
    let new = vec![
        ("ESS-AC-100G-RTU-1".to_string(), 2u64),
        ("N560-4-SYS-E-TRK".to_string(), 1),
    ];
    c.bench_function(
        "compliance of one report (delta + VA summary + instance view)",
        |b| {
            b.iter(|| {
                let mut t = totals.clone();
                apply_usage_delta(&mut t, &old, &new);
                let va = va_summary(&pool, &[], &t, now);
                black_box(instance_view(&new, &va, now, now));
            })
        },
    );
}

criterion_group!(benches, parse_authorize, compliance_of_one_report);
criterion_main!(benches);
