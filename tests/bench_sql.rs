//! The benchmark's 50 segments (`bench/segments.seg`) against their hand-written SQL
//! (`bench/sql/NAME.sql`), run through DataFusion's SQL front end on the demo data: the
//! members must be identical. The SQL is what a data engineer would write and shares no
//! code with the compiler; `scripts/bench_segments.py` runs the same SQL in DuckDB too.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use segql::Session;

const SHOP: &str = "examples/shop";

async fn reference_context() -> SessionContext {
    let ctx = SessionContext::new();
    for entry in std::fs::read_dir(SHOP).expect("demo directory") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "parquet") {
            let name = path.file_stem().and_then(|s| s.to_str()).expect("name");
            ctx.register_parquet(
                name,
                path.to_str().expect("utf-8 path"),
                ParquetReadOptions::default(),
            )
            .await
            .expect("register demo table");
        }
    }
    ctx
}

/// The first column of a query's result, formatted.
async fn run_sql(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<Vec<String>> {
    let batches = ctx.sql(sql).await?.collect().await?;
    Ok(first_column(&batches))
}

fn first_column(batches: &[RecordBatch]) -> Vec<String> {
    let mut values = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            values.push(array_value_to_string(batch.column(0), row).expect("format key"));
        }
    }
    values
}

#[tokio::test]
async fn every_benchmark_segment_matches_its_hand_written_sql() {
    let mut session = Session::open(Path::new("bench/segql.toml"))
        .await
        .unwrap_or_else(|r| panic!("{r}"));
    session
        .add_file(Path::new("bench/segments.seg"))
        .unwrap_or_else(|r| panic!("{r}"));
    assert!(
        session.warnings().is_empty(),
        "{:?}",
        session.warnings().iter().collect::<Vec<_>>()
    );
    let names = session.program().segment_names();
    assert_eq!(names.len(), 50, "the benchmark's fixed set has 50 segments");
    let sql_files: BTreeSet<String> = std::fs::read_dir("bench/sql")
        .expect("bench/sql")
        .map(|e| e.expect("entry").path())
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    assert_eq!(
        sql_files,
        names.iter().cloned().collect::<BTreeSet<_>>(),
        "one SQL file per segment"
    );

    let reference = reference_context().await;
    let total = run_sql(&reference, "SELECT customer_id FROM customers")
        .await
        .expect("profiles")
        .len();
    let mut failures = Vec::new();
    let mut expected = BTreeMap::new();
    for name in &names {
        let plan = session
            .plan_segments(&[name.as_str()], &[])
            .unwrap_or_else(|r| panic!("{r}"));
        let ours = first_column(
            &session
                .execute(plan)
                .await
                .unwrap_or_else(|r| panic!("{r}")),
        );
        let sql = std::fs::read_to_string(format!("bench/sql/{name}.sql")).expect("sql");
        let theirs = run_sql(&reference, &sql)
            .await
            .unwrap_or_else(|e| panic!("{name}.sql failed: {e}"));
        let theirs_set: BTreeSet<&String> = theirs.iter().collect();
        assert_eq!(
            theirs_set.len(),
            theirs.len(),
            "{name}.sql returns a member twice"
        );
        expected.insert(name.clone(), theirs.clone());
        let ours_set: BTreeSet<&String> = ours.iter().collect();
        if ours_set != theirs_set {
            failures.push(format!(
                "{name}: SegQL {} members, SQL {}; only SegQL: {:?}; only SQL: {:?}",
                ours_set.len(),
                theirs_set.len(),
                ours_set.difference(&theirs_set).take(5).collect::<Vec<_>>(),
                theirs_set.difference(&ours_set).take(5).collect::<Vec<_>>()
            ));
        }
        assert!(
            !ours.is_empty() && ours.len() < total,
            "{name} selects {} of {total} profiles: it cannot fail",
            ours.len()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // All 50 in one plan, as `segql count` and `segql run` evaluate them: every measure
    // relation gathered to the profiles in one operator (`plan::gather`).
    let counts = session.counts(&[]).await.unwrap_or_else(|r| panic!("{r}"));
    let mut counted: Vec<(String, usize)> =
        counts.into_iter().map(|(n, c)| (n, c as usize)).collect();
    counted.sort();
    let sizes: Vec<(String, usize)> = expected.iter().map(|(n, m)| (n.clone(), m.len())).collect();
    assert_eq!(counted, sizes, "all 50 counted together");
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut together: BTreeSet<(String, String)> = BTreeSet::new();
    for member in common::listing(&session, &all).await {
        assert!(together.insert(member), "a member listed twice");
    }
    let reference: BTreeSet<(String, String)> = expected
        .iter()
        .flat_map(|(name, keys)| keys.iter().map(move |k| (name.clone(), k.clone())))
        .collect();
    assert_eq!(together, reference, "all 50 listed together");
}
