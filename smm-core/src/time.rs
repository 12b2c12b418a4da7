//! RFC 3339 timestamps. The library never reads the calendar clock:
//! callers pass "now" in, parsed once at the front door into a
//! [`Timestamp`], which is what travels through the library; an instant
//! enters a hash only in its canonical spelling ([`Timestamp::to_rfc3339`]).

/// An instant: seconds since the Unix epoch and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z (negative before).
    pub seconds: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

impl Timestamp {
    /// Parse an RFC 3339 date-time (`2025-08-24T10:00:00Z`,
    /// `2025-08-24T12:00:00.5+02:00`). Returns None when it is not one.
    pub fn parse(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        // A run of at most four ASCII digits.
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            b.get(r)?.iter().try_fold(0i64, |v, c| {
                c.is_ascii_digit().then(|| v * 10 + i64::from(c - b'0'))
            })
        };
        if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
            return None;
        }
        if !matches!(b.get(10), Some(b'T' | b't' | b' '))
            || b.get(13) != Some(&b':')
            || b.get(16) != Some(&b':')
        {
            return None;
        }
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo)
            || d < 1
            || d > days_in_month(y, mo)
            || h > 23
            || mi > 59
            || sec > 60
        {
            return None;
        }
        let mut i = 19;
        let mut nanos = 0u32;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            let frac = b.get(start..i)?;
            if frac.is_empty() {
                return None;
            }
            // The first nine digits, padded with zeros.
            nanos = frac
                .iter()
                .chain(std::iter::repeat(&b'0'))
                .take(9)
                .fold(0u32, |v, c| v * 10 + u32::from(c - b'0'));
        }
        let offset = match b.get(i) {
            Some(b'Z' | b'z') if i + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b.get(i + 3) == Some(&b':') => {
                let oh = num(i + 1..i + 3)?;
                let om = num(i + 4..i + 6)?;
                if oh > 23 || om > 59 {
                    return None;
                }
                let o = oh * 3600 + om * 60;
                if *sign == b'+' { o } else { -o }
            }
            _ => return None,
        };
        let days = days_from_civil(y, mo, d);
        let seconds = days * 86_400 + h * 3600 + mi * 60 + sec.min(59) - offset;
        Some(Timestamp { seconds, nanos })
    }

    /// RFC 3339 in UTC: `YYYY-MM-DDTHH:MM:SSZ` (fraction only when non-zero).
    pub fn to_rfc3339(self) -> String {
        let days = self.seconds.div_euclid(86_400);
        let secs = self.seconds.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        if !(0..=9999).contains(&y) {
            return self.to_rfc3339_slow();
        }
        // The common case without the formatting machinery (the usage
        // ledger writes two of these per reservation).
        // `YYYY-MM-DDTHH:MM:SS`, then an optional fraction, then `Z`.
        let mut head = *b"0000-00-00T00:00:00";
        for (at, n) in [
            (0, y / 100),
            (2, y % 100),
            (5, m),
            (8, d),
            (11, secs / 3600),
            (14, secs % 3600 / 60),
            (17, secs % 60),
        ] {
            put2(&mut head, at, n);
        }
        let mut out = String::with_capacity(30);
        out.push_str(std::str::from_utf8(&head).unwrap_or_default());
        if self.nanos != 0 {
            let mut frac = *b".000000000";
            let mut n = self.nanos;
            for slot in frac.iter_mut().skip(1).rev() {
                *slot = b'0' + (n % 10) as u8;
                n /= 10;
            }
            let keep = frac.len() - frac.iter().rev().take_while(|c| **c == b'0').count();
            out.push_str(std::str::from_utf8(frac.get(..keep).unwrap_or(&[])).unwrap_or_default());
        }
        out.push('Z');
        out
    }

    fn to_rfc3339_slow(self) -> String {
        let days = self.seconds.div_euclid(86_400);
        let secs = self.seconds.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let frac = if self.nanos == 0 {
            String::new()
        } else {
            format!(".{:09}", self.nanos)
                .trim_end_matches('0')
                .to_string()
        };
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    }

    /// The UTC calendar (year, month 1..=12, day 1..=31).
    pub fn civil(self) -> (i64, i64, i64) {
        civil_from_days(self.seconds.div_euclid(86_400))
    }

    /// The UTC date, `YYYY-MM-DD`.
    pub fn date(self) -> String {
        let (y, m, d) = civil_from_days(self.seconds.div_euclid(86_400));
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// This instant plus whole seconds.
    pub fn plus_seconds(self, s: i64) -> Timestamp {
        Timestamp {
            seconds: self.seconds.saturating_add(s),
            nanos: self.nanos,
        }
    }
}

/// Text that is not an RFC 3339 date-time (what [`Timestamp`]'s `FromStr`
/// answers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an RFC 3339 date-time (e.g. 2025-09-01T12:00:00Z)")]
pub struct NotRfc3339(pub String);

impl std::str::FromStr for Timestamp {
    type Err = NotRfc3339;
    /// [`Timestamp::parse`], with an error that quotes the text.
    fn from_str(s: &str) -> Result<Timestamp, NotRfc3339> {
        Timestamp::parse(s).ok_or_else(|| NotRfc3339(s.chars().take(64).collect()))
    }
}

/// The canonical spelling ([`Timestamp::to_rfc3339`]): the one form in
/// which an instant enters a hash.
impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of days since 1970-01-01 (Howard Hinnant's algorithm).
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

/// Two decimal digits of `n` (0..=99) at `at` in `buf`.
fn put2(buf: &mut [u8], at: usize, n: i64) {
    let n = n.rem_euclid(100) as u8;
    if let Some([hi, lo]) = buf.get_mut(at..at + 2) {
        *hi = b'0' + n / 10;
        *lo = b'0' + n % 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_formatting_is_the_formatter() {
        let mut rng = crate::test_rng::TestRng::new(0x9E37_79B9_7F4A_7C15);
        for _ in 0..100_000 {
            let x = rng.next_u64();
            let t = Timestamp {
                seconds: (x % 400_000_000_000) as i64 - 100_000_000_000,
                nanos: if x.is_multiple_of(3) {
                    0
                } else {
                    (x >> 20) as u32 % 1_000_000_000
                },
            };
            assert_eq!(t.to_rfc3339(), t.to_rfc3339_slow(), "{t:?}");
        }
    }

    #[test]
    fn parses_rfc3339() {
        let t = Timestamp::parse("1970-01-01T00:00:00Z").unwrap();
        assert_eq!(
            t,
            Timestamp {
                seconds: 0,
                nanos: 0
            }
        );
        let a = Timestamp::parse("2025-08-24T10:00:00Z").unwrap();
        let b = Timestamp::parse("2025-08-24T12:00:00+02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.seconds, 1_756_029_600);
        assert_eq!(
            Timestamp::parse("2024-02-29T00:00:00.25Z").unwrap().nanos,
            250_000_000
        );
        for bad in [
            "2025-02-29T00:00:00Z",
            "2025-08-24",
            "2025-08-24T10:00:00",
            "2025-13-01T00:00:00Z",
            "x025-08-24T10:00:00Z",
            "2025-08-24T10:00:00.Z",
            "2025-08-24T10:00:+0Z",
            "2025-08-24T1:00:00ZZ",
            "2025-08-24T10:00:00.1x",
            "2025-08-24T24:00:00Z",
            "2025-08-24T10:00:00+24:00",
        ] {
            assert!(Timestamp::parse(bad).is_none(), "{bad}");
        }
        // More than nine fraction digits: the first nine count.
        assert_eq!(
            Timestamp::parse("2025-08-24T10:00:00.1234567891Z")
                .unwrap()
                .nanos,
            123_456_789
        );
        // Formatting and parsing are inverse.
        let mut rng = crate::test_rng::TestRng::new(0x1234_5678_9ABC_DEF1);
        for _ in 0..20_000 {
            let x = rng.next_u64();
            let t = Timestamp {
                seconds: (x % 300_000_000_000) as i64 - 62_000_000_000,
                nanos: (x >> 33) as u32 % 1_000_000_000,
            };
            assert_eq!(Timestamp::parse(&t.to_rfc3339()), Some(t), "{t:?}");
        }
    }
}
