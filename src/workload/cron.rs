//! Cron schedules as the CronJob controller reads them.
//!
//! Owns the parsing of a CronJob's `schedule` (five fields — minute, hour,
//! day of month, month, day of week — with `*`, `?`, lists, ranges, steps,
//! month and weekday names, and the macros `@yearly`, `@annually`,
//! `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`) and the next
//! activation after a time in a time zone.
//!
//! Both follow `robfig/cron` v3 (`ParseStandard`, `SpecSchedule.Next`),
//! which Kubernetes uses, rather than a Rust cron crate: the CronJob API is
//! defined by that library's behaviour, and the crates differ from it where
//! it matters here — their error messages, day-of-week bounds (`7` is
//! rejected), the day-of-month/day-of-week "either matches unless one is
//! `*`" rule, and above all daylight-saving changes. Like robfig's, a time
//! in a spring-forward gap never matches (a `30 2 * * *` schedule skips that
//! day) and the repeated hour of a fall-back matches twice, because the
//! search steps through absolute hours and minutes while reading the local
//! wall clock; dates that fall into a gap resolve as Go's `time.Date` does.
//!
//! Pure: the time zone and the time are arguments.

use k8s_openapi::jiff::civil::{date, DateTime};
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{Span, Timestamp};

/// Set in a field's bits when it was `*` or `?` (robfig's `starBit`): the
/// day-of-month/day-of-week rule depends on it.
const STAR: u64 = 1 << 63;

/// One field's accepted values and names.
struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
/// Month names map to 1..=12.
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
/// Weekday names map to 0..=6, Sunday first.
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// A parsed schedule: one bit set per accepted value of each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
}

/// Bits `min..=max` stepping by `step`.
fn bits(min: u32, max: u32, step: u32) -> u64 {
    (min..=max)
        .step_by(step as usize)
        .fold(0, |b, v| b | 1 << v)
}

/// All values of a field, as `*`.
fn all(b: &Bounds) -> u64 {
    bits(b.min, b.max, 1) | STAR
}

/// Go's `strconv.Atoi` followed by robfig's "no negatives" check.
fn parse_int(expr: &str) -> Result<u32, String> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    let valid = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    let n: i64 = if valid {
        expr.parse()
            .map_err(|_| format!("failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: value out of range"))?
    } else {
        return Err(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: invalid syntax"
        ));
    };
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

fn parse_int_or_name(expr: &str, b: &Bounds) -> Result<u32, String> {
    let lower = expr.to_ascii_lowercase();
    match b.names.iter().position(|n| *n == lower) {
        // Months are 1-based, weekdays 0-based: `min` is the first name's value.
        Some(i) => Ok(b.min + i as u32),
        None => parse_int(expr),
    }
}

/// One comma-separated part of a field: `*`, `?`, `N`, `N-M`, each with an
/// optional `/step` (`N/step` meaning `N-max/step`).
fn parse_range(expr: &str, b: &Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let mut extra = 0;
    let (start, mut end) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        extra = STAR;
        (b.min, b.max)
    } else {
        let start = parse_int_or_name(low_and_high[0], b)?;
        match low_and_high.len() {
            1 => (start, start),
            2 => (start, parse_int_or_name(low_and_high[1], b)?),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = parse_int(range_and_step[1])?;
            if single {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(bits(start, end, step) | extra)
}

fn parse_field(field: &str, b: &Bounds) -> Result<u64, String> {
    field
        .split(',')
        .try_fold(0, |acc, part| Ok(acc | parse_range(part, b)?))
}

impl Schedule {
    /// Parses a standard five-field schedule or a macro, with robfig's
    /// error messages (the API server puts them in its `Invalid value`).
    ///
    /// Fails on a malformed field, a value out of its field's range, a
    /// field count other than five, an unknown macro — `@reboot` among
    /// them — and `@every <duration>`, which robfig accepts but a
    /// CronJob's fixed calendar schedule has no use for here. `TZ=` and
    /// `CRON_TZ=` prefixes are rejected by the caller (validation), with
    /// the API server's message.
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        if spec.is_empty() {
            return Err("empty spec string".into());
        }
        if spec.starts_with('@') {
            return Self::descriptor(spec);
        }
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: [{}]",
                fields.len(),
                fields.join(" ")
            ));
        }
        Ok(Schedule {
            minute: parse_field(fields[0], &MINUTES)?,
            hour: parse_field(fields[1], &HOURS)?,
            dom: parse_field(fields[2], &DOM)?,
            month: parse_field(fields[3], &MONTHS)?,
            dow: parse_field(fields[4], &DOW)?,
        })
    }

    fn descriptor(spec: &str) -> Result<Schedule, String> {
        let (zero, first) = (1, 1 << 1);
        let every = |minute, hour, dom, month, dow| Schedule {
            minute,
            hour,
            dom,
            month,
            dow,
        };
        match spec {
            "@yearly" | "@annually" => Ok(every(zero, zero, first, first, all(&DOW))),
            "@monthly" => Ok(every(zero, zero, first, all(&MONTHS), all(&DOW))),
            "@weekly" => Ok(every(zero, zero, all(&DOM), all(&MONTHS), zero)),
            "@daily" | "@midnight" => Ok(every(zero, zero, all(&DOM), all(&MONTHS), all(&DOW))),
            "@hourly" => Ok(every(
                zero,
                all(&HOURS),
                all(&DOM),
                all(&MONTHS),
                all(&DOW),
            )),
            s if s.starts_with("@every ") || s == "@every" => Err(format!(
                "{s:?} is not supported: a CronJob schedule is a calendar schedule (five fields or @yearly, @monthly, @weekly, @daily, @hourly)"
            )),
            s => Err(format!("unrecognized descriptor: {s}")),
        }
    }

    /// robfig's `dayMatches`: day of month and day of week must both match
    /// when either field is `*`, otherwise either may.
    fn day_matches(&self, dt: DateTime) -> bool {
        let dom = self.dom & (1 << dt.day()) != 0;
        let dow = self.dow & (1 << dt.weekday().to_sunday_zero_offset()) != 0;
        if self.dom & STAR != 0 || self.dow & STAR != 0 {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first activation strictly after `after` (at whole minutes), in
    /// `tz`; `None` when none is found within five years (`30 0 31 2 *`).
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = |t: i64| tz.to_datetime(Timestamp::from_second(t).unwrap_or(Timestamp::MAX));
        // The upcoming whole second.
        let mut t = after.as_second() + 1;
        let mut added = false;
        let year_limit = local(t).year() + 5;
        'wrap: loop {
            if local(t).year() > year_limit {
                return None;
            }
            while self.month & (1 << local(t).month()) == 0 {
                let d = local(t);
                if !added {
                    added = true;
                    t = go_date(tz, d.year(), d.month(), 1, 0, 0, 0)?;
                }
                let d = local(t);
                t = go_date(
                    tz,
                    d.year(),
                    d.month() + 1,
                    d.day(),
                    d.hour(),
                    d.minute(),
                    d.second(),
                )?;
                if local(t).month() == 1 {
                    continue 'wrap;
                }
            }
            while !self.day_matches(local(t)) {
                let d = local(t);
                if !added {
                    added = true;
                    t = go_date(tz, d.year(), d.month(), d.day(), 0, 0, 0)?;
                }
                let d = local(t);
                t = go_date(
                    tz,
                    d.year(),
                    d.month(),
                    d.day() + 1,
                    d.hour(),
                    d.minute(),
                    d.second(),
                )?;
                // Midnight may not exist: back to 0 h or on to the next day.
                let h = i64::from(local(t).hour());
                if h != 0 {
                    t += if h > 12 { (24 - h) * 3600 } else { -h * 3600 };
                }
                if local(t).day() == 1 {
                    continue 'wrap;
                }
            }
            while self.hour & (1 << local(t).hour()) == 0 {
                if !added {
                    added = true;
                    let d = local(t);
                    t = go_date(tz, d.year(), d.month(), d.day(), d.hour(), 0, 0)?;
                }
                t += 3600;
                if local(t).hour() == 0 {
                    continue 'wrap;
                }
            }
            while self.minute & (1 << local(t).minute()) == 0 {
                if !added {
                    added = true;
                    t -= t.rem_euclid(60);
                }
                t += 60;
                if local(t).minute() == 0 {
                    continue 'wrap;
                }
            }
            // Seconds: only 0 is accepted.
            while local(t).second() != 0 {
                added = true;
                t += 1;
                if local(t).second() == 0 {
                    continue 'wrap;
                }
            }
            return Timestamp::from_second(t).ok();
        }
    }
}

/// Go's `time.Date(y, m, d, h, min, s, 0, tz)` as Unix seconds: fields out
/// of range are normalized (month 13 is January next year, day 32 the
/// first of the next month), a time in a spring-forward gap moves forward
/// by the gap, and an ambiguous fall-back time is the later of the two.
fn go_date(tz: &TimeZone, y: i16, m: i8, d: i8, h: i8, min: i8, s: i8) -> Option<i64> {
    let months = i64::from(y) * 12 + i64::from(m) - 1;
    let year = i16::try_from(months.div_euclid(12)).ok()?;
    let month = i8::try_from(months.rem_euclid(12) + 1).ok()?;
    let civil = date(year, month, 1)
        .at(0, 0, 0, 0)
        .checked_add(
            Span::new()
                .days(i64::from(d) - 1)
                .hours(h)
                .minutes(min)
                .seconds(s),
        )
        .ok()?;
    let as_utc = civil.to_zoned(TimeZone::UTC).ok()?.timestamp().as_second();
    let offset = |t: i64| {
        Timestamp::from_second(t)
            .map(|ts| i64::from(tz.to_offset(ts).seconds()))
            .unwrap_or(0)
    };
    let first = offset(as_utc);
    let utc = as_utc - first;
    if offset(utc) == first {
        Some(utc)
    } else {
        Some(as_utc - offset(utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn next(spec: &str, after: &str, tz: &TimeZone) -> Option<String> {
        let s = Schedule::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        s.next(ts(after), tz).map(|t| t.to_string())
    }

    /// The activations after `after`, as UTC strings.
    fn nexts(spec: &str, after: &str, tz: &TimeZone, n: usize) -> Vec<String> {
        let s = Schedule::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        let mut t = ts(after);
        (0..n)
            .map(|_| {
                t = s.next(t, tz).expect("a next time");
                t.to_string()
            })
            .collect()
    }

    #[test]
    fn every_minute_and_every_five_minutes_land_on_whole_minutes() {
        let utc = TimeZone::UTC;
        assert_eq!(
            next("* * * * *", "2024-05-01T10:00:00Z", &utc).as_deref(),
            Some("2024-05-01T10:01:00Z")
        );
        assert_eq!(
            next("* * * * *", "2024-05-01T10:00:59.5Z", &utc).as_deref(),
            Some("2024-05-01T10:01:00Z")
        );
        assert_eq!(
            nexts("*/5 * * * *", "2024-05-01T10:03:10Z", &utc, 2),
            ["2024-05-01T10:05:00Z", "2024-05-01T10:10:00Z"]
        );
        assert_eq!(
            nexts("0 0 * * *", "2024-12-31T23:59:59Z", &utc, 2),
            ["2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"]
        );
    }

    #[test]
    fn macros_are_their_five_field_equivalents() {
        let utc = TimeZone::UTC;
        let from = "2024-05-15T10:30:00Z";
        for (mac, expr) in [
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
            ("@monthly", "0 0 1 * *"),
            ("@weekly", "0 0 * * 0"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@hourly", "0 * * * *"),
        ] {
            assert_eq!(
                nexts(mac, from, &utc, 3),
                nexts(expr, from, &utc, 3),
                "{mac}"
            );
        }
        assert_eq!(
            next("@weekly", from, &utc).as_deref(),
            Some("2024-05-19T00:00:00Z"),
            "a Sunday"
        );
    }

    #[test]
    fn day_of_month_and_day_of_week_match_either_unless_one_is_a_star() {
        let utc = TimeZone::UTC;
        // The 13th or any Friday (2024-09-06 is a Friday).
        assert_eq!(
            nexts("0 12 13 * 5", "2024-09-01T00:00:00Z", &utc, 3),
            [
                "2024-09-06T12:00:00Z",
                "2024-09-13T12:00:00Z",
                "2024-09-20T12:00:00Z"
            ]
        );
        // `*` day of month: only Fridays.
        assert_eq!(
            nexts("0 12 * * fri", "2024-09-01T00:00:00Z", &utc, 2),
            ["2024-09-06T12:00:00Z", "2024-09-13T12:00:00Z"]
        );
        // Names, ranges and steps.
        assert_eq!(
            nexts(
                "15 9-17/4 * JAN-mar mon-FRI",
                "2024-01-05T10:00:00Z",
                &utc,
                3
            ),
            [
                "2024-01-05T13:15:00Z",
                "2024-01-05T17:15:00Z",
                "2024-01-08T09:15:00Z"
            ]
        );
    }

    #[test]
    fn an_impossible_date_has_no_next_time() {
        assert_eq!(
            next("0 0 30 2 *", "2024-01-01T00:00:00Z", &TimeZone::UTC),
            None
        );
        assert_eq!(
            next("0 0 29 2 *", "2025-01-01T00:00:00Z", &TimeZone::UTC).as_deref(),
            Some("2028-02-29T00:00:00Z")
        );
    }

    #[test]
    fn a_named_zone_schedules_on_its_wall_clock() {
        let ny = zone("America/New_York");
        // 09:00 EST is 14:00 UTC; 09:00 EDT 13:00 UTC.
        assert_eq!(
            next("0 9 * * *", "2024-01-10T15:00:00Z", &ny).as_deref(),
            Some("2024-01-11T14:00:00Z")
        );
        assert_eq!(
            next("0 9 * * *", "2024-07-10T15:00:00Z", &ny).as_deref(),
            Some("2024-07-11T13:00:00Z")
        );
    }

    /// Berlin springs forward on 2024-03-31 at 02:00 CET (01:00 UTC) to
    /// 03:00 CEST: 02:xx does not exist that day, and robfig (so the
    /// CronJob controller) skips a 02:30 schedule on it.
    #[test]
    fn spring_forward_skips_the_missing_hour_as_the_cronjob_controller_does() {
        let berlin = zone("Europe/Berlin");
        assert_eq!(
            nexts("30 2 * * *", "2024-03-30T12:00:00Z", &berlin, 3),
            [
                "2024-04-01T00:30:00Z", // 02:30 CEST the day after
                "2024-04-02T00:30:00Z",
                "2024-04-03T00:30:00Z",
            ]
        );
        // Hourly runs: 01:00 CET then 03:00 CEST, one hour of real time.
        assert_eq!(
            nexts("0 * * * *", "2024-03-31T00:30:00Z", &berlin, 2),
            ["2024-03-31T01:00:00Z", "2024-03-31T02:00:00Z"]
        );
        // A schedule at 03:30 still runs, at 03:30 CEST.
        assert_eq!(
            next("30 3 * * *", "2024-03-30T12:00:00Z", &berlin).as_deref(),
            Some("2024-03-31T01:30:00Z")
        );
    }

    /// Berlin falls back on 2024-10-27 at 03:00 CEST (01:00 UTC) to
    /// 02:00 CET: 02:xx happens twice, and robfig runs a 02:30 schedule in
    /// both.
    #[test]
    fn fall_back_runs_the_repeated_hour_twice_as_the_cronjob_controller_does() {
        let berlin = zone("Europe/Berlin");
        assert_eq!(
            nexts("30 2 * * *", "2024-10-26T12:00:00Z", &berlin, 3),
            [
                "2024-10-27T00:30:00Z", // 02:30 CEST
                "2024-10-27T01:30:00Z", // 02:30 CET
                "2024-10-28T01:30:00Z",
            ]
        );
        // New York falls back on 2024-11-03 at 02:00 EDT (06:00 UTC).
        let ny = zone("America/New_York");
        assert_eq!(
            nexts("0 1 * * *", "2024-11-02T12:00:00Z", &ny, 3),
            [
                "2024-11-03T05:00:00Z", // 01:00 EDT
                "2024-11-03T06:00:00Z", // 01:00 EST
                "2024-11-04T06:00:00Z",
            ]
        );
        // A daily midnight schedule is unaffected.
        assert_eq!(
            nexts("0 0 * * *", "2024-10-26T12:00:00Z", &berlin, 2),
            ["2024-10-26T22:00:00Z", "2024-10-27T23:00:00Z"]
        );
    }

    #[test]
    fn bad_schedules_get_robfigs_messages() {
        let err = |s: &str| Schedule::parse(s).expect_err(s);
        assert_eq!(err(""), "empty spec string");
        assert_eq!(
            err("* * * *"),
            "expected exactly 5 fields, found 4: [* * * *]"
        );
        assert_eq!(
            err("0 0 * * * *"),
            "expected exactly 5 fields, found 6: [0 0 * * * *]"
        );
        assert_eq!(
            err("60 * * * *"),
            "end of range (60) above maximum (59): 60"
        );
        assert_eq!(
            err("* * 0 * *"),
            "beginning of range (0) below minimum (1): 0"
        );
        assert_eq!(err("* * * * 7"), "end of range (7) above maximum (6): 7");
        assert_eq!(
            err("5-1 * * * *"),
            "beginning of range (5) beyond end of range (1): 5-1"
        );
        assert_eq!(
            err("*/0 * * * *"),
            "step of range should be a positive number: */0"
        );
        assert_eq!(
            err("x * * * *"),
            "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(err("1-2-3 * * * *"), "too many hyphens: 1-2-3");
        assert_eq!(err("1/2/3 * * * *"), "too many slashes: 1/2/3");
        assert_eq!(err("@reboot"), "unrecognized descriptor: @reboot");
        assert!(err("@every 1h").contains("not supported"));
    }
}
