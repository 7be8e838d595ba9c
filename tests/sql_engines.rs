//! The SQL SegQL emits, run on real engines: DuckDB and SQLite in memory, PostgreSQL and
//! MariaDB at `SEGQL_TEST_POSTGRES_URL` and `SEGQL_TEST_MYSQL_URL` (`.ci/run` sets both).
//! `scripts/sql_engines.py` loads the demo tables into each engine and runs the queries;
//! every segment's members there must be the members DataFusion finds in process.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use datafusion::sql::sqlparser::dialect::BigQueryDialect;
use datafusion::sql::sqlparser::parser::Parser;
use segql::Session;
use segql::live::Datum;
use segql::sql::{SqlDialect, TableNaming};
use serde_json::{Value, json};

/// The segments and files every dialect is tested on.
const FILES: [&str; 6] = [
    "tests/sql/escaping.seg",
    "tests/sql/constructs.seg",
    "tests/sql/rankings.seg",
    "tests/sql/sequences.seg",
    "examples/shop/segments.seg",
    "bench/segments.seg",
];

/// What the emitted SQL cannot do yet, by construct: (construct, dialects, segments).
/// The test fails if one of these starts to work (shorten the list) or anything else
/// fails, so the list is exactly what docs/sql.md reports as missing.
const KNOWN_GAPS: &[(&str, &[&str], &[&str])] = &[
    (
        "matches",
        &["sqlite"],
        &["flagship_electronics", "regular_pattern"],
    ),
    (
        "sample (no md5)",
        &["sqlite"],
        &["holdout_spring", "german_treatment"],
    ),
    (
        "distinct_list (an untyped empty array; no array_agg)",
        &["postgres", "mysql", "sqlite"],
        &["browsed_books_and_electronics", "no_recent_books"],
    ),
    (
        "lookalike (no stddev_pop)",
        &["sqlite"],
        &["income_lookalikes"],
    ),
    (
        "timestamp ± duration (INTERVAL)",
        &["sqlite"],
        &[
            "signed_up_a_month_before_buying",
            "recent_signup_minus_hours",
        ],
    ),
];

/// Demo segments whose `--with` columns (a string, an integer, a float metric and a
/// stage) are compared on every engine, row by row.
const WITH_SEGMENTS: [&str; 3] = ["dach", "big_spenders", "new_customers"];
const WITH_COLUMNS: [&str; 4] = ["city", "age", "revenue", "lifecycle"];

/// The rows DataFusion finds for `name` with `WITH_COLUMNS`, sorted by key.
async fn rows_with_columns(session: &Session, name: &str) -> Vec<Vec<Datum>> {
    let plan = session.plan_segments(&[name], &WITH_COLUMNS).expect("plan");
    let batches = session.execute(plan).await.expect("run");
    let mut rows = Vec::new();
    for batch in &batches {
        rows.extend(segql::live::batch_rows(batch).expect("rows"));
    }
    rows
}

/// Whether an engine's cell is DataFusion's value: floats (sums in another order) to
/// 1e-9 relative, everything else exactly.
fn same_cell(expected: &Datum, got: &Value) -> bool {
    match (expected, got) {
        (Datum::Null, Value::Null) => true,
        (Datum::Int(i), Value::Number(n)) => {
            n.as_i64() == Some(*i) || n.as_f64() == Some(*i as f64)
        }
        (Datum::Float(x), Value::Number(n)) => n
            .as_f64()
            .is_some_and(|y| (x - y).abs() <= 1e-9 * x.abs().max(1.0)),
        (Datum::Str(a), Value::String(b)) => **a == **b,
        _ => false,
    }
}

/// What differs between DataFusion's rows and an engine's (empty: nothing).
fn row_differences(expected: &[Vec<Datum>], got: &Value) -> Option<String> {
    let Some(got) = got.as_array() else {
        return Some("no rows".into());
    };
    if got.len() != expected.len() {
        return Some(format!("{} rows, DataFusion {}", got.len(), expected.len()));
    }
    let mut got: Vec<&Vec<Value>> = got.iter().filter_map(Value::as_array).collect();
    got.sort_by_key(|row| row.first().and_then(Value::as_i64));
    for (want, have) in expected.iter().zip(got) {
        let same = want.len() == have.len() && want.iter().zip(have).all(|(w, h)| same_cell(w, h));
        if !same {
            return Some(format!("row {have:?}, DataFusion {want:?}"));
        }
    }
    None
}

fn known_gap(dialect: &str, segment: &str) -> bool {
    KNOWN_GAPS
        .iter()
        .any(|(_, dialects, segments)| dialects.contains(&dialect) && segments.contains(&segment))
}

/// Whether Python with the engines' client packages is there.
fn python_ready() -> bool {
    Command::new("python3")
        .args(["-c", "import duckdb, psycopg, pymysql"])
        .status()
        .is_ok_and(|s| s.success())
}

fn naming(dialect: SqlDialect, run: &str) -> TableNaming {
    match dialect {
        SqlDialect::Postgres => TableNaming {
            schema: Some(run.to_string()),
            prefix: None,
        },
        SqlDialect::Mysql => TableNaming {
            schema: None,
            prefix: Some(format!("{run}_")),
        },
        _ => TableNaming::default(),
    }
}

#[tokio::test]
async fn emitted_sql_finds_the_same_members_on_every_engine() {
    if !python_ready() {
        eprintln!(
            "\n!!! sql_engines DID NOT RUN: python3 with duckdb, psycopg and pymysql is needed \
             (pip install duckdb \"psycopg[binary]\" pymysql; .ci/run installs them)\n"
        );
        return;
    }
    for (variable, engine) in [
        ("SEGQL_TEST_POSTGRES_URL", "PostgreSQL"),
        ("SEGQL_TEST_MYSQL_URL", "MariaDB/MySQL"),
    ] {
        if std::env::var_os(variable).is_none() {
            eprintln!("\n!!! sql_engines: {variable} is not set: {engine} DID NOT RUN\n");
        }
    }
    let run = format!("segql_t{}", std::process::id());
    let mut expected = BTreeMap::new();
    let mut queries = Vec::new();
    let mut tables = Vec::new();
    let mut failures = Vec::new();
    let mut attempts = 0;
    for file in FILES {
        let mut session = Session::open(Path::new("examples/shop/segql.toml"))
            .await
            .expect("open the demo catalog");
        session.clear_sources();
        session.add_file(Path::new(file)).expect("the file checks");
        if tables.is_empty() {
            let catalog = session.catalog();
            let dir = Path::new("examples/shop");
            for table in std::iter::once(&catalog.profiles).chain(&catalog.events) {
                let source = table.source.as_ref().expect("demo tables have sources");
                let source = dir.join(source.file_name().expect("a file name"));
                let source = std::fs::canonicalize(&source).expect("the source exists");
                tables.push(json!({"name": table.name, "source": source}));
            }
        }
        let names = session.program().segment_names();
        for name in names {
            let id = format!("{file}:{name}");
            expected.insert(id.clone(), common::members(&session, &name).await);
            for dialect in SqlDialect::ALL {
                attempts += 1;
                let sql = match session.segment_sql(&name, &[], dialect, &naming(dialect, &run)) {
                    Ok(sql) => sql,
                    Err(report) => {
                        failures.push(format!("{dialect} {id}: {}", report.render(false)));
                        continue;
                    }
                };
                if dialect == SqlDialect::Bigquery {
                    // No BigQuery here: its SQL is parsed with sqlparser's BigQuery dialect.
                    if let Err(error) = Parser::parse_sql(&BigQueryDialect {}, &sql) {
                        failures.push(format!("{dialect} {id}: does not parse: {error}\n  {sql}"));
                    }
                    continue;
                }
                queries.push(
                    json!({"id": format!("{dialect} {id}"), "dialect": dialect.name(), "sql": sql}),
                );
            }
        }
    }
    // `--with` columns, compared row by row.
    let mut demo = Session::open(Path::new("examples/shop/segql.toml"))
        .await
        .expect("open the demo catalog");
    demo.clear_sources();
    demo.add_file(Path::new("examples/shop/segments.seg"))
        .expect("the demo checks");
    let mut expected_rows = BTreeMap::new();
    for name in WITH_SEGMENTS {
        expected_rows.insert(name.to_string(), rows_with_columns(&demo, name).await);
        for dialect in SqlDialect::ALL {
            if dialect == SqlDialect::Bigquery {
                continue;
            }
            attempts += 1;
            let sql = demo
                .segment_sql(name, &WITH_COLUMNS, dialect, &naming(dialect, &run))
                .unwrap_or_else(|r| panic!("{name} with columns: {}", r.render(false)));
            queries.push(json!({
                "id": format!("{dialect} with:{name}"),
                "dialect": dialect.name(),
                "sql": sql,
            }));
        }
    }
    let manifest = json!({
        "tables": tables,
        "postgres_schema": run,
        "mysql_prefix": format!("{run}_"),
        "queries": queries,
    });
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("manifest.json");
    std::fs::write(&path, manifest.to_string()).expect("write the manifest");
    let output = Command::new("python3")
        .arg("scripts/sql_engines.py")
        .arg(&path)
        .output()
        .expect("run scripts/sql_engines.py");
    assert!(
        output.status.success(),
        "scripts/sql_engines.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    for (dialect, reason) in report["skipped"].as_object().expect("skipped") {
        eprintln!("\n!!! sql_engines: {dialect} DID NOT RUN: {reason}\n");
    }
    let results = report["results"].as_object().expect("results");
    for query in &queries {
        let id = query["id"].as_str().expect("an id");
        let Some(result) = results.get(id) else {
            continue;
        };
        let (_, segment) = id.split_once(' ').expect("dialect and segment");
        if let Some(name) = segment.strip_prefix("with:") {
            let difference = match result.get("rows") {
                Some(rows) => row_differences(&expected_rows[name], rows),
                None => Some(result["error"].to_string()),
            };
            if let Some(difference) = difference {
                failures.push(format!(
                    "{id}: {difference}\n  {}",
                    query["sql"].as_str().unwrap_or_default()
                ));
            }
            continue;
        }
        let wanted = &expected[segment];
        match result.get("keys") {
            Some(keys) => {
                let got: BTreeSet<i64> = keys
                    .as_array()
                    .expect("keys")
                    .iter()
                    .map(|k| k.as_i64().expect("integer keys"))
                    .collect();
                if &got != wanted {
                    failures.push(format!(
                        "{id}: {} members, DataFusion {}\n  {}",
                        got.len(),
                        wanted.len(),
                        query["sql"].as_str().unwrap_or_default()
                    ));
                }
            }
            None => failures.push(format!(
                "{id}: {}\n  {}",
                result["error"],
                query["sql"].as_str().unwrap_or_default()
            )),
        }
    }
    // Failures are `DIALECT FILE:SEGMENT: what happened`.
    let failed: BTreeSet<(String, String)> = failures
        .iter()
        .map(|f| {
            let (dialect, rest) = f.split_once(' ').expect("dialect first");
            let segment = rest.split(':').nth(1).expect("file:segment");
            (dialect.to_string(), segment.to_string())
        })
        .collect();
    eprintln!(
        "sql_engines: {} of {attempts} queries (BigQuery's parsed only) find DataFusion's members",
        attempts - failures.len()
    );
    let unexpected: Vec<&String> = failures
        .iter()
        .filter(|f| {
            let (dialect, rest) = f.split_once(' ').expect("dialect first");
            !known_gap(dialect, rest.split(':').nth(1).expect("file:segment"))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} of {} queries differ:\n{}",
        unexpected.len(),
        queries.len() + failures.len(),
        unexpected
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut ran: BTreeSet<&str> = queries
        .iter()
        .filter(|q| results.contains_key(q["id"].as_str().unwrap_or_default()))
        .map(|q| q["dialect"].as_str().unwrap_or_default())
        .collect();
    ran.insert("bigquery");
    let mut now_working = Vec::new();
    for (construct, dialects, segments) in KNOWN_GAPS {
        for dialect in dialects.iter().filter(|d| ran.contains(*d)) {
            for segment in *segments {
                if !failed.contains(&(dialect.to_string(), segment.to_string())) {
                    now_working.push(format!("{segment} on {dialect} ({construct})"));
                }
            }
        }
    }
    assert!(
        now_working.is_empty(),
        "these now work: remove them from KNOWN_GAPS and docs/sql.md:\n{}",
        now_working.join("\n")
    );
}
