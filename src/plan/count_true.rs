//! `segql_count_true(condition)`: how many rows a condition is TRUE for (FALSE and NULL
//! do not count), SegQL's own aggregate for counting many segments in one pass.
//!
//! Each batch costs one population count of the condition's bits and validity. The
//! built-in spellings cost more: `count(CASE WHEN c THEN 1 END)` builds an integer array
//! per segment and batch (for 50 segments over a million profiles, a second of CPU), and
//! `count(*) FILTER (WHERE c)` copies the whole batch per segment. Plans use it where they
//! run in this process ([`super::Planner::with_own_aggregates`]).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Expr, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct CountTrue {
    signature: Signature,
}

static COUNT_TRUE: LazyLock<Arc<AggregateUDF>> = LazyLock::new(|| {
    Arc::new(AggregateUDF::from(CountTrue {
        signature: Signature::exact(vec![DataType::Boolean], Volatility::Immutable),
    }))
});

/// The aggregate function.
pub fn count_true_udaf() -> Arc<AggregateUDF> {
    Arc::clone(&COUNT_TRUE)
}

/// `segql_count_true(condition)` as an expression.
pub fn count_true(condition: Expr) -> Expr {
    count_true_udaf().call(vec![condition])
}

impl AggregateUDFImpl for CountTrue {
    fn name(&self) -> &str {
        "segql_count_true"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(TrueCount(0)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[count]", args.name),
            DataType::Int64,
            false,
        ))])
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }
}

#[derive(Debug)]
struct TrueCount(i64);

impl Accumulator for TrueCount {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [condition] = values else {
            return Err(DataFusionError::Internal(
                "count_true takes one argument".into(),
            ));
        };
        // Counts the rows whose bit is set and valid.
        self.0 += condition.as_boolean().true_count() as i64;
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(self.0)))
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Int64(Some(self.0))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [counts] = states else {
            return Err(DataFusionError::Internal("count_true has one state".into()));
        };
        let counts = counts.as_primitive::<Int64Type>();
        self.0 += counts.iter().flatten().sum::<i64>();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{BooleanArray, Int64Array};

    #[test]
    fn counts_true_rows_only_and_merges_partial_counts() {
        let mut counter = TrueCount(0);
        let condition: ArrayRef = Arc::new(BooleanArray::from(vec![
            Some(true),
            Some(false),
            None,
            Some(true),
        ]));
        counter.update_batch(&[condition]).expect("update");
        let partial: ArrayRef = Arc::new(Int64Array::from(vec![Some(3), None, Some(4)]));
        counter.merge_batch(&[partial]).expect("merge");
        assert_eq!(
            counter.evaluate().expect("count"),
            ScalarValue::Int64(Some(9))
        );
    }
}
