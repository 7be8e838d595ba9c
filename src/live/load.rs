//! The catalog's current tables as events, to start an engine from (`--initial`), and
//! Arrow values as [`Datum`]s.

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::prelude::col;

use super::{Datum, Event};
use crate::catalog::TableSchema;
use crate::{Report, Session, internal_error};

/// Every profile and every event of the session's tables, profiles first, each row in
/// its table's catalog column order.
pub async fn current_events(session: &Session) -> Result<Vec<Event>, Report> {
    let schema = session.schema();
    let mut events = Vec::new();
    for row in table_rows(session, &schema.profiles).await? {
        events.push(Event::Profile(row));
    }
    for (table, layout) in schema.events.iter().enumerate() {
        for row in table_rows(session, layout).await? {
            events.push(Event::Occurred { table, row });
        }
    }
    Ok(events)
}

async fn table_rows(session: &Session, table: &TableSchema) -> Result<Vec<Vec<Datum>>, Report> {
    let failed = |e: datafusion::error::DataFusionError| {
        Report::new(
            internal_error(&format!("cannot read the table `{}`: {e}", table.name)).into(),
            session.sources(),
        )
    };
    let columns: Vec<_> = table
        .columns
        .iter()
        .map(|c| col(format!("\"{}\"", c.name)))
        .collect();
    let frame = session
        .context()
        .table(table.name.as_str())
        .await
        .map_err(failed)?
        .select(columns)
        .map_err(failed)?;
    let batches = frame.collect().await.map_err(failed)?;
    let mut rows = Vec::new();
    for batch in &batches {
        rows.extend(batch_rows(batch).map_err(failed)?);
    }
    Ok(rows)
}

/// The rows of a batch as datums.
pub fn batch_rows(batch: &RecordBatch) -> datafusion::error::Result<Vec<Vec<Datum>>> {
    let mut rows: Vec<Vec<Datum>> = (0..batch.num_rows())
        .map(|_| Vec::with_capacity(batch.num_columns()))
        .collect();
    for column in batch.columns() {
        for (at, row) in rows.iter_mut().enumerate() {
            row.push(cell(column, at)?);
        }
    }
    Ok(rows)
}

fn cell(column: &ArrayRef, row: usize) -> datafusion::error::Result<Datum> {
    if column.is_null(row) {
        return Ok(Datum::Null);
    }
    Ok(datum(ScalarValue::try_from_array(column, row)?))
}

/// An Arrow scalar as a datum; types SegQL has no use for become null.
pub fn datum(value: ScalarValue) -> Datum {
    const MICRO: i64 = 1_000;
    const MILLI: i64 = 1_000_000;
    const SECOND: i64 = 1_000_000_000;
    let scaled =
        |v: Option<i64>, nanos: i64| v.map_or(Datum::Null, |v| Datum::Ts(v.saturating_mul(nanos)));
    let duration =
        |v: Option<i64>, nanos: i64| v.map_or(Datum::Null, |v| Datum::Dur(v.saturating_mul(nanos)));
    match value {
        ScalarValue::Boolean(Some(b)) => Datum::Bool(b),
        ScalarValue::Int8(Some(i)) => Datum::Int(i.into()),
        ScalarValue::Int16(Some(i)) => Datum::Int(i.into()),
        ScalarValue::Int32(Some(i)) => Datum::Int(i.into()),
        ScalarValue::Int64(Some(i)) => Datum::Int(i),
        ScalarValue::UInt8(Some(i)) => Datum::Int(i.into()),
        ScalarValue::UInt16(Some(i)) => Datum::Int(i.into()),
        ScalarValue::UInt32(Some(i)) => Datum::Int(i.into()),
        ScalarValue::UInt64(Some(i)) => i64::try_from(i).map_or(Datum::Null, Datum::Int),
        ScalarValue::Float32(Some(x)) => Datum::Float(x.into()),
        ScalarValue::Float64(Some(x)) => Datum::Float(x),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Datum::Str(s.into()),
        ScalarValue::TimestampSecond(v, _) => scaled(v, SECOND),
        ScalarValue::TimestampMillisecond(v, _) => scaled(v, MILLI),
        ScalarValue::TimestampMicrosecond(v, _) => scaled(v, MICRO),
        ScalarValue::TimestampNanosecond(v, _) => scaled(v, 1),
        ScalarValue::Date32(v) => scaled(v.map(i64::from), 86_400 * SECOND),
        ScalarValue::Date64(v) => scaled(v, MILLI),
        ScalarValue::DurationSecond(v) => duration(v, SECOND),
        ScalarValue::DurationMillisecond(v) => duration(v, MILLI),
        ScalarValue::DurationMicrosecond(v) => duration(v, MICRO),
        ScalarValue::DurationNanosecond(v) => duration(v, 1),
        ScalarValue::List(list) => list_datum(list.as_ref()),
        ScalarValue::LargeList(list) => list_datum(list.as_ref()),
        _ => Datum::Null,
    }
}

fn list_datum(list: &dyn Array) -> Datum {
    use datafusion::arrow::array::AsArray;
    let Some(lists) = list
        .as_list_opt::<i32>()
        .map(|l| l.value(0))
        .or_else(|| list.as_list_opt::<i64>().map(|l| l.value(0)))
    else {
        return Datum::Null;
    };
    let mut items = Vec::with_capacity(lists.len());
    for at in 0..lists.len() {
        match cell(&lists, at) {
            Ok(item) => items.push(item),
            Err(_) => return Datum::Null,
        }
    }
    Datum::List(items.into())
}
