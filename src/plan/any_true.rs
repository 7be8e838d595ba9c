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

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
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
        Ok(Box::new(OneGroup(AnyGroups::default())))
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

/// Each group's bit: whether a row of it was TRUE.
#[derive(Debug, Default)]
struct AnyGroups {
    /// Bit `g % 64` of word `g / 64` is group `g`'s.
    words: Vec<u64>,
    /// How many groups there are.
    groups: usize,
}

impl AnyGroups {
    fn grow(&mut self, total_num_groups: usize) {
        self.groups = self.groups.max(total_num_groups);
        self.words.resize(self.groups.div_ceil(64), 0);
    }

    /// Sets the bit of the group of each row of `condition` that is TRUE and that
    /// `filter` keeps.
    fn set(
        &mut self,
        condition: &ArrayRef,
        group_indices: &[usize],
        filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.grow(total_num_groups);
        let condition = condition.as_boolean();
        let rows = counted_rows(filter, condition.nulls(), condition.len());
        let rows = &rows & condition.values();
        for row in rows.set_indices() {
            let group = group_indices.get(row).copied().ok_or_else(|| {
                DataFusionError::Internal("segql_any: a row without a group".into())
            })?;
            self.words[group / 64] |= 1 << (group % 64);
        }
        Ok(())
    }

    /// The bits of the groups `emit_to` names, which leave the accumulator.
    fn take(&mut self, emit_to: EmitTo) -> BooleanArray {
        let taken = match emit_to {
            EmitTo::All => self.groups,
            EmitTo::First(n) => n.min(self.groups),
        };
        let bits = BooleanBuffer::new(std::mem::take(&mut self.words).into(), 0, self.groups);
        let remaining = bits.slice(taken, self.groups - taken);
        self.groups = remaining.len();
        self.words = vec![0; self.groups.div_ceil(64)];
        for group in remaining.set_indices() {
            self.words[group / 64] |= 1 << (group % 64);
        }
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
        let condition = condition.as_boolean();
        let rows = counted_rows(opt_filter, condition.nulls(), condition.len());
        Ok(vec![Arc::new(BooleanArray::new(
            &rows & condition.values(),
            None,
        ))])
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.words.capacity() * size_of::<u64>()
    }
}

/// The aggregate without groups: one group, numbered 0.
#[derive(Debug)]
struct OneGroup(AnyGroups);

impl Accumulator for OneGroup {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let rows = values.first().map_or(0, |values| values.len());
        GroupsAccumulator::update_batch(&mut self.0, values, &vec![0; rows], None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Boolean(Some(self.any())))
    }

    fn size(&self) -> usize {
        GroupsAccumulator::size(&self.0)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Boolean(Some(self.any()))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let rows = states.first().map_or(0, |states| states.len());
        GroupsAccumulator::merge_batch(&mut self.0, states, &vec![0; rows], 1)
    }
}

impl OneGroup {
    fn any(&self) -> bool {
        self.0.words.first().is_some_and(|word| word & 1 != 0)
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
        let mut one = OneGroup(AnyGroups::default());
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
