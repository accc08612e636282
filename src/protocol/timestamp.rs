//! [`Timestamp`]: a UTC date and time with microsecond precision, written the way the SDK writes
//! its naive `datetime.now()`.

use std::fmt;
use std::str::FromStr;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// A point in time (UTC, microsecond precision), written as the SDK writes it: ISO 8601 without
/// an offset, with six fractional digits unless the microseconds are zero
/// (`2026-11-24T14:20:41.193439`, `2025-10-06T12:00:00`).
///
/// Parsing accepts that form, a `Z` or `±HH:MM` offset (converted to UTC), a space instead of
/// the `T`, any number of fractional digits (cut to microseconds), and unix seconds as a number.
///
/// ```
/// use chatkit_tower::protocol::Timestamp;
///
/// let t: Timestamp = "2026-11-24T14:20:41.193439".parse().unwrap();
/// assert_eq!(t.to_string(), "2026-11-24T14:20:41.193439");
/// let t: Timestamp = "2025-10-06T14:00:00+02:00".parse().unwrap();
/// assert_eq!(t.to_string(), "2025-10-06T12:00:00");
/// assert_eq!(serde_json::to_string(&t).unwrap(), "\"2025-10-06T12:00:00\"");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(PrimitiveDateTime);

impl Timestamp {
    /// The current time, cut to microseconds.
    pub fn now() -> Self {
        Self::from_utc(OffsetDateTime::now_utc())
    }

    /// `at`, converted to UTC and cut to microseconds.
    pub fn from_utc(at: OffsetDateTime) -> Self {
        let at = at.to_offset(UtcOffset::UTC);
        let micros = at.microsecond();
        let time = at.time().replace_microsecond(micros).unwrap_or(at.time());
        Self(PrimitiveDateTime::new(at.date(), time))
    }

    /// Microseconds since the unix epoch (what a SQL store keeps in an integer column).
    ///
    /// ```
    /// use chatkit_tower::protocol::Timestamp;
    /// let t: Timestamp = "1970-01-01T00:00:01.000002".parse().unwrap();
    /// assert_eq!(t.unix_micros(), 1_000_002);
    /// assert_eq!(Timestamp::from_unix_micros(1_000_002), Some(t));
    /// ```
    pub fn unix_micros(&self) -> i64 {
        let nanos = self.0.assume_utc().unix_timestamp_nanos();
        (nanos / 1000) as i64
    }

    /// The time `micros` microseconds after the unix epoch, if it is representable.
    pub fn from_unix_micros(micros: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
            .ok()
            .map(Self::from_utc)
    }

    /// The date and time in UTC.
    pub fn to_offset_date_time(&self) -> OffsetDateTime {
        self.0.assume_utc()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (d, t) = (self.0.date(), self.0.time());
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            d.year(),
            u8::from(d.month()),
            d.day(),
            t.hour(),
            t.minute(),
            t.second()
        )?;
        if t.microsecond() != 0 {
            write!(f, ".{:06}", t.microsecond())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

/// Why a text is not a [`Timestamp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampError(String);

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not an ISO 8601 date and time: {:?}", self.0)
    }
}

impl std::error::Error for TimestampError {}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s).ok_or_else(|| TimestampError(s.chars().take(64).collect()))
    }
}

fn parse(s: &str) -> Option<Timestamp> {
    if !s.is_ascii() {
        return None;
    }
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let date = Date::from_calendar_date(
        i32::try_from(num(0..4)?).ok()?,
        Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?,
        u8::try_from(num(8..10)?).ok()?,
    )
    .ok()?;
    let mut rest = &s[19..];
    let mut micros = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let len = frac.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        let digits: String = frac[..len]
            .chars()
            .chain("000000".chars())
            .take(6)
            .collect();
        micros = digits.parse().ok()?;
        rest = &frac[len..];
    }
    let time = Time::from_hms_micro(
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(14..16)?).ok()?,
        u8::try_from(num(17..19)?).ok()?,
        micros,
    )
    .ok()?;
    let offset = match rest {
        "" | "Z" | "z" => UtcOffset::UTC,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hm = &rest[1..];
            let (h, m) = match hm.len() {
                5 if hm.as_bytes()[2] == b':' => (&hm[..2], &hm[3..]),
                4 => (&hm[..2], &hm[2..]),
                2 => (hm, "00"),
                _ => return None,
            };
            let h: i8 = h.parse().ok()?;
            let m: i8 = m.parse().ok()?;
            UtcOffset::from_hms(sign * h, sign * m, 0).ok()?
        }
    };
    Some(Timestamp::from_utc(
        PrimitiveDateTime::new(date, time).assume_offset(offset),
    ))
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ISO 8601 date and time")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Timestamp, E> {
                v.checked_mul(1_000_000)
                    .and_then(Timestamp::from_unix_micros)
                    .ok_or_else(|| E::custom("unix time out of range"))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                self.visit_i64(i64::try_from(v).map_err(|_| E::custom("unix time out of range"))?)
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Timestamp, E> {
                let micros = (v * 1e6).round();
                if !micros.is_finite() || micros.abs() > 9.0e18 {
                    return Err(E::custom("unix time out of range"));
                }
                Timestamp::from_unix_micros(micros as i64)
                    .ok_or_else(|| E::custom("unix time out of range"))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_sdk_forms() {
        for text in [
            "2026-11-24T14:20:41.193439",
            "2025-10-06T12:00:00",
            "2025-01-01T00:00:00.000001",
        ] {
            assert_eq!(text.parse::<Timestamp>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn offsets_fractions_and_numbers_are_accepted() {
        let utc = |s: &str| s.parse::<Timestamp>().unwrap().to_string();
        assert_eq!(utc("2025-10-06T12:00:00Z"), "2025-10-06T12:00:00");
        assert_eq!(
            utc("2025-10-06T12:00:00.5-01:30"),
            "2025-10-06T13:30:00.500000"
        );
        assert_eq!(
            utc("2025-10-06 12:00:00.123456789"),
            "2025-10-06T12:00:00.123456"
        );
        let t: Timestamp = serde_json::from_str("1.5").unwrap();
        assert_eq!(t.to_string(), "1970-01-01T00:00:01.500000");
    }

    #[test]
    fn nonsense_is_an_error_not_a_panic() {
        for text in [
            "",
            "2025",
            "2025-13-01T00:00:00",
            "2025-01-01T25:00:00",
            "2025-01-01T00:00:00+x",
            "2025-01-01T00:00:00.",
            "ÿÿÿÿ-01-01T00:00:00",
        ] {
            assert!(text.parse::<Timestamp>().is_err(), "{text}");
        }
    }

    #[test]
    fn now_has_microsecond_precision() {
        let now = Timestamp::now();
        assert_eq!(now.to_offset_date_time().nanosecond() % 1000, 0);
    }
}
