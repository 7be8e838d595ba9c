//! Grouping by an integer key without hashing it.
//!
//! A grouped pass of a gather's relation groups an event table by its key, usually a
//! customer number from a range not much wider than the number of customers.
//! DataFusion's aggregation finds each row's group in a hash table: it hashes the key,
//! probes and compares, and grows the table as groups come. [`DenseKeyAggregateExec`]
//! finds it in an array addressed by the key itself (its distance from the range's low
//! end), one load per row, and hands the groups to DataFusion's own accumulators, which
//! compute every aggregate exactly as in DataFusion's operator.
//!
//! The array covers the keys seen so far and grows (doubling) as wider keys come, as long
//! as it stays within [`SLOTS_PER_ROW`] slots per row read, or [`MIN_SLOTS`] whatever the
//! rows. Keys it does not cover (the table's keys are sparse, or it could not grow yet)
//! are found in a hash map, and move into the array when it grows over them. A null key
//! is one group of its own, as in DataFusion. The groups come out in the order they
//! came in, as DataFusion's do.
//!
//! [`groups_by_key`] decides where it applies: one-phase aggregations (mode `Single`)
//! grouped by one `Int64` column, every aggregate with a groups accumulator, no
//! `DISTINCT` and no `ORDER BY` in them. [`super::gather::SinglePhaseRelations`] uses it
//! for the relations it makes one-phase.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::arrow::compute::{max, min};
use datafusion::arrow::datatypes::{DataType, Int64Type, Schema};
use datafusion::common::internal_err;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet, Time,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};

/// How many slots per row read the array may have.
pub const SLOTS_PER_ROW: usize = 16;
/// The slots the array may have whatever the rows: 64K (256 KB). A pass of a few thousand
/// rows over a million customers' keys finds its groups in the hash map rather than
/// filling and faulting in an array of 4 MB; a pass over many rows has its array for a
/// million keys after 64K rows, and moves the groups of those rows into it.
pub const MIN_SLOTS: usize = 1 << 16;
/// No group yet.
const NO_GROUP: u32 = u32::MAX;

/// `aggregate`'s groups and aggregates, computed in one phase over `input`.
pub fn one_phase(
    aggregate: &AggregateExec,
    input: Arc<dyn ExecutionPlan>,
) -> Result<AggregateExec> {
    AggregateExec::try_new(
        AggregateMode::Single,
        aggregate.group_expr().clone(),
        aggregate.aggr_expr().to_vec(),
        aggregate.filter_expr().to_vec(),
        input,
        aggregate.input_schema(),
    )
}

/// Whether [`DenseKeyAggregateExec`] computes `aggregate`: one phase over one partition,
/// grouped by one `Int64` expression, every aggregate with a groups accumulator and
/// neither `DISTINCT` nor `ORDER BY`.
pub fn groups_by_key(aggregate: &AggregateExec) -> bool {
    let group_by = aggregate.group_expr();
    let [(key, _)] = group_by.expr() else {
        return false;
    };
    let input = aggregate.input();
    *aggregate.mode() == AggregateMode::Single
        && aggregate.limit_options().is_none()
        && group_by.is_single()
        && group_by.null_expr().is_empty()
        && key.data_type(input.schema().as_ref()).ok() == Some(DataType::Int64)
        && input.output_partitioning().partition_count() == 1
        && aggregate.aggr_expr().iter().all(|function| {
            function.groups_accumulator_supported()
                && !function.is_distinct()
                && function.order_bys().is_empty()
        })
}

/// The aggregates a [`DenseKeyAggregateExec`] may compute in a key range
/// ([`DenseKeyAggregateExec::in_key_range`]): a group without rows gives each of them its
/// value over no rows (0 for the counts, false for `segql_any`, null for the others).
const RANGED_AGGREGATES: [&str; 9] = [
    "count",
    "segql_any",
    "sum",
    "avg",
    "min",
    "max",
    "segql_first",
    "segql_last",
    "segql_count_distinct",
];

/// Whether every aggregate of `dense` is one of [`RANGED_AGGREGATES`].
pub fn computes_in_key_range(dense: &DenseKeyAggregateExec) -> bool {
    (dense.aggregate.aggr_expr().iter())
        .all(|function| RANGED_AGGREGATES.contains(&function.fun().name()))
}

/// `aggregate` as a [`DenseKeyAggregateExec`] if that computes it, else as it is.
pub fn dense_or_hashed(aggregate: AggregateExec) -> Result<Arc<dyn ExecutionPlan>> {
    if groups_by_key(&aggregate) {
        Ok(Arc::new(DenseKeyAggregateExec::try_new(aggregate)?))
    } else {
        Ok(Arc::new(aggregate))
    }
}

/// An `AggregateExec` of mode `Single` grouped by one `Int64` column, its groups found
/// through an array addressed by the key (see the module documentation).
#[derive(Debug)]
pub struct DenseKeyAggregateExec {
    /// The aggregation computed: its input, key, aggregates, filters and schema.
    aggregate: Arc<AggregateExec>,
    /// Whether the groups come out as one batch rather than batches of the session's
    /// batch size: a gather keeps a relation as one batch, which it would otherwise
    /// copy its batches into.
    one_batch: bool,
    /// With a range `(low, len)`, the keys `low..low + len` are the groups `0..len` from
    /// the start, in order, whether they have rows or not (a group without rows has a null
    /// key); other keys follow as they come. See [`DenseKeyAggregateExec::in_key_range`].
    key_range: Option<(i64, usize)>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl DenseKeyAggregateExec {
    /// `aggregate`, which [`groups_by_key`].
    pub fn try_new(aggregate: AggregateExec) -> Result<DenseKeyAggregateExec> {
        if !groups_by_key(&aggregate) {
            return internal_err!("a dense aggregation groups by one integer key, in one phase");
        }
        let properties = Arc::clone(aggregate.properties());
        Ok(DenseKeyAggregateExec {
            aggregate: Arc::new(aggregate),
            one_batch: false,
            key_range: None,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// The same aggregation, its groups coming out as one batch.
    pub fn in_one_batch(&self) -> DenseKeyAggregateExec {
        DenseKeyAggregateExec {
            aggregate: Arc::clone(&self.aggregate),
            one_batch: true,
            key_range: self.key_range,
            properties: Arc::clone(&self.properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The same aggregation in one batch whose first `len` rows are the groups of the keys
    /// `low..low + len`, in order, each whether it has rows or not: the row of key `k` is
    /// at `k - low`. A key without rows has a null key and every aggregate's value over no
    /// rows (a count's 0, null for most others); keys outside the range and the null key
    /// follow as they come.
    ///
    /// A gather of profiles whose keys are that range then takes each batch's rows as a
    /// slice, and the accumulators are sized once, for every key, instead of growing.
    pub fn in_key_range(&self, low: i64, len: usize) -> DenseKeyAggregateExec {
        // The key is null where it had no rows.
        let schema = self.aggregate.schema();
        let mut fields = schema.fields().to_vec();
        fields[0] = Arc::new(fields[0].as_ref().clone().with_nullable(true));
        let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        let properties = (self.properties.as_ref().clone())
            .with_eq_properties(EquivalenceProperties::new(schema));
        DenseKeyAggregateExec {
            key_range: Some((low, len)),
            properties: Arc::new(properties),
            ..self.in_one_batch()
        }
    }

    /// How many aggregates it computes.
    pub fn aggregates(&self) -> usize {
        self.aggregate.aggr_expr().len()
    }
}

impl DisplayAs for DenseKeyAggregateExec {
    fn fmt_as(&self, format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "DenseKeyAggregateExec: ")?;
        let functions: Vec<String> = (self.aggregate.aggr_expr().iter())
            .map(|function| function.name().to_string())
            .collect();
        let (key, name) = &self.aggregate.group_expr().expr()[0];
        match format {
            DisplayFormatType::TreeRender => write!(f, "gby={name}"),
            _ => {
                write!(f, "gby=[{key} as {name}], aggr=[{}]", functions.join(", "))?;
                match self.key_range {
                    Some((low, len)) => {
                        write!(f, ", keys {low} to {} first", low + len as i64 - 1)?
                    }
                    None if self.one_batch => write!(f, ", one batch")?,
                    None => {}
                }
                Ok(())
            }
        }
    }
}

impl ExecutionPlan for DenseKeyAggregateExec {
    fn name(&self) -> &str {
        "DenseKeyAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.aggregate.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.aggregate.apply_expressions(f)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children)
            .map_err(|_| datafusion::common::internal_datafusion_err!("one input expected"))?;
        let dense = DenseKeyAggregateExec::try_new(one_phase(&self.aggregate, input)?)?;
        Ok(Arc::new(match self.key_range {
            Some((low, len)) => dense.in_key_range(low, len),
            None if self.one_batch => dense.in_one_batch(),
            None => dense,
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("a dense aggregation has one partition, not {partition}");
        }
        let aggregate = &self.aggregate;
        let input = aggregate.input().execute(0, Arc::clone(&context))?;
        let accumulators = (aggregate.aggr_expr().iter())
            .zip(aggregate.filter_expr())
            .map(|(function, filter)| {
                Ok(Accumulator {
                    arguments: function.expressions(),
                    filter: filter.clone(),
                    groups: function.create_groups_accumulator()?,
                    tracks_nulls: TRACKS_NULLS.contains(&function.fun().name()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let key = Arc::clone(&aggregate.group_expr().expr()[0].0);
        let reservation =
            MemoryConsumer::new("DenseKeyAggregateExec").register(context.memory_pool());
        let arguments_time =
            MetricBuilder::new(&self.metrics).subset_time("aggregate_arguments_time", partition);
        let mut table = Table::new(key, accumulators, reservation, arguments_time);
        if let Some((low, len)) = self.key_range {
            table.range(low, len)?;
            // Every accumulator sized for the range at once, rows or not.
            table.add(&RecordBatch::new_empty(aggregate.input().schema()))?;
        }
        let schema = self.schema();
        let output_schema = Arc::clone(&schema);
        let batch_size = match self.one_batch {
            true => usize::MAX,
            false => context.session_config().batch_size().max(1),
        };
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let stream = futures::stream::once(async move {
            let mut input = input;
            while let Some(batch) = input.next().await {
                let batch = batch?;
                let _timer = baseline.elapsed_compute().timer();
                table.add(&batch)?;
            }
            let _timer = baseline.elapsed_compute().timer();
            let output = table.finish(Arc::clone(&schema))?;
            baseline.record_output(output.num_rows());
            let rows = output.num_rows();
            let slices: Vec<Result<RecordBatch>> = (0..rows)
                .step_by(batch_size)
                .map(|at| Ok(output.slice(at, batch_size.min(rows - at))))
                .collect();
            Ok::<_, DataFusionError>(futures::stream::iter(slices))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            output_schema,
            stream,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// One aggregate: its arguments, its filter and its groups' state.
struct Accumulator {
    arguments: Vec<Arc<dyn PhysicalExpr>>,
    filter: Option<Arc<dyn PhysicalExpr>>,
    groups: Box<dyn GroupsAccumulator>,
    /// Whether its groups' nulls are DataFusion's `NullState`'s, which takes a batch
    /// without a filter (and without nulls) as a value for every group that exists.
    tracks_nulls: bool,
}

/// The aggregates of [`RANGED_AGGREGATES`] that keep their groups' nulls in a `NullState`.
/// The counts have no nulls, and SegQL's own aggregates note each group they see.
const TRACKS_NULLS: [&str; 4] = ["sum", "avg", "min", "max"];

/// The groups of one aggregation as it reads its input.
struct Table {
    key: Arc<dyn PhysicalExpr>,
    /// The group of key `low + i` is at `slots[i]` ([`NO_GROUP`]: none yet).
    low: i64,
    slots: Vec<u32>,
    /// The rows read so far.
    rows: usize,
    /// The groups of the keys the slots do not cover.
    outside: HashMap<i64, u32, foldhash::fast::RandomState>,
    /// Each group's key, in the order the groups came.
    keys: Vec<i64>,
    /// The group of the null key, if there was one.
    null_group: Option<u32>,
    /// With a key range (see [`DenseKeyAggregateExec::in_key_range`]), its length: the
    /// groups `0..len` are its keys, `keys` holds those of the groups after them, and
    /// `seen` whether each key of the range had rows. Without one, 0.
    range_len: usize,
    seen: Vec<bool>,
    /// The current batch's group of each row.
    indices: Vec<usize>,
    accumulators: Vec<Accumulator>,
    reservation: MemoryReservation,
    arguments_time: Time,
}

impl Table {
    fn new(
        key: Arc<dyn PhysicalExpr>,
        accumulators: Vec<Accumulator>,
        reservation: MemoryReservation,
        arguments_time: Time,
    ) -> Table {
        Table {
            key,
            low: 0,
            slots: Vec::new(),
            rows: 0,
            outside: HashMap::default(),
            keys: Vec::new(),
            null_group: None,
            range_len: 0,
            seen: Vec::new(),
            indices: Vec::new(),
            accumulators,
            reservation,
            arguments_time,
        }
    }

    /// Makes the keys `low..low + len` the groups `0..len`.
    fn range(&mut self, low: i64, len: usize) -> Result<()> {
        if len >= (NO_GROUP / 2) as usize {
            return internal_err!(
                "a key range of {len} keys is more than a dense aggregation numbers"
            );
        }
        self.reservation.try_grow(len)?;
        self.low = low;
        self.range_len = len;
        self.seen = vec![false; len];
        Ok(())
    }

    /// How many groups there are.
    fn groups(&self) -> usize {
        self.range_len + self.keys.len()
    }

    fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        let rows = batch.num_rows();
        let keys = self.key.evaluate(batch)?.into_array(rows)?;
        self.assign_groups(keys.as_primitive::<Int64Type>())?;
        let groups = self.groups();
        // With a key range, groups exist before their first row. DataFusion's `NullState`
        // takes a batch without a filter (and without nulls) as a value for every group
        // there is, so those accumulators get a filter, all true where they have none.
        let every_row: Option<ArrayRef> = (self.range_len > 0)
            .then(|| Arc::new(BooleanArray::new(BooleanBuffer::new_set(rows), None)) as ArrayRef);
        for accumulator in &mut self.accumulators {
            let timer = self.arguments_time.timer();
            let arguments = (accumulator.arguments.iter())
                .map(|argument| argument.evaluate(batch)?.into_array(rows))
                .collect::<Result<Vec<ArrayRef>>>()?;
            let filter = match &accumulator.filter {
                Some(filter) => Some(filter.evaluate(batch)?.into_array(rows)?),
                None if accumulator.tracks_nulls => every_row.clone(),
                None => None,
            };
            timer.done();
            let filter: Option<&BooleanArray> = filter.as_ref().map(|f| f.as_boolean());
            (accumulator.groups).update_batch(&arguments, &self.indices, filter, groups)?;
        }
        self.account()
    }

    /// Fills `indices` with the group of each of `keys`, making new groups as they come.
    fn assign_groups(&mut self, keys: &Int64Array) -> Result<()> {
        if self.groups() + keys.len() >= NO_GROUP as usize {
            return internal_err!("more groups than a dense aggregation numbers");
        }
        if self.range_len > 0 {
            self.assign_in_range(keys);
            return Ok(());
        }
        self.rows += keys.len();
        if let (Some(low), Some(high)) = (min(keys), max(keys)) {
            self.cover(low, high);
        }
        self.indices.clear();
        self.indices.reserve(keys.len());
        let Table {
            low,
            slots,
            outside,
            keys: group_keys,
            null_group,
            indices,
            ..
        } = self;
        let mut new_group = |key: i64| {
            group_keys.push(key);
            (group_keys.len() - 1) as u32
        };
        let nulls = keys.nulls();
        for (row, &key) in keys.values().iter().enumerate() {
            let group = if nulls.is_some_and(|nulls| nulls.is_null(row)) {
                *null_group.get_or_insert_with(|| new_group(0))
            } else {
                // Keys below `low` wrap to far beyond the slots.
                match slots.get_mut(key.wrapping_sub(*low) as u64 as usize) {
                    Some(slot) => {
                        if *slot == NO_GROUP {
                            *slot = new_group(key);
                        }
                        *slot
                    }
                    None => *outside.entry(key).or_insert_with(|| new_group(key)),
                }
            };
            indices.push(group as usize);
        }
        Ok(())
    }

    /// [`Table::assign_groups`] with a key range: a key's distance from its low end is its
    /// group; other keys are numbered after the range as they come.
    fn assign_in_range(&mut self, keys: &Int64Array) {
        self.indices.clear();
        self.indices.reserve(keys.len());
        let Table {
            low,
            range_len,
            seen,
            outside,
            keys: group_keys,
            null_group,
            indices,
            ..
        } = self;
        let (low, range_len) = (*low, *range_len);
        let mut new_group = |key: i64| {
            group_keys.push(key);
            (range_len + group_keys.len() - 1) as u32
        };
        let nulls = keys.nulls();
        for (row, &key) in keys.values().iter().enumerate() {
            let group = if nulls.is_some_and(|nulls| nulls.is_null(row)) {
                *null_group.get_or_insert_with(|| new_group(0))
            } else {
                // Keys below `low` wrap to far beyond the range.
                let at = key.wrapping_sub(low) as u64 as usize;
                match seen.get_mut(at) {
                    Some(seen) => {
                        *seen = true;
                        at as u32
                    }
                    None => *outside.entry(key).or_insert_with(|| new_group(key)),
                }
            };
            indices.push(group as usize);
        }
    }

    /// Grows the slots to cover the keys `low..=high` if they may have that many, at
    /// least doubling them; else leaves them as they are.
    fn cover(&mut self, low: i64, high: i64) {
        let (old_low, old_len) = (i128::from(self.low), self.slots.len() as i128);
        let covered =
            old_len > 0 && i128::from(low) >= old_low && i128::from(high) < old_low + old_len;
        if covered {
            return;
        }
        let (mut new_low, mut new_high) = (i128::from(low), i128::from(high));
        if old_len > 0 {
            new_low = new_low.min(old_low);
            new_high = new_high.max(old_low + old_len - 1);
        }
        let allowed = (SLOTS_PER_ROW.saturating_mul(self.rows)).max(MIN_SLOTS) as i128;
        let needed = new_high - new_low + 1;
        if needed > allowed {
            return;
        }
        // Doubling, towards higher keys as long as they are `i64`s, else lower.
        let len = needed.max(2 * old_len).min(allowed);
        if new_low + len - 1 > i128::from(i64::MAX) {
            new_low = i128::from(i64::MAX) - len + 1;
        }
        let grow = (len - old_len) as usize * size_of::<u32>();
        if self.reservation.try_grow(grow).is_err() {
            return;
        }
        let new_low = new_low as i64;
        let mut slots = vec![NO_GROUP; len as usize];
        if old_len > 0 {
            let at = (old_low - i128::from(new_low)) as usize;
            slots[at..at + old_len as usize].copy_from_slice(&self.slots);
        }
        self.outside.retain(|&key, &mut group| {
            match slots.get_mut(key.wrapping_sub(new_low) as u64 as usize) {
                Some(slot) => {
                    *slot = group;
                    false
                }
                None => true,
            }
        });
        self.low = new_low;
        self.slots = slots;
    }

    /// Keeps the reservation at the memory the groups take.
    fn account(&mut self) -> Result<()> {
        let size = self.slots.capacity() * size_of::<u32>()
            + self.keys.capacity() * size_of::<i64>()
            + self.outside.capacity() * (size_of::<(i64, u32)>() + 1)
            + self.indices.capacity() * size_of::<usize>()
            + self.seen.capacity()
            + (self.accumulators.iter())
                .map(|accumulator| accumulator.groups.size())
                .sum::<usize>();
        self.reservation.try_resize(size)
    }

    /// Every group: its key and each aggregate's value, in the order the groups came.
    fn finish(&mut self, schema: datafusion::arrow::datatypes::SchemaRef) -> Result<RecordBatch> {
        self.slots = Vec::new();
        let (low, range_len) = (self.low, self.range_len);
        let groups = self.groups();
        let (null_group, seen) = (self.null_group, std::mem::take(&mut self.seen));
        let present = |group: usize| match group.checked_sub(range_len) {
            None => seen[group],
            Some(_) => null_group != Some(group as u32),
        };
        let nulls = (null_group.is_some() || seen.contains(&false))
            .then(|| NullBuffer::from_iter((0..groups).map(present)));
        let values: Vec<i64> = (0..range_len as i64)
            .map(|at| low + at)
            .chain(std::mem::take(&mut self.keys))
            .collect();
        let keys = Int64Array::new(values.into(), nulls);
        let mut columns: Vec<ArrayRef> = vec![Arc::new(keys)];
        for accumulator in &mut self.accumulators {
            columns.push(accumulator.groups.evaluate(EmitTo::All)?);
        }
        let batch = RecordBatch::try_new(schema, columns)?;
        self.reservation.try_resize(batch.get_array_memory_size())?;
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;
    use crate::exec::sorted_rows;

    #[tokio::test]
    async fn groups_found_by_key_give_datafusions_groups() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = |keys: Vec<Option<i64>>| {
            let values: Vec<Option<i64>> = (keys.iter().enumerate())
                .map(|(at, _)| (at % 5 != 3).then_some(at as i64 % 7 - 2))
                .collect();
            let texts: Vec<Option<String>> = (keys.iter().enumerate())
                .map(|(at, _)| (at % 4 != 1).then(|| format!("s{}", at % 11)))
                .collect();
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int64Array::from(keys)),
                    Arc::new(Int64Array::from(values)),
                    Arc::new(StringArray::from(texts)),
                ],
            )
            .expect("a batch of the table's schema")
        };
        // Keys too far apart for the slots first, so they are found in the hash map; then
        // a range the slots grow over, taking in the keys of the map inside it; then keys
        // beyond the most the slots may have, in the map again. Null keys throughout.
        let batches = vec![
            batch(vec![
                Some(i64::MIN),
                Some(5),
                None,
                Some(i64::MAX),
                Some(5_000_000),
                Some(-7),
                Some(5),
            ]),
            batch((0..3000).map(|k| Some(k % 1500 - 10)).collect()),
            batch(vec![
                Some(3_000_000),
                Some(5),
                None,
                Some(-7),
                Some(i64::MAX),
            ]),
            batch((0..2000).map(|k| Some((k * 7919) % 2500)).collect()),
        ];
        // The reference for two of the aggregates: each key's rows and values, counted.
        let mut counted: std::collections::BTreeMap<i64, (usize, usize)> = Default::default();
        for batch in &batches {
            let (keys, values) = (batch.column(0).as_primitive::<Int64Type>(), batch.column(1));
            for row in (0..batch.num_rows()).filter(|&row| keys.is_valid(row)) {
                let count = counted.entry(keys.value(row)).or_default();
                count.0 += 1;
                count.1 += usize::from(values.is_valid(row));
            }
        }
        let table = MemTable::try_new(Arc::clone(&schema), vec![batches]).expect("a table");
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
        ctx.register_table("t", Arc::new(table))
            .expect("the table registered");
        let query = "SELECT k, count(*), count(v), sum(v) FILTER (WHERE v > 0), max(s), \
                     min(v), avg(v) FILTER (WHERE s <> 's3') FROM t GROUP BY k";
        let hashed = ctx.sql(query).await.expect("a plan");
        let hashed = hashed
            .create_physical_plan()
            .await
            .expect("a physical plan");
        let dense = Arc::clone(&hashed)
            .transform_up(|node| {
                let found = node
                    .downcast_ref::<AggregateExec>()
                    .filter(|a| groups_by_key(a));
                Ok(match found {
                    Some(aggregate) => Transformed::yes(dense_or_hashed(one_phase(
                        aggregate,
                        Arc::clone(aggregate.input()),
                    )?)?),
                    None => Transformed::no(node),
                })
            })
            .data()
            .expect("the plan rewritten");
        let shown = displayable(dense.as_ref()).indent(true).to_string();
        assert!(shown.contains("DenseKeyAggregateExec"), "{shown}");

        let expected = datafusion::physical_plan::collect(Arc::clone(&hashed), ctx.task_ctx())
            .await
            .expect("DataFusion's groups");
        let found = datafusion::physical_plan::collect(dense, ctx.task_ctx())
            .await
            .expect("the dense groups");
        let (expected, found) = (sorted_rows(&expected), sorted_rows(&found));
        assert_eq!(found, expected);
        let mut counts: Vec<String> = (counted.iter())
            .map(|(key, (rows, values))| format!("{key},{rows},{values}"))
            .collect();
        counts.sort();
        let found_counts: Vec<String> = (found.iter())
            .map(|row| row.splitn(4, ',').take(3).collect::<Vec<_>>().join(","))
            // The null key's group aside.
            .filter(|row| counts.binary_search(row).is_ok())
            .collect();
        assert_eq!(found_counts, counts);
        assert_eq!(found.len(), counted.len() + 1, "every key and the null key");

        // In a key range: the keys -10 to 1489 first, in order, each with its groups' row,
        // or a null key and the values over no rows; the other keys and the null key after.
        let mut aggregates = Vec::new();
        hashed
            .apply(|node| {
                if let Some(aggregate) = node.downcast_ref::<AggregateExec>()
                    && groups_by_key(aggregate)
                {
                    aggregates.push(one_phase(aggregate, Arc::clone(aggregate.input()))?);
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .expect("the plan searched");
        let [aggregate] = <[_; 1]>::try_from(aggregates).expect("one aggregation");
        let (low, len) = (-10, 1500);
        let ranged = DenseKeyAggregateExec::try_new(aggregate)
            .expect("a dense aggregation")
            .in_key_range(low, len);
        assert!(computes_in_key_range(&ranged));
        let ranged = datafusion::physical_plan::collect(Arc::new(ranged), ctx.task_ctx())
            .await
            .expect("the groups of the range");
        let ranged = rows_in_order(&ranged);
        let mut listed = Vec::new();
        for (at, row) in ranged.iter().enumerate().take(len) {
            match row.split_once(',') {
                Some(("", values)) => assert_eq!(values, "0,0,,,,", "key {}", low + at as i64),
                Some((key, _)) => {
                    assert_eq!(key, (low + at as i64).to_string());
                    listed.push(row.clone());
                }
                None => panic!("a row without columns: {row}"),
            }
        }
        listed.extend(ranged[len..].iter().cloned());
        listed.sort();
        assert_eq!(listed, found);
    }

    /// The rows of `batches` in order, each as its cells joined by commas (empty: null).
    fn rows_in_order(batches: &[RecordBatch]) -> Vec<String> {
        use datafusion::arrow::util::display::array_value_to_string;
        (batches.iter())
            .flat_map(|batch| {
                (0..batch.num_rows()).map(move |row| {
                    (batch.columns().iter())
                        .map(|column| match column.is_null(row) {
                            true => String::new(),
                            false => array_value_to_string(column, row).expect("a cell"),
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
            })
            .collect()
    }

    #[test]
    fn slots_grow_only_within_their_budget() {
        let context = TaskContext::default();
        let mut table = Table::new(
            Arc::new(datafusion::physical_expr::expressions::Column::new("k", 0)),
            Vec::new(),
            MemoryConsumer::new("test").register(context.memory_pool()),
            Time::new(),
        );
        table
            .assign_groups(&Int64Array::from(vec![10, 20, 10]))
            .expect("groups");
        assert_eq!(table.indices, [0, 1, 0]);
        assert_eq!((table.low, table.slots.len()), (10, 11));
        // Below the slots: they grow downwards and the groups keep their numbers.
        table
            .assign_groups(&Int64Array::from(vec![-5, 20]))
            .expect("groups");
        assert_eq!(table.indices, [2, 1]);
        assert_eq!((table.low, table.slots.len()), (-5, 26));
        // Far beyond what 6 rows may have: the hash map.
        table
            .assign_groups(&Int64Array::from(vec![10 + MIN_SLOTS as i64 * 2, 10]))
            .expect("groups");
        assert_eq!(table.indices, [3, 0]);
        assert_eq!(table.outside.len(), 1);
        // Once the rows allow it, the slots take the key in, and it keeps its group.
        let many: Vec<i64> = vec![20; MIN_SLOTS * 2 / SLOTS_PER_ROW];
        table
            .assign_groups(&Int64Array::from(many))
            .expect("groups");
        table
            .assign_groups(&Int64Array::from(vec![10 + MIN_SLOTS as i64 * 2]))
            .expect("groups");
        assert_eq!(table.indices, [3]);
        assert!(table.outside.is_empty());
        assert_eq!(table.keys, [10, 20, -5, 10 + MIN_SLOTS as i64 * 2]);
    }
}
