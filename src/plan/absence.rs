//! Which measure relations a condition needs a row from.
//!
//! A profile with no events in a table has no row in that table's grouped measure pass, so
//! the planner joins each pass to the profiles with an outer join, and every measure of the
//! table takes its value over no events: 0 for `count` and `sum`, false for "at least one
//! event", null for the others. If the condition cannot be TRUE with those values, whatever
//! the profile's other values are, then only profiles with events in that table can be
//! members: the join can be an inner join. DataFusion then pushes the measure conditions
//! below the join into the grouped pass (a `HAVING`), and joins only the profiles that
//! pass them.
//!
//! The analysis evaluates the condition over abstract values: known constants, null,
//! "false or null" and unknown. It is conservative: anything it cannot decide is unknown,
//! which keeps the outer join.

use crate::check::ir::{Aggregate, BinaryOp, Function, IrExpr, Program, TypedExpr, Value};

/// What a sub-expression can be for a profile without events in the table analysed.
#[derive(Debug, Clone, PartialEq)]
enum Abstract {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    /// FALSE or NULL: never TRUE.
    NotTrue,
    /// Anything: it depends on values the analysis does not know.
    Unknown,
}

use Abstract::{Bool, NotTrue, Null, Number, Text, Unknown};

/// True when `condition` can only be TRUE for profiles that have a row in the relation
/// computing the measures `ids`: a profile without one sees each of those measures at its
/// value over no events.
pub fn requires_rows(condition: &TypedExpr, ids: &[usize], program: &Program) -> bool {
    matches!(
        evaluate(condition, ids, program),
        Null | Bool(false) | NotTrue
    )
}

fn evaluate(expr: &TypedExpr, absent: &[usize], program: &Program) -> Abstract {
    let eval = |e: &TypedExpr| evaluate(e, absent, program);
    match &expr.kind {
        IrExpr::Literal(value) => match value {
            Value::Null => Null,
            Value::Bool(b) => Bool(*b),
            Value::Int(i) => Number(*i as f64),
            Value::Float(f) => Number(*f),
            Value::String(text) => Text(text.clone()),
            _ => Unknown,
        },
        IrExpr::Measure(id) => {
            if !absent.contains(id) {
                return Unknown;
            }
            let measure = &program.measures[*id];
            match measure.aggregate {
                Aggregate::Exists => Bool(false),
                Aggregate::Count
                | Aggregate::CountValues
                | Aggregate::CountDistinct
                | Aggregate::Active(_)
                | Aggregate::ActivePeriods(_)
                | Aggregate::Sum => Number(0.0),
                Aggregate::Avg
                | Aggregate::Min
                | Aggregate::Max
                | Aggregate::First
                | Aggregate::Last
                | Aggregate::Mode => Null,
                // The empty list, which the abstract values do not model.
                Aggregate::DistinctList => Unknown,
            }
        }
        IrExpr::Not(inner) => match eval(inner) {
            Bool(b) => Bool(!b),
            Null => Null,
            _ => Unknown,
        },
        IrExpr::IsTrue(inner) => match eval(inner) {
            Bool(b) => Bool(b),
            Null | NotTrue => Bool(false),
            _ => Unknown,
        },
        IrExpr::Negate(inner) => match eval(inner) {
            Number(n) => Number(-n),
            Null => Null,
            _ => Unknown,
        },
        IrExpr::Binary { op, lhs, rhs } => binary(*op, eval(lhs), eval(rhs)),
        // `e between l and h` is `e >= l and e <= h`: with one bound null it can still be FALSE.
        IrExpr::Between { expr, low, high } => {
            let value = eval(expr);
            binary(
                BinaryOp::And,
                binary(BinaryOp::GtEq, value.clone(), eval(low)),
                binary(BinaryOp::LtEq, value, eval(high)),
            )
        }
        // `null in [..]` is null, as in SQL.
        IrExpr::InList {
            expr,
            items,
            negated,
        } => match eval(expr) {
            Null => Null,
            value @ (Number(_) | Text(_)) => {
                let items: Vec<Abstract> = items.iter().map(eval).collect();
                if items.iter().all(|i| matches!(i, Number(_) | Text(_))) {
                    Bool(items.contains(&value) != *negated)
                } else {
                    Unknown
                }
            }
            _ => Unknown,
        },
        IrExpr::IsNull { expr, negated } => match eval(expr) {
            Null => Bool(!negated),
            Bool(_) | Number(_) | Text(_) => Bool(*negated),
            _ => Unknown,
        },
        IrExpr::Function { function, args } => match function {
            Function::Coalesce => {
                for arg in args {
                    match eval(arg) {
                        Null => continue,
                        known @ (Bool(_) | Number(_) | Text(_)) => return known,
                        _ => return Unknown,
                    }
                }
                Null
            }
            Function::Abs => match args.first().map(eval) {
                Some(Number(n)) => Number(n.abs()),
                Some(Null) => Null,
                _ => Unknown,
            },
            _ => Unknown,
        },
        // A stage is the label of the first arm that is TRUE, else null.
        IrExpr::Stage { arms } => {
            for (label, condition) in arms {
                match eval(condition) {
                    Bool(true) => return Text(label.clone()),
                    Bool(false) | Null | NotTrue => continue,
                    _ => return Unknown,
                }
            }
            Null
        }
        // Times, lists, profile and event columns, string tests, samples, rankings and
        // sequences: not modelled.
        IrExpr::RelativeTime(_)
        | IrExpr::Sample { .. }
        | IrExpr::Rank(_)
        | IrExpr::Sequence(_)
        | IrExpr::ProfileColumn(_)
        | IrExpr::List(_)
        | IrExpr::EventColumn(_)
        | IrExpr::InArray { .. }
        | IrExpr::Has { .. }
        | IrExpr::StringTest { .. } => Unknown,
    }
}

fn binary(op: BinaryOp, lhs: Abstract, rhs: Abstract) -> Abstract {
    match op {
        BinaryOp::And => match (lhs, rhs) {
            (Bool(false), _) | (_, Bool(false)) => Bool(false),
            (Bool(true), other) | (other, Bool(true)) => other,
            (Null, Null) => Null,
            (Null | NotTrue, _) | (_, Null | NotTrue) => NotTrue,
            _ => Unknown,
        },
        BinaryOp::Or => match (lhs, rhs) {
            (Bool(true), _) | (_, Bool(true)) => Bool(true),
            (Bool(false), other) | (other, Bool(false)) => other,
            (Null, Null) => Null,
            (Null | NotTrue, Null | NotTrue) => NotTrue,
            _ => Unknown,
        },
        _ => match (lhs, rhs) {
            (Null, _) | (_, Null) => Null,
            (Number(l), Number(r)) => arithmetic_or_comparison(op, l, r),
            (Text(l), Text(r)) if op == BinaryOp::Eq => Bool(l == r),
            (Text(l), Text(r)) if op == BinaryOp::NotEq => Bool(l != r),
            _ => Unknown,
        },
    }
}

fn arithmetic_or_comparison(op: BinaryOp, l: f64, r: f64) -> Abstract {
    match op {
        BinaryOp::Eq => Bool(l == r),
        BinaryOp::NotEq => Bool(l != r),
        BinaryOp::Lt => Bool(l < r),
        BinaryOp::LtEq => Bool(l <= r),
        BinaryOp::Gt => Bool(l > r),
        BinaryOp::GtEq => Bool(l >= r),
        BinaryOp::Add => Number(l + r),
        BinaryOp::Sub => Number(l - r),
        BinaryOp::Mul => Number(l * r),
        BinaryOp::Div | BinaryOp::Rem if r == 0.0 => Null,
        BinaryOp::Div => Number(l / r),
        BinaryOp::Rem => Number(l % r),
        BinaryOp::And | BinaryOp::Or => Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{checked, session};

    /// The event tables `condition` needs events from.
    async fn needs(condition: &str) -> Vec<&'static str> {
        let (typed, program) = checked(condition).await;
        ["purchased", "viewed"]
            .into_iter()
            .filter(|event| requires_rows(&typed, &measures_of(event, &program), &program))
            .collect()
    }

    const NONE: [&str; 0] = [];

    fn measures_of(event: &str, program: &Program) -> Vec<usize> {
        (0..program.measures.len())
            .filter(|&id| program.measures[id].event == event)
            .collect()
    }

    #[tokio::test]
    async fn event_conditions_need_their_table() {
        assert_eq!(needs("purchased").await, ["purchased"]);
        assert_eq!(
            needs("count(purchased) >= 5 within 90d").await,
            ["purchased"]
        );
        assert_eq!(needs("sum(purchased.amount) > 100").await, ["purchased"]);
        assert_eq!(
            needs("avg(purchased.amount) > 100 and viewed").await,
            ["purchased", "viewed"]
        );
        assert_eq!(needs("purchased or viewed").await, NONE);
        assert_eq!(needs("(purchased or viewed) and viewed").await, ["viewed"]);
        assert_eq!(
            needs("max(purchased.amount) > 10 or max(purchased.amount) < 5").await,
            ["purchased"]
        );
        assert_eq!(needs("count(purchased) + count(viewed) > 3").await, NONE);
        assert_eq!(needs("count(purchased) * 2 > 3").await, ["purchased"]);
    }

    #[tokio::test]
    async fn absence_and_nulls_keep_the_left_join() {
        assert_eq!(needs("not purchased").await, NONE);
        assert_eq!(needs("count(purchased) < 3").await, NONE);
        assert_eq!(needs("count(purchased) = 0").await, NONE);
        assert_eq!(needs("sum(purchased.amount) <= 100").await, NONE);
        assert_eq!(needs("max(purchased.amount) is null").await, NONE);
        assert_eq!(needs("coalesce(max(purchased.amount), 0) < 10").await, NONE);
        assert_eq!(
            needs("not (max(purchased.amount) > 10)").await,
            ["purchased"]
        );
        assert_eq!(needs("age > 30").await, NONE);
        assert_eq!(needs("age > 30 and purchased").await, ["purchased"]);
        // FALSE with a null bound: `null >= 0` is null, but `1 <= 0` is false.
        assert_eq!(
            needs("(1 between max(purchased.amount) and 0) = false").await,
            NONE
        );
    }

    #[tokio::test]
    async fn stages_are_followed_arm_by_arm() {
        let stage =
            "stage tier { big = sum(purchased.amount) > 100  small = purchased  none = true }";
        let mut session = session().await;
        session
            .add_source("tiers.seg", stage)
            .unwrap_or_else(|report| panic!("{report}"));
        for (condition, needs_purchases) in [
            (r#"tier = "big""#, true),
            (r#"tier in ["big", "small"]"#, true),
            (r#"tier = "none""#, false),
            (r#"tier != "big""#, false),
            ("tier is null", true),
        ] {
            let typed = session
                .check_condition("<test>", condition)
                .unwrap_or_else(|report| panic!("{report}"));
            assert_eq!(
                requires_rows(
                    &typed,
                    &measures_of("purchased", session.program()),
                    session.program()
                ),
                needs_purchases,
                "{condition}"
            );
        }
    }
}
