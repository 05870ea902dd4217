//! Values read in PostgreSQL's binary format and written as the text
//! PostgreSQL itself writes for them (in a session whose time zone is UTC
//! and whose `DateStyle` is ISO): the source sends its stored bytes and
//! skips its own text conversion, which for timestamps, numerics, uuids
//! and jsonb costs it more than sending the bytes.

use std::fmt::Write as _;

use tokio_postgres::types::{FromSql, Type};

/// A value's bytes as the server sent them, of any type.
pub(crate) struct Raw<'a>(pub(crate) &'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A type whose binary format syncdeck decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binary {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Bytea,
    Date,
    Timestamp,
    Timestamptz,
    Uuid,
    Json,
    Jsonb,
}

impl Binary {
    /// The decoder for a type, by the driver's name for it.
    pub(crate) fn for_type(type_name: &str) -> Option<Self> {
        Some(match type_name {
            "bool" => Self::Bool,
            "int2" => Self::Int2,
            "int4" => Self::Int4,
            "int8" => Self::Int8,
            "float4" => Self::Float4,
            "float8" => Self::Float8,
            "numeric" => Self::Numeric,
            "text" | "varchar" | "bpchar" | "name" => Self::Text,
            "bytea" => Self::Bytea,
            "date" => Self::Date,
            "timestamp" => Self::Timestamp,
            "timestamptz" => Self::Timestamptz,
            "uuid" => Self::Uuid,
            "json" => Self::Json,
            "jsonb" => Self::Jsonb,
            _ => return None,
        })
    }

    /// The decoder for an array's elements, by their type's OID.
    fn for_oid(oid: u32) -> Option<Self> {
        Type::from_oid(oid).and_then(|element| Self::for_type(element.name()))
    }
}

fn short(what: &str) -> String {
    format!("a {what} value of an unexpected length")
}

fn array<const N: usize>(raw: &[u8], what: &str) -> Result<[u8; N], String> {
    raw.try_into().map_err(|_| short(what))
}

/// PostgreSQL's epoch, 2000-01-01, in days from 0001-01-01 (day 1).
const EPOCH_DAYS_FROM_CE: i32 = 730_120;

/// Appends the text of a value of type `kind` to `out`.
pub(crate) fn write_value(kind: Binary, raw: &[u8], out: &mut String) -> Result<(), String> {
    match kind {
        Binary::Bool => out.push_str(if raw.first() == Some(&1) {
            "true"
        } else {
            "false"
        }),
        Binary::Int2 => {
            let _ = write!(out, "{}", i16::from_be_bytes(array(raw, "smallint")?));
        }
        Binary::Int4 => {
            let _ = write!(out, "{}", i32::from_be_bytes(array(raw, "integer")?));
        }
        Binary::Int8 => {
            let _ = write!(out, "{}", i64::from_be_bytes(array(raw, "bigint")?));
        }
        Binary::Float4 => write_float(
            f64::from(f32::from_be_bytes(array(raw, "real")?)),
            out,
            |value| format!("{}", value as f32),
        ),
        Binary::Float8 => write_float(
            f64::from_be_bytes(array(raw, "double precision")?),
            out,
            |value| format!("{value}"),
        ),
        Binary::Numeric => write_numeric(raw, out)?,
        Binary::Text | Binary::Json => out
            .push_str(std::str::from_utf8(raw).map_err(|_| "text that is not UTF-8".to_string())?),
        Binary::Jsonb => {
            let (version, body) = raw.split_first().ok_or_else(|| short("jsonb"))?;
            if *version != 1 {
                return Err(format!("jsonb of unknown format version {version}"));
            }
            out.push_str(
                std::str::from_utf8(body).map_err(|_| "jsonb that is not UTF-8".to_string())?,
            )
        }
        Binary::Bytea => {
            out.push_str("\\x");
            for byte in raw {
                let _ = write!(out, "{byte:02x}");
            }
        }
        Binary::Uuid => {
            let _ = write!(
                out,
                "{}",
                uuid::Uuid::from_bytes(array(raw, "uuid")?).hyphenated()
            );
        }
        Binary::Date => write_date(i32::from_be_bytes(array(raw, "date")?), out),
        Binary::Timestamp => {
            write_timestamp(i64::from_be_bytes(array(raw, "timestamp")?), false, out)
        }
        Binary::Timestamptz => {
            write_timestamp(i64::from_be_bytes(array(raw, "timestamptz")?), true, out)
        }
    }
    Ok(())
}

fn write_float(value: f64, out: &mut String, show: impl Fn(f64) -> String) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        out.push_str(&show(value));
    }
}

/// A proleptic Gregorian date, with PostgreSQL's ` BC` for years before 1.
fn civil(days_since_2000: i64) -> Option<(chrono::NaiveDate, bool)> {
    let days = i32::try_from(days_since_2000 + i64::from(EPOCH_DAYS_FROM_CE)).ok()?;
    let date = chrono::NaiveDate::from_num_days_from_ce_opt(days)?;
    Some((date, chrono::Datelike::year(&date) < 1))
}

fn write_ymd(date: chrono::NaiveDate, out: &mut String) {
    use chrono::Datelike;
    let year = if date.year() < 1 {
        1 - date.year()
    } else {
        date.year()
    };
    let _ = write!(out, "{year:04}-{:02}-{:02}", date.month(), date.day());
}

fn write_date(days: i32, out: &mut String) {
    match days {
        i32::MAX => out.push_str("infinity"),
        i32::MIN => out.push_str("-infinity"),
        _ => match civil(i64::from(days)) {
            Some((date, bc)) => {
                write_ymd(date, out);
                if bc {
                    out.push_str(" BC");
                }
            }
            None => out.push_str("infinity"),
        },
    }
}

fn write_timestamp(micros: i64, zone: bool, out: &mut String) {
    const DAY: i64 = 86_400_000_000;
    match micros {
        i64::MAX => return out.push_str("infinity"),
        i64::MIN => return out.push_str("-infinity"),
        _ => {}
    }
    let days = micros.div_euclid(DAY);
    let of_day = micros.rem_euclid(DAY);
    let Some((date, bc)) = civil(days) else {
        return out.push_str("infinity");
    };
    write_ymd(date, out);
    let seconds = of_day / 1_000_000;
    let fraction = of_day % 1_000_000;
    let _ = write!(
        out,
        " {:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    if zone {
        out.push_str("+00");
    }
    if bc {
        out.push_str(" BC");
    }
}

/// `numeric`'s binary form: digit count, weight (of the first base-10,000
/// digit), sign, display scale, then the base-10,000 digits.
fn write_numeric(raw: &[u8], out: &mut String) -> Result<(), String> {
    let header = |at: usize| -> Result<u16, String> {
        raw.get(at..at + 2)
            .map(|bytes| u16::from_be_bytes([bytes[0], bytes[1]]))
            .ok_or_else(|| short("numeric"))
    };
    let count = usize::from(header(0)?);
    let weight = i64::from(header(2)? as i16);
    let sign = header(4)?;
    let scale = usize::from(header(6)?);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => {
            out.push_str("NaN");
            return Ok(());
        }
        0xD000 => {
            out.push_str("Infinity");
            return Ok(());
        }
        0xF000 => {
            out.push_str("-Infinity");
            return Ok(());
        }
        other => return Err(format!("a numeric of unknown sign {other:#x}")),
    }
    let digits: Vec<u16> = (0..count)
        .map(|index| header(8 + index * 2))
        .collect::<Result<_, _>>()?;
    if sign == 0x4000 {
        out.push('-');
    }
    // The base-10,000 digit at position `weight - index` (position 0 is
    // the units' group), or 0 where none is stored.
    let group = |position: i64| -> u16 {
        let index = weight - position;
        usize::try_from(index)
            .ok()
            .and_then(|index| digits.get(index).copied())
            .unwrap_or(0)
    };
    if weight < 0 {
        out.push('0');
    } else {
        let _ = write!(out, "{}", group(weight));
        for position in (0..weight).rev() {
            let _ = write!(out, "{:04}", group(position));
        }
    }
    if scale > 0 {
        out.push('.');
        let mut written = 0;
        let mut position = -1;
        while written < scale {
            let text = format!("{:04}", group(position));
            let take = (scale - written).min(4);
            out.push_str(&text[..take]);
            written += take;
            position -= 1;
        }
    }
    Ok(())
}

/// An array's binary form: dimensions, a has-NULLs flag, the element
/// type, each dimension's length and lower bound, then every element as a
/// length (-1 for NULL) and its bytes. Written as PostgreSQL writes it:
/// `{1,2}`, `{{"a b",NULL}}`, `[0:1]={x,y}`.
pub(crate) fn write_array(raw: &[u8], out: &mut String) -> Result<(), String> {
    let mut at = 0;
    let mut int = |raw: &[u8]| -> Result<i32, String> {
        let bytes = raw.get(at..at + 4).ok_or_else(|| short("array"))?;
        at += 4;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    };
    let dimensions = usize::try_from(int(raw)?).map_err(|_| short("array"))?;
    let _has_nulls = int(raw)?;
    let oid = int(raw)? as u32;
    let kind = Binary::for_oid(oid).ok_or_else(|| format!("an array of type OID {oid}"))?;
    let mut lengths = Vec::with_capacity(dimensions);
    let mut lower_bounds = Vec::with_capacity(dimensions);
    for _ in 0..dimensions {
        lengths.push(usize::try_from(int(raw)?).map_err(|_| short("array"))?);
        lower_bounds.push(int(raw)?);
    }
    if dimensions == 0 {
        out.push_str("{}");
        return Ok(());
    }
    if lower_bounds.iter().any(|bound| *bound != 1) {
        for (length, lower) in lengths.iter().zip(&lower_bounds) {
            let upper = i64::from(*lower) + *length as i64 - 1;
            let _ = write!(out, "[{lower}:{upper}]");
        }
        out.push('=');
    }
    let mut rest = raw.get(at..).ok_or_else(|| short("array"))?;
    let mut element = String::new();
    write_dimension(kind, &lengths, &mut rest, &mut element, out)
}

fn write_dimension(
    kind: Binary,
    lengths: &[usize],
    rest: &mut &[u8],
    element: &mut String,
    out: &mut String,
) -> Result<(), String> {
    let Some((&length, inner)) = lengths.split_first() else {
        return Ok(());
    };
    out.push('{');
    for index in 0..length {
        if index > 0 {
            out.push(',');
        }
        if !inner.is_empty() {
            write_dimension(kind, inner, rest, element, out)?;
            continue;
        }
        let size = rest.get(..4).ok_or_else(|| short("array"))?;
        let size = i32::from_be_bytes([size[0], size[1], size[2], size[3]]);
        *rest = &rest[4..];
        if size < 0 {
            out.push_str("NULL");
            continue;
        }
        let size = size as usize;
        let bytes = rest.get(..size).ok_or_else(|| short("array"))?;
        *rest = &rest[size..];
        element.clear();
        write_value(kind, bytes, element)?;
        write_element(element, out);
    }
    out.push('}');
    Ok(())
}

/// An array element, quoted where PostgreSQL quotes it.
fn write_element(text: &str, out: &mut String) {
    let quote = text.is_empty()
        || text.eq_ignore_ascii_case("NULL")
        || text
            .chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace());
    if !quote {
        out.push_str(text);
        return;
    }
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(kind: Binary, raw: &[u8]) -> String {
        let mut out = String::new();
        write_value(kind, raw, &mut out).expect("decodes");
        out
    }

    fn numeric(weight: i16, sign: u16, scale: u16, digits: &[u16]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend((digits.len() as u16).to_be_bytes());
        raw.extend(weight.to_be_bytes());
        raw.extend(sign.to_be_bytes());
        raw.extend(scale.to_be_bytes());
        for digit in digits {
            raw.extend(digit.to_be_bytes());
        }
        raw
    }

    #[test]
    fn numerics_are_written_with_their_scale() {
        assert_eq!(
            text(Binary::Numeric, &numeric(0, 0, 4, &[12, 3450])),
            "12.3450"
        );
        assert_eq!(
            text(Binary::Numeric, &numeric(1, 0x4000, 0, &[1, 0])),
            "-10000"
        );
        assert_eq!(text(Binary::Numeric, &numeric(1, 0, 2, &[1])), "10000.00");
        assert_eq!(text(Binary::Numeric, &numeric(-1, 0, 6, &[50])), "0.005000");
        assert_eq!(
            text(Binary::Numeric, &numeric(-2, 0, 5, &[1000])),
            "0.00001"
        );
        assert_eq!(text(Binary::Numeric, &numeric(0, 0, 0, &[])), "0");
        assert_eq!(text(Binary::Numeric, &numeric(0, 0xC000, 0, &[])), "NaN");
    }

    #[test]
    fn times_are_written_in_utc_as_postgresql_writes_them() {
        let micros = |value: i64| value.to_be_bytes();
        assert_eq!(
            text(Binary::Timestamptz, &micros(0)),
            "2000-01-01 00:00:00+00"
        );
        assert_eq!(
            text(Binary::Timestamptz, &micros(-1)),
            "1999-12-31 23:59:59.999999+00"
        );
        assert_eq!(
            text(Binary::Timestamp, &micros(86_400_000_000 + 1_500_000)),
            "2000-01-02 00:00:01.5"
        );
        assert_eq!(text(Binary::Timestamp, &micros(i64::MAX)), "infinity");
        assert_eq!(
            text(Binary::Date, &(-730_119i32).to_be_bytes()),
            "0001-01-01"
        );
        assert_eq!(
            text(Binary::Date, &(-730_120i32).to_be_bytes()),
            "0001-12-31 BC"
        );
        assert_eq!(text(Binary::Date, &i32::MIN.to_be_bytes()), "-infinity");
    }

    #[test]
    fn other_types_are_written_as_postgresql_writes_them() {
        assert_eq!(text(Binary::Bytea, &[0, 0xab, 0x10]), "\\x00ab10");
        assert_eq!(text(Binary::Jsonb, b"\x01{\"a\": 1}"), "{\"a\": 1}");
        assert_eq!(text(Binary::Float8, &0.1f64.to_be_bytes()), "0.1");
        assert_eq!(text(Binary::Float4, &0.1f32.to_be_bytes()), "0.1");
        assert_eq!(
            text(Binary::Float8, &f64::NEG_INFINITY.to_be_bytes()),
            "-Infinity"
        );
        assert_eq!(
            text(Binary::Uuid, &[0x12; 16]),
            "12121212-1212-1212-1212-121212121212"
        );
        let mut out = String::new();
        assert!(write_value(Binary::Int4, &[1, 2], &mut out).is_err());
    }

    #[test]
    fn arrays_are_nested_quoted_and_keep_their_bounds() {
        let mut raw = Vec::new();
        for value in [2i32, 1, 25, 2, 1, 1, 1] {
            raw.extend(value.to_be_bytes());
        }
        // Two dimensions, 2 x 1, text: "a b" and NULL.
        raw.extend(3i32.to_be_bytes());
        raw.extend(b"a b");
        raw.extend((-1i32).to_be_bytes());
        let mut out = String::new();
        write_array(&raw, &mut out).expect("decodes");
        assert_eq!(out, "{{\"a b\"},{NULL}}");

        let mut raw = Vec::new();
        for value in [1i32, 0, 23, 2, 0, 4, 7, 4, -8] {
            raw.extend(value.to_be_bytes());
        }
        let mut out = String::new();
        write_array(&raw, &mut out).expect("decodes");
        assert_eq!(out, "[0:1]={7,-8}");
    }
}
