//! The typed intermediate representation: names resolved, every expression typed,
//! metrics, stages and referenced segments inlined, and every aggregate over events
//! turned into a [`Measure`] in one shared, de-duplicated table.

use std::fmt;

use crate::diagnostic::Span;
pub use crate::syntax::ast::{BinaryOp, Quantifier, StringOp};

/// The types of the language.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    Bool,
    Int,
    Float,
    String,
    Timestamp,
    Duration,
    List(Box<Type>),
    /// The type of `null`: compatible with everything.
    Null,
    /// An expression that already has an error; suppresses follow-on errors.
    Error,
}

impl Type {
    pub fn is_numeric(&self) -> bool {
        matches!(self, Type::Int | Type::Float)
    }

    /// Null and error types fit anywhere.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Type::Null | Type::Error)
    }

    /// Whether values of the two types can be compared with `=` or `<`.
    pub fn comparable_with(&self, other: &Type) -> bool {
        match (self, other) {
            (a, b) if a.is_unknown() || b.is_unknown() => true,
            (a, b) if a.is_numeric() && b.is_numeric() => true,
            (Type::List(a), Type::List(b)) => a.comparable_with(b),
            (a, b) => a == b,
        }
    }

    /// The common type of two compatible types (for `coalesce`, lists, stage labels).
    pub fn unify(&self, other: &Type) -> Option<Type> {
        match (self, other) {
            (Type::Error, _) | (_, Type::Error) => Some(Type::Error),
            (Type::Null, t) | (t, Type::Null) => Some(t.clone()),
            (Type::Int, Type::Float) | (Type::Float, Type::Int) => Some(Type::Float),
            (a, b) if a == b => Some(a.clone()),
            _ => None,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => write!(f, "bool"),
            Type::Int => write!(f, "int"),
            Type::Float => write!(f, "float"),
            Type::String => write!(f, "string"),
            Type::Timestamp => write!(f, "timestamp"),
            Type::Duration => write!(f, "duration"),
            Type::List(item) => write!(f, "list<{item}>"),
            Type::Null => write!(f, "null"),
            Type::Error => write!(f, "<error>"),
        }
    }
}

/// A constant value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    /// Nanoseconds since the epoch, UTC.
    Timestamp(i64),
    /// Nanoseconds.
    Duration(i64),
}

/// A point in time known at compile time, or relative to the evaluation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimePoint {
    /// Nanoseconds since the epoch, UTC.
    Absolute(i64),
    /// `now` plus this many nanoseconds (negative: in the past).
    FromNow(i64),
}

impl TimePoint {
    /// The point in nanoseconds since the epoch, given the evaluation time.
    pub fn resolve(self, as_of: i64) -> i64 {
        match self {
            TimePoint::Absolute(t) => t,
            TimePoint::FromNow(offset) => as_of.saturating_add(offset),
        }
    }
}

/// Which events an event set covers, besides "not after now" which always holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TimeWindow {
    /// Inclusive lower bound.
    pub start: Option<TimePoint>,
    /// Exclusive upper bound (absolute ranges only).
    pub end: Option<TimePoint>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TypedExpr {
    pub kind: IrExpr,
    pub ty: Type,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IrExpr {
    Literal(Value),
    /// A time relative to the evaluation time: `now`, `30d ago`.
    RelativeTime(i64),
    ProfileColumn(String),
    /// A list literal.
    List(Vec<TypedExpr>),
    /// A column of the event table being filtered (only inside [`Measure::filter`]).
    EventColumn(String),
    /// The value of a measure, by index into [`Program::measures`].
    Measure(usize),
    Not(Box<TypedExpr>),
    /// True when the operand is true; false when it is false or null (segment membership).
    IsTrue(Box<TypedExpr>),
    Negate(Box<TypedExpr>),
    Binary {
        op: BinaryOp,
        lhs: Box<TypedExpr>,
        rhs: Box<TypedExpr>,
    },
    Between {
        expr: Box<TypedExpr>,
        low: Box<TypedExpr>,
        high: Box<TypedExpr>,
    },
    InList {
        expr: Box<TypedExpr>,
        items: Vec<TypedExpr>,
        negated: bool,
    },
    /// `E in LISTCOL`
    InArray {
        expr: Box<TypedExpr>,
        array: Box<TypedExpr>,
        negated: bool,
    },
    Has {
        array: Box<TypedExpr>,
        quantifier: Quantifier,
        items: Vec<TypedExpr>,
    },
    IsNull {
        expr: Box<TypedExpr>,
        negated: bool,
    },
    StringTest {
        op: StringOp,
        expr: Box<TypedExpr>,
        pattern: Box<TypedExpr>,
    },
    Function {
        function: Function,
        args: Vec<TypedExpr>,
    },
    /// A stage: the first label whose condition is true, else null.
    Stage {
        arms: Vec<(String, TypedExpr)>,
    },
}

/// The scalar functions of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    Lower,
    Upper,
    Length,
    Trim,
    Abs,
    Round,
    Floor,
    Ceil,
    Coalesce,
    DaysSince,
    DateTrunc,
    Year,
    Month,
    DayOfWeek,
    GeoDistanceKm,
}

impl Function {
    pub const ALL: [Function; 15] = [
        Function::Lower,
        Function::Upper,
        Function::Length,
        Function::Trim,
        Function::Abs,
        Function::Round,
        Function::Floor,
        Function::Ceil,
        Function::Coalesce,
        Function::DaysSince,
        Function::DateTrunc,
        Function::Year,
        Function::Month,
        Function::DayOfWeek,
        Function::GeoDistanceKm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Function::Lower => "lower",
            Function::Upper => "upper",
            Function::Length => "length",
            Function::Trim => "trim",
            Function::Abs => "abs",
            Function::Round => "round",
            Function::Floor => "floor",
            Function::Ceil => "ceil",
            Function::Coalesce => "coalesce",
            Function::DaysSince => "days_since",
            Function::DateTrunc => "date_trunc",
            Function::Year => "year",
            Function::Month => "month",
            Function::DayOfWeek => "day_of_week",
            Function::GeoDistanceKm => "geo_distance_km",
        }
    }

    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }

    /// How it is called, for help messages.
    pub fn signature(self) -> &'static str {
        match self {
            Function::Lower => "lower(string) -> string",
            Function::Upper => "upper(string) -> string",
            Function::Length => "length(string) -> int",
            Function::Trim => "trim(string) -> string",
            Function::Abs => "abs(number) -> number",
            Function::Round => "round(number) -> number",
            Function::Floor => "floor(number) -> number",
            Function::Ceil => "ceil(number) -> number",
            Function::Coalesce => "coalesce(value, value, ...) -> value",
            Function::DaysSince => "days_since(timestamp) -> float",
            Function::DateTrunc => {
                "date_trunc(\"year\" | \"month\" | \"week\" | \"day\" | \"hour\", timestamp) -> timestamp"
            }
            Function::Year => "year(timestamp) -> int",
            Function::Month => "month(timestamp) -> int",
            Function::DayOfWeek => "day_of_week(timestamp) -> int (0 = Sunday)",
            Function::GeoDistanceKm => "geo_distance_km(lat1, lon1, lat2, lon2) -> float",
        }
    }
}

/// The aggregate functions over an event set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    /// An event set in a bool context: at least one event.
    Exists,
    /// `count(ES)`: the number of events.
    Count,
    /// `count(ES.col)`: the number of events where `col` is not null.
    CountValues,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    First,
    Last,
}

impl Aggregate {
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Exists => "exists",
            Aggregate::Count | Aggregate::CountValues => "count",
            Aggregate::CountDistinct => "count(distinct)",
            Aggregate::Sum => "sum",
            Aggregate::Avg => "avg",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::First => "first",
            Aggregate::Last => "last",
        }
    }

    pub fn from_name(name: &str) -> Option<Aggregate> {
        Some(match name {
            "count" => Aggregate::Count,
            "sum" => Aggregate::Sum,
            "avg" => Aggregate::Avg,
            "min" => Aggregate::Min,
            "max" => Aggregate::Max,
            "first" => Aggregate::First,
            "last" => Aggregate::Last,
            _ => return None,
        })
    }

    pub const NAMES: [&'static str; 7] = ["count", "sum", "avg", "min", "max", "first", "last"];
}

/// One aggregate over one event table: the unit of shared evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    pub event: String,
    pub aggregate: Aggregate,
    pub column: Option<String>,
    pub filter: Option<TypedExpr>,
    pub window: TimeWindow,
    pub ty: Type,
}

impl Measure {
    /// Whether two measures compute the same thing (spans are ignored).
    pub fn same_as(&self, other: &Measure) -> bool {
        self.event == other.event
            && self.aggregate == other.aggregate
            && self.column == other.column
            && self.window == other.window
            && match (&self.filter, &other.filter) {
                (None, None) => true,
                (Some(a), Some(b)) => a.same_as(b),
                _ => false,
            }
    }
}

impl TypedExpr {
    /// Structural equality ignoring spans.
    pub fn same_as(&self, other: &TypedExpr) -> bool {
        strip_spans(&format!("{:?}", self)) == strip_spans(&format!("{:?}", other))
    }
}

impl Measure {
    /// A key equal for measures that compute the same thing.
    fn identity(&self) -> String {
        strip_spans(&format!("{self:?}"))
    }
}

/// Whether two `Debug` renderings are equal once spans are removed.
pub(crate) fn same_ignoring_spans(a: &str, b: &str) -> bool {
    strip_spans(a) == strip_spans(b)
}

fn strip_spans(debug: &str) -> String {
    // Spans print as `span: Span { file: 0, start: 1, end: 2 }`.
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while let Some(i) = rest.find("span: Span {") {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        match rest.find('}') {
            Some(end) => rest = &rest[end + 1..],
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// A checked segment: its membership condition with everything it refers to inlined.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedSegment {
    pub name: String,
    pub description: Option<String>,
    pub condition: TypedExpr,
    pub span: Span,
}

/// A checked metric or stage: a named per-profile value.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedValue {
    pub name: String,
    pub kind: ValueKind,
    pub expr: TypedExpr,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Metric,
    Stage,
}

/// Everything a compilation produced, ready for lowering.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Program {
    pub segments: Vec<CheckedSegment>,
    pub values: Vec<CheckedValue>,
    pub measures: Vec<Measure>,
    measure_ids: std::collections::HashMap<String, usize>,
}

impl Program {
    pub fn segment(&self, name: &str) -> Option<&CheckedSegment> {
        self.segments.iter().find(|s| s.name == name)
    }

    /// The names of the segments, in definition order.
    pub fn segment_names(&self) -> Vec<String> {
        self.segments.iter().map(|s| s.name.clone()).collect()
    }

    pub fn value(&self, name: &str) -> Option<&CheckedValue> {
        self.values.iter().find(|v| v.name == name)
    }

    /// Adds a measure unless an identical one exists; returns its index.
    pub fn intern_measure(&mut self, measure: Measure) -> usize {
        let identity = measure.identity();
        if let Some(&i) = self.measure_ids.get(&identity) {
            return i;
        }
        self.measures.push(measure);
        self.measure_ids.insert(identity, self.measures.len() - 1);
        self.measures.len() - 1
    }
}
