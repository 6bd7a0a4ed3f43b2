//! Validated names and identifiers: a value of these types is well-formed wherever it travels.
//! Parsing only; no storage, no I/O.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidName(pub String);

fn check_label(what: &str, raw: &str, max: usize) -> Result<String, InvalidName> {
    let v = raw.trim();
    if v.is_empty() {
        return Err(InvalidName(format!("{what} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(InvalidName(format!(
            "{what} is longer than {max} characters"
        )));
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(InvalidName(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(v.to_string())
}

macro_rules! label_type {
    ($name:ident, $what:literal, $max:expr) => {
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, InvalidName> {
                check_label($what, raw, $max).map($name)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

label_type!(AccountName, "smart account name", 128);
label_type!(VaName, "virtual account name", 128);
label_type!(UserName, "user name", 64);

/// An entitlement tag such as `ESS-AC-100G-RTU-1`: ASCII letters, digits, `.`, `_`, `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EntitlementTag(String);

impl EntitlementTag {
    pub fn parse(raw: &str) -> Result<Self, InvalidName> {
        let v = raw.trim();
        if v.is_empty() || v.len() > 64 {
            return Err(InvalidName(format!(
                "license tag {v:?} must be 1 to 64 characters"
            )));
        }
        if !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(InvalidName(format!(
                "license tag {v:?} may hold only letters, digits, '.', '_' and '-'"
            )));
        }
        Ok(EntitlementTag(v.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntitlementTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EntitlementTag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EntitlementTag::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_trimmed_and_bounded() {
        assert_eq!(
            AccountName::parse("  Forty-Two uLtd. ").map(|a| a.to_string()),
            Ok("Forty-Two uLtd.".to_string())
        );
        assert!(AccountName::parse("   ").is_err());
        assert!(VaName::parse(&"x".repeat(129)).is_err());
        assert!(VaName::parse("a\u{7}b").is_err());
    }

    #[test]
    fn tags_refuse_spaces_and_symbols() {
        assert!(EntitlementTag::parse("ESS-AC-100G-RTU-1").is_ok());
        assert!(EntitlementTag::parse("ESS AC").is_err());
        assert!(EntitlementTag::parse("<x>").is_err());
        assert!(EntitlementTag::parse("").is_err());
    }
}
