//! The shipped example configuration is accepted by the real binary, key for key.

mod common;

#[test]
fn example_config_loads_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/satellite.toml");
    let out = std::process::Command::new(common::bin())
        .args(["--config", cfg, "--data"])
        .arg(dir.path())
        .args(["account", "list"])
        .env("SATELLITE_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
        .env("SATELLITE_LOG", "warn")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("unknown key"), "{err}");
    // Every documented key of the config reference appears in the example.
    let text = std::fs::read_to_string(cfg).unwrap();
    for key in satellite::config::KEYS {
        assert!(text.contains(&format!("{key} =")), "example lacks {key}");
    }
}
