//! Humane durations (`500ms`, `10s`, `5m`, `2h`, `1h30m`), parsed once at load.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, de};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    #[must_use]
    pub const fn std(self) -> std::time::Duration {
        self.0
    }

    /// Parses `1h30m`, `500ms`, `10s`; the units must be written in
    /// decreasing order and a bare number is refused, because `timeout: 30`
    /// is ambiguous to a reader under stress.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty duration".into());
        }
        let mut total: u128 = 0;
        let mut rest = text;
        let mut last_rank = u8::MAX;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(format!("`{text}` is not a duration"));
            }
            let number: u128 = rest[..digits]
                .parse()
                .map_err(|_| format!("`{text}` is too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let (millis, rank) = match &rest[..unit_len] {
                "ms" => (1, 0),
                "s" => (1000, 1),
                "m" => (60_000, 2),
                "h" => (3_600_000, 3),
                "d" => (86_400_000, 4),
                "" => return Err(format!("`{text}` has a number without a unit")),
                other => return Err(format!("unknown unit `{other}` in `{text}`")),
            };
            if rank >= last_rank {
                return Err(format!("units out of order in `{text}`"));
            }
            last_rank = rank;
            total = total
                .checked_add(number.saturating_mul(millis))
                .ok_or_else(|| format!("`{text}` is too large"))?;
            rest = &rest[unit_len..];
        }
        let millis = u64::try_from(total).map_err(|_| format!("`{text}` is too large"))?;
        Ok(Self(std::time::Duration::from_millis(millis)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis == 0 {
            return f.write_str("0s");
        }
        if !millis.is_multiple_of(1000) {
            if millis < 1000 {
                return write!(f, "{millis}ms");
            }
            if millis < 60_000 {
                return write!(f, "{:.1}s", self.0.as_secs_f64());
            }
        }
        let secs = u64::try_from((millis + 500) / 1000).unwrap_or(u64::MAX);
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `500ms`, `10s`, `5m` or `1h30m`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(|why| {
                    E::custom(format!(
                        "invalid duration: {why}; write a number and a unit, such as `500ms`, `10s`, `5m` or `1h30m`"
                    ))
                })
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$",
            "description": "A duration such as `500ms`, `10s`, `5m`, `2h` or `1h30m`."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Duration;

    #[test]
    fn parses_and_prints_humane_durations() {
        for (text, millis, shown) in [
            ("500ms", 500, "500ms"),
            ("10s", 10_000, "10s"),
            ("5m", 300_000, "5m"),
            ("1h30m", 5_400_000, "1h30m"),
            ("2h", 7_200_000, "2h"),
        ] {
            let d = Duration::parse(text).unwrap();
            assert_eq!(d.0.as_millis(), millis, "{text}");
            assert_eq!(d.to_string(), shown);
        }
    }

    #[test]
    fn refuses_ambiguous_durations() {
        for text in ["30", "5x", "m", "30m1h", "", "99999999999999999999h"] {
            assert!(Duration::parse(text).is_err(), "{text}");
        }
    }
}
