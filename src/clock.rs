//! The one clock every time rule reads, shiftable by `SATELLITE_CLOCK_OFFSET`.
//! Nothing else in the crate may read the system time for a licensing decision.

use chrono::{DateTime, Duration, Utc};
use std::fmt;

/// Wall clock plus a fixed offset, so expiry drills can run a process "in the future".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    offset: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid clock offset {0:?}: expected a sign, a number and a unit among s, m, h, d (e.g. +91d, -2h)")]
pub struct OffsetError(pub String);

impl Clock {
    pub fn system() -> Self {
        Clock::default()
    }

    pub fn with_offset(offset: Duration) -> Self {
        Clock { offset }
    }

    /// Reads `SATELLITE_CLOCK_OFFSET`; an unparsable value is an error rather
    /// than silently ignored, because a drill on the wrong clock is worse than none.
    pub fn from_env() -> Result<Self, OffsetError> {
        match std::env::var("SATELLITE_CLOCK_OFFSET") {
            Ok(v) if !v.trim().is_empty() => Ok(Clock::with_offset(parse_offset(&v)?)),
            _ => Ok(Clock::system()),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }

    pub fn offset(&self) -> Duration {
        self.offset
    }

    pub fn is_shifted(&self) -> bool {
        !self.offset.is_zero()
    }
}

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.offset.num_seconds();
        let sign = if secs < 0 { '-' } else { '+' };
        write!(f, "{sign}{}s", secs.unsigned_abs())
    }
}

/// Parses `+91d`, `-2h`, `30m`, `+15s`, or several joined (`+1d12h`).
pub fn parse_offset(text: &str) -> Result<Duration, OffsetError> {
    let err = || OffsetError(text.to_string());
    let t = text.trim();
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if body.is_empty() {
        return Err(err());
    }
    let mut total: i64 = 0;
    let mut number = String::new();
    for c in body.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: i64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(err()),
        };
        let n: i64 = number.parse().map_err(|_| err())?;
        number.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(err)?;
    }
    if !number.is_empty() {
        return Err(err());
    }
    // Beyond ~100 years is a typo, and chrono arithmetic would overflow anyway.
    if total > 100 * 365 * 86_400 {
        return Err(err());
    }
    Ok(Duration::seconds(if negative { -total } else { total }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_with_sign_and_units() {
        assert_eq!(parse_offset("+91d"), Ok(Duration::days(91)));
        assert_eq!(parse_offset("-2h"), Ok(Duration::hours(-2)));
        assert_eq!(parse_offset("30m"), Ok(Duration::minutes(30)));
        assert_eq!(parse_offset("+1d12h"), Ok(Duration::hours(36)));
    }

    #[test]
    fn malformed_offsets_are_refused() {
        for bad in ["", "+", "91", "d", "+9x", "++1d", "1d2", "999999999999d"] {
            assert!(parse_offset(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn shifted_clock_runs_ahead() {
        let c = Clock::with_offset(Duration::days(91));
        let diff = c.now() - Utc::now();
        assert!(diff > Duration::days(90) && diff < Duration::days(92));
        assert!(c.is_shifted());
        assert_eq!(c.to_string(), "+7862400s");
    }
}
