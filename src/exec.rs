//! LogicalPlan -> record batches and files. The only stage doing I/O on results.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;

use crate::diagnostic::Diagnostic;

/// Output formats of `segql run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Csv,
    Ndjson,
    Table,
    Parquet,
}

/// Executes a plan and collects its rows.
pub async fn collect(
    ctx: &SessionContext,
    plan: LogicalPlan,
) -> Result<Vec<RecordBatch>, Diagnostic> {
    let frame = ctx
        .execute_logical_plan(plan)
        .await
        .map_err(|e| runtime_error(&e))?;
    frame.collect().await.map_err(|e| runtime_error(&e))
}

/// Executes a plan and returns its physical plan annotated with what every operator did:
/// rows, time, bytes scanned, and the Parquet row groups and pages pruned (DataFusion's
/// `EXPLAIN ANALYZE`).
pub async fn explain_analyze(
    ctx: &SessionContext,
    plan: LogicalPlan,
) -> Result<String, Diagnostic> {
    let batches = ctx
        .execute_logical_plan(plan)
        .await
        .and_then(|frame| frame.explain(false, true))
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
    let directory = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let cannot = |e: &dyn std::fmt::Display| {
        Diagnostic::error("E0405", format!("cannot write `{}`: {e}", path.display()))
            .with_help("check that the directory exists and is writable")
    };
    let temporary = tempfile::NamedTempFile::new_in(directory).map_err(|e| cannot(&e))?;
    {
        let file = std::io::BufWriter::new(temporary.as_file());
        write(batches, schema, format, file)?;
    }
    temporary.persist(path).map_err(|e| cannot(&e.error))?;
    Ok(())
}
