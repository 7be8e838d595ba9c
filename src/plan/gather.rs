//! Gather: the profiles, each with its row of every measure relation, in one operator
//! instead of a chain of hash joins.
//!
//! A count of many segments joins a dozen relations (one per event table's grouped pass,
//! distinct counts, rankings, sequences) to the profiles, each with at most one row per
//! profile key. As hash joins, each of them hashes the profile keys again, and copies
//! into its output every column the joins before it produced. The gather reads each
//! relation once into memory, indexes it by key (an array addressed by the key itself
//! when the keys are dense integers, a hash map otherwise), and then, for each batch of
//! profiles as it streams from the scan, looks each key up in every index and takes the
//! relations' rows in one step. Every profile is kept exactly once, with nulls where a
//! relation has no row: a left join of the profiles with each relation. Columns given a
//! value for absent rows (a count's zero, see [`super::expr::absent_value`]) have that
//! value instead of null, wherever null, so the plan above need not put it in.
//!
//! The relations are built side by side, as many at a time as the session has target
//! partitions, and each relation's grouped passes aggregate in one phase over all of
//! their input ([`SinglePhaseRelations`]): DataFusion would aggregate each partition of the
//! scan, repartition the groups by key and merge them again, which for a relation of a
//! million customers hashes and merges every group twice. A pass grouped by an integer key
//! finds its groups through an array addressed by the key, not a hash table
//! ([`super::dense_aggregate`]).
//!
//! Plans use it in this process only ([`super::Planner::with_own_aggregates`]): other
//! engines and Ballista executors know only DataFusion's own operators. The physical
//! operator comes from [`query_planner`] and its passes' single phase from
//! [`SinglePhaseRelations`], which [`crate::exec::state_for`] installs.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, Int64Array, PrimitiveArray, RecordBatch,
    RecordBatchOptions, UInt32Array, new_empty_array,
};
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::compute::{cast, concat, is_not_null, take};
use datafusion::arrow::datatypes::{DataType, FieldRef, Float64Type, Int64Type, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::config::ConfigOptions;
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{
    Column, DFSchema, DFSchemaRef, ScalarValue, TableReference, internal_err,
};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

use super::dense_aggregate::{
    DenseKeyAggregateExec, computes_in_key_range, dense_or_hashed, groups_by_key, one_phase,
};

/// The logical node: its first input is the profiles, the others the relations, each
/// joined on its key column (`keys`, one per input) to the profiles' key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Gather {
    inputs: Vec<LogicalPlan>,
    keys: Vec<Column>,
    /// Relation columns with a value in place of null (see [`gather`]).
    absent: Vec<(Column, ScalarValue)>,
    ranges: KeyRanges,
    schema: DFSchemaRef,
}

/// What lets a gather take relations' rows by the keys' positions in a range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd)]
pub struct KeyRanges {
    /// Every profile key is an integer of `low..=high` (see
    /// [`super::Planner::with_contiguous_keys`]).
    pub profile_keys: Option<(i64, i64)>,
    /// For each relation, whether a row of its aggregates over no events is the same as no
    /// row: every column's value over no events is null, or the value the gather puts in
    /// place of null (a count's 0). Such a relation may have a row for every key of the
    /// range ([`DenseKeyAggregateExec::in_key_range`]).
    pub empty_rows_absent: Vec<bool>,
}

/// `profiles` with the columns of every relation in `relations` (each a plan and its key
/// column), as one plan. The columns in `absent` (qualified by their relation) have the
/// value given with them wherever they would be null, in particular for a profile without
/// a row in their relation.
pub fn gather(
    profiles: LogicalPlan,
    profile_key: Column,
    relations: Vec<(LogicalPlan, Column)>,
    absent: Vec<(Column, ScalarValue)>,
    ranges: KeyRanges,
) -> Result<LogicalPlan> {
    let (mut inputs, mut keys) = (vec![profiles], vec![profile_key]);
    for (relation, key) in relations {
        inputs.push(relation);
        keys.push(key);
    }
    Ok(LogicalPlan::Extension(Extension {
        node: Arc::new(Gather::try_new(inputs, keys, absent, ranges)?),
    }))
}

impl Gather {
    fn try_new(
        inputs: Vec<LogicalPlan>,
        keys: Vec<Column>,
        absent: Vec<(Column, ScalarValue)>,
        ranges: KeyRanges,
    ) -> Result<Gather> {
        if inputs.len() != keys.len() || inputs.is_empty() {
            return internal_err!("a gather needs one key column per input");
        }
        if !ranges.empty_rows_absent.is_empty()
            && ranges.empty_rows_absent.len() + 1 != inputs.len()
        {
            return internal_err!("a gather's ranges name every relation or none");
        }
        for (input, key) in inputs.iter().zip(&keys) {
            input.schema().index_of_column(key)?;
        }
        let profiles = inputs[0].schema().iter();
        let mut fields: Vec<_> = profiles
            .map(|(qualifier, field)| (qualifier.cloned(), Arc::clone(field)))
            .collect();
        for input in &inputs[1..] {
            for (qualifier, field) in input.schema().iter() {
                let filled = absent_value(&absent, qualifier, field).is_some();
                fields.push((qualifier.cloned(), relation_field(field, filled)));
            }
        }
        let schema = Arc::new(DFSchema::new_with_metadata(fields, HashMap::new())?);
        Ok(Gather {
            inputs,
            keys,
            absent,
            ranges,
            schema,
        })
    }

    /// For each column of each relation, in order, its value in place of null, cast to the
    /// column's type.
    fn absent_values(&self) -> Result<Vec<Vec<Option<ScalarValue>>>> {
        self.inputs[1..]
            .iter()
            .map(|input| {
                input
                    .schema()
                    .iter()
                    .map(|(qualifier, field)| {
                        absent_value(&self.absent, qualifier, field)
                            .map(|value| value.cast_to(field.data_type()))
                            .transpose()
                    })
                    .collect()
            })
            .collect()
    }
}

/// The value in place of null of the column `field` of the input qualified `qualifier`,
/// if it has one.
fn absent_value<'a>(
    absent: &'a [(Column, ScalarValue)],
    qualifier: Option<&TableReference>,
    field: &FieldRef,
) -> Option<&'a ScalarValue> {
    absent
        .iter()
        .find(|(column, _)| column.relation.as_ref() == qualifier && column.name == *field.name())
        .map(|(_, value)| value)
}

/// A field of a relation as the gather gives it: a profile without a row in the relation
/// has nulls in its columns, unless they are `filled`. The profiles' fields are given as
/// they are.
fn relation_field(field: &FieldRef, filled: bool) -> FieldRef {
    Arc::new(field.as_ref().clone().with_nullable(!filled))
}

impl PartialOrd for Gather {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.inputs.partial_cmp(&other.inputs) {
            Some(Ordering::Equal) => match self.keys.partial_cmp(&other.keys) {
                Some(Ordering::Equal) => match self.absent.partial_cmp(&other.absent) {
                    Some(Ordering::Equal) => self.ranges.partial_cmp(&other.ranges),
                    order => order,
                },
                order => order,
            },
            order => order,
        }
    }
}

impl UserDefinedLogicalNodeCore for Gather {
    fn name(&self) -> &str {
        "Gather"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        self.inputs.iter().collect()
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Gather: {} with", self.keys[0])?;
        for key in &self.keys[1..] {
            write!(f, " {key}")?;
        }
        Ok(())
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        Gather::try_new(
            inputs,
            self.keys.clone(),
            self.absent.clone(),
            self.ranges.clone(),
        )
    }

    /// The columns each input must give for `output_columns`: those of its own that are
    /// asked for, and its key. Unused measure columns are then not computed at all.
    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        let mut needed = Vec::with_capacity(self.inputs.len());
        let mut offset = 0;
        for (input, key) in self.inputs.iter().zip(&self.keys) {
            let width = input.schema().fields().len();
            let mut columns: Vec<usize> = output_columns
                .iter()
                .filter(|&&c| c >= offset && c < offset + width)
                .map(|&c| c - offset)
                .collect();
            columns.push(input.schema().index_of_column(key).ok()?);
            columns.sort_unstable();
            columns.dedup();
            needed.push(columns);
            offset += width;
        }
        Some(needed)
    }
}

/// DataFusion's query planner with the gather's physical operator.
pub fn query_planner() -> Arc<dyn QueryPlanner + Send + Sync> {
    Arc::new(GatherQueryPlanner)
}

#[derive(Debug)]
struct GatherQueryPlanner;

#[async_trait::async_trait]
impl QueryPlanner for GatherQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(GatherPlanner)])
            .create_physical_plan(logical_plan, session)
            .await
    }
}

struct GatherPlanner;

#[async_trait::async_trait]
impl ExtensionPlanner for GatherPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning_ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(gather) = node.as_any().downcast_ref::<Gather>() else {
            return Ok(None);
        };
        let keys = logical_inputs
            .iter()
            .zip(&gather.keys)
            .map(|(input, key)| input.schema().index_of_column(key))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Arc::new(GatherExec::try_new(
            physical_inputs.to_vec(),
            keys,
            gather.absent_values()?,
            gather.ranges.clone(),
        )?)))
    }
}

/// A physical optimizer rule, run after DataFusion's own: under a gather, each grouped
/// pass that aggregates in two phases (partial per partition, repartitioned by key,
/// final) aggregates in one, over its input's partitions coalesced.
///
/// The gather reads every relation whole before any profile streams through, and builds
/// its relations side by side ([`index_relations`]), so one task per relation keeps both
/// cores busy without splitting a relation's groups between partitions. Counting the
/// benchmark's 50 segments, the second phases had merged about 5.7 million partial groups.
///
/// With `by_key`, passes grouped by an integer key find their groups through an array
/// ([`super::dense_aggregate`]). That operator does not spill, so it is only for
/// evaluations without a memory limit, where DataFusion's would not spill either.
#[derive(Debug)]
pub struct SinglePhaseRelations {
    pub by_key: bool,
}

impl PhysicalOptimizerRule for SinglePhaseRelations {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| {
            let Some(gather) = node.downcast_ref::<GatherExec>() else {
                return Ok(Transformed::no(node));
            };
            // The profiles too, when a grouped pass stands for them (see
            // `Planner::keys_of_relation`); a scan of the profiles is left as it is.
            let mut children = vec![single_phase(Arc::clone(&gather.children[0]), self.by_key)?];
            for (at, relation) in gather.children[1..].iter().enumerate() {
                let relation = single_phase(Arc::clone(relation), self.by_key)?;
                children.push(in_one_batch(relation, gather.relation_range(at))?);
            }
            let gather = Arc::clone(&node).replace_children(children, recompute())?;
            Ok(Transformed::new(gather, true, TreeNodeRecursion::Jump))
        })
        .data()
    }

    fn name(&self) -> &str {
        "single_phase_relations"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// In process without a memory limit, the grouped passes of a plan without a gather (the
/// members of one segment) whose rows end in one partition anyway aggregate in one phase
/// by key ([`DenseKeyAggregateExec`]): a hash join's collected build side, a merge of
/// sorted partitions, and the side a collected hash join probes with. Their two phases
/// hashed every key into a table per partition, repartitioned the groups by key and
/// merged them in a second table.
///
/// Passes read by a join of partitioned inputs keep their partitions: the join's other
/// input is partitioned as they are.
#[derive(Debug)]
pub struct DensePassesOfOnePartition;

impl PhysicalOptimizerRule for DensePassesOfOnePartition {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| {
            let merged =
                node.is::<CoalescePartitionsExec>() || node.is::<SortPreservingMergeExec>();
            let probing = (node.downcast_ref::<HashJoinExec>())
                .is_some_and(|join| *join.partition_mode() == PartitionMode::CollectLeft);
            let at = match (merged, probing) {
                (true, _) => 0,
                (_, true) => 1,
                _ => return Ok(Transformed::no(node)),
            };
            let mut children: Vec<_> = node.children().into_iter().cloned().collect();
            let Some(dense) = dense_pass(&children[at])? else {
                return Ok(Transformed::no(node));
            };
            children[at] = dense;
            Ok(Transformed::yes(
                node.replace_children(children, recompute())?,
            ))
        })
        .data()
    }

    fn name(&self) -> &str {
        "dense_passes_of_one_partition"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `plan` with the two-phase aggregation grouped by an integer key that it reaches through
/// projections, filters and sorts of each partition in one dense phase, if it has one.
fn dense_pass(plan: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    if let Some(first) = first_of_two_phases(plan) {
        let mut input = Arc::clone(first.input());
        if input.output_partitioning().partition_count() > 1 {
            input = Arc::new(CoalescePartitionsExec::new(input));
        }
        let single = one_phase(first, input)?;
        if !groups_by_key(&single) {
            return Ok(None);
        }
        return Ok(Some(Arc::new(DenseKeyAggregateExec::try_new(single)?)));
    }
    let per_partition = plan.is::<ProjectionExec>()
        || plan.is::<FilterExec>()
        || (plan.downcast_ref::<SortExec>()).is_some_and(SortExec::preserve_partitioning);
    match plan.children().as_slice() {
        [child] if per_partition => match dense_pass(child)? {
            Some(child) => Ok(Some(
                Arc::clone(plan).replace_children(vec![child], recompute())?,
            )),
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

/// `plan` with its two-phase aggregations (partial, repartitioned by key, final
/// partitioned) in one phase over their input's partitions coalesced: the one at its top,
/// and those below it through projections, filters and other such aggregations. The
/// rewrite stops at any other operator: one that requires its input partitioned (a
/// partitioned hash join, a window) would no longer get it.
fn single_phase(plan: Arc<dyn ExecutionPlan>, by_key: bool) -> Result<Arc<dyn ExecutionPlan>> {
    if let Some(first) = first_of_two_phases(&plan) {
        let mut input = single_phase(Arc::clone(first.input()), by_key)?;
        if input.output_partitioning().partition_count() > 1 {
            input = Arc::new(CoalescePartitionsExec::new(input));
        }
        let single = one_phase(first, input)?;
        return if by_key {
            dense_or_hashed(single)
        } else {
            Ok(Arc::new(single))
        };
    }
    if by_key
        && let Some(single) = plan.downcast_ref::<AggregateExec>()
        && groups_by_key(single)
    {
        let input = single_phase(Arc::clone(single.input()), by_key)?;
        return dense_or_hashed(one_phase(single, input)?);
    }
    let row_by_row = plan.is::<ProjectionExec>() || plan.is::<FilterExec>();
    match plan.children().as_slice() {
        [child] if row_by_row => {
            let child = single_phase(Arc::clone(child), by_key)?;
            plan.replace_children(vec![child], recompute())
        }
        _ => Ok(plan),
    }
}

/// `plan` with the dense aggregation it reaches through projections and filters, if it
/// has one, emitting its groups in one batch: the gather keeps each relation as one
/// batch, and would otherwise copy the aggregation's batches into one.
///
/// With `range` (low and length), an aggregation reached through projections of columns
/// alone gives the keys of that range their rows first, in order
/// ([`DenseKeyAggregateExec::in_key_range`]). A filter would drop some of those rows.
fn in_one_batch(
    plan: Arc<dyn ExecutionPlan>,
    range: Option<(i64, usize)>,
) -> Result<Arc<dyn ExecutionPlan>> {
    if let Some(dense) = plan.downcast_ref::<DenseKeyAggregateExec>() {
        return Ok(Arc::new(match range {
            Some((low, len)) if computes_in_key_range(dense) => dense.in_key_range(low, len),
            _ => dense.in_one_batch(),
        }));
    }
    if let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
        // Columns only: an expression over a key's values over no rows may differ from its
        // value for no row.
        let columns_only = (projection.expr().iter()).all(|projected| {
            projected
                .expr
                .is::<datafusion::physical_expr::expressions::Column>()
        });
        let range = range.filter(|_| columns_only);
        let child = in_one_batch(Arc::clone(projection.input()), range)?;
        // Built anew: the key of a range is nullable, and a projection's replaced children
        // keep the schema it had.
        return Ok(Arc::new(ProjectionExec::try_new(
            projection.expr().to_vec(),
            child,
        )?));
    }
    match plan.children().as_slice() {
        [child] if plan.is::<FilterExec>() => {
            let child = in_one_batch(Arc::clone(child), None)?;
            plan.replace_children(vec![child], recompute())
        }
        _ => Ok(plan),
    }
}

/// The first phase of `plan` when it is the second of a two-phase aggregation: final,
/// over the partial aggregation's groups repartitioned by key.
fn first_of_two_phases(plan: &Arc<dyn ExecutionPlan>) -> Option<&AggregateExec> {
    plan.downcast_ref::<AggregateExec>()
        .filter(|last| *last.mode() == AggregateMode::FinalPartitioned)
        .and_then(|last| last.input().downcast_ref::<RepartitionExec>())
        .and_then(|repartition| repartition.input().downcast_ref::<AggregateExec>())
        .filter(|first| *first.mode() == AggregateMode::Partial)
}

/// Children replaced with their properties (partitioning, ordering) derived anew.
pub(super) fn recompute() -> ReplaceChildrenOptions {
    ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute)
}

/// The physical operator: the profiles' partitions stream through; the relations are
/// read and indexed once, by whichever partition comes first.
#[derive(Debug)]
pub struct GatherExec {
    children: Vec<Arc<dyn ExecutionPlan>>,
    /// The key column of each child.
    keys: Vec<usize>,
    /// For each relation's columns, the value in place of null (see [`gather`]).
    absent: Arc<Vec<Vec<Option<ScalarValue>>>>,
    ranges: KeyRanges,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    relations: Arc<OnceCell<Built>>,
    metrics: ExecutionPlanMetricsSet,
}

impl GatherExec {
    fn try_new(
        children: Vec<Arc<dyn ExecutionPlan>>,
        keys: Vec<usize>,
        absent: Vec<Vec<Option<ScalarValue>>>,
        ranges: KeyRanges,
    ) -> Result<GatherExec> {
        if children.len() != keys.len() || children.len() != absent.len() + 1 {
            return internal_err!("a gather needs one key column per input");
        }
        let mut fields = children[0].schema().fields().to_vec();
        for (child, absent) in children[1..].iter().zip(&absent) {
            let schema = child.schema();
            if schema.fields().len() != absent.len() {
                return internal_err!("a gather's relation has other columns than planned");
            }
            for (field, value) in schema.fields().iter().zip(absent) {
                fields.push(relation_field(field, value.is_some()));
            }
        }
        let schema = Arc::new(Schema::new(fields));
        let partitions = children[0].output_partitioning().partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(GatherExec {
            children,
            keys,
            absent: Arc::new(absent),
            ranges,
            schema,
            properties: Arc::new(properties),
            relations: Arc::new(OnceCell::new()),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// The range of the profile keys as its low end and length, for relation `at` (0 is
    /// the first relation) to have a row per key of, if it may: the range is known and not
    /// too long, and the relation's rows over no events are as good as none.
    fn relation_range(&self, at: usize) -> Option<(i64, usize)> {
        let (low, high) = self.ranges.profile_keys?;
        let len = usize::try_from(i128::from(high) - i128::from(low) + 1).ok()?;
        let may = self.ranges.empty_rows_absent.get(at) == Some(&true);
        (may && len > 0 && len < MAX_RANGE).then_some((low, len))
    }
}

/// The most keys a range may have for relations to have a row per key: a relation's
/// rows are addressed as `u32`.
const MAX_RANGE: usize = (u32::MAX / 2) as usize;

impl DisplayAs for GatherExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "GatherExec: {} relations", self.children.len() - 1)
    }
}

impl ExecutionPlan for GatherExec {
    fn name(&self) -> &str {
        "GatherExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.children.iter().collect()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(GatherExec::try_new(
            children,
            self.keys.clone(),
            self.absent.as_ref().clone(),
            self.ranges.clone(),
        )?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let profiles = self.children[0].execute(partition, Arc::clone(&context))?;
        let relations = Arc::clone(&self.relations);
        let children: Vec<_> = self.children[1..].to_vec();
        let relation_keys: Vec<(usize, Option<(i64, usize)>)> = (self.keys[1..].iter())
            .enumerate()
            .map(|(at, &key)| (key, self.relation_range(at)))
            .collect();
        let profile_key = self.keys[0];
        let read_ahead = aggregates(&self.children[0]) > 0;
        let schema = Arc::clone(&self.schema);
        let absent = Arc::clone(&self.absent);
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let build_time = MetricBuilder::new(&self.metrics).subset_time("build_time", partition);
        let stream = futures::stream::once(async move {
            let mut profiles = profiles;
            // Built once, by the first partition; a failure is every partition's, since a
            // plan's partitions run only once.
            let built = relations.get_or_init(|| async {
                let _timer = build_time.timer();
                (index_relations(children, relation_keys, context).await).map_err(Arc::new)
            });
            // A grouped pass standing for the profiles computes before its first batch:
            // it is read meanwhile, side by side with the relations. A scan of the
            // profiles waits (read early, it slowed the count of 50 segments by 5%).
            let (relations, first) = if read_ahead {
                futures::join!(built, profiles.next())
            } else {
                (built.await, None)
            };
            let relations = match relations {
                Ok(relations) => Arc::clone(relations),
                Err(error) => return Err(DataFusionError::Shared(Arc::clone(error))),
            };
            let profiles = futures::stream::iter(first).chain(profiles);
            Ok::<_, DataFusionError>(profiles.map(move |batch| {
                let _timer = baseline.elapsed_compute().timer();
                let gathered = gather_batch(&schema, &batch?, profile_key, &relations, &absent)?;
                baseline.record_output(gathered.num_rows());
                Ok(gathered)
            }))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// The relations, read and indexed, or why they could not be.
type Built = std::result::Result<Arc<Vec<Indexed>>, Arc<DataFusionError>>;

/// A relation in memory, indexed by key.
struct Indexed {
    rows: RecordBatch,
    index: KeyIndex,
    /// The memory `rows` and `index` take, counted against the context's limit.
    _reservation: MemoryReservation,
}

impl fmt::Debug for Indexed {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Indexed({} rows)", self.rows.num_rows())
    }
}

/// Reads every relation whole (all its partitions) and indexes it by its key column. As
/// many relations as the session has target partitions are built at a time, each in a
/// task of its own, the most costly first ([`work`]) so that the last to finish are
/// small.
async fn index_relations(
    children: Vec<Arc<dyn ExecutionPlan>>,
    keys: Vec<(usize, Option<(i64, usize)>)>,
    context: Arc<TaskContext>,
) -> Result<Arc<Vec<Indexed>>> {
    let side_by_side = context.session_config().target_partitions().max(1);
    let mut order: Vec<usize> = (0..children.len()).collect();
    order.sort_by_cached_key(|&at| std::cmp::Reverse(work(&children[at])));
    let mut built: Vec<(usize, Indexed)> = futures::stream::iter(order)
        .map(|at| {
            let (child, key) = (Arc::clone(&children[at]), keys[at]);
            let context = Arc::clone(&context);
            async move {
                let task = SpawnedTask::spawn(index_relation(child, key, context));
                let indexed = task
                    .join_unwind()
                    .await
                    .map_err(|e| DataFusionError::ExecutionJoin(Box::new(e)))??;
                Ok::<_, DataFusionError>((at, indexed))
            }
        })
        .buffer_unordered(side_by_side)
        .try_collect()
        .await?;
    built.sort_unstable_by_key(|(at, _)| *at);
    Ok(Arc::new(
        built.into_iter().map(|(_, indexed)| indexed).collect(),
    ))
}

/// How much work building the relation `plan` is, to build the most costly first
/// ([`index_relations`]): the bytes its scans read, times one more than the aggregates it
/// computes per row. The grouped pass over `purchased` reads fewer bytes than that over
/// `viewed` in the benchmark, but computes 28 aggregates to its 6, and started last it was
/// the last to finish, alone on one core.
fn work(plan: &Arc<dyn ExecutionPlan>) -> u64 {
    input_bytes(plan).saturating_mul(1 + aggregates(plan) as u64)
}

/// How many aggregates the aggregations under `plan` compute.
fn aggregates(plan: &Arc<dyn ExecutionPlan>) -> usize {
    let mut aggregates = 0;
    let _ = plan.apply(|node| {
        if let Some(aggregate) = node.downcast_ref::<AggregateExec>() {
            aggregates += aggregate.aggr_expr().len();
        } else if let Some(dense) = node.downcast_ref::<DenseKeyAggregateExec>() {
            aggregates += dense.aggregates();
        }
        Ok(TreeNodeRecursion::Continue)
    });
    aggregates
}

/// The bytes of the files the scans under `plan` read (0 for other sources). Tables carry
/// no statistics (see [`crate::engine::configure`]), so no row counts are known before
/// reading.
fn input_bytes(plan: &Arc<dyn ExecutionPlan>) -> u64 {
    let scanned = plan
        .downcast_ref::<DataSourceExec>()
        .and_then(|scan| scan.data_source().downcast_ref::<FileScanConfig>());
    if let Some(scan) = scanned {
        return (scan.file_groups.iter())
            .flat_map(|group| group.files())
            .map(|file| match &file.range {
                Some(range) => range.end.abs_diff(range.start),
                None => file.object_meta.size,
            })
            .sum();
    }
    plan.children().into_iter().map(input_bytes).sum()
}

/// One relation read whole and indexed by its key column, and by its rows' positions
/// when its first rows are those of the keys of `range` (see [`KeyIndex::new`]).
async fn index_relation(
    child: Arc<dyn ExecutionPlan>,
    (key, range): (usize, Option<(i64, usize)>),
    context: Arc<TaskContext>,
) -> Result<Indexed> {
    let schema = child.schema();
    let batches = datafusion::physical_plan::collect(child, Arc::clone(&context)).await?;
    let rows = concat_by_column(schema, batches)?;
    // Rows are addressed as `u32`, `u32::MAX` meaning none.
    if rows.num_rows() >= u32::MAX as usize {
        return Err(DataFusionError::ResourcesExhausted(format!(
            "a measure relation of {} rows is more than one process gathers; run the \
             segments on a cluster (--engine ballista://HOST:PORT)",
            rows.num_rows()
        )));
    }
    let index = KeyIndex::new(&as_int64(rows.column(key))?, range);
    let reservation = MemoryConsumer::new("GatherExec").register(context.memory_pool());
    reservation.try_grow(rows.get_array_memory_size() + index.memory_size())?;
    Ok(Indexed {
        rows,
        index,
        _reservation: reservation,
    })
}

/// `batches` as one batch, built a column at a time so that each column's batches are
/// freed as soon as it is copied, not after the last.
fn concat_by_column(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<RecordBatch> {
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    let mut columns: Vec<Vec<ArrayRef>> =
        vec![Vec::with_capacity(batches.len()); schema.fields().len()];
    for batch in batches {
        for (column, array) in columns.iter_mut().zip(batch.columns()) {
            column.push(Arc::clone(array));
        }
    }
    let mut concatenated = Vec::with_capacity(columns.len());
    for (column, field) in columns.iter_mut().zip(schema.fields()) {
        let arrays = std::mem::take(column);
        concatenated.push(match arrays.as_slice() {
            [] => new_empty_array(field.data_type()),
            [one] => Arc::clone(one),
            _ => {
                let parts: Vec<&dyn Array> = arrays.iter().map(AsRef::as_ref).collect();
                concat(&parts)?
            }
        });
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        schema,
        concatenated,
        &options,
    )?)
}

/// One batch of profiles with the rows of every relation for its keys.
fn gather_batch(
    schema: &SchemaRef,
    profiles: &RecordBatch,
    key: usize,
    relations: &[Indexed],
    absent: &[Vec<Option<ScalarValue>>],
) -> Result<RecordBatch> {
    let keys = as_int64(profiles.column(key))?;
    let mut columns: Vec<ArrayRef> = profiles.columns().to_vec();
    for (relation, absent) in relations.iter().zip(absent) {
        // Consecutive keys whose rows are where their positions in the range say: a slice.
        if let Some(at) = relation.index.rows_of_consecutive(&keys) {
            for (column, absent) in relation.rows.columns().iter().zip(absent) {
                let rows = column.slice(at, keys.len());
                columns.push(match absent {
                    Some(value) if rows.null_count() > 0 => filled(&rows, value)?,
                    _ => rows,
                });
            }
            continue;
        }
        let rows: UInt32Array = keys
            .iter()
            .map(|key| key.and_then(|key| relation.index.get(key)))
            .collect();
        for (column, absent) in relation.rows.columns().iter().zip(absent) {
            columns.push(match absent {
                Some(value) => take_filled(column, &rows, value)?,
                None => take(column.as_ref(), &rows, None)?,
            });
        }
    }
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// The `rows` of `column`, with `value` wherever that is null (no row, or a null in
/// `column`).
fn take_filled(column: &ArrayRef, rows: &UInt32Array, value: &ScalarValue) -> Result<ArrayRef> {
    // Counts and sums without nulls, the usual case, in one pass.
    if column.null_count() == 0 {
        match value {
            ScalarValue::Int64(Some(absent)) if column.data_type() == &DataType::Int64 => {
                return Ok(take_or(column.as_primitive::<Int64Type>(), rows, *absent));
            }
            ScalarValue::Float64(Some(absent)) if column.data_type() == &DataType::Float64 => {
                return Ok(take_or(column.as_primitive::<Float64Type>(), rows, *absent));
            }
            _ => {}
        }
    }
    let taken = take(column.as_ref(), rows, None)?;
    if taken.null_count() == 0 {
        return Ok(taken);
    }
    filled(&taken, value)
}

/// `column` with `value` wherever it is null.
fn filled(column: &ArrayRef, value: &ScalarValue) -> Result<ArrayRef> {
    let present = is_not_null(column)?;
    Ok(zip(&present, column, &value.to_scalar()?)?)
}

/// The `rows` of `values` (which has no nulls), `absent` where a row is null.
fn take_or<T: ArrowPrimitiveType>(
    values: &PrimitiveArray<T>,
    rows: &UInt32Array,
    absent: T::Native,
) -> ArrayRef {
    let values = values.values();
    let taken: Vec<T::Native> = rows
        .iter()
        .map(|row| row.map_or(absent, |row| values[row as usize]))
        .collect();
    Arc::new(PrimitiveArray::<T>::new(taken.into(), None))
}

fn as_int64(array: &ArrayRef) -> Result<Int64Array> {
    let array = if array.data_type() == &DataType::Int64 {
        Arc::clone(array)
    } else {
        cast(array, &DataType::Int64)?
    };
    Ok(array.as_primitive::<Int64Type>().clone())
}

/// Where each key's row is. A relation's keys are unique; were one repeated, its first
/// row would count.
#[derive(Debug)]
enum KeyIndex {
    /// Keys that fill most of `low..low + rows.len()`: the row of key `k` is at
    /// `rows[k - low]` (`u32::MAX`: none).
    Dense {
        low: i64,
        rows: Vec<u32>,
    },
    Hashed(HashMap<i64, u32, foldhash::fast::RandomState>),
    /// The first `len` rows are those of the keys `low..low + len`, in order (a null key
    /// where the key had no events; the row then holds the values over no events, as good
    /// as no row); `others` indexes the rows after them.
    Range {
        low: i64,
        len: usize,
        others: Box<KeyIndex>,
    },
}

/// How many slots per key a dense index may have before a hash map is used.
const DENSE_SLOTS_PER_KEY: u64 = 4;

impl KeyIndex {
    /// The index of `keys`, which has fewer than `u32::MAX` rows ([`index_relations`]
    /// checks). With `range` (low and length), and keys whose first rows are that range's,
    /// in order or null ([`DenseKeyAggregateExec::in_key_range`]), those rows are found by
    /// position.
    fn new(keys: &Int64Array, range: Option<(i64, usize)>) -> KeyIndex {
        if let Some((low, len)) = range
            && keys.len() >= len
            && (0..len).all(|at| keys.is_null(at) || keys.value(at) == low + at as i64)
        {
            return KeyIndex::Range {
                low,
                len,
                others: Box::new(KeyIndex::of_rows_after(keys, len)),
            };
        }
        KeyIndex::of_rows_after(keys, 0)
    }

    /// The index of the rows of `keys` from `first` on.
    fn of_rows_after(keys: &Int64Array, first: usize) -> KeyIndex {
        let indexed = || keys.iter().enumerate().skip(first);
        let (low, high) = indexed()
            .filter_map(|(_, key)| key)
            .fold((i64::MAX, i64::MIN), |(low, high), k| {
                (low.min(k), high.max(k))
            });
        // Computed wide: the keys may span more than an `i64` holds.
        let span =
            u64::try_from((i128::from(high) - i128::from(low) + 1).max(0)).unwrap_or(u64::MAX);
        let counted = keys.len() - first;
        let dense = span <= DENSE_SLOTS_PER_KEY * counted as u64 + 1024;
        if dense {
            let mut rows = vec![u32::MAX; span as usize];
            for (row, key) in indexed().rev() {
                if let Some(key) = key {
                    rows[key.abs_diff(low) as usize] = row as u32;
                }
            }
            return KeyIndex::Dense { low, rows };
        }
        let mut rows = HashMap::with_capacity_and_hasher(counted, Default::default());
        for (row, key) in indexed() {
            if let Some(key) = key {
                rows.entry(key).or_insert(row as u32);
            }
        }
        KeyIndex::Hashed(rows)
    }

    fn get(&self, key: i64) -> Option<u32> {
        match self {
            KeyIndex::Dense { low, rows } => {
                let at = usize::try_from(key.checked_sub(*low)?).ok()?;
                rows.get(at).copied().filter(|&row| row != u32::MAX)
            }
            KeyIndex::Hashed(rows) => rows.get(&key).copied(),
            KeyIndex::Range { low, len, others } => {
                match usize::try_from(i128::from(key) - i128::from(*low)) {
                    Ok(at) if at < *len => Some(at as u32),
                    _ => others.get(key),
                }
            }
        }
    }

    /// Where the rows of `keys` start, when they are consecutive integers (no nulls) whose
    /// rows are consecutive too: keys of a range's rows.
    fn rows_of_consecutive(&self, keys: &Int64Array) -> Option<usize> {
        let KeyIndex::Range { low, len, .. } = self else {
            return None;
        };
        let values = keys.values();
        let first = *values.first()?;
        let consecutive = keys.null_count() == 0
            && values
                .windows(2)
                .all(|pair| pair[0].checked_add(1) == Some(pair[1]));
        let at = usize::try_from(i128::from(first) - i128::from(*low)).ok()?;
        (consecutive && at + values.len() <= *len).then_some(at)
    }

    fn memory_size(&self) -> usize {
        match self {
            KeyIndex::Dense { rows, .. } => rows.capacity() * size_of::<u32>(),
            KeyIndex::Hashed(rows) => rows.capacity() * (size_of::<(i64, u32)>() + 1),
            KeyIndex::Range { others, .. } => others.memory_size(),
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Float64Array, ListArray};

    use super::*;

    #[tokio::test]
    async fn grouped_passes_in_one_phase_give_the_same_groups() {
        // Two partitions sharing keys, so that the two phases had groups to merge.
        let rows: [&[(Option<i64>, Option<i64>)]; 2] = [
            &[
                (Some(1), Some(5)),
                (Some(2), None),
                (Some(3), Some(7)),
                (Some(1), Some(5)),
            ],
            &[(Some(3), Some(8)), (Some(1), Some(6)), (Some(4), Some(9))],
        ];
        // Joins partitioned by key, whatever their size.
        let ctx = key_value_context(&rows, true);
        let sorted = |batches: Vec<RecordBatch>| crate::exec::sorted_rows(&batches);
        // A plain grouped pass; a distinct count, two grouped passes in a row; passes over a
        // window and over a join of passes, which need their input partitioned by key and
        // must keep it.
        for (query, groups) in [
            (
                "SELECT k, sum(v), min(v) FROM t GROUP BY k",
                &["1,16,5", "2,,", "3,15,7", "4,9,9"][..],
            ),
            (
                "SELECT k, count(DISTINCT v) FROM t GROUP BY k",
                &["1,2", "2,0", "3,2", "4,1"][..],
            ),
            (
                "SELECT r, count(*) FROM (SELECT row_number() OVER (PARTITION BY k ORDER BY v) \
                 AS r FROM t) GROUP BY r",
                &["1,4", "2,2", "3,1"][..],
            ),
            (
                "SELECT a.k, sum(a.s) FROM (SELECT k, sum(v) AS s FROM t GROUP BY k) a \
                 JOIN (SELECT k, count(*) AS c FROM t GROUP BY k) b ON a.k = b.k GROUP BY a.k",
                &["1,16", "2,", "3,15", "4,9"][..],
            ),
        ] {
            let frame = ctx.sql(query).await.expect("the query planned");
            let two_phases = (frame.create_physical_plan().await).expect("a physical plan");
            let before = aggregate_modes(&two_phases);
            assert!(
                before.contains(&AggregateMode::FinalPartitioned),
                "{query}: {before:?}"
            );
            // Planned again: operators such as a repartition run only once, and the
            // rewritten plan keeps those it does not change.
            let frame = ctx.sql(query).await.expect("the query planned");
            let planned = (frame.create_physical_plan().await).expect("a physical plan");
            let one_phase = single_phase(planned, false).expect("the rewrite");
            let after = aggregate_modes(&one_phase);
            if query.contains("JOIN") {
                // Partitioned by key, the join's output needs no second phase, and the
                // passes below the join keep theirs.
                assert_eq!(after, before, "{query}");
            } else {
                assert!(
                    after.iter().all(|mode| *mode == AggregateMode::Single),
                    "{query}: {after:?}"
                );
            }
            // Every operator still gets the distribution it requires.
            let sanity = datafusion::physical_optimizer::sanity_checker::SanityCheckPlan::new();
            if let Err(error) = sanity.optimize(Arc::clone(&one_phase), &ConfigOptions::new()) {
                panic!("{query}: {error}");
            }
            let expected = sorted(
                datafusion::physical_plan::collect(two_phases, ctx.task_ctx())
                    .await
                    .expect("the plan runs"),
            );
            let got = sorted(
                datafusion::physical_plan::collect(one_phase, ctx.task_ctx())
                    .await
                    .expect("the plan runs"),
            );
            assert_eq!(got, expected, "{query}");
            assert_eq!(expected, groups, "{query}");
        }
    }

    #[tokio::test]
    async fn passes_that_end_in_one_partition_aggregate_densely() {
        // Two partitions sharing keys, and a null key.
        let table: [&[(Option<i64>, Option<i64>)]; 2] = [
            &[
                (Some(1), Some(5)),
                (Some(2), None),
                (Some(3), Some(7)),
                (None, Some(1)),
            ],
            &[(Some(3), Some(8)), (Some(1), Some(6)), (Some(4), Some(9))],
        ];
        let join = "SELECT b.k, a.s, b.c FROM (SELECT k, sum(v) AS s FROM t WHERE v > 5 GROUP BY k) a \
                    RIGHT JOIN (SELECT k, count(*) AS c FROM t GROUP BY k) b ON a.k = b.k";
        // The query, whether its joins are partitioned, and how many passes become dense:
        // under a merge of sorted partitions, on both sides of a collected join, and none
        // under a partitioned join, whose inputs must keep their partitions.
        for (query, partitioned, dense, rows) in [
            (
                "SELECT k, sum(v) FROM t GROUP BY k ORDER BY k",
                false,
                1,
                &["1,11", "2,", "3,15", "4,9", ",1"][..],
            ),
            (
                join,
                false,
                2,
                &["1,6,2", "2,,1", "3,15,2", "4,9,1", ",,1"][..],
            ),
            (
                join,
                true,
                0,
                &["1,6,2", "2,,1", "3,15,2", "4,9,1", ",,1"][..],
            ),
        ] {
            let ctx = key_value_context(&table, partitioned);
            let frame = ctx.sql(query).await.expect("the query planned");
            let two_phases = (frame.create_physical_plan().await).expect("a physical plan");
            let frame = ctx.sql(query).await.expect("the query planned");
            let planned = (frame.create_physical_plan().await).expect("a physical plan");
            let rewritten = (DensePassesOfOnePartition.optimize(planned, &ConfigOptions::new()))
                .expect("the rewrite");
            let shown = datafusion::physical_plan::displayable(rewritten.as_ref())
                .indent(false)
                .to_string();
            assert_eq!(
                shown.matches("DenseKeyAggregateExec").count(),
                dense,
                "{query}\n{shown}"
            );
            let sanity = datafusion::physical_optimizer::sanity_checker::SanityCheckPlan::new();
            if let Err(error) = sanity.optimize(Arc::clone(&rewritten), &ConfigOptions::new()) {
                panic!("{query}: {error}\n{shown}");
            }
            let run = |plan| datafusion::physical_plan::collect(plan, ctx.task_ctx());
            let expected = crate::exec::sorted_rows(&run(two_phases).await.expect("the plan runs"));
            let got = crate::exec::sorted_rows(&run(rewritten).await.expect("the plan runs"));
            assert_eq!(got, expected, "{query}");
            let mut rows: Vec<String> = rows.iter().map(ToString::to_string).collect();
            rows.sort();
            assert_eq!(expected, rows, "{query}");
        }
    }

    /// A context of two target partitions with a table `t` of an integer key `k` and an
    /// integer value `v`, both nullable, with one partition of `(k, v)` rows per element
    /// of `partitions`. With `partitioned_joins`, its hash joins are partitioned by key
    /// whatever their size.
    fn key_value_context(
        partitions: &[&[(Option<i64>, Option<i64>)]],
        partitioned_joins: bool,
    ) -> datafusion::prelude::SessionContext {
        let schema = Arc::new(Schema::new(vec![
            datafusion::arrow::datatypes::Field::new("k", DataType::Int64, true),
            datafusion::arrow::datatypes::Field::new("v", DataType::Int64, true),
        ]));
        let batches: Vec<Vec<RecordBatch>> = partitions
            .iter()
            .map(|rows| {
                let keys: Int64Array = rows.iter().map(|(key, _)| *key).collect();
                let values: Int64Array = rows.iter().map(|(_, value)| *value).collect();
                let columns: Vec<ArrayRef> = vec![Arc::new(keys), Arc::new(values)];
                let batch = RecordBatch::try_new(Arc::clone(&schema), columns);
                vec![batch.expect("a batch of the table's schema")]
            })
            .collect();
        let table = datafusion::datasource::MemTable::try_new(schema, batches).expect("a table");
        let mut config = datafusion::prelude::SessionConfig::new().with_target_partitions(2);
        if partitioned_joins {
            for threshold in ["", "_rows"] {
                let key =
                    format!("datafusion.optimizer.hash_join_single_partition_threshold{threshold}");
                config = config.set_usize(&key, 0);
            }
        }
        let ctx = datafusion::prelude::SessionContext::new_with_config(config);
        ctx.register_table("t", Arc::new(table))
            .expect("the table registered");
        ctx
    }

    /// The modes of the aggregates in `plan`, top down.
    fn aggregate_modes(plan: &Arc<dyn ExecutionPlan>) -> Vec<AggregateMode> {
        let mut modes: Vec<AggregateMode> = plan
            .downcast_ref::<AggregateExec>()
            .map(|a| *a.mode())
            .into_iter()
            .collect();
        for child in plan.children() {
            modes.extend(aggregate_modes(child));
        }
        modes
    }

    fn index(keys: &[Option<i64>]) -> KeyIndex {
        KeyIndex::new(&Int64Array::from(keys.to_vec()), None)
    }

    #[test]
    fn dense_and_sparse_keys_find_their_rows() {
        let dense = index(&[Some(12), None, Some(10), Some(11)]);
        assert!(matches!(dense, KeyIndex::Dense { .. }));
        let sparse = index(&[Some(i64::MAX), None, Some(i64::MIN), Some(0)]);
        assert!(matches!(sparse, KeyIndex::Hashed(_)));
        for index in [dense, sparse] {
            let found: Vec<_> = [12, 10, 11, i64::MAX, i64::MIN, 0, 13, 9]
                .iter()
                .map(|&k| index.get(k))
                .collect();
            if matches!(index, KeyIndex::Dense { .. }) {
                assert_eq!(
                    found,
                    [Some(0), Some(2), Some(3), None, None, None, None, None]
                );
            } else {
                assert_eq!(
                    found,
                    [None, None, None, Some(0), Some(2), Some(3), None, None]
                );
            }
        }
    }

    #[test]
    fn a_repeated_key_keeps_its_first_row() {
        for keys in [
            [Some(5), Some(5), Some(6)],
            [Some(5), Some(5), Some(i64::MAX)],
        ] {
            assert_eq!(index(&keys).get(5), Some(0));
        }
    }

    #[test]
    fn absent_rows_and_nulls_take_the_absent_value() {
        let rows = UInt32Array::from(vec![Some(2), None, Some(0), Some(1)]);
        let counts: ArrayRef = Arc::new(Int64Array::from(vec![7, 8, 9]));
        let zero = ScalarValue::Int64(Some(0));
        let taken = take_filled(&counts, &rows, &zero).expect("counts");
        assert_eq!(
            taken.as_ref(),
            &Int64Array::from(vec![9, 0, 7, 8]) as &dyn Array
        );
        assert_eq!(taken.null_count(), 0);
        // A sum of nulls is null in its relation, and zero after the gather too.
        let sums: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.5), None, Some(2.5)]));
        let taken = take_filled(&sums, &rows, &ScalarValue::Float64(Some(0.0))).expect("sums");
        assert_eq!(
            taken.as_ref(),
            &Float64Array::from(vec![2.5, 0.0, 1.5, 0.0]) as &dyn Array
        );
        // Other types are filled too: the empty list of `distinct_list`.
        let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
            Some(vec![Some(1)]),
            Some(vec![Some(2), Some(3)]),
            Some(vec![]),
        ]));
        let empty = ScalarValue::List(ScalarValue::new_list_nullable(&[], &DataType::Int64));
        let taken = take_filled(&lists, &rows, &empty).expect("lists");
        let expected = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
            Some(vec![]),
            Some(vec![]),
            Some(vec![Some(1)]),
            Some(vec![Some(2), Some(3)]),
        ]);
        assert_eq!(taken.as_ref(), &expected as &dyn Array);
    }

    #[test]
    fn no_keys_index_nothing() {
        assert_eq!(index(&[]).get(0), None);
        assert_eq!(index(&[None, None]).get(0), None);
    }

    #[test]
    fn rows_of_a_key_range_are_found_by_position() {
        // Keys 10 to 13 first (12 without events: a null key), then keys outside and the
        // null key.
        let keys = Int64Array::from(vec![
            Some(10),
            Some(11),
            None,
            Some(13),
            Some(99),
            None,
            Some(5),
        ]);
        let ranged = KeyIndex::new(&keys, Some((10, 4)));
        assert!(matches!(ranged, KeyIndex::Range { .. }));
        let found: Vec<Option<u32>> = [10, 12, 13, 14, 99, 5, 9].map(|k| ranged.get(k)).into();
        assert_eq!(
            found,
            [Some(0), Some(2), Some(3), None, Some(4), Some(6), None]
        );
        // Consecutive keys inside the range are a slice; others are not.
        let slice = |keys: Vec<Option<i64>>| ranged.rows_of_consecutive(&Int64Array::from(keys));
        assert_eq!(slice(vec![Some(11), Some(12), Some(13)]), Some(1));
        assert_eq!(slice(vec![Some(12), Some(13), Some(14)]), None);
        assert_eq!(slice(vec![Some(10), Some(12)]), None);
        assert_eq!(slice(vec![Some(10), None]), None);
        assert_eq!(slice(vec![]), None);
        // Rows not in the range's order are indexed by key.
        for misplaced in [vec![Some(11), Some(10)], vec![Some(10)]] {
            let index = KeyIndex::new(&Int64Array::from(misplaced), Some((10, 2)));
            assert!(!matches!(index, KeyIndex::Range { .. }));
            assert_eq!(index.rows_of_consecutive(&Int64Array::from(vec![10])), None);
        }
    }
}
