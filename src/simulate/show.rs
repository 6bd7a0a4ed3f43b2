//! The `show license ...` screens of a simulated IOS XR router, drawn from what the satellite answered.
//! Pure text rendering: it must never decide licensing outcomes, read the clock or do I/O.

use chrono::{DateTime, Utc};

use super::device::{chassis_tracking_tag, Chassis};

/// One entitlement as the satellite last authorized it for this router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownEntitlement {
    pub tag: String,
    /// Empty until the satellite has described the tag (before registration).
    pub description: String,
    pub count: u32,
    /// Contract code: `AUTHORIZED`, `OUT_OF_COMPLIANCE`, `NOT_AUTHORIZED`,
    /// `AUTHORIZATION_EXPIRED`, `INVALID` (or an evaluation state).
    pub status: String,
}

/// Software Innovation Access standing as the satellite reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownSia {
    /// `IN_COMPLIANCE` or `OUT_OF_COMPLIANCE`.
    pub status: String,
    /// Why SIA is out of compliance: a contract status code such as
    /// `NOT_AUTHORIZED`, or free text.
    pub reason: Option<String>,
    pub grace_remaining_seconds: i64,
    pub upgrades_allowed: bool,
}

/// Everything the screens show: the router's own model plus the latest
/// answers of the satellite. `registered_at == None` means unregistered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLicenseState {
    pub chassis: Chassis,
    pub smart_account: Option<String>,
    pub virtual_account: Option<String>,
    pub export_controlled: bool,
    pub registered_at: Option<DateTime<Utc>>,
    pub registration_expires: Option<DateTime<Utc>>,
    pub next_renewal: Option<DateTime<Utc>>,
    pub last_authorization: Option<DateTime<Utc>>,
    pub next_communication: Option<DateTime<Utc>>,
    pub communication_deadline: Option<DateTime<Utc>>,
    /// Contract code of the overall authorization status.
    pub overall_status: String,
    /// In the order the satellite returned them; the screens keep it.
    pub entitlements: Vec<ShownEntitlement>,
    pub sia: Option<ShownSia>,
    /// Call Home destination the router posts to.
    pub transport_url: String,
}

/// Smart agent build the guide's routers report; the simulator claims the same.
pub const SMART_AGENT_VERSION: &str = "4.9.6_rel/41";

/// Every entitlement of the simulated platform is version 1.0 and carries no
/// export restriction in the guide's screens.
const ENTITLEMENT_VERSION: &str = "1.0";
const EXPORT_STATUS: &str = "NOT RESTRICTED";

/// The summary table's description column holds this many characters; longer
/// descriptions keep their first `SUMMARY_DESCRIPTION_KEEP` and an ellipsis.
const SUMMARY_DESCRIPTION_WIDTH: usize = 23;
const SUMMARY_DESCRIPTION_KEEP: usize = 20;
/// Columns from the start of the tag to the last digit of the count.
const SUMMARY_TAG_AND_COUNT_WIDTH: usize = 29;
const SUMMARY_HEADER: &str =
    "  License                               Entitlement tag                Count Status";

/// Hanging indent of the continuation lines under `Collection:` and `SIA Status:`.
const PLATFORM_INDENT: &str = "           ";

/// `Jul 01 2020 07:14:24 UTC`: how the licensing screens print an instant.
pub fn router_date(at: &DateTime<Utc>) -> String {
    at.format("%b %d %Y %H:%M:%S UTC").to_string()
}

/// `Mon Jan 25 2021 21:30:42 UTC`: the platform summary adds the weekday.
pub fn platform_date(at: &DateTime<Utc>) -> String {
    at.format("%a %b %d %Y %H:%M:%S UTC").to_string()
}

/// `Mon Jul  6 07:13:23.823 UTC`: the line the XR CLI prints before the
/// output of every command. The screens leave it out so that they depend
/// only on the licence state; a caller drawing a whole terminal adds it.
pub fn command_timestamp(now: &DateTime<Utc>) -> String {
    now.format("%a %b %e %H:%M:%S%.3f UTC").to_string()
}

fn date_or_none(at: Option<&DateTime<Utc>>) -> String {
    at.map_or_else(|| "None".to_string(), router_date)
}

/// Contract codes become the capitalised words of the licensing screens
/// (`OUT_OF_COMPLIANCE` -> `OUT OF COMPLIANCE`).
fn screen_status(code: &str) -> String {
    code.trim().replace('_', " ").to_uppercase()
}

/// Contract codes become the title-case words of the platform screens
/// (`NOT_AUTHORIZED` -> `Not Authorized`); free text passes unchanged.
fn platform_words(text: &str) -> String {
    let text = text.trim();
    let is_code = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !is_code {
        return text.to_string();
    }
    text.split('_')
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => {
                    let rest: String = chars.as_str().to_lowercase();
                    format!("{first}{rest}")
                }
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_registered(state: &DeviceLicenseState) -> bool {
    state.registered_at.is_some()
}

fn enabled_or_disabled(on: bool) -> &'static str {
    if on {
        "ENABLED"
    } else {
        "DISABLED"
    }
}

/// Appends `line` and a newline; keeps the builders below readable.
fn push(out: &mut String, line: &str) {
    out.push_str(line);
    out.push('\n');
}

fn registration_section(out: &mut String, state: &DeviceLicenseState, detailed: bool) {
    push(out, "Registration:");
    let export = if state.export_controlled {
        "ALLOWED"
    } else {
        "NOT ALLOWED"
    };
    let Some(registered_at) = state.registered_at.as_ref() else {
        push(out, "  Status: UNREGISTERED");
        push(out, &format!("  Export-Controlled Functionality: {export}"));
        return;
    };
    push(out, "  Status: REGISTERED");
    if let Some(account) = &state.smart_account {
        push(out, &format!("  Smart Account: {account}"));
    }
    if let Some(va) = &state.virtual_account {
        push(out, &format!("  Virtual Account: {va}"));
    }
    push(out, &format!("  Export-Controlled Functionality: {export}"));
    if detailed {
        push(
            out,
            &format!(
                "  Initial Registration: SUCCEEDED on {}",
                router_date(registered_at)
            ),
        );
    }
    // The state carries no renewal history: the simulated router renews by
    // registering afresh, so it never has a renewal attempt to report.
    push(out, "  Last Renewal Attempt: None");
    push(
        out,
        &format!(
            "  Next Renewal Attempt: {}",
            date_or_none(state.next_renewal.as_ref())
        ),
    );
    if detailed {
        push(
            out,
            &format!(
                "  Registration Expires: {}",
                date_or_none(state.registration_expires.as_ref())
            ),
        );
    }
}

/// `Status: OUT OF COMPLIANCE on <date>`; the state keeps no separate time of
/// the last status change, so the last authorization stands in for it.
fn dated_status_line(state: &DeviceLicenseState) -> String {
    let status = screen_status(&state.overall_status);
    match (is_registered(state), state.last_authorization.as_ref()) {
        (true, Some(at)) => format!("  Status: {status} on {}", router_date(at)),
        _ => format!("  Status: {status}"),
    }
}

fn authorization_section(out: &mut String, state: &DeviceLicenseState, detailed: bool) {
    push(out, "License Authorization:");
    if !is_registered(state) {
        push(
            out,
            &format!("  Status: {}", screen_status(&state.overall_status)),
        );
        return;
    }
    if detailed {
        push(out, &dated_status_line(state));
    } else {
        push(
            out,
            &format!("  Status: {}", screen_status(&state.overall_status)),
        );
    }
    let last = match (state.last_authorization.as_ref(), detailed) {
        (Some(at), true) => format!("SUCCEEDED on {}", router_date(at)),
        (Some(_), false) => "SUCCEEDED".to_string(),
        (None, _) => "None".to_string(),
    };
    push(out, &format!("  Last Communication Attempt: {last}"));
    push(
        out,
        &format!(
            "  Next Communication Attempt: {}",
            date_or_none(state.next_communication.as_ref())
        ),
    );
    if detailed {
        push(
            out,
            &format!(
                "  Communication Deadline: {}",
                date_or_none(state.communication_deadline.as_ref())
            ),
        );
    }
}

fn export_key_section(out: &mut String) {
    push(out, "Export Authorization Key:");
    push(out, "  Features Authorized:");
    push(out, "    <none>");
}

fn utility_privacy_transport_sections(out: &mut String, state: &DeviceLicenseState) {
    push(out, "Utility:");
    push(out, "  Status: DISABLED");
    push(out, "");
    let sends_hostname = state.chassis.hostname.is_some();
    push(out, "Data Privacy:");
    push(
        out,
        &format!(
            "  Sending Hostname: {}",
            if sends_hostname { "yes" } else { "no" }
        ),
    );
    push(out, "  Callhome hostname privacy: DISABLED");
    push(
        out,
        &format!(
            "  Smart Licensing hostname privacy: {}",
            enabled_or_disabled(!sends_hostname)
        ),
    );
    push(out, "  Version privacy: DISABLED");
    push(out, "");
    push(out, "Transport:");
    push(out, "  Type: Callhome");
}

/// One entitlement block of `show license all` / `show license usage`,
/// followed by its separating empty line.
fn entitlement_block(out: &mut String, entitlement: &ShownEntitlement) {
    let description = entitlement.description.trim();
    if description.is_empty() {
        push(out, &format!("({}):", entitlement.tag));
        push(out, "  Description:");
    } else {
        push(out, &format!("{description} ({}):", entitlement.tag));
        push(out, &format!("  Description: {description}"));
    }
    push(out, &format!("  Count: {}", entitlement.count));
    push(out, &format!("  Version: {ENTITLEMENT_VERSION}"));
    push(
        out,
        &format!("  Status: {}", screen_status(&entitlement.status)),
    );
    push(out, &format!("  Export status: {EXPORT_STATUS}"));
    push(out, "");
}

/// `show license all`.
pub fn show_license_all(state: &DeviceLicenseState) -> String {
    let mut out = String::new();
    push(&mut out, "");
    push(&mut out, "Smart Licensing Status");
    push(&mut out, "=====");
    push(&mut out, "");
    push(&mut out, "Smart Licensing is ENABLED");
    push(&mut out, "");
    registration_section(&mut out, state, true);
    push(&mut out, "");
    authorization_section(&mut out, state, true);
    push(&mut out, "");
    export_key_section(&mut out);
    push(&mut out, "");
    utility_privacy_transport_sections(&mut out, state);
    push(&mut out, "");
    push(&mut out, "License Usage");
    push(&mut out, "=====");
    push(&mut out, "");
    for entitlement in &state.entitlements {
        entitlement_block(&mut out, entitlement);
    }
    push(&mut out, "Product Information");
    push(&mut out, "=====");
    push(&mut out, &format!("UDI: {}", state.chassis.udi()));
    push(&mut out, "");
    push(&mut out, "Agent Version");
    push(&mut out, "=====");
    push(
        &mut out,
        &format!("Smart Agent for Licensing: {SMART_AGENT_VERSION}"),
    );
    push(&mut out, "");
    push(&mut out, "Reservation Info");
    push(&mut out, "=====");
    push(&mut out, "License reservation: DISABLED");
    out
}

/// `show license status`.
pub fn show_license_status(state: &DeviceLicenseState) -> String {
    let mut out = String::new();
    push(&mut out, "");
    push(&mut out, "Smart Licensing is ENABLED");
    push(&mut out, "");
    utility_privacy_transport_sections(&mut out, state);
    push(&mut out, "");
    registration_section(&mut out, state, true);
    push(&mut out, "");
    authorization_section(&mut out, state, true);
    push(&mut out, "");
    export_key_section(&mut out);
    push(&mut out, "");
    out
}

/// `show license usage`.
pub fn show_license_usage(state: &DeviceLicenseState) -> String {
    let mut out = String::new();
    push(&mut out, "");
    push(&mut out, "License Authorization:");
    push(&mut out, &dated_status_line(state));
    push(&mut out, "");
    for entitlement in &state.entitlements {
        entitlement_block(&mut out, entitlement);
    }
    out
}

fn summary_row(entitlement: &ShownEntitlement) -> String {
    let description = entitlement.description.trim();
    let license: String = if description.chars().count() > SUMMARY_DESCRIPTION_WIDTH {
        let kept: String = description.chars().take(SUMMARY_DESCRIPTION_KEEP).collect();
        format!("{kept}...")
    } else {
        format!("{description:<SUMMARY_DESCRIPTION_WIDTH$}")
    };
    let tag = format!("({})", entitlement.tag);
    let count = entitlement.count.to_string();
    let mut gap = SUMMARY_TAG_AND_COUNT_WIDTH
        .saturating_sub(tag.chars().count() + count.len())
        .max(1);
    // The guide prints the count of its one out-of-compliance row a column
    // further right than those of its authorized rows; it is the only
    // reference for this screen, so the layout is kept as published.
    if entitlement.status.trim() != "AUTHORIZED" {
        gap += 1;
    }
    format!(
        "  {license} {tag}{}{count} {}",
        " ".repeat(gap),
        screen_status(&entitlement.status)
    )
}

/// `show license summary`.
pub fn show_license_summary(state: &DeviceLicenseState) -> String {
    let mut out = String::new();
    push(&mut out, "");
    push(&mut out, "Smart Licensing is ENABLED");
    push(&mut out, "");
    registration_section(&mut out, state, false);
    push(&mut out, "");
    authorization_section(&mut out, state, false);
    push(&mut out, "");
    push(&mut out, "License Usage:");
    push(&mut out, SUMMARY_HEADER);
    push(&mut out, "  -----");
    for entitlement in &state.entitlements {
        push(&mut out, &summary_row(entitlement));
    }
    push(&mut out, "");
    out
}

fn sia_lines(out: &mut String, sia: Option<&ShownSia>) {
    let Some(sia) = sia else {
        // No authorization has carried an SIA verdict yet.
        push(out, "SIA Status: Not Available");
        return;
    };
    if sia.status.trim() != "OUT_OF_COMPLIANCE" {
        push(out, "SIA Status: In Compliance");
        return;
    }
    let reason = sia
        .reason
        .as_deref()
        .map(platform_words)
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "Out of Compliance".to_string());
    push(out, "*****IMPORTANT*****");
    if sia.upgrades_allowed {
        let seconds = sia.grace_remaining_seconds.max(0);
        let days = seconds / 86_400;
        let hours = seconds % 86_400 / 3_600;
        push(
            out,
            &format!(
                "SIA Status: Out of Compliance(Remaining Grace Period: {days} days, {hours} hours)"
            ),
        );
        push(
            out,
            &format!("{PLATFORM_INDENT}SIA license(s) status is {reason}."),
        );
        push(
            out,
            &format!(
                "{PLATFORM_INDENT}SW Upgrade will still be allowed as SIA Grace Period is remaining"
            ),
        );
    } else {
        push(out, "SIA Status: Out of Compliance(Grace Period Expired)");
        push(
            out,
            &format!(
                "{PLATFORM_INDENT}SW Upgrades are blocked as SIA license(s) are in \"{reason}\" state"
            ),
        );
    }
    push(out, "*****");
}

/// Rows of the platform table: (feature area, entitlement, last, next).
fn platform_rows(chassis: &Chassis) -> Vec<(String, String, u32, u32)> {
    let mut cards: std::collections::BTreeMap<&str, u32> = std::collections::BTreeMap::new();
    for card in &chassis.line_cards {
        let slot = cards.entry(card.as_str()).or_insert(0);
        *slot = slot.saturating_add(1);
    }
    // "Next" is what the running collection window has counted so far; the
    // simulated platform draws the screen right after a collection, as the
    // guide's samples do, so it is always empty.
    let mut rows: Vec<(String, String, u32, u32)> = cards
        .into_iter()
        .map(|(pid, count)| {
            (
                "FCM".to_string(),
                format!("Total {pid} LCs in the system"),
                count,
                0,
            )
        })
        .collect();
    if chassis_tracking_tag(&chassis.pid).is_some() {
        rows.push((
            "FCM".to_string(),
            format!("{} Base Hardware Tracking PID", chassis.pid),
            1,
            0,
        ));
    }
    rows
}

fn platform_table(out: &mut String, chassis: &Chassis) {
    const AREA: &str = "Feature/Area";
    const ENTITLEMENT: &str = "Entitlement";
    let rows = platform_rows(chassis);
    let area_width = rows
        .iter()
        .map(|r| r.0.chars().count())
        .chain([AREA.len()])
        .max()
        .unwrap_or(AREA.len());
    let entitlement_width = rows
        .iter()
        .map(|r| r.1.chars().count())
        .chain([ENTITLEMENT.len()])
        .max()
        .unwrap_or(ENTITLEMENT.len());
    let rule = format!(
        "+{}+{}+------+------+",
        "-".repeat(area_width + 2),
        "-".repeat(entitlement_width + 2)
    );
    push(out, &rule);
    push(
        out,
        &format!("| {AREA:<area_width$} | {ENTITLEMENT:<entitlement_width$} |    Count    |"),
    );
    push(
        out,
        &format!(
            "| {:<area_width$} | {:<entitlement_width$} | Last | Next |",
            "", ""
        ),
    );
    push(out, &rule);
    for (area, entitlement, last, next) in &rows {
        push(
            out,
            &format!("| {area:<area_width$} | {entitlement:<entitlement_width$} | {last:>4} | {next:>4} |"),
        );
    }
    push(out, &rule);
}

/// `show license platform summary`: collection times, SIA standing and the
/// hardware the platform counts.
pub fn show_license_platform_summary(state: &DeviceLicenseState) -> String {
    let last = state
        .last_authorization
        .as_ref()
        .map_or_else(|| "None".to_string(), platform_date);
    let next = state
        .next_communication
        .as_ref()
        .map_or_else(|| "None".to_string(), platform_date);
    let mut out = String::new();
    push(&mut out, &format!("Collection: LAST: {last}"));
    push(&mut out, &format!("{PLATFORM_INDENT}NEXT: {next}"));
    push(&mut out, &format!("Reporting:  LAST: {last}"));
    push(&mut out, &format!("{PLATFORM_INDENT}NEXT: {next}"));
    sia_lines(&mut out, state.sia.as_ref());
    platform_table(&mut out, &state.chassis);
    out
}

/// `show call-home profile all`: where the router sends its licensing
/// messages, in the layout of the guide's first example.
pub fn show_call_home_profile_all(state: &DeviceLicenseState) -> String {
    let mut out = String::new();
    push(&mut out, "Profile Name: CiscoTAC-1");
    push(&mut out, "Profile status: ACTIVE");
    push(&mut out, "Profile mode: Full Reporting");
    push(&mut out, "Reporting Data: Smart Call Home, Smart Licensing");
    push(&mut out, "Preferred Message Format: xml");
    push(&mut out, "Message Size Limit: 3145728 Bytes");
    push(&mut out, "Transport Method: http");
    push(
        &mut out,
        &format!("HTTP address(es): {}", state.transport_url),
    );
    push(&mut out, "Other address(es): default");
    push(&mut out, "");
    push(
        &mut out,
        "Periodic configuration info message is scheduled every 5 day of the month at 9 :51",
    );
    push(&mut out, "");
    push(
        &mut out,
        "Periodic inventory info message is scheduled every 5 day of the month at 9 :36",
    );
    push(&mut out, "");
    push(&mut out, "Alert-group          Severity");
    push(&mut out, "-----");
    push(&mut out, "inventory            normal");
    push(&mut out, "");
    push(&mut out, "Syslog-Pattern      Severity");
    push(&mut out, "-----");
    push(&mut out, ".*                  critical");
    out
}

/// The state behind the guide's "Viewing License Information After
/// Registration" screens: the seed router registered to the smart account
/// "Forty-Two uLtd.", virtual account "IOSXR", with no license purchased, so
/// its Essentials 100G usage is out of compliance while the tracking PIDs are
/// authorized. Dates are those of the guide's `show license status`.
pub fn seed_scenario_state() -> DeviceLicenseState {
    use super::device::{known_description, seed_scenario};
    use chrono::TimeZone;

    let at = |y, mo, d, h, mi, s| Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single();
    let shown = |tag: &str, count: u32, status: &str| ShownEntitlement {
        tag: tag.to_string(),
        description: known_description(tag).unwrap_or_default().to_string(),
        count,
        status: status.to_string(),
    };
    DeviceLicenseState {
        chassis: seed_scenario(),
        smart_account: Some("Forty-Two uLtd.".to_string()),
        virtual_account: Some("IOSXR".to_string()),
        export_controlled: true,
        registered_at: at(2020, 7, 1, 7, 14, 24),
        registration_expires: at(2021, 7, 1, 7, 1, 42),
        next_renewal: at(2020, 12, 28, 7, 14, 23),
        last_authorization: at(2020, 7, 6, 7, 15, 57),
        next_communication: at(2020, 7, 6, 19, 15, 57),
        communication_deadline: at(2020, 10, 4, 7, 10, 56),
        overall_status: "OUT_OF_COMPLIANCE".to_string(),
        // The guide lists them in this order rather than sorted.
        entitlements: vec![
            shown("ESS-AC-100G-RTU-1", 1, "OUT_OF_COMPLIANCE"),
            shown("N560-4-SYS-E-TRK", 1, "AUTHORIZED"),
            shown("A900-IMA8Z-TRK", 2, "AUTHORIZED"),
            shown("A900-IMA8CS1ZM-TRK", 1, "AUTHORIZED"),
        ],
        sia: Some(ShownSia {
            status: "IN_COMPLIANCE".to_string(),
            reason: None,
            grace_remaining_seconds: 90 * 86_400,
            upgrades_allowed: true,
        }),
        transport_url: "http://10.30.110.38/Transportgateway/services/RouterRequestHandler"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const SUMMARY: &str = include_str!("../../tests/fixtures/show/summary_after_registration.txt");
    const STATUS: &str = include_str!("../../tests/fixtures/show/status_after_registration.txt");
    const ALL: &str = include_str!("../../tests/fixtures/show/all_after_registration.txt");
    const ALL_SEED: &str =
        include_str!("../../tests/fixtures/show/all_after_registration.seed.txt");
    const USAGE: &str = include_str!("../../tests/fixtures/show/usage_after_registration.txt");
    const USAGE_SEED: &str =
        include_str!("../../tests/fixtures/show/usage_after_registration.seed.txt");
    const PLATFORM_IN: &str =
        include_str!("../../tests/fixtures/show/platform_summary_in_compliance.txt");
    const PLATFORM_GRACE: &str =
        include_str!("../../tests/fixtures/show/platform_summary_grace_remaining.txt");
    const PLATFORM_EXPIRED: &str =
        include_str!("../../tests/fixtures/show/platform_summary_grace_expired.txt");

    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const DATE_PLACEHOLDER: &str = "<DATE>";

    /// Length of `Mmm DD YYYY HH:MM:SS UTC` at the start of `s`, if present.
    fn date_len(s: &str) -> Option<usize> {
        const SHAPE: &str = "Mmm 00 0000 00:00:00 UTC";
        let head = s.get(..SHAPE.len())?;
        if !MONTHS.iter().any(|m| head.starts_with(m)) {
            return None;
        }
        let fits = SHAPE
            .chars()
            .zip(head.chars())
            .all(|(want, got)| match want {
                '0' => got.is_ascii_digit(),
                'M' | 'm' => got.is_ascii_alphabetic(),
                other => other == got,
            });
        fits.then_some(SHAPE.len())
    }

    /// Replaces every `[Ddd ]Mmm DD YYYY HH:MM:SS UTC` with a placeholder.
    fn normalise_dates(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(ch) = rest.chars().next() {
            let weekday = WEEKDAYS
                .iter()
                .any(|d| rest.starts_with(d) && rest[3..].starts_with(' '));
            let skip = if weekday { 4 } else { 0 };
            if let Some(len) = rest.get(skip..).and_then(date_len) {
                out.push_str(DATE_PLACEHOLDER);
                rest = &rest[skip + len..];
            } else {
                out.push(ch);
                rest = &rest[ch.len_utf8()..];
            }
        }
        out
    }

    fn lines(text: &str) -> Vec<String> {
        normalise_dates(text).lines().map(str::to_string).collect()
    }

    /// Line-for-line comparison with a readable report of the first mismatch.
    fn assert_same_screen(actual: &str, expected: &str) {
        let got = lines(actual);
        let want = lines(expected);
        for (n, (g, w)) in got.iter().zip(want.iter()).enumerate() {
            assert_eq!(g, w, "line {} differs\n--- got ---\n{actual}", n + 1);
        }
        assert_eq!(
            got.len(),
            want.len(),
            "line counts differ\n--- got ---\n{actual}"
        );
    }

    /// A screen with indentation and empty lines removed and the guide's one
    /// wrapped, `+`-less description line put back together.
    fn skeleton(text: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if line == "Module" {
                if let Some(last) = out.last_mut() {
                    if last.ends_with("Interface") {
                        last.push_str(" Module");
                        continue;
                    }
                }
            }
            out.push(line.replace("1GE 1-port", "1GE + 1-port"));
        }
        out
    }

    #[test]
    fn date_normaliser_covers_both_date_shapes() {
        assert_eq!(
            normalise_dates("on Jul 01 2020 07:14:24 UTC."),
            "on <DATE>."
        );
        assert_eq!(
            normalise_dates("LAST: Mon Jan 25 2021 21:30:42 UTC"),
            "LAST: <DATE>"
        );
        assert_eq!(normalise_dates("Mon Jul 6 07:13"), "Mon Jul 6 07:13");
    }

    #[test]
    fn dates_print_as_the_router_prints_them() {
        let at = Utc.with_ymd_and_hms(2020, 7, 1, 7, 14, 24).unwrap();
        assert_eq!(router_date(&at), "Jul 01 2020 07:14:24 UTC");
        let at = Utc.with_ymd_and_hms(2021, 1, 25, 21, 30, 42).unwrap();
        assert_eq!(platform_date(&at), "Mon Jan 25 2021 21:30:42 UTC");
        let at = Utc.with_ymd_and_hms(2020, 7, 6, 7, 13, 23).unwrap()
            + chrono::Duration::milliseconds(823);
        assert_eq!(command_timestamp(&at), "Mon Jul  6 07:13:23.823 UTC");
    }

    #[test]
    fn summary_matches_the_guide_line_for_line() {
        assert_same_screen(&show_license_summary(&seed_scenario_state()), SUMMARY);
    }

    #[test]
    fn summary_matches_the_guide_without_date_normalising_apart_from_the_one_odd_second() {
        // The summary's dates come from the same state as the other screens;
        // only the renewal second differs in the guide (07:14:24 vs 07:14:23).
        let rendered = show_license_summary(&seed_scenario_state());
        let expected = SUMMARY.replace("Dec 28 2020 07:14:24", "Dec 28 2020 07:14:23");
        assert_eq!(rendered, expected);
    }

    #[test]
    fn status_matches_the_guide_line_for_line() {
        assert_same_screen(&show_license_status(&seed_scenario_state()), STATUS);
    }

    #[test]
    fn all_matches_the_repaired_guide_screen() {
        assert_same_screen(&show_license_all(&seed_scenario_state()), ALL);
    }

    #[test]
    fn usage_matches_the_repaired_guide_screen() {
        assert_same_screen(&show_license_usage(&seed_scenario_state()), USAGE);
    }

    #[test]
    fn repaired_fixtures_differ_from_the_guide_only_in_the_documented_ways() {
        assert_eq!(skeleton(ALL), skeleton(ALL_SEED));
        assert_eq!(skeleton(USAGE), skeleton(USAGE_SEED));
        // The verbatim parts really are verbatim.
        let intact: Vec<&str> = ALL_SEED.lines().take(58).collect();
        let repaired: Vec<&str> = ALL.lines().take(58).collect();
        assert_eq!(intact, repaired);
    }

    fn platform_state(sia: Option<ShownSia>) -> DeviceLicenseState {
        let mut state = seed_scenario_state();
        state.sia = sia;
        state.last_authorization = Utc.with_ymd_and_hms(2021, 1, 25, 21, 30, 42).single();
        state.next_communication = Utc.with_ymd_and_hms(2021, 1, 25, 21, 31, 42).single();
        state
    }

    fn out_of_compliance(grace_remaining_seconds: i64, upgrades_allowed: bool) -> ShownSia {
        ShownSia {
            status: "OUT_OF_COMPLIANCE".to_string(),
            reason: Some("NOT_AUTHORIZED".to_string()),
            grace_remaining_seconds,
            upgrades_allowed,
        }
    }

    /// Cells of the box-drawn table, one vector per non-rule row.
    fn rendered_cells(table: &[&str]) -> Vec<Vec<String>> {
        table
            .iter()
            .filter(|l| l.starts_with('|'))
            .map(|l| {
                let inner = l.trim_start_matches('|').trim_end_matches('|');
                inner.split('|').map(|c| c.trim().to_string()).collect()
            })
            .collect()
    }

    /// Cells of the guide's tab-separated rendering of the same table.
    fn seed_cells(lines: &[&str]) -> Vec<Vec<String>> {
        lines
            .iter()
            .map(|l| {
                let mut cells: Vec<String> = l.split('\t').map(|c| c.trim().to_string()).collect();
                while cells.last().is_some_and(String::is_empty) {
                    cells.pop();
                }
                cells
            })
            .collect()
    }

    /// Compares the screen part exactly and the table cell by cell;
    /// `extra_rows` are rows the renderer shows that the guide's sample lacks.
    fn assert_platform_matches(actual: &str, fixture: &str, extra_rows: &[&[&str]]) {
        let actual = normalise_dates(actual);
        let fixture = normalise_dates(fixture);
        let (table, screen): (Vec<&str>, Vec<&str>) =
            actual.lines().partition(|l| l.starts_with(['|', '+']));
        let (seed_table, seed_screen): (Vec<&str>, Vec<&str>) =
            fixture.lines().partition(|l| l.contains('\t'));
        assert_eq!(screen, seed_screen, "\n--- got ---\n{actual}");
        let mut want = seed_cells(&seed_table);
        for row in extra_rows {
            want.push(row.iter().map(|c| c.to_string()).collect());
        }
        assert_eq!(rendered_cells(&table), want, "\n--- got ---\n{actual}");
    }

    const CHASSIS_ROW: &[&str] = &["FCM", "NCS560-4 Base Hardware Tracking PID", "1", "0"];

    #[test]
    fn platform_summary_in_compliance_matches_the_guide() {
        let state = platform_state(Some(ShownSia {
            status: "IN_COMPLIANCE".to_string(),
            reason: None,
            grace_remaining_seconds: 90 * 86_400,
            upgrades_allowed: true,
        }));
        assert_platform_matches(&show_license_platform_summary(&state), PLATFORM_IN, &[]);
    }

    #[test]
    fn platform_summary_in_grace_matches_the_guide_plus_the_chassis_row() {
        let state = platform_state(Some(out_of_compliance(90 * 86_400, true)));
        assert_platform_matches(
            &show_license_platform_summary(&state),
            PLATFORM_GRACE,
            &[CHASSIS_ROW],
        );
    }

    #[test]
    fn platform_summary_after_grace_matches_the_guide_plus_the_chassis_row() {
        let state = platform_state(Some(out_of_compliance(0, false)));
        assert_platform_matches(
            &show_license_platform_summary(&state),
            PLATFORM_EXPIRED,
            &[CHASSIS_ROW],
        );
    }

    #[test]
    fn platform_summary_counts_grace_in_days_and_hours() {
        let state = platform_state(Some(out_of_compliance(12 * 86_400 + 5 * 3_600 + 59, true)));
        let screen = show_license_platform_summary(&state);
        assert!(screen.contains("(Remaining Grace Period: 12 days, 5 hours)"));
    }

    #[test]
    fn platform_table_is_aligned() {
        let screen = show_license_platform_summary(&platform_state(None));
        let widths: Vec<usize> = screen
            .lines()
            .filter(|l| l.starts_with(['|', '+']))
            .map(|l| l.chars().count())
            .collect();
        assert!(widths.len() >= 6);
        assert!(widths.iter().all(|w| *w == widths[0]), "{screen}");
        assert!(screen.contains("SIA Status: Not Available"));
    }

    #[test]
    fn summary_keeps_short_descriptions_and_wide_counts_apart() {
        let mut state = seed_scenario_state();
        state.entitlements = vec![ShownEntitlement {
            tag: "A-VERY-LONG-ENTITLEMENT-TAG-1".to_string(),
            description: "Short".to_string(),
            count: 123,
            status: "AUTHORIZED".to_string(),
        }];
        let screen = show_license_summary(&state);
        assert!(screen
            .contains("  Short                   (A-VERY-LONG-ENTITLEMENT-TAG-1) 123 AUTHORIZED"));
    }

    #[test]
    fn unregistered_router_shows_the_before_registration_layout() {
        let mut state = seed_scenario_state();
        state.registered_at = None;
        state.smart_account = None;
        state.virtual_account = None;
        state.export_controlled = false;
        state.overall_status = "EVAL_EXPIRED".to_string();
        for e in &mut state.entitlements {
            e.description.clear();
            e.status = "EVAL_EXPIRED".to_string();
        }
        let all = show_license_all(&state);
        assert!(all.contains("Registration:\n  Status: UNREGISTERED\n  Export-Controlled Functionality: NOT ALLOWED\n"));
        assert!(all.contains("License Authorization:\n  Status: EVAL EXPIRED\n"));
        assert!(all.contains("(ESS-AC-100G-RTU-1):\n  Description:\n  Count: 1\n"));
        assert!(!all.contains("Smart Account"));
        let summary = show_license_summary(&state);
        assert!(summary.contains("(N560-4-SYS-E-TRK)"));
        assert!(summary.contains("EVAL EXPIRED"));
    }

    #[test]
    fn hostname_privacy_shows_in_data_privacy() {
        let mut state = seed_scenario_state();
        state.chassis.hostname = None;
        let status = show_license_status(&state);
        assert!(status.contains("  Sending Hostname: no\n"));
        assert!(status.contains("  Smart Licensing hostname privacy: ENABLED\n"));
    }

    #[test]
    fn every_contract_status_has_router_words() {
        assert_eq!(screen_status("AUTHORIZED"), "AUTHORIZED");
        assert_eq!(screen_status("OUT_OF_COMPLIANCE"), "OUT OF COMPLIANCE");
        assert_eq!(screen_status("NOT_AUTHORIZED"), "NOT AUTHORIZED");
        assert_eq!(
            screen_status("AUTHORIZATION_EXPIRED"),
            "AUTHORIZATION EXPIRED"
        );
        assert_eq!(screen_status("INVALID"), "INVALID");
        assert_eq!(platform_words("NOT_AUTHORIZED"), "Not Authorized");
        assert_eq!(
            platform_words("AUTHORIZATION_EXPIRED"),
            "Authorization Expired"
        );
        assert_eq!(platform_words("SIA term ended"), "SIA term ended");
    }

    #[test]
    fn call_home_profile_names_the_transport_url() {
        let screen = show_call_home_profile_all(&seed_scenario_state());
        assert!(screen.contains(
            "HTTP address(es): http://10.30.110.38/Transportgateway/services/RouterRequestHandler\n"
        ));
    }
}
