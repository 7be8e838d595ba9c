//! `segql_any(condition)`: whether a condition is TRUE for any row of a group (FALSE and
//! NULL do not count), SegQL's own aggregate for an existence (`purchased within 30d`) in
//! an event table's grouped pass. A group without such rows is `false`, never null.
//!
//! A count compared with 0 answers the same question with a 64-bit counter per group, 8 MB
//! per existence over a million customers, written at random places as the events come.
//! This aggregate keeps one bit per group: a million customers' bits fit in a core's cache.
//! DataFusion's `bool_or` keeps a bit too, but reads and writes it through a closure per
//! row and tracks each group's nulls besides. Plans use it where they run in this process
//! ([`super::Planner::with_own_aggregates`]).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, BooleanBufferBuilder};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, Expr, GroupsAccumulator, Signature,
    Volatility,
};

use super::counted::counted_rows;

#[derive(Debug, PartialEq, Eq, Hash)]
struct AnyTrue {
    signature: Signature,
}

static ANY_TRUE: LazyLock<Arc<AggregateUDF>> = LazyLock::new(|| {
    Arc::new(AggregateUDF::from(AnyTrue {
        signature: Signature::exact(vec![DataType::Boolean], Volatility::Immutable),
    }))
});

/// The aggregate function.
pub fn any_true_udaf() -> Arc<AggregateUDF> {
    Arc::clone(&ANY_TRUE)
}

/// `segql_any(condition)` as an expression.
pub fn any_true(condition: Expr) -> Expr {
    any_true_udaf().call(vec![condition])
}

impl AggregateUDFImpl for AnyTrue {
    fn name(&self) -> &str {
        "segql_any"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Boolean(Some(false)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[any]", args.name),
            DataType::Boolean,
            false,
        ))])
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(AnyRow(false)))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(AnyGroups::default()))
    }
}

/// The rows of `condition` that are TRUE and that `filter` keeps.
fn true_rows(condition: &ArrayRef, filter: Option<&BooleanArray>) -> BooleanBuffer {
    let condition = condition.as_boolean();
    &counted_rows(filter, condition.nulls(), condition.len()) & condition.values()
}

/// Each group's bit: whether a row of it was TRUE.
#[derive(Debug)]
struct AnyGroups(BooleanBufferBuilder);

impl Default for AnyGroups {
    fn default() -> Self {
        AnyGroups(BooleanBufferBuilder::new(0))
    }
}

impl AnyGroups {
    /// Sets the bit of the group of each row of `condition` that is TRUE and that
    /// `filter` keeps.
    fn set(
        &mut self,
        condition: &ArrayRef,
        group_indices: &[usize],
        filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let bits = &mut self.0;
        bits.append_n(total_num_groups.saturating_sub(bits.len()), false);
        for row in true_rows(condition, filter).set_indices() {
            let group = group_indices.get(row).copied().ok_or_else(|| {
                DataFusionError::Internal("segql_any: a row without a group".into())
            })?;
            bits.set_bit(group, true);
        }
        Ok(())
    }

    /// The bits of the groups `emit_to` names, which leave the accumulator.
    fn take(&mut self, emit_to: EmitTo) -> BooleanArray {
        let bits = self.0.finish();
        let taken = match emit_to {
            EmitTo::All => bits.len(),
            EmitTo::First(n) => n.min(bits.len()),
        };
        self.0.append_buffer(&bits.slice(taken, bits.len() - taken));
        BooleanArray::new(bits.slice(0, taken), None)
    }
}

impl GroupsAccumulator for AnyGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let [condition] = values else {
            return Err(DataFusionError::Internal(
                "segql_any takes one condition".into(),
            ));
        };
        self.set(condition, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(Arc::new(self.take(emit_to)))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![Arc::new(self.take(emit_to))])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        let [states] = values else {
            return Err(DataFusionError::Internal("segql_any has one state".into()));
        };
        self.set(states, group_indices, None, total_num_groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let [condition] = values else {
            return Err(DataFusionError::Internal(
                "segql_any takes one condition".into(),
            ));
        };
        // Each row's own answer: TRUE and kept.
        Ok(vec![Arc::new(BooleanArray::new(
            true_rows(condition, opt_filter),
            None,
        ))])
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.0.capacity() / 8
    }
}

/// The aggregate without groups: whether any row so far was TRUE.
#[derive(Debug)]
struct AnyRow(bool);

impl AnyRow {
    fn add(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [condition] = values else {
            return Err(DataFusionError::Internal(
                "segql_any takes one condition".into(),
            ));
        };
        // `true_count` counts the rows whose bit is set and valid.
        self.0 |= condition.as_boolean().true_count() > 0;
        Ok(())
    }
}

impl Accumulator for AnyRow {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(values)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Boolean(Some(self.0)))
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Boolean(Some(self.0))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.add(states)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// One batch: each row's group, condition (None: null) and filter bit.
    type Rows = Vec<(usize, Option<bool>, bool)>;

    fn update(groups: &mut AnyGroups, rows: &Rows, total: usize) {
        let condition: ArrayRef = Arc::new(BooleanArray::from(
            rows.iter().map(|(_, c, _)| *c).collect::<Vec<_>>(),
        ));
        let indices: Vec<usize> = rows.iter().map(|(g, _, _)| *g).collect();
        let filter = BooleanArray::from(rows.iter().map(|(_, _, f)| *f).collect::<Vec<_>>());
        groups
            .update_batch(&[condition], &indices, Some(&filter), total)
            .expect("update");
    }

    /// Whether each group has a row whose condition is TRUE and whose filter bit is set.
    fn expected(batches: &[Rows], groups: usize) -> Vec<bool> {
        let mut any = vec![false; groups];
        for (group, condition, kept) in batches.iter().flatten() {
            any[*group] |= *kept && *condition == Some(true);
        }
        any
    }

    fn bits(array: &ArrayRef) -> Vec<bool> {
        assert_eq!(array.null_count(), 0, "segql_any is never null");
        array.as_boolean().values().iter().collect()
    }

    fn batches(groups: usize) -> impl Strategy<Value = Vec<Rows>> {
        let row = (
            0..groups,
            proptest::option::of(any::<bool>()),
            any::<bool>(),
        );
        prop::collection::vec(prop::collection::vec(row, 0..150), 1..4)
    }

    proptest! {
        #[test]
        fn a_group_is_true_where_a_kept_row_is_true(batches in batches(130)) {
            let mut groups = AnyGroups::default();
            for rows in &batches {
                update(&mut groups, rows, 130);
            }
            let any = groups.evaluate(EmitTo::All).expect("evaluate");
            prop_assert_eq!(bits(&any), expected(&batches, 130));
        }

        #[test]
        fn states_merged_and_first_groups_emitted_keep_every_bit(
            batches in batches(130),
            first in 0usize..140,
        ) {
            // Each batch in an accumulator of its own, whose states one accumulator merges.
            let mut merged = AnyGroups::default();
            for rows in &batches {
                let mut partial = AnyGroups::default();
                update(&mut partial, rows, 130);
                let state = partial.state(EmitTo::All).expect("state");
                let indices: Vec<usize> = (0..130).collect();
                merged.merge_batch(&state, &indices, 130).expect("merge");
            }
            let wanted = expected(&batches, 130);
            let head = merged.evaluate(EmitTo::First(first)).expect("first groups");
            let tail = merged.evaluate(EmitTo::All).expect("the other groups");
            let taken = first.min(130);
            prop_assert_eq!(bits(&head), wanted[..taken].to_vec());
            prop_assert_eq!(bits(&tail), wanted[taken..].to_vec());
        }
    }

    #[test]
    fn without_groups_it_answers_for_the_whole_input() {
        let mut one = AnyRow(false);
        let none: ArrayRef = Arc::new(BooleanArray::from(vec![Some(false), None]));
        one.update_batch(&[none]).expect("update");
        assert_eq!(
            one.evaluate().expect("any"),
            ScalarValue::Boolean(Some(false))
        );
        let some: ArrayRef = Arc::new(BooleanArray::from(vec![None, Some(true)]));
        one.update_batch(&[some]).expect("update");
        assert_eq!(
            one.evaluate().expect("any"),
            ScalarValue::Boolean(Some(true))
        );
    }
}
