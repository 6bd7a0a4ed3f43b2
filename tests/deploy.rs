//! The shipped deployment files: example configuration, systemd unit, container file, compose
//! file and its bootstrap script, checked for shape and run for real where this machine can.

mod common;

use common::{Server, Spawn};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name)
}

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

#[test]
fn every_config_key_is_in_the_readme_table() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for key in satellite::config::KEYS {
        assert!(
            readme
                .lines()
                .any(|l| l.starts_with('|') && l.contains(&format!("`{key}`"))),
            "README's configuration table lacks {key}"
        );
    }
}

// ---------------------------------------------------------------- systemd

/// Keys the unit may use, per section; anything else is a typo systemd would only warn about.
const UNIT_KEYS: &[(&str, &[&str])] = &[
    (
        "Unit",
        &[
            "Description",
            "Documentation",
            "After",
            "Wants",
            "Requires",
            "Before",
        ],
    ),
    (
        "Service",
        &[
            "Type",
            "User",
            "Group",
            "ExecStart",
            "ExecReload",
            "StateDirectory",
            "StateDirectoryMode",
            "ConfigurationDirectory",
            "Environment",
            "EnvironmentFile",
            "UMask",
            "Restart",
            "RestartSec",
            "TimeoutStopSec",
            "KillSignal",
            "AmbientCapabilities",
            "CapabilityBoundingSet",
            "NoNewPrivileges",
            "ProtectSystem",
            "ProtectHome",
            "PrivateTmp",
            "PrivateDevices",
            "ProtectKernelTunables",
            "ProtectKernelModules",
            "ProtectControlGroups",
            "RestrictAddressFamilies",
            "RestrictNamespaces",
            "LockPersonality",
            "MemoryDenyWriteExecute",
            "SystemCallArchitectures",
            "LimitNOFILE",
            "ReadWritePaths",
        ],
    ),
    ("Install", &["WantedBy", "RequiredBy", "Alias"]),
];

/// (section, key, value) of every setting; panics on a line that is none of comment,
/// blank, `[Section]` or `Key=Value` with a key known for its section.
fn parse_unit(text: &str) -> Vec<(String, String, String)> {
    let mut section: Option<String> = None;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        let n = n + 1;
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(!line.ends_with('\\'), "line {n}: keep settings on one line");
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            assert!(
                UNIT_KEYS.iter().any(|(s, _)| *s == name),
                "line {n}: unknown section [{name}]"
            );
            section = Some(name.to_string());
            continue;
        }
        let sec = section
            .clone()
            .unwrap_or_else(|| panic!("line {n}: setting before any section"));
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {n}: not Key=Value: {line:?}"));
        let known = UNIT_KEYS
            .iter()
            .find(|(s, _)| *s == sec)
            .map(|(_, k)| *k)
            .unwrap_or(&[]);
        assert!(known.contains(&k), "line {n}: unknown key {k} in [{sec}]");
        assert!(!v.trim().is_empty(), "line {n}: {k} has no value");
        out.push((sec, k.to_string(), v.to_string()));
    }
    out
}

#[test]
fn systemd_unit_is_well_formed_and_runs_serve_as_an_unprivileged_user() {
    let path = deploy("satellite.service");
    let text = std::fs::read_to_string(&path).unwrap();
    let settings = parse_unit(&text);
    let get = |k: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(_, key, _)| key == k)
            .map(|(_, _, v)| v.as_str())
            .collect()
    };
    let exec = get("ExecStart");
    assert_eq!(exec.len(), 1);
    assert!(
        exec[0].starts_with('/') && exec[0].trim_end().ends_with(" serve"),
        "{exec:?}"
    );
    assert_eq!(get("User"), ["satellite"]);
    assert_eq!(get("WantedBy"), ["multi-user.target"]);
    // Environment= names real settings.
    for env in get("Environment") {
        let name = env.split('=').next().unwrap();
        let key = name
            .strip_prefix("SATELLITE_")
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            satellite::config::KEYS.contains(&key.as_str()),
            "unknown setting {name}"
        );
    }

    // systemd's own verdict where its tool is installed (`.ci/test` does not install it).
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze not installed: checked the syntax only");
        return;
    };
    assert!(version.status.success());
    let dir = tempfile::tempdir().unwrap();
    // verify insists that ExecStart's program exists: point it at the binary under test.
    let unit = dir.path().join("satellite.service");
    std::fs::write(
        &unit,
        text.replace(
            "/usr/local/bin/satellite",
            &common::bin().display().to_string(),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {err}");
    // It only warns about unknown keys and bad values; a warning naming the unit is a failure.
    let complaints: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("satellite.service"))
        .collect();
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify: {complaints:?}"
    );
}

// ---------------------------------------------------------------- container file

/// (instruction, arguments) with continuation lines joined and comments dropped.
fn containerfile() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(deploy("Containerfile")).unwrap();
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(t);
                let (i, rest) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((
                    i.to_string(),
                    rest.split_whitespace().collect::<Vec<_>>().join(" "),
                ));
                current.clear();
            }
        }
    }
    assert!(
        current.is_empty(),
        "Containerfile ends inside a continued line"
    );
    out
}

const INSTRUCTIONS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

fn json_words(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not a JSON array {s:?}: {e}"))
}

#[test]
fn containerfile_builds_in_two_stages_and_runs_unprivileged_with_a_healthcheck() {
    let ins = containerfile();
    for (i, _) in &ins {
        assert!(
            INSTRUCTIONS.contains(&i.as_str()),
            "unknown instruction {i}"
        );
    }
    let froms: Vec<&String> = ins
        .iter()
        .filter(|(i, _)| i == "FROM")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert_eq!(froms[0], "rust:1.95-bookworm AS builder");
    assert_eq!(froms[1], "debian:bookworm-slim");
    let runtime_start = ins.iter().rposition(|(i, _)| i == "FROM").unwrap();
    let (build, run) = ins.split_at(runtime_start);
    assert!(build
        .iter()
        .any(|(i, a)| i == "RUN" && a.contains("cargo build --release --locked")));
    // Every build input named exists, so the COPY lines do not fail on a fresh checkout.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (_, a) in build.iter().filter(|(i, _)| i == "COPY") {
        let words: Vec<&str> = a.split_whitespace().collect();
        for src in &words[..words.len() - 1] {
            assert!(root.join(src).exists(), "COPY source {src} missing");
        }
    }
    let has = |i: &str, a: &str| run.iter().any(|(x, y)| x == i && y == a);
    assert!(run
        .iter()
        .any(|(i, a)| i == "RUN" && a.contains("ca-certificates")));
    assert!(run
        .iter()
        .any(|(i, a)| i == "COPY" && a.starts_with("--from=builder ")));
    assert!(has("USER", "satellite"));
    assert!(has("VOLUME", "/var/lib/satellite"));
    assert!(has("EXPOSE", "8443 80 443"));
    assert!(has("ENV", "SATELLITE_DATA=/var/lib/satellite"));
    let user_at = run.iter().position(|(i, _)| i == "USER").unwrap();
    assert!(
        !run[user_at..].iter().any(|(i, _)| i == "RUN"),
        "nothing runs as root after USER"
    );
    // The commands the image runs are commands of this binary.
    let entry = json_words(&run.iter().find(|(i, _)| i == "ENTRYPOINT").unwrap().1);
    let cmd = json_words(&run.iter().find(|(i, _)| i == "CMD").unwrap().1);
    assert_eq!(entry, ["satellite"]);
    assert_eq!(cmd, ["serve"]);
    let health = &run.iter().find(|(i, _)| i == "HEALTHCHECK").unwrap().1;
    let probe = json_words(health.split_once("CMD ").unwrap().1);
    assert_eq!(probe[..2], ["satellite", "healthcheck"]);
    let mut help = Command::new(common::bin());
    help.args(&probe[1..]).arg("--help");
    assert!(
        help.output().unwrap().status.success(),
        "{probe:?} is not a valid command"
    );
}

#[test]
fn healthcheck_probes_the_device_listener_and_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    // Default URL: the configured device HTTP listener, as in the container.
    let out = Command::new(common::bin())
        .args(["healthcheck"])
        .env("SATELLITE_DEVICE_HTTP_ADDR", &s.device_http)
        .env("SATELLITE_DATA", dir.path().join("not-created"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok http://"));
    assert!(
        !dir.path().join("not-created").exists(),
        "the probe creates nothing"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = Command::new(common::bin())
        .args([
            "healthcheck",
            "--url",
            &format!("http://{closed}/healthz"),
            "--timeout",
            "2",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    s.stop();
}

// ---------------------------------------------------------------- compose

/// The part of YAML compose files use here: block maps, block sequences of scalars,
/// flow sequences of scalars, comments. Anything else fails the parse.
#[derive(Debug, Clone, PartialEq)]
enum Yaml {
    Scalar(String),
    Seq(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn at(&self, path: &[&str]) -> &Yaml {
        path.iter().fold(self, |n, k| {
            n.get(k).unwrap_or_else(|| panic!("no {k} in {path:?}"))
        })
    }
    fn keys(&self) -> Vec<&str> {
        match self {
            Yaml::Map(m) => m.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }
    fn str(&self) -> &str {
        match self {
            Yaml::Scalar(s) => s,
            o => panic!("not a scalar: {o:?}"),
        }
    }
    fn strs(&self) -> Vec<&str> {
        match self {
            Yaml::Seq(items) => items.iter().map(Yaml::str).collect(),
            o => panic!("not a sequence: {o:?}"),
        }
    }
}

fn scalar(s: &str) -> Yaml {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        let items: Vec<String> = serde_json::from_str(&format!("[{inner}]"))
            .unwrap_or_else(|e| panic!("flow sequence {s:?} must hold quoted strings: {e}"));
        return Yaml::Seq(items.into_iter().map(Yaml::Scalar).collect());
    }
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
            return Yaml::Scalar(inner.to_string());
        }
    }
    assert!(
        !s.starts_with(['{', '&', '*', '|', '>', '!']),
        "unsupported YAML: {s:?}"
    );
    Yaml::Scalar(s.to_string())
}

fn parse_yaml(text: &str) -> Yaml {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .inspect(|l| assert!(!l.contains('\t'), "tab in YAML: {l:?}"))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| (l.len() - l.trim_start().len(), l.trim()))
        .collect();
    let mut i = 0;
    let doc = parse_block(&lines, &mut i, 0);
    assert_eq!(i, lines.len(), "unparsed YAML from {:?}", lines.get(i));
    doc
}

fn parse_block(lines: &[(usize, &str)], i: &mut usize, indent: usize) -> Yaml {
    let seq = lines[*i].1.starts_with("- ");
    let mut items = Vec::new();
    let mut map = Vec::new();
    while *i < lines.len() {
        let (ind, text) = lines[*i];
        if ind < indent {
            break;
        }
        assert_eq!(ind, indent, "bad indentation at {text:?}");
        if seq {
            let item = text
                .strip_prefix("- ")
                .unwrap_or_else(|| panic!("mixed list/map at {text:?}"));
            items.push(scalar(item));
            *i += 1;
            continue;
        }
        let (key, value) = match text.split_once(": ") {
            Some((k, v)) => (k, v),
            None => (
                text.strip_suffix(':')
                    .unwrap_or_else(|| panic!("not key: value: {text:?}")),
                "",
            ),
        };
        let key = match scalar(key) {
            Yaml::Scalar(k) => k,
            o => panic!("bad key {o:?}"),
        };
        assert!(!map.iter().any(|(k, _)| *k == key), "duplicate key {key}");
        *i += 1;
        let node = if !value.trim().is_empty() {
            scalar(value)
        } else if *i < lines.len() && lines[*i].0 > indent {
            parse_block(lines, i, lines[*i].0)
        } else {
            Yaml::Scalar(String::new())
        };
        map.push((key, node));
    }
    if seq {
        Yaml::Seq(items)
    } else {
        Yaml::Map(map)
    }
}

#[test]
fn compose_runs_an_authority_and_a_satellite_from_one_image() {
    let doc = parse_yaml(&std::fs::read_to_string(deploy("compose.yaml")).unwrap());
    assert_eq!(doc.keys(), ["name", "services", "volumes"]);
    let services = doc.at(&["services"]);
    assert_eq!(services.keys(), ["authority", "bootstrap", "satellite"]);
    let image = doc.at(&["services", "authority", "image"]).str();
    let exposed: BTreeSet<&str> = ["8443", "80", "443"].into();
    let declared: BTreeSet<&str> = doc.at(&["volumes"]).keys().into_iter().collect();
    let mut used = BTreeSet::new();
    for name in services.keys() {
        let s = services.at(&[name]);
        assert_eq!(s.at(&["image"]).str(), image, "{name} uses another image");
        for v in s.get("volumes").map(Yaml::strs).unwrap_or_default() {
            let src = v.split(':').next().unwrap();
            if src.starts_with('.') || src.starts_with('/') {
                assert!(deploy(src).exists(), "{name}: bind source {src} missing");
            } else {
                assert!(declared.contains(src), "{name}: volume {src} not declared");
                used.insert(src);
            }
        }
        for p in s.get("ports").map(Yaml::strs).unwrap_or_default() {
            let inside = p.rsplit(':').next().unwrap();
            assert!(
                exposed.contains(inside),
                "{name}: port {inside} is not exposed"
            );
        }
        if let Some(deps) = s.get("depends_on") {
            for dep in deps.keys() {
                assert!(
                    services.get(dep).is_some(),
                    "{name} depends on unknown {dep}"
                );
                let cond = deps.at(&[dep, "condition"]).str();
                assert!(
                    [
                        "service_started",
                        "service_healthy",
                        "service_completed_successfully"
                    ]
                    .contains(&cond),
                    "{name}: condition {cond}"
                );
            }
        }
        if let Some(env) = s.get("environment") {
            for k in env.keys() {
                let setting = k
                    .strip_prefix("SATELLITE_")
                    .unwrap_or_else(|| panic!("{name}: {k}"));
                let known = satellite::config::KEYS
                    .contains(&setting.to_ascii_lowercase().as_str())
                    || ["ADMIN_PASSWORD", "LOG", "CONFIG"].contains(&setting)
                    || (name == "bootstrap" && ["ACCOUNT", "VA", "SITE"].contains(&setting));
                assert!(known, "{name}: {k} is no setting");
            }
        }
    }
    assert_eq!(used, declared, "every named volume is used");
    assert_eq!(
        doc.at(&["services", "authority", "command"]).strs(),
        ["serve", "--role", "authority"]
    );
    assert_eq!(
        doc.at(&["services", "satellite", "command"]).strs(),
        ["serve", "--role", "satellite"]
    );
    assert_eq!(
        doc.at(&["services", "authority", "build", "dockerfile"])
            .str(),
        "deploy/Containerfile"
    );
    assert_eq!(
        doc.at(&[
            "services",
            "satellite",
            "depends_on",
            "bootstrap",
            "condition"
        ])
        .str(),
        "service_completed_successfully"
    );
    let script = deploy("compose-bootstrap.sh");
    let st = Command::new("sh").arg("-n").arg(&script).status().unwrap();
    assert!(st.success(), "compose-bootstrap.sh has a syntax error");
}

#[test]
fn yaml_subset_parser_refuses_what_it_does_not_understand() {
    for bad in [
        "a:\n  b: 1\n c: 2\n",
        "a:\n\tb: 1\n",
        "a: {b: 1}\n",
        "a: 1\na: 2\n",
    ] {
        let r = std::panic::catch_unwind(|| parse_yaml(bad));
        assert!(r.is_err(), "{bad:?} parsed");
    }
    assert_eq!(
        parse_yaml("a:\n  - x\n  - \"y\"\nb: [\"p\", \"q\"]\n"),
        Yaml::Map(vec![
            ("a".into(), Yaml::Seq(vec![scalar("x"), scalar("y")])),
            ("b".into(), Yaml::Seq(vec![scalar("p"), scalar("q")])),
        ])
    );
}

/// The bootstrap service's script, run here against a real authority: what compose does
/// without a container engine.
#[test]
fn compose_bootstrap_enrolls_a_satellite_and_is_idempotent() {
    let root = tempfile::tempdir().unwrap();
    let auth_dir = root.path().join("authority");
    let site_dir = root.path().join("site");
    let authority = Spawn::new(&auth_dir).role("authority").start();
    let bin_dir = common::bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let url = format!("https://127.0.0.1:{}", common::port_of(&authority.console));
    let run = || {
        Command::new("sh")
            .arg(deploy("compose-bootstrap.sh"))
            .env("PATH", &path)
            .env("BOOTSTRAP_AUTHORITY_DATA", &auth_dir)
            .env("BOOTSTRAP_SATELLITE_DATA", &site_dir)
            .env("BOOTSTRAP_UPSTREAM_URL", &url)
            .env("SATELLITE_ACCOUNT", "Lab, Inc.")
            .env("SATELLITE_VA", "CORE")
            .env("SATELLITE_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
            .env_remove("SATELLITE_DATA")
            .output()
            .unwrap()
    };
    let first = run();
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "bootstrap failed: {err}");
    assert!(String::from_utf8_lossy(&first.stdout).contains("enrolled as site-1"));
    let status = common::ok(&site_dir, &["sync", "status", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["enrolled"], true, "{v}");
    assert!(v["last_success_at"].is_string(), "{v}");
    assert_eq!(
        common::ok(&site_dir, &["va", "list", "Lab, Inc."]).trim(),
        "CORE"
    );
    let sats = common::ok(&auth_dir, &["satellites"]);
    assert!(
        sats.contains("site-1") && sats.contains("enrolled"),
        "{sats}"
    );
    let again = run();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));
    authority.stop();
}
