//! Segment discovery and prediction on generated shops with a planted structure: three
//! kinds of customer that discovery must find again, and a churn mechanism a model must
//! learn from the past. Also: features at a cut-off see no later event.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, Int64Array, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use segql::Session;
use segql::learn::discover::{ClusterCount, adjusted_rand_index, discover};
use segql::learn::feature_table;
use segql::learn::predict::{Training, train};

const DAY_US: i64 = 86_400_000_000;
/// 2024-01-01T00:00:00Z, the catalog's `as_of`, in microseconds.
const AS_OF_US: i64 = 1_704_067_200_000_000;

const CATALOG: &str = r#"as_of = "2024-01-01T00:00:00Z"

[profiles]
source = "customers.parquet"
key = "customer_id"

[events.purchased]
source = "purchased.parquet"
key = "customer_id"
time = "ts"

[events.viewed]
source = "viewed.parquet"
key = "customer_id"
time = "ts"
"#;

const FEATURES: &str = "metric frequency = count(purchased) within 180d
metric spend = coalesce(avg(purchased.amount) within 180d, 0)
metric browsing = count(viewed) within 180d
metric recency = coalesce(days_since(last(purchased.ts)), 400)
";

/// A shop: customers `1..=n`, and their events as (customer, time in µs, amount).
struct Shop {
    customers: i64,
    purchases: Vec<(i64, i64, f64)>,
    views: Vec<(i64, i64)>,
}

impl Shop {
    fn write(&self, dir: &Path) {
        std::fs::write(dir.join("segql.toml"), CATALOG).expect("catalog");
        std::fs::write(dir.join("features.seg"), FEATURES).expect("features");
        let keys: Vec<i64> = (1..=self.customers).collect();
        write_parquet(
            &dir.join("customers.parquet"),
            vec![("customer_id", Arc::new(Int64Array::from(keys)) as _)],
        );
        let time = |events: &mut dyn Iterator<Item = i64>| {
            Arc::new(TimestampMicrosecondArray::from(events.collect::<Vec<_>>())) as _
        };
        write_parquet(
            &dir.join("purchased.parquet"),
            vec![
                (
                    "customer_id",
                    Arc::new(Int64Array::from_iter_values(
                        self.purchases.iter().map(|p| p.0),
                    )) as _,
                ),
                ("ts", time(&mut self.purchases.iter().map(|p| p.1))),
                (
                    "amount",
                    Arc::new(Float64Array::from_iter_values(
                        self.purchases.iter().map(|p| p.2),
                    )) as _,
                ),
            ],
        );
        write_parquet(
            &dir.join("viewed.parquet"),
            vec![
                (
                    "customer_id",
                    Arc::new(Int64Array::from_iter_values(self.views.iter().map(|v| v.0))) as _,
                ),
                ("ts", time(&mut self.views.iter().map(|v| v.1))),
            ],
        );
    }
}

fn write_parquet(path: &Path, columns: Vec<(&str, datafusion::arrow::array::ArrayRef)>) {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| {
            let ty = match array.data_type() {
                DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Microsecond, None),
                other => other.clone(),
            };
            Field::new(*name, ty, false)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|c| c.1).collect())
        .expect("a batch");
    let file = std::fs::File::create(path).expect("create");
    let mut writer = ArrowWriter::try_new(file, schema, None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

/// A random time in the `days` before `as_of`.
fn within(rng: &mut StdRng, days: i64) -> i64 {
    AS_OF_US - rng.random_range(1..days * DAY_US)
}

/// Three kinds of customer, 150 each: frequent small buyers, rare big spenders, and
/// browsers who never buy. Returns the shop and each customer's kind.
fn three_kinds() -> (Shop, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut shop = Shop {
        customers: 450,
        purchases: Vec::new(),
        views: Vec::new(),
    };
    let mut kinds = Vec::new();
    for customer in 1..=shop.customers {
        let kind = (customer as usize - 1) % 3;
        kinds.push(kind);
        let (purchases, amount, views) = match kind {
            0 => (rng.random_range(15..25), 10.0, rng.random_range(4..10)),
            1 => (rng.random_range(1..4), 400.0, rng.random_range(4..10)),
            _ => (0, 0.0, rng.random_range(30..50)),
        };
        for _ in 0..purchases {
            let noise: f64 = rng.random_range(-0.2..0.2);
            shop.purchases
                .push((customer, within(&mut rng, 170), amount * (1.0 + noise)));
        }
        for _ in 0..views {
            shop.views.push((customer, within(&mut rng, 170)));
        }
    }
    (shop, kinds)
}

/// Runs `segql` in `dir`, without colours.
fn segql_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_segql"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("segql runs")
}

/// The standard output of a run that must succeed.
fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn session(dir: &Path) -> Session {
    let mut session = Session::open(&dir.join("segql.toml"))
        .await
        .expect("the catalog");
    session
        .add_file(&dir.join("features.seg"))
        .expect("the features");
    session
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn discovery_finds_the_planted_kinds_of_customer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (shop, kinds) = three_kinds();
    shop.write(dir.path());
    let mut session = session(dir.path()).await;
    let features = names(&["frequency", "spend", "browsing"]);
    let as_of = session.as_of();
    let table = feature_table(&mut session, &features, as_of, None)
        .await
        .expect("features");
    for count in [ClusterCount::Fixed(3), ClusterCount::Auto] {
        let discovery = discover(&table, count).expect("clusters");
        assert_eq!(discovery.clusters.len(), 3, "{count:?}");
        let found: Vec<usize> = discovery.assignments.iter().map(|(_, c)| *c).collect();
        let planted: Vec<usize> = (discovery.assignments.iter())
            .map(|(key, _)| kinds[key.parse::<usize>().expect("an int key") - 1])
            .collect();
        let ari = adjusted_rand_index(&found, &planted);
        assert!(ari >= 0.9, "{count:?}: adjusted Rand index {ari}");
        for cluster in &discovery.clusters {
            assert!(
                cluster.precision >= 0.9 && cluster.recall >= 0.9,
                "{count:?}: a definition far from its cluster: {cluster:?}"
            );
        }
    }
}

#[test]
fn discovered_definitions_are_segql_that_check_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (shop, _) = three_kinds();
    shop.write(dir.path());
    let stdout = succeeded(&segql_in(
        dir.path(),
        &[
            "discover",
            "features.seg",
            "--features",
            "frequency,spend,browsing",
            "--k",
            "3",
            "--assignments",
            "clusters.csv",
        ],
    ));
    assert_eq!(stdout.matches("\nsegment cluster_").count(), 3, "{stdout}");
    assert!(
        stdout.contains("precision") && stdout.contains("recall"),
        "{stdout}"
    );
    std::fs::write(dir.path().join("clusters.seg"), stdout.as_bytes()).expect("write");
    let check = segql_in(dir.path(), &["check", "features.seg", "clusters.seg"]);
    assert!(
        check.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&check.stderr)
    );
    let assignments = std::fs::read_to_string(dir.path().join("clusters.csv")).expect("csv");
    assert_eq!(
        assignments.lines().count(),
        451,
        "a header and 450 customers"
    );
    // Each printed definition selects what it says it selects.
    std::fs::write(dir.path().join("all.seg"), format!("{FEATURES}{stdout}")).expect("write");
    let counts = succeeded(&segql_in(dir.path(), &["count", "all.seg"]));
    let lines: Vec<&str> = stdout.lines().collect();
    let mut compared = 0;
    for pair in lines.windows(2) {
        let [comment, segment] = pair else { continue };
        let Some(rest) = comment.split("this definition selects ").nth(1) else {
            continue;
        };
        let selected = rest.split(':').next().expect("a count");
        let name = segment
            .strip_prefix("segment ")
            .and_then(|s| s.split(' ').next())
            .expect("a segment follows its comment");
        let counted = counts
            .lines()
            .find_map(|c| c.strip_prefix(name))
            .map(str::trim)
            .expect("the segment is counted");
        assert_eq!(counted, selected, "{name}:\n{counts}");
        compared += 1;
    }
    assert_eq!(compared, 3);
}

/// Customers who buy about twice a month until some stop for good: 45% stop at a random
/// day of the year. Everyone views now and then.
fn churning_shop(seed: u64) -> Shop {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut shop = Shop {
        customers: 1200,
        purchases: Vec::new(),
        views: Vec::new(),
    };
    for customer in 1..=shop.customers {
        let stop_day = if rng.random_bool(0.45) {
            rng.random_range(0..365)
        } else {
            365
        };
        let mut day = rng.random_range(0.0..15.0);
        while (day as i64) < stop_day {
            let ts = AS_OF_US - 365 * DAY_US + (day * DAY_US as f64) as i64;
            shop.purchases
                .push((customer, ts, rng.random_range(5.0..100.0)));
            day += rng.random_range(1.0..30.0);
        }
        for _ in 0..rng.random_range(0..10) {
            shop.views.push((customer, within(&mut rng, 365)));
        }
    }
    shop
}

#[tokio::test]
async fn a_churn_model_learns_from_the_past_and_beats_a_constant() {
    let dir = tempfile::tempdir().expect("tempdir");
    churning_shop(11).write(dir.path());
    let mut session = session(dir.path()).await;
    let features = names(&["recency", "frequency", "browsing"]);
    let training = Training {
        label: "not purchased within 90d",
        horizon: 90 * DAY_US * 1000,
        features: &features,
        base: None,
    };
    let model = train(&mut session, &training).await.expect("a model");
    let e = &model.evaluation;
    assert_eq!(e.training_features_at, "2023-07-05T00:00:00Z");
    assert_eq!(e.holdout_labels_at, "2024-01-01T00:00:00Z");
    assert!(
        e.auc >= e.baseline_auc + 0.25,
        "holdout AUC {} does not beat the constant's {} by 0.25",
        e.auc,
        e.baseline_auc
    );
    // Calibrated: the bins' mean predictions follow the observed rates.
    let worst = (e.calibration.iter())
        .map(|b| (b.predicted - b.observed).abs())
        .fold(0.0, f64::max);
    assert!(
        worst < 0.25,
        "calibration off by {worst}: {:?}",
        e.calibration
    );
    // The model as SegQL gives the same scores as the model itself.
    let metric = session
        .check_value("score", &model.expression())
        .expect("checks");
    let plan = session
        .plan_expression_values(&metric, "score")
        .expect("plan");
    let batches = session.execute(plan).await.expect("runs");
    let as_of = session.as_of();
    let table = feature_table(&mut session, &features, as_of, None)
        .await
        .expect("features");
    let mut compared = 0;
    for batch in &batches {
        let scores = batch
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("float scores");
        for row in 0..batch.num_rows() {
            let key = segql::exec::format_cell(batch, 0, row);
            let at = table
                .keys
                .iter()
                .position(|k| *k == key)
                .expect("a profile");
            let expected = model.probability(&table.rows[at]);
            assert!(
                (scores.value(row) - expected).abs() < 1e-9,
                "{key}: {} vs {expected}",
                scores.value(row)
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 1200);
}

#[tokio::test]
async fn features_at_a_cut_off_see_no_later_event() {
    let full = tempfile::tempdir().expect("tempdir");
    let shop = churning_shop(12);
    shop.write(full.path());
    let cut = AS_OF_US - 90 * DAY_US;
    let before = tempfile::tempdir().expect("tempdir");
    Shop {
        customers: shop.customers,
        purchases: shop
            .purchases
            .iter()
            .copied()
            .filter(|p| p.1 <= cut)
            .collect(),
        views: shop.views.iter().copied().filter(|v| v.1 <= cut).collect(),
    }
    .write(before.path());
    assert!(
        shop.purchases.iter().any(|p| p.1 > cut),
        "the test needs later events"
    );
    let features = names(&["recency", "frequency", "spend", "browsing"]);
    let mut with_future = session(full.path()).await;
    let mut without_future = session(before.path()).await;
    let a = feature_table(&mut with_future, &features, cut * 1000, None)
        .await
        .expect("features");
    let b = feature_table(&mut without_future, &features, cut * 1000, None)
        .await
        .expect("features");
    assert_eq!(a, b);
    // And the later events do change the features at `as_of`, so the comparison can fail.
    let as_of = with_future.as_of();
    let now = feature_table(&mut with_future, &features, as_of, None)
        .await
        .expect("features");
    assert_ne!(a.rows, now.rows);
}

#[test]
fn train_and_score_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    churning_shop(13).write(dir.path());
    let stdout = succeeded(&segql_in(
        dir.path(),
        &[
            "train",
            "features.seg",
            "--label",
            "not purchased within 90d",
            "--horizon",
            "90d",
            "--features",
            "recency,frequency,browsing",
            "--out",
            "churn.json",
            "--metric",
            "churn_risk",
        ],
    ));
    assert!(stdout.contains("holdout AUC"), "{stdout}");
    let metric = std::fs::read_to_string(dir.path().join("churn_risk.seg")).expect("the metric");
    assert!(
        metric.contains("metric churn_risk = 1 / (1 + exp("),
        "{metric}"
    );
    // The metric works in a segment next to the features.
    std::fs::write(
        dir.path().join("all.seg"),
        format!("{FEATURES}{metric}segment at_risk = churn_risk > 0.5\n"),
    )
    .expect("write");
    succeeded(&segql_in(
        dir.path(),
        &["count", "all.seg", "--segment", "at_risk"],
    ));
    succeeded(&segql_in(
        dir.path(),
        &[
            "score",
            "features.seg",
            "--model",
            "churn.json",
            "--out",
            "scores.parquet",
        ],
    ));
    let file = std::fs::File::open(dir.path().join("scores.parquet")).expect("the scores");
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("a Parquet file")
            .build()
            .expect("a reader");
    let rows: usize = reader.map(|b| b.expect("a batch").num_rows()).sum();
    assert_eq!(rows, 1200);
    // A file that is not a model is named.
    std::fs::write(dir.path().join("bad.json"), "{}").expect("write");
    let bad = segql_in(
        dir.path(),
        &["score", "features.seg", "--model", "bad.json"],
    );
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && stderr.contains("E0413") && stderr.contains("not a SegQL model"),
        "{stderr}"
    );
}
