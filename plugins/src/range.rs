//! Physical ranges of configuration values: every number of the daemon's config file and of a
//! model manifest has one, declared once next to its key ([`Bound`]), checked when the file is
//! loaded and listed in docs/RELIABILITY.md ("Configuration ranges").
//!
//! It lives here because every crate that owns a configuration struct (adas-core, adas-record,
//! adas-detect, adasd) and the manifest itself depend on this crate: one checker, one message
//! format, one line finder for all of them.
//!
//! A value outside its range is refused, never clamped: a config that says something impossible
//! was written for another product or by mistake, and the wrong decision it leads to (a false
//! FCW from an absurd frame rate, a silent status message from a huge period, an allocation that
//! aborts the process) is worse than not starting.

use std::fmt;

/// A closed interval a value must lie in, with its unit. NaN and infinities never lie in one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
    /// Unit as written in the documentation (`ms`, `m/s²`, `px`); empty for plain numbers.
    pub unit: &'static str,
}

impl Range {
    pub const fn new(min: f64, max: f64, unit: &'static str) -> Range {
        Range { min, max, unit }
    }

    pub fn contains(&self, value: f64) -> bool {
        self.min <= value && value <= self.max
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}–{}", self.min, self.max)?;
        if !self.unit.is_empty() {
            write!(f, " {}", self.unit)?;
        }
        Ok(())
    }
}

/// A number as the file gave it: integers exactly (`u64::MAX` is shown as written, not
/// rounded to a float), floats as parsed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::Int(i) => write!(f, "{i}"),
            Num::Float(x) => write!(f, "{x}"),
        }
    }
}

/// The numbers a configuration value holds: one for a scalar, none for an absent option, one
/// per element for arrays and lists (each element must lie in the range).
pub trait Numbers {
    fn numbers(&self) -> Vec<Num>;
}

macro_rules! integer_numbers {
    ($($t:ty),*) => {$(
        impl Numbers for $t {
            fn numbers(&self) -> Vec<Num> {
                vec![Num::Int(i128::from(*self))]
            }
        }
    )*};
}
integer_numbers!(u8, u16, u32, u64, i64);

impl Numbers for usize {
    fn numbers(&self) -> Vec<Num> {
        // usize is at most 64 bits on every target we build for; saturate rather than assume.
        vec![Num::Int(i128::try_from(*self).unwrap_or(i128::MAX))]
    }
}

impl Numbers for f32 {
    fn numbers(&self) -> Vec<Num> {
        vec![Num::Float(f64::from(*self))]
    }
}

impl Numbers for f64 {
    fn numbers(&self) -> Vec<Num> {
        vec![Num::Float(*self)]
    }
}

impl<T: Numbers> Numbers for Option<T> {
    fn numbers(&self) -> Vec<Num> {
        self.as_ref().map(Numbers::numbers).unwrap_or_default()
    }
}

impl<T: Numbers> Numbers for [T] {
    fn numbers(&self) -> Vec<Num> {
        self.iter().flat_map(Numbers::numbers).collect()
    }
}

impl<T: Numbers, const N: usize> Numbers for [T; N] {
    fn numbers(&self) -> Vec<Num> {
        self.as_slice().numbers()
    }
}

impl<T: Numbers> Numbers for Vec<T> {
    fn numbers(&self) -> Vec<Num> {
        self.as_slice().numbers()
    }
}

/// One key's range, declared once next to the key: what [`check`] enforces and what the
/// documentation's table lists.
pub struct Bound<T> {
    /// Key relative to the struct's table; a list's length is declared under the list's key
    /// with a count unit (`maps`, `labels`).
    pub key: &'static str,
    pub range: Range,
    /// Why these limits: the physics or the product behind them.
    pub why: &'static str,
    /// The value(s) to check.
    pub value: fn(&T) -> Vec<Num>,
}

impl<T> Bound<T> {
    pub const fn new(
        key: &'static str,
        range: Range,
        value: fn(&T) -> Vec<Num>,
        why: &'static str,
    ) -> Bound<T> {
        Bound {
            key,
            range,
            why,
            value,
        }
    }

    /// This bound as a documentation row of `[table]`.
    pub fn row(&self, table: &str) -> Row {
        Row {
            table: table.to_string(),
            key: self.key,
            range: self.range,
            why: self.why,
        }
    }
}

/// Checks `item` against its bounds, in declaration order; the first value outside its range
/// is refused with its key, its value and the allowed range.
pub fn check<T>(item: &T, bounds: &[Bound<T>]) -> Result<(), Refused> {
    for b in bounds {
        let values = (b.value)(item);
        let several = values.len() > 1;
        for (i, v) in values.into_iter().enumerate() {
            if !b.range.contains(v.as_f64()) {
                let element = if several {
                    format!("element {}: ", i + 1)
                } else {
                    String::new()
                };
                return Err(Refused::new(
                    b.key,
                    format!("{element}{v} is outside the allowed range {}", b.range),
                ));
            }
        }
    }
    Ok(())
}

/// The rows of several tables (`[table]`, its bounds), for the documentation.
pub fn rows<T>(table: &str, bounds: &[Bound<T>]) -> Vec<Row> {
    bounds.iter().map(|b| b.row(table)).collect()
}

/// One line of the documentation's range table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub table: String,
    pub key: &'static str,
    pub range: Range,
    pub why: &'static str,
}

/// The documentation's table (Markdown), one row per bound, in the order given.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from("| table | key | allowed | why |\n|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            r.table, r.key, r.range, r.why
        ));
    }
    out
}

/// A value a check refuses: its key (dotted path from the file's top, e.g.
/// `tracker.process_noise.car.jerk_mps3`; an array of tables' element as `head.levels[2]`) and
/// why. The loader adds the file and, through [`Refused::line`], the line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct Refused {
    pub key: String,
    pub message: String,
}

impl Refused {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Refused {
        Refused {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The same refusal seen from the enclosing table: `key` becomes `table.key`.
    pub fn within(self, table: &str) -> Refused {
        Refused {
            key: format!("{table}.{}", self.key),
            message: self.message,
        }
    }

    /// The line (1-based) of the refused key in the file's `text`, where it is written there
    /// (a defaulted key has none).
    pub fn line(&self, text: &str) -> Option<usize> {
        line_of(text, &self.key)
    }
}

/// Line number (1-based) of `leaf = …` inside the table a dotted `key` names; `table[n]` names
/// the n-th (0-based) `[[table]]` of an array of tables.
pub fn line_of(text: &str, key: &str) -> Option<usize> {
    let (table, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    let (table, nth) = match table.strip_suffix(']').and_then(|t| t.rsplit_once('[')) {
        Some((name, n)) => (name, n.parse::<usize>().ok()?),
        None => (table, 0),
    };
    let mut current = String::new();
    let mut seen = 0;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            // A header, possibly with a comment after it.
            let header = t.split('#').next().unwrap_or(t).trim();
            let name = header.trim_start_matches('[').trim_end_matches(']').trim();
            if name == table {
                seen += 1;
            }
            current = name.to_string();
        } else if current == table && seen == nth + usize::from(!table.is_empty()) {
            if let Some((k, _)) = t.split_once('=') {
                if k.trim() == leaf {
                    return Some(i + 1);
                }
            }
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    struct S {
        period_ms: u64,
        speed: f64,
        sizes: Vec<usize>,
        limit: Option<f32>,
    }

    const BOUNDS: &[Bound<S>] = &[
        Bound::new(
            "period_ms",
            Range::new(10.0, 1000.0, "ms"),
            |s| s.period_ms.numbers(),
            "test",
        ),
        Bound::new(
            "speed",
            Range::new(0.0, 300.0, "km/h"),
            |s| s.speed.numbers(),
            "test",
        ),
        Bound::new(
            "sizes",
            Range::new(1.0, 3.0, "maps"),
            |s| s.sizes.len().numbers(),
            "test",
        ),
        Bound::new(
            "sizes",
            Range::new(1.0, 64.0, "cells"),
            |s| s.sizes.numbers(),
            "test",
        ),
        Bound::new(
            "limit",
            Range::new(0.0, 1.0, ""),
            |s| s.limit.numbers(),
            "test",
        ),
    ];

    fn ok() -> S {
        S {
            period_ms: 100,
            speed: 20.0,
            sizes: vec![19, 10],
            limit: None,
        }
    }

    fn refused(s: &S) -> String {
        check(s, BOUNDS).unwrap_err().to_string()
    }

    #[test]
    fn values_in_range_pass_and_others_name_key_value_and_range() {
        check(&ok(), BOUNDS).unwrap();
        let err = refused(&S {
            period_ms: u64::MAX,
            ..ok()
        });
        assert_eq!(
            err,
            "key `period_ms`: 18446744073709551615 is outside the allowed range 10–1000 ms"
        );
        for (speed, shown) in [
            (-5.0, "-5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            let err = refused(&S { speed, ..ok() });
            assert_eq!(
                err,
                format!("key `speed`: {shown} is outside the allowed range 0–300 km/h")
            );
        }
        let err = refused(&S {
            sizes: vec![19, 0],
            ..ok()
        });
        assert_eq!(
            err,
            "key `sizes`: element 2: 0 is outside the allowed range 1–64 cells"
        );
        let err = refused(&S {
            sizes: vec![1; 4],
            ..ok()
        });
        assert!(
            err.contains("4 is outside the allowed range 1–3 maps"),
            "{err}"
        );
        let err = refused(&S {
            limit: Some(1.5),
            ..ok()
        });
        assert!(
            err.ends_with("1.5 is outside the allowed range 0–1"),
            "{err}"
        );
    }

    #[test]
    fn lines_are_found_in_tables_arrays_of_tables_and_at_the_top() {
        let text = "top = 1\n[a]\nx = 1\n[a.b] # sub\nx = 2\n[[l]]\ns = 8\n[[l]]\ns = 16\n";
        assert_eq!(line_of(text, "top"), Some(1));
        assert_eq!(line_of(text, "a.x"), Some(3));
        assert_eq!(line_of(text, "a.b.x"), Some(5));
        assert_eq!(line_of(text, "l[0].s"), Some(7));
        assert_eq!(line_of(text, "l[1].s"), Some(9));
        assert_eq!(line_of(text, "l.s"), Some(7));
        assert_eq!(line_of(text, "a.y"), None);
        let r = Refused::new("x", "bad").within("a.b");
        assert_eq!((r.key.as_str(), r.line(text)), ("a.b.x", Some(5)));
    }

    #[test]
    fn the_table_lists_every_bound() {
        let md = markdown(&rows("[s]", BOUNDS));
        assert!(
            md.contains("| [s] | `period_ms` | 10–1000 ms | test |"),
            "{md}"
        );
        assert!(md.contains("| [s] | `limit` | 0–1 | test |"), "{md}");
    }
}
