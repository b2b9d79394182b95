//! Time as the verifier sees it: seconds since the Unix epoch, always passed in by the caller.

use std::fmt;

/// A point in time, seconds since 1970-01-01T00:00:00Z. The verifier never reads a clock; the
/// caller decides what "now" is (system time in stmgr, a policy in stboot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnixTime(i64);

impl UnixTime {
    /// `secs` seconds after the epoch (negative: before).
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs)
    }
    /// Seconds after the epoch.
    pub const fn as_secs(self) -> i64 {
        self.0
    }

    /// Parse an RFC 3339 time of the form `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)`.
    ///
    /// Only times that exist are accepted: the day must be in its month (February 29 only in
    /// leap years), hours 0-23, minutes and seconds 0-59 (no leap second `60`, as Go's
    /// `time.Parse`), offsets at most 23:59. Nothing is carried over into the next unit.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let t = s.get(r)?;
            t.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| t.parse().ok())?
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo)
            || !(1..=days_in_month(y, mo)).contains(&d)
            || h > 23
            || mi > 59
            || se > 59
        {
            return None;
        }
        // Skip fractional seconds.
        let mut i = 19;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let digits = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == digits {
                return None;
            }
        }
        let offset = match s.get(i..)? {
            "Z" | "z" => 0,
            tz if tz.len() == 6
                && matches!(tz.as_bytes()[0], b'+' | b'-')
                && tz.as_bytes()[3] == b':' =>
            {
                let oh = num(i + 1..i + 3)?;
                let om = num(i + 4..i + 6)?;
                if oh > 23 || om > 59 {
                    return None;
                }
                let o = oh * 3600 + om * 60;
                if tz.starts_with('-') { -o } else { o }
            }
            _ => return None,
        };
        let days = days_from_civil(y, mo, d);
        Some(Self(days * 86_400 + h * 3600 + mi * 60 + se - offset))
    }
}

/// Days in month `m` (1-12) of year `y`, proleptic Gregorian.
fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since the epoch of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl fmt::Display for UnixTime {
    /// RFC 3339, UTC.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2001-01-01T00:00:00Z",
            "2099-12-31T23:59:59Z",
            "1950-06-15T12:30:00Z",
        ] {
            let t = UnixTime::parse_rfc3339(s).unwrap();
            assert_eq!(t.to_string(), s);
        }
        assert_eq!(
            UnixTime::parse_rfc3339("2001-01-01T00:00:00Z")
                .unwrap()
                .as_secs(),
            978_307_200
        );
        assert_eq!(
            UnixTime::parse_rfc3339("2001-01-01T02:00:00.5+02:00")
                .unwrap()
                .as_secs(),
            978_307_200
        );
        for bad in [
            "2001-01-01",
            "2001-13-01T00:00:00Z",
            "2001-01-01T00:00:00",
            "x001-01-01T00:00:00Z",
        ] {
            assert!(UnixTime::parse_rfc3339(bad).is_none(), "{bad}");
        }
    }

    /// Dates and times that do not exist are rejected, not carried into the next month, day or
    /// hour (`2027-02-31` is not March 3rd).
    #[test]
    fn impossible_dates_times_and_offsets_are_rejected() {
        for bad in [
            "2027-02-31T00:00:00Z",
            "2027-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2027-04-31T00:00:00Z",
            "2027-06-31T00:00:00Z",
            "2027-09-31T00:00:00Z",
            "2027-11-31T00:00:00Z",
            "2027-01-32T00:00:00Z",
            "2027-01-00T00:00:00Z",
            "2027-00-01T00:00:00Z",
            "2027-01-01T24:00:00Z",
            "2027-01-01T00:60:00Z",
            "2027-01-01T00:00:60Z",
            "2027-01-01T00:00:00+99:99",
            "2027-01-01T00:00:00+24:00",
            "2027-01-01T00:00:00-00:60",
            "2027-01-01T00:00:00.Z",
            "2027-01-01T00:00:00+0100",
            "2027-01-01T00:00:00+01:00x",
            "2027-01-01T00:00:00Zé",
            "2027-01-01Té0:00:00Z",
        ] {
            assert!(UnixTime::parse_rfc3339(bad).is_none(), "{bad}");
        }
        for (good, secs) in [
            ("2028-02-29T00:00:00Z", 1_835_395_200),
            ("2000-02-29T00:00:00Z", 951_782_400),
            ("2027-01-31T23:59:59Z", 1_801_439_999),
            ("2027-01-01T00:00:00+23:59", 1_798_675_260),
            ("2027-01-01T00:00:00-23:59", 1_798_847_940),
        ] {
            assert_eq!(
                UnixTime::parse_rfc3339(good).map(UnixTime::as_secs),
                Some(secs),
                "{good}"
            );
        }
    }
}
