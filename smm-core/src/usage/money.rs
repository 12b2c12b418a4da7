//! US dollars as an exact decimal: whole nano-dollars in a `u64` (up to
//! about 18 billion dollars), written in JSON as a decimal string
//! (`"0.009"`), so sums never drift the way binary floats do.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Nano-dollars in a dollar.
pub const NANOS_PER_USD: u64 = 1_000_000_000;

/// An amount of US dollars, exact to the nano-dollar, never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Usd(u64);

impl Usd {
    /// Zero dollars.
    pub const ZERO: Usd = Usd(0);

    /// From whole nano-dollars.
    pub const fn from_nanos(nanos: u64) -> Usd {
        Usd(nanos)
    }

    /// Whole nano-dollars.
    pub const fn nanos(self) -> u64 {
        self.0
    }

    /// From a float of dollars, rounded to the nano-dollar (half away from
    /// zero). `None` for a negative, non-finite or too large value.
    pub fn from_f64(usd: f64) -> Option<Usd> {
        if !usd.is_finite() || usd < 0.0 {
            return None;
        }
        let nanos = (usd * NANOS_PER_USD as f64).round();
        (nanos < u64::MAX as f64).then_some(Usd(nanos as u64))
    }

    /// As a float (for display and plotting; sums stay on nano-dollars).
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_USD as f64
    }

    /// Exact sum; `None` on overflow.
    pub fn checked_add(self, other: Usd) -> Option<Usd> {
        self.0.checked_add(other.0).map(Usd)
    }
}

/// Why a decimal string is not an amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseUsdError(String);

impl fmt::Display for ParseUsdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Usd {
    type Err = ParseUsdError;

    /// A non-negative decimal with at most 9 fractional digits (`"12"`,
    /// `"0.009"`, `"1.50"`); no sign, exponent or spaces.
    fn from_str(s: &str) -> Result<Usd, ParseUsdError> {
        let bad = || {
            ParseUsdError(format!(
                "{s:?} is not an amount of dollars (a decimal like \"0.009\", at most 9 decimals)"
            ))
        };
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > 9
            || (s.contains('.') && frac.is_empty())
        {
            return Err(bad());
        }
        let w: u64 = whole.parse().map_err(|_| bad())?;
        let f: u64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<9}").parse().map_err(|_| bad())?
        };
        w.checked_mul(NANOS_PER_USD)
            .and_then(|n| n.checked_add(f))
            .map(Usd)
            .ok_or_else(bad)
    }
}

impl fmt::Display for Usd {
    /// The shortest decimal: `0.009`, `12`, `1.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / NANOS_PER_USD;
        let frac = self.0 % NANOS_PER_USD;
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let digits = format!("{frac:09}");
            write!(f, "{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Usd {
    /// A decimal string (exact), or a JSON number (rounded to the
    /// nano-dollar).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Usd, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(f64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
            Raw::Number(x) => Usd::from_f64(x).ok_or_else(|| {
                serde::de::Error::custom(format!("{x} is not an amount of dollars (finite, >= 0)"))
            }),
        }
    }
}

impl JsonSchema for Usd {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Usd".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "US dollars as a decimal string, at most 9 decimals (e.g. \"0.009\").",
            "type": "string",
            "pattern": "^[0-9]+(\\.[0-9]{1,9})?$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_round_trip_exactly() {
        for (s, nanos) in [
            ("0", 0),
            ("0.009", 9_000_000),
            ("12", 12_000_000_000),
            ("1.5", 1_500_000_000),
            ("0.000000001", 1),
        ] {
            let u: Usd = s.parse().unwrap();
            assert_eq!(u.nanos(), nanos);
            assert_eq!(u.to_string(), s);
        }
        assert_eq!("1.50".parse::<Usd>().unwrap().to_string(), "1.5");
        for bad in [
            "",
            "-1",
            "1e3",
            "1.",
            ".5",
            "1.0000000001",
            " 1",
            "18446744073.709551616",
            "x",
        ] {
            assert!(bad.parse::<Usd>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sums_do_not_drift() {
        // 0.1 + 0.2 is 0.3 exactly here, unlike binary floats.
        let a: Usd = "0.1".parse().unwrap();
        let b: Usd = "0.2".parse().unwrap();
        assert_eq!(a.checked_add(b).unwrap().to_string(), "0.3");
        assert_eq!(Usd::from_f64(0.03).unwrap().to_string(), "0.03");
        assert!(Usd::from_f64(-0.01).is_none() && Usd::from_f64(f64::NAN).is_none());
        let mut total = Usd::ZERO;
        for _ in 0..1_000_000 {
            total = total.checked_add(Usd::from_nanos(9_000_000)).unwrap();
        }
        assert_eq!(total.to_string(), "9000");
    }
}
