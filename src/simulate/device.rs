//! The hardware and configuration of a simulated IOS XR router, and the licence usage it implies.
//! Pure data and arithmetic: it must never touch the network, the database or the clock.

use std::collections::BTreeMap;

/// What the simulator knows about one router: enough to derive its licence
/// usage and to fill the identity fields of its Call Home messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chassis {
    /// Chassis product ID as it appears in the UDI, e.g. `NCS560-4`.
    pub pid: String,
    /// Chassis serial number (11 characters, e.g. `FOX2305P81D`).
    pub serial: String,
    /// `None` models hostname privacy: the router withholds its name.
    pub hostname: Option<String>,
    pub software_version: String,
    /// Product IDs of the installed interface modules, one entry per module.
    pub line_cards: Vec<String>,
    pub ports_100g_essentials: u32,
    pub ports_100g_advantage: u32,
    /// Configured VRF tables (VRF-lite included); drives the L3VPN licence.
    pub vrfs: u32,
}

/// Hardware tracking licence consumed by each chassis the guide covers.
/// A chassis missing here simply reports no tracking licence of its own.
const CHASSIS_TRACKING: &[(&str, &str)] = &[("NCS560-4", "N560-4-SYS-E-TRK")];

/// Tracking licences of the interface modules named in the guide. The module
/// PIDs do not always map to the tag by appending `-TRK` (the hyphen in
/// `A900-IMA8CS1Z-M` disappears from its tag), hence the table.
const LINE_CARD_TRACKING: &[(&str, &str)] = &[
    ("A900-IMA8Z", "A900-IMA8Z-TRK"),
    ("A900-IMA8CS1Z-M", "A900-IMA8CS1ZM-TRK"),
    ("N560-IMA2C", "N560-IMA2C-TRK"),
];

pub const ESS_100G_RTU: &str = "ESS-AC-100G-RTU-1";
pub const ADV_100G_RTU: &str = "ADV-AC-100G-RTU-1";
pub const ESS_10G_RTU: &str = "ESS-AC-10G-RTU-1";
pub const ADV_10G_RTU: &str = "ADV-AC-10G-RTU-1";

/// The guide's L3VPN rule: up to this many VRF tables need only the
/// Essentials 10G licence; one more and the Advantage one is required.
pub const L3VPN_ESSENTIALS_MAX_VRFS: u32 = 8;

/// Tracking licence of a chassis PID, if the model knows one.
pub fn chassis_tracking_tag(pid: &str) -> Option<&'static str> {
    CHASSIS_TRACKING
        .iter()
        .find(|(p, _)| *p == pid)
        .map(|(_, tag)| *tag)
}

/// Tracking licence of an interface module PID. Modules outside the table
/// follow the common `<PID>-TRK` naming so that unfamiliar hardware is still
/// counted rather than silently dropped.
pub fn line_card_tracking_tag(pid: &str) -> String {
    LINE_CARD_TRACKING
        .iter()
        .find(|(p, _)| *p == pid)
        .map(|(_, tag)| (*tag).to_string())
        .unwrap_or_else(|| format!("{pid}-TRK"))
}

/// The back end's description of a tag, when this model knows it.
pub fn known_description(tag: &str) -> Option<&'static str> {
    crate::domain::catalog::lookup(tag).map(|e| e.description)
}

impl Chassis {
    /// The UDI string the router prints under "Product Information".
    pub fn udi(&self) -> String {
        format!("PID:{},SN:{}", self.pid, self.serial)
    }

    /// The router's full current usage, as an `authorize` message reports it:
    /// sorted by tag, one entry per tag, zero counts left out.
    pub fn entitlements(&self) -> Vec<(String, u32)> {
        let mut usage: BTreeMap<String, u32> = BTreeMap::new();
        let mut add = |tag: String, count: u32| {
            if count > 0 {
                let slot = usage.entry(tag).or_insert(0);
                *slot = slot.saturating_add(count);
            }
        };
        if let Some(tag) = chassis_tracking_tag(&self.pid) {
            add(tag.to_string(), 1);
        }
        for card in &self.line_cards {
            add(line_card_tracking_tag(card), 1);
        }
        add(ESS_100G_RTU.to_string(), self.ports_100g_essentials);
        add(ADV_100G_RTU.to_string(), self.ports_100g_advantage);
        if self.vrfs > L3VPN_ESSENTIALS_MAX_VRFS {
            add(ADV_10G_RTU.to_string(), 1);
        } else if self.vrfs > 0 {
            add(ESS_10G_RTU.to_string(), 1);
        }
        usage.into_iter().collect()
    }
}

/// The router of the guide's "Viewing License Information After
/// Registration" example: an NCS560-4 using one Essentials 100G port, two
/// 8-port 10GE modules and one 8/16-port 1GE + 1-port 10GE module.
pub fn seed_scenario() -> Chassis {
    Chassis {
        pid: "NCS560-4".to_string(),
        serial: "FOX2305P81D".to_string(),
        // The guide never prints the name; its prompt calls the box "Router"
        // and its privacy section says the hostname is being sent.
        hostname: Some("Router".to_string()),
        // SIA status (shown by `show license platform summary`) needs 7.3.1.
        software_version: "7.3.1".to_string(),
        line_cards: vec![
            "A900-IMA8Z".to_string(),
            "A900-IMA8Z".to_string(),
            "A900-IMA8CS1Z-M".to_string(),
        ],
        ports_100g_essentials: 1,
        ports_100g_advantage: 0,
        vrfs: 0,
    }
}

/// Serial layout after Cisco's: a 3-letter site code, a 2-digit year, a
/// 2-digit week and a 4-character base-36 sequence.
const SERIAL_YEARS: u64 = 10;
const SERIAL_WEEKS: u64 = 52;
const SERIAL_SEQUENCES: u64 = 36 * 36 * 36 * 36;
/// How many distinct serials one fleet seed can hand out.
pub const FLEET_SERIAL_SPACE: u64 = SERIAL_YEARS * SERIAL_WEEKS * SERIAL_SEQUENCES;
/// Prime, hence coprime with `FLEET_SERIAL_SPACE` (whose factors are 2, 3, 5
/// and 13): multiplying by it permutes the serial space, so different
/// indices never collide while neighbours still look unrelated.
const SERIAL_STRIDE: u64 = 2_654_435_761;

const SOFTWARE_VERSIONS: &[&str] = &["7.3.1", "7.3.2", "7.4.1", "7.5.2"];

/// SplitMix64's finaliser: a cheap, well-mixed bijection on u64, so that the
/// fleet is a pure function of (index, seed) without a random-number crate.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fleet_serial(index: u64, seed: u64) -> String {
    let space = u128::from(FLEET_SERIAL_SPACE);
    let offset = u128::from(mix(seed)) % space;
    let slot = (u128::from(index) * u128::from(SERIAL_STRIDE) + offset) % space;
    // `slot` < FLEET_SERIAL_SPACE, which fits in u64.
    let mut rest = u64::try_from(slot).unwrap_or(0);
    let mut sequence = [0u8; 4];
    for ch in sequence.iter_mut().rev() {
        let digit = (rest % 36) as u8;
        *ch = if digit < 10 {
            b'0' + digit
        } else {
            b'A' + digit - 10
        };
        rest /= 36;
    }
    let week = rest % SERIAL_WEEKS + 1;
    rest /= SERIAL_WEEKS;
    let year = 20 + rest % SERIAL_YEARS;
    let sequence: String = sequence.iter().map(|&b| char::from(b)).collect();
    format!("FOX{year:02}{week:02}{sequence}")
}

/// Member `index` of a simulated fleet. Deterministic in (index, seed);
/// serials are distinct for every index below [`FLEET_SERIAL_SPACE`] under
/// one seed. Hardware and configuration vary so that a fleet exercises the
/// line-card counting, both 100G tiers and both sides of the L3VPN rule.
pub fn fleet_member(index: u64, seed: u64) -> Chassis {
    let h = mix(mix(seed) ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let pick = |shift: u32, modulo: u64| (h >> shift) % modulo;

    // An NCS560-4 has four interface-module slots.
    let mut line_cards = Vec::new();
    let ten_gig = pick(0, 3);
    let mixed = pick(4, 2);
    let hundred_gig = pick(8, 2);
    for _ in 0..ten_gig {
        line_cards.push("A900-IMA8Z".to_string());
    }
    for _ in 0..mixed {
        line_cards.push("A900-IMA8CS1Z-M".to_string());
    }
    for _ in 0..hundred_gig {
        line_cards.push("N560-IMA2C".to_string());
    }

    let version_index = usize::try_from(pick(12, SOFTWARE_VERSIONS.len() as u64)).unwrap_or(0);
    let software_version = SOFTWARE_VERSIONS
        .get(version_index)
        .copied()
        .unwrap_or("7.3.1")
        .to_string();
    // One router in eight withholds its hostname, to exercise privacy.
    let hostname = if pick(16, 8) == 0 {
        None
    } else {
        Some(format!("ncs560-{index:04}"))
    };

    Chassis {
        pid: "NCS560-4".to_string(),
        serial: fleet_serial(index, seed),
        hostname,
        software_version,
        line_cards,
        ports_100g_essentials: u32::try_from(pick(20, 5)).unwrap_or(0),
        ports_100g_advantage: u32::try_from(pick(24, 3)).unwrap_or(0),
        vrfs: u32::try_from(pick(28, 17)).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn tags(chassis: &Chassis) -> Vec<(String, u32)> {
        chassis.entitlements()
    }

    fn bare(vrfs: u32) -> Chassis {
        Chassis {
            pid: "NCS560-4".to_string(),
            serial: "FOX2305P81D".to_string(),
            hostname: None,
            software_version: "7.3.1".to_string(),
            line_cards: Vec::new(),
            ports_100g_essentials: 0,
            ports_100g_advantage: 0,
            vrfs,
        }
    }

    fn count_of(usage: &[(String, u32)], tag: &str) -> u32 {
        usage
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, c)| *c)
            .unwrap_or(0)
    }

    #[test]
    fn seed_scenario_uses_what_the_guide_shows() {
        let expected: Vec<(String, u32)> = vec![
            ("A900-IMA8CS1ZM-TRK".to_string(), 1),
            ("A900-IMA8Z-TRK".to_string(), 2),
            ("ESS-AC-100G-RTU-1".to_string(), 1),
            ("N560-4-SYS-E-TRK".to_string(), 1),
        ];
        assert_eq!(tags(&seed_scenario()), expected);
        assert_eq!(seed_scenario().udi(), "PID:NCS560-4,SN:FOX2305P81D");
    }

    #[test]
    fn eight_vrfs_need_only_the_essentials_l3vpn_licence() {
        let usage = tags(&bare(8));
        assert_eq!(count_of(&usage, ESS_10G_RTU), 1);
        assert_eq!(count_of(&usage, ADV_10G_RTU), 0);
    }

    #[test]
    fn nine_vrfs_need_the_advantage_l3vpn_licence_instead() {
        let usage = tags(&bare(9));
        assert_eq!(count_of(&usage, ADV_10G_RTU), 1);
        assert_eq!(count_of(&usage, ESS_10G_RTU), 0);
    }

    #[test]
    fn one_vrf_already_needs_the_l3vpn_licence_and_none_needs_nothing() {
        assert_eq!(count_of(&tags(&bare(1)), ESS_10G_RTU), 1);
        let none = tags(&bare(0));
        assert_eq!(count_of(&none, ESS_10G_RTU), 0);
        assert_eq!(count_of(&none, ADV_10G_RTU), 0);
        // Only the chassis tracking licence is left.
        assert_eq!(none, vec![("N560-4-SYS-E-TRK".to_string(), 1)]);
    }

    #[test]
    fn many_vrfs_still_take_a_single_l3vpn_licence() {
        assert_eq!(count_of(&tags(&bare(500)), ADV_10G_RTU), 1);
    }

    #[test]
    fn line_cards_are_counted_per_module_under_their_tracking_tag() {
        let mut chassis = bare(0);
        chassis.line_cards = vec![
            "A900-IMA8Z".to_string(),
            "N560-IMA2C".to_string(),
            "A900-IMA8Z".to_string(),
            "A900-IMA8Z".to_string(),
            "A900-IMA8CS1Z-M".to_string(),
            "X-UNKNOWN-IM".to_string(),
        ];
        let usage = tags(&chassis);
        assert_eq!(count_of(&usage, "A900-IMA8Z-TRK"), 3);
        assert_eq!(count_of(&usage, "A900-IMA8CS1ZM-TRK"), 1);
        assert_eq!(count_of(&usage, "N560-IMA2C-TRK"), 1);
        assert_eq!(count_of(&usage, "X-UNKNOWN-IM-TRK"), 1);
    }

    #[test]
    fn port_counts_map_to_their_tier_and_zero_counts_are_omitted() {
        let mut chassis = bare(0);
        chassis.ports_100g_essentials = 0;
        chassis.ports_100g_advantage = 3;
        let usage = tags(&chassis);
        assert_eq!(count_of(&usage, ADV_100G_RTU), 3);
        assert!(usage.iter().all(|(t, c)| t != ESS_100G_RTU && *c > 0));
    }

    #[test]
    fn usage_is_sorted_by_tag_with_one_entry_each() {
        for index in 0..200 {
            let usage = tags(&fleet_member(index, 7));
            let names: Vec<&String> = usage.iter().map(|(t, _)| t).collect();
            let mut sorted = names.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(names, sorted);
        }
    }

    #[test]
    fn unknown_chassis_has_no_tracking_licence() {
        let mut chassis = bare(0);
        chassis.pid = "NCS-99".to_string();
        assert!(tags(&chassis).is_empty());
    }

    #[test]
    fn fleet_is_deterministic_and_serials_are_distinct() {
        assert_eq!(fleet_member(12, 99), fleet_member(12, 99));
        assert_ne!(fleet_member(12, 99).serial, fleet_member(12, 100).serial);
        let serials: HashSet<String> = (0..20_000).map(|i| fleet_serial(i, 42)).collect();
        assert_eq!(serials.len(), 20_000);
    }

    #[test]
    fn fleet_serials_look_like_cisco_serials() {
        for index in 0..500 {
            let serial = fleet_member(index, 3).serial;
            assert_eq!(serial.len(), 11, "{serial}");
            assert!(serial.starts_with("FOX"));
            let digits = &serial[3..7];
            assert!(digits.chars().all(|c| c.is_ascii_digit()), "{serial}");
            let week: u32 = serial[5..7].parse().unwrap();
            assert!((1..=52).contains(&week), "{serial}");
            assert!(serial[7..]
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
        }
    }

    #[test]
    fn fleet_varies_hardware_and_crosses_the_l3vpn_boundary() {
        let fleet: Vec<Chassis> = (0..300).map(|i| fleet_member(i, 5)).collect();
        let layouts: HashSet<Vec<String>> = fleet.iter().map(|c| c.line_cards.clone()).collect();
        assert!(layouts.len() > 5);
        assert!(fleet.iter().all(|c| c.line_cards.len() <= 4));
        assert!(fleet.iter().any(|c| c.vrfs == 0));
        assert!(fleet.iter().any(|c| (1..=8).contains(&c.vrfs)));
        assert!(fleet.iter().any(|c| c.vrfs > 8));
        assert!(fleet.iter().any(|c| c.ports_100g_advantage > 0));
        assert!(fleet.iter().any(|c| c.hostname.is_none()));
    }
}
