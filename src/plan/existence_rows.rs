//! Existences probed by their rows: a semi join of the profiles with an existence's pass
//! reads the keys of the rows where the condition holds, not a group per key.
//!
//! A segment that needs events (`purchased(category = "fashion") within 90d`) joins the
//! profiles to its measure's grouped pass, `Filter: m <- Aggregate: group by key,
//! segql_any(condition) AS m`, and reads none of the pass's columns above the join.
//! DataFusion makes that join a semi join (`EliminateJoin`: the pass has one row per
//! key). A semi join keeps the same profiles when it probes with the key of every row
//! where the condition is TRUE: grouping the rows first hashed each of them once more, and
//! merged the groups of the scan's partitions again, for groups nobody reads.
//! [`ExistenceRows`], a logical optimizer rule, takes the grouping out: the pass becomes
//! `Projection: key <- Filter: condition <- rows`. An anti join likewise.
//!
//! The rule rewrites only joins that are already semi or anti joins: before DataFusion's
//! rule has made the join one, the pass's one row per key is what allows it to.
//! Plans in this process use it ([`crate::exec::state_for`]); `segql_any` is SegQL's own.

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Expr, JoinType, LogicalPlan, LogicalPlanBuilder, SubqueryAlias, lit,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use super::any_true::any_true_udaf;

/// The rule: see the module documentation.
#[derive(Debug, Default)]
pub struct ExistenceRows;

impl OptimizerRule for ExistenceRows {
    fn name(&self) -> &str {
        "existence_rows"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(mut join) = plan else {
            return Ok(Transformed::no(plan));
        };
        let probes_existence = matches!(join.join_type, JoinType::LeftSemi | JoinType::LeftAnti)
            && join.filter.is_none();
        match probes_existence.then(|| rows_of_existence(&join.right)) {
            Some(Some(rows)) => {
                // The join's schema is its left side's: the new right side changes nothing
                // above it.
                join.right = Arc::new(rows?);
                Ok(Transformed::yes(LogicalPlan::Join(join)))
            }
            _ => Ok(Transformed::no(LogicalPlan::Join(join))),
        }
    }
}

/// `relation`, the keys of an existence's pass with nothing else read from it, as the
/// keys of its rows where the existence's condition holds (with the same column names
/// and qualifiers); `None` when `relation` is anything else.
fn rows_of_existence(relation: &LogicalPlan) -> Option<Result<LogicalPlan>> {
    if let LogicalPlan::SubqueryAlias(alias) = relation {
        let rows = rows_of_existence(&alias.input)?;
        return Some(rows.and_then(|rows| {
            SubqueryAlias::try_new(Arc::new(rows), alias.alias.clone())
                .map(LogicalPlan::SubqueryAlias)
        }));
    }
    let LogicalPlan::Projection(keys) = relation else {
        return None;
    };
    let LogicalPlan::Filter(filter) = keys.input.as_ref() else {
        return None;
    };
    let Expr::Column(measure) = &filter.predicate else {
        return None;
    };
    let LogicalPlan::Aggregate(pass) = filter.input.as_ref() else {
        return None;
    };
    let [group] = pass.group_expr.as_slice() else {
        return None;
    };
    let key = pass.schema.columns().into_iter().next()?;
    if !matches!(keys.expr.as_slice(), [Expr::Column(c)] if *c == key)
        || matches!(group, Expr::GroupingSet(_))
    {
        return None;
    }
    let at = pass.schema.index_of_column(measure).ok()?;
    let condition = existence_condition(pass.aggr_expr.get(at.checked_sub(1)?)?)?;
    let key_of_row = group
        .clone()
        .unalias()
        .alias_qualified(key.relation.clone(), key.name.as_str());
    let rows = LogicalPlanBuilder::from(Arc::clone(&pass.input));
    Some((|| {
        let rows = if condition == lit(true) {
            rows
        } else {
            rows.filter(condition)?
        };
        rows.project(vec![key_of_row])?.build()
    })())
}

/// The condition of `segql_any(condition)` (aliased or not).
fn existence_condition(aggregate: &Expr) -> Option<Expr> {
    let Expr::AggregateFunction(AggregateFunction { func, params }) = aggregate.clone().unalias()
    else {
        return None;
    };
    let plain = !params.distinct && params.filter.is_none() && params.order_by.is_empty();
    match params.args.as_slice() {
        [condition] if plain && func.name() == any_true_udaf().name() => Some(condition.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::execution::SessionStateBuilder;
    use datafusion::logical_expr::col;
    use datafusion::prelude::{DataFrame, SessionContext};

    use super::super::any_true::any_true;
    use super::*;

    /// Profiles 1 to 6 and events `(k, v)`: key 2 twice with `v > 10`, key 3 only with
    /// `v` at most 10, key 4 with a null `v`, a null key with `v > 10`, key 9 (no profile)
    /// with `v > 10`.
    fn context() -> SessionContext {
        let ctx = SessionContext::new();
        let profiles = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from_iter_values(1..=6))],
        )
        .expect("profiles");
        let events = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("k", DataType::Int64, true),
                Field::new("v", DataType::Int64, true),
            ])),
            vec![
                Arc::new(Int64Array::from(vec![
                    Some(2),
                    Some(3),
                    Some(2),
                    Some(4),
                    None,
                    Some(9),
                    Some(5),
                ])),
                Arc::new(Int64Array::from(vec![
                    Some(11),
                    Some(10),
                    Some(12),
                    None,
                    Some(20),
                    Some(30),
                    Some(3),
                ])),
            ],
        )
        .expect("events");
        ctx.register_batch("profiles", profiles).expect("profiles");
        ctx.register_batch("events", events).expect("events");
        ctx
    }

    /// The profiles' keys joined (`join_type`) with the keys whose events have any row
    /// where `condition` holds, found by a grouped pass as the planner writes it.
    async fn segment(ctx: &SessionContext, join_type: JoinType, condition: Expr) -> LogicalPlan {
        let scan = |name: &'static str| async move {
            let table = ctx.table(name).await.expect("a registered table");
            LogicalPlanBuilder::from(table.into_unoptimized_plan())
        };
        let pass = (scan("events").await)
            .aggregate(
                vec![col("k").alias("__key")],
                vec![any_true(condition).alias("m")],
            )
            .and_then(|b| b.filter(col("m")))
            .and_then(|b| b.project(vec![col("__key")]))
            .and_then(|b| b.alias("__m"))
            .and_then(|b| b.build())
            .expect("the pass");
        (scan("profiles").await)
            .join(pass, join_type, (vec!["k"], vec!["__key"]), None)
            .and_then(|b| b.build())
            .expect("the join")
    }

    /// The keys `plan` selects, optimized with the rule or without, and whether the
    /// optimized plan still has an aggregate.
    async fn members(
        ctx: &SessionContext,
        plan: &LogicalPlan,
        with_rule: bool,
    ) -> (BTreeSet<i64>, bool) {
        let mut builder = SessionStateBuilder::new_from_existing(ctx.state());
        if with_rule {
            builder = builder.with_optimizer_rule(Arc::new(ExistenceRows));
        }
        let state = builder.build();
        let optimized = state.optimize(plan).expect("optimized");
        let mut grouped = false;
        let _ = optimized.apply(|node| {
            grouped |= matches!(node, LogicalPlan::Aggregate(_));
            Ok(TreeNodeRecursion::Continue)
        });
        let batches = DataFrame::new(state, plan.clone())
            .collect()
            .await
            .expect("rows");
        let keys = batches
            .iter()
            .flat_map(|b| {
                let keys = b.column(0).as_any().downcast_ref::<Int64Array>();
                keys.expect("Int64 keys")
                    .iter()
                    .flatten()
                    .collect::<Vec<_>>()
            })
            .collect();
        (keys, grouped)
    }

    /// The keys of `events` rows where `holds` is true, by reading them.
    fn naive(holds: impl Fn(Option<i64>) -> bool) -> BTreeSet<i64> {
        let rows = [
            (Some(2), Some(11)),
            (Some(3), Some(10)),
            (Some(2), Some(12)),
            (Some(4), None),
            (None, Some(20)),
            (Some(9), Some(30)),
            (Some(5), Some(3)),
        ];
        (rows.into_iter())
            .filter(|&(_, v)| holds(v))
            .filter_map(|(k, _)| k)
            .collect()
    }

    #[tokio::test]
    async fn a_semi_join_probes_with_the_rows_and_keeps_the_same_profiles() {
        let ctx = context();
        let profiles: BTreeSet<i64> = (1..=6).collect();
        let cases = [
            (col("v").gt(lit(10)), naive(|v| v.is_some_and(|v| v > 10))),
            (lit(true), naive(|_| true)),
            (col("v").is_null(), naive(|v| v.is_none())),
        ];
        for (condition, with_rows) in cases {
            for join_type in [JoinType::LeftSemi, JoinType::LeftAnti] {
                let plan = segment(&ctx, join_type, condition.clone()).await;
                let (before, grouped_before) = members(&ctx, &plan, false).await;
                let (after, grouped_after) = members(&ctx, &plan, true).await;
                let expected: BTreeSet<i64> = match join_type {
                    JoinType::LeftSemi => profiles.intersection(&with_rows).copied().collect(),
                    _ => profiles.difference(&with_rows).copied().collect(),
                };
                let case = format!("{join_type} on {condition}");
                assert_eq!(before, expected, "{case}, without the rule");
                assert_eq!(after, expected, "{case}, with the rule");
                assert!(grouped_before, "{case}: the pass groups without the rule");
                assert!(!grouped_after, "{case}: the rule takes the grouping out");
            }
        }
    }

    #[tokio::test]
    async fn an_inner_join_keeps_its_grouping() {
        let ctx = context();
        // The pass's measure is read above the join: the join stays inner, and its
        // pass keeps one row per key.
        let plan =
            LogicalPlanBuilder::from(segment(&ctx, JoinType::Inner, col("v").gt(lit(10))).await)
                .project(vec![col("k"), col("__m.__key")])
                .and_then(|b| b.build())
                .expect("a projection");
        let (keys, grouped) = members(&ctx, &plan, true).await;
        assert_eq!(keys, BTreeSet::from([2]));
        assert!(grouped);
    }
}
