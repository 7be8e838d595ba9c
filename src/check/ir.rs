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
    /// `sample(10%, seed = "spring")`: true when the [`sample_bucket`] of the profile key
    /// (`key`, a profile column) is below `threshold`, out of 2^32.
    Sample {
        seed: String,
        threshold: u64,
        key: Box<TypedExpr>,
    },
    /// A ranking among all profiles, by index into [`Program::rankings`].
    Rank(usize),
    /// Whether the profile's events hold a sequence, by index into [`Program::sequences`].
    /// True or false, never null.
    Sequence(usize),
}

/// A profile's holdout bucket for `seed`: the first 32 bits (big-endian) of the MD5 digest
/// of `seed`, `:` and the key as text. Every engine computes the same bucket, so a control
/// group is the same wherever it is evaluated.
pub fn sample_bucket(seed: &str, key: &str) -> u64 {
    use md5::{Digest, Md5};
    let digest = Md5::new()
        .chain_update(seed.as_bytes())
        .chain_update(b":")
        .chain_update(key.as_bytes())
        .finalize();
    u64::from(u32::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3],
    ]))
}

/// The bucket bound of `sample` for a share in millionths: the buckets below it are
/// exactly that share of the 2^32 buckets, rounded up.
pub fn sample_threshold(share: i64) -> u64 {
    let share = share.clamp(0, crate::syntax::ast::PERCENT_SCALE) as u64;
    (share << 32).div_ceil(crate::syntax::ast::PERCENT_SCALE as u64)
}

/// What a ranking computes over all profiles, ordered by its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RankKind {
    /// `top N by E`: the N profiles with the largest values.
    Top(i64),
    /// `top P% by E`: the first ⌈P × ranked profiles⌉, P in millionths.
    TopShare(i64),
    /// `percentile_rank(E)`: the share of the other ranked profiles with a smaller value.
    PercentileRank,
    /// `lookalike(SEED, N, by = [...])`: the N non-members of the seed closest to the seed's
    /// centroid in standardized feature space.
    Lookalike(i64),
}

/// A ranking: its kind and the per-profile value it orders by. Profiles whose value is
/// null are not ranked: never in a top, and their percentile rank is null. Ties in a top
/// go to the smaller profile key. A lookalike orders by the features in `by`, a list,
/// and finds its centroid from the profiles for which `seed` is true.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub kind: RankKind,
    pub by: TypedExpr,
    pub seed: Option<TypedExpr>,
}

/// `added_to_cart then purchased within 1h`: a profile matches when its events, in the
/// window, hold one event per positive step, each strictly later than the previous step's
/// and at most its gap after it; and, for a negative last step, when after such a chain
/// no event of that step follows within its gap (or ever, without a gap), the gap having
/// ended by the evaluation time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    pub steps: Vec<SequenceStep>,
    /// The events every step considers.
    pub window: TimeWindow,
}

/// One step of a [`Sequence`].
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceStep {
    pub event: String,
    pub filter: Option<TypedExpr>,
    /// The longest time after the previous step's event, in nanoseconds; `None` for any
    /// later time. Always `None` on the first step.
    pub gap: Option<i64>,
    /// `then not ...`: no such event follows. Only the last step.
    pub negated: bool,
    pub correlations: Vec<Correlation>,
}

/// `viewed(product = p) then purchased(product = p)`: the step's `column` is bound to the
/// name `name` (`binds`, the first step naming it), or must equal the value an earlier
/// step bound to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Correlation {
    pub column: String,
    pub name: String,
    pub binds: bool,
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
    Exp,
    Coalesce,
    DaysSince,
    DateTrunc,
    Year,
    Month,
    DayOfWeek,
    GeoDistanceKm,
}

impl Function {
    pub const ALL: [Function; 16] = [
        Function::Lower,
        Function::Upper,
        Function::Length,
        Function::Trim,
        Function::Abs,
        Function::Round,
        Function::Floor,
        Function::Ceil,
        Function::Exp,
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
            Function::Exp => "exp",
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
            Function::Exp => "exp(number) -> float (e to the power of the number)",
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
    /// The most frequent value; ties go to the smallest.
    Mode,
    /// The distinct values, in ascending order.
    DistinctList,
    /// `active_days(ES)`, `active_weeks(ES)`, `active_months(ES)`: on how many distinct
    /// calendar days (weeks, months) of UTC there were events.
    Active(CalendarUnit),
    /// `active_periods(ES, P)`: how many of the periods of length P (nanoseconds) counted
    /// back from now hold an event. Period 0 is `[now - P, now]`, period k (k ≥ 1)
    /// `[now - (k+1)P, now - kP)`.
    ActivePeriods(i64),
}

/// The period an event at `time` falls in for `active_periods` at `now` (see
/// [`Aggregate::ActivePeriods`]): `(now - 1 - time) / period`, rounded toward zero.
pub fn period_index(now: i64, time: i64, period: i64) -> i64 {
    (i128::from(now) - 1 - i128::from(time))
        .checked_div(i128::from(period.max(1)))
        .map_or(0, |k| {
            k.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
        })
}

/// A calendar unit of UTC, as `date_trunc` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CalendarUnit {
    Day,
    /// Weeks start on Monday (ISO 8601).
    Week,
    Month,
}

impl CalendarUnit {
    /// The unit as `date_trunc` takes it.
    pub fn name(self) -> &'static str {
        match self {
            CalendarUnit::Day => "day",
            CalendarUnit::Week => "week",
            CalendarUnit::Month => "month",
        }
    }
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
            Aggregate::Mode => "mode",
            Aggregate::DistinctList => "distinct_list",
            Aggregate::Active(CalendarUnit::Day) => "active_days",
            Aggregate::Active(CalendarUnit::Week) => "active_weeks",
            Aggregate::Active(CalendarUnit::Month) => "active_months",
            Aggregate::ActivePeriods(_) => "active_periods",
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
            "mode" => Aggregate::Mode,
            "distinct_list" => Aggregate::DistinctList,
            "active_days" => Aggregate::Active(CalendarUnit::Day),
            "active_weeks" => Aggregate::Active(CalendarUnit::Week),
            "active_months" => Aggregate::Active(CalendarUnit::Month),
            // The period is its second argument, which the checker reads.
            "active_periods" => Aggregate::ActivePeriods(0),
            _ => return None,
        })
    }

    pub const NAMES: [&'static str; 13] = [
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "first",
        "last",
        "mode",
        "distinct_list",
        "active_days",
        "active_weeks",
        "active_months",
        "active_periods",
    ];

    /// Whether the aggregate has a pass of its own over (key, value) pairs.
    pub fn groups_values(self) -> bool {
        matches!(
            self,
            Aggregate::CountDistinct
                | Aggregate::Mode
                | Aggregate::DistinctList
                | Aggregate::Active(_)
                | Aggregate::ActivePeriods(_)
        )
    }
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

    /// Calls `f` with each operand it reaches through `and` and `or` alone (itself, if it
    /// is neither). A condition is TRUE for the same rows whichever such operand is
    /// replaced by one TRUE for the same rows: `and` (`or`) is TRUE exactly where both
    /// (either) of its operands are, whether the others are FALSE or NULL.
    pub fn for_each_and_or_operand(&mut self, f: &mut dyn FnMut(&mut TypedExpr)) {
        if let IrExpr::Binary {
            op: BinaryOp::And | BinaryOp::Or,
            lhs,
            rhs,
        } = &mut self.kind
        {
            lhs.for_each_and_or_operand(f);
            rhs.for_each_and_or_operand(f);
            return;
        }
        f(self)
    }
}

impl Measure {
    /// A key equal for measures that compute the same thing.
    fn identity(&self) -> String {
        strip_spans(&format!("{self:?}"))
    }
}

/// The index of `item` in `items`, added unless one with the same structure (spans
/// aside) is there.
fn intern<T: fmt::Debug>(items: &mut Vec<T>, item: T) -> usize {
    let identity = format!("{item:?}");
    if let Some(i) = (items.iter()).position(|x| same_ignoring_spans(&format!("{x:?}"), &identity))
    {
        return i;
    }
    items.push(item);
    items.len() - 1
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
    /// Every ranking the segments use, de-duplicated by structure.
    pub rankings: Vec<Ranking>,
    /// Every sequence the segments use, de-duplicated by structure.
    pub sequences: Vec<Sequence>,
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

    /// Adds a ranking unless an identical one exists; returns its index.
    pub fn intern_ranking(&mut self, ranking: Ranking) -> usize {
        intern(&mut self.rankings, ranking)
    }

    /// Adds a sequence unless an identical one exists; returns its index.
    pub fn intern_sequence(&mut self, sequence: Sequence) -> usize {
        intern(&mut self.sequences, sequence)
    }
}
