//! `clamping` of a datetime cursor: windows aligned to days, weeks or months.

use crate::datetime::IsoDuration;
use serde_json::{Map, Value};
use time::{Date, Duration, OffsetDateTime, Time};

/// The period windows are aligned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clamping {
    None,
    Day,
    /// Weeks starting on this weekday (0 = Monday).
    Week(u8),
    Month,
}

const WEEKDAYS: [&str; 7] = [
    "MONDAY",
    "TUESDAY",
    "WEDNESDAY",
    "THURSDAY",
    "FRIDAY",
    "SATURDAY",
    "SUNDAY",
];

impl Clamping {
    /// The clamping of a rendered `target` (`DAY`, `WEEK` with `target_details.weekday`, `MONTH`).
    pub fn from_target(target: &str, details: Option<&Map<String, Value>>) -> Result<Self, String> {
        match target {
            "DAY" => Ok(Clamping::Day),
            "MONTH" => Ok(Clamping::Month),
            "WEEK" => {
                let weekday = details
                    .and_then(|d| d.get("weekday"))
                    .and_then(Value::as_str)
                    .ok_or("Given WEEK clamping, weekday needs to be provided as target_details")?;
                let index = WEEKDAYS
                    .iter()
                    .position(|d| *d == weekday)
                    .ok_or_else(|| format!("Unknown weekday {weekday}"))?;
                Ok(Clamping::Week(index as u8))
            }
            other => Err(format!(
                "Invalid clamping target {other}, expected DAY, WEEK, MONTH"
            )),
        }
    }

    /// The default granularity taken off the floored end, when clamping.
    pub fn floor_granularity(self, granularity: Option<IsoDuration>) -> Option<IsoDuration> {
        let default_micros = match self {
            Clamping::None => return None,
            Clamping::Day => 1_000_000,
            Clamping::Week(_) | Clamping::Month => 86_400_000_000,
        };
        Some(granularity.unwrap_or(IsoDuration {
            months: 0,
            micros: default_micros,
        }))
    }

    /// Rounds up to the start of the next period (a value on a period start stays).
    pub fn ceil(self, value: OffsetDateTime) -> OffsetDateTime {
        self.round(value, true)
    }

    /// Rounds down to the start of the period.
    pub fn floor(self, value: OffsetDateTime) -> OffsetDateTime {
        self.round(value, false)
    }

    fn round(self, value: OffsetDateTime, ceiling: bool) -> OffsetDateTime {
        let midnight = value.replace_time(Time::MIDNIGHT);
        match self {
            Clamping::None => value,
            Clamping::Day => {
                if ceiling && midnight != value {
                    midnight + Duration::days(1)
                } else {
                    midnight
                }
            }
            Clamping::Week(weekday) => {
                let current = i64::from(value.weekday().number_days_from_monday());
                let target = i64::from(weekday);
                let to_ceiling = if current > target {
                    7 - (current - target)
                } else {
                    (current - target).abs()
                };
                let days = if ceiling || to_ceiling == 0 {
                    to_ceiling
                } else {
                    to_ceiling - 7
                };
                midnight + Duration::days(days)
            }
            Clamping::Month => {
                if value.day() == 1 {
                    return midnight;
                }
                if !ceiling {
                    return midnight.replace_day(1).unwrap_or(midnight);
                }
                let (year, month) = if value.month() == time::Month::December {
                    (value.year() + 1, time::Month::January)
                } else {
                    (value.year(), value.month().next())
                };
                match Date::from_calendar_date(year, month, 1) {
                    Ok(date) => midnight.replace_date(date),
                    Err(_) => midnight,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn day_ceiling_keeps_midnight_and_rounds_up_otherwise() {
        let day = Clamping::Day;
        assert_eq!(
            day.ceil(datetime!(2024-01-02 00:00 UTC)),
            datetime!(2024-01-02 00:00 UTC)
        );
        assert_eq!(
            day.ceil(datetime!(2024-01-02 00:00:01 UTC)),
            datetime!(2024-01-03 00:00 UTC)
        );
        assert_eq!(
            day.floor(datetime!(2024-01-02 13:00 UTC)),
            datetime!(2024-01-02 00:00 UTC)
        );
    }

    #[test]
    fn month_and_week_round_to_their_period() {
        let month = Clamping::Month;
        assert_eq!(
            month.ceil(datetime!(2024-12-15 10:00 UTC)),
            datetime!(2025-01-01 00:00 UTC)
        );
        assert_eq!(
            month.floor(datetime!(2024-12-15 10:00 UTC)),
            datetime!(2024-12-01 00:00 UTC)
        );
        // 2024-01-03 is a Wednesday; weeks starting on Monday.
        let week = Clamping::Week(0);
        assert_eq!(
            week.ceil(datetime!(2024-01-03 10:00 UTC)),
            datetime!(2024-01-08 00:00 UTC)
        );
        assert_eq!(
            week.floor(datetime!(2024-01-03 10:00 UTC)),
            datetime!(2024-01-01 00:00 UTC)
        );
    }
}
