//! A deliberately naive evaluator of checked programs, written from the language reference
//! (`docs/language.md`) and sharing no code with the lowering: for each profile, in a plain
//! loop, every expression is evaluated on values, and every measure by scanning all the
//! rows of its event table.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike};
use md5::Digest;
use segql::check::ir::{
    Aggregate, BinaryOp, CalendarUnit, Function, IrExpr, Measure, Program, Quantifier, RankKind,
    Ranking, Sequence, StringOp, TypedExpr, Value,
};

use super::world::{DAY, Table, V, World};

pub struct Reference<'w> {
    pub world: &'w World,
    pub program: &'w Program,
    pub as_of: i64,
    /// Each ranking's value per profile key, once computed: a ranking nested in another
    /// would otherwise be recomputed for every profile the outer one looks at.
    pub rankings: RefCell<HashMap<(usize, i64), V>>,
}

/// A sequence step's table and its matching events for one profile: (time, row).
type StepEvents<'a> = (&'a Table, Vec<(i64, &'a [V])>);

/// Where column references point while evaluating.
#[derive(Clone, Copy)]
struct Row<'r> {
    profile: &'r [V],
    /// The event being filtered, with its table.
    event: Option<(&'r Table, &'r [V])>,
}

fn truth(v: &V) -> Option<bool> {
    match v {
        V::Bool(b) => Some(*b),
        V::Null => None,
        other => panic!("not a bool: {other:?}"),
    }
}

fn from_truth(b: Option<bool>) -> V {
    b.map_or(V::Null, V::Bool)
}

fn as_float(v: &V) -> f64 {
    match v {
        V::Int(i) => *i as f64,
        V::Float(x) => *x,
        other => panic!("not a number: {other:?}"),
    }
}

/// The order of two non-null values of comparable types.
fn compare(a: &V, b: &V) -> Ordering {
    match (a, b) {
        (V::Int(x), V::Int(y)) => x.cmp(y),
        (V::Int(_) | V::Float(_), V::Int(_) | V::Float(_)) => as_float(a)
            .partial_cmp(&as_float(b))
            .expect("no NaN in generated data"),
        // Code point order is the byte order of UTF-8.
        (V::Str(x), V::Str(y)) => x.cmp(y),
        (V::Ts(x), V::Ts(y)) | (V::Dur(x), V::Dur(y)) => x.cmp(y),
        (V::Bool(x), V::Bool(y)) => x.cmp(y),
        _ => panic!("incomparable: {a:?} and {b:?}"),
    }
}

/// SQL equality: unknown when either side is null.
fn equal(a: &V, b: &V) -> Option<bool> {
    if *a == V::Null || *b == V::Null {
        None
    } else {
        Some(compare(a, b) == Ordering::Equal)
    }
}

fn literal(value: &Value) -> V {
    match value {
        Value::Null => V::Null,
        Value::Bool(b) => V::Bool(*b),
        Value::Int(i) => V::Int(*i),
        Value::Float(x) => V::Float(*x),
        Value::String(s) => V::Str(s.clone()),
        Value::Timestamp(t) => V::Ts(*t),
        Value::Duration(d) => V::Dur(*d),
    }
}

impl Reference<'_> {
    /// The keys of the profiles for which `condition` is TRUE.
    pub fn members(&self, condition: &TypedExpr) -> BTreeSet<i64> {
        let mut members = BTreeSet::new();
        for profile in &self.world.profiles.rows {
            let row = Row {
                profile,
                event: None,
            };
            if self.eval(condition, row) == V::Bool(true) {
                let V::Int(key) = profile[0] else {
                    panic!("profile keys are ints")
                };
                members.insert(key);
            }
        }
        members
    }

    fn eval(&self, e: &TypedExpr, row: Row<'_>) -> V {
        match &e.kind {
            IrExpr::Literal(value) => literal(value),
            IrExpr::RelativeTime(offset) => V::Ts(self.as_of + offset),
            IrExpr::ProfileColumn(name) => row.profile[self.world.profiles.index(name)].clone(),
            IrExpr::EventColumn(name) => {
                let (table, event) = row.event.expect("an event column outside a filter");
                event[table.index(name)].clone()
            }
            IrExpr::List(items) => V::List(items.iter().map(|i| self.eval(i, row)).collect()),
            IrExpr::Measure(id) => self.measure(&self.program.measures[*id], row.profile),
            IrExpr::Not(inner) => from_truth(truth(&self.eval(inner, row)).map(|b| !b)),
            IrExpr::IsTrue(inner) => V::Bool(self.eval(inner, row) == V::Bool(true)),
            IrExpr::Negate(inner) => match self.eval(inner, row) {
                V::Null => V::Null,
                V::Int(i) => V::Int(-i),
                V::Float(x) => V::Float(-x),
                V::Dur(d) => V::Dur(-d),
                other => panic!("cannot negate {other:?}"),
            },
            IrExpr::Binary { op, lhs, rhs } => {
                self.binary(*op, self.eval(lhs, row), || self.eval(rhs, row))
            }
            IrExpr::Between { expr, low, high } => {
                let x = self.eval(expr, row);
                let above = self.binary(BinaryOp::GtEq, x.clone(), || self.eval(low, row));
                let below = self.binary(BinaryOp::LtEq, x, || self.eval(high, row));
                and(truth(&above), truth(&below))
            }
            IrExpr::InList {
                expr,
                items,
                negated,
            } => {
                let x = self.eval(expr, row);
                let items: Vec<V> = items.iter().map(|i| self.eval(i, row)).collect();
                let found = any_equal(&x, &items);
                from_truth(found.map(|f| f != *negated))
            }
            IrExpr::InArray {
                expr,
                array,
                negated,
            } => {
                let x = self.eval(expr, row);
                let found = match self.eval(array, row) {
                    V::Null => None,
                    V::List(items) => {
                        if x == V::Null {
                            None
                        } else {
                            Some(items.iter().any(|i| equal(&x, i) == Some(true)))
                        }
                    }
                    other => panic!("not a list: {other:?}"),
                };
                from_truth(found.map(|f| f != *negated))
            }
            IrExpr::Has {
                array,
                quantifier,
                items,
            } => match self.eval(array, row) {
                V::Null => V::Null,
                V::List(list) => {
                    let items: Vec<V> = items.iter().map(|i| self.eval(i, row)).collect();
                    let contained = |item: &V| list.iter().any(|l| equal(l, item) == Some(true));
                    V::Bool(match quantifier {
                        Quantifier::Any => items.iter().any(contained),
                        Quantifier::All => items.iter().all(contained),
                    })
                }
                other => panic!("not a list: {other:?}"),
            },
            IrExpr::IsNull { expr, negated } => {
                V::Bool((self.eval(expr, row) == V::Null) != *negated)
            }
            IrExpr::StringTest { op, expr, pattern } => {
                match (self.eval(expr, row), self.eval(pattern, row)) {
                    (V::Str(s), V::Str(p)) => V::Bool(match op {
                        StringOp::Contains => s.contains(&p),
                        StringOp::StartsWith => s.starts_with(&p),
                        StringOp::EndsWith => s.ends_with(&p),
                        StringOp::Matches => regex::Regex::new(&p)
                            .expect("patterns are checked")
                            .is_match(&s),
                    }),
                    _ => V::Null,
                }
            }
            IrExpr::Function { function, args } => {
                let args: Vec<V> = args.iter().map(|a| self.eval(a, row)).collect();
                self.function(*function, args)
            }
            IrExpr::Stage { arms } => arms
                .iter()
                .find(|(_, condition)| self.eval(condition, row) == V::Bool(true))
                .map_or(V::Null, |(label, _)| V::Str(label.clone())),
            IrExpr::Sample {
                seed, threshold, ..
            } => {
                let V::Int(key) = row.profile[0] else {
                    panic!("profile keys are ints")
                };
                let digest = md5::Md5::digest(format!("{seed}:{key}").as_bytes());
                let bucket = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
                V::Bool(u64::from(bucket) < *threshold)
            }
            IrExpr::Sequence(id) => self.sequence(&self.program.sequences[*id], row.profile),
            IrExpr::Rank(id) => {
                let V::Int(key) = row.profile[0] else {
                    panic!("profile keys are ints")
                };
                if let Some(known) = self.rankings.borrow().get(&(*id, key)) {
                    return known.clone();
                }
                let value = self.rank(&self.program.rankings[*id], row);
                self.rankings.borrow_mut().insert((*id, key), value.clone());
                value
            }
        }
    }

    /// A sequence from its definition in docs/language.md, by trying every chain of events.
    fn sequence(&self, sequence: &Sequence, profile: &[V]) -> V {
        let start = sequence.window.start.map(|s| s.resolve(self.as_of));
        let end = sequence.window.end.map(|e| e.resolve(self.as_of));
        // Each step's matching events: (time, row) with the step's table.
        let steps: Vec<StepEvents> = (sequence.steps.iter())
            .map(|step| {
                let table = (self.world.events.iter())
                    .find(|t| t.name == step.event)
                    .expect("a step over a known event table");
                let events = (table.rows.iter())
                    .filter(|event| event[0] != V::Null && event[0] == profile[0])
                    .filter_map(|event| match event[1] {
                        V::Ts(time) => Some((time, event.as_slice())),
                        _ => None,
                    })
                    .filter(|(time, _)| {
                        *time <= self.as_of
                            && start.is_none_or(|s| s <= *time)
                            && end.is_none_or(|e| *time < e)
                    })
                    .filter(|(_, event)| {
                        step.filter.as_ref().is_none_or(|filter| {
                            let row = Row {
                                profile,
                                event: Some((table, event)),
                            };
                            self.eval(filter, row) == V::Bool(true)
                        })
                    })
                    .collect();
                (table, events)
            })
            .collect();
        V::Bool(self.chain(sequence, &steps, 0, None, &HashMap::new()))
    }

    /// Whether steps `k..` can follow an event at `previous` with the values `bound`.
    fn chain(
        &self,
        sequence: &Sequence,
        steps: &[StepEvents],
        k: usize,
        previous: Option<i64>,
        bound: &HashMap<String, V>,
    ) -> bool {
        let Some(step) = sequence.steps.get(k) else {
            return true;
        };
        let (table, events) = &steps[k];
        let mut following =
            events.iter().filter(|(time, event)| {
                let in_order = previous
                    .is_none_or(|p| *time > p && step.gap.is_none_or(|gap| *time - p <= gap));
                in_order
                    && step.correlations.iter().filter(|c| !c.binds).all(|c| {
                        equal(&event[table.index(&c.column)], &bound[&c.name]) == Some(true)
                    })
            });
        if step.negated {
            let previous = previous.expect("a negated step is never the first");
            let ended = step.gap.is_none_or(|gap| previous + gap <= self.as_of);
            return ended && following.next().is_none();
        }
        following.any(|(time, event)| {
            let mut bound = bound.clone();
            for c in step.correlations.iter().filter(|c| c.binds) {
                bound.insert(c.name.clone(), event[table.index(&c.column)].clone());
            }
            self.chain(sequence, steps, k + 1, Some(*time), &bound)
        })
    }

    /// A ranking, the slow way: every profile's value, then this profile's place among them.
    fn rank(&self, ranking: &Ranking, row: Row<'_>) -> V {
        if let (RankKind::Lookalike(n), Some(seed)) = (ranking.kind, &ranking.seed) {
            return self.lookalike(n, seed, &ranking.by, row);
        }
        let value = |profile: &[V]| {
            self.eval(
                &ranking.by,
                Row {
                    profile,
                    event: None,
                },
            )
        };
        let mine = value(row.profile);
        if mine == V::Null {
            return match ranking.kind {
                RankKind::PercentileRank => V::Null,
                _ => V::Bool(false),
            };
        }
        let others: Vec<(V, &V)> = self
            .world
            .profiles
            .rows
            .iter()
            .map(|p| (value(p), &p[0]))
            .filter(|(v, _)| *v != V::Null)
            .collect();
        let ranked = others.len() as i64;
        // Profiles before this one: larger values, or equal values with smaller keys.
        let ahead = others
            .iter()
            .filter(|(v, key)| match compare(v, &mine) {
                Ordering::Greater => true,
                Ordering::Equal => compare(key, &row.profile[0]) == Ordering::Less,
                Ordering::Less => false,
            })
            .count() as i64;
        match ranking.kind {
            RankKind::Top(n) | RankKind::Lookalike(n) => V::Bool(ahead < n),
            RankKind::TopShare(share) => {
                let keep = (share * ranked + 999_999) / 1_000_000;
                V::Bool(ahead < keep)
            }
            RankKind::PercentileRank => {
                let smaller = others
                    .iter()
                    .filter(|(v, _)| compare(v, &mine) == Ordering::Less)
                    .count();
                if ranked == 1 {
                    V::Float(0.0)
                } else {
                    V::Float(smaller as f64 / (ranked - 1) as f64)
                }
            }
        }
    }

    /// A lookalike from its definition in docs/language.md: z-scores over the profiles
    /// with a value, the seed members' mean z-scores, then the nearest non-members.
    fn lookalike(&self, n: i64, seed: &TypedExpr, features: &TypedExpr, row: Row<'_>) -> V {
        let IrExpr::List(features) = &features.kind else {
            panic!("lookalike features are a list")
        };
        let profiles = &self.world.profiles.rows;
        let at = |profile: &[V], e: &TypedExpr| {
            self.eval(
                e,
                Row {
                    profile,
                    event: None,
                },
            )
        };
        let values: Vec<Vec<Option<f64>>> = profiles
            .iter()
            .map(|p| {
                features
                    .iter()
                    .map(|f| match at(p, f) {
                        V::Null => None,
                        v => Some(as_float(&v)),
                    })
                    .collect()
            })
            .collect();
        let mut z = values.clone();
        for i in 0..features.len() {
            let present: Vec<f64> = values.iter().filter_map(|v| v[i]).collect();
            let mean = present.iter().sum::<f64>() / present.len() as f64;
            let sd = (present.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>()
                / present.len() as f64)
                .sqrt();
            for row in &mut z {
                row[i] = row[i].map(|x| if sd == 0.0 { 0.0 } else { (x - mean) / sd });
            }
        }
        let seeds: Vec<bool> = profiles
            .iter()
            .map(|p| at(p, seed) == V::Bool(true))
            .collect();
        let mut centroid = Vec::new();
        for i in 0..features.len() {
            let member: Vec<f64> = z
                .iter()
                .zip(&seeds)
                .filter(|(_, s)| **s)
                .filter_map(|(row, _)| row[i])
                .collect();
            if member.is_empty() {
                return V::Bool(false);
            }
            centroid.push(member.iter().sum::<f64>() / member.len() as f64);
        }
        let distance = |row: &[Option<f64>]| -> Option<f64> {
            let mut sum = 0.0;
            for (x, c) in row.iter().zip(&centroid) {
                sum += (x.as_ref()? - c) * (x.as_ref()? - c);
            }
            // Compared at nine decimals, as the reference defines.
            Some((sum.sqrt() * 1e9).round() / 1e9)
        };
        let mut ranked: Vec<(f64, &V)> = profiles
            .iter()
            .zip(&z)
            .zip(&seeds)
            .filter(|(_, s)| !**s)
            .filter_map(|((p, row), _)| Some((distance(row)?, &p[0])))
            .collect();
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(compare(a.1, b.1)));
        V::Bool(
            ranked
                .iter()
                .take(n as usize)
                .any(|(_, key)| **key == row.profile[0]),
        )
    }

    fn binary(&self, op: BinaryOp, a: V, b: impl FnOnce() -> V) -> V {
        match op {
            BinaryOp::And => and(truth(&a), truth(&b())),
            BinaryOp::Or => match (truth(&a), truth(&b())) {
                (Some(true), _) | (_, Some(true)) => V::Bool(true),
                (Some(false), Some(false)) => V::Bool(false),
                _ => V::Null,
            },
            BinaryOp::Eq
            | BinaryOp::NotEq
            | BinaryOp::Lt
            | BinaryOp::LtEq
            | BinaryOp::Gt
            | BinaryOp::GtEq => {
                let b = b();
                if a == V::Null || b == V::Null {
                    return V::Null;
                }
                let order = compare(&a, &b);
                V::Bool(match op {
                    BinaryOp::Eq => order == Ordering::Equal,
                    BinaryOp::NotEq => order != Ordering::Equal,
                    BinaryOp::Lt => order == Ordering::Less,
                    BinaryOp::LtEq => order != Ordering::Greater,
                    BinaryOp::Gt => order == Ordering::Greater,
                    _ => order != Ordering::Less,
                })
            }
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
                arithmetic(op, a, b())
            }
        }
    }

    fn function(&self, function: Function, args: Vec<V>) -> V {
        if function == Function::Coalesce {
            return args.into_iter().find(|a| *a != V::Null).unwrap_or(V::Null);
        }
        if args.contains(&V::Null) {
            return V::Null;
        }
        let string = |v: &V| match v {
            V::Str(s) => s.clone(),
            other => panic!("not a string: {other:?}"),
        };
        let time = |v: &V| match v {
            V::Ts(t) => DateTime::from_timestamp_nanos(*t),
            other => panic!("not a timestamp: {other:?}"),
        };
        match function {
            Function::Lower => V::Str(string(&args[0]).to_lowercase()),
            Function::Upper => V::Str(string(&args[0]).to_uppercase()),
            Function::Trim => V::Str(
                string(&args[0])
                    .trim_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c'])
                    .to_string(),
            ),
            Function::Length => V::Int(string(&args[0]).chars().count() as i64),
            Function::Abs | Function::Round | Function::Floor | Function::Ceil => match &args[0] {
                V::Int(i) if function == Function::Abs => V::Int(i.abs()),
                V::Int(i) => V::Int(*i),
                V::Float(x) => V::Float(match function {
                    Function::Abs => x.abs(),
                    // Half away from zero, as the reference says.
                    Function::Round => x.round(),
                    Function::Floor => x.floor(),
                    _ => x.ceil(),
                }),
                other => panic!("not a number: {other:?}"),
            },
            Function::Exp => V::Float(as_float(&args[0]).exp()),
            Function::Coalesce => unreachable!("handled above"),
            Function::DaysSince => {
                let V::Ts(t) = args[0] else {
                    panic!("not a timestamp")
                };
                V::Float((self.as_of - t) as f64 / DAY as f64)
            }
            Function::DateTrunc => V::Ts(truncate(&string(&args[0]), time(&args[1]))),
            Function::Year => V::Int(time(&args[0]).year() as i64),
            Function::Month => V::Int(time(&args[0]).month() as i64),
            Function::DayOfWeek => V::Int(time(&args[0]).weekday().num_days_from_sunday() as i64),
            Function::GeoDistanceKm => {
                let [lat1, lon1, lat2, lon2] =
                    [0, 1, 2, 3].map(|i| as_float(&args[i]).to_radians());
                let half = |a: f64, b: f64| ((a - b) / 2.0).sin().powi(2);
                let h = half(lat2, lat1) + lat1.cos() * lat2.cos() * half(lon2, lon1);
                V::Float(2.0 * 6371.0 * h.sqrt().asin())
            }
        }
    }

    /// A measure for one profile, by scanning every row of its event table.
    fn measure(&self, measure: &Measure, profile: &[V]) -> V {
        let table = self
            .world
            .events
            .iter()
            .find(|t| t.name == measure.event)
            .expect("a measure over a known event table");
        let start = measure.window.start.map(|s| s.resolve(self.as_of));
        let end = measure.window.end.map(|e| e.resolve(self.as_of));
        // (time, value) of every counted event.
        let mut events: Vec<(i64, V)> = Vec::new();
        for event in &table.rows {
            if event[0] == V::Null || event[0] != profile[0] {
                continue;
            }
            // An event without a time is in no window: "not after now" is unknown.
            let V::Ts(time) = event[1] else { continue };
            let in_window = time <= self.as_of
                && start.is_none_or(|s| s <= time)
                && end.is_none_or(|e| time < e);
            if !in_window {
                continue;
            }
            if let Some(filter) = &measure.filter {
                let row = Row {
                    profile,
                    event: Some((table, event)),
                };
                if self.eval(filter, row) != V::Bool(true) {
                    continue;
                }
            }
            let value = match &measure.column {
                Some(column) => event[table.index(column)].clone(),
                None => V::Null,
            };
            events.push((time, value));
        }
        let values = || events.iter().map(|(_, v)| v).filter(|v| **v != V::Null);
        match measure.aggregate {
            Aggregate::Exists => V::Bool(!events.is_empty()),
            Aggregate::Count => V::Int(events.len() as i64),
            Aggregate::CountValues => V::Int(values().count() as i64),
            Aggregate::CountDistinct => {
                let mut distinct: Vec<&V> = Vec::new();
                for v in values() {
                    if !distinct.contains(&v) {
                        distinct.push(v);
                    }
                }
                V::Int(distinct.len() as i64)
            }
            Aggregate::Sum => {
                if measure.ty == segql::check::ir::Type::Int {
                    V::Int(
                        values()
                            .map(|v| match v {
                                V::Int(i) => *i,
                                other => panic!("not an int: {other:?}"),
                            })
                            .sum(),
                    )
                } else {
                    V::Float(values().map(as_float).sum())
                }
            }
            Aggregate::Avg => {
                let n = values().count();
                if n == 0 {
                    V::Null
                } else {
                    V::Float(values().map(as_float).sum::<f64>() / n as f64)
                }
            }
            Aggregate::ActivePeriods(period) => {
                // Period 0 is [now - P, now]; period k >= 1 is [now - (k+1)P, now - kP).
                let mut periods: Vec<i64> = events
                    .iter()
                    .map(|(time, _)| {
                        let elapsed = self.as_of - time;
                        if elapsed <= period {
                            0
                        } else {
                            (elapsed + period - 1) / period - 1
                        }
                    })
                    .collect();
                periods.sort();
                periods.dedup();
                V::Int(periods.len() as i64)
            }
            Aggregate::Active(unit) => {
                // Distinct calendar units of UTC: days, Monday-based weeks, months.
                let mut units: Vec<(i32, u32, u32)> = events
                    .iter()
                    .map(|(time, _)| {
                        let day = DateTime::from_timestamp_nanos(*time).date_naive();
                        match unit {
                            CalendarUnit::Day => (day.year(), day.month(), day.day()),
                            CalendarUnit::Week => {
                                let monday = day
                                    - Duration::days(i64::from(
                                        day.weekday().num_days_from_monday(),
                                    ));
                                (monday.year(), monday.month(), monday.day())
                            }
                            CalendarUnit::Month => (day.year(), day.month(), 1),
                        }
                    })
                    .collect();
                units.sort();
                units.dedup();
                V::Int(units.len() as i64)
            }
            Aggregate::Mode | Aggregate::DistinctList => {
                // The distinct values in ascending order, each with its number of events.
                let mut sorted: Vec<&V> = values().collect();
                sorted.sort_by(|a, b| compare(a, b));
                let mut tally: Vec<(&V, usize)> = Vec::new();
                for v in sorted {
                    match tally.last_mut() {
                        Some((last, n)) if compare(last, v) == Ordering::Equal => *n += 1,
                        _ => tally.push((v, 1)),
                    }
                }
                if measure.aggregate == Aggregate::DistinctList {
                    return V::List(tally.into_iter().map(|(v, _)| v.clone()).collect());
                }
                // The first of the most frequent: ascending order breaks ties.
                let most = tally.iter().map(|(_, n)| *n).max();
                tally
                    .into_iter()
                    .find(|(_, n)| Some(*n) == most)
                    .map_or(V::Null, |(v, _)| v.clone())
            }
            Aggregate::Min => values()
                .min_by(|a, b| compare(a, b))
                .cloned()
                .unwrap_or(V::Null),
            Aggregate::Max => values()
                .max_by(|a, b| compare(a, b))
                .cloned()
                .unwrap_or(V::Null),
            Aggregate::First | Aggregate::Last => {
                let first = measure.aggregate == Aggregate::First;
                let Some(time) = (if first {
                    events.iter().map(|(t, _)| *t).min()
                } else {
                    events.iter().map(|(t, _)| *t).max()
                }) else {
                    return V::Null;
                };
                // Among events at that time: the smallest (first) or largest (last) value,
                // nulls last.
                let tied = events
                    .iter()
                    .filter(|(t, _)| *t == time)
                    .map(|(_, v)| v)
                    .filter(|v| **v != V::Null);
                let pick = if first {
                    tied.min_by(|a, b| compare(a, b))
                } else {
                    tied.max_by(|a, b| compare(a, b))
                };
                pick.cloned().unwrap_or(V::Null)
            }
        }
    }
}

fn and(a: Option<bool>, b: Option<bool>) -> V {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => V::Bool(false),
        (Some(true), Some(true)) => V::Bool(true),
        _ => V::Null,
    }
}

/// SQL `IN`: true if an item equals, else unknown if anything was null, else false.
fn any_equal(x: &V, items: &[V]) -> Option<bool> {
    let mut unknown = false;
    for item in items {
        match equal(x, item) {
            Some(true) => return Some(true),
            Some(false) => {}
            None => unknown = true,
        }
    }
    if unknown { None } else { Some(false) }
}

fn arithmetic(op: BinaryOp, a: V, b: V) -> V {
    match (a, b) {
        (V::Null, _) | (_, V::Null) => V::Null,
        // `/` divides as floats; dividing by zero is unknown.
        (a, b) if op == BinaryOp::Div => {
            let divisor = as_float(&b);
            if divisor == 0.0 {
                V::Null
            } else {
                V::Float(as_float(&a) / divisor)
            }
        }
        (V::Int(x), V::Int(y)) => match op {
            BinaryOp::Add => V::Int(x + y),
            BinaryOp::Sub => V::Int(x - y),
            BinaryOp::Mul => V::Int(x * y),
            _ if y == 0 => V::Null,
            _ => V::Int(x % y),
        },
        (a @ (V::Int(_) | V::Float(_)), b @ (V::Int(_) | V::Float(_))) => {
            let (x, y) = (as_float(&a), as_float(&b));
            match op {
                BinaryOp::Add => V::Float(x + y),
                BinaryOp::Sub => V::Float(x - y),
                BinaryOp::Mul => V::Float(x * y),
                _ if y == 0.0 => V::Null,
                _ => V::Float(x % y),
            }
        }
        (V::Ts(t), V::Dur(d)) if op == BinaryOp::Add => V::Ts(t + d),
        (V::Ts(t), V::Dur(d)) => V::Ts(t - d),
        (V::Ts(x), V::Ts(y)) => V::Dur(x - y),
        (V::Dur(x), V::Dur(y)) if op == BinaryOp::Add => V::Dur(x + y),
        (V::Dur(x), V::Dur(y)) => V::Dur(x - y),
        (a, b) => panic!("no arithmetic {op:?} on {a:?} and {b:?}"),
    }
}

/// `date_trunc`: weeks start on Monday, as in PostgreSQL.
fn truncate(unit: &str, t: DateTime<chrono::Utc>) -> i64 {
    let date = t.date_naive();
    let midnight = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_nanos_opt()
            .expect("in range")
    };
    let first_of = |month: u32| {
        NaiveDate::from_ymd_opt(date.year(), month, 1).expect("a first day of a month")
    };
    match unit {
        "year" => midnight(first_of(1)),
        "quarter" => midnight(first_of((date.month() - 1) / 3 * 3 + 1)),
        "month" => midnight(first_of(date.month())),
        "week" => midnight(date - Duration::days(date.weekday().num_days_from_monday() as i64)),
        "day" => midnight(date),
        "hour" => midnight(date) + t.hour() as i64 * 3_600_000_000_000,
        "minute" => midnight(date) + (t.hour() as i64 * 60 + t.minute() as i64) * 60_000_000_000,
        other => panic!("no unit {other}"),
    }
}
