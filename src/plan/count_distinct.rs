//! `segql_count_distinct(value)`: how many distinct non-null values each group has,
//! SegQL's own aggregate for counting distinct values in an event table's grouped pass.
//!
//! Portable plans count distinct values in a pass of their own (the events grouped by key
//! and value, then by key), which scans the event table once more per distinct count.
//! DataFusion's `count(DISTINCT)` keeps a hash set per group, gigabytes for a million
//! customers. This aggregate keeps the values of all groups together:
//!
//! - 64-bit primitive values (integers, floats, times) are their own codes;
//! - other values are numbered in the order they come, through their bytes (strings) or
//!   their row-format encoding (anything else), and each distinct value is kept once;
//! - each group's values numbered below 64 are the bits of one word per group, so a
//!   column of a few dozen values (categories, channels) costs a bit operation per row;
//! - every other (group, code) pair is an entry of one hash set; a row whose pair is the
//!   row before's (events come grouped by customer) is skipped without hashing.
//!
//! Its state between phases is each group's distinct values as a list. Plans use it where
//! they run in this process ([`super::Planner::with_own_aggregates`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::ArrayData;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray, UInt32Array, make_array,
    new_empty_array,
};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, OffsetBuffer};
use datafusion::arrow::compute::{concat, filter, take};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, Expr, GroupsAccumulator, Signature,
    Volatility,
};

use super::counted::counted_rows;

type FastHasher = foldhash::fast::RandomState;

#[derive(Debug, PartialEq, Eq, Hash)]
struct CountDistinct {
    signature: Signature,
}

static COUNT_DISTINCT: LazyLock<Arc<AggregateUDF>> = LazyLock::new(|| {
    Arc::new(AggregateUDF::from(CountDistinct {
        signature: Signature::any(1, Volatility::Immutable),
    }))
});

/// The aggregate function.
pub fn count_distinct_udaf() -> Arc<AggregateUDF> {
    Arc::clone(&COUNT_DISTINCT)
}

/// `segql_count_distinct(value)` as an expression.
pub fn count_distinct(value: Expr) -> Expr {
    count_distinct_udaf().call(vec![value])
}

impl AggregateUDFImpl for CountDistinct {
    fn name(&self) -> &str {
        "segql_count_distinct"
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

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let value = value_type(args.input_fields.iter().map(|field| field.data_type()))?;
        Ok(vec![Arc::new(Field::new(
            format!("{}[values]", args.name),
            list_of(value),
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let value = value_type(args.expr_fields.iter().map(|field| field.data_type()))?;
        Ok(Box::new(OneGroup(DistinctGroups::new(value)?)))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let value = value_type(args.expr_fields.iter().map(|field| field.data_type()))?;
        Ok(Box::new(DistinctGroups::new(value)?))
    }
}

/// The type of the one argument.
fn value_type<'a>(mut types: impl Iterator<Item = &'a DataType>) -> Result<DataType> {
    match (types.next(), types.next()) {
        (Some(value), None) => Ok(value.clone()),
        _ => Err(DataFusionError::Internal(
            "segql_count_distinct takes one value".into(),
        )),
    }
}

fn list_of(value: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(value, true)))
}

/// How values become codes.
#[derive(Debug)]
enum Codes {
    /// 64-bit primitives: the code is the value's bits.
    Bits,
    /// Strings and binaries: the number of the value's bytes.
    Bytes(Numbered),
    /// Any other type: the number of the value's row-format encoding.
    Rows(RowConverter, Numbered),
}

/// Distinct values numbered in the order they came, each kept once.
#[derive(Debug, Default)]
struct Numbered {
    numbers: HashMap<Box<[u8]>, u32, FastHasher>,
    /// The values numbered so far, in the order of their numbers, in chunks.
    values: Vec<ArrayRef>,
    /// Bytes the keys of `numbers` take.
    key_bytes: usize,
}

impl Numbered {
    /// The number of `bytes`, the value at `row` of `array`: a new one (noted in `new`)
    /// if it has none yet.
    fn number(&mut self, bytes: &[u8], row: usize, new: &mut Vec<u32>) -> Result<u64> {
        if let Some(&number) = self.numbers.get(bytes) {
            return Ok(u64::from(number));
        }
        let number = u32::try_from(self.numbers.len())
            .map_err(|_| DataFusionError::Internal("too many distinct values".into()))?;
        self.numbers.insert(bytes.into(), number);
        self.key_bytes += bytes.len();
        new.push(row as u32);
        Ok(u64::from(number))
    }

    /// Keeps the rows `new` of `array`, the values just numbered.
    fn keep(&mut self, array: &ArrayRef, new: &[u32]) -> Result<()> {
        if !new.is_empty() {
            let rows = UInt32Array::from(new.to_vec());
            self.values.push(take(array.as_ref(), &rows, None)?);
        }
        Ok(())
    }

    /// The values numbered `codes`, of type `data_type`.
    fn values(&mut self, codes: &[u64], data_type: &DataType) -> Result<ArrayRef> {
        if self.values.len() > 1 {
            let chunks: Vec<&dyn Array> = self.values.iter().map(|chunk| chunk.as_ref()).collect();
            self.values = vec![concat(&chunks)?];
        }
        let rows = UInt32Array::from_iter_values(codes.iter().map(|&code| code as u32));
        match self.values.first() {
            Some(values) => Ok(take(values.as_ref(), &rows, None)?),
            None => Ok(new_empty_array(data_type)),
        }
    }

    fn size(&self) -> usize {
        self.numbers.capacity() * (size_of::<(Box<[u8]>, u32)>() + 1)
            + self.key_bytes
            + (self.values.iter())
                .map(|chunk| chunk.get_array_memory_size())
                .sum::<usize>()
    }
}

/// Codes below this are bits of a group's word.
const WORD_BITS: u64 = 64;

/// The distinct values of every group.
#[derive(Debug)]
struct DistinctGroups {
    data_type: DataType,
    codes: Codes,
    /// Each group's number of distinct values.
    counts: Vec<i64>,
    /// Each group's values numbered below [`WORD_BITS`], as bits (`Bytes` and `Rows`).
    words: Vec<u64>,
    /// Every other (group, code) pair.
    pairs: HashSet<(u32, u64), FastHasher>,
    /// The rows of the current batch whose values were numbered just now.
    new: Vec<u32>,
}

impl DistinctGroups {
    fn new(data_type: DataType) -> Result<DistinctGroups> {
        let codes = if data_type.is_primitive() && data_type.primitive_width() == Some(8) {
            Codes::Bits
        } else if matches!(
            data_type,
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
        ) {
            Codes::Bytes(Numbered::default())
        } else {
            let converter = RowConverter::new(vec![SortField::new(data_type.clone())])?;
            Codes::Rows(converter, Numbered::default())
        };
        Ok(DistinctGroups {
            data_type,
            codes,
            counts: Vec::new(),
            words: Vec::new(),
            pairs: HashSet::default(),
            new: Vec::new(),
        })
    }

    /// Adds the values of `values` to the groups of their rows, where `filter` holds.
    fn insert(
        &mut self,
        values: &ArrayRef,
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total_groups: usize,
    ) -> Result<()> {
        self.counts.resize(total_groups, 0);
        if !matches!(self.codes, Codes::Bits) {
            self.words.resize(total_groups, 0);
        }
        if values.len() != groups.len() {
            return Err(DataFusionError::Internal(
                "a group for every value expected".into(),
            ));
        }
        let nulls = values.logical_nulls();
        let counted = counted_rows(filter, nulls.as_ref(), values.len());
        let DistinctGroups {
            codes,
            counts,
            words,
            pairs,
            new,
            ..
        } = self;
        new.clear();
        let mut last: Option<(u32, u64)> = None;
        let mut add = |group: usize, code: u64| {
            let group32 = group as u32;
            if code < WORD_BITS && !words.is_empty() {
                let word = &mut words[group];
                let bit = 1u64 << code;
                if *word & bit == 0 {
                    *word |= bit;
                    counts[group] += 1;
                }
            } else if last != Some((group32, code)) {
                last = Some((group32, code));
                if pairs.insert((group32, code)) {
                    counts[group] += 1;
                }
            }
        };
        match codes {
            Codes::Bits => {
                let data = values.to_data();
                let bits: &[u64] = &data.buffers()[0].typed_data::<u64>()[data.offset()..];
                for row in counted.set_indices() {
                    add(groups[row], bits[row]);
                }
            }
            Codes::Bytes(numbered) => {
                let mut each = |row: usize, bytes: &[u8]| -> Result<()> {
                    add(groups[row], numbered.number(bytes, row, new)?);
                    Ok(())
                };
                for_each_bytes(values, &counted, &mut each)?;
                numbered.keep(values, new)?;
            }
            Codes::Rows(converter, numbered) => {
                let rows = converter.convert_columns(std::slice::from_ref(values))?;
                for row in counted.set_indices() {
                    add(
                        groups[row],
                        numbered.number(rows.row(row).as_ref(), row, new)?,
                    );
                }
                numbered.keep(values, new)?;
            }
        }
        Ok(())
    }

    /// Each of the first `groups` groups' distinct values, as a list per group.
    fn lists(&mut self, groups: usize) -> Result<ArrayRef> {
        let mut members: Vec<(u32, u64)> = (self.pairs.iter())
            .filter(|(group, _)| (*group as usize) < groups)
            .copied()
            .collect();
        for (group, &word) in self.words.iter().enumerate().take(groups) {
            let mut rest = word;
            while rest != 0 {
                members.push((group as u32, u64::from(rest.trailing_zeros())));
                rest &= rest - 1;
            }
        }
        members.sort_unstable();
        let mut lengths = vec![0usize; groups];
        for &(group, _) in &members {
            lengths[group as usize] += 1;
        }
        let codes: Vec<u64> = members.into_iter().map(|(_, code)| code).collect();
        let values = match &mut self.codes {
            Codes::Bits => {
                let data = ArrayData::builder(self.data_type.clone())
                    .len(codes.len())
                    .add_buffer(Buffer::from_vec(codes))
                    .build()?;
                make_array(data)
            }
            Codes::Bytes(numbered) | Codes::Rows(_, numbered) => {
                numbered.values(&codes, &self.data_type)?
            }
        };
        let field = Arc::new(Field::new_list_field(self.data_type.clone(), true));
        Ok(Arc::new(ListArray::try_new(
            field,
            OffsetBuffer::from_lengths(lengths),
            values,
            None,
        )?))
    }

    /// Forgets the groups `emit_to` emits; the others are numbered from 0 again.
    fn drop_emitted(&mut self, emit_to: EmitTo) -> Vec<i64> {
        let counts = emit_to.take_needed(&mut self.counts);
        match emit_to {
            EmitTo::All => {
                self.words = Vec::new();
                self.pairs = HashSet::default();
            }
            EmitTo::First(n) => {
                self.words.drain(..n.min(self.words.len()));
                self.pairs = (self.pairs.drain())
                    .filter(|(group, _)| *group as usize >= n)
                    .map(|(group, code)| (group - n as u32, code))
                    .collect();
            }
        }
        counts
    }
}

/// Calls `each` with the row and bytes of each of `rows` (its set bits) of a string or
/// binary array; those rows' values are not null.
fn for_each_bytes(
    values: &ArrayRef,
    rows: &BooleanBuffer,
    each: &mut dyn FnMut(usize, &[u8]) -> Result<()>,
) -> Result<()> {
    macro_rules! rows {
        ($array:expr) => {{
            let array = $array;
            for row in rows.set_indices() {
                each(row, array.value(row).as_ref())?;
            }
        }};
    }
    match values.data_type() {
        DataType::Utf8 => rows!(values.as_string::<i32>()),
        DataType::LargeUtf8 => rows!(values.as_string::<i64>()),
        DataType::Utf8View => rows!(values.as_string_view()),
        DataType::Binary => rows!(values.as_binary::<i32>()),
        DataType::LargeBinary => rows!(values.as_binary::<i64>()),
        DataType::BinaryView => rows!(values.as_binary_view()),
        other => {
            return Err(DataFusionError::Internal(format!(
                "{other} values have no bytes"
            )));
        }
    }
    Ok(())
}

/// The values of each of a state's lists, with the group of its row, and which of them
/// count (those of null lists do not).
fn list_values(
    lists: &ArrayRef,
    groups: &[usize],
) -> Result<(ArrayRef, Vec<usize>, Option<BooleanArray>)> {
    let lists = lists.as_list_opt::<i32>().ok_or_else(|| {
        DataFusionError::Internal("segql_count_distinct's state is a list".into())
    })?;
    let offsets = lists.value_offsets();
    let (start, end) = (offsets[0] as usize, offsets[lists.len()] as usize);
    let values = lists.values().slice(start, end - start);
    let mut value_groups = Vec::with_capacity(values.len());
    let mut kept = Vec::with_capacity(values.len());
    for (row, window) in offsets.windows(2).enumerate() {
        let length = (window[1] - window[0]) as usize;
        let valid = lists.is_valid(row);
        value_groups.extend(std::iter::repeat_n(groups[row], length));
        kept.extend(std::iter::repeat_n(valid, length));
    }
    let filter = (lists.null_count() > 0).then(|| BooleanArray::from(kept));
    Ok((values, value_groups, filter))
}

impl GroupsAccumulator for DistinctGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let [values] = values else {
            return Err(DataFusionError::Internal(
                "segql_count_distinct takes one value".into(),
            ));
        };
        self.insert(values, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(Arc::new(Int64Array::from(self.drop_emitted(emit_to))))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = match emit_to {
            EmitTo::All => self.counts.len(),
            EmitTo::First(n) => n,
        };
        let lists = self.lists(groups)?;
        self.drop_emitted(emit_to);
        Ok(vec![lists])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        let [lists] = values else {
            return Err(DataFusionError::Internal(
                "segql_count_distinct has one state".into(),
            ));
        };
        let (values, groups, filter) = list_values(lists, group_indices)?;
        self.insert(&values, &groups, filter.as_ref(), total_num_groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let [values] = values else {
            return Err(DataFusionError::Internal(
                "segql_count_distinct takes one value".into(),
            ));
        };
        // Each row a list of its value, or an empty list where the value is null or the
        // filter leaves the row out.
        let nulls = values.logical_nulls();
        let counted = counted_rows(opt_filter, nulls.as_ref(), values.len());
        let counted = BooleanArray::new(counted, None);
        let lengths = counted.values().iter().map(usize::from);
        let field = Arc::new(Field::new_list_field(self.data_type.clone(), true));
        Ok(vec![Arc::new(ListArray::try_new(
            field,
            OffsetBuffer::from_lengths(lengths),
            filter(values.as_ref(), &counted)?,
            None,
        )?)])
    }

    fn size(&self) -> usize {
        let numbered = match &self.codes {
            Codes::Bits => 0,
            Codes::Bytes(numbered) => numbered.size(),
            Codes::Rows(converter, numbered) => converter.size() + numbered.size(),
        };
        size_of_val(self)
            + (self.counts.capacity() + self.words.capacity()) * size_of::<u64>()
            + self.pairs.capacity() * (size_of::<(u32, u64)>() + 1)
            + self.new.capacity() * size_of::<u32>()
            + numbered
    }
}

/// The aggregate without groups: one group, numbered 0.
#[derive(Debug)]
struct OneGroup(DistinctGroups);

impl Accumulator for OneGroup {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let rows = values.first().map_or(0, |values| values.len());
        GroupsAccumulator::update_batch(&mut self.0, values, &vec![0; rows], None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(
            self.0.counts.first().copied().unwrap_or(0),
        )))
    }

    fn size(&self) -> usize {
        GroupsAccumulator::size(&self.0)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let lists = self.0.lists(1)?;
        Ok(vec![ScalarValue::try_from_array(&lists, 0)?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let rows = states.first().map_or(0, |states| states.len());
        GroupsAccumulator::merge_batch(&mut self.0, states, &vec![0; rows], 1)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use datafusion::arrow::array::{
        BooleanArray, Float64Array, Int32Array, Int64Array, StringArray, StringViewArray,
        TimestampNanosecondArray,
    };
    use proptest::prelude::*;

    use super::*;

    /// One batch: each row's group, value (None: null) and filter bit.
    type Rows = Vec<(usize, Option<i64>, bool)>;

    /// The value `v` as an array of `data_type`: numbers, times, texts and booleans built
    /// from the same integers, so every kind of code is exercised.
    fn array_of(data_type: &DataType, values: &[Option<i64>]) -> ArrayRef {
        match data_type {
            DataType::Int64 => Arc::new(Int64Array::from(values.to_vec())),
            DataType::Float64 => Arc::new(Float64Array::from_iter(
                values.iter().map(|v| v.map(|v| v as f64 / 4.0)),
            )),
            DataType::Timestamp(_, _) => Arc::new(TimestampNanosecondArray::from(values.to_vec())),
            DataType::Utf8 => Arc::new(StringArray::from_iter(
                values.iter().map(|v| v.map(|v| format!("value {v}"))),
            )),
            // Long strings among short ones: views that point into a buffer.
            DataType::Utf8View => Arc::new(StringViewArray::from_iter(values.iter().map(|v| {
                v.map(|v| match v % 2 {
                    0 => format!("v{v}"),
                    _ => format!("a string longer than a view can hold {v}"),
                })
            }))),
            DataType::Int32 => Arc::new(Int32Array::from_iter(
                values.iter().map(|v| v.map(|v| v as i32)),
            )),
            DataType::Boolean => Arc::new(BooleanArray::from_iter(
                values.iter().map(|v| v.map(|v| v % 2 == 0)),
            )),
            other => panic!("no test values of type {other}"),
        }
    }

    /// The types the tests count: 64-bit codes, numbered bytes and numbered rows.
    fn types() -> Vec<DataType> {
        vec![
            DataType::Int64,
            DataType::Float64,
            DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Nanosecond, None),
            DataType::Utf8,
            DataType::Utf8View,
            DataType::Int32,
            DataType::Boolean,
        ]
    }

    /// The reference: each group's distinct values (as the test value they were built
    /// from; booleans have two).
    fn expected(data_type: &DataType, batches: &[Rows], groups: usize) -> Vec<i64> {
        let mut sets: BTreeMap<usize, BTreeSet<i64>> = BTreeMap::new();
        for (group, value, kept) in batches.iter().flatten() {
            if let (Some(value), true) = (value, kept) {
                let value = match data_type {
                    DataType::Boolean => i64::from(value % 2 == 0),
                    _ => *value,
                };
                sets.entry(*group).or_default().insert(value);
            }
        }
        (0..groups)
            .map(|group| sets.get(&group).map_or(0, |set| set.len() as i64))
            .collect()
    }

    fn update(groups: &mut DistinctGroups, data_type: &DataType, rows: &Rows, total: usize) {
        let values: Vec<Option<i64>> = rows.iter().map(|(_, value, _)| *value).collect();
        let indices: Vec<usize> = rows.iter().map(|(group, _, _)| *group).collect();
        let filter = BooleanArray::from_iter(rows.iter().map(|(_, _, kept)| Some(*kept)));
        groups
            .update_batch(
                &[array_of(data_type, &values)],
                &indices,
                Some(&filter),
                total,
            )
            .expect("update");
    }

    fn counts(array: ArrayRef) -> Vec<i64> {
        array
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .values()
            .to_vec()
    }

    /// Batches of rows over `groups` groups, with values from a range wide enough for
    /// more than 64 numbered values, runs of the same value in a group, nulls and rows the
    /// filter leaves out.
    fn batches(groups: usize) -> impl Strategy<Value = Vec<Rows>> {
        let row = (
            0..groups,
            prop::option::weighted(0.9, -3i64..150),
            prop::bool::weighted(0.8),
        );
        let run = (row, 1usize..4).prop_map(|(row, length)| vec![row; length]);
        let batch = prop::collection::vec(run, 0..40).prop_map(|runs| runs.concat());
        prop::collection::vec(batch, 1..4)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn counts_each_groups_distinct_values(batches in batches(6)) {
            for data_type in types() {
                let mut groups = DistinctGroups::new(data_type.clone()).expect("an accumulator");
                for rows in &batches {
                    update(&mut groups, &data_type, rows, 6);
                }
                let found = counts(groups.evaluate(EmitTo::All).expect("counts"));
                prop_assert_eq!(found, expected(&data_type, &batches, 6), "{}", data_type);
            }
        }

        #[test]
        fn states_merged_give_the_same_counts(batches in batches(6), split in 0usize..4) {
            // The batches split between two accumulators whose states, the first groups
            // emitted before the rest, merge into a third, where groups arrive renumbered.
            for data_type in types() {
                let (mut left, mut right) = (
                    DistinctGroups::new(data_type.clone()).expect("an accumulator"),
                    DistinctGroups::new(data_type.clone()).expect("an accumulator"),
                );
                for side in [&mut left, &mut right] {
                    update(side, &data_type, &Vec::new(), 6);
                }
                for (at, rows) in batches.iter().enumerate() {
                    let side = if at < split { &mut left } else { &mut right };
                    update(side, &data_type, rows, 6);
                }
                let mut merged = DistinctGroups::new(data_type.clone()).expect("an accumulator");
                for side in [&mut left, &mut right] {
                    let first = side.state(EmitTo::First(2)).expect("a state");
                    let rest = side.state(EmitTo::All).expect("a state");
                    merged.merge_batch(&first, &[0, 1], 6).expect("merged");
                    merged.merge_batch(&rest, &[2, 3, 4, 5], 6).expect("merged");
                }
                let found = counts(merged.evaluate(EmitTo::All).expect("counts"));
                prop_assert_eq!(found, expected(&data_type, &batches, 6), "{}", data_type);
            }
        }

        #[test]
        fn rows_converted_to_states_count_once_each(batch in batches(1)) {
            // Each row its own group: a list of its value, or empty where it does not count.
            for data_type in types() {
                let rows = &batch[0];
                let values: Vec<Option<i64>> = rows.iter().map(|(_, value, _)| *value).collect();
                let filter = BooleanArray::from_iter(rows.iter().map(|(_, _, kept)| Some(*kept)));
                let groups = DistinctGroups::new(data_type.clone()).expect("an accumulator");
                let states = groups
                    .convert_to_state(&[array_of(&data_type, &values)], Some(&filter))
                    .expect("states");
                let mut merged = DistinctGroups::new(data_type.clone()).expect("an accumulator");
                let each: Vec<usize> = (0..rows.len()).collect();
                merged.merge_batch(&states, &each, rows.len()).expect("merged");
                let found = counts(merged.evaluate(EmitTo::All).expect("counts"));
                let expected: Vec<i64> = rows
                    .iter()
                    .map(|(_, value, kept)| i64::from(value.is_some() && *kept))
                    .collect();
                prop_assert_eq!(found, expected, "{}", data_type);
            }
        }
    }

    #[test]
    fn evaluating_the_first_groups_keeps_the_others() {
        let data_type = DataType::Utf8View;
        let mut groups = DistinctGroups::new(data_type.clone()).expect("an accumulator");
        let rows: Rows = (0..200)
            .map(|v| ((v % 3) as usize, Some(v % 90), true))
            .collect();
        update(&mut groups, &data_type, &rows, 3);
        let first = counts(groups.evaluate(EmitTo::First(1)).expect("counts"));
        // The groups left are numbered from 0 and go on counting.
        update(
            &mut groups,
            &data_type,
            &vec![(0, Some(1000), true), (1, Some(1), true)],
            2,
        );
        let rest = counts(groups.evaluate(EmitTo::All).expect("counts"));
        assert_eq!([first, rest].concat(), [30, 31, 31]);
    }

    #[test]
    fn without_groups_it_counts_the_whole_input() {
        let mut accumulator =
            OneGroup(DistinctGroups::new(DataType::Utf8).expect("an accumulator"));
        assert_eq!(
            accumulator.evaluate().expect("a count"),
            ScalarValue::Int64(Some(0))
        );
        let values = array_of(&DataType::Utf8, &[Some(1), Some(2), None, Some(1)]);
        accumulator.update_batch(&[values]).expect("update");
        let state = accumulator.state().expect("a state");
        let mut merged = OneGroup(DistinctGroups::new(DataType::Utf8).expect("an accumulator"));
        let state = ScalarValue::iter_to_array(state).expect("a state array");
        merged.merge_batch(&[state]).expect("merged");
        let more = array_of(&DataType::Utf8, &[Some(3), Some(2)]);
        merged.update_batch(&[more]).expect("update");
        assert_eq!(
            merged.evaluate().expect("a count"),
            ScalarValue::Int64(Some(3))
        );
    }
}
