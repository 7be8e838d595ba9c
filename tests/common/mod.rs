//! Helpers shared by the integration tests that drive `segql watch`.
// Each test crate uses some of them.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use datafusion::arrow::array::{Array, Int64Array};
use segql::Session;
use segql::live::{Datum, Event, json::format_time};

/// The members of segment `name`, from its DataFusion plan in `session`.
pub async fn members(session: &Session, name: &str) -> BTreeSet<i64> {
    let plan = session.plan_segments(&[name], &[]).expect("plan");
    let batches = session
        .execute(plan)
        .await
        .unwrap_or_else(|r| panic!("`{name}` runs:\n{r}"));
    let mut keys = BTreeSet::new();
    for batch in &batches {
        let ints = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("Int64 keys");
        keys.extend((0..ints.len()).map(|i| ints.value(i)));
    }
    keys
}

/// The rows (segment, key) of the listing of `names` in one plan in `session`, in its
/// order.
pub async fn listing(session: &Session, names: &[&str]) -> Vec<(String, String)> {
    let plan = (session.plan_segments(names, &[])).unwrap_or_else(|r| panic!("{r}"));
    let batches = (session.execute(plan).await).unwrap_or_else(|r| panic!("{r}"));
    let mut rows = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            let cell = |c: usize| {
                datafusion::arrow::util::display::array_value_to_string(batch.column(c), row)
                    .expect("a value")
            };
            rows.push((cell(0), cell(1)));
        }
    }
    rows
}

/// The demo's profiles and then its events in time order, as `segql watch` input lines
/// (the NDJSON contract of docs/realtime.md), with `limit` events at most.
pub fn demo_event_lines(limit: usize) -> Vec<String> {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (session, events) = runtime.block_on(async {
        let session = segql::Session::open(Path::new("examples/shop/segql.toml"))
            .await
            .expect("the demo catalog");
        let events = segql::live::current_events(&session)
            .await
            .expect("the demo tables");
        (session, events)
    });
    let schema = session.schema();
    let (profiles, mut occurred): (Vec<Event>, Vec<Event>) = events
        .into_iter()
        .partition(|e| matches!(e, Event::Profile(_)));
    let time = |event: &Event| match event {
        Event::Occurred { table, row } => {
            let at = schema.events[*table]
                .columns
                .iter()
                .position(|c| Some(&c.name) == schema.events[*table].time.as_ref())
                .expect("a time column");
            match row[at] {
                Datum::Ts(t) => t,
                _ => i64::MIN,
            }
        }
        Event::Profile(_) => i64::MIN,
    };
    occurred.sort_by_key(time);
    occurred.truncate(limit);
    let mut lines = Vec::new();
    for event in profiles.iter().chain(&occurred) {
        let (name, table, row) = match event {
            Event::Profile(row) => ("profile", &schema.profiles, row),
            Event::Occurred { table, row } => {
                let layout = &schema.events[*table];
                (layout.name.as_str(), layout, row)
            }
        };
        let mut object = serde_json::Map::new();
        object.insert("event".into(), name.into());
        for (column, value) in table.columns.iter().zip(row) {
            if !value.is_null() {
                object.insert(column.name.clone(), json(value));
            }
        }
        lines.push(serde_json::Value::Object(object).to_string());
    }
    lines
}

fn json(value: &Datum) -> serde_json::Value {
    match value {
        Datum::Null => serde_json::Value::Null,
        Datum::Bool(b) => (*b).into(),
        Datum::Int(i) => (*i).into(),
        Datum::Float(x) => (*x).into(),
        Datum::Str(s) => (**s).into(),
        Datum::Ts(t) => format_time(*t).into(),
        Datum::Dur(d) => (*d).into(),
        Datum::List(items) => items.iter().map(json).collect(),
    }
}

/// The change lines of a `segql watch` output without their ids, for comparing a durable
/// run with a plain one.
pub fn without_ids(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| {
            let mut change: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            if let Some(object) = change.as_object_mut() {
                object.remove("id");
            }
            change
        })
        .collect()
}

/// Writes `lines` to `path`, one per line.
pub fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).expect("write events");
}

/// The reference run: `segql watch` over the demo segments and the `events` file in one
/// uninterrupted run without --state (with `more` arguments), its changes without ids.
pub fn plain_watch(directory: &Path, events: &Path, more: &[&str]) -> Vec<serde_json::Value> {
    let out = directory.join("plain.ndjson");
    let output = Command::new(env!("CARGO_BIN_EXE_segql"))
        .arg("watch")
        .arg(std::fs::canonicalize("examples/shop/segments.seg").expect("the demo segments"))
        .arg("--events")
        .arg(events)
        .arg("--out")
        .arg(&out)
        .args(more)
        .current_dir(directory)
        .output()
        .expect("segql runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    without_ids(&std::fs::read_to_string(out).expect("changes"))
}
