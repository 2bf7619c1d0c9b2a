//! UTC timestamps: parsing the forms users type, and converting to calendar fields.
//!
//! Timestamps are `i64` seconds since 1970-01-01T00:00:00Z. Accepted text forms:
//! an integer (unix seconds), `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff]]` with an optional
//! `Z` or `±HH:MM` offset (a space may replace `T`). No offset means UTC.

/// Calendar fields of a UTC timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Year, e.g. 2021.
    pub year: i32,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of month, 1..=31.
    pub day: u32,
    /// Hour, 0..=23.
    pub hour: u32,
    /// Minute, 0..=59.
    pub minute: u32,
    /// Second, 0..=59.
    pub second: u32,
}

/// Why a date/time string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad date/time {input:?}: {what} (use unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)")]
pub struct TimeError {
    /// The text given.
    pub input: String,
    /// What was wrong.
    pub what: &'static str,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's civil algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Unix seconds of a validated calendar date and time (UTC).
pub fn to_unix(dt: DateTime) -> Result<i64, TimeError> {
    let err = |what| TimeError {
        input: format!("{dt:?}"),
        what,
    };
    if !(1..=12).contains(&dt.month) {
        return Err(err("month outside 1..=12"));
    }
    if dt.day < 1 || dt.day > days_in_month(dt.year.into(), dt.month) {
        return Err(err("day outside the month"));
    }
    if dt.hour > 23 || dt.minute > 59 || dt.second > 59 {
        return Err(err("time of day out of range"));
    }
    let days = days_from_civil(dt.year.into(), dt.month, dt.day);
    Ok(days * 86_400 + i64::from(dt.hour * 3600 + dt.minute * 60 + dt.second))
}

/// Calendar fields of unix seconds (UTC). Years outside i32 saturate.
pub fn from_unix(t: i64) -> DateTime {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400) as u32;
    let (y, month, day) = civil_from_days(days);
    DateTime {
        year: y.clamp(i32::MIN.into(), i32::MAX.into()) as i32,
        month,
        day,
        hour: secs / 3600,
        minute: secs / 60 % 60,
        second: secs % 60,
    }
}

/// [`parse_wall`] of an optional text: its wall clock.
pub fn parse_wall_opt(input: Option<&str>) -> Result<Option<DateTime>, TimeError> {
    input
        .map(|s| parse_wall(s).map(|(_, wall)| wall))
        .transpose()
}

/// `YYYY-MM-DDTHH:MM:SS` (no offset): a wall-clock time as [`parse_wall`] reads it back.
pub fn format_wall(d: DateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        d.year, d.month, d.day, d.hour, d.minute, d.second
    )
}

/// Parses the accepted forms (see the module docs) into unix seconds.
pub fn parse(input: &str) -> Result<i64, TimeError> {
    parse_wall(input).map(|(t, _)| t)
}

/// Parses the accepted forms into the instant (unix seconds, what time filters compare) and
/// the date and time as written, before any UTC offset is applied: the local wall clock,
/// which is what Sat2Cap's reference feeds its dynamic encoder (`2012-06-15T01:30:00+05:00`
/// is day 15, hour 1 for GeoNet, though the instant is 20:30 on the 14th UTC). Unix
/// seconds and times without an offset (or with `Z`) are UTC both ways.
pub fn parse_wall(input: &str) -> Result<(i64, DateTime), TimeError> {
    let s = input.trim();
    let err = |what| TimeError {
        input: input.to_string(),
        what,
    };
    if s.is_empty() {
        return Err(err("empty"));
    }
    if let Ok(n) = s.parse::<i64>() {
        if !s.contains('-') || s.starts_with('-') {
            return Ok((n, from_unix(n)));
        }
    }
    let num = |t: &str, what| -> Result<u32, TimeError> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) || t.len() > 4 {
            return Err(err(what));
        }
        t.parse::<u32>().map_err(|_| err(what))
    };
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut d = date.split('-');
    let (Some(y), Some(m), Some(dd), None) = (d.next(), d.next(), d.next(), d.next()) else {
        return Err(err("date is not YYYY-MM-DD"));
    };
    if y.len() != 4 || m.len() != 2 || dd.len() != 2 {
        return Err(err("date is not YYYY-MM-DD"));
    }
    let mut dt = DateTime {
        year: num(y, "bad year")? as i32,
        month: num(m, "bad month")?,
        day: num(dd, "bad day")?,
        hour: 0,
        minute: 0,
        second: 0,
    };
    let mut offset_s: i64 = 0;
    if let Some(rest) = rest {
        let (clock, off) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
            (c, None)
        } else if let Some(i) = rest.rfind(['+', '-']) {
            (&rest[..i], Some(&rest[i..]))
        } else {
            (rest, None)
        };
        let clock = clock.split('.').next().unwrap_or(clock);
        let parts: Vec<&str> = clock.split(':').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
            return Err(err("time is not HH:MM[:SS]"));
        }
        dt.hour = num(parts[0], "bad hour")?;
        dt.minute = num(parts[1], "bad minute")?;
        if let Some(sec) = parts.get(2) {
            dt.second = num(sec, "bad second")?;
        }
        if let Some(off) = off {
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let hm: Vec<&str> = off[1..].split(':').collect();
            if hm.len() != 2 || hm.iter().any(|p| p.len() != 2) {
                return Err(err("offset is not ±HH:MM"));
            }
            let (oh, om) = (num(hm[0], "bad offset")?, num(hm[1], "bad offset")?);
            if oh > 23 || om > 59 {
                return Err(err("offset out of range"));
            }
            offset_s = sign * i64::from(oh * 3600 + om * 60);
        }
    }
    let t = to_unix(dt).map_err(|e| err(e.what))?;
    Ok((t - offset_s, dt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_clock_is_the_time_as_written() {
        let (t, wall) = parse_wall("2012-06-15T01:30:00+05:00").unwrap();
        assert_eq!(t, parse("2012-06-14T20:30:00Z").unwrap());
        assert_eq!(
            (wall.year, wall.month, wall.day, wall.hour, wall.minute),
            (2012, 6, 15, 1, 30)
        );
        let (t, wall) = parse_wall("2012-06-15T23:00:00-03:00").unwrap();
        assert_eq!(from_unix(t).day, 16);
        assert_eq!((wall.day, wall.hour), (15, 23));
        let (t, wall) = parse_wall("1339723800").unwrap();
        assert_eq!(wall, from_unix(t));
    }

    #[test]
    fn parses_forms() {
        assert_eq!(parse("0").unwrap(), 0);
        assert_eq!(parse("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(parse("1970-01-02").unwrap(), 86_400);
        assert_eq!(parse("2000-03-01T00:00:00Z").unwrap(), 951_868_800);
        assert_eq!(parse("2000-03-01 01:30").unwrap(), 951_868_800 + 5400);
        assert_eq!(parse("2000-03-01T01:00:00+01:00").unwrap(), 951_868_800);
        assert_eq!(parse("2000-02-29T23:00:00-01:00").unwrap(), 951_868_800);
        assert_eq!(parse("2000-03-01T00:00:00.250Z").unwrap(), 951_868_800);
        for bad in [
            "",
            "2021-13-01",
            "2021-02-29",
            "2021-1-1",
            "2021-01-01T24:00",
            "x",
            "2021-01-01T10",
            "2021-01-01T10:00:00+5",
            "99999-01-01",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn round_trips_calendar() {
        for t in [
            -86_400 * 365 * 400,
            -1,
            0,
            951_868_799,
            1_700_000_000,
            4_102_444_800,
        ] {
            let dt = from_unix(t);
            assert_eq!(to_unix(dt).unwrap(), t, "{dt:?}");
        }
        assert_eq!(
            from_unix(951_868_800 - 1),
            DateTime {
                year: 2000,
                month: 2,
                day: 29,
                hour: 23,
                minute: 59,
                second: 59
            }
        );
    }
}
