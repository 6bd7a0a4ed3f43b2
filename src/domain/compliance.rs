//! Licensing semantics: pool against usage per virtual account, RTU hierarchy, SIA, grace and expiry clocks.
//! Pure functions of their inputs; the caller passes the time, and nothing here may do I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::catalog::{self, LicenseKind, Tier};

/// SIA grace allowance per instance, cumulative over all of its out-of-compliance spells.
pub const GRACE_PERIOD_DAYS: i64 = 90;
pub const GRACE_PERIOD: TimeDelta = TimeDelta::days(GRACE_PERIOD_DAYS);
pub const GRACE_PERIOD_SECONDS: i64 = GRACE_PERIOD_DAYS * 86_400;
/// Communication deadline after the last successful authorization.
pub const AUTHORIZATION_VALIDITY_DAYS: i64 = 90;
/// When a device is told to come back for its next authorization.
pub const NEXT_COMMUNICATION_DAYS: i64 = 30;
/// Lifetime of an ID certificate from its last issue or renewal.
pub const REGISTRATION_VALIDITY_DAYS: i64 = 365;
/// Devices renew their ID certificate every six months.
pub const RENEWAL_AFTER_DAYS: i64 = 182;
pub const EVAL_DAYS: i64 = 90;
/// Initial SIA subscription term, for callers that create SIA licenses without an end date.
pub const SIA_TERM_YEARS: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ComplianceError {
    #[error("unknown entitlement status {0:?}")]
    UnknownStatus(String),
    #[error("unknown SIA reason {0:?}")]
    UnknownSiaReason(String),
}

/// Status of one entitlement, of an instance or of a virtual account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntitlementStatus {
    Authorized,
    OutOfCompliance,
    NotAuthorized,
    AuthorizationExpired,
    Invalid,
}

impl EntitlementStatus {
    pub const ALL: [EntitlementStatus; 5] = [
        EntitlementStatus::Authorized,
        EntitlementStatus::OutOfCompliance,
        EntitlementStatus::NotAuthorized,
        EntitlementStatus::AuthorizationExpired,
        EntitlementStatus::Invalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntitlementStatus::Authorized => "AUTHORIZED",
            EntitlementStatus::OutOfCompliance => "OUT_OF_COMPLIANCE",
            EntitlementStatus::NotAuthorized => "NOT_AUTHORIZED",
            EntitlementStatus::AuthorizationExpired => "AUTHORIZATION_EXPIRED",
            EntitlementStatus::Invalid => "INVALID",
        }
    }

    /// The spelling `show license` uses on the router ("OUT OF COMPLIANCE").
    pub fn router_label(self) -> &'static str {
        match self {
            EntitlementStatus::Authorized => "AUTHORIZED",
            EntitlementStatus::OutOfCompliance => "OUT OF COMPLIANCE",
            EntitlementStatus::NotAuthorized => "NOT AUTHORIZED",
            EntitlementStatus::AuthorizationExpired => "AUTHORIZATION EXPIRED",
            EntitlementStatus::Invalid => "INVALID",
        }
    }

    pub fn parse(text: &str) -> Result<Self, ComplianceError> {
        let wanted = text.trim();
        Self::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| ComplianceError::UnknownStatus(text.to_string()))
    }

    /// Rank used by [`overall`]. A lapsed authorization outranks everything because
    /// nothing else about the instance can be trusted; a count shortfall outranks
    /// a missing or unknown tag because it is what the operator must buy or move
    /// licenses to fix, and an unknown tag alone leaves every known one usable.
    pub fn severity(self) -> u8 {
        match self {
            EntitlementStatus::Authorized => 0,
            EntitlementStatus::Invalid => 1,
            EntitlementStatus::NotAuthorized => 2,
            EntitlementStatus::OutOfCompliance => 3,
            EntitlementStatus::AuthorizationExpired => 4,
        }
    }
}

impl fmt::Display for EntitlementStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Worst status wins: AUTHORIZATION_EXPIRED > OUT_OF_COMPLIANCE > NOT_AUTHORIZED >
/// INVALID > AUTHORIZED. Nothing at all is AUTHORIZED.
pub fn overall<I>(statuses: I) -> EntitlementStatus
where
    I: IntoIterator<Item = EntitlementStatus>,
{
    statuses
        .into_iter()
        .max_by_key(|status| status.severity())
        .unwrap_or(EntitlementStatus::Authorized)
}

/// Why SIA is out of compliance, following the guide's list of causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SiaReason {
    EvalExpired,
    SiaOverConsumed,
    RtuAboveSia,
    TermExpired,
    NotAuthorized,
    AuthorizationExpired,
}

impl SiaReason {
    pub const ALL: [SiaReason; 6] = [
        SiaReason::EvalExpired,
        SiaReason::SiaOverConsumed,
        SiaReason::RtuAboveSia,
        SiaReason::TermExpired,
        SiaReason::NotAuthorized,
        SiaReason::AuthorizationExpired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SiaReason::EvalExpired => "EVAL_EXPIRED",
            SiaReason::SiaOverConsumed => "SIA_OVER_CONSUMED",
            SiaReason::RtuAboveSia => "RTU_ABOVE_SIA",
            SiaReason::TermExpired => "TERM_EXPIRED",
            SiaReason::NotAuthorized => "NOT_AUTHORIZED",
            SiaReason::AuthorizationExpired => "AUTHORIZATION_EXPIRED",
        }
    }

    pub fn parse(text: &str) -> Result<Self, ComplianceError> {
        let wanted = text.trim();
        Self::ALL
            .into_iter()
            .find(|reason| reason.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| ComplianceError::UnknownSiaReason(text.to_string()))
    }

    /// One sentence for operators: the cause and what brings the device back.
    pub fn describe(self) -> &'static str {
        match self {
            SiaReason::EvalExpired => {
                "The 90-day SIA evaluation period is over; register the device to leave evaluation."
            }
            SiaReason::SiaOverConsumed => {
                "More SIA licenses are consumed than the virtual account holds; purchase or renew SIA licenses."
            }
            SiaReason::RtuAboveSia => {
                "More RTU licenses are in use than SIA licenses of the same tier are held; each RTU in use needs one SIA."
            }
            SiaReason::TermExpired => {
                "The SIA subscription term has ended without renewal; renew it to regain upgrade rights."
            }
            SiaReason::NotAuthorized => {
                "The authorization lacks the counts requested: more licenses are in use than the virtual account has."
            }
            SiaReason::AuthorizationExpired => {
                "The device has not reached its license server for so long that its authorization could not be verified."
            }
        }
    }
}

impl fmt::Display for SiaReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One purchased line of a virtual account's pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolLicense {
    pub tag: String,
    pub kind: LicenseKind,
    pub quantity: u64,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

impl PoolLicense {
    /// Active on the half-open span `[starts_at, ends_at)`: a term ending at T no
    /// longer counts at T itself.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.starts_at.is_none_or(|start| start <= now) && self.ends_at.is_none_or(|end| now < end)
    }

    pub fn has_ended(&self, now: DateTime<Utc>) -> bool {
        self.ends_at.is_some_and(|end| end <= now)
    }
}

/// Net licenses of a tag moved into (positive) or out of (negative) this virtual account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagAdjustment {
    pub tag: String,
    pub delta: i64,
}

/// A virtual account's standing for one tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagCompliance {
    pub tag: String,
    pub description: String,
    pub kind: LicenseKind,
    /// Only licenses active at the evaluation time.
    pub purchased: u64,
    pub transferred_in: u64,
    pub transferred_out: u64,
    /// Purchased plus net transfers, floored at zero.
    pub available: u64,
    pub in_use: u64,
    /// Higher tags that covered this tag's shortfall, with the higher units used.
    pub substituted_from: Vec<(String, u64)>,
    /// Units of this (higher) tag lent to lower tags.
    pub substituted_to: u64,
    /// Units of this tag covered by `substituted_from` (higher units times factor).
    pub covered_by_substitution: u64,
    pub status: EntitlementStatus,
}

impl TagCompliance {
    /// Usable units beyond the ones in use and those already lent down.
    pub fn spare(&self) -> u64 {
        self.available
            .saturating_sub(self.in_use)
            .saturating_sub(self.substituted_to)
    }

    pub fn shortfall(&self) -> u64 {
        self.in_use
            .saturating_sub(self.available.saturating_add(self.covered_by_substitution))
    }
}

/// SIA standing of one tier of a virtual account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiaTierStatus {
    pub tier: Tier,
    /// SIA units the tier needs: the larger of its RTU units in use and its SIA units in use.
    pub required: u64,
    /// Active SIA units of the tier after transfers.
    pub available: u64,
    pub rtu_in_use: u64,
    pub sia_in_use: u64,
    pub in_compliance: bool,
    pub reason: Option<SiaReason>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaCompliance {
    /// Sorted by tag.
    pub tags: Vec<TagCompliance>,
    /// Essentials then Advantage, always both.
    pub sia: Vec<SiaTierStatus>,
    pub overall: EntitlementStatus,
}

impl VaCompliance {
    pub fn tag(&self, tag: &str) -> Option<&TagCompliance> {
        self.tags
            .binary_search_by(|entry| entry.tag.as_str().cmp(tag))
            .ok()
            .and_then(|index| self.tags.get(index))
    }

    pub fn sia_tier(&self, tier: Tier) -> Option<&SiaTierStatus> {
        self.sia.iter().find(|status| status.tier == tier)
    }

    pub fn sia_in_compliance(&self) -> bool {
        self.sia.iter().all(|status| status.in_compliance)
    }
}

/// Kind resolution: the catalog is authoritative for shipped tags (an operator's
/// `--kind` cannot turn a tracking PID into capacity); otherwise the pool's word,
/// then the naming convention. Unknown and unreadable tags end up INVALID anyway.
fn resolve_kind(tag: &str, pool: &[PoolLicense]) -> LicenseKind {
    if let Some(entry) = catalog::lookup(tag) {
        return entry.kind;
    }
    pool.iter()
        .find(|line| line.tag == tag)
        .map(|line| line.kind)
        .or_else(|| catalog::infer_kind(tag))
        .unwrap_or(LicenseKind::Rtu)
}

/// Compliance of one virtual account at `now`.
///
/// A tag counts as known when the catalog ships it, the pool lists it (even an
/// expired line) or a transfer moved it; transfers can only move licenses that
/// exist upstream. Only tags with a pool line, a transfer or a non-zero usage
/// appear in the result.
///
/// Substitution: each short RTU tag, in tag order, borrows spare units of the
/// higher RTU tags the hierarchy allows (in tag order), one higher unit per
/// `factor` lower units, as many as needed and available. A partial cover is
/// still recorded so the operator sees what was applied, though the tag stays
/// out of compliance. SIA and tracking tags never borrow or lend.
pub fn va_summary(
    pool: &[PoolLicense],
    transfers: &[TagAdjustment],
    in_use: &BTreeMap<String, u64>,
    now: DateTime<Utc>,
) -> VaCompliance {
    va_summary_with(pool, transfers, in_use, now, &catalog::substitution_factor)
}

/// How many units of a lower tag one unit of a higher tag covers, if it may stand in.
pub type HierarchyFn<'a> = &'a dyn Fn(&str, &str) -> Option<u32>;

/// [`va_summary`] with the hierarchy supplied by the caller (the deployment's table).
pub fn va_summary_with(
    pool: &[PoolLicense],
    transfers: &[TagAdjustment],
    in_use: &BTreeMap<String, u64>,
    now: DateTime<Utc>,
    hierarchy: HierarchyFn<'_>,
) -> VaCompliance {
    let mut names: BTreeSet<&str> = BTreeSet::new();
    names.extend(pool.iter().map(|line| line.tag.as_str()));
    names.extend(transfers.iter().map(|t| t.tag.as_str()));
    names.extend(
        in_use
            .iter()
            .filter(|(_, count)| **count > 0)
            .map(|(tag, _)| tag.as_str()),
    );

    let mut tags: Vec<TagCompliance> = Vec::with_capacity(names.len());
    let mut known: Vec<bool> = Vec::with_capacity(names.len());
    for name in &names {
        let purchased = pool
            .iter()
            .filter(|line| line.tag == *name && line.is_active(now))
            .fold(0u64, |sum, line| sum.saturating_add(line.quantity));
        let (transferred_in, transferred_out) = transfers.iter().filter(|t| t.tag == *name).fold(
            (0u64, 0u64),
            |(inward, outward), t| {
                if t.delta >= 0 {
                    (inward.saturating_add(t.delta.unsigned_abs()), outward)
                } else {
                    (inward, outward.saturating_add(t.delta.unsigned_abs()))
                }
            },
        );
        let net = i128::from(purchased) + i128::from(transferred_in) - i128::from(transferred_out);
        let available = u64::try_from(net.max(0)).unwrap_or(u64::MAX);
        known.push(
            catalog::lookup(name).is_some()
                || pool.iter().any(|line| line.tag == *name)
                || transfers.iter().any(|t| t.tag == *name),
        );
        tags.push(TagCompliance {
            tag: (*name).to_string(),
            description: catalog::description(name).to_string(),
            kind: resolve_kind(name, pool),
            purchased,
            transferred_in,
            transferred_out,
            available,
            in_use: in_use.get(*name).copied().unwrap_or(0),
            substituted_from: Vec::new(),
            substituted_to: 0,
            covered_by_substitution: 0,
            status: EntitlementStatus::Authorized,
        });
    }

    apply_substitutions(&mut tags, &known, hierarchy);

    for (entry, is_known) in tags.iter_mut().zip(&known) {
        entry.status = if !is_known {
            EntitlementStatus::Invalid
        } else if entry.kind == LicenseKind::Tracking || entry.shortfall() == 0 {
            EntitlementStatus::Authorized
        } else {
            EntitlementStatus::OutOfCompliance
        };
    }

    let sia = Tier::ALL
        .into_iter()
        .map(|tier| sia_tier_status(tier, &tags, &known, pool, now))
        .collect();
    let overall_status = overall(tags.iter().map(|entry| entry.status));
    VaCompliance {
        tags,
        sia,
        overall: overall_status,
    }
}

fn apply_substitutions(tags: &mut [TagCompliance], known: &[bool], hierarchy: HierarchyFn<'_>) {
    let rtu_index: Vec<usize> = (0..tags.len())
        .filter(|&i| tags[i].kind == LicenseKind::Rtu && known.get(i).copied().unwrap_or(false))
        .collect();
    for &lower in &rtu_index {
        for &higher in &rtu_index {
            let shortfall = tags[lower].shortfall();
            if shortfall == 0 {
                break;
            }
            if higher == lower {
                continue;
            }
            let Some(factor) = hierarchy(&tags[higher].tag, &tags[lower].tag) else {
                continue;
            };
            let factor = u64::from(factor.max(1));
            let needed = shortfall.div_ceil(factor);
            let used = needed.min(tags[higher].spare());
            if used == 0 {
                continue;
            }
            let higher_tag = tags[higher].tag.clone();
            tags[higher].substituted_to = tags[higher].substituted_to.saturating_add(used);
            let target = &mut tags[lower];
            target.covered_by_substitution = target
                .covered_by_substitution
                .saturating_add(used.saturating_mul(factor));
            target.substituted_from.push((higher_tag, used));
        }
    }
}

/// Required SIA counts raw RTU units in use, before any hierarchy substitution:
/// every RTU unit a device consumes needs one SIA unit of its tier, and the
/// guide rules the hierarchy out for SIA, so a 400G RTU standing in for four
/// 100G RTUs still leaves four RTUs needing SIA. Units are counted across
/// speeds within a tier. Invalid tags are not counted.
fn sia_tier_status(
    tier: Tier,
    tags: &[TagCompliance],
    known: &[bool],
    pool: &[PoolLicense],
    now: DateTime<Utc>,
) -> SiaTierStatus {
    let mut rtu_in_use = 0u64;
    let mut sia_in_use = 0u64;
    let mut available = 0u64;
    for (entry, is_known) in tags.iter().zip(known) {
        if !is_known || catalog::tier_of(&entry.tag) != Some(tier) {
            continue;
        }
        match entry.kind {
            LicenseKind::Rtu => rtu_in_use = rtu_in_use.saturating_add(entry.in_use),
            LicenseKind::Sia => {
                sia_in_use = sia_in_use.saturating_add(entry.in_use);
                available = available.saturating_add(entry.available);
            }
            LicenseKind::Tracking => {}
        }
    }
    let required = rtu_in_use.max(sia_in_use);
    let in_compliance = required <= available;
    let reason = if in_compliance {
        None
    } else {
        let tier_sia_lines: Vec<&PoolLicense> = pool
            .iter()
            .filter(|line| {
                resolve_kind(&line.tag, pool) == LicenseKind::Sia
                    && catalog::tier_of(&line.tag) == Some(tier)
            })
            .collect();
        let term_over = !tier_sia_lines.is_empty()
            && tier_sia_lines.iter().all(|line| line.has_ended(now))
            && !tier_sia_lines.iter().any(|line| line.is_active(now));
        Some(if term_over {
            SiaReason::TermExpired
        } else if sia_in_use > available {
            SiaReason::SiaOverConsumed
        } else {
            SiaReason::RtuAboveSia
        })
    };
    SiaTierStatus {
        tier,
        required,
        available,
        rtu_in_use,
        sia_in_use,
        in_compliance,
        reason,
    }
}

/// One entitlement as a product instance sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceEntitlement {
    pub tag: String,
    pub description: String,
    pub count: u64,
    pub status: EntitlementStatus,
    /// Why the status is what it is, for operators.
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceCompliance {
    pub entitlements: Vec<InstanceEntitlement>,
    pub overall: EntitlementStatus,
    pub sia_out_of_compliance: Option<SiaReason>,
    pub communication_deadline: DateTime<Utc>,
}

/// Compliance of one product instance, given its usage and its virtual account.
///
/// Entitlements keep the device's order; repeated tags are merged and zero
/// counts dropped. When the instance has been silent for the authorization
/// validity, every entitlement is AUTHORIZATION_EXPIRED whatever the pool says.
///
/// SIA reason precedence: a lapsed authorization, then the SIA standing of a
/// tier the instance consumes (Essentials first), then a shortfall on one of
/// its RTU or SIA tags (the guide's "Not Authorized" case).
pub fn instance_view(
    usage: &[(String, u64)],
    va: &VaCompliance,
    last_contact: DateTime<Utc>,
    now: DateTime<Utc>,
) -> InstanceCompliance {
    let mut merged: Vec<(&str, u64)> = Vec::new();
    for (tag, count) in usage {
        if *count == 0 {
            continue;
        }
        match merged.iter_mut().find(|(seen, _)| *seen == tag.as_str()) {
            Some((_, total)) => *total = total.saturating_add(*count),
            None => merged.push((tag.as_str(), *count)),
        }
    }

    let deadline = communication_deadline(last_contact);
    let lapsed = authorization_expired(last_contact, now);
    let entitlements: Vec<InstanceEntitlement> = merged
        .iter()
        .map(|(tag, count)| {
            let (status, why) = if lapsed {
                (
                    EntitlementStatus::AuthorizationExpired,
                    format!(
                        "no successful contact since {}; authorization lapsed at {}",
                        last_contact.to_rfc3339(),
                        deadline.to_rfc3339()
                    ),
                )
            } else {
                entitlement_standing(tag, va)
            };
            InstanceEntitlement {
                tag: (*tag).to_string(),
                description: va.tag(tag).map_or_else(
                    || catalog::description(tag).to_string(),
                    |t| t.description.clone(),
                ),
                count: *count,
                status,
                why,
            }
        })
        .collect();

    let sia_reason = if lapsed {
        Some(SiaReason::AuthorizationExpired)
    } else {
        instance_sia_reason(&entitlements, va)
    };

    InstanceCompliance {
        overall: overall(entitlements.iter().map(|e| e.status)),
        entitlements,
        sia_out_of_compliance: sia_reason,
        communication_deadline: deadline,
    }
}

fn entitlement_standing(tag: &str, va: &VaCompliance) -> (EntitlementStatus, String) {
    let Some(entry) = va.tag(tag) else {
        // The account summary was computed without this usage: judge from the catalog.
        return match catalog::lookup(tag) {
            None => (
                EntitlementStatus::Invalid,
                format!("{tag} is not a known entitlement tag"),
            ),
            Some(known) if known.kind == LicenseKind::Tracking => (
                EntitlementStatus::Authorized,
                "tracking entitlement: counted, authorized for registered instances".to_string(),
            ),
            Some(_) => (
                EntitlementStatus::NotAuthorized,
                format!("the virtual account holds no {tag} licenses"),
            ),
        };
    };
    let why = match entry.status {
        EntitlementStatus::Invalid => format!("{tag} is not a known entitlement tag"),
        _ if entry.kind == LicenseKind::Tracking => {
            "tracking entitlement: counted, authorized for registered instances".to_string()
        }
        EntitlementStatus::Authorized if entry.covered_by_substitution > 0 => format!(
            "virtual account uses {} of {} available, the rest covered by {}",
            entry.in_use,
            entry.available,
            describe_substitutions(&entry.substituted_from)
        ),
        EntitlementStatus::Authorized => format!(
            "virtual account uses {} of {} available",
            entry.in_use, entry.available
        ),
        _ if entry.covered_by_substitution > 0 => format!(
            "virtual account uses {} but has {} available plus {} covered by {}",
            entry.in_use,
            entry.available,
            entry.covered_by_substitution,
            describe_substitutions(&entry.substituted_from)
        ),
        _ => format!(
            "virtual account uses {} but has {} available",
            entry.in_use, entry.available
        ),
    };
    (entry.status, why)
}

fn describe_substitutions(from: &[(String, u64)]) -> String {
    from.iter()
        .map(|(tag, units)| format!("{units} x {tag}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn instance_sia_reason(
    entitlements: &[InstanceEntitlement],
    va: &VaCompliance,
) -> Option<SiaReason> {
    let consumes = |tier: Tier| {
        entitlements.iter().any(|e| {
            catalog::tier_of(&e.tag) == Some(tier)
                && va
                    .tag(&e.tag)
                    .map_or_else(|| catalog::kind_of(&e.tag), |t| Some(t.kind))
                    .is_some_and(|kind| kind != LicenseKind::Tracking)
        })
    };
    let tier_reason = Tier::ALL
        .into_iter()
        .filter(|tier| consumes(*tier))
        .filter_map(|tier| va.sia_tier(tier))
        .find(|status| !status.in_compliance)
        .map(|status| status.reason.unwrap_or(SiaReason::RtuAboveSia));
    if tier_reason.is_some() {
        return tier_reason;
    }
    let short = entitlements.iter().any(|e| {
        matches!(
            e.status,
            EntitlementStatus::OutOfCompliance | EntitlementStatus::NotAuthorized
        ) && catalog::tier_of(&e.tag).is_some()
    });
    short.then_some(SiaReason::NotAuthorized)
}

/// Per-instance SIA grace bookkeeping. Stored as the seconds already spent in
/// closed out-of-compliance spells plus the start of the open one, so the
/// allowance stays cumulative across occurrences and survives restarts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiaGrace {
    pub used_seconds: i64,
    pub ooc_since: Option<DateTime<Utc>>,
}

/// Elapsed seconds, never negative: a clock stepped backwards must not refund grace.
fn elapsed_seconds(since: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    now.signed_duration_since(since).num_seconds().max(0)
}

impl SiaGrace {
    /// Records the instance's SIA state observed at `now`.
    pub fn step(self, now: DateTime<Utc>, out_of_compliance: bool) -> SiaGrace {
        match (self.ooc_since, out_of_compliance) {
            (None, true) => SiaGrace {
                used_seconds: self.used_seconds,
                ooc_since: Some(now),
            },
            (Some(since), false) => SiaGrace {
                used_seconds: self
                    .used_seconds
                    .saturating_add(elapsed_seconds(since, now)),
                ooc_since: None,
            },
            _ => self,
        }
    }

    /// Grace seconds consumed so far, the open spell included.
    pub fn consumed_seconds(&self, now: DateTime<Utc>) -> i64 {
        let running = self
            .ooc_since
            .map_or(0, |since| elapsed_seconds(since, now));
        self.used_seconds.max(0).saturating_add(running)
    }

    pub fn remaining_seconds(&self, now: DateTime<Utc>) -> i64 {
        GRACE_PERIOD_SECONDS
            .saturating_sub(self.consumed_seconds(now))
            .max(0)
    }

    pub fn upgrades_allowed(&self, now: DateTime<Utc>, in_compliance: bool) -> bool {
        in_compliance || self.remaining_seconds(now) > 0
    }
}

/// Adds days without ever panicking: dates beyond chrono's range saturate.
fn plus_days(from: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    from.checked_add_signed(TimeDelta::days(days))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub fn registration_expires(last_renewed: DateTime<Utc>) -> DateTime<Utc> {
    plus_days(last_renewed, REGISTRATION_VALIDITY_DAYS)
}

/// Expired from the expiry instant itself onwards.
pub fn registration_expired(last_renewed: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now >= registration_expires(last_renewed)
}

pub fn next_renewal(last_renewed: DateTime<Utc>) -> DateTime<Utc> {
    plus_days(last_renewed, RENEWAL_AFTER_DAYS)
}

pub fn next_communication(last_contact: DateTime<Utc>) -> DateTime<Utc> {
    plus_days(last_contact, NEXT_COMMUNICATION_DAYS)
}

pub fn communication_deadline(last_contact: DateTime<Utc>) -> DateTime<Utc> {
    plus_days(last_contact, AUTHORIZATION_VALIDITY_DAYS)
}

/// A device silent for a full 90 days has lapsed: the deadline instant itself is expired.
pub fn authorization_expired(last_contact: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now >= communication_deadline(last_contact)
}

pub fn eval_expires(eval_started: DateTime<Utc>) -> DateTime<Utc> {
    plus_days(eval_started, EVAL_DAYS)
}

/// Keeps a virtual account's per-tag usage totals current when one instance
/// replaces its report `old` with `new`. Storage mirrors this in SQL; this is
/// the reference behaviour. Saturates at zero and drops tags that reach it.
pub fn apply_usage_delta(
    totals: &mut BTreeMap<String, u64>,
    old: &[(String, u64)],
    new: &[(String, u64)],
) {
    for (tag, count) in old {
        if let Some(total) = totals.get_mut(tag) {
            *total = total.saturating_sub(*count);
        }
    }
    for (tag, count) in new {
        let total = totals.entry(tag.clone()).or_insert(0);
        *total = total.saturating_add(*count);
    }
    totals.retain(|_, total| *total > 0);
}

/// Per-tag totals recomputed from every instance's latest report.
pub fn sum_usage<'a, I>(reports: I) -> BTreeMap<String, u64>
where
    I: IntoIterator<Item = &'a [(String, u64)]>,
{
    let mut totals = BTreeMap::new();
    for report in reports {
        apply_usage_delta(&mut totals, &[], report);
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_600_000_000 + secs, 0).unwrap()
    }

    const DAY: i64 = 86_400;

    fn line(tag: &str, quantity: u64) -> PoolLicense {
        PoolLicense {
            tag: tag.to_string(),
            kind: catalog::kind_of(tag).unwrap_or(LicenseKind::Rtu),
            quantity,
            starts_at: None,
            ends_at: None,
        }
    }

    fn usage(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
        pairs.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn totals(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn seed_device_with_nothing_purchased() {
        let device = usage(&[
            ("ESS-AC-100G-RTU-1", 1),
            ("N560-4-SYS-E-TRK", 1),
            ("A900-IMA8Z-TRK", 2),
            ("A900-IMA8CS1ZM-TRK", 1),
        ]);
        let va = va_summary(&[], &[], &sum_usage([device.as_slice()]), at(0));
        assert_eq!(va.overall, EntitlementStatus::OutOfCompliance);
        let view = instance_view(&device, &va, at(0), at(60));
        let shown: Vec<(&str, u64, &str)> = view
            .entitlements
            .iter()
            .map(|e| (e.tag.as_str(), e.count, e.status.router_label()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("ESS-AC-100G-RTU-1", 1, "OUT OF COMPLIANCE"),
                ("N560-4-SYS-E-TRK", 1, "AUTHORIZED"),
                ("A900-IMA8Z-TRK", 2, "AUTHORIZED"),
                ("A900-IMA8CS1ZM-TRK", 1, "AUTHORIZED"),
            ]
        );
        assert_eq!(
            view.entitlements[0].description,
            "Access Essentials SW Right-to-Use v1.0 per 100G"
        );
        assert_eq!(view.overall, EntitlementStatus::OutOfCompliance);
        assert_eq!(view.overall.as_str(), "OUT_OF_COMPLIANCE");
        // Essentials RTU in use with no Essentials SIA held.
        assert_eq!(view.sia_out_of_compliance, Some(SiaReason::RtuAboveSia));
    }

    #[test]
    fn one_400g_covers_four_100g_and_the_fifth_is_out() {
        let pool = [line("ESS-AC-400G-RTU-1", 1)];
        let four = va_summary(&pool, &[], &totals(&[("ESS-AC-100G-RTU-1", 4)]), at(0));
        let lower = four.tag("ESS-AC-100G-RTU-1").unwrap();
        assert_eq!(lower.status, EntitlementStatus::Authorized);
        assert_eq!(
            lower.substituted_from,
            vec![("ESS-AC-400G-RTU-1".to_string(), 1)]
        );
        assert_eq!(lower.covered_by_substitution, 4);
        assert_eq!(four.tag("ESS-AC-400G-RTU-1").unwrap().substituted_to, 1);
        assert_eq!(four.overall, EntitlementStatus::Authorized);

        let five = va_summary(&pool, &[], &totals(&[("ESS-AC-100G-RTU-1", 5)]), at(0));
        let lower = five.tag("ESS-AC-100G-RTU-1").unwrap();
        assert_eq!(lower.status, EntitlementStatus::OutOfCompliance);
        assert_eq!(
            lower.substituted_from,
            vec![("ESS-AC-400G-RTU-1".to_string(), 1)]
        );
        let view = instance_view(&usage(&[("ESS-AC-100G-RTU-1", 1)]), &five, at(0), at(0));
        assert_eq!(
            view.entitlements[0].status,
            EntitlementStatus::OutOfCompliance
        );
        assert!(view.entitlements[0].why.contains("1 x ESS-AC-400G-RTU-1"));
    }

    #[test]
    fn higher_tag_lends_only_its_spare_and_never_across_tiers() {
        let pool = [line("ADV-AC-400G-RTU-1", 2), line("ESS-AC-100G-RTU-1", 1)];
        let in_use = totals(&[
            ("ADV-AC-400G-RTU-1", 1),
            ("ADV-AC-100G-RTU-1", 6),
            ("ESS-AC-100G-RTU-1", 3),
        ]);
        let va = va_summary(&pool, &[], &in_use, at(0));
        let adv = va.tag("ADV-AC-100G-RTU-1").unwrap();
        assert_eq!(
            adv.substituted_from,
            vec![("ADV-AC-400G-RTU-1".to_string(), 1)]
        );
        assert_eq!(adv.status, EntitlementStatus::OutOfCompliance);
        let ess = va.tag("ESS-AC-100G-RTU-1").unwrap();
        assert!(ess.substituted_from.is_empty());
        assert_eq!(ess.status, EntitlementStatus::OutOfCompliance);
        assert_eq!(
            va.tag("ADV-AC-400G-RTU-1").unwrap().status,
            EntitlementStatus::Authorized
        );
    }

    #[test]
    fn substitution_never_applies_to_sia() {
        let pool = [line("ESS-AC-400G-SIA-3", 5)];
        let va = va_summary(&pool, &[], &totals(&[("ESS-AC-100G-SIA-3", 2)]), at(0));
        let lower = va.tag("ESS-AC-100G-SIA-3").unwrap();
        assert!(lower.substituted_from.is_empty());
        assert_eq!(lower.status, EntitlementStatus::OutOfCompliance);
        assert_eq!(va.tag("ESS-AC-400G-SIA-3").unwrap().substituted_to, 0);
        let tier = va.sia_tier(Tier::Essentials).unwrap();
        // SIA units count across speeds within the tier: 5 held, 2 used.
        assert!(tier.in_compliance);
    }

    #[test]
    fn sia_tiers_follow_rtu_usage() {
        let pool = [
            line("ESS-AC-100G-RTU-1", 10),
            line("ESS-AC-100G-SIA-3", 3),
            line("ADV-AC-10G-RTU-1", 2),
            line("ADV-AC-10G-SIA-3", 2),
        ];
        let in_use = totals(&[("ESS-AC-100G-RTU-1", 4), ("ADV-AC-10G-RTU-1", 2)]);
        let va = va_summary(&pool, &[], &in_use, at(0));
        let ess = va.sia_tier(Tier::Essentials).unwrap();
        assert_eq!(
            (ess.required, ess.available, ess.in_compliance),
            (4, 3, false)
        );
        assert_eq!(ess.reason, Some(SiaReason::RtuAboveSia));
        let adv = va.sia_tier(Tier::Advantage).unwrap();
        assert!(adv.in_compliance && adv.reason.is_none());
        assert_eq!(va.overall, EntitlementStatus::Authorized);

        let adv_only = instance_view(&usage(&[("ADV-AC-10G-RTU-1", 2)]), &va, at(0), at(0));
        assert_eq!(adv_only.sia_out_of_compliance, None);
        let ess_user = instance_view(&usage(&[("ESS-AC-100G-RTU-1", 1)]), &va, at(0), at(0));
        assert_eq!(ess_user.sia_out_of_compliance, Some(SiaReason::RtuAboveSia));

        let over = va_summary(
            &pool,
            &[],
            &totals(&[("ADV-AC-10G-RTU-1", 2), ("ADV-AC-10G-SIA-3", 3)]),
            at(0),
        );
        assert_eq!(
            over.sia_tier(Tier::Advantage).unwrap().reason,
            Some(SiaReason::SiaOverConsumed)
        );
    }

    #[test]
    fn sia_term_expiry_is_reported_as_such() {
        let term = PoolLicense {
            ends_at: Some(at(3 * 365 * DAY)),
            ..line("ESS-AC-100G-SIA-3", 5)
        };
        let pool = [line("ESS-AC-100G-RTU-1", 5), term];
        let in_use = totals(&[("ESS-AC-100G-RTU-1", 2)]);
        let before = va_summary(&pool, &[], &in_use, at(3 * 365 * DAY - 1));
        assert!(before.sia_in_compliance());
        let after = va_summary(&pool, &[], &in_use, at(3 * 365 * DAY));
        let ess = after.sia_tier(Tier::Essentials).unwrap();
        assert!(!ess.in_compliance);
        assert_eq!(ess.reason, Some(SiaReason::TermExpired));
    }

    #[test]
    fn term_license_ends_exactly_at_ends_at() {
        let ends = at(100 * DAY);
        let pool = [PoolLicense {
            starts_at: Some(at(0)),
            ends_at: Some(ends),
            ..line("ADV-AC-100G-RTU-1", 2)
        }];
        let in_use = totals(&[("ADV-AC-100G-RTU-1", 2)]);
        let just_before = va_summary(&pool, &[], &in_use, ends - TimeDelta::seconds(1));
        assert_eq!(just_before.overall, EntitlementStatus::Authorized);
        let at_end = va_summary(&pool, &[], &in_use, ends);
        assert_eq!(at_end.overall, EntitlementStatus::OutOfCompliance);
        assert_eq!(at_end.tag("ADV-AC-100G-RTU-1").unwrap().purchased, 0);
        let not_started = va_summary(&pool, &[], &in_use, at(-1));
        assert_eq!(not_started.overall, EntitlementStatus::OutOfCompliance);
    }

    #[test]
    fn transfers_move_availability_and_never_go_negative() {
        let pool = [line("ESS-AC-10G-RTU-1", 3)];
        let transfers = [
            TagAdjustment {
                tag: "ESS-AC-10G-RTU-1".into(),
                delta: -2,
            },
            TagAdjustment {
                tag: "ESS-AC-10G-RTU-1".into(),
                delta: 1,
            },
            TagAdjustment {
                tag: "ADV-AC-10G-RTU-1".into(),
                delta: -4,
            },
        ];
        let va = va_summary(&pool, &transfers, &BTreeMap::new(), at(0));
        let ess = va.tag("ESS-AC-10G-RTU-1").unwrap();
        assert_eq!(
            (ess.transferred_in, ess.transferred_out, ess.available),
            (1, 2, 2)
        );
        assert_eq!(va.tag("ADV-AC-10G-RTU-1").unwrap().available, 0);
    }

    #[test]
    fn unknown_tags_are_invalid_unless_the_pool_knows_them() {
        let in_use = totals(&[("MADE-UP-RTU-1", 1), ("OPS-CE-100G-RTU-1", 1)]);
        let pool = [PoolLicense {
            tag: "OPS-CE-100G-RTU-1".into(),
            kind: LicenseKind::Rtu,
            quantity: 1,
            starts_at: None,
            ends_at: None,
        }];
        let va = va_summary(&pool, &[], &in_use, at(0));
        assert_eq!(
            va.tag("MADE-UP-RTU-1").unwrap().status,
            EntitlementStatus::Invalid
        );
        assert_eq!(
            va.tag("OPS-CE-100G-RTU-1").unwrap().status,
            EntitlementStatus::Authorized
        );
        assert_eq!(va.overall, EntitlementStatus::Invalid);
        let unknown_trk = va_summary(&[], &[], &totals(&[("NEW-BOX-TRK", 1)]), at(0));
        assert_eq!(unknown_trk.overall, EntitlementStatus::Invalid);
    }

    #[test]
    fn overall_order() {
        use EntitlementStatus::*;
        assert_eq!(overall([]), Authorized);
        assert_eq!(overall([Authorized, Invalid]), Invalid);
        assert_eq!(overall([Invalid, NotAuthorized]), NotAuthorized);
        assert_eq!(
            overall([NotAuthorized, OutOfCompliance, Authorized]),
            OutOfCompliance
        );
        assert_eq!(
            overall([OutOfCompliance, AuthorizationExpired]),
            AuthorizationExpired
        );
        for status in EntitlementStatus::ALL {
            assert_eq!(EntitlementStatus::parse(status.as_str()), Ok(status));
        }
        for reason in SiaReason::ALL {
            assert_eq!(SiaReason::parse(reason.as_str()), Ok(reason));
            assert!(reason.describe().ends_with('.'));
        }
        assert_eq!(
            serde_json::to_string(&OutOfCompliance).unwrap(),
            "\"OUT_OF_COMPLIANCE\""
        );
    }

    #[test]
    fn authorization_expires_at_day_90_exactly() {
        let contact = at(0);
        let almost = at(90 * DAY - 1);
        let deadline = at(90 * DAY);
        assert!(!authorization_expired(contact, almost));
        assert!(authorization_expired(contact, deadline));
        assert_eq!(communication_deadline(contact), deadline);
        assert_eq!(next_communication(contact), at(30 * DAY));

        let device = usage(&[("ESS-AC-100G-RTU-1", 1), ("N560-4-SYS-E-TRK", 1)]);
        let va = va_summary(
            &[line("ESS-AC-100G-RTU-1", 1), line("ESS-AC-100G-SIA-3", 1)],
            &[],
            &sum_usage([device.as_slice()]),
            almost,
        );
        let live = instance_view(&device, &va, contact, almost);
        assert_eq!(live.overall, EntitlementStatus::Authorized);
        assert_eq!(live.sia_out_of_compliance, None);
        let silent = instance_view(&device, &va, contact, deadline);
        assert_eq!(silent.overall, EntitlementStatus::AuthorizationExpired);
        assert!(silent
            .entitlements
            .iter()
            .all(|e| e.status == EntitlementStatus::AuthorizationExpired && !e.why.is_empty()));
        assert_eq!(
            silent.sia_out_of_compliance,
            Some(SiaReason::AuthorizationExpired)
        );
    }

    #[test]
    fn registration_lasts_a_year() {
        let renewed = at(0);
        assert_eq!(registration_expires(renewed), at(365 * DAY));
        assert!(!registration_expired(renewed, at(365 * DAY - 1)));
        assert!(registration_expired(renewed, at(365 * DAY)));
        assert_eq!(next_renewal(renewed), at(182 * DAY));
        assert_eq!(eval_expires(renewed), at(90 * DAY));
        assert_eq!(
            registration_expires(DateTime::<Utc>::MAX_UTC),
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn sia_grace_is_cumulative_over_spells() {
        let grace = SiaGrace::default();
        assert_eq!(grace.remaining_seconds(at(0)), GRACE_PERIOD_SECONDS);
        assert_eq!(GRACE_PERIOD.num_seconds(), GRACE_PERIOD_SECONDS);

        // First spell: 40 days.
        let grace = grace.step(at(0), true);
        assert_eq!(grace.ooc_since, Some(at(0)));
        assert_eq!(grace.remaining_seconds(at(10 * DAY)), 80 * DAY);
        let grace = grace.step(at(20 * DAY), true);
        assert_eq!(grace.ooc_since, Some(at(0)));
        let grace = grace.step(at(40 * DAY), false);
        assert_eq!(grace.used_seconds, 40 * DAY);
        assert_eq!(grace.ooc_since, None);
        assert_eq!(grace.remaining_seconds(at(70 * DAY)), 50 * DAY);
        assert!(grace.upgrades_allowed(at(70 * DAY), true));

        // Second spell starts later; 50 more days exhaust the allowance.
        let grace = grace.step(at(100 * DAY), true);
        assert_eq!(grace.remaining_seconds(at(149 * DAY)), DAY);
        assert!(grace.upgrades_allowed(at(149 * DAY), false));
        assert_eq!(grace.remaining_seconds(at(150 * DAY)), 0);
        assert!(!grace.upgrades_allowed(at(150 * DAY), false));
        assert_eq!(grace.remaining_seconds(at(400 * DAY)), 0);

        let grace = grace.step(at(150 * DAY), false);
        assert_eq!(grace.used_seconds, 90 * DAY);
        assert_eq!(grace.remaining_seconds(at(151 * DAY)), 0);
        assert!(!grace.upgrades_allowed(at(151 * DAY), false));
        // Back in compliance, upgrades resume even with no grace left.
        assert!(grace.upgrades_allowed(at(151 * DAY), true));
    }

    #[test]
    fn clock_stepping_back_refunds_no_grace() {
        let grace = SiaGrace::default().step(at(10 * DAY), true);
        assert_eq!(grace.remaining_seconds(at(5 * DAY)), GRACE_PERIOD_SECONDS);
        let grace = grace.step(at(5 * DAY), false);
        assert_eq!(grace.used_seconds, 0);
    }

    #[test]
    fn usage_delta_replaces_an_instance_report() {
        let mut sums = totals(&[("ESS-AC-100G-RTU-1", 3), ("A900-IMA8Z-TRK", 2)]);
        apply_usage_delta(
            &mut sums,
            &usage(&[("ESS-AC-100G-RTU-1", 1), ("A900-IMA8Z-TRK", 2)]),
            &usage(&[("ESS-AC-100G-RTU-1", 2), ("ADV-AC-10G-RTU-1", 1)]),
        );
        assert_eq!(
            sums,
            totals(&[("ESS-AC-100G-RTU-1", 4), ("ADV-AC-10G-RTU-1", 1)])
        );
    }

    const TAGS: [&str; 12] = [
        "ESS-AC-10G-RTU-1",
        "ESS-AC-100G-RTU-1",
        "ESS-AC-400G-RTU-1",
        "ADV-AC-100G-RTU-1",
        "ADV-AC-400G-RTU-1",
        "ESS-AC-100G-SIA-3",
        "ESS-AC-400G-SIA-3",
        "ADV-AC-100G-SIA-3",
        "N560-4-SYS-E-TRK",
        "A900-IMA8Z-TRK",
        "OPS-CE-100G-RTU-1",
        "UNKNOWN-THING-RTU-1",
    ];

    fn tag_strategy() -> impl Strategy<Value = String> {
        prop::sample::select(TAGS.to_vec()).prop_map(str::to_string)
    }

    fn pool_strategy() -> impl Strategy<Value = Vec<PoolLicense>> {
        let bound = prop::option::of(-10i64..10);
        prop::collection::vec((tag_strategy(), 0u64..8, bound.clone(), bound), 0..10).prop_map(
            |lines| {
                lines
                    .into_iter()
                    .filter(|(tag, ..)| !tag.starts_with("UNKNOWN"))
                    .map(|(tag, quantity, start, end)| PoolLicense {
                        kind: catalog::kind_of(&tag).unwrap_or(LicenseKind::Rtu),
                        tag,
                        quantity,
                        starts_at: start.map(|d| at(d * DAY)),
                        ends_at: end.map(|d| at(d * DAY)),
                    })
                    .collect()
            },
        )
    }

    fn transfer_strategy() -> impl Strategy<Value = Vec<TagAdjustment>> {
        prop::collection::vec((tag_strategy(), -6i64..6), 0..4).prop_map(|items| {
            items
                .into_iter()
                .filter(|(tag, _)| !tag.starts_with("UNKNOWN"))
                .map(|(tag, delta)| TagAdjustment { tag, delta })
                .collect()
        })
    }

    fn report_strategy() -> impl Strategy<Value = Vec<(String, u64)>> {
        prop::collection::vec((tag_strategy(), 0u64..12), 0..6)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn status_matches_coverage(
            pool in pool_strategy(),
            transfers in transfer_strategy(),
            report in report_strategy(),
        ) {
            let in_use = sum_usage([report.as_slice()]);
            let va = va_summary(&pool, &transfers, &in_use, at(0));
            let mut lent: BTreeMap<&str, u64> = BTreeMap::new();
            for entry in &va.tags {
                let known = catalog::lookup(&entry.tag).is_some()
                    || pool.iter().any(|l| l.tag == entry.tag)
                    || transfers.iter().any(|t| t.tag == entry.tag);
                let mut coverage = 0u64;
                for (higher, units) in &entry.substituted_from {
                    prop_assert_eq!(entry.kind, LicenseKind::Rtu);
                    let high = va.tag(higher).unwrap();
                    prop_assert_eq!(high.kind, LicenseKind::Rtu);
                    let factor = catalog::substitution_factor(higher, &entry.tag).unwrap();
                    coverage += units * u64::from(factor);
                    *lent.entry(higher.as_str()).or_default() += units;
                }
                prop_assert_eq!(coverage, entry.covered_by_substitution);
                if entry.kind != LicenseKind::Rtu {
                    prop_assert!(entry.substituted_from.is_empty());
                    prop_assert_eq!(entry.substituted_to, 0);
                }
                let expected = if !known {
                    EntitlementStatus::Invalid
                } else if entry.kind == LicenseKind::Tracking
                    || entry.in_use <= entry.available + coverage
                {
                    EntitlementStatus::Authorized
                } else {
                    EntitlementStatus::OutOfCompliance
                };
                prop_assert_eq!(entry.status, expected);
                // Lending never eats into the higher tag's own usage.
                prop_assert!(entry.in_use.saturating_add(entry.substituted_to) <= entry.available
                    || entry.substituted_to == 0);
            }
            for entry in &va.tags {
                prop_assert_eq!(lent.get(entry.tag.as_str()).copied().unwrap_or(0), entry.substituted_to);
                // A lower tag left short means no eligible higher tag had a unit to spare.
                if entry.status == EntitlementStatus::OutOfCompliance {
                    for higher in &va.tags {
                        if catalog::substitution_factor(&higher.tag, &entry.tag).is_some()
                            && higher.kind == LicenseKind::Rtu
                            && entry.kind == LicenseKind::Rtu
                        {
                            prop_assert_eq!(higher.spare(), 0);
                        }
                    }
                }
            }
            prop_assert_eq!(va.overall, overall(va.tags.iter().map(|t| t.status)));
            for tier in &va.sia {
                prop_assert_eq!(tier.in_compliance, tier.required <= tier.available);
                prop_assert_eq!(tier.reason.is_none(), tier.in_compliance);
            }
        }

        #[test]
        fn incremental_totals_equal_recomputation(
            steps in prop::collection::vec((0usize..4, report_strategy()), 0..30),
        ) {
            let mut latest: Vec<Vec<(String, u64)>> = vec![Vec::new(); 4];
            let mut running = BTreeMap::new();
            for (instance, report) in steps {
                apply_usage_delta(&mut running, &latest[instance], &report);
                latest[instance] = report;
                let fresh = sum_usage(latest.iter().map(Vec::as_slice));
                prop_assert_eq!(&running, &fresh);
            }
        }

        #[test]
        fn grace_never_negative_and_never_grows(
            steps in prop::collection::vec((0i64..(20 * DAY), any::<bool>()), 1..40),
        ) {
            let mut grace = SiaGrace::default();
            let mut now = at(0);
            let mut previous = grace.remaining_seconds(now);
            for (advance, ooc) in steps {
                now += TimeDelta::seconds(advance);
                let before_step = grace.remaining_seconds(now);
                prop_assert!(before_step <= previous);
                grace = grace.step(now, ooc);
                let remaining = grace.remaining_seconds(now);
                prop_assert_eq!(remaining, before_step);
                prop_assert!(remaining >= 0);
                prop_assert_eq!(
                    grace.upgrades_allowed(now, !ooc),
                    !ooc || remaining > 0
                );
                previous = remaining;
            }
        }
    }
}
