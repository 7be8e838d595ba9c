//! LogicalPlan -> record batches and files. The only stage doing I/O on results.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::Int64Type;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::Column;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;

use crate::diagnostic::Diagnostic;
use crate::plan::gather::Gather;

/// Output formats of `segql run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Csv,
    Ndjson,
    Table,
    Parquet,
}

/// Plans with this many joins or more (a count of many segments) repartition both sides
/// of each hash join by key.
const MANY_JOINS: usize = 4;

/// The state `plan` is planned and run in: `ctx`'s, except that a plan with many joins
/// repartitions them. In-process contexts collect each join's build side into one table
/// (`engine::configure_local`), which made single segments faster; the 50 segments of the
/// benchmark counted together, in eight joins, took as long that way and kept 60% more
/// memory (1.0 GB against 0.63 GB at 1M profiles). Cluster contexts always repartition.
///
/// A plan with a gather (`plan::gather`, in-process plans of many relations) is planned
/// with the query planner that knows its operator, and the gather's relations aggregate
/// in one phase each. In this process, conditions read only their own columns
/// (`plan::narrow`).
pub fn state_for(ctx: &SessionContext, plan: &LogicalPlan) -> SessionState {
    let mut state = ctx.state();
    let (mut joins, mut gathers) = (0, 0);
    let _ = plan.apply(|node| {
        match node {
            LogicalPlan::Join(_) => joins += 1,
            LogicalPlan::Extension(e) if e.node.as_any().is::<Gather>() => gathers += 1,
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    if joins >= MANY_JOINS {
        state.config_mut().options_mut().optimizer.repartition_joins = true;
    }
    let narrow = crate::plan::has_own_functions(ctx);
    if !narrow && gathers == 0 {
        return state;
    }
    // The dense aggregation does not spill: only evaluations without a memory limit use it.
    let unlimited = matches!(
        ctx.runtime_env().memory_pool.memory_limit(),
        datafusion::execution::memory_pool::MemoryLimit::Infinite
    );
    let mut builder = SessionStateBuilder::new_from_existing(state);
    if narrow {
        builder = builder
            .with_optimizer_rule(Arc::new(crate::plan::existence_rows::ExistenceRows))
            .with_physical_optimizer_rule(Arc::new(crate::plan::proven::DropProvenConditions))
            .with_physical_optimizer_rule(Arc::new(crate::plan::narrow::NarrowInputs));
    }
    if narrow && gathers == 0 && unlimited {
        builder = builder
            .with_physical_optimizer_rule(Arc::new(crate::plan::gather::DensePassesOfOnePartition));
    }
    if gathers > 0 {
        builder = builder
            .with_query_planner(crate::plan::gather::query_planner())
            .with_physical_optimizer_rule(Arc::new(crate::plan::gather::SinglePhaseRelations {
                by_key: unlimited,
            }));
    }
    builder.build()
}

/// Executes a plan and collects its rows.
pub async fn collect(
    ctx: &SessionContext,
    plan: LogicalPlan,
) -> Result<Vec<RecordBatch>, Diagnostic> {
    let state = state_for(ctx, &plan);
    DataFrame::new(state, plan)
        .collect()
        .await
        .map_err(|e| runtime_error(&e))
}

/// Executes a plan and returns its physical plan annotated with what every operator did:
/// rows, time, bytes scanned, and the Parquet row groups and pages pruned (DataFusion's
/// `EXPLAIN ANALYZE`).
pub async fn explain_analyze(
    ctx: &SessionContext,
    plan: LogicalPlan,
) -> Result<String, Diagnostic> {
    let batches = DataFrame::new(state_for(ctx, &plan), plan)
        .explain(false, true)
        .map_err(|e| runtime_error(&e))?
        .collect()
        .await
        .map_err(|e| runtime_error(&e))?;
    let mut text = String::new();
    for batch in &batches {
        // Columns: plan_type, plan.
        let plans = ArrayFormatter::try_new(batch.column(1).as_ref(), &FormatOptions::default())
            .map_err(|e| crate::internal_error(&e.to_string()))?;
        for row in 0..batch.num_rows() {
            text.push_str(&plans.value(row).to_string());
            if !text.ends_with('\n') {
                text.push('\n');
            }
        }
    }
    Ok(text)
}

/// Keys proven unique by [`sorted_keys`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortedKeys {
    /// How many keys there are.
    pub count: u64,
    /// The lowest and the highest key (none in an empty table).
    pub bounds: Option<(i64, i64)>,
}

impl SortedKeys {
    /// The range of the keys when they are every integer in it (unique keys as many as
    /// the integers from the lowest to the highest).
    pub fn contiguous(&self) -> Option<(i64, i64)> {
        let (low, high) = self.bounds?;
        let width = i128::from(high) - i128::from(low) + 1;
        (i128::from(self.count) == width).then_some((low, high))
    }
}

/// `Some` when the values of `table.column` are non-null integers that increase strictly
/// within every partition of the scan (read in storage order), and the partitions' ranges
/// do not overlap: then no value repeats. One pass over one column, without a hash table.
/// Tables exported sorted by key pass; any other table returns `None` (not proven), and
/// the caller runs the grouped check.
pub async fn sorted_keys(
    ctx: &SessionContext,
    table: &str,
    column: &str,
) -> Result<Option<SortedKeys>, DataFusionError> {
    let frame = ctx
        .table(table)
        .await?
        .select(vec![datafusion::prelude::col(Column::new(
            Some(table),
            column,
        ))])?;
    if !frame.schema().field(0).data_type().is_integer() {
        return Ok(None);
    }
    let plan = frame.create_physical_plan().await?;
    let partitions = datafusion::physical_plan::collect_partitioned(plan, ctx.task_ctx()).await?;
    let mut ranges = Vec::new();
    let mut count = 0u64;
    for batches in partitions {
        let mut range: Option<(i64, i64)> = None;
        for batch in batches {
            let values = cast(batch.column(0), &DataType::Int64)?;
            if values.null_count() > 0 {
                return Ok(None);
            }
            let values = values.as_primitive::<Int64Type>();
            for &value in values.values() {
                match &mut range {
                    None => range = Some((value, value)),
                    Some((_, last)) if value > *last => *last = value,
                    Some(_) => return Ok(None),
                }
            }
            count += values.len() as u64;
        }
        ranges.extend(range);
    }
    ranges.sort_unstable();
    if !ranges.windows(2).all(|pair| pair[0].1 < pair[1].0) {
        return Ok(None);
    }
    let bounds = ranges.first().zip(ranges.last());
    Ok(Some(SortedKeys {
        count,
        bounds: bounds.map(|(first, last)| (first.0, last.1)),
    }))
}

/// A failure while reading data or executing, as a diagnostic.
pub fn runtime_error(error: &DataFusionError) -> Diagnostic {
    let message = error.to_string();
    let first = message.lines().next().unwrap_or(&message).to_string();
    let is_plan_bug = matches!(
        error.find_root(),
        DataFusionError::Plan(_) | DataFusionError::SchemaError(..) | DataFusionError::Internal(_)
    );
    if is_plan_bug {
        return crate::internal_error(&first);
    }
    if let DataFusionError::ResourcesExhausted(detail) = error.find_root() {
        // DataFusion's own advice names its configuration key, not the CLI option.
        let detail = detail.split(". Consider").next().unwrap_or(detail);
        return Diagnostic::error(
            "E0408",
            format!("the evaluation needs more memory than the memory limit allows ({detail})"),
        )
        .with_help("raise `--memory-limit`; sorts and grouping already spill to disk, so the rest of the plan needs the memory (fewer segments at once need less)");
    }
    Diagnostic::error("E0403", format!("evaluation failed: {first}"))
        .with_help("the data could not be read or processed; check that the files match the catalog (types in `columns`, CSV headers, time formats)")
}

/// `(segment, size)` pairs from the one-row result of a count plan.
pub fn counts_from_batches(batches: &[RecordBatch]) -> Result<Vec<(String, u64)>, Diagnostic> {
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Err(crate::internal_error("count plan returned no row"));
    };
    let mut counts = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if field.name().starts_with("__") {
            continue;
        }
        let value = column
            .as_any()
            .downcast_ref::<Int64Array>()
            .map(|a| a.value(0))
            .ok_or_else(|| crate::internal_error("count is not an integer"))?;
        counts.push((field.name().clone(), u64::try_from(value).unwrap_or(0)));
    }
    Ok(counts)
}

/// Every row of `batches`, its cells as [`format_cell`] writes them joined by commas,
/// sorted: results of plans compared whatever the order of their rows.
#[cfg(test)]
pub fn sorted_rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows: Vec<String> = (batches.iter())
        .flat_map(|batch| {
            (0..batch.num_rows()).map(move |row| {
                (0..batch.num_columns())
                    .map(|column| format_cell(batch, column, row))
                    .collect::<Vec<_>>()
                    .join(",")
            })
        })
        .collect();
    rows.sort();
    rows
}

/// One cell as text (empty for null), formatted as Arrow displays it.
pub fn format_cell(batch: &RecordBatch, column: usize, row: usize) -> String {
    let array = batch.column(column);
    if array.is_null(row) {
        return String::new();
    }
    ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())
        .map(|f| f.value(row).to_string())
        .unwrap_or_default()
}

/// Columns that CSV cannot hold (lists) turned into their text form.
fn csv_compatible(batch: &RecordBatch) -> Result<RecordBatch, Diagnostic> {
    let options = FormatOptions::default().with_null("");
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if matches!(
            field.data_type(),
            DataType::List(_)
                | DataType::LargeList(_)
                | DataType::Struct(_)
                | DataType::Map(..)
                | DataType::FixedSizeList(..)
        ) {
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)
                .map_err(|e| crate::internal_error(&e.to_string()))?;
            let strings: StringArray = (0..column.len())
                .map(|i| (!column.is_null(i)).then(|| formatter.value(i).to_string()))
                .collect();
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            columns.push(Arc::new(strings));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| crate::internal_error(&e.to_string()))
}

/// Writes batches in `format`. Parquet needs a file (see [`write_file`]).
pub fn write<W: Write + Send>(
    batches: &[RecordBatch],
    schema: &Schema,
    format: OutputFormat,
    out: W,
) -> Result<(), Diagnostic> {
    let io_error = |e: &dyn std::fmt::Display| {
        Diagnostic::error("E0405", format!("cannot write the result: {e}"))
            .with_help("check that the output location is writable and has space")
    };
    match format {
        OutputFormat::Csv => {
            let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            if batches.is_empty() {
                let empty = RecordBatch::new_empty(Arc::new(schema.clone()));
                writer
                    .write(&csv_compatible(&empty)?)
                    .map_err(|e| io_error(&e))?;
            }
            for batch in batches {
                writer
                    .write(&csv_compatible(batch)?)
                    .map_err(|e| io_error(&e))?;
            }
            writer.into_inner().flush().map_err(|e| io_error(&e))?;
        }
        OutputFormat::Ndjson => {
            let mut writer = datafusion::arrow::json::LineDelimitedWriter::new(out);
            for batch in batches {
                writer.write(batch).map_err(|e| io_error(&e))?;
            }
            writer.finish().map_err(|e| io_error(&e))?;
            writer.into_inner().flush().map_err(|e| io_error(&e))?;
        }
        OutputFormat::Table => {
            let mut out = out;
            let text = if batches.is_empty() {
                datafusion::arrow::util::pretty::pretty_format_batches(&[RecordBatch::new_empty(
                    Arc::new(schema.clone()),
                )])
            } else {
                datafusion::arrow::util::pretty::pretty_format_batches(batches)
            }
            .map_err(|e| io_error(&e))?;
            writeln!(out, "{text}").map_err(|e| io_error(&e))?;
            out.flush().map_err(|e| io_error(&e))?;
        }
        OutputFormat::Parquet => {
            let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(
                out,
                Arc::new(schema.clone()),
                None,
            )
            .map_err(|e| io_error(&e))?;
            for batch in batches {
                writer.write(batch).map_err(|e| io_error(&e))?;
            }
            writer.close().map_err(|e| io_error(&e))?;
        }
    }
    Ok(())
}

/// Writes to `path` through a temporary file in the same directory, renamed into place only
/// when complete: a failure never leaves a partial output file.
pub fn write_file(
    batches: &[RecordBatch],
    schema: &Schema,
    format: OutputFormat,
    path: &Path,
) -> Result<(), Diagnostic> {
    let cannot = |e: std::io::Error| {
        Diagnostic::error("E0405", format!("cannot write `{}`: {e}", path.display()))
            .with_help("check that the directory exists and is writable")
    };
    replace_file(
        path,
        |file| write(batches, schema, format, std::io::BufWriter::new(file)),
        cannot,
    )
}

/// Replaces `path` with what `fill` writes, through a temporary file in the same directory
/// renamed into place only when `fill` succeeds: nothing partial is ever left at `path`.
/// `io_error` turns the file system's errors into the caller's.
pub fn replace_file<E>(
    path: &Path,
    fill: impl FnOnce(&std::fs::File) -> Result<(), E>,
    io_error: impl Fn(std::io::Error) -> E,
) -> Result<(), E> {
    let directory = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temporary = tempfile::NamedTempFile::new_in(directory).map_err(&io_error)?;
    fill(temporary.as_file())?;
    temporary.persist(path).map_err(|e| io_error(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, StringArray};

    async fn sorted(column: ArrayRef) -> Option<SortedKeys> {
        let ctx = SessionContext::new();
        let batch = RecordBatch::try_from_iter([("key", column)]).expect("batch");
        ctx.register_batch("profiles", batch).expect("register");
        sorted_keys(&ctx, "profiles", "key").await.expect("check")
    }

    async fn increasing(column: ArrayRef) -> bool {
        sorted(column).await.is_some()
    }

    #[tokio::test]
    async fn only_strictly_increasing_integer_keys_are_proven_unique() {
        let ints = |values: Vec<Option<i32>>| Arc::new(Int32Array::from(values)) as ArrayRef;
        assert!(increasing(ints(vec![Some(1), Some(2), Some(7)])).await);
        assert!(!increasing(ints(vec![Some(1), Some(2), Some(2), Some(3)])).await);
        assert!(!increasing(ints(vec![Some(3), Some(1), Some(2)])).await);
        assert!(!increasing(ints(vec![Some(1), None, Some(3)])).await);
        let strings = Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef;
        assert!(
            !increasing(strings).await,
            "other key types take the grouped check"
        );
    }

    #[tokio::test]
    async fn sorted_keys_without_gaps_are_contiguous() {
        let ints = |values: Vec<i32>| Arc::new(Int32Array::from(values)) as ArrayRef;
        let contiguous = |keys: Option<SortedKeys>| keys.and_then(|k| k.contiguous());
        assert_eq!(
            contiguous(sorted(ints(vec![-1, 0, 1, 2])).await),
            Some((-1, 2))
        );
        assert_eq!(contiguous(sorted(ints(vec![7])).await), Some((7, 7)));
        assert_eq!(contiguous(sorted(ints(vec![1, 2, 4])).await), None, "a gap");
        assert_eq!(contiguous(sorted(ints(vec![])).await), None, "no keys");
        let keys = sorted(ints(vec![1, 2, 4])).await.expect("sorted");
        assert_eq!((keys.count, keys.bounds), (3, Some((1, 4))));
    }
}
