//! The shipped product catalog: entitlement tags, their printed descriptions and RTU hierarchy.
//! Pure data and lookups; it must never touch storage, the clock or the network.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What a license entitles: capacity to use (RTU), access to new software (SIA),
/// or nothing but being counted (tracking PIDs for chassis and line cards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LicenseKind {
    Rtu,
    Sia,
    Tracking,
}

impl LicenseKind {
    pub const ALL: [LicenseKind; 3] = [LicenseKind::Rtu, LicenseKind::Sia, LicenseKind::Tracking];

    pub fn as_str(self) -> &'static str {
        match self {
            LicenseKind::Rtu => "rtu",
            LicenseKind::Sia => "sia",
            LicenseKind::Tracking => "tracking",
        }
    }

    /// Accepts the stored spelling in any case, since operators type it on the CLI.
    pub fn parse(text: &str) -> Result<Self, CatalogError> {
        let wanted = text.trim();
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| CatalogError::UnknownKind(text.to_string()))
    }
}

impl fmt::Display for LicenseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LicenseKind {
    type Err = CatalogError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The two Flexible Consumption Model software suites. An Advantage RTU does not
/// stand in for an Essentials one: each tier is counted and SIA-covered on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Essentials,
    Advantage,
}

impl Tier {
    pub const ALL: [Tier; 2] = [Tier::Essentials, Tier::Advantage];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Essentials => "essentials",
            Tier::Advantage => "advantage",
        }
    }

    /// The leading element of the tier's tags (`ESS-...`, `ADV-...`).
    pub fn tag_prefix(self) -> &'static str {
        match self {
            Tier::Essentials => "ESS",
            Tier::Advantage => "ADV",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Tier::Essentials => "Essentials",
            Tier::Advantage => "Advantage",
        }
    }

    pub fn parse(text: &str) -> Result<Self, CatalogError> {
        let wanted = text.trim();
        Self::ALL
            .into_iter()
            .find(|tier| {
                tier.as_str().eq_ignore_ascii_case(wanted)
                    || tier.tag_prefix().eq_ignore_ascii_case(wanted)
            })
            .ok_or_else(|| CatalogError::UnknownTier(text.to_string()))
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CatalogError {
    #[error("unknown license kind {0:?}: expected rtu, sia or tracking")]
    UnknownKind(String),
    #[error("unknown tier {0:?}: expected essentials or advantage")]
    UnknownTier(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogEntry {
    pub tag: &'static str,
    /// Exactly as the router prints it after registration (`show license all`).
    pub description: &'static str,
    pub kind: LicenseKind,
    pub tier: Option<Tier>,
    pub family: &'static str,
    pub speed_gbps: Option<u32>,
}

/// How many characters of a description `show license summary` keeps before "...".
pub const SUMMARY_DESCRIPTION_CHARS: usize = 20;

impl CatalogEntry {
    /// The description as the License column of `show license summary` shows it.
    pub fn summary_label(&self) -> String {
        summary_label(self.description)
    }
}

/// Cuts a description the way `show license summary` does ("Access Essentials SW...").
pub fn summary_label(description: &str) -> String {
    if description.chars().count() <= SUMMARY_DESCRIPTION_CHARS {
        return description.to_string();
    }
    let mut label: String = description
        .chars()
        .take(SUMMARY_DESCRIPTION_CHARS)
        .collect();
    label.push_str("...");
    label
}

const fn rtu(
    tag: &'static str,
    description: &'static str,
    tier: Tier,
    speed_gbps: u32,
) -> CatalogEntry {
    CatalogEntry {
        tag,
        description,
        kind: LicenseKind::Rtu,
        tier: Some(tier),
        family: "AC",
        speed_gbps: Some(speed_gbps),
    }
}

const fn sia(
    tag: &'static str,
    description: &'static str,
    tier: Tier,
    speed_gbps: u32,
) -> CatalogEntry {
    CatalogEntry {
        tag,
        description,
        kind: LicenseKind::Sia,
        tier: Some(tier),
        family: "AC",
        speed_gbps: Some(speed_gbps),
    }
}

const fn tracking(
    tag: &'static str,
    description: &'static str,
    family: &'static str,
) -> CatalogEntry {
    CatalogEntry {
        tag,
        description,
        kind: LicenseKind::Tracking,
        tier: None,
        family,
        speed_gbps: None,
    }
}

// Descriptions of ESS-AC-100G-RTU-1, N560-4-SYS-E-TRK, A900-IMA8Z-TRK and
// A900-IMA8CS1ZM-TRK are the router's own words from the reference guide. For
// A900-IMA8CS1ZM-TRK the guide's wrapped "Description:" line lost the "+" that
// its heading line keeps; the heading is the unwrapped original, so it is used.
// The other members of each family follow the same wording, since the guide
// names their tags without printing their descriptions.
static CATALOG: [CatalogEntry; 19] = [
    rtu(
        "ESS-AC-10G-RTU-1",
        "Access Essentials SW Right-to-Use v1.0 per 10G",
        Tier::Essentials,
        10,
    ),
    rtu(
        "ESS-AC-100G-RTU-1",
        "Access Essentials SW Right-to-Use v1.0 per 100G",
        Tier::Essentials,
        100,
    ),
    rtu(
        "ESS-AC-400G-RTU-1",
        "Access Essentials SW Right-to-Use v1.0 per 400G",
        Tier::Essentials,
        400,
    ),
    rtu(
        "ADV-AC-10G-RTU-1",
        "Access Advantage SW Right-to-Use v1.0 per 10G",
        Tier::Advantage,
        10,
    ),
    rtu(
        "ADV-AC-100G-RTU-1",
        "Access Advantage SW Right-to-Use v1.0 per 100G",
        Tier::Advantage,
        100,
    ),
    rtu(
        "ADV-AC-400G-RTU-1",
        "Access Advantage SW Right-to-Use v1.0 per 400G",
        Tier::Advantage,
        400,
    ),
    sia(
        "ESS-AC-10G-SIA-3",
        "Access Essentials SW Innovation Access v1.0 per 10G, 3 Years",
        Tier::Essentials,
        10,
    ),
    sia(
        "ESS-AC-100G-SIA-3",
        "Access Essentials SW Innovation Access v1.0 per 100G, 3 Years",
        Tier::Essentials,
        100,
    ),
    sia(
        "ESS-AC-400G-SIA-3",
        "Access Essentials SW Innovation Access v1.0 per 400G, 3 Years",
        Tier::Essentials,
        400,
    ),
    sia(
        "ADV-AC-10G-SIA-3",
        "Access Advantage SW Innovation Access v1.0 per 10G, 3 Years",
        Tier::Advantage,
        10,
    ),
    sia(
        "ADV-AC-100G-SIA-3",
        "Access Advantage SW Innovation Access v1.0 per 100G, 3 Years",
        Tier::Advantage,
        100,
    ),
    sia(
        "ADV-AC-400G-SIA-3",
        "Access Advantage SW Innovation Access v1.0 per 400G, 3 Years",
        Tier::Advantage,
        400,
    ),
    tracking(
        "N560-4-SYS-TRK",
        "Tracking PID for N560-4-SYS Vortex ATO",
        "N560",
    ),
    tracking(
        "N560-4-SYS-E-TRK",
        "Tracking PID for N560-4-SYS-E Vortex ATO",
        "N560",
    ),
    tracking(
        "N560-4-SYS-CC-TRK",
        "Tracking PID for N560-4-SYS-CC Vortex ATO",
        "N560",
    ),
    tracking(
        "N560-4-SYSE-CC-TRK",
        "Tracking PID for N560-4-SYSE-CC Vortex ATO",
        "N560",
    ),
    tracking(
        "N560-IMA2C-TRK",
        "Tracking PID for NCS 560 2-port 100GE Interface Module",
        "N560",
    ),
    tracking(
        "A900-IMA8Z-TRK",
        "Tracking PID for ASR 900 8-port 10GE Interface Module",
        "A900",
    ),
    tracking(
        "A900-IMA8CS1ZM-TRK",
        "Tracking PID for ASR 900 8/16-port 1GE + 1-port 10GE Interface Module",
        "A900",
    ),
];

pub fn all() -> &'static [CatalogEntry] {
    &CATALOG
}

/// Tags are matched exactly: the router sends them verbatim and Cisco's are upper case.
pub fn lookup(tag: &str) -> Option<&'static CatalogEntry> {
    CATALOG.iter().find(|entry| entry.tag == tag)
}

/// The printed description of a tag, empty for tags the catalog does not know
/// (the router shows an empty `Description:` for those too).
pub fn description(tag: &str) -> &'static str {
    lookup(tag).map_or("", |entry| entry.description)
}

/// The kind of a tag an operator added but the catalog does not ship, read from
/// Cisco's naming convention (`...-RTU-n`, `...-SIA-n`, `...-TRK`).
pub fn infer_kind(tag: &str) -> Option<LicenseKind> {
    let tag = tag.trim().to_ascii_uppercase();
    if tag.ends_with("-TRK") {
        Some(LicenseKind::Tracking)
    } else if tag.contains("-RTU-") || tag.ends_with("-RTU") {
        Some(LicenseKind::Rtu)
    } else if tag.contains("-SIA-") || tag.ends_with("-SIA") {
        Some(LicenseKind::Sia)
    } else {
        None
    }
}

/// Catalog first, then the naming convention.
pub fn kind_of(tag: &str) -> Option<LicenseKind> {
    lookup(tag)
        .map(|entry| entry.kind)
        .or_else(|| infer_kind(tag))
}

/// Catalog first, then the `ESS-`/`ADV-` prefix, so operator-added tags of a
/// suite still count towards that suite's SIA requirement.
pub fn tier_of(tag: &str) -> Option<Tier> {
    if let Some(entry) = lookup(tag) {
        return entry.tier;
    }
    let prefix = tag.split('-').next()?;
    Tier::ALL
        .into_iter()
        .find(|tier| tier.tag_prefix().eq_ignore_ascii_case(prefix))
}

/// The structured reading of an FCM suite tag such as `ADV-AC-400G-RTU-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuiteTag<'a> {
    pub tier: Tier,
    pub family: &'a str,
    pub speed_gbps: u32,
    pub kind: LicenseKind,
    /// The trailing element: the version for RTUs, the term in years for SIA.
    pub suffix: &'a str,
}

pub fn parse_suite_tag(tag: &str) -> Option<SuiteTag<'_>> {
    let mut parts = tag.split('-');
    let tier_part = parts.next()?;
    let family = parts.next()?;
    let speed_part = parts.next()?;
    let kind_part = parts.next()?;
    let suffix = parts.next()?;
    if parts.next().is_some() || family.is_empty() || suffix.is_empty() {
        return None;
    }
    let tier = Tier::ALL
        .into_iter()
        .find(|tier| tier.tag_prefix() == tier_part)?;
    let speed_gbps = speed_part.strip_suffix('G')?.parse::<u32>().ok()?;
    let kind = match kind_part {
        "RTU" => LicenseKind::Rtu,
        "SIA" => LicenseKind::Sia,
        _ => return None,
    };
    Some(SuiteTag {
        tier,
        family,
        speed_gbps,
        kind,
        suffix,
    })
}

/// One step of the smart license hierarchy: one `higher` unit may stand in for
/// `factor` units of `lower` when `lower` falls short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Substitution {
    pub higher: &'static str,
    pub lower: &'static str,
    pub factor: u32,
}

/// Speed steps of the hierarchy as (higher, lower, factor). The guide states only
/// 400G -> 4 x 100G; a 100G -> 10G conversion is not documented for these suites,
/// so it is deliberately absent rather than guessed.
const SPEED_STEPS: [(u32, u32, u32); 1] = [(400, 100, 4)];

static HIERARCHY: [Substitution; 2] = [
    Substitution {
        higher: "ESS-AC-400G-RTU-1",
        lower: "ESS-AC-100G-RTU-1",
        factor: 4,
    },
    Substitution {
        higher: "ADV-AC-400G-RTU-1",
        lower: "ADV-AC-100G-RTU-1",
        factor: 4,
    },
];

/// The hierarchy among shipped tags. Only RTUs appear: the hierarchy never applies to SIA.
pub fn hierarchy() -> &'static [Substitution] {
    &HIERARCHY
}

/// How many `lower` units one `higher` unit covers, if any. Besides the shipped
/// table this applies the same rule to operator-added RTU tags of any family:
/// same tier, family and version, one documented speed step apart.
pub fn substitution_factor(higher: &str, lower: &str) -> Option<u32> {
    if let Some(step) = HIERARCHY
        .iter()
        .find(|step| step.higher == higher && step.lower == lower)
    {
        return Some(step.factor);
    }
    let high = parse_suite_tag(higher)?;
    let low = parse_suite_tag(lower)?;
    if high.kind != LicenseKind::Rtu
        || low.kind != LicenseKind::Rtu
        || high.tier != low.tier
        || high.family != low.family
        || high.suffix != low.suffix
    {
        return None;
    }
    SPEED_STEPS
        .iter()
        .find(|(from, to, _)| *from == high.speed_gbps && *to == low.speed_gbps)
        .map(|(_, _, factor)| *factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_descriptions_are_verbatim() {
        let expected = [
            (
                "ESS-AC-100G-RTU-1",
                "Access Essentials SW Right-to-Use v1.0 per 100G",
            ),
            (
                "N560-4-SYS-E-TRK",
                "Tracking PID for N560-4-SYS-E Vortex ATO",
            ),
            (
                "A900-IMA8Z-TRK",
                "Tracking PID for ASR 900 8-port 10GE Interface Module",
            ),
            (
                "A900-IMA8CS1ZM-TRK",
                "Tracking PID for ASR 900 8/16-port 1GE + 1-port 10GE Interface Module",
            ),
        ];
        for (tag, description) in expected {
            assert_eq!(lookup(tag).map(|e| e.description), Some(description));
        }
    }

    #[test]
    fn summary_labels_match_the_seed_summary() {
        let label = |tag: &str| lookup(tag).map(CatalogEntry::summary_label);
        assert_eq!(
            label("ESS-AC-100G-RTU-1").as_deref(),
            Some("Access Essentials SW...")
        );
        assert_eq!(
            label("N560-4-SYS-E-TRK").as_deref(),
            Some("Tracking PID for N56...")
        );
        assert_eq!(
            label("A900-IMA8Z-TRK").as_deref(),
            Some("Tracking PID for ASR...")
        );
        assert_eq!(summary_label("short"), "short");
    }

    #[test]
    fn every_tag_named_in_the_seed_is_shipped() {
        for tag in [
            "ESS-AC-100G-RTU-1",
            "ADV-AC-100G-RTU-1",
            "ESS-AC-10G-RTU-1",
            "ADV-AC-10G-RTU-1",
            "N560-4-SYS-TRK",
            "N560-4-SYS-E-TRK",
            "N560-4-SYS-CC-TRK",
            "N560-4-SYSE-CC-TRK",
            "N560-IMA2C-TRK",
            "A900-IMA8Z-TRK",
            "A900-IMA8CS1ZM-TRK",
        ] {
            assert!(lookup(tag).is_some(), "{tag} missing");
        }
    }

    #[test]
    fn entries_agree_with_their_tags() {
        let mut seen = std::collections::BTreeSet::new();
        for entry in all() {
            assert!(seen.insert(entry.tag), "duplicate {}", entry.tag);
            assert_eq!(infer_kind(entry.tag), Some(entry.kind), "{}", entry.tag);
            assert!(!entry.description.is_empty());
            match parse_suite_tag(entry.tag) {
                Some(parts) => {
                    assert_eq!(Some(parts.tier), entry.tier);
                    assert_eq!(parts.family, entry.family);
                    assert_eq!(Some(parts.speed_gbps), entry.speed_gbps);
                    assert_eq!(parts.kind, entry.kind);
                }
                None => {
                    assert_eq!(entry.kind, LicenseKind::Tracking);
                    assert_eq!(entry.tier, None);
                }
            }
        }
    }

    #[test]
    fn hierarchy_is_rtu_only_and_matches_the_rule() {
        for step in hierarchy() {
            let high = lookup(step.higher).map(|e| e.kind);
            let low = lookup(step.lower).map(|e| e.kind);
            assert_eq!(high, Some(LicenseKind::Rtu));
            assert_eq!(low, Some(LicenseKind::Rtu));
            assert_eq!(
                lookup(step.higher).map(|e| e.tier),
                lookup(step.lower).map(|e| e.tier)
            );
        }
        for high in all() {
            for low in all() {
                let listed = hierarchy()
                    .iter()
                    .find(|s| s.higher == high.tag && s.lower == low.tag)
                    .map(|s| s.factor);
                let parsed = parse_suite_tag(high.tag).zip(parse_suite_tag(low.tag));
                let by_rule = parsed.and_then(|(h, l)| {
                    (h.kind == LicenseKind::Rtu
                        && l.kind == LicenseKind::Rtu
                        && h.tier == l.tier
                        && h.family == l.family
                        && h.speed_gbps == 400
                        && l.speed_gbps == 100)
                        .then_some(4)
                });
                assert_eq!(listed, by_rule, "{} -> {}", high.tag, low.tag);
                assert_eq!(substitution_factor(high.tag, low.tag), listed);
            }
        }
        assert_eq!(
            substitution_factor("ESS-AC-400G-SIA-3", "ESS-AC-100G-SIA-3"),
            None
        );
        assert_eq!(
            substitution_factor("ADV-AC-400G-RTU-1", "ESS-AC-100G-RTU-1"),
            None
        );
        assert_eq!(
            substitution_factor("ESS-CE-400G-RTU-1", "ESS-CE-100G-RTU-1"),
            Some(4)
        );
    }

    #[test]
    fn inference_for_operator_tags() {
        assert_eq!(infer_kind("ESS-CE-100G-RTU-1"), Some(LicenseKind::Rtu));
        assert_eq!(infer_kind("ADV-CE-100G-SIA-5"), Some(LicenseKind::Sia));
        assert_eq!(infer_kind("NCS-57C3-TRK"), Some(LicenseKind::Tracking));
        assert_eq!(infer_kind("SOMETHING-ELSE"), None);
        assert_eq!(kind_of("ESS-AC-100G-RTU-1"), Some(LicenseKind::Rtu));
        assert_eq!(tier_of("ADV-CE-100G-SIA-5"), Some(Tier::Advantage));
        assert_eq!(tier_of("NCS-57C3-TRK"), None);
        assert_eq!(tier_of("N560-4-SYS-E-TRK"), None);
    }

    #[test]
    fn kind_and_tier_round_trip() {
        for kind in LicenseKind::ALL {
            assert_eq!(LicenseKind::parse(kind.as_str()), Ok(kind));
        }
        assert_eq!(LicenseKind::parse(" RTU "), Ok(LicenseKind::Rtu));
        assert!(LicenseKind::parse("perpetual").is_err());
        for tier in Tier::ALL {
            assert_eq!(Tier::parse(tier.as_str()), Ok(tier));
            assert_eq!(Tier::parse(tier.tag_prefix()), Ok(tier));
        }
        assert!(Tier::parse("premier").is_err());
    }
}
