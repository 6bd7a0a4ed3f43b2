//! Registration tokens: the rules for issuing them and for accepting one at device registration.
//! Pure: the token's record and the time are passed in.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

pub const DEFAULT_DAYS: i64 = 30;
pub const MIN_DAYS: i64 = 1;
pub const MAX_DAYS: i64 = 365;
pub const MAX_DESCRIPTION: usize = 512;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenSpecError {
    #[error("token expiry must be between 1 and 365 days (got {0})")]
    Days(i64),
    #[error("maximum uses must be at least 1 (got {0})")]
    Uses(i64),
    #[error("description is longer than 512 characters")]
    Description,
}

/// A checked request for a new token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSpec {
    pub days: i64,
    pub max_uses: Option<i64>,
    pub export_controlled: bool,
    pub description: String,
}

impl TokenSpec {
    pub fn parse(
        days: Option<i64>,
        max_uses: Option<i64>,
        export_controlled: bool,
        description: Option<&str>,
    ) -> Result<TokenSpec, TokenSpecError> {
        let days = days.unwrap_or(DEFAULT_DAYS);
        if !(MIN_DAYS..=MAX_DAYS).contains(&days) {
            return Err(TokenSpecError::Days(days));
        }
        if let Some(u) = max_uses {
            if u < 1 {
                return Err(TokenSpecError::Uses(u));
            }
        }
        let description = description.unwrap_or("").trim().to_string();
        if description.chars().count() > MAX_DESCRIPTION {
            return Err(TokenSpecError::Description);
        }
        Ok(TokenSpec {
            days,
            max_uses,
            export_controlled,
            description,
        })
    }

    pub fn expires_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + Duration::days(self.days)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Token {
    pub id: i64,
    pub token: String,
    pub account: String,
    pub virtual_account: String,
    pub va_id: i64,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub max_uses: Option<i64>,
    pub uses: i64,
    pub export_controlled: bool,
    pub created_by: String,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TokenState {
    Active,
    Expired,
    Revoked,
    Exhausted,
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "ACTIVE",
            TokenState::Expired => "EXPIRED",
            TokenState::Revoked => "REVOKED",
            TokenState::Exhausted => "EXHAUSTED",
        }
    }
}

impl Token {
    /// Revocation wins over expiry, expiry over exhaustion: the operator's act is the
    /// most useful thing to report.
    pub fn state(&self, now: DateTime<Utc>) -> TokenState {
        if self.revoked_at.is_some() {
            TokenState::Revoked
        } else if now >= self.expires_at {
            TokenState::Expired
        } else if self.max_uses.is_some_and(|m| self.uses >= m) {
            TokenState::Exhausted
        } else {
            TokenState::Active
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(now: DateTime<Utc>) -> Token {
        Token {
            id: 1,
            token: "t".into(),
            account: "A".into(),
            virtual_account: "V".into(),
            va_id: 1,
            description: String::new(),
            created_at: now,
            expires_at: now + Duration::days(30),
            max_uses: Some(2),
            uses: 0,
            export_controlled: false,
            created_by: "admin".into(),
            revoked_at: None,
        }
    }

    #[test]
    fn expiry_outside_one_to_365_days_is_refused() {
        assert_eq!(
            TokenSpec::parse(Some(0), None, false, None),
            Err(TokenSpecError::Days(0))
        );
        assert_eq!(
            TokenSpec::parse(Some(366), None, false, None),
            Err(TokenSpecError::Days(366))
        );
        assert_eq!(
            TokenSpec::parse(None, None, false, None).map(|s| s.days),
            Ok(30)
        );
        assert!(TokenSpec::parse(Some(365), Some(1), true, Some("x")).is_ok());
        assert_eq!(
            TokenSpec::parse(Some(1), Some(0), false, None),
            Err(TokenSpecError::Uses(0))
        );
    }

    #[test]
    fn state_follows_revocation_expiry_and_uses() {
        let now = Utc::now();
        let mut t = token(now);
        assert_eq!(t.state(now), TokenState::Active);
        assert_eq!(t.state(now + Duration::days(30)), TokenState::Expired);
        t.uses = 2;
        assert_eq!(t.state(now), TokenState::Exhausted);
        t.revoked_at = Some(now);
        assert_eq!(t.state(now), TokenState::Revoked);
    }
}
