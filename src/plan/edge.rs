//! `first` and `last` of a value as one aggregate in the grouped pass: SegQL's own
//! `segql_first(value, time)` and `segql_last(value, time)`.
//!
//! The value at the earliest (latest) event by time; among the events at that time, the
//! smallest (largest) non-null value, as the language defines it. Each group keeps its
//! edge time and where its value is (a retained input array and a row), so a batch costs
//! one comparison of times per row; a batch the edge of few groups keeps their values only,
//! copied out, and the others are gathered once, when the groups are emitted. The
//! retained arrays are compacted to one value per group when they hold more than twice as
//! many rows as there are groups, so memory stays bounded by the groups, not by the
//! events.
//!
//! DataFusion's ordered `first_value` keeps each group's ordering as a row of boxed scalar
//! values (a second per measure over a million customers), and the portable alternative,
//! an edge pass, scans the events a second time and joins them back. Plans use these
//! aggregates when they run in this process ([`Planner::with_own_aggregates`]); plans for
//! other engines and for Ballista use the edge pass, built from DataFusion built-ins.
//!
//! [`Planner::with_own_aggregates`]: super::Planner::with_own_aggregates

use std::cmp::Ordering;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBufferBuilder, Int64Array, UInt32Array,
    new_null_array,
};
use datafusion::arrow::compute::kernels::boolean::not;
use datafusion::arrow::compute::kernels::filter::prep_null_mask_filter;
use datafusion::arrow::compute::{cast, interleave, nullif, take as take_rows};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, Expr, GroupsAccumulator, Signature,
    Volatility,
};

use super::counted::counted_rows;

/// Which edge of the events an aggregate takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Edge {
    /// `first`: the earliest event; ties to the smallest value.
    First,
    /// `last`: the latest event; ties to the largest value.
    Last,
}

impl Edge {
    /// Whether an event at `time` replaces the kept edge (`kept`, the kept edge's time,
    /// `None` before any event): an earlier (later) event does; at the same time, the
    /// values decide, `tie` telling whether the event's value wins (see [`Edge::wins_tie`]).
    fn replaces(
        self,
        time: i64,
        kept: Option<i64>,
        tie: impl FnOnce() -> Result<bool>,
    ) -> Result<bool> {
        let Some(kept) = kept else {
            return Ok(true);
        };
        let order = match self {
            Edge::First => kept.cmp(&time),
            Edge::Last => time.cmp(&kept),
        };
        match order {
            Ordering::Greater => Ok(true),
            Ordering::Less => Ok(false),
            Ordering::Equal => tie(),
        }
    }

    /// Whether `value` wins a tie against `kept`: smaller (larger), nulls never winning
    /// over a value.
    fn wins_tie(self, value: &ScalarValue, kept: &ScalarValue) -> bool {
        match (value.is_null(), kept.is_null()) {
            (true, _) => false,
            (false, true) => true,
            (false, false) => match self {
                Edge::First => value.partial_cmp(kept) == Some(Ordering::Less),
                Edge::Last => value.partial_cmp(kept) == Some(Ordering::Greater),
            },
        }
    }
}

/// The aggregate `segql_first(value, time)` or `segql_last(value, time)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct EdgeValue {
    edge: Edge,
    signature: Signature,
}

static FIRST: LazyLock<Arc<AggregateUDF>> =
    LazyLock::new(|| Arc::new(AggregateUDF::from(EdgeValue::new(Edge::First))));
static LAST: LazyLock<Arc<AggregateUDF>> =
    LazyLock::new(|| Arc::new(AggregateUDF::from(EdgeValue::new(Edge::Last))));

/// The aggregate function of `edge`.
pub fn edge_udaf(edge: Edge) -> Arc<AggregateUDF> {
    match edge {
        Edge::First => Arc::clone(&FIRST),
        Edge::Last => Arc::clone(&LAST),
    }
}

/// `segql_first(value, time)` or `segql_last(value, time)` as an expression.
pub fn edge_value(edge: Edge, value: Expr, time: Expr) -> Expr {
    edge_udaf(edge).call(vec![value, time])
}

impl EdgeValue {
    fn new(edge: Edge) -> EdgeValue {
        EdgeValue {
            edge,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for EdgeValue {
    fn name(&self) -> &str {
        match self.edge {
            Edge::First => "segql_first",
            Edge::Last => "segql_last",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        arg_types
            .first()
            .cloned()
            .ok_or_else(|| DataFusionError::Plan(format!("{} takes a value", self.name())))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(EdgeAccumulator {
            edge: self.edge,
            time: None,
            value: ScalarValue::try_from(args.return_type())?,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[value]", args.name),
                args.return_type().clone(),
                true,
            )),
            Arc::new(Field::new(
                format!("{}[time]", args.name),
                DataType::Int64,
                true,
            )),
        ])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(EdgeGroups::new(
            self.edge,
            args.return_type().clone(),
        )))
    }
}

/// The two columns of the aggregate's arguments, or of its state: the value and the time.
fn value_and_time(columns: &[ArrayRef]) -> Result<(&ArrayRef, &ArrayRef)> {
    match columns {
        [value, time] => Ok((value, time)),
        _ => Err(DataFusionError::Internal(format!(
            "an edge value has a value and a time, not {} columns",
            columns.len()
        ))),
    }
}

/// A time argument as plain integers of its unit (the order of any timestamp column).
fn times(time: &ArrayRef) -> Result<ArrayRef> {
    Ok(match time.data_type() {
        DataType::Int64 => Arc::clone(time),
        _ => cast(time, &DataType::Int64)?,
    })
}

/// The state of every group: its edge time and where its value is.
struct EdgeGroups {
    edge: Edge,
    data_type: DataType,
    /// Each group's edge time; meaningful where `seen`.
    times: Vec<i64>,
    seen: Vec<bool>,
    /// Each group's value: an index into `arrays` and a row of that array.
    at: Vec<(u32, u32)>,
    /// The input arrays some group's value is in.
    arrays: Vec<ArrayRef>,
    /// The rows of `arrays`, to know when to compact them.
    retained_rows: usize,
}

impl EdgeGroups {
    fn new(edge: Edge, data_type: DataType) -> EdgeGroups {
        EdgeGroups {
            edge,
            data_type,
            times: Vec::new(),
            seen: Vec::new(),
            at: Vec::new(),
            arrays: Vec::new(),
            retained_rows: 0,
        }
    }

    fn resize(&mut self, groups: usize) {
        self.times.resize(groups, 0);
        self.seen.resize(groups, false);
        self.at.resize(groups, (0, 0));
    }

    /// Takes the events of `values` (rows where `keep` is not false and the time is not
    /// null) into their groups.
    ///
    /// The groups whose edge is now in this batch keep their values only: when they are
    /// fewer than half the rows, their values are copied out and the batch is dropped, so
    /// the input sorted by key (each batch the edge of few groups) retains a value per
    /// group, not every row.
    fn take(
        &mut self,
        values: &ArrayRef,
        times: &ArrayRef,
        groups: &[usize],
        keep: Option<&BooleanArray>,
        total_groups: usize,
    ) -> Result<()> {
        self.resize(total_groups);
        let times = self::times(times)?;
        let times = times.as_primitive::<Int64Type>();
        let array = u32::try_from(self.arrays.len())
            .map_err(|_| DataFusionError::Internal("too many retained arrays".into()))?;
        self.arrays.push(Arc::clone(values));
        // The groups whose edge is in this batch, each once.
        let mut in_batch = Vec::new();
        let time_values = times.values();
        let counted = counted_rows(keep, times.nulls(), groups.len());
        for row in counted.set_indices() {
            let group = groups[row];
            let time = time_values[row];
            let kept = self.seen[group].then(|| self.times[group]);
            let replace = self.edge.replaces(time, kept, || {
                let (kept_array, kept_row) = self.at[group];
                let kept = ScalarValue::try_from_array(
                    &self.arrays[kept_array as usize],
                    kept_row as usize,
                )?;
                Ok(self
                    .edge
                    .wins_tie(&ScalarValue::try_from_array(values, row)?, &kept))
            })?;
            if replace {
                // A seen group points into a retained array before this one, or into
                // this batch if an earlier row of it replaced its edge.
                if !self.seen[group] || self.at[group].0 != array {
                    in_batch.push(group);
                }
                self.seen[group] = true;
                self.times[group] = time;
                self.at[group] = (array, row as u32);
            }
        }
        if in_batch.is_empty() {
            self.arrays.pop();
            return Ok(());
        }
        if in_batch.len() <= values.len() / 2 {
            let rows: UInt32Array = in_batch.iter().map(|&g| self.at[g].1).collect();
            self.arrays[array as usize] = take_rows(values.as_ref(), &rows, None)?;
            for (row, &group) in in_batch.iter().enumerate() {
                self.at[group].1 = row as u32;
            }
            self.retained_rows += in_batch.len();
        } else {
            self.retained_rows += values.len();
        }
        if self.retained_rows > 2 * self.at.len() + 8192 {
            self.compact()?;
        }
        Ok(())
    }

    /// The values of the first `groups` groups (null where a group has no event).
    fn values(&self, groups: usize) -> Result<ArrayRef> {
        if self.arrays.is_empty() || groups == 0 {
            return Ok(new_null_array(&self.data_type, groups));
        }
        let arrays: Vec<&dyn Array> = self.arrays.iter().map(|a| a.as_ref()).collect();
        let indices: Vec<(usize, usize)> = (self.at[..groups].iter())
            .map(|&(array, row)| (array as usize, row as usize))
            .collect();
        let values = interleave(&arrays, &indices)?;
        if self.seen[..groups].iter().all(|&seen| seen) {
            return Ok(values);
        }
        let unseen = BooleanArray::from_iter(self.seen[..groups].iter().map(|&s| Some(!s)));
        Ok(nullif(&values, &unseen)?)
    }

    /// Replaces the retained arrays by one holding each group's value.
    fn compact(&mut self) -> Result<()> {
        let values = self.values(self.at.len())?;
        self.retained_rows = values.len();
        self.arrays = vec![values];
        for (group, at) in self.at.iter_mut().enumerate() {
            *at = (0, group as u32);
        }
        Ok(())
    }

    /// Takes the first groups out (all, or `n`), shifting the others down.
    fn emit(&mut self, emit_to: EmitTo) -> Result<(ArrayRef, Vec<i64>, Vec<bool>)> {
        let groups = match emit_to {
            EmitTo::All => self.at.len(),
            EmitTo::First(n) => n,
        };
        let values = self.values(groups)?;
        let times = emit_to.take_needed(&mut self.times);
        let seen = emit_to.take_needed(&mut self.seen);
        emit_to.take_needed(&mut self.at);
        if self.at.is_empty() {
            self.arrays.clear();
            self.retained_rows = 0;
        }
        Ok((values, times, seen))
    }
}

impl GroupsAccumulator for EdgeGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let (value, time) = value_and_time(values)?;
        self.take(value, time, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(self.emit(emit_to)?.0)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (values, times, seen) = self.emit(emit_to)?;
        let mut validity = BooleanBufferBuilder::new(seen.len());
        for seen in seen {
            validity.append(seen);
        }
        let times = Int64Array::new(times.into(), Some(validity.finish().into()));
        Ok(vec![values, Arc::new(times)])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        let (value, time) = value_and_time(values)?;
        self.take(value, time, group_indices, None, total_num_groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let (value, time) = value_and_time(values)?;
        let mut time = times(time)?;
        if let Some(filter) = opt_filter {
            // Rows the filter leaves out (false or null) become states without an event.
            let left_out = if filter.null_count() > 0 {
                not(&prep_null_mask_filter(filter))?
            } else {
                not(filter)?
            };
            time = nullif(&time, &left_out)?;
        }
        Ok(vec![Arc::clone(value), time])
    }

    fn size(&self) -> usize {
        self.times.capacity() * size_of::<i64>()
            + self.seen.capacity()
            + self.at.capacity() * size_of::<(u32, u32)>()
            + (self.arrays.iter())
                .map(|a| a.get_array_memory_size())
                .sum::<usize>()
    }
}

/// The same aggregate without groups.
#[derive(Debug)]
struct EdgeAccumulator {
    edge: Edge,
    time: Option<i64>,
    value: ScalarValue,
}

impl EdgeAccumulator {
    fn take(&mut self, values: &ArrayRef, times: &ArrayRef) -> Result<()> {
        let times = self::times(times)?;
        let times = times.as_primitive::<Int64Type>();
        for row in 0..values.len() {
            if times.is_null(row) {
                continue;
            }
            let time = times.value(row);
            let replace = self.edge.replaces(time, self.time, || {
                let value = ScalarValue::try_from_array(values, row)?;
                Ok(self.edge.wins_tie(&value, &self.value))
            })?;
            if replace {
                self.time = Some(time);
                self.value = ScalarValue::try_from_array(values, row)?;
            }
        }
        Ok(())
    }
}

impl Accumulator for EdgeAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (value, time) = value_and_time(values)?;
        self.take(value, time)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.value.clone())
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.value.size() - size_of_val(&self.value)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.value.clone(), ScalarValue::Int64(self.time)])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;

    fn strings(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    fn ints(values: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(values.to_vec()))
    }

    fn texts(array: &ArrayRef) -> Vec<Option<String>> {
        let array = array.as_string::<i32>();
        (0..array.len())
            .map(|i| array.is_valid(i).then(|| array.value(i).to_string()))
            .collect()
    }

    /// Group 0: a tie at the earliest time (smallest value wins for `first`, largest for
    /// `last`) and a null value at the latest; group 1: a null at the edge time beside a
    /// value (the value wins); group 2: only filtered-out rows; group 3: no rows.
    fn groups(edge: Edge) -> EdgeGroups {
        let mut groups = EdgeGroups::new(edge, DataType::Utf8);
        let values = strings(&[Some("b"), Some("a"), None, None, Some("x"), Some("z")]);
        let times = ints(&[Some(1), Some(1), Some(9), Some(5), Some(5), Some(0)]);
        let keep = BooleanArray::from(vec![
            Some(true),
            Some(true),
            Some(true),
            Some(true),
            Some(true),
            None,
        ]);
        groups
            .update_batch(&[values, times], &[0, 0, 0, 1, 1, 2], Some(&keep), 4)
            .expect("update");
        groups
    }

    #[test]
    fn first_takes_the_earliest_event_and_the_smallest_value_of_a_tie() {
        let values = groups(Edge::First).evaluate(EmitTo::All).expect("values");
        let expected = [Some("a"), Some("x"), None, None].map(|v| v.map(String::from));
        assert_eq!(texts(&values), expected);
    }

    #[test]
    fn last_takes_the_latest_event_and_the_largest_value_of_a_tie() {
        let values = groups(Edge::Last).evaluate(EmitTo::All).expect("values");
        // Group 0's latest event has no value: the value at the latest time is null.
        let expected = [None, Some("x"), None, None].map(|v| v.map(String::from));
        assert_eq!(texts(&values), expected);
    }

    #[test]
    fn partial_states_merge_to_the_same_values_and_emit_in_parts() {
        for edge in [Edge::First, Edge::Last] {
            let whole = groups(edge).evaluate(EmitTo::All).expect("values");
            // Each row a partial state of its own, merged in reverse order.
            let values = strings(&[Some("b"), Some("a"), None, None, Some("x"), Some("z")]);
            let times = ints(&[Some(1), Some(1), Some(9), Some(5), Some(5), Some(0)]);
            let keep = BooleanArray::from(vec![true, true, true, true, true, false]);
            let single = EdgeGroups::new(edge, DataType::Utf8);
            let state = single
                .convert_to_state(&[values, times], Some(&keep))
                .expect("state");
            let mut merged = EdgeGroups::new(edge, DataType::Utf8);
            let groups = [0, 0, 0, 1, 1, 2];
            for row in (0..6).rev() {
                let slice: Vec<ArrayRef> = state.iter().map(|a| a.slice(row, 1)).collect();
                merged
                    .merge_batch(&slice, &groups[row..=row], 4)
                    .expect("merge");
            }
            let first_two = merged.evaluate(EmitTo::First(2)).expect("values");
            let rest = merged.evaluate(EmitTo::All).expect("values");
            assert_eq!(texts(&first_two), texts(&whole.slice(0, 2)), "{edge:?}");
            assert_eq!(texts(&rest), texts(&whole.slice(2, 2)), "{edge:?}");
        }
    }

    #[test]
    fn without_groups_the_same_edges_are_taken() {
        for (edge, expected) in [(Edge::First, Some("a")), (Edge::Last, None)] {
            let mut accumulator = EdgeAccumulator {
                edge,
                time: None,
                value: ScalarValue::Utf8(None),
            };
            let values = strings(&[Some("b"), Some("a"), None]);
            let times = ints(&[Some(1), Some(1), Some(9)]);
            accumulator.update_batch(&[values, times]).expect("update");
            let expected = ScalarValue::Utf8(expected.map(String::from));
            assert_eq!(accumulator.evaluate().expect("value"), expected, "{edge:?}");
        }
    }

    #[test]
    fn retained_arrays_are_compacted_to_one_value_per_group() {
        let mut groups = EdgeGroups::new(Edge::Last, DataType::Int64);
        for batch in 0..20i64 {
            let values = ints(&vec![Some(batch); 1000]);
            let times = ints(&vec![Some(batch); 1000]);
            let indices: Vec<usize> = (0..1000).map(|row| row % 10).collect();
            groups
                .update_batch(&[values, times], &indices, None, 10)
                .expect("update");
        }
        assert!(groups.retained_rows <= 2 * 10 + 8192 + 1000);
        let values = groups.evaluate(EmitTo::All).expect("values");
        let values = values.as_primitive::<Int64Type>();
        assert!(values.iter().all(|v| v == Some(19)));
    }

    #[test]
    fn a_batch_sorted_by_key_keeps_only_the_values_of_its_groups() {
        let mut groups = EdgeGroups::new(Edge::Last, DataType::Int64);
        for batch in 0..100usize {
            // Ten events per group, the groups in order: each batch the edge of 100 groups.
            let indices: Vec<usize> = (0..1000).map(|row| (batch * 1000 + row) / 10).collect();
            let values = ints(&indices.iter().map(|&g| Some(g as i64)).collect::<Vec<_>>());
            let times = ints(&(0..1000).map(|row| Some(row as i64)).collect::<Vec<_>>());
            groups
                .update_batch(&[values, times], &indices, None, (batch + 1) * 100)
                .expect("update");
            assert_eq!(groups.retained_rows, (batch + 1) * 100);
        }
        let values = groups.evaluate(EmitTo::All).expect("values");
        let values = values.as_primitive::<Int64Type>();
        assert!(values.iter().enumerate().all(|(g, v)| v == Some(g as i64)));
    }

    /// An event: its group, time, value and whether the filter keeps it.
    type Event = (usize, Option<i64>, Option<u8>, bool);

    /// The edge of each group by definition: among its kept events at the earliest
    /// (latest) time, the smallest (largest) value, null if they are all null.
    fn naive_edges(edge: Edge, batches: &[Vec<Event>], groups: usize) -> Vec<Option<String>> {
        (0..groups)
            .map(|group| {
                let events: Vec<(i64, Option<u8>)> = (batches.iter().flatten())
                    .filter(|&&(g, time, _, keep)| g == group && keep && time.is_some())
                    .map(|&(_, time, value, _)| (time.unwrap_or_default(), value))
                    .collect();
                let edge_time = match edge {
                    Edge::First => events.iter().map(|e| e.0).min(),
                    Edge::Last => events.iter().map(|e| e.0).max(),
                }?;
                let at_edge = events.iter().filter(|e| e.0 == edge_time);
                let value = match edge {
                    Edge::First => at_edge.filter_map(|e| e.1).min(),
                    Edge::Last => at_edge.filter_map(|e| e.1).max(),
                };
                value.map(|v| format!("v{v:03}"))
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn edges_match_their_definition_over_batches_of_any_shape(
            batches in proptest::collection::vec(
                proptest::collection::vec(
                    (0usize..40, proptest::option::weighted(0.95, 0i64..6),
                     proptest::option::weighted(0.9, 0u8..50), proptest::bool::weighted(0.9)),
                    0..300,
                ),
                1..12,
            ),
            sorted in proptest::bool::ANY,
        ) {
            let mut batches = batches;
            if sorted {
                // Sorted by group, as a file sorted by key: each batch the edge of few
                // groups, whose values are copied out of it.
                let mut all: Vec<_> = batches.concat();
                all.sort_by_key(|event| event.0);
                let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
                let mut rest = all.as_slice();
                batches = sizes.iter().map(|&n| {
                    let (batch, tail) = rest.split_at(n);
                    rest = tail;
                    batch.to_vec()
                }).collect();
            }
            for edge in [Edge::First, Edge::Last] {
                let mut accumulator = EdgeGroups::new(edge, DataType::Utf8);
                let mut groups_seen = 0;
                for batch in &batches {
                    groups_seen = batch.iter().map(|e| e.0 + 1).fold(groups_seen, usize::max);
                    let values: Vec<Option<String>> =
                        batch.iter().map(|e| e.2.map(|v| format!("v{v:03}"))).collect();
                    let values: ArrayRef = Arc::new(StringArray::from(values));
                    let times = ints(&batch.iter().map(|e| e.1).collect::<Vec<_>>());
                    let keep = BooleanArray::from(batch.iter().map(|e| e.3).collect::<Vec<_>>());
                    let groups: Vec<usize> = batch.iter().map(|e| e.0).collect();
                    accumulator
                        .update_batch(&[values, times], &groups, Some(&keep), groups_seen)
                        .expect("update");
                    proptest::prop_assert!(
                        accumulator.retained_rows <= 2 * groups_seen + 8192 + batch.len()
                    );
                }
                let values = accumulator.evaluate(EmitTo::All).expect("values");
                proptest::prop_assert_eq!(texts(&values), naive_edges(edge, &batches, groups_seen));
            }
        }
    }
}
