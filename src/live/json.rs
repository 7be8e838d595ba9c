//! The NDJSON contract of `segql watch`: one event per input line, one change per output
//! line.
//!
//! An input line is an object whose `event` names an event table of the catalog (or is
//! `"profile"`), and whose other fields are that table's columns by their catalog names.
//! Times are RFC 3339 strings (`"1997-03-01T00:00:00Z"`) or dates (`"1997-03-01"`, UTC).
//! A column left out is null. An output line is
//! `{"segment": "vip", "key": 7, "change": "enter", "at": "1997-03-01T00:00:00Z"}`.

use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Value as Json};

use super::{Change, Datum, Event, Key};
use crate::catalog::{CatalogSchema, TableSchema};
use crate::check::ir::Type;

/// The `event` value that writes a profile.
pub const PROFILE_EVENT: &str = "profile";

/// Parses one input line into an event of `schema`'s tables, or says what is wrong.
pub fn parse_event(line: &str, schema: &CatalogSchema) -> Result<Event, String> {
    let value: Json = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Json::Object(mut fields) = value else {
        return Err("not a JSON object: write one event per line as {\"event\": ..., ...}".into());
    };
    let name = match fields.remove("event") {
        Some(Json::String(name)) => name,
        Some(_) => {
            return Err("`event` must be a string naming an event table or \"profile\"".into());
        }
        None => {
            return Err(
                "no `event` field: name the event table (or \"profile\") in `event`".into(),
            );
        }
    };
    if name == PROFILE_EVENT {
        return Ok(Event::Profile(row(fields, &schema.profiles)?));
    }
    let Some(table) = schema.events.iter().position(|t| t.name == name) else {
        let known: Vec<&str> = schema.events.iter().map(|t| t.name.as_str()).collect();
        return Err(format!(
            "unknown event `{name}`: the catalog has {} and \"{PROFILE_EVENT}\"",
            known.join(", ")
        ));
    };
    let row = row(fields, &schema.events[table])?;
    Ok(Event::Occurred { table, row })
}

fn row(mut fields: Map<String, Json>, table: &TableSchema) -> Result<Vec<Datum>, String> {
    let mut row = Vec::with_capacity(table.columns.len());
    for column in &table.columns {
        let value = fields.remove(&column.name).unwrap_or(Json::Null);
        let datum = match &column.ty {
            Some(ty) => convert(&value, ty).map_err(|expected| {
                format!(
                    "`{}` is {value}, not {expected} (the column's type is {ty})",
                    column.name
                )
            })?,
            None => Datum::Null,
        };
        row.push(datum);
    }
    if let Some(unknown) = fields.keys().next() {
        let known: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        return Err(format!(
            "`{}` has no column `{unknown}`; its columns are {}",
            table.name,
            known.join(", ")
        ));
    }
    Ok(row)
}

/// A JSON value as a datum of type `ty`; on a mismatch, what was expected.
fn convert(value: &Json, ty: &Type) -> Result<Datum, &'static str> {
    if value.is_null() {
        return Ok(Datum::Null);
    }
    match (ty, value) {
        (Type::Bool, Json::Bool(b)) => Ok(Datum::Bool(*b)),
        (Type::Int, Json::Number(n)) => n.as_i64().map(Datum::Int).ok_or("an integer"),
        (Type::Int, _) => Err("an integer"),
        (Type::Float, Json::Number(n)) => n.as_f64().map(Datum::Float).ok_or("a number"),
        (Type::Float, _) => Err("a number"),
        (Type::String, Json::String(s)) => Ok(Datum::Str(s.as_str().into())),
        (Type::Timestamp, Json::String(s)) => crate::syntax::parse_timestamp(s)
            .map(Datum::Ts)
            .ok_or("a time such as \"1997-03-01T00:00:00Z\""),
        (Type::Timestamp, _) => Err("a time such as \"1997-03-01T00:00:00Z\""),
        (Type::List(item), Json::Array(items)) => items
            .iter()
            .map(|i| convert(i, item))
            .collect::<Result<Vec<_>, _>>()
            .map(|items| Datum::List(items.into())),
        (Type::List(_), _) => Err("a list"),
        (Type::Bool, _) => Err("true or false"),
        (Type::String, _) => Err("a string"),
        _ => Err("a value SegQL reads"),
    }
}

/// One change as an output line (without the newline), fields in the documented order;
/// `id` is the change's number in a durable run (`segql watch --state`).
pub fn change_line(change: &Change, id: Option<u64>) -> String {
    let key = match &change.key {
        Key::Int(i) => i.to_string(),
        Key::Str(s) => Json::from(s.as_str()).to_string(),
    };
    let id = id.map_or_else(String::new, |id| format!(",\"id\":{id}"));
    format!(
        "{{\"segment\":{},\"key\":{key},\"change\":\"{}\",\"at\":\"{}\"{id}}}",
        Json::from(&*change.segment),
        if change.entered { "enter" } else { "exit" },
        format_time(change.at)
    )
}

/// A time as RFC 3339 in UTC, with as many fractional digits as it needs.
pub fn format_time(nanos: i64) -> String {
    DateTime::from_timestamp_nanos(nanos).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ColumnSchema;

    fn schema() -> CatalogSchema {
        let column = |name: &str, ty: Type| ColumnSchema {
            name: name.into(),
            ty: Some(ty),
            source_type: String::new(),
        };
        CatalogSchema {
            profiles: TableSchema {
                name: "customers".into(),
                key: "id".into(),
                time: None,
                columns: vec![
                    column("id", Type::Int),
                    column("tags", Type::List(Box::new(Type::String))),
                ],
            },
            events: vec![TableSchema {
                name: "purchased".into(),
                key: "id".into(),
                time: Some("ts".into()),
                columns: vec![
                    column("id", Type::Int),
                    column("ts", Type::Timestamp),
                    column("amount", Type::Float),
                ],
            }],
        }
    }

    #[test]
    fn events_and_profiles_parse_by_column_name() {
        let schema = schema();
        let event = parse_event(
            r#"{"event": "purchased", "id": 7, "ts": "1970-01-02T00:00:00Z", "amount": 12}"#,
            &schema,
        );
        assert_eq!(
            event,
            Ok(Event::Occurred {
                table: 0,
                row: vec![
                    Datum::Int(7),
                    Datum::Ts(86_400_000_000_000),
                    Datum::Float(12.0)
                ]
            })
        );
        let profile = parse_event(r#"{"event": "profile", "id": 1, "tags": ["a"]}"#, &schema);
        assert_eq!(
            profile,
            Ok(Event::Profile(vec![
                Datum::Int(1),
                Datum::List(vec![Datum::Str("a".into())].into())
            ]))
        );
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let schema = schema();
        for (line, expected) in [
            ("{", "not JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"id": 1}"#, "no `event` field"),
            (
                r#"{"event": "bought"}"#,
                "unknown event `bought`: the catalog has purchased",
            ),
            (
                r#"{"event": "purchased", "id": "x"}"#,
                "`id` is \"x\", not an integer",
            ),
            (
                r#"{"event": "purchased", "ts": "soon"}"#,
                "not a time such as",
            ),
            (
                r#"{"event": "purchased", "price": 1}"#,
                "`purchased` has no column `price`",
            ),
        ] {
            let error = parse_event(line, &schema).expect_err(line);
            assert!(error.contains(expected), "{line}: {error}");
        }
    }

    #[test]
    fn changes_print_as_one_json_object() {
        let change = Change {
            segment: "vip".into(),
            key: Key::Int(7),
            entered: true,
            at: 86_400_000_000_000,
        };
        assert_eq!(
            change_line(&change, None),
            r#"{"segment":"vip","key":7,"change":"enter","at":"1970-01-02T00:00:00Z"}"#
        );
        assert_eq!(
            change_line(&change, Some(41)),
            r#"{"segment":"vip","key":7,"change":"enter","at":"1970-01-02T00:00:00Z","id":41}"#
        );
    }
}
