//! Durations given as plain numbers by the front ends (days in the CLI and the MCP server,
//! milliseconds in Node, seconds in Python), and instants given as text (a date, an RFC 3339
//! date-time, an age such as `7d`, Unix milliseconds) or as numbers, converted and checked in
//! one place.

use std::time::Duration;

use crate::{Error, Result};

/// The unit a front end gives a duration in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeUnit {
    /// Milliseconds (Node).
    Milliseconds,
    /// Seconds (Python).
    Seconds,
    /// Days (CLI, MCP).
    Days,
}

impl TimeUnit {
    fn seconds(self) -> f64 {
        match self {
            TimeUnit::Milliseconds => 1e-3,
            TimeUnit::Seconds => 1.0,
            TimeUnit::Days => 86_400.0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TimeUnit::Milliseconds => "milliseconds",
            TimeUnit::Seconds => "seconds",
            TimeUnit::Days => "days",
        }
    }
}

/// `value` `unit`s as a [`Duration`].
///
/// # Errors
/// [`Error::InvalidInput`] naming `what` when `value` is negative, not finite, or too long for
/// a `Duration`.
pub fn duration(what: &'static str, value: f64, unit: TimeUnit) -> Result<Duration> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(Error::InvalidInput {
            what,
            reason: format!("must be a number of {} >= 0, got {value}", unit.name()),
        });
    }
    Duration::try_from_secs_f64(value * unit.seconds()).map_err(|_| Error::InvalidInput {
        what,
        reason: format!("{value} {} is too long", unit.name()),
    })
}

/// The current time, Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The forms [`instant`] reads, for error messages and help texts.
pub const INSTANT_FORMS: &str = "a date (2026-12-01, its start in UTC), an RFC 3339 date-time \
     (2026-12-01T09:30:00Z, 2026-12-01T10:30:00+01:00), an age before now (90s, 30m, 36h, 7d, \
     2w) or Unix milliseconds";

/// An instant given as text, as Unix milliseconds: one of [`INSTANT_FORMS`]; an age counts
/// back from `now_ms`.
///
/// ```
/// use reasonbank::units::instant;
/// assert_eq!(instant("since", "2026-12-01", 0).unwrap(), 1_796_083_200_000);
/// assert_eq!(instant("since", "2026-12-01T01:00:00+01:00", 0).unwrap(), 1_796_083_200_000);
/// assert_eq!(instant("since", "7d", 1_000_000_000_000).unwrap(), 1_000_000_000_000 - 7 * 86_400_000);
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] naming `what` when `text` is none of those forms, names a day or
/// time that does not exist (2026-02-30, 24:00), or lies before 1970 or after 9999.
pub fn instant(what: &'static str, text: &str, now_ms: i64) -> Result<i64> {
    let bad = |why: &str| Error::InvalidInput {
        what,
        reason: format!("{text:?} {why}; expected {INSTANT_FORMS}"),
    };
    let t = text.trim();
    let ms = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse::<i64>().map_err(|_| bad("is too large"))?
    } else if let Some(age) = age_ms(t) {
        now_ms.saturating_sub(age.ok_or_else(|| bad("is too long ago"))?)
    } else {
        date_time_ms(t).map_err(&bad)?
    };
    in_range(ms).map_err(|_| bad("is not between 1970 and the end of 9999"))
}

/// An instant a front end was given as text, read now: [`instant`] with the current time, so
/// an age (`7d`) counts back from the moment of the call. Every front end reads its `at`,
/// `since`, `until` and import `created_at` text with this.
///
/// # Errors
/// As [`instant`].
pub fn read_instant(what: &'static str, text: &str) -> Result<i64> {
    instant(what, text, now_ms())
}

/// An instant given as a number of `unit`s since 1970 (Node's milliseconds, Python's
/// seconds), as Unix milliseconds.
///
/// # Errors
/// [`Error::InvalidInput`] naming `what` when `value` is not finite or lies before 1970 or
/// after 9999.
pub fn instant_from_number(what: &'static str, value: f64, unit: TimeUnit) -> Result<i64> {
    let ms = value * unit.seconds() * 1000.0;
    let bad = || Error::InvalidInput {
        what,
        reason: format!(
            "{value} {} since 1970 is not between 1970 and the end of 9999",
            unit.name()
        ),
    };
    if !ms.is_finite() || ms < 0.0 || ms > crate::memory::MAX_TIMESTAMP_MS as f64 {
        return Err(bad());
    }
    // In range, so the conversion is exact to the millisecond.
    in_range(ms.floor() as i64).map_err(|_| bad())
}

fn in_range(ms: i64) -> std::result::Result<i64, ()> {
    if (0..=crate::memory::MAX_TIMESTAMP_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(())
    }
}

/// `Some` when `t` is an age (`<whole number><s|m|h|d|w>`): its milliseconds, `None` inside
/// when they overflow.
fn age_ms(t: &str) -> Option<Option<i64>> {
    let unit_ms: i64 = match t.as_bytes().last()? {
        b's' => 1_000,
        b'm' => 60_000,
        b'h' => 3_600_000,
        b'd' => 86_400_000,
        b'w' => 604_800_000,
        _ => return None,
    };
    let n = &t[..t.len() - 1];
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(n.parse::<i64>().ok().and_then(|n| n.checked_mul(unit_ms)))
}

/// `YYYY-MM-DD`, optionally followed by `T` (or a space) and `HH:MM[:SS[.fraction]]` with an
/// offset (`Z` or `±HH:MM`), as Unix milliseconds.
fn date_time_ms(t: &str) -> std::result::Result<i64, &'static str> {
    const NOT: &str = "is not a date, date-time, age or number";
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| -> std::result::Result<i64, &'static str> {
        let s = b.get(r).ok_or(NOT)?;
        if s.iter().all(u8::is_ascii_digit) {
            Ok(s.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
        } else {
            Err(NOT)
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(NOT);
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err("names a day that does not exist");
    }
    let day_ms = days_from_civil(y, m, d) * 86_400_000;
    if b.len() == 10 {
        return Ok(day_ms);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 16 || b[13] != b':' {
        return Err(NOT);
    }
    let (hh, mm) = (num(11..13)?, num(14..16)?);
    let mut i = 16;
    let mut ss = 0;
    let mut frac_ms = 0;
    if b.get(i) == Some(&b':') {
        ss = num(i + 1..i + 3)?;
        i += 3;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            i = start;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return Err(NOT);
            }
            // Milliseconds: the first three digits, the rest dropped.
            let digits = &b[start..i.min(start + 3)];
            frac_ms = digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0'))
                * 10_i64.pow(3 - digits.len() as u32);
        }
    }
    if hh > 23 || mm > 59 || ss > 59 {
        return Err("names a time that does not exist");
    }
    let offset_ms = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return Err("has an offset that does not exist");
            }
            let off = (oh * 60 + om) * 60_000;
            if sign == b'+' { off } else { -off }
        }
        None => return Err("has a time but no offset (add Z for UTC, or +01:00 and the like)"),
        _ => return Err(NOT),
    };
    Ok(day_ms + ((hh * 60 + mm) * 60 + ss) * 1000 + frac_ms - offset_ms)
}

/// Unix milliseconds as an RFC 3339 date-time in UTC, to the second
/// (`2026-12-01T09:30:15Z`), for people and language models reading a memory's time.
pub fn rfc3339(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the proleptic Gregorian `y-m-d` (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian `(year, month, day)` `z` days after 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_instant_form() {
        let now = 1_796_083_200_000; // 2026-12-01T00:00:00Z
        for (text, want) in [
            ("1970-01-01", 0),
            ("2026-12-01", now),
            ("2000-02-29", 951_782_400_000),
            ("2026-12-01T00:00:00Z", now),
            ("2026-12-01t00:00z", now),
            ("2026-12-01 09:30:15.25Z", now + 34_215_250),
            ("2026-12-01T09:30:15.123456+02:00", now + 27_015_123),
            ("2026-11-30T19:00:00-05:00", now),
            ("9999-12-31T23:59:59.999Z", crate::memory::MAX_TIMESTAMP_MS),
            ("7d", now - 7 * 86_400_000),
            ("2w", now - 14 * 86_400_000),
            ("36h", now - 36 * 3_600_000),
            ("30m", now - 1_800_000),
            ("90s", now - 90_000),
            ("0d", now),
            (" 1796083200000 ", now),
        ] {
            assert_eq!(instant("since", text, now).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_an_instant_saying_why() {
        let now = 1_796_083_200_000;
        for (text, why) in [
            ("", "not a date"),
            ("yesterday", "not a date"),
            ("7 days", "not a date"),
            ("-7d", "not a date"),
            ("2026-13-01", "does not exist"),
            ("2026-02-29", "does not exist"),
            ("2026-12-01T24:00Z", "does not exist"),
            ("2026-12-01T10:00", "no offset"),
            ("2026-12-01T10:00:00+1", "not a date"),
            ("2026-12-01T10:00Zjunk", "not a date"),
            ("1969-12-31", "between 1970"),
            ("1970-01-01T00:30:00+01:00", "between 1970"),
            ("99999999999999999999", "too large"),
            ("99999999999999d", "too long ago"),
            ("100000d", "between 1970"),
            ("253402300800000", "between 1970"),
        ] {
            let e = instant("since", text, now).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("since") && msg.contains(why), "{text}: {msg}");
            assert_eq!(e.code(), crate::error::code::INVALID_INPUT);
        }
    }

    #[test]
    fn rfc3339_is_what_instant_reads_back() {
        for ms in [
            0,
            951_782_400_000,
            1_796_083_200_000 + 34_215_000,
            crate::memory::MAX_TIMESTAMP_MS - 999,
        ] {
            let text = rfc3339(ms);
            assert_eq!(instant("t", &text, 0).unwrap(), ms, "{text}");
        }
        assert_eq!(rfc3339(1_796_083_200_000), "2026-12-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000 + 1), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn numbers_are_read_in_their_front_end_s_unit() {
        assert_eq!(
            instant_from_number("at", 1.5, TimeUnit::Seconds).unwrap(),
            1_500
        );
        assert_eq!(
            instant_from_number("at", 1_796_083_200_000.0, TimeUnit::Milliseconds).unwrap(),
            1_796_083_200_000
        );
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e300] {
            let e = instant_from_number("at", bad, TimeUnit::Seconds).unwrap_err();
            assert!(e.to_string().contains("at"), "{e}");
        }
    }

    #[test]
    fn converts_each_unit() {
        assert_eq!(
            duration("x", 1.5, TimeUnit::Days).unwrap(),
            Duration::from_secs(129_600)
        );
        assert_eq!(
            duration("x", 250.0, TimeUnit::Milliseconds).unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            duration("x", 0.0, TimeUnit::Seconds).unwrap(),
            Duration::ZERO
        );
    }

    #[test]
    fn refuses_what_is_not_a_duration_naming_the_argument() {
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let e = duration("prune_idle_days", bad, TimeUnit::Days).unwrap_err();
            assert!(e.to_string().contains("prune_idle_days"), "{e}");
            assert!(e.to_string().contains(">= 0"), "{e}");
        }
        let e = duration("prune_idle_days", 1e300, TimeUnit::Days).unwrap_err();
        assert!(e.to_string().contains("too long"), "{e}");
        assert_eq!(e.code(), crate::error::code::INVALID_INPUT);
    }
}
