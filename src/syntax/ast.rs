//! The abstract syntax tree: what the user wrote, with a byte span on every node.

use crate::diagnostic::Span;

/// A parsed `.seg` file.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub declarations: Vec<Declaration>,
}

/// A name as written, with its span.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Declaration {
    Segment(SegmentDecl),
    Metric(MetricDecl),
    Stage(StageDecl),
}

impl Declaration {
    pub fn name(&self) -> &Ident {
        match self {
            Declaration::Segment(d) => &d.name,
            Declaration::Metric(d) => &d.name,
            Declaration::Stage(d) => &d.name,
        }
    }

    pub fn span(&self) -> Span {
        match self {
            Declaration::Segment(d) => d.span,
            Declaration::Metric(d) => d.span,
            Declaration::Stage(d) => d.span,
        }
    }

    /// "segment", "metric" or "stage".
    pub fn kind(&self) -> &'static str {
        match self {
            Declaration::Segment(_) => "segment",
            Declaration::Metric(_) => "metric",
            Declaration::Stage(_) => "stage",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SegmentDecl {
    pub name: Ident,
    pub description: Option<String>,
    pub expr: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricDecl {
    pub name: Ident,
    pub expr: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageDecl {
    pub name: Ident,
    pub arms: Vec<StageArm>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageArm {
    pub label: Ident,
    pub expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// Where the parser already reported a problem (an invalid literal, a missing part).
    Error,
    Literal(Literal),
    /// `now`: the evaluation time.
    Now,
    /// `30d ago`: `now - 30d`.
    Ago(Duration),
    List(Vec<Expr>),
    /// A bare name: a metric, stage, profile column or event table.
    Name(Ident),
    /// `in NAME`: membership of another segment.
    InSegment(Ident),
    /// `name(args)`: a function, an aggregate or an event set with a filter.
    Call {
        function: Ident,
        args: Vec<Argument>,
    },
    /// `base.column`: an event column.
    Member {
        base: Box<Expr>,
        column: Ident,
    },
    Negate(Box<Expr>),
    Not(Box<Expr>),
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
    },
    /// `E in RHS` / `E not in RHS`, where RHS is a list literal or a list-typed expression.
    In {
        expr: Box<Expr>,
        set: Box<Expr>,
        negated: bool,
    },
    Has {
        expr: Box<Expr>,
        quantifier: Quantifier,
        set: Box<Expr>,
    },
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    StringTest {
        op: StringOp,
        expr: Box<Expr>,
        pattern: Box<Expr>,
    },
    Window {
        expr: Box<Expr>,
        window: Window,
    },
    /// `first purchased` (`last` when `last`): the time of the first (last) event of the
    /// set, tested against the enclosing window.
    Occurrence {
        last: bool,
        set: Box<Expr>,
    },
    /// `added_to_cart then purchased within 1h`: event sets in time order.
    Sequence {
        first: Box<Expr>,
        steps: Vec<SequenceStep>,
    },
    /// `top 10 by ltv`, `top 5% by sum(purchased.amount)`.
    Top {
        amount: TopAmount,
        by: Box<Expr>,
    },
}

/// A step after the first of a sequence: `then [not] EVENT_SET [within GAP]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceStep {
    /// `then not ...`: no such event follows (a drop-off).
    pub negated: bool,
    /// The event set: an event table's name, or a call with a filter.
    pub event: Expr,
    /// `within GAP`: the longest time after the previous step's event.
    pub gap: Option<Box<Expr>>,
    /// From `then` to the end of the step.
    pub span: Span,
}

/// How many profiles `top` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopAmount {
    /// `top 1000 by ...`
    Count(i64),
    /// `top 5% by ...`, in millionths (parts per million) of the ranked profiles.
    Share(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Argument {
    /// `count(distinct purchased.product)`
    pub distinct: Option<Span>,
    pub expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Window {
    /// `within 30d`
    Within(Box<Expr>),
    /// `within 1997-01-01 .. 1997-04-01`
    Range(Box<Expr>, Box<Expr>),
    /// `since 1997-06-01`
    Since(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }

    /// The operator with its operands swapped: `a < b` is `b > a`, `a = b` is `b = a`;
    /// `None` for `-`, `/` and `%`, which have no such operator.
    pub fn mirrored(self) -> Option<BinaryOp> {
        match self {
            BinaryOp::Lt => Some(BinaryOp::Gt),
            BinaryOp::LtEq => Some(BinaryOp::GtEq),
            BinaryOp::Gt => Some(BinaryOp::Lt),
            BinaryOp::GtEq => Some(BinaryOp::LtEq),
            BinaryOp::Sub | BinaryOp::Div | BinaryOp::Rem => None,
            BinaryOp::Or
            | BinaryOp::And
            | BinaryOp::Eq
            | BinaryOp::NotEq
            | BinaryOp::Add
            | BinaryOp::Mul => Some(self),
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::NotEq
                | BinaryOp::Lt
                | BinaryOp::LtEq
                | BinaryOp::Gt
                | BinaryOp::GtEq
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantifier {
    Any,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StringOp {
    Contains,
    StartsWith,
    EndsWith,
    Matches,
}

impl StringOp {
    pub fn keyword(self) -> &'static str {
        match self {
            StringOp::Contains => "contains",
            StringOp::StartsWith => "starts_with",
            StringOp::EndsWith => "ends_with",
            StringOp::Matches => "matches",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Int(i64),
    Float(f64),
    String(String),
    Bool(bool),
    Null,
    Duration(Duration),
    /// Nanoseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// `12.5%`, in millionths: `125000`. Exact, so `10%` of 1,000 profiles is 100.
    Percent(i64),
}

/// Millionths in 100%.
pub const PERCENT_SCALE: i64 = 1_000_000;

/// A duration as written: `30d` is `{ amount: 30, unit: Day }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Duration {
    pub amount: i64,
    pub unit: DurationUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DurationUnit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl DurationUnit {
    pub fn suffix(self) -> &'static str {
        match self {
            DurationUnit::Second => "s",
            DurationUnit::Minute => "min",
            DurationUnit::Hour => "h",
            DurationUnit::Day => "d",
            DurationUnit::Week => "w",
            DurationUnit::Month => "mo",
            DurationUnit::Year => "y",
        }
    }

    /// Seconds in one unit; a month is 30 days and a year 365 days.
    pub fn seconds(self) -> i64 {
        match self {
            DurationUnit::Second => 1,
            DurationUnit::Minute => 60,
            DurationUnit::Hour => 3_600,
            DurationUnit::Day => 86_400,
            DurationUnit::Week => 7 * 86_400,
            DurationUnit::Month => 30 * 86_400,
            DurationUnit::Year => 365 * 86_400,
        }
    }
}

impl Duration {
    /// Length in nanoseconds, or `None` if it does not fit in 64 bits.
    pub fn nanoseconds(self) -> Option<i64> {
        self.amount
            .checked_mul(self.unit.seconds())?
            .checked_mul(1_000_000_000)
    }
}

impl std::fmt::Display for Duration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}
