//! Values as the interpreter holds them, with SQL's comparison and null rules.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::check::ir::Value;

/// One value of a profile or event column, or of an expression. Strings and lists are
/// shared, so reading a column into an evaluation never copies them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Datum {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Arc<str>),
    /// Nanoseconds since the epoch, UTC.
    Ts(i64),
    /// Nanoseconds.
    Dur(i64),
    List(Arc<[Datum]>),
}

impl Datum {
    pub fn is_null(&self) -> bool {
        matches!(self, Datum::Null)
    }

    /// The truth of a boolean: `None` for null (and for non-booleans, which the checker
    /// rules out).
    pub fn truth(&self) -> Option<bool> {
        match self {
            Datum::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn from_truth(truth: Option<bool>) -> Datum {
        truth.map_or(Datum::Null, Datum::Bool)
    }

    pub fn as_float(&self) -> Option<f64> {
        match self {
            Datum::Int(i) => Some(*i as f64),
            Datum::Float(x) => Some(*x),
            _ => None,
        }
    }

    /// The order of two non-null values of comparable types; `None` if either is null
    /// or they cannot be compared. Code point order for strings; `-0.0` equals `0.0`.
    pub fn compare(&self, other: &Datum) -> Option<Ordering> {
        match (self, other) {
            (Datum::Int(a), Datum::Int(b)) => Some(a.cmp(b)),
            (Datum::Int(_) | Datum::Float(_), Datum::Int(_) | Datum::Float(_)) => {
                self.as_float()?.partial_cmp(&other.as_float()?)
            }
            (Datum::Str(a), Datum::Str(b)) => Some(a.cmp(b)),
            (Datum::Ts(a), Datum::Ts(b)) | (Datum::Dur(a), Datum::Dur(b)) => Some(a.cmp(b)),
            (Datum::Bool(a), Datum::Bool(b)) => Some(a.cmp(b)),
            (Datum::List(a), Datum::List(b)) => {
                for (x, y) in a.iter().zip(b.iter()) {
                    match x.compare(y)? {
                        Ordering::Equal => {}
                        order => return Some(order),
                    }
                }
                Some(a.len().cmp(&b.len()))
            }
            _ => None,
        }
    }

    /// SQL equality: unknown when either side is null.
    pub fn sql_eq(&self, other: &Datum) -> Option<bool> {
        self.compare(other).map(|o| o == Ordering::Equal)
    }

    /// A hashable identity for distinct counting over one column (one type): equal
    /// values, `0.0` and `-0.0` too, have equal keys.
    pub fn distinct_key(&self) -> DistinctKey {
        match self {
            Datum::Int(i) => DistinctKey::Int(*i),
            Datum::Float(x) => DistinctKey::Number((x + 0.0).to_bits()),
            Datum::Bool(b) => DistinctKey::Int(*b as i64),
            Datum::Ts(t) | Datum::Dur(t) => DistinctKey::Int(*t),
            Datum::Str(s) => DistinctKey::Str(s.to_string()),
            Datum::Null | Datum::List(_) => DistinctKey::Str(format!("{self:?}")),
        }
    }
}

impl From<&Value> for Datum {
    fn from(value: &Value) -> Datum {
        match value {
            Value::Null => Datum::Null,
            Value::Bool(b) => Datum::Bool(*b),
            Value::Int(i) => Datum::Int(*i),
            Value::Float(x) => Datum::Float(*x),
            Value::String(s) => Datum::Str(Arc::from(s.as_str())),
            Value::Timestamp(t) => Datum::Ts(*t),
            Value::Duration(d) => Datum::Dur(*d),
        }
    }
}

/// What `count(distinct ...)` counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DistinctKey {
    Number(u64),
    Int(i64),
    Str(String),
}

/// A profile's key: the value of the profile table's key column.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Key {
    Int(i64),
    Str(String),
}

impl Key {
    /// The key of a key column's value; `None` for null and for types keys cannot have.
    pub fn from_datum(datum: &Datum) -> Option<Key> {
        match datum {
            Datum::Int(i) => Some(Key::Int(*i)),
            Datum::Str(s) => Some(Key::Str(s.to_string())),
            _ => None,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(i) => write!(f, "{i}"),
            Key::Str(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_across_int_and_float() {
        assert_eq!(
            Datum::Int(2).compare(&Datum::Float(2.5)),
            Some(Ordering::Less)
        );
        assert_eq!(Datum::Float(-0.0).sql_eq(&Datum::Float(0.0)), Some(true));
        assert_eq!(Datum::Null.sql_eq(&Datum::Int(1)), None);
        assert_eq!(Datum::Str("a".into()).compare(&Datum::Int(1)), None);
    }

    #[test]
    fn distinct_keys_follow_equality() {
        assert_eq!(
            Datum::Float(-0.0).distinct_key(),
            Datum::Float(0.0).distinct_key()
        );
        assert_ne!(
            Datum::Str("1".into()).distinct_key(),
            Datum::Int(1).distinct_key()
        );
    }
}
