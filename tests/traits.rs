//! `segql traits`: every profile's metrics and stages, against hand-written SQL over the
//! demo's Parquet files (the SQL shares no code with the compiler).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use datafusion::arrow::array::{Array, AsArray, Float64Array, Int64Array};
use datafusion::prelude::{ParquetReadOptions, SessionContext};

const SHOP: &str = "examples/shop";
const NOW: &str = "TIMESTAMP '1998-07-01 00:00:00'";

/// (aov, revenue, lifecycle) per customer, as a data engineer would write them.
async fn reference() -> BTreeMap<i64, (Option<f64>, f64, String)> {
    let ctx = SessionContext::new();
    for (name, file) in [
        ("customers", "customers.parquet"),
        ("purchased", "purchased.parquet"),
    ] {
        let path = Path::new(SHOP).join(file);
        ctx.register_parquet(
            name,
            path.to_str().expect("utf-8"),
            ParquetReadOptions::default(),
        )
        .await
        .expect("a demo table");
    }
    let sql = format!(
        "WITH p AS (SELECT customer_id, avg(amount) AS aov, sum(amount) AS revenue, \
                min(ts) AS first_ts, max(ts) AS last_ts \
            FROM purchased WHERE ts <= {NOW} GROUP BY customer_id) \
         SELECT c.customer_id, p.aov, coalesce(p.revenue, 0.0) AS revenue, \
            CASE WHEN p.first_ts > {NOW} - INTERVAL '30 days' THEN 'new' \
                 WHEN p.last_ts >= {NOW} - INTERVAL '90 days' THEN 'active' \
                 WHEN p.last_ts >= {NOW} - INTERVAL '180 days' THEN 'cooling' \
                 WHEN p.last_ts IS NOT NULL THEN 'lapsed' \
                 ELSE 'prospect' END AS lifecycle \
         FROM customers c LEFT JOIN p ON p.customer_id = c.customer_id"
    );
    let batches = ctx
        .sql(&sql)
        .await
        .expect("reference SQL")
        .collect()
        .await
        .expect("reference rows");
    let mut rows = BTreeMap::new();
    for batch in &batches {
        let keys = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("keys");
        let aov = batch
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("aov");
        let revenue = batch
            .column(2)
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("revenue");
        let stage = batch.column(3).as_string::<i32>();
        for i in 0..batch.num_rows() {
            let aov = (!aov.is_null(i)).then(|| aov.value(i));
            rows.insert(
                keys.value(i),
                (aov, revenue.value(i), stage.value(i).to_string()),
            );
        }
    }
    rows
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(1.0)
}

#[tokio::test]
async fn every_profile_gets_its_metrics_and_stages() {
    let output = Command::new(env!("CARGO_BIN_EXE_segql"))
        .args(["traits", "examples/shop/segments.seg", "--format", "ndjson"])
        .output()
        .expect("segql runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let expected = reference().await;
    let mut seen = 0;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let row: serde_json::Value = serde_json::from_str(line).expect("a JSON object");
        let key = row["customer_id"].as_i64().expect("a key");
        let (aov, revenue, lifecycle) = &expected[&key];
        match (row["aov"].as_f64(), aov) {
            (None, None) => {}
            (Some(got), Some(want)) => assert!(close(got, *want), "{key}: aov {got} != {want}"),
            (got, want) => panic!("{key}: aov {got:?} != {want:?}"),
        }
        let got = row["revenue"].as_f64().expect("revenue");
        assert!(close(got, *revenue), "{key}: revenue {got} != {revenue}");
        assert_eq!(row["lifecycle"], lifecycle.as_str(), "{key}");
        seen += 1;
    }
    assert_eq!(seen, expected.len(), "one row per profile");
    let stages: std::collections::BTreeSet<&str> =
        expected.values().map(|(_, _, s)| s.as_str()).collect();
    assert!(stages.len() >= 4, "the data reaches {stages:?}");
}

#[test]
fn only_chosen_traits_and_unknown_names_are_named() {
    let output = Command::new(env!("CARGO_BIN_EXE_segql"))
        .args([
            "traits",
            "examples/shop/segments.seg",
            "--only",
            "lifecycle,country",
            "--format",
            "csv",
        ])
        .output()
        .expect("segql runs");
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(text.lines().next(), Some("customer_id,lifecycle,country"));
    let unknown = Command::new(env!("CARGO_BIN_EXE_segql"))
        .args(["traits", "examples/shop/segments.seg", "--only", "revnue"])
        .env("NO_COLOR", "1")
        .output()
        .expect("segql runs");
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("`revnue` is no profile column"), "{stderr}");
    assert!(stderr.contains("revenue"), "{stderr}");
}
