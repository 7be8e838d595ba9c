//! An extreme compared with a constant, planned as an existence.
//!
//! `max(purchased.amount) > 500 within 180d` is TRUE exactly when one of the purchases of
//! those 180 days has an amount over 500, which is `purchased(amount > 500) within 180d`.
//! Planned as it is written, the grouped pass reads every purchase of the window and keeps
//! each customer's maximum; planned as the existence, the scan drops the purchases of 500
//! or less before any grouping. The same holds for `max(c) >= k`, and for `min(c) < k` and
//! `min(c) <= k`, with the constant on either side.
//!
//! The two differ where the extreme is null (no events, or none with a value): the
//! comparison is NULL there, the existence FALSE. A condition keeps a profile only where it
//! is TRUE, and `and`, `or` and a segment reference (TRUE only where TRUE) give TRUE for
//! the same profiles whether an operand is NULL or FALSE. So the rewrite applies to the
//! comparisons a segment's condition reaches through those alone, and never under `not`,
//! a comparison of booleans, a stage or a function, where NULL and FALSE differ.
//!
//! NaN, nulls and `-0.0` agree too: DataFusion orders them the same way in `max`/`min` and
//! in comparisons, and a comparison with a null value is not TRUE, as the extreme ignores
//! nulls.

use crate::check::ir::{Aggregate, BinaryOp, IrExpr, Measure, Program, Type, TypedExpr, Value};

/// `condition` with every extreme-against-constant comparison in a positive position
/// replaced by an existence, and `program` with those existences' measures added; `None`
/// when there is none.
pub fn as_existences(condition: &TypedExpr, program: &Program) -> Option<(TypedExpr, Program)> {
    let mut rewritten = condition.clone();
    let mut extended: Option<Program> = None;
    rewrite(&mut rewritten, program, &mut extended);
    extended.map(|program| (rewritten, program))
}

/// Rewrites the comparisons `expr` reaches through `and`, `or` and segment references,
/// adding their measures to `extended` (a copy of `program`, made at the first).
fn rewrite(expr: &mut TypedExpr, program: &Program, extended: &mut Option<Program>) {
    expr.for_each_and_or_operand(&mut |operand| match &mut operand.kind {
        IrExpr::IsTrue(inner) => rewrite(inner, program, extended),
        IrExpr::Binary { op, lhs, rhs } => {
            // The condition reads only the program's own measures.
            let Some(measure) = existence(*op, lhs, rhs, program) else {
                return;
            };
            let id = extended
                .get_or_insert_with(|| program.clone())
                .intern_measure(measure);
            operand.kind = IrExpr::Measure(id);
        }
        _ => {}
    });
}

/// The existence `lhs op rhs` is TRUE for, when one side is a `max` or `min` measure and
/// the other a constant, and `op` compares the extreme beyond it.
fn existence(op: BinaryOp, lhs: &TypedExpr, rhs: &TypedExpr, program: &Program) -> Option<Measure> {
    let (id, op, constant) = match (&lhs.kind, &rhs.kind) {
        (IrExpr::Measure(id), _) => (*id, op, rhs),
        (_, IrExpr::Measure(id)) => (*id, op.mirrored()?, lhs),
        _ => return None,
    };
    if !is_constant(constant) {
        return None;
    }
    let measure = program.measures.get(id)?;
    let beyond = matches!(
        (&measure.aggregate, op),
        (Aggregate::Max, BinaryOp::Gt | BinaryOp::GtEq)
            | (Aggregate::Min, BinaryOp::Lt | BinaryOp::LtEq)
    );
    if !beyond || !comparable(&measure.ty) {
        return None;
    }
    let column = measure.column.clone()?;
    let span = constant.span;
    let test = TypedExpr {
        kind: IrExpr::Binary {
            op,
            lhs: Box::new(TypedExpr {
                kind: IrExpr::EventColumn(column),
                ty: measure.ty.clone(),
                span,
            }),
            rhs: Box::new(constant.clone()),
        },
        ty: Type::Bool,
        span,
    };
    let filter = match &measure.filter {
        None => test,
        Some(filter) => TypedExpr {
            kind: IrExpr::Binary {
                op: BinaryOp::And,
                lhs: Box::new(filter.clone()),
                rhs: Box::new(test),
            },
            ty: Type::Bool,
            span,
        },
    };
    Some(Measure {
        event: measure.event.clone(),
        aggregate: Aggregate::Exists,
        column: None,
        filter: Some(filter),
        window: measure.window,
        ty: Type::Bool,
    })
}

/// A value known before any event is read: a non-null literal or a time relative to now.
fn is_constant(expr: &TypedExpr) -> bool {
    match &expr.kind {
        IrExpr::Literal(value) => !matches!(value, Value::Null | Value::Bool(_)),
        IrExpr::RelativeTime(_) => true,
        _ => false,
    }
}

/// Types whose `max`/`min` and comparisons order values the same way.
fn comparable(ty: &Type) -> bool {
    matches!(
        ty,
        Type::Int | Type::Float | Type::String | Type::Timestamp | Type::Duration
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::display;
    use crate::plan::tests::checked;

    /// `condition` as planned: the measures it reads, shown, in order of appearance.
    async fn planned(condition: &str) -> Vec<String> {
        let (typed, program) = checked(condition).await;
        let (typed, program) = as_existences(&typed, &program).unwrap_or((typed, program));
        let mut shown = Vec::new();
        collect(&typed, &program, &mut shown);
        shown
    }

    fn collect(expr: &TypedExpr, program: &Program, shown: &mut Vec<String>) {
        match &expr.kind {
            IrExpr::Measure(id) => shown.push(display::measure(&program.measures[*id])),
            IrExpr::Binary { lhs, rhs, .. } => {
                collect(lhs, program, shown);
                collect(rhs, program, shown);
            }
            IrExpr::Not(inner) | IrExpr::IsTrue(inner) => collect(inner, program, shown),
            _ => {}
        }
    }

    #[tokio::test]
    async fn extremes_beyond_a_constant_become_existences() {
        for (condition, existence) in [
            (
                "max(purchased.amount) > 500 within 180d",
                "exists(purchased) where (amount > 500) in [now - 180d, now]: bool",
            ),
            (
                "500 <= max(purchased.amount)",
                "exists(purchased) where (amount >= 500) over all time until now: bool",
            ),
            (
                "min(purchased.amount) < 10",
                "exists(purchased) where (amount < 10) over all time until now: bool",
            ),
            (
                "min(purchased(category = \"books\").amount) <= 10",
                "exists(purchased) where ((category = \"books\") and (amount <= 10)) over all time until now: bool",
            ),
            (
                "max(purchased.category) > \"m\"",
                "exists(purchased) where (category > \"m\") over all time until now: bool",
            ),
        ] {
            assert_eq!(planned(condition).await, [existence], "{condition}");
        }
    }

    #[tokio::test]
    async fn existences_replace_extremes_under_and_or_and_segment_references_only() {
        assert_eq!(
            planned("age > 30 and (max(purchased.amount) > 500 or (purchased within 7d))").await,
            [
                "exists(purchased) where (amount > 500) over all time until now: bool",
                "exists(purchased) in [now - 7d, now]: bool",
            ]
        );
        // Where NULL and FALSE differ, the comparison stays.
        for condition in [
            "not (max(purchased.amount) > 500)",
            "(max(purchased.amount) > 500) = false",
            "max(purchased.amount) < 500",
            "min(purchased.amount) >= 500",
            "max(purchased.amount) > avg(purchased.amount)",
            "max(purchased.amount) = 500",
        ] {
            let shown = planned(condition).await;
            assert!(
                shown.iter().all(|measure| !measure.starts_with("exists")),
                "{condition}: {shown:?}"
            );
        }
    }
}
