//! Checks a source value (as text) against the target column's type before
//! loading, so one bad value skips its row instead of failing its batch.

/// What a target column accepts, from its `format_type` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValueType {
    Integer {
        min: i64,
        max: i64,
    },
    Numeric,
    Float,
    Boolean,
    Date,
    Timestamp,
    Uuid,
    Json,
    /// `character varying(n)`, `character(n)`: at most n characters.
    Characters(usize),
    /// Anything else: the server checks it.
    Other,
}

impl ValueType {
    pub(crate) fn from_type_name(name: &str) -> Self {
        let lower = name.trim().to_ascii_lowercase();
        // Arrays (`timestamp with time zone[]`): the server checks them.
        if lower.ends_with(']') {
            return Self::Other;
        }
        let base = lower.split('(').next().unwrap_or(&lower).trim();
        let length = || {
            lower
                .split_once('(')
                .and_then(|(_, rest)| rest.trim_end_matches(')').split(',').next())
                .and_then(|n| n.trim().parse().ok())
        };
        match base {
            "smallint" | "int2" => Self::Integer {
                min: i16::MIN.into(),
                max: i16::MAX.into(),
            },
            "integer" | "int" | "int4" => Self::Integer {
                min: i32::MIN.into(),
                max: i32::MAX.into(),
            },
            "bigint" | "int8" => Self::Integer {
                min: i64::MIN,
                max: i64::MAX,
            },
            "numeric" | "decimal" => Self::Numeric,
            "real" | "float4" | "double precision" | "float8" => Self::Float,
            "boolean" | "bool" => Self::Boolean,
            "date" => Self::Date,
            "uuid" => Self::Uuid,
            "json" | "jsonb" => Self::Json,
            "character varying" | "varchar" | "character" | "char" | "bpchar" => {
                length().map_or(Self::Other, Self::Characters)
            }
            other if other.starts_with("timestamp") => Self::Timestamp,
            _ => Self::Other,
        }
    }

    /// Whether every value PostgreSQL sends for a column of `source_type`
    /// (its internal name: `int4`, `timestamptz`, `jsonb`) passes
    /// [`Self::check`]: such a column's values need no check. Integers
    /// are still checked against a narrower column's range, lengths
    /// against a character limit.
    pub(crate) fn holds_every(&self, source_type: &str) -> bool {
        match self {
            Self::Integer { min, max } => match source_type {
                "int2" => *min <= i16::MIN.into() && *max >= i16::MAX.into(),
                "int4" => *min <= i32::MIN.into() && *max >= i32::MAX.into(),
                "int8" => *min == i64::MIN && *max == i64::MAX,
                _ => false,
            },
            Self::Numeric => matches!(source_type, "int2" | "int4" | "int8" | "numeric"),
            Self::Float => matches!(source_type, "int2" | "int4" | "float4" | "float8"),
            Self::Boolean => source_type == "bool",
            Self::Date => source_type == "date",
            Self::Timestamp => matches!(source_type, "date" | "timestamp" | "timestamptz"),
            Self::Uuid => source_type == "uuid",
            Self::Json => matches!(source_type, "json" | "jsonb"),
            Self::Characters(_) => false,
            Self::Other => true,
        }
    }

    /// The value to load, or why it cannot be loaded.
    pub(crate) fn check(&self, value: &str) -> Result<(), String> {
        let fail = |what: &str| Err(format!("`{}` is not {what}", shorten(value)));
        match self {
            Self::Integer { min, max } => match value.trim().parse::<i64>() {
                Ok(number) if number >= *min && number <= *max => Ok(()),
                Ok(_) => fail("in the column's integer range"),
                Err(_) => fail("an integer"),
            },
            Self::Numeric => {
                if is_numeric(value.trim()) {
                    Ok(())
                } else {
                    fail("a number")
                }
            }
            Self::Float => {
                let trimmed = value.trim();
                if trimmed.parse::<f64>().is_ok()
                    || ["NaN", "Infinity", "-Infinity"].contains(&trimmed)
                {
                    Ok(())
                } else {
                    fail("a number")
                }
            }
            Self::Boolean => match value.trim().to_ascii_lowercase().as_str() {
                "t" | "f" | "true" | "false" | "yes" | "no" | "on" | "off" | "1" | "0" | "y"
                | "n" => Ok(()),
                _ => fail("a boolean"),
            },
            Self::Date => {
                let trimmed = value.trim();
                let trimmed = trimmed.strip_suffix(" BC").unwrap_or(trimmed);
                if chrono::NaiveDate::parse_from_str(trimmed, "%Y-%m-%d").is_ok()
                    || ["infinity", "-infinity"].contains(&trimmed)
                {
                    Ok(())
                } else {
                    fail("a date (YYYY-MM-DD)")
                }
            }
            Self::Timestamp => {
                let trimmed = value.trim();
                if is_timestamp(trimmed.strip_suffix(" BC").unwrap_or(trimmed)) {
                    Ok(())
                } else {
                    fail("a timestamp")
                }
            }
            Self::Uuid => uuid::Uuid::parse_str(value.trim())
                .map(|_| ())
                .or_else(|_| fail("a UUID")),
            Self::Json => serde_json::from_str::<serde::de::IgnoredAny>(value)
                .map(|_| ())
                .or_else(|_| fail("valid JSON")),
            Self::Characters(limit) => {
                let length = value.chars().count();
                if length <= *limit {
                    Ok(())
                } else {
                    Err(format!(
                        "{length} characters are more than the column's {limit}"
                    ))
                }
            }
            Self::Other => Ok(()),
        }
    }
}

fn shorten(value: &str) -> String {
    if value.chars().count() > 40 {
        format!("{}…", value.chars().take(40).collect::<String>())
    } else {
        value.to_string()
    }
}

/// PostgreSQL's numeric input: sign, digits, point, exponent; or NaN/Infinity.
fn is_numeric(text: &str) -> bool {
    if ["NaN", "Infinity", "-Infinity", "+Infinity"].contains(&text) {
        return true;
    }
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (body, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |part: &str| part.chars().all(|c| c.is_ascii_digit() || c == '_');
    let mantissa_ok =
        (!whole.is_empty() || !fraction.is_empty()) && digits(whole) && digits(fraction);
    let exponent_ok = exponent.is_none_or(|exponent| {
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        !exponent.is_empty() && exponent.chars().all(|c| c.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

fn is_timestamp(text: &str) -> bool {
    if ["infinity", "-infinity", "now"].contains(&text) {
        return true;
    }
    let normalized = text.replace('T', " ");
    let with_zone = [
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M:%S%#z",
        "%Y-%m-%d %H:%M%#z",
    ];
    let without_zone = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ];
    let trimmed = normalized.trim_end_matches('Z').trim_end_matches(" UTC");
    with_zone
        .iter()
        .any(|format| chrono::DateTime::parse_from_str(&normalized, format).is_ok())
        || without_zone
            .iter()
            .any(|format| chrono::NaiveDateTime::parse_from_str(trimmed, format).is_ok())
        || chrono::NaiveDate::parse_from_str(trimmed, "%Y-%m-%d").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_source_types_whose_every_value_fits_skip_the_check() {
        let int4 = ValueType::from_type_name("integer");
        assert!(int4.holds_every("int2") && int4.holds_every("int4"));
        assert!(
            !int4.holds_every("int8"),
            "a bigint can overflow an integer"
        );
        assert!(!int4.holds_every("text"));
        let timestamp = ValueType::from_type_name("timestamp with time zone");
        assert!(timestamp.holds_every("timestamptz") && timestamp.holds_every("date"));
        assert!(!timestamp.holds_every("text") && !timestamp.holds_every("varchar"));
        assert!(ValueType::from_type_name("jsonb").holds_every("json"));
        assert!(!ValueType::from_type_name("jsonb").holds_every("text"));
        assert!(ValueType::from_type_name("numeric(14,2)").holds_every("int8"));
        assert!(
            !ValueType::from_type_name("numeric").holds_every("float8"),
            "NaN and exponents"
        );
        assert!(!ValueType::from_type_name("character(8)").holds_every("bpchar"));
        assert!(!ValueType::from_type_name("uuid").holds_every("text"));
    }

    #[test]
    fn types_come_from_format_type_names() {
        assert_eq!(
            ValueType::from_type_name("integer"),
            ValueType::Integer {
                min: i32::MIN.into(),
                max: i32::MAX.into()
            }
        );
        assert_eq!(
            ValueType::from_type_name("character varying(40)"),
            ValueType::Characters(40)
        );
        assert_eq!(
            ValueType::from_type_name("numeric(12,2)"),
            ValueType::Numeric
        );
        assert_eq!(
            ValueType::from_type_name("timestamp with time zone"),
            ValueType::Timestamp
        );
        assert_eq!(ValueType::from_type_name("text"), ValueType::Other);
        assert_eq!(
            ValueType::from_type_name("timestamp with time zone[]"),
            ValueType::Other,
            "arrays are checked by the server"
        );
    }

    #[test]
    fn values_are_checked_against_their_type() {
        let int = ValueType::from_type_name("integer");
        assert!(int.check("42").is_ok());
        assert!(int.check("3000000000").is_err());
        assert!(
            int.check("abc")
                .expect_err("not a number")
                .contains("`abc` is not an integer")
        );
        assert!(ValueType::Numeric.check("-12.50").is_ok());
        assert!(ValueType::Numeric.check("1e-3").is_ok());
        assert!(ValueType::Numeric.check("12,50").is_err());
        assert!(ValueType::Boolean.check("t").is_ok());
        assert!(ValueType::Boolean.check("maybe").is_err());
        assert!(ValueType::Date.check("2026-02-30").is_err());
        assert!(ValueType::Date.check("0044-03-15 BC").is_ok());
        assert!(
            ValueType::Timestamp
                .check("0044-03-15 12:00:00+00 BC")
                .is_ok()
        );
        assert!(
            ValueType::Timestamp
                .check("2026-11-22 15:32:00.123456+00")
                .is_ok()
        );
        assert!(ValueType::Timestamp.check("2026-11-22T15:32:00Z").is_ok());
        assert!(ValueType::Timestamp.check("yesterday-ish").is_err());
        assert!(
            ValueType::Uuid
                .check("c7f2b0a4-3f5e-4d1a-9a43-0b7a8f7e2c11")
                .is_ok()
        );
        assert!(ValueType::Json.check("{\"a\": [1]}").is_ok());
        assert!(ValueType::Json.check("{oops").is_err());
        assert!(ValueType::Characters(3).check("abcd").is_err());
        assert!(ValueType::Characters(3).check("äöü").is_ok());
    }
}
