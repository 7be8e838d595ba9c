//! Expressions compiled for the interpreter, and their evaluation at a time.
//!
//! Evaluation also says until when its result holds. A value that moves with the clock
//! (`now`, `30d ago`, `days_since(ts)`) is carried with its rate, so a comparison such as
//! `signup_ts < 30d ago` knows the instant its answer flips; calendar functions know their
//! next boundary; windows know when their oldest event leaves. The earliest of those
//! instants is the profile's next scheduled evaluation. The few shapes with no such
//! instant (a product of two moving values, say) mark the evaluation *restless*: it is
//! repeated whenever the clock advances.
//!
//! An instant counts only if the answer can change at it. `a and b` with `a` false
//! stays false until `a` changes, whatever `b` does (`or` with a true operand likewise),
//! and `count(...) >= 5 within 90d` that is false stays false as the window's events
//! leave it. So the schedule holds fewer evaluations that would find nothing changed.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike};

use super::value::Datum;
use crate::check::ir::{
    BinaryOp, Function, IrExpr, Quantifier, StringOp, TypedExpr, Value, sample_bucket,
};

/// Nanoseconds in a day.
pub const DAY: i64 = 86_400_000_000_000;
/// Mean Earth radius used by `geo_distance_km`, in km (as the planner uses it).
const EARTH_RADIUS_KM: f64 = 6371.0;
/// How much earlier than computed a flip of float values is scheduled, in ns: the
/// computed instant is off by the values' rounding, and early is safe (the evaluation
/// finds nothing changed and schedules again, at worst one nanosecond on) while late is
/// not. Eight units in the last place of the larger value, in time at `rate`.
fn float_margin(x: f64, y: f64, rate: f64) -> f64 {
    let ulp = x.abs().max(y.abs()).max(f64::MIN_POSITIVE) * f64::EPSILON;
    (8.0 * ulp / rate.abs()).ceil() + 1.0
}

/// An expression with names resolved to positions.
#[derive(Debug, Clone)]
pub enum Node {
    Const(Datum),
    /// `now` plus this many nanoseconds.
    Now(i64),
    Profile(usize),
    Event(usize),
    /// A measure, by its position in the engine's measure list.
    Measure(usize),
    List(Vec<Node>),
    Not(Box<Node>),
    IsTrue(Box<Node>),
    Negate(Box<Node>),
    Binary(BinaryOp, Box<Node>, Box<Node>),
    Between(Box<Node>, Box<Node>, Box<Node>),
    InList(Box<Node>, Vec<Node>, bool),
    InArray(Box<Node>, Box<Node>, bool),
    Has(Box<Node>, Quantifier, Vec<Node>),
    IsNull(Box<Node>, bool),
    StringTest(StringOp, Box<Node>, Box<Node>, Option<regex::Regex>),
    Function(Function, Vec<Node>),
    Stage(Vec<(Arc<str>, Node)>),
    /// `sample(...)`: whether the key's bucket for the seed is below the threshold.
    Sample {
        seed: Arc<str>,
        threshold: u64,
        key: Box<Node>,
    },
}

/// Where the names of an expression point.
pub struct Names<'a> {
    pub profile: &'a HashMap<String, usize>,
    /// The event table's columns, inside a measure's filter.
    pub event: Option<&'a HashMap<String, usize>>,
    /// Program measure index -> engine measure position.
    pub measures: &'a HashMap<usize, usize>,
    /// Program sequence index -> engine measure position (a sequence's value is a bool).
    pub sequences: &'a HashMap<usize, usize>,
}

impl Node {
    /// Compiles a checked expression. Names the checker resolved are always found; a name
    /// that is not (an inconsistent catalog) becomes null rather than a panic.
    pub fn compile(expr: &TypedExpr, names: &Names<'_>) -> Node {
        let boxed = |e: &TypedExpr| Box::new(Node::compile(e, names));
        let all = |es: &[TypedExpr]| es.iter().map(|e| Node::compile(e, names)).collect();
        match &expr.kind {
            IrExpr::Literal(value) => Node::Const(Datum::from(value)),
            IrExpr::RelativeTime(offset) => Node::Now(*offset),
            IrExpr::ProfileColumn(name) => names
                .profile
                .get(name)
                .map_or(Node::Const(Datum::Null), |&i| Node::Profile(i)),
            IrExpr::EventColumn(name) => names
                .event
                .and_then(|columns| columns.get(name))
                .map_or(Node::Const(Datum::Null), |&i| Node::Event(i)),
            IrExpr::Measure(id) => names
                .measures
                .get(id)
                .map_or(Node::Const(Datum::Null), |&i| Node::Measure(i)),
            IrExpr::List(items) => Node::List(all(items)),
            IrExpr::Not(inner) => Node::Not(boxed(inner)),
            IrExpr::IsTrue(inner) => Node::IsTrue(boxed(inner)),
            IrExpr::Negate(inner) => Node::Negate(boxed(inner)),
            IrExpr::Binary { op, lhs, rhs } => Node::Binary(*op, boxed(lhs), boxed(rhs)),
            IrExpr::Between { expr, low, high } => {
                Node::Between(boxed(expr), boxed(low), boxed(high))
            }
            IrExpr::InList {
                expr,
                items,
                negated,
            } => Node::InList(boxed(expr), all(items), *negated),
            IrExpr::InArray {
                expr,
                array,
                negated,
            } => Node::InArray(boxed(expr), boxed(array), *negated),
            IrExpr::Has {
                array,
                quantifier,
                items,
            } => Node::Has(boxed(array), *quantifier, all(items)),
            IrExpr::IsNull { expr, negated } => Node::IsNull(boxed(expr), *negated),
            IrExpr::StringTest { op, expr, pattern } => {
                let regex = match (&pattern.kind, op) {
                    (IrExpr::Literal(Value::String(p)), StringOp::Matches) => {
                        regex::Regex::new(p).ok()
                    }
                    _ => None,
                };
                Node::StringTest(*op, boxed(expr), boxed(pattern), regex)
            }
            IrExpr::Function { function, args } => Node::Function(*function, all(args)),
            IrExpr::Stage { arms } => Node::Stage(
                arms.iter()
                    .map(|(label, condition)| {
                        (Arc::from(label.as_str()), Node::compile(condition, names))
                    })
                    .collect(),
            ),
            IrExpr::Sample {
                seed,
                threshold,
                key,
            } => Node::Sample {
                seed: Arc::from(seed.as_str()),
                threshold: *threshold,
                key: boxed(key),
            },
            // A ranking needs every profile at once: `Membership::new` refuses segments
            // with one, so this is never evaluated.
            IrExpr::Sequence(id) => names
                .sequences
                .get(id)
                .map_or(Node::Const(Datum::Null), |&i| Node::Measure(i)),
            IrExpr::Rank(_) => Node::Const(Datum::Null),
        }
    }

    /// Whether the value can change with the clock or the profile, not only with the
    /// event it is evaluated on (such a filter is re-evaluated at every evaluation).
    pub fn depends_on_more_than_the_event(&self) -> bool {
        let mut found = false;
        self.visit(&mut |node| {
            found |= matches!(
                node,
                Node::Now(_)
                    | Node::Profile(_)
                    | Node::Measure(_)
                    | Node::Function(Function::DaysSince, _)
            );
        });
        found
    }

    /// The measures (and sequences) the expression reads.
    pub fn measures(&self) -> Vec<usize> {
        let mut read = Vec::new();
        self.visit(&mut |node| {
            if let Node::Measure(m) = node {
                read.push(*m);
            }
        });
        read
    }

    fn visit(&self, f: &mut impl FnMut(&Node)) {
        f(self);
        let mut each = |nodes: &[&Node]| nodes.iter().for_each(|n| n.visit(f));
        match self {
            Node::Const(_)
            | Node::Now(_)
            | Node::Profile(_)
            | Node::Event(_)
            | Node::Measure(_) => {}
            Node::List(items) | Node::Function(_, items) => each(&items.iter().collect::<Vec<_>>()),
            Node::Not(a)
            | Node::IsTrue(a)
            | Node::Negate(a)
            | Node::IsNull(a, _)
            | Node::Sample { key: a, .. } => each(&[a]),
            Node::Binary(_, a, b) | Node::InArray(a, b, _) | Node::StringTest(_, a, b, _) => {
                each(&[a, b])
            }
            Node::Between(a, b, c) => each(&[a, b, c]),
            Node::InList(a, items, _) | Node::Has(a, _, items) => {
                let mut all = vec![&**a];
                all.extend(items);
                each(&all)
            }
            Node::Stage(arms) => each(&arms.iter().map(|(_, n)| n).collect::<Vec<_>>()),
        }
    }
}

/// A value and how fast it moves with the clock: `rate` units per nanosecond (1 for
/// `now`, 1/DAY for `days_since`, 0 for everything stored).
#[derive(Debug, Clone)]
struct Moving {
    value: Datum,
    rate: f64,
}

impl Moving {
    fn fixed(value: Datum) -> Moving {
        Moving { value, rate: 0.0 }
    }

    fn moves(&self) -> bool {
        self.rate != 0.0 && !self.value.is_null()
    }
}

/// When a measure's value may change with no new event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasureClock {
    /// The earliest time after now at which the value may change (`i64::MAX`: never).
    pub horizon: i64,
    /// The value moves with the clock with no computed next instant.
    pub restless: bool,
    /// The value can only fall as time passes: a count over a window whose start moves
    /// with now and whose end does not.
    pub falling: bool,
}

impl MeasureClock {
    pub const STILL: MeasureClock = MeasureClock {
        horizon: i64::MAX,
        restless: false,
        falling: false,
    };
}

/// One evaluation at one time.
pub struct Evaluation<'a> {
    pub now: i64,
    pub profile: &'a [Datum],
    pub event: Option<&'a [Datum]>,
    pub measures: &'a [Datum],
    /// For each measure in `measures`, when its value may change next and whether it is
    /// restless (see [`MeasureClock`]).
    pub clocks: &'a [MeasureClock],
    /// The earliest time after `now` at which a result may differ (`i64::MAX`: never).
    pub horizon: i64,
    /// A result moves with the clock in a way with no computed next instant.
    pub restless: bool,
}

impl<'a> Evaluation<'a> {
    pub fn new(now: i64, profile: &'a [Datum], measures: &'a [Datum]) -> Evaluation<'a> {
        Evaluation {
            now,
            profile,
            event: None,
            measures,
            clocks: &[],
            horizon: i64::MAX,
            restless: false,
        }
    }

    /// The evaluation of a condition over measures whose values change at `clocks`.
    pub fn with_clocks(mut self, clocks: &'a [MeasureClock]) -> Evaluation<'a> {
        self.clocks = clocks;
        self
    }

    /// The value of `node` now.
    pub fn value(&mut self, node: &Node) -> Datum {
        self.eval(node).value
    }

    /// Whether `node` is true now (false for false and unknown).
    pub fn holds(&mut self, node: &Node) -> bool {
        self.value(node) == Datum::Bool(true)
    }

    fn at(&mut self, time: i64) {
        if time > self.now && time < self.horizon {
            self.horizon = time;
        }
    }

    /// `node`'s value, made fixed: a moving value is read at `now`, and the evaluation
    /// becomes restless (no instant is known at which what is computed from it changes).
    fn fixed(&mut self, node: &Node) -> Datum {
        let moving = self.eval(node);
        if moving.moves() {
            self.restless = true;
        }
        moving.value
    }

    fn eval(&mut self, node: &Node) -> Moving {
        let value = match node {
            Node::Const(value) => value.clone(),
            Node::Now(offset) => {
                return Moving {
                    value: Datum::Ts(self.now.saturating_add(*offset)),
                    rate: 1.0,
                };
            }
            Node::Profile(i) => self.profile.get(*i).cloned().unwrap_or(Datum::Null),
            Node::Event(i) => self
                .event
                .and_then(|row| row.get(*i))
                .cloned()
                .unwrap_or(Datum::Null),
            Node::Measure(i) => {
                if let Some(clock) = self.clocks.get(*i) {
                    self.horizon = self.horizon.min(clock.horizon);
                    self.restless |= clock.restless;
                }
                self.measures.get(*i).cloned().unwrap_or(Datum::Null)
            }
            Node::List(items) => Datum::List(items.iter().map(|i| self.fixed(i)).collect()),
            Node::Not(inner) => Datum::from_truth(self.value(inner).truth().map(|b| !b)),
            Node::IsTrue(inner) => Datum::Bool(self.holds(inner)),
            Node::Negate(inner) => {
                let Moving { value, rate } = self.eval(inner);
                let value = match value {
                    Datum::Int(i) => Datum::Int(i.wrapping_neg()),
                    Datum::Float(x) => Datum::Float(-x),
                    Datum::Dur(d) => Datum::Dur(d.wrapping_neg()),
                    _ => Datum::Null,
                };
                return Moving { value, rate: -rate };
            }
            Node::Binary(op, lhs, rhs) => return self.binary(*op, lhs, rhs),
            Node::Between(expr, low, high) => {
                let x = self.eval(expr);
                let low = self.eval(low);
                let high = self.eval(high);
                let above = self.compare(BinaryOp::GtEq, &x, &low);
                let below = self.compare(BinaryOp::LtEq, &x, &high);
                and(above.truth(), below.truth())
            }
            Node::InList(expr, items, negated) => {
                let x = self.fixed(expr);
                let items: Vec<Datum> = items.iter().map(|i| self.fixed(i)).collect();
                Datum::from_truth(any_equal(&x, &items).map(|found| found != *negated))
            }
            Node::InArray(expr, array, negated) => {
                let x = self.fixed(expr);
                let found = match self.fixed(array) {
                    Datum::List(items) if !x.is_null() => {
                        Some(items.iter().any(|i| x.sql_eq(i) == Some(true)))
                    }
                    _ => None,
                };
                Datum::from_truth(found.map(|f| f != *negated))
            }
            Node::Has(array, quantifier, items) => match self.fixed(array) {
                Datum::List(list) => {
                    let items: Vec<Datum> = items.iter().map(|i| self.fixed(i)).collect();
                    let contained =
                        |item: &Datum| list.iter().any(|l| l.sql_eq(item) == Some(true));
                    Datum::Bool(match quantifier {
                        Quantifier::Any => items.iter().any(contained),
                        Quantifier::All => items.iter().all(contained),
                    })
                }
                _ => Datum::Null,
            },
            Node::IsNull(expr, negated) => Datum::Bool(self.eval(expr).value.is_null() != *negated),
            Node::StringTest(op, expr, pattern, regex) => {
                match (self.fixed(expr), self.fixed(pattern)) {
                    (Datum::Str(s), Datum::Str(p)) => match op {
                        StringOp::Contains => Datum::Bool(s.contains(&*p)),
                        StringOp::StartsWith => Datum::Bool(s.starts_with(&*p)),
                        StringOp::EndsWith => Datum::Bool(s.ends_with(&*p)),
                        StringOp::Matches => match regex {
                            Some(regex) => Datum::Bool(regex.is_match(&s)),
                            None => regex::Regex::new(&p)
                                .map_or(Datum::Null, |r| Datum::Bool(r.is_match(&s))),
                        },
                    },
                    _ => Datum::Null,
                }
            }
            Node::Function(function, args) => return self.function(*function, args),
            Node::Sample {
                seed,
                threshold,
                key,
            } => match self.fixed(key) {
                Datum::Int(key) => Datum::Bool(sample_bucket(seed, &key.to_string()) < *threshold),
                Datum::Str(key) => Datum::Bool(sample_bucket(seed, &key) < *threshold),
                _ => Datum::Null,
            },
            Node::Stage(arms) => {
                let mut label = Datum::Null;
                for (name, condition) in arms {
                    if self.holds(condition) {
                        label = Datum::Str(Arc::clone(name));
                        break;
                    }
                }
                label
            }
        };
        Moving::fixed(value)
    }

    fn binary(&mut self, op: BinaryOp, lhs: &Node, rhs: &Node) -> Moving {
        match op {
            BinaryOp::And | BinaryOp::Or => {
                let outer = (self.horizon, self.restless);
                let (a, a_until) = self.operand(lhs);
                let (b, b_until) = self.operand(rhs);
                let value = if op == BinaryOp::And {
                    and(a, b)
                } else {
                    match (a, b) {
                        (Some(true), _) | (_, Some(true)) => Datum::Bool(true),
                        (Some(false), Some(false)) => Datum::Bool(false),
                        _ => Datum::Null,
                    }
                };
                // An operand with the deciding value (false for `and`, true for `or`)
                // fixes the result until it changes; with two such, until both have.
                let deciding = Some(op == BinaryOp::Or);
                let (horizon, restless) = match (a == deciding, b == deciding) {
                    (true, true) => match (a_until, b_until) {
                        ((_, true), (_, true)) => (i64::MAX, true),
                        ((_, true), (b, false)) => (b, false),
                        ((a, false), (_, true)) => (a, false),
                        ((a, false), (b, false)) => (a.max(b), false),
                    },
                    (true, false) => a_until,
                    (false, true) => b_until,
                    (false, false) => (a_until.0.min(b_until.0), a_until.1 || b_until.1),
                };
                self.horizon = outer.0.min(horizon);
                self.restless = outer.1 || restless;
                Moving::fixed(value)
            }
            BinaryOp::Eq
            | BinaryOp::NotEq
            | BinaryOp::Lt
            | BinaryOp::LtEq
            | BinaryOp::Gt
            | BinaryOp::GtEq => {
                if let Some(value) = self.settled_comparison(op, lhs, rhs) {
                    return Moving::fixed(value);
                }
                let a = self.eval(lhs);
                let b = self.eval(rhs);
                Moving::fixed(self.compare(op, &a, &b))
            }
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
                let a = self.eval(lhs);
                let b = self.eval(rhs);
                self.arithmetic(op, a, b)
            }
        }
    }

    /// A boolean operand's value and until when it holds: its horizon and restlessness
    /// alone, not the enclosing evaluation's.
    fn operand(&mut self, node: &Node) -> (Option<bool>, (i64, bool)) {
        self.horizon = i64::MAX;
        self.restless = false;
        let value = self.value(node).truth();
        (value, (self.horizon, self.restless))
    }

    /// The value of comparing a falling measure with a constant, if that value cannot
    /// change with time: `count >= 5` that is false, `count < 5` that is true.
    fn settled_comparison(&self, op: BinaryOp, lhs: &Node, rhs: &Node) -> Option<Datum> {
        let (measure, op, constant) = match (lhs, rhs) {
            (Node::Measure(m), Node::Const(c)) => (*m, op, c),
            (Node::Const(c), Node::Measure(m)) => (*m, op.mirrored()?, c),
            _ => return None,
        };
        if !self.clocks.get(measure).is_some_and(|c| c.falling) {
            return None;
        }
        let order = self.measures.get(measure)?.compare(constant)?;
        let settled = match op {
            BinaryOp::Gt if order.is_le() => false,
            BinaryOp::GtEq if order.is_lt() => false,
            BinaryOp::Lt if order.is_lt() => true,
            BinaryOp::LtEq if order.is_le() => true,
            _ => return None,
        };
        Some(Datum::Bool(settled))
    }

    /// A comparison now, scheduling the instant its answer may flip.
    fn compare(&mut self, op: BinaryOp, a: &Moving, b: &Moving) -> Datum {
        let Some(order) = a.value.compare(&b.value) else {
            return Datum::Null;
        };
        if a.rate != b.rate {
            self.schedule_crossing(&a.value, a.rate, &b.value, b.rate);
        }
        Datum::Bool(match op {
            BinaryOp::Eq => order.is_eq(),
            BinaryOp::NotEq => order.is_ne(),
            BinaryOp::Lt => order.is_lt(),
            BinaryOp::LtEq => order.is_le(),
            BinaryOp::Gt => order.is_gt(),
            _ => order.is_ge(),
        })
    }

    /// Schedules the instant two values moving at different rates meet (and the instant
    /// after, where strict and non-strict comparisons part).
    fn schedule_crossing(&mut self, a: &Datum, rate_a: f64, b: &Datum, rate_b: f64) {
        let exact = |d: &Datum| match d {
            Datum::Ts(t) | Datum::Dur(t) => Some(*t as i128),
            _ => None,
        };
        if let (Some(x), Some(y)) = (exact(a), exact(b)) {
            let rate = (rate_a - rate_b) as i128;
            if rate != 0 {
                // x + rate·Δ = y  =>  Δ = (y - x) / rate, rounded down.
                let delta = (y - x).div_euclid(rate);
                let meet = self.now as i128 + delta;
                if meet >= self.now as i128 {
                    self.at(i64::try_from(meet).unwrap_or(i64::MAX).max(self.now + 1));
                }
                return;
            }
        }
        let (Some(x), Some(y)) = (float_of(a), float_of(b)) else {
            self.restless = true;
            return;
        };
        let rate = rate_a - rate_b;
        let delta = (y - x) / rate;
        let margin = float_margin(x, y, rate);
        if delta.is_finite() && delta >= -margin {
            self.after(delta - margin);
        }
    }

    /// Schedules `delta` nanoseconds from now (at least one), added in integers: clock
    /// times are too large for floats to hold every nanosecond.
    fn after(&mut self, delta: f64) {
        // `as` saturates at i64::MAX for huge and infinite deltas.
        let delta = delta.max(1.0).floor() as i64;
        self.at(self.now.saturating_add(delta));
    }

    fn arithmetic(&mut self, op: BinaryOp, a: Moving, b: Moving) -> Moving {
        if a.value.is_null() || b.value.is_null() {
            return Moving::fixed(Datum::Null);
        }
        let rate = match op {
            _ if a.rate == 0.0 && b.rate == 0.0 => 0.0,
            BinaryOp::Add => a.rate + b.rate,
            BinaryOp::Sub => a.rate - b.rate,
            BinaryOp::Mul if a.rate == 0.0 => b.rate * float_of(&a.value).unwrap_or(0.0),
            BinaryOp::Mul if b.rate == 0.0 => a.rate * float_of(&b.value).unwrap_or(0.0),
            BinaryOp::Div if b.rate == 0.0 => match float_of(&b.value) {
                Some(divisor) if divisor != 0.0 => a.rate / divisor,
                _ => 0.0,
            },
            _ => {
                self.restless = true;
                0.0
            }
        };
        Moving {
            value: arithmetic(op, a.value, b.value),
            rate,
        }
    }

    fn function(&mut self, function: Function, args: &[Node]) -> Moving {
        if function == Function::Coalesce {
            for arg in args {
                let moving = self.eval(arg);
                if !moving.value.is_null() {
                    return moving;
                }
            }
            return Moving::fixed(Datum::Null);
        }
        let moving: Vec<Moving> = args.iter().map(|a| self.eval(a)).collect();
        if moving.iter().any(|m| m.value.is_null()) {
            return Moving::fixed(Datum::Null);
        }
        let first = &moving[0];
        match (function, &first.value) {
            (Function::DaysSince, Datum::Ts(t)) => Moving {
                // The difference in integer nanoseconds first, as the batch plan does:
                // times near 2^63 ns lose nanoseconds as floats.
                value: Datum::Float(self.now.wrapping_sub(*t) as f64 / DAY as f64),
                rate: (1.0 - first.rate) / DAY as f64,
            },
            (Function::Abs, value) => {
                if first.moves() {
                    // The sign flips where the value crosses zero.
                    self.schedule_crossing(value, first.rate, &zero_like(value), 0.0);
                }
                let negative = matches!(value.compare(&zero_like(value)), Some(o) if o.is_lt());
                Moving {
                    value: match value {
                        Datum::Int(i) => Datum::Int(i.wrapping_abs()),
                        Datum::Float(x) => Datum::Float(x.abs()),
                        _ => Datum::Null,
                    },
                    rate: if negative { -first.rate } else { first.rate },
                }
            }
            (Function::Round | Function::Floor | Function::Ceil, Datum::Float(x)) => {
                if first.moves() {
                    self.schedule_step(*x, first.rate, function == Function::Round);
                }
                Moving::fixed(Datum::Float(match function {
                    Function::Round => x.round(),
                    Function::Floor => x.floor(),
                    _ => x.ceil(),
                }))
            }
            (Function::Round | Function::Floor | Function::Ceil, Datum::Int(i)) => {
                Moving::fixed(Datum::Int(*i))
            }
            (Function::Year | Function::Month | Function::DayOfWeek, Datum::Ts(t)) => {
                let unit = match function {
                    Function::Year => "year",
                    Function::Month => "month",
                    _ => "day",
                };
                if first.moves() {
                    self.schedule_boundary(unit, *t, first.rate);
                }
                let time = DateTime::from_timestamp_nanos(*t);
                Moving::fixed(Datum::Int(match function {
                    Function::Year => time.year() as i64,
                    Function::Month => time.month() as i64,
                    _ => time.weekday().num_days_from_sunday() as i64,
                }))
            }
            (Function::DateTrunc, Datum::Str(unit)) => match &moving[1].value {
                Datum::Ts(t) => {
                    if moving[1].moves() {
                        self.schedule_boundary(unit, *t, moving[1].rate);
                    }
                    Moving::fixed(truncate(unit, *t).map_or(Datum::Null, Datum::Ts))
                }
                _ => Moving::fixed(Datum::Null),
            },
            _ => {
                if moving.iter().any(Moving::moves) {
                    self.restless = true;
                }
                let values: Vec<Datum> = moving.into_iter().map(|m| m.value).collect();
                Moving::fixed(scalar_function(function, &values))
            }
        }
    }

    /// Schedules the instant a moving float reaches the next integer (`round`: the next
    /// half) in its direction. Sitting on one, it schedules the next nanosecond: `ceil`
    /// changes just after an integer, `floor` on it.
    fn schedule_step(&mut self, x: f64, rate: f64, halves: bool) {
        let offset = if halves { 0.5 } else { 0.0 };
        let next = if rate > 0.0 {
            (x - offset).ceil() + offset
        } else {
            (x - offset).floor() + offset
        };
        let delta = (next - x) / rate - float_margin(x, next, rate);
        if !delta.is_nan() {
            self.after(delta);
        }
    }

    /// Schedules the instant a moving time enters the next calendar `unit`.
    fn schedule_boundary(&mut self, unit: &str, t: i64, rate: f64) {
        let Some(start) = truncate(unit, t) else {
            self.restless = true;
            return;
        };
        if rate == 1.0 {
            match next_boundary(unit, start) {
                Some(next) => self.at(self.now.saturating_add(next - t)),
                None => self.restless = true,
            }
        } else if rate == -1.0 {
            self.at(self.now.saturating_add(t - start + 1));
        } else {
            self.restless = true;
        }
    }
}

fn float_of(d: &Datum) -> Option<f64> {
    match d {
        Datum::Int(i) => Some(*i as f64),
        Datum::Float(x) => Some(*x),
        Datum::Ts(t) | Datum::Dur(t) => Some(*t as f64),
        _ => None,
    }
}

fn zero_like(d: &Datum) -> Datum {
    match d {
        Datum::Float(_) => Datum::Float(0.0),
        Datum::Dur(_) => Datum::Dur(0),
        _ => Datum::Int(0),
    }
}

fn and(a: Option<bool>, b: Option<bool>) -> Datum {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Datum::Bool(false),
        (Some(true), Some(true)) => Datum::Bool(true),
        _ => Datum::Null,
    }
}

/// SQL `IN`: true if an item equals, else unknown if anything was null, else false.
fn any_equal(x: &Datum, items: &[Datum]) -> Option<bool> {
    let mut unknown = false;
    for item in items {
        match x.sql_eq(item) {
            Some(true) => return Some(true),
            Some(false) => {}
            None => unknown = true,
        }
    }
    if unknown { None } else { Some(false) }
}

/// Arithmetic with the language's rules: `/` divides as floats, dividing by zero (and
/// the remainder by zero) is null, integers wrap instead of failing.
fn arithmetic(op: BinaryOp, a: Datum, b: Datum) -> Datum {
    match (a, b) {
        (a, b) if op == BinaryOp::Div => match (a.as_float(), b.as_float()) {
            (Some(_), Some(0.0)) => Datum::Null,
            (Some(x), Some(y)) => Datum::Float(x / y),
            _ => Datum::Null,
        },
        (Datum::Int(x), Datum::Int(y)) => match op {
            BinaryOp::Add => Datum::Int(x.wrapping_add(y)),
            BinaryOp::Sub => Datum::Int(x.wrapping_sub(y)),
            BinaryOp::Mul => Datum::Int(x.wrapping_mul(y)),
            _ if y == 0 => Datum::Null,
            _ => Datum::Int(x.wrapping_rem(y)),
        },
        (a @ (Datum::Int(_) | Datum::Float(_)), b @ (Datum::Int(_) | Datum::Float(_))) => {
            let (Some(x), Some(y)) = (a.as_float(), b.as_float()) else {
                return Datum::Null;
            };
            match op {
                BinaryOp::Add => Datum::Float(x + y),
                BinaryOp::Sub => Datum::Float(x - y),
                BinaryOp::Mul => Datum::Float(x * y),
                _ if y == 0.0 => Datum::Null,
                _ => Datum::Float(x % y),
            }
        }
        (Datum::Ts(t), Datum::Dur(d)) => match op {
            BinaryOp::Add => Datum::Ts(t.wrapping_add(d)),
            BinaryOp::Sub => Datum::Ts(t.wrapping_sub(d)),
            _ => Datum::Null,
        },
        (Datum::Dur(d), Datum::Ts(t)) if op == BinaryOp::Add => Datum::Ts(t.wrapping_add(d)),
        (Datum::Ts(x), Datum::Ts(y)) if op == BinaryOp::Sub => Datum::Dur(x.wrapping_sub(y)),
        (Datum::Dur(x), Datum::Dur(y)) => match op {
            BinaryOp::Add => Datum::Dur(x.wrapping_add(y)),
            BinaryOp::Sub => Datum::Dur(x.wrapping_sub(y)),
            _ => Datum::Null,
        },
        _ => Datum::Null,
    }
}

/// The functions whose arguments do not move with the clock.
fn scalar_function(function: Function, args: &[Datum]) -> Datum {
    let string = |i: usize| match args.get(i) {
        Some(Datum::Str(s)) => Some(&**s),
        _ => None,
    };
    match function {
        Function::Lower => string(0).map_or(Datum::Null, |s| Datum::Str(s.to_lowercase().into())),
        Function::Upper => string(0).map_or(Datum::Null, |s| Datum::Str(s.to_uppercase().into())),
        Function::Trim => string(0).map_or(Datum::Null, |s| {
            Datum::Str(
                s.trim_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c'])
                    .into(),
            )
        }),
        Function::Length => string(0).map_or(Datum::Null, |s| Datum::Int(s.chars().count() as i64)),
        Function::Exp => args
            .first()
            .and_then(Datum::as_float)
            .map_or(Datum::Null, |x| Datum::Float(x.exp())),
        Function::GeoDistanceKm => {
            let coordinates: Option<Vec<f64>> = args
                .iter()
                .map(|a| a.as_float().map(f64::to_radians))
                .collect();
            match coordinates.as_deref() {
                Some(&[lat1, lon1, lat2, lon2]) => {
                    let half = |a: f64, b: f64| ((a - b) / 2.0).sin().powi(2);
                    let h = half(lat2, lat1) + lat1.cos() * lat2.cos() * half(lon2, lon1);
                    Datum::Float(2.0 * EARTH_RADIUS_KM * h.sqrt().asin())
                }
                _ => Datum::Null,
            }
        }
        // The others are handled where their arguments may move.
        _ => Datum::Null,
    }
}

/// `date_trunc`: weeks start on Monday, as in PostgreSQL. `None` for an unknown unit.
pub fn truncate(unit: &str, t: i64) -> Option<i64> {
    let time = DateTime::from_timestamp_nanos(t);
    let date = time.date_naive();
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_nanos_opt();
    let first_of = |month: u32| NaiveDate::from_ymd_opt(date.year(), month, 1);
    match unit {
        "year" => midnight(first_of(1)?),
        "quarter" => midnight(first_of((date.month() - 1) / 3 * 3 + 1)?),
        "month" => midnight(first_of(date.month())?),
        "week" => midnight(date - Duration::days(date.weekday().num_days_from_monday() as i64)),
        "day" => midnight(date),
        "hour" => Some(midnight(date)? + time.hour() as i64 * 3_600_000_000_000),
        "minute" => Some(
            midnight(date)? + (time.hour() as i64 * 60 + time.minute() as i64) * 60_000_000_000,
        ),
        _ => None,
    }
}

/// The start of the `unit` after the one starting at `start`.
fn next_boundary(unit: &str, start: i64) -> Option<i64> {
    let date = DateTime::from_timestamp_nanos(start).date_naive();
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_nanos_opt();
    let months_later = |months: u32| {
        let index = date.year() * 12 + date.month0() as i32 + months as i32;
        NaiveDate::from_ymd_opt(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1)
    };
    match unit {
        "year" => midnight(NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)?),
        "quarter" => midnight(months_later(3)?),
        "month" => midnight(months_later(1)?),
        "week" => Some(start + 7 * DAY),
        "day" => Some(start + DAY),
        "hour" => Some(start + 3_600_000_000_000),
        "minute" => Some(start + 60_000_000_000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_000 * DAY;

    fn evaluate(node: &Node, now: i64, profile: &[Datum]) -> (Datum, i64, bool) {
        let mut evaluation = Evaluation::new(now, profile, &[]);
        let value = evaluation.value(node);
        (value, evaluation.horizon, evaluation.restless)
    }

    /// Follows the scheduled evaluations from `now` until `node` is true; the time it
    /// first is. Every scheduled time must come before the answer changes.
    fn flips_at(node: &Node, mut now: i64, profile: &[Datum]) -> i64 {
        for _ in 0..10_000 {
            let (value, horizon, restless) = evaluate(node, now, profile);
            assert!(!restless);
            if value == Datum::Bool(true) {
                return now;
            }
            assert!(horizon < i64::MAX, "never scheduled from {now}");
            now = horizon;
        }
        panic!("no flip after 10,000 evaluations, at {now}")
    }

    fn cmp(op: BinaryOp, a: Node, b: Node) -> Node {
        Node::Binary(op, Box::new(a), Box::new(b))
    }

    #[test]
    fn a_time_comparison_with_now_flips_at_the_exact_instant() {
        // signup < 30d ago: true from signup + 30d + 1ns on.
        let signup = T0;
        let node = cmp(BinaryOp::Lt, Node::Profile(0), Node::Now(-30 * DAY));
        let profile = [Datum::Ts(signup)];
        let flip = signup + 30 * DAY + 1;
        assert_eq!(flips_at(&node, T0 + DAY, &profile), flip);
        assert_eq!(evaluate(&node, flip - 1, &profile).0, Datum::Bool(false));
        let (value, after, _) = evaluate(&node, flip, &profile);
        assert_eq!(value, Datum::Bool(true));
        assert_eq!(after, i64::MAX, "a past crossing never comes back");
        // `<=` parts from `<` one nanosecond earlier.
        let le = cmp(BinaryOp::LtEq, Node::Profile(0), Node::Now(-30 * DAY));
        assert_eq!(
            evaluate(&le, signup + 30 * DAY, &profile).0,
            Datum::Bool(true)
        );
    }

    #[test]
    fn days_since_schedules_a_little_early_and_never_late() {
        let node = cmp(
            BinaryOp::Gt,
            Node::Function(Function::DaysSince, vec![Node::Profile(0)]),
            Node::Const(Datum::Int(10)),
        );
        let profile = [Datum::Ts(T0)];
        let (value, horizon, restless) = evaluate(&node, T0, &profile);
        assert_eq!(value, Datum::Bool(false));
        assert!(!restless);
        let flip = T0 + 10 * DAY + 1;
        assert!(
            horizon <= flip && horizon > flip - 10_000,
            "{horizon} vs {flip}"
        );
        assert_eq!(flips_at(&node, T0, &profile), flip);
    }

    #[test]
    fn a_rounded_moving_value_is_rescheduled_until_it_steps() {
        // ceil(days_since(signup) / 365) > 3 becomes true 1095 days after signup.
        let node = cmp(
            BinaryOp::Gt,
            Node::Function(
                Function::Ceil,
                vec![Node::Binary(
                    BinaryOp::Div,
                    Box::new(Node::Function(Function::DaysSince, vec![Node::Profile(0)])),
                    Box::new(Node::Const(Datum::Int(365))),
                )],
            ),
            Node::Const(Datum::Int(3)),
        );
        let signup = 8_868 * DAY + 49_585_700_942_000;
        let profile = [Datum::Ts(signup)];
        let flip = signup + 1095 * DAY + 1;
        let first_true = flips_at(&node, signup + 990 * DAY, &profile);
        // Within the float resolution of days_since / 365 at that size (about 14 ns).
        assert!(
            first_true.abs_diff(flip) < 100,
            "true at {first_true}, not {flip}"
        );
    }

    #[test]
    fn calendar_functions_change_at_the_next_boundary() {
        // month(now) = 3 from a time in March: next change at April 1st.
        let march = NaiveDate::from_ymd_opt(1998, 3, 15)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .map(|d| d.and_utc().timestamp_nanos_opt().unwrap_or_default())
            .unwrap_or_default();
        let april = NaiveDate::from_ymd_opt(1998, 4, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc().timestamp_nanos_opt().unwrap_or_default())
            .unwrap_or_default();
        let node = cmp(
            BinaryOp::Eq,
            Node::Function(Function::Month, vec![Node::Now(0)]),
            Node::Const(Datum::Int(3)),
        );
        let (value, horizon, restless) = evaluate(&node, march, &[]);
        assert_eq!(value, Datum::Bool(true));
        assert!(!restless);
        assert_eq!(horizon, april);
    }

    /// The value and horizon of `node` over two measures with the given values and clocks.
    fn over_measures(node: &Node, values: [Datum; 2], clocks: [MeasureClock; 2]) -> (Datum, i64) {
        let mut evaluation = Evaluation::new(T0, &[], &values).with_clocks(&clocks);
        let value = evaluation.value(node);
        assert!(!evaluation.restless);
        (value, evaluation.horizon)
    }

    fn changing_at(horizon: i64) -> MeasureClock {
        MeasureClock {
            horizon,
            ..MeasureClock::STILL
        }
    }

    #[test]
    fn a_deciding_operand_alone_says_when_and_and_or_may_change() {
        let (early, late) = (changing_at(T0 + 1), changing_at(T0 + 2));
        let both = |op| cmp(op, Node::Measure(0), Node::Measure(1));
        let (t, f, null) = (Datum::Bool(true), Datum::Bool(false), Datum::Null);
        let cases = [
            // `and`: false until the false operand changes; both false, until both have.
            (
                BinaryOp::And,
                [f.clone(), t.clone()],
                [late, early],
                f.clone(),
                T0 + 2,
            ),
            (
                BinaryOp::And,
                [f.clone(), f.clone()],
                [early, late],
                f.clone(),
                T0 + 2,
            ),
            (
                BinaryOp::And,
                [t.clone(), t.clone()],
                [late, early],
                t.clone(),
                T0 + 1,
            ),
            (
                BinaryOp::And,
                [null.clone(), t.clone()],
                [late, early],
                null.clone(),
                T0 + 1,
            ),
            // `or`: true until the true operand changes.
            (
                BinaryOp::Or,
                [t.clone(), f.clone()],
                [late, early],
                t.clone(),
                T0 + 2,
            ),
            (
                BinaryOp::Or,
                [f.clone(), f.clone()],
                [late, early],
                f.clone(),
                T0 + 1,
            ),
            (
                BinaryOp::Or,
                [null.clone(), t.clone()],
                [early, late],
                t.clone(),
                T0 + 2,
            ),
        ];
        for (op, values, clocks, value, horizon) in cases {
            let got = over_measures(&both(op), values.clone(), clocks);
            assert_eq!(got, (value, horizon), "{op:?} over {values:?}");
        }
    }

    #[test]
    fn a_falling_count_below_its_threshold_stays_below() {
        let falling = MeasureClock {
            falling: true,
            ..changing_at(T0 + 5)
        };
        let still = MeasureClock::STILL;
        let five = || Node::Const(Datum::Int(5));
        let cases = [
            // count >= 5 with 3: false for good; with 7: true until the count falls.
            (
                cmp(BinaryOp::GtEq, Node::Measure(0), five()),
                3,
                false,
                i64::MAX,
            ),
            (
                cmp(BinaryOp::GtEq, Node::Measure(0), five()),
                7,
                true,
                T0 + 5,
            ),
            (
                cmp(BinaryOp::Gt, Node::Measure(0), five()),
                5,
                false,
                i64::MAX,
            ),
            // 5 > count, i.e. count < 5: true for good with 3.
            (
                cmp(BinaryOp::Gt, five(), Node::Measure(0)),
                3,
                true,
                i64::MAX,
            ),
            (
                cmp(BinaryOp::Gt, five(), Node::Measure(0)),
                5,
                false,
                T0 + 5,
            ),
            (
                cmp(BinaryOp::LtEq, Node::Measure(0), five()),
                5,
                true,
                i64::MAX,
            ),
            (
                cmp(BinaryOp::Lt, Node::Measure(0), five()),
                6,
                false,
                T0 + 5,
            ),
            // Equality can become true as the count falls.
            (
                cmp(BinaryOp::Eq, Node::Measure(0), five()),
                6,
                false,
                T0 + 5,
            ),
        ];
        for (node, count, holds, horizon) in cases {
            let got = over_measures(&node, [Datum::Int(count), Datum::Null], [falling, still]);
            assert_eq!(got, (Datum::Bool(holds), horizon), "{node:?} with {count}");
        }
        // A count that may also rise (not falling) is watched either way.
        let rising = changing_at(T0 + 5);
        let node = cmp(BinaryOp::GtEq, Node::Measure(0), five());
        let got = over_measures(&node, [Datum::Int(3), Datum::Null], [rising, still]);
        assert_eq!(got, (Datum::Bool(false), T0 + 5));
    }

    #[test]
    fn products_of_moving_values_are_restless() {
        let node = cmp(
            BinaryOp::Gt,
            Node::Binary(
                BinaryOp::Mul,
                Box::new(Node::Function(Function::DaysSince, vec![Node::Profile(0)])),
                Box::new(Node::Function(Function::DaysSince, vec![Node::Profile(0)])),
            ),
            Node::Const(Datum::Int(10)),
        );
        let (_, _, restless) = evaluate(&node, T0, &[Datum::Ts(0)]);
        assert!(restless);
    }

    #[test]
    fn arithmetic_follows_the_language() {
        assert_eq!(
            arithmetic(BinaryOp::Div, Datum::Int(1), Datum::Int(0)),
            Datum::Null
        );
        assert_eq!(
            arithmetic(BinaryOp::Rem, Datum::Int(1), Datum::Int(0)),
            Datum::Null
        );
        assert_eq!(
            arithmetic(BinaryOp::Div, Datum::Int(1), Datum::Int(4)),
            Datum::Float(0.25)
        );
        assert_eq!(
            arithmetic(BinaryOp::Add, Datum::Int(i64::MAX), Datum::Int(1)),
            Datum::Int(i64::MIN)
        );
        assert_eq!(
            arithmetic(BinaryOp::Sub, Datum::Ts(10), Datum::Ts(4)),
            Datum::Dur(6)
        );
    }
}
