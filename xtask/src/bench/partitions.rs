//! The data of the partitioned scenarios (f to i): response bodies of the server's
//! `/delayed`, `/parents`, `/children` and `/daily` routes, and how many records each serves.
//!
//! Unlike the [`PageSet`](super::pages::PageSet) pages, these bodies are small (one partition, a
//! day, a page of parent ids) and encoded per request from the query alone, so the routes hold no
//! state: a manifest's config says how many partitions, records and days there are. Encoding a
//! body costs about a microsecond per record, far below the cost of the request itself.

use super::pages::write_record;
use std::io::Write;

/// The first day of the daily scenario, and the `start_datetime` of its manifest.
pub const FIRST_DAY: &str = "2024-01-01";
/// Days since 1970-01-01 of [`FIRST_DAY`].
const FIRST_DAY_NUMBER: i64 = 19_723;
/// The `updated_at` of every child record: inside the window of the per-partition cursor of
/// fixtures/bench/partitions.yaml.
pub const CHILD_UPDATED_AT: &str = "2024-01-15T12:00:00Z";

/// `{"data":[` + the records `first .. first + count` as [`write_record`] writes them + `]}`.
pub fn delayed_body(partition: u64, records: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 180 * records as usize);
    out.extend_from_slice(b"{\"data\":[");
    for (i, id) in (partition * records..(partition + 1) * records).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_record(id, &mut out);
    }
    out.extend_from_slice(b"]}");
    out
}

/// A page of parents: parents `offset .. min(offset + limit, total)`, each
/// `{"id":N,"name":...}` with ids from 1 (a parent id 0 is falsy, which the reference never
/// sends as a child's request option); an empty page past the end. Returns the body and its
/// record count.
pub fn parents_body(offset: u64, limit: u64, total: u64) -> (Vec<u8>, u64) {
    let end = offset.saturating_add(limit).min(total);
    let count = end.saturating_sub(offset);
    let mut out = Vec::with_capacity(16 + 40 * count as usize);
    out.extend_from_slice(b"{\"data\":[");
    for id in offset + 1..=end {
        if id > offset + 1 {
            out.push(b',');
        }
        let _ = write!(out, r#"{{"id":{id},"name":"Parent {id}"}}"#);
    }
    out.extend_from_slice(b"]}");
    (out, count)
}

/// The `records` children of parent `parent`: ids `parent * records ..`, each a
/// [`write_record`] record plus `parent_id` and `updated_at` ([`CHILD_UPDATED_AT`]).
pub fn children_body(parent: u64, records: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 230 * records as usize);
    out.extend_from_slice(b"{\"data\":[");
    for (i, id) in (parent * records..(parent + 1) * records).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_record(id, &mut out);
        out.pop(); // the closing brace
        let _ = write!(
            out,
            r#","parent_id":{parent},"updated_at":"{CHILD_UPDATED_AT}"}}"#
        );
    }
    out.extend_from_slice(b"]}");
    out
}

/// Records on day `day` (0 = [`FIRST_DAY`]) of the daily scenario: 600, 800, 1,000, 1,200,
/// 1,400, repeating, so with pages of 1,000 a day takes one page or two (and a day of exactly
/// 1,000 an empty second page).
pub fn records_on_day(day: u64) -> u64 {
    600 + (day % 5) * 200
}

/// Records on days `0 .. days`.
pub fn records_in_days(days: u64) -> u64 {
    let first_of = |day: u64| -> u64 {
        let r = day % 5;
        5_000 * (day / 5) + 600 * r + 100 * r * r.saturating_sub(1)
    };
    first_of(days)
}

/// The id of day `day`'s first record.
fn first_id_of_day(day: u64) -> u64 {
    records_in_days(day)
}

/// Records `offset .. offset + limit` of day `day`, in order of `updated_at` (spread evenly over
/// the day), each a [`write_record`] record plus `updated_at`; an empty page past the day's
/// last record. Returns the body and its record count.
pub fn daily_body(day: u64, offset: u64, limit: u64) -> (Vec<u8>, u64) {
    let on_day = records_on_day(day);
    let end = offset.saturating_add(limit).min(on_day);
    let count = end.saturating_sub(offset);
    let date = date_of_day(day);
    let mut out = Vec::with_capacity(16 + 220 * count as usize);
    out.extend_from_slice(b"{\"data\":[");
    for i in offset..end {
        if i > offset {
            out.push(b',');
        }
        write_record(first_id_of_day(day) + i, &mut out);
        out.pop();
        let second = i * 86_400 / on_day;
        let _ = write!(
            out,
            r#","updated_at":"{date}T{:02}:{:02}:{:02}Z"}}"#,
            second / 3600,
            second / 60 % 60,
            second % 60
        );
    }
    out.extend_from_slice(b"]}");
    (out, count)
}

/// The day number (0 = [`FIRST_DAY`]) of a `%Y-%m-%dT%H:%M:%SZ` time, and its second of the day.
pub fn day_and_second(time: &str) -> Result<(u64, u64), String> {
    let bad = || format!("{time:?} is not a %Y-%m-%dT%H:%M:%SZ time");
    let b = time.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return Err(bad());
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64, String> {
        time.get(range).and_then(|s| s.parse().ok()).ok_or_else(bad)
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day) - FIRST_DAY_NUMBER;
    let day = u64::try_from(days).map_err(|_| format!("{time} is before {FIRST_DAY}"))?;
    Ok((day, (hour * 3600 + minute * 60 + second) as u64))
}

/// `%Y-%m-%d` of day `day` (0 = [`FIRST_DAY`]).
pub fn date_of_day(day: u64) -> String {
    let (year, month, date) = civil_from_days(FIRST_DAY_NUMBER + day as i64);
    format!("{year:04}-{month:02}-{date:02}")
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day number since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn json(body: &[u8]) -> Value {
        serde_json::from_slice(body).expect("a body is JSON")
    }

    #[test]
    fn day_numbers_round_trip_through_dates() {
        assert_eq!(days_from_civil(2024, 1, 1), FIRST_DAY_NUMBER);
        assert_eq!(date_of_day(0), FIRST_DAY);
        assert_eq!(date_of_day(59), "2024-02-29");
        assert_eq!(date_of_day(99), "2024-04-09");
        assert_eq!(day_and_second("2024-04-09T23:59:59Z"), Ok((99, 86_399)));
        assert_eq!(day_and_second("2024-01-02T00:00:10Z"), Ok((1, 10)));
        assert!(day_and_second("2023-12-31T00:00:00Z").is_err());
        assert!(day_and_second("2024-01-02").is_err());
    }

    #[test]
    fn daily_records_fill_their_day_in_order_and_ids_run_on() {
        assert_eq!(records_in_days(0), 0);
        assert_eq!(records_in_days(5), 5_000);
        assert_eq!(records_in_days(100), 100_000);
        assert_eq!(records_in_days(7), (0..7).map(records_on_day).sum::<u64>());
        let (first, count) = daily_body(3, 0, 1000);
        assert_eq!(count, 1000);
        let (second, count) = daily_body(3, 1000, 1000);
        assert_eq!(count, 200, "day 3 holds 1,200 records");
        let first = json(&first);
        let second = json(&second);
        assert_eq!(first["data"][0]["id"], records_in_days(3));
        assert_eq!(first["data"][0]["updated_at"], "2024-01-04T00:00:00Z");
        let last = &second["data"][199];
        assert_eq!(last["id"], records_in_days(4) - 1);
        let (day, second_of_day) = day_and_second(last["updated_at"].as_str().unwrap()).unwrap();
        assert_eq!(day, 3);
        assert!(second_of_day < 86_400);
        assert_eq!(
            json(&daily_body(0, 600, 1000).0)["data"],
            serde_json::json!([])
        );
    }

    #[test]
    fn parents_and_children_bodies() {
        let (page, count) = parents_body(900, 100, 950);
        assert_eq!(count, 50);
        let page = json(&page);
        assert_eq!(page["data"][0]["id"], 901);
        assert_eq!(page["data"][49]["id"], 950);
        assert_eq!(parents_body(1000, 100, 950).1, 0);
        let children = json(&children_body(7, 3));
        assert_eq!(children["data"].as_array().unwrap().len(), 3);
        assert_eq!(children["data"][0]["id"], 21);
        assert_eq!(children["data"][2]["parent_id"], 7);
        assert_eq!(children["data"][2]["updated_at"], CHILD_UPDATED_AT);
        let delayed = json(&delayed_body(2, 100));
        assert_eq!(delayed["data"][0]["id"], 200);
        assert_eq!(delayed["data"][99]["id"], 299);
    }
}
