//! Sequences as relations: the keys of the profiles whose events hold the steps in order.
//!
//! Each step is a scan of its event table (the window, `time <= now` and the step's
//! filter applied). The chain is built step by step: `R1` is the first step's events as
//! (key, time, bound values); `Rk` is every event of step k that follows an event of
//! `R(k-1)` of the same profile, strictly later and within the gap, with equal correlated
//! values. Without a gap only the earliest time per profile and bound values matters, so
//! `R(k-1)` is reduced to it first. A negated last step keeps the rows of `R(k-1)` whose
//! gap has ended and that no such event follows (an anti join).
//!
//! ```text
//! steps[0] AS R1 -> (R1 JOIN steps[1] ON key, correlations FILTER t1 < t2 <= t1 + gap)
//!   -> DISTINCT (key, t2, bound values) AS R2 -> ... -> keys of Rn, grouped, AS __q_<id>
//! ```

use std::collections::BTreeSet;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Column;
use datafusion::error::Result;
use datafusion::functions::expr_fn::date_part;
use datafusion::functions_aggregate::expr_fn::min;
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan, LogicalPlanBuilder, cast, col, lit};

use super::{Planner, ScanBounds, collect_event_columns, timestamp_literal};
use crate::check::ir::*;

/// The relation holding a sequence's matching profile keys.
pub fn sequence_relation(id: usize) -> String {
    format!("__q_{id}")
}

/// The column of a chain holding the value bound to `name`.
fn bound_column(name: &str) -> String {
    format!("__b_{name}")
}

/// The column of a step's events holding the value compared with `name`.
fn compared_column(name: &str) -> String {
    format!("__c_{name}")
}

impl Planner<'_> {
    /// Sequence `id` as a relation `alias` with one row (`__key`) per matching profile.
    pub(super) fn sequence_pass(
        &self,
        id: usize,
        alias: &str,
        profile_key_type: &Type,
    ) -> Result<LogicalPlan> {
        let sequence = &self.program.sequences[id];
        let mut bound: Vec<String> = Vec::new();
        let mut chain: Option<LogicalPlanBuilder> = None;
        for (index, step) in sequence.steps.iter().enumerate() {
            let events = self.step_events(step, sequence.window, profile_key_type)?;
            let Some(previous) = chain.take() else {
                bound.extend(step.correlations.iter().map(|c| c.name.clone()));
                chain = Some(events);
                continue;
            };
            let previous = match (step.gap, step.negated) {
                // Any later event will do, so only the earliest chain end counts.
                (None, false) => {
                    let mut group = vec![col("__key")];
                    group.extend(bound.iter().map(|b| col(bound_column(b))));
                    previous.aggregate(group, vec![min(col("__t")).alias("__t")])?
                }
                // A drop-off counts once its gap has ended.
                (Some(gap), true) => previous
                    .filter(col("__t").lt_eq(timestamp_literal(self.as_of.saturating_sub(gap))))?,
                _ => previous,
            };
            let prev = |name: &str| col(Column::new(Some("__prev"), name));
            let next = |name: &str| col(Column::new(Some("__next"), name));
            let mut left_keys = vec![Column::new(Some("__prev"), "__key")];
            let mut right_keys = vec![Column::new(Some("__next"), "__key")];
            for c in step.correlations.iter().filter(|c| !c.binds) {
                left_keys.push(Column::new(Some("__prev"), bound_column(&c.name)));
                right_keys.push(Column::new(Some("__next"), compared_column(&c.name)));
            }
            let mut order = next("__t").gt(prev("__t"));
            if let Some(gap) = step.gap {
                order = order.and(self.at_most_apart(prev("__t"), next("__t"), gap));
            }
            let join = if step.negated {
                JoinType::LeftAnti
            } else {
                JoinType::Inner
            };
            let joined = previous.alias("__prev")?.join(
                events.alias("__next")?.build()?,
                join,
                (left_keys, right_keys),
                Some(order),
            )?;
            if step.negated {
                chain = Some(joined.project(vec![prev("__key").alias("__key")])?);
                continue;
            }
            if index + 1 == sequence.steps.len() {
                // Only which profiles reach the last step matters.
                chain = Some(joined.project(vec![next("__key").alias("__key")])?);
                continue;
            }
            let mut projection = vec![next("__key").alias("__key"), next("__t").alias("__t")];
            projection.extend(
                bound
                    .iter()
                    .map(|b| prev(&bound_column(b)).alias(bound_column(b))),
            );
            for c in step.correlations.iter().filter(|c| c.binds) {
                projection.push(next(&bound_column(&c.name)).alias(bound_column(&c.name)));
                bound.push(c.name.clone());
            }
            chain = Some(
                joined
                    .project(projection)?
                    .distinct()?
                    .alias(format!("__chain{index}"))?,
            );
        }
        let Some(chain) = chain else {
            return Err(datafusion::error::DataFusionError::Internal(
                "a sequence without steps".into(),
            ));
        };
        chain
            .aggregate(vec![col("__key")], Vec::<Expr>::new())?
            .alias(alias)?
            .build()
    }

    /// The events of step `step` of sequence `id` for the profile with key `key`, by time
    /// (at most `limit`): the time, and the columns the step correlates.
    pub fn sequence_step_events(
        &self,
        id: usize,
        step: usize,
        key: Expr,
        limit: usize,
    ) -> Result<LogicalPlan> {
        let sequence = &self.program.sequences[id];
        let step = &sequence.steps[step];
        let time_name = self
            .event_table(&step.event)?
            .time
            .clone()
            .unwrap_or_default();
        let mut projection = vec![col("__t").alias(time_name.as_str())];
        for c in &step.correlations {
            let name = if c.binds {
                bound_column(&c.name)
            } else {
                compared_column(&c.name)
            };
            projection.push(col(name).alias(c.column.as_str()));
        }
        self.step_events(step, sequence.window, &self.profile_key_type())?
            .filter(col("__key").eq(key))?
            .project(projection)?
            .sort(vec![col(Column::from_name(time_name)).sort(true, false)])?
            .limit(0, Some(limit))?
            .build()
    }

    /// One step's events: `__key`, `__t`, and the values it binds ([`bound_column`]) or
    /// compares ([`compared_column`]).
    fn step_events(
        &self,
        step: &SequenceStep,
        window: TimeWindow,
        profile_key_type: &Type,
    ) -> Result<LogicalPlanBuilder> {
        let table = self.event_table(&step.event)?;
        let time = self.time_column(table)?;
        let time_name = table.time.clone().unwrap_or_default();
        let mut columns = BTreeSet::from([table.key.clone(), time_name.clone()]);
        if let Some(filter) = &step.filter {
            collect_event_columns(filter, &mut columns);
        }
        columns.extend(step.correlations.iter().map(|c| c.column.clone()));
        let bounds = ScanBounds {
            start: window.start.map(|s| s.resolve(self.as_of)),
            end: window.end.map(|e| e.resolve(self.as_of)),
            filter: step.filter.clone(),
        };
        let mut projection = vec![
            col(Column::from_name(table.key.as_str())).alias("__key"),
            col(Column::from_name(time_name.as_str())).alias("__t"),
        ];
        for c in &step.correlations {
            let name = if c.binds {
                bound_column(&c.name)
            } else {
                compared_column(&c.name)
            };
            projection.push(col(Column::from_name(c.column.as_str())).alias(name));
        }
        let raw = time.is_raw().then_some(time_name.as_str());
        self.normalized_scan_keeping(table, &columns, Some(profile_key_type), raw)?
            .filter(self.scan_filter(&time, &bounds)?)?
            .project(projection)
    }

    /// `later - earlier <= gap` for normalized times: exact nanoseconds in DataFusion; epoch
    /// seconds in SQL for other engines.
    fn at_most_apart(&self, earlier: Expr, later: Expr, gap: i64) -> Expr {
        if !self.portable {
            let nanoseconds = |t: Expr| cast(t, DataType::Int64);
            return (nanoseconds(later) - nanoseconds(earlier)).lt_eq(lit(gap));
        }
        let seconds = |t: Expr| date_part(lit("epoch"), t);
        (seconds(later) - seconds(earlier)).lt_eq(lit(gap as f64 / 1e9))
    }
}
