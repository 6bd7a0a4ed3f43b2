//! Cron schedules with a seconds field, as operators type them: parsed once, bounded, and
//! refused with a reason a person can act on. Pure: the instant to count from is a parameter.

use chrono::{DateTime, Utc};
use std::str::FromStr;

/// Longest schedule text accepted; real schedules are a few dozen characters.
pub const MAX_LEN: usize = 128;
/// Scheduled jobs talk to other machines: two runs closer than this are refused.
pub const MIN_GAP_SECONDS: i64 = 60;
/// How many upcoming runs are checked against the minimum gap.
const GAP_SAMPLE: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSchedule(pub String);

/// A cron schedule that parsed, runs at least once more and never runs twice within a minute.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    text: String,
    schedule: cron::Schedule,
}

impl CronSchedule {
    pub fn parse(text: &str, now: DateTime<Utc>) -> Result<CronSchedule, InvalidSchedule> {
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            return Err(InvalidSchedule("the schedule is empty".into()));
        }
        if text.len() > MAX_LEN {
            return Err(InvalidSchedule(format!(
                "the schedule is longer than {MAX_LEN} characters"
            )));
        }
        let fields = text.split(' ').count();
        if fields == 5 {
            return Err(InvalidSchedule(format!(
                "{text:?} has 5 fields like a crontab line; this schedule is cron with seconds: \
                 add the seconds first, e.g. \"0 {text}\""
            )));
        }
        if !(6..=7).contains(&fields) {
            return Err(InvalidSchedule(format!(
                "{text:?} has {fields} fields; a cron schedule with seconds has 6 \
                 (sec min hour day month weekday) or 7 (with year), e.g. \"0 0 2 * * *\""
            )));
        }
        let schedule = cron::Schedule::from_str(&text).map_err(|e| {
            InvalidSchedule(format!(
                "{text:?} is not a cron schedule with seconds (e.g. \"0 0 2 * * *\"): {e}"
            ))
        })?;
        let runs: Vec<DateTime<Utc>> = schedule.after(&now).take(GAP_SAMPLE).collect();
        if runs.is_empty() {
            return Err(InvalidSchedule(format!("{text:?} never runs again")));
        }
        if let Some(w) = runs
            .windows(2)
            .find(|w| (w[1] - w[0]).num_seconds() < MIN_GAP_SECONDS)
        {
            return Err(InvalidSchedule(format!(
                "{text:?} runs {} s apart (at {} and {}); runs must be at least {MIN_GAP_SECONDS} s apart",
                (w[1] - w[0]).num_seconds(),
                w[0].format("%H:%M:%S"),
                w[1].format("%H:%M:%S"),
            )));
        }
        Ok(CronSchedule { text, schedule })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn schedule(&self) -> &cron::Schedule {
        &self.schedule
    }

    /// The next `n` instants strictly after `now`.
    pub fn next_runs(&self, now: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        self.schedule.after(&now).take(n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 14, 9, 26, 53).unwrap()
    }

    #[test]
    fn six_fields_parse_and_give_the_next_runs() {
        let s = CronSchedule::parse("  0  30 3 * * * ", now()).unwrap();
        assert_eq!(s.as_str(), "0 30 3 * * *");
        let runs = s.next_runs(now(), 3);
        assert_eq!(
            runs,
            vec![
                Utc.with_ymd_and_hms(2026, 3, 15, 3, 30, 0).unwrap(),
                Utc.with_ymd_and_hms(2026, 3, 16, 3, 30, 0).unwrap(),
                Utc.with_ymd_and_hms(2026, 3, 17, 3, 30, 0).unwrap(),
            ]
        );
    }

    #[test]
    fn five_fields_get_a_hint_with_the_seconds_added() {
        let e = CronSchedule::parse("30 3 * * *", now()).unwrap_err();
        assert!(e.0.contains("5 fields"), "{e}");
        assert!(e.0.contains("\"0 30 3 * * *\""), "{e}");
    }

    #[test]
    fn garbage_too_long_too_often_and_never_are_refused() {
        assert!(CronSchedule::parse("", now()).is_err());
        assert!(CronSchedule::parse("a b c d e f", now())
            .unwrap_err()
            .0
            .contains("with seconds"));
        assert!(CronSchedule::parse(&"1 ".repeat(100), now()).is_err());
        assert!(CronSchedule::parse("* * * * * *", now())
            .unwrap_err()
            .0
            .contains("at least 60 s apart"));
        assert!(CronSchedule::parse("0 0 0 1 1 * 2020", now())
            .unwrap_err()
            .0
            .contains("never runs"));
        assert!(CronSchedule::parse("0 */5 * * * *", now()).is_ok());
    }
}
