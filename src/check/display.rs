//! A readable text form of the typed IR, for `segql compile --emit ir` and snapshots.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::ir::*;

/// A segment's condition and the measures it uses.
pub fn segment_ir(segment: &CheckedSegment, program: &Program) -> String {
    let mut out = format!(
        "segment {}: bool\n  = {}\n",
        segment.name,
        expr(&segment.condition)
    );
    let mut measures = BTreeSet::new();
    let mut rankings = BTreeSet::new();
    let mut sequences = BTreeSet::new();
    crate::plan::visit_through_rankings(&segment.condition, program, &mut |node| {
        match node.kind {
            IrExpr::Measure(id) => measures.insert(id),
            IrExpr::Rank(id) => rankings.insert(id),
            IrExpr::Sequence(id) => sequences.insert(id),
            _ => false,
        };
    });
    for id in rankings {
        let _ = writeln!(out, "  r{id} = {}", ranking(&program.rankings[id]));
    }
    for id in sequences {
        let _ = writeln!(out, "  q{id} = {}", sequence(&program.sequences[id]));
    }
    for id in measures {
        let _ = writeln!(out, "  m{id} = {}", measure(&program.measures[id]));
    }
    out
}

/// One ranking: `top 10 by (m0) over all profiles, ties to the smaller key: bool`.
pub fn ranking(ranking: &Ranking) -> String {
    let by = expr(&ranking.by);
    match ranking.kind {
        RankKind::Top(n) => {
            format!("top {n} by {by} over all profiles, ties to the smaller key: bool")
        }
        RankKind::TopShare(share) => format!(
            "top {}% by {by} over all profiles, ties to the smaller key: bool",
            share as f64 / 10_000.0
        ),
        RankKind::PercentileRank => {
            format!("percentile_rank({by}) over all profiles: float")
        }
        RankKind::Lookalike(n) => format!(
            "the {n} profiles outside {} nearest its centroid in standardized {by}, ties to the smaller key: bool",
            ranking.seed.as_ref().map_or_else(|| "?".to_string(), expr)
        ),
    }
}

/// The events a window covers: ` in [now - 30d, now]`.
fn window(window: TimeWindow) -> String {
    let point = |p: TimePoint| match p {
        TimePoint::Absolute(t) => timestamp(t),
        TimePoint::FromNow(0) => "now".to_string(),
        TimePoint::FromNow(offset) => format!("now - {}", duration(-offset)),
    };
    match (window.start, window.end) {
        (None, None) => " over all time until now".to_string(),
        (Some(start), None) => format!(" in [{}, now]", point(start)),
        (start, Some(end)) => {
            let start = start.map(point).unwrap_or_else(|| "-inf".into());
            format!(" in [{start}, {}) and not after now", point(end))
        }
    }
}

/// One sequence: `viewed where (...) binding p = product, then purchased within 1h ...`.
pub fn sequence(sequence: &Sequence) -> String {
    let steps: Vec<String> = (sequence.steps.iter())
        .map(|step| {
            let mut text = String::new();
            if step.negated {
                text.push_str("no ");
            }
            text.push_str(&step.event);
            if let Some(filter) = &step.filter {
                let _ = write!(text, " where {}", expr(filter));
            }
            for c in &step.correlations {
                let verb = if c.binds { "binding" } else { "with" };
                let _ = write!(text, " {verb} {} = {}", c.name, c.column);
            }
            if let Some(gap) = step.gap {
                let _ = write!(text, " within {} after", duration(gap));
            }
            text
        })
        .collect();
    format!("{}{}: bool", steps.join(" then "), window(sequence.window))
}

/// One measure: `sum(purchased.amount) where (...) in [now - 30d, now]: float`.
pub fn measure(measure: &Measure) -> String {
    let mut text = match (&measure.aggregate, &measure.column) {
        (Aggregate::Exists, _) => format!("exists({})", measure.event),
        (Aggregate::Count, _) => format!("count({})", measure.event),
        (Aggregate::CountDistinct, Some(c)) => format!("count(distinct {}.{c})", measure.event),
        (Aggregate::ActivePeriods(period), _) => {
            format!("active_periods({}, {})", measure.event, duration(*period))
        }
        (aggregate, Some(c)) => format!("{}({}.{c})", aggregate.name(), measure.event),
        (aggregate, None) => format!("{}({})", aggregate.name(), measure.event),
    };
    if let Some(filter) = &measure.filter {
        let _ = write!(text, " where {}", expr(filter));
    }
    text.push_str(&window(measure.window));
    let _ = write!(text, ": {}", measure.ty);
    text
}

/// A time as `YYYY-MM-DDTHH:MM:SSZ` (UTC), as every output of SegQL shows it.
pub fn timestamp(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn duration(ns: i64) -> String {
    let seconds = ns / 1_000_000_000;
    for (unit, size) in [
        ("y", 365 * 86_400),
        ("d", 86_400),
        ("h", 3_600),
        ("min", 60),
    ] {
        if seconds != 0 && seconds % size == 0 && ns % 1_000_000_000 == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// An expression in SegQL-like syntax, fully parenthesized.
pub fn expr(e: &TypedExpr) -> String {
    let list = |items: &[TypedExpr]| items.iter().map(expr).collect::<Vec<_>>().join(", ");
    match &e.kind {
        IrExpr::Literal(value) => match value {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(x) => format!("{x:?}"),
            Value::String(s) => format!("{s:?}"),
            Value::Timestamp(t) => timestamp(*t),
            Value::Duration(d) => duration(*d),
        },
        IrExpr::RelativeTime(0) => "now".into(),
        IrExpr::RelativeTime(offset) if *offset < 0 => format!("{} ago", duration(-offset)),
        IrExpr::RelativeTime(offset) => format!("(now + {})", duration(*offset)),
        IrExpr::ProfileColumn(name) | IrExpr::EventColumn(name) => name.clone(),
        IrExpr::List(items) => format!("[{}]", list(items)),
        IrExpr::Measure(id) => format!("m{id}"),
        IrExpr::Not(inner) => format!("(not {})", expr(inner)),
        IrExpr::IsTrue(inner) => format!("({} is true)", expr(inner)),
        IrExpr::Negate(inner) => format!("(-{})", expr(inner)),
        IrExpr::Binary { op, lhs, rhs } => format!("({} {} {})", expr(lhs), op.symbol(), expr(rhs)),
        IrExpr::Between { expr: v, low, high } => {
            format!("({} between {} and {})", expr(v), expr(low), expr(high))
        }
        IrExpr::InList {
            expr: v,
            items,
            negated,
        } => {
            format!(
                "({} {}in [{}])",
                expr(v),
                if *negated { "not " } else { "" },
                list(items)
            )
        }
        IrExpr::InArray {
            expr: v,
            array,
            negated,
        } => {
            format!(
                "({} {}in {})",
                expr(v),
                if *negated { "not " } else { "" },
                expr(array)
            )
        }
        IrExpr::Has {
            array,
            quantifier,
            items,
        } => format!(
            "({} has {} [{}])",
            expr(array),
            match quantifier {
                Quantifier::Any => "any",
                Quantifier::All => "all",
            },
            list(items)
        ),
        IrExpr::IsNull { expr: v, negated } => format!(
            "({} is {}null)",
            expr(v),
            if *negated { "not " } else { "" }
        ),
        IrExpr::StringTest {
            op,
            expr: v,
            pattern,
        } => format!("({} {} {})", expr(v), op.keyword(), expr(pattern)),
        IrExpr::Function { function, args } => format!("{}({})", function.name(), list(args)),
        IrExpr::Stage { arms } => {
            let arms: Vec<String> = arms
                .iter()
                .map(|(label, c)| format!("{label} = {}", expr(c)))
                .collect();
            format!("stage {{ {} }}", arms.join("; "))
        }
        IrExpr::Sample {
            seed, threshold, ..
        } => {
            format!("sample(bucket({seed:?}, key) < {threshold} of 2^32)")
        }
        IrExpr::Rank(id) => format!("r{id}"),
        IrExpr::Sequence(id) => format!("q{id}"),
    }
}
