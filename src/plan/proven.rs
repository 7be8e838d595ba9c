//! Conditions the data's own statistics prove, dropped before any row is tested.
//!
//! Every pass over an event table keeps the events up to the evaluation time only
//! (`ts <= as_of`), and a relation standing for profiles known as a range of keys keeps
//! the keys within that range. On most data every event is in the past and every key
//! within the range, and a Parquet file's footer says so: each column's least and greatest
//! value and its count of nulls. DataFusion uses those statistics to skip row groups no
//! row of which can pass, but tests the condition on every row of the others, and reads
//! the time column for that test alone.
//!
//! [`DropProvenConditions`], a physical optimizer rule, drops each conjunct of a filter
//! over a file scan that the scan's exact statistics prove TRUE for every row: a column
//! compared with a constant, the column without nulls and all its values on the right
//! side of the constant. A filter left with no conjunct is dropped, and the scan then no
//! longer reads the columns only the filter read. `never_purchased` of the segment
//! benchmark reads 11M view keys without their times (BENCHMARKS.md).
//!
//! The statistics are read from the files' footers as the plan is made, just before it
//! runs. Plans in this process use the rule ([`crate::exec::state_for`]); another engine
//! reads its own copy of the data.

use std::cmp::Ordering;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{FieldRef, Schema};
use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::Operator;
use datafusion::parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use datafusion::parquet::arrow::parquet_to_arrow_schema;
use datafusion::parquet::file::metadata::ParquetMetaDataReader;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_expr::{PhysicalExpr, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, Partitioning};

/// The rule: see the module documentation.
#[derive(Debug, Default)]
pub struct DropProvenConditions;

impl PhysicalOptimizerRule for DropProvenConditions {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        super::replace_bottom_up(plan, |node| match node.downcast_ref::<FilterExec>() {
            Some(filter) => without_proven(filter),
            None => Ok(None),
        })
    }

    fn name(&self) -> &str {
        "drop_proven_conditions"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `filter` without the conjuncts its scan's statistics prove, or without the filter
/// when they prove all of them; `None` when they prove none, or the input is no scan.
fn without_proven(filter: &FilterExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let input = filter.input();
    let Some(scan) = scan_under(input) else {
        return Ok(None);
    };
    if filter.fetch().is_some() {
        return Ok(None);
    }
    let conjuncts = split_conjunction(filter.predicate());
    // The footers are read only for the columns compared, if any is.
    let compared: Vec<usize> = (conjuncts.iter())
        .filter_map(|conjunct| comparison(conjunct.as_ref()))
        .map(|(column, _, _)| column.index())
        .collect();
    if compared.is_empty() {
        return Ok(None);
    }
    let Some(ranges) = exact_ranges(scan, &compared) else {
        return Ok(None);
    };
    let unproven: Vec<Arc<dyn PhysicalExpr>> = (conjuncts.iter())
        .filter(|conjunct| !proven(conjunct.as_ref(), &ranges))
        .map(|conjunct| Arc::clone(conjunct))
        .collect();
    if unproven.len() == conjuncts.len() {
        return Ok(None);
    }
    let remaining = unproven
        .into_iter()
        .reduce(|left, right| Arc::new(BinaryExpr::new(left, Operator::And, right)));
    Ok(Some(match (remaining, filter.projection()) {
        (Some(predicate), _) => Arc::new(
            FilterExecBuilder::from(filter)
                .with_predicate(predicate)
                .build()?,
        ),
        (None, None) => Arc::clone(input),
        (None, Some(columns)) => projected(input, columns)?,
    }))
}

/// The scan under `plan`, through operators that pass its rows and columns on as they
/// are.
fn scan_under(plan: &Arc<dyn ExecutionPlan>) -> Option<&DataSourceExec> {
    match plan.downcast_ref::<DataSourceExec>() {
        Some(scan) => Some(scan),
        None if passes_on(plan) => scan_under(plan.children().first()?),
        None => None,
    }
}

/// Whether `plan` passes on its input's rows and columns as they are, only spread over
/// other partitions.
fn passes_on(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let coalesced = (plan.downcast_ref::<CoalescePartitionsExec>())
        .is_some_and(|coalesce| coalesce.fetch().is_none());
    let spread = (plan.downcast_ref::<RepartitionExec>()).is_some_and(|repartition| {
        matches!(repartition.partitioning(), Partitioning::RoundRobinBatch(_))
    });
    coalesced || spread
}

/// `plan` with only its output `columns`, projected in its scan where the scan can.
fn projected(plan: &Arc<dyn ExecutionPlan>, columns: &[usize]) -> Result<Arc<dyn ExecutionPlan>> {
    if passes_on(plan)
        && let Some(input) = plan.children().first()
    {
        let input = projected(input, columns)?;
        return Arc::clone(plan).replace_children(vec![input], super::gather::recompute());
    }
    let schema = plan.schema();
    let exprs = (columns.iter())
        .map(|&at| {
            let name = schema.field(at).name();
            ProjectionExpr::new(Arc::new(Column::new(name, at)), name.clone())
        })
        .collect::<Vec<_>>();
    let projection = ProjectionExec::try_new(exprs, Arc::clone(plan))?;
    // The scan reads only the projected columns if it can; else the projection stays.
    Ok(match plan.try_swapping_with_projection(&projection)? {
        Some(narrower) => narrower,
        None => Arc::new(projection),
    })
}

/// What the statistics prove of one column: no nulls, and every value from the first to
/// the second.
type Range = Option<(ScalarValue, ScalarValue)>;

/// Each output column's [`Range`] over all files of `scan`, from their footers, or
/// `None` when the scan is not of local Parquet files; only the `compared` columns have
/// one. Tables carry no statistics of DataFusion's (see [`crate::engine::configure`]), so
/// the footers are read here.
fn exact_ranges(scan: &DataSourceExec, compared: &[usize]) -> Option<Vec<Range>> {
    let config = scan.data_source().downcast_ref::<FileScanConfig>()?;
    if config.object_store_url != ObjectStoreUrl::local_filesystem()
        || config.file_source.file_type() != "parquet"
    {
        return None;
    }
    let schema = scan.schema();
    let mut ranges: Option<Vec<Range>> = None;
    for file in config.file_groups.iter().flat_map(|group| group.files()) {
        let path = Path::new("/").join(file.object_meta.location.as_ref());
        let file_ranges = parquet_ranges(&path, &schema, compared)?;
        ranges = Some(match ranges {
            None => file_ranges,
            Some(ranges) => (ranges.into_iter().zip(file_ranges))
                .map(|(a, b)| widest(a?, b?))
                .collect(),
        });
    }
    ranges
}

/// The [`Range`] of each of the `compared` columns of `schema` in the Parquet file at
/// `path`, from its row groups' statistics (none for the other columns); `None` if its
/// footer cannot be read.
fn parquet_ranges(path: &Path, schema: &Schema, compared: &[usize]) -> Option<Vec<Range>> {
    let file = File::open(path).ok()?;
    let metadata = ParquetMetaDataReader::new().parse_and_finish(&file).ok()?;
    let descriptor = metadata.file_metadata().schema_descr();
    let file_schema =
        parquet_to_arrow_schema(descriptor, metadata.file_metadata().key_value_metadata()).ok()?;
    let range = |field: &FieldRef| -> Range {
        let converter =
            StatisticsConverter::try_new(field.name(), &file_schema, descriptor).ok()?;
        let row_groups = metadata.row_groups();
        let (mins, maxes) = (
            converter.row_group_mins(row_groups.iter()).ok()?,
            converter.row_group_maxes(row_groups.iter()).ok()?,
        );
        let nulls = converter.row_group_null_counts(row_groups.iter()).ok()?;
        let known =
            |values: &ArrayRef| values.data_type() == field.data_type() && values.null_count() == 0;
        let no_nulls = nulls.null_count() == 0 && nulls.values().iter().all(|&count| count == 0);
        if !known(&mins) || !known(&maxes) || !no_nulls {
            return None;
        }
        (0..mins.len())
            .map(|at| {
                let min = ScalarValue::try_from_array(&mins, at).ok()?;
                let max = ScalarValue::try_from_array(&maxes, at).ok()?;
                Some((min, max))
            })
            .reduce(|a, b| widest(a?, b?))?
    };
    let ranges = (schema.fields().iter().enumerate())
        .map(|(at, field)| compared.contains(&at).then(|| range(field)).flatten());
    Some(ranges.collect())
}

/// The range covering both `a` and `b`, if their values compare.
fn widest(a: (ScalarValue, ScalarValue), b: (ScalarValue, ScalarValue)) -> Range {
    let min = match a.0.partial_cmp(&b.0)? {
        Ordering::Greater => b.0,
        _ => a.0,
    };
    let max = match a.1.partial_cmp(&b.1)? {
        Ordering::Less => b.1,
        _ => a.1,
    };
    Some((min, max))
}

/// `conjunct` as a column compared with a number or time: the column, the comparison
/// (column on the left) and the constant.
fn comparison(conjunct: &dyn PhysicalExpr) -> Option<(&Column, Operator, &ScalarValue)> {
    let binary = conjunct.downcast_ref::<BinaryExpr>()?;
    let (column, op, constant) = match (
        binary.left().downcast_ref::<Column>(),
        binary.right().downcast_ref::<Literal>(),
    ) {
        (Some(column), Some(constant)) => (column, *binary.op(), constant),
        _ => (
            binary.right().downcast_ref::<Column>()?,
            binary.op().swap()?,
            binary.left().downcast_ref::<Literal>()?,
        ),
    };
    let value = constant.value();
    // Only numbers and times: a text's statistics may be cut short.
    let ordered = value.data_type().is_numeric() || value.data_type().is_temporal();
    let compares = matches!(
        op,
        Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
    );
    (ordered && compares && !value.is_null()).then_some((column, op, value))
}

/// Whether `conjunct` is a [`comparison`] that holds for every value of the column's
/// range.
fn proven(conjunct: &dyn PhysicalExpr, ranges: &[Range]) -> bool {
    let Some((column, op, value)) = comparison(conjunct) else {
        return false;
    };
    let Some(Some((min, max))) = ranges.get(column.index()) else {
        return false;
    };
    if min.data_type() != value.data_type() || max.data_type() != value.data_type() {
        return false;
    }
    let holds = |ordering: Option<Ordering>, allowed: &[Ordering]| {
        ordering.is_some_and(|ordering| allowed.contains(&ordering))
    };
    use Ordering::{Equal, Greater, Less};
    match op {
        Operator::LtEq => holds(max.partial_cmp(value), &[Less, Equal]),
        Operator::Lt => holds(max.partial_cmp(value), &[Less]),
        Operator::GtEq => holds(min.partial_cmp(value), &[Greater, Equal]),
        Operator::Gt => holds(min.partial_cmp(value), &[Greater]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::{ParquetReadOptions, SessionContext};

    use super::*;

    /// A context with table `t`: a Parquet file of keys 1 to 5 with times 10 to 50
    /// (microseconds), the time of key 3 null if `null_time`. The directory holds the file.
    async fn events_table(null_time: bool) -> (tempfile::TempDir, SessionContext) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ]));
        let times = (1..=5).map(|k| (!null_time || k != 3).then_some(k * 10));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from_iter_values(1..=5)),
                Arc::new(TimestampMicrosecondArray::from_iter(times)),
            ],
        )
        .expect("a batch");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.parquet");
        let file = File::create(&path).expect("a file");
        let mut writer = ArrowWriter::try_new(file, schema, None).expect("a writer");
        writer.write(&batch).expect("written");
        writer.close().expect("closed");
        let ctx = SessionContext::new();
        let path = path.to_str().expect("a UTF-8 path");
        (ctx.register_parquet("t", path, ParquetReadOptions::default())
            .await)
            .expect("t");
        (dir, ctx)
    }

    /// The plan of `sql` with the rule applied, and the rows of `sql` without and with it.
    /// Each run plans anew: a plan's repartitions run once.
    async fn applied(ctx: &SessionContext, sql: &str) -> (String, usize, usize) {
        let plan = || async {
            (ctx.sql(sql).await.expect("SQL"))
                .create_physical_plan()
                .await
        };
        let rows = |batches: Vec<RecordBatch>| batches.iter().map(RecordBatch::num_rows).sum();
        let before = plan().await.expect("a plan");
        let before = rows(collect(before, ctx.task_ctx()).await.expect("rows"));
        let optimized = (DropProvenConditions
            .optimize(plan().await.expect("a plan"), &ConfigOptions::new()))
        .expect("the rule");
        let shown = displayable(optimized.as_ref()).indent(true).to_string();
        let after = rows(collect(optimized, ctx.task_ctx()).await.expect("rows"));
        (shown, before, after)
    }

    #[tokio::test]
    async fn a_condition_every_row_meets_is_dropped_with_the_column_only_it_read() {
        let (_dir, ctx) = events_table(false).await;
        let at = |micros: i64| format!("arrow_cast({micros}, 'Timestamp(Microsecond, None)')");
        // Every time is at most 50, every key at least 1: no filter, and no time read.
        let (plan, before, after) = applied(
            &ctx,
            &format!("SELECT k FROM t WHERE ts <= {} AND k >= 1", at(50)),
        )
        .await;
        assert_eq!((before, after), (5, 5));
        assert!(!plan.contains("FilterExec"), "{plan}");
        assert!(plan.contains("projection=[k]"), "{plan}");
        // The constant on the left, and strict comparisons just outside the range.
        let sql = format!("SELECT k FROM t WHERE {} < ts AND 6 > k", at(9));
        let (plan, _, after) = applied(&ctx, &sql).await;
        assert!(!plan.contains("FilterExec") && after == 5, "{plan}");
        // Only the conjunct that some row fails stays.
        let sql = format!("SELECT k FROM t WHERE ts < {} AND k >= 1", at(50));
        let (plan, before, after) = applied(&ctx, &sql).await;
        assert_eq!((before, after), (4, 4));
        let filter = plan.lines().next();
        assert_eq!(
            filter,
            Some("FilterExec: ts@1 < 50, projection=[k@0]"),
            "{plan}"
        );
        let (plan, before, after) = applied(&ctx, "SELECT k FROM t WHERE k > 1").await;
        assert_eq!((before, after), (4, 4));
        assert!(plan.contains("FilterExec"), "{plan}");
    }

    #[tokio::test]
    async fn a_column_with_nulls_proves_nothing() {
        let (_dir, ctx) = events_table(true).await;
        // A null time fails `ts <= 50`: the filter stays, and key 3 is not kept.
        let sql = "SELECT k FROM t WHERE ts <= arrow_cast(50, 'Timestamp(Microsecond, None)')";
        let (plan, before, after) = applied(&ctx, sql).await;
        assert_eq!((before, after), (4, 4));
        assert!(plan.contains("FilterExec"), "{plan}");
    }
}
