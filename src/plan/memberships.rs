//! `segql_memberships(c1, ..., cn)`: the positions (from 1) of the conditions that are TRUE
//! for a row, as a list: the segments a profile is a member of, in a listing of many
//! segments (`Planner::members_of_many`), which makes one row of each membership.
//!
//! DataFusion's `array_positions(make_array(c1, ..., cn), true)` gives the same list, but
//! `make_array` copies each row's conditions one value at a time: for the benchmark's 50
//! segments over a million profiles, 50 million copies that took 3 s. This function walks
//! each condition's set bits once. Plans use it where they run in this process
//! ([`super::Planner::with_own_aggregates`]).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, ListArray, UInt64Array};
use datafusion::arrow::buffer::{OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Memberships {
    signature: Signature,
}

static MEMBERSHIPS: LazyLock<Arc<ScalarUDF>> = LazyLock::new(|| {
    Arc::new(ScalarUDF::from(Memberships {
        signature: Signature::variadic(vec![DataType::Boolean], Volatility::Immutable),
    }))
});

/// The function.
pub fn memberships_udf() -> Arc<ScalarUDF> {
    Arc::clone(&MEMBERSHIPS)
}

/// `segql_memberships(conditions...)` as an expression.
pub fn memberships(conditions: Vec<Expr>) -> Expr {
    MEMBERSHIPS.call(conditions)
}

/// The type of the list: the same as `array_positions`'.
fn list_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::UInt64, true)))
}

impl ScalarUDFImpl for Memberships {
    fn name(&self) -> &str {
        "segql_memberships"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(list_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let conditions: Vec<BooleanArray> = (args.args.into_iter())
            .map(|arg| {
                let array = arg.into_array(rows)?;
                let booleans = array.as_boolean_opt().ok_or_else(|| {
                    DataFusionError::Internal(format!(
                        "segql_memberships takes booleans, not {}",
                        array.data_type()
                    ))
                })?;
                Ok(booleans.clone())
            })
            .collect::<Result<_>>()?;
        Ok(ColumnarValue::Array(positions_of_true(&conditions, rows)))
    }
}

/// For each of `rows` rows, the positions (from 1) of the `conditions` TRUE in it.
fn positions_of_true(conditions: &[BooleanArray], rows: usize) -> ArrayRef {
    // The rows each condition is TRUE in: its values, without its nulls.
    let held: Vec<_> = (conditions.iter())
        .map(|c| match c.nulls() {
            Some(nulls) => c.values() & nulls.inner(),
            None => c.values().clone(),
        })
        .collect();
    let mut offsets = vec![0_i32; rows + 1];
    for bits in &held {
        for row in bits.set_indices() {
            offsets[row + 1] += 1;
        }
    }
    for row in 0..rows {
        offsets[row + 1] += offsets[row];
    }
    // Filled condition by condition: each row's positions come out in increasing order.
    let mut next: Vec<i32> = offsets[..rows].to_vec();
    let mut positions = vec![0_u64; offsets[rows] as usize];
    for (position, bits) in (1_u64..).zip(&held) {
        for row in bits.set_indices() {
            positions[next[row] as usize] = position;
            next[row] += 1;
        }
    }
    let field = Arc::new(Field::new_list_field(DataType::UInt64, true));
    Arc::new(ListArray::new(
        field,
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Arc::new(UInt64Array::new(ScalarBuffer::from(positions), None)),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::UInt64Type;
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Against the naive answer: each row's positions of `Some(true)`.
        #[test]
        fn positions_are_those_of_true(
            table in (1_usize..6).prop_flat_map(|n| {
                prop::collection::vec(
                    prop::collection::vec(prop::option::of(any::<bool>()), n),
                    0..40,
                )
            })
        ) {
            let rows = table.len();
            let columns = table.first().map_or(0, Vec::len);
            let conditions: Vec<BooleanArray> = (0..columns)
                .map(|c| table.iter().map(|row| row[c]).collect())
                .collect();
            let listed = positions_of_true(&conditions, rows);
            let listed = listed.as_list::<i32>();
            prop_assert_eq!(listed.len(), rows);
            for (row, values) in table.iter().enumerate() {
                let expected: Vec<u64> = (1_u64..)
                    .zip(values)
                    .filter(|(_, v)| **v == Some(true))
                    .map(|(p, _)| p)
                    .collect();
                let got = listed.value(row);
                let got: Vec<u64> = got.as_primitive::<UInt64Type>().values().to_vec();
                prop_assert_eq!(got, expected, "row {}", row);
            }
        }
    }
}
