//! One rendered snapshot per diagnostic code (see docs/diagnostics.md), without colour.
//! A test also checks that every code documented is covered here and vice versa.

use std::collections::BTreeSet;
use std::path::Path;

use segql::Session;
use segql::catalog::Catalog;
use segql::diagnostic::SourceMap;

/// A catalog with declared columns and no data.
const CATALOG: &str = r#"
as_of = "1998-07-01"

[profiles]
name = "customers"
key = "customer_id"
columns = { customer_id = "int", country = "string", age = "int", income = "float", gender = "string", interests = "list<string>", signup_ts = "timestamp", vip = "bool" }

[events.purchased]
key = "customer_id"
time = "ts"
columns = { customer_id = "int", ts = "timestamp", amount = "float", category = "string", quantity = "int" }

[events.viewed]
key = "customer_id"
time = "ts"
columns = { customer_id = "int", ts = "timestamp", product = "string" }
"#;

async fn session_for(catalog_text: &str, require_data: bool) -> Result<Session, String> {
    let mut sources = SourceMap::new();
    let file = sources.add("segql.toml", catalog_text);
    let catalog = Catalog::parse(catalog_text, Path::new("segql.toml"), file)
        .map_err(|d| segql::Report::new(d, &sources).render(false))?;
    Session::with_context(
        catalog,
        datafusion::prelude::SessionContext::new(),
        sources,
        require_data,
    )
    .await
    .map_err(|report| report.render(false))
}

/// Rendered diagnostics of checking `seg` against the standard catalog.
async fn check(seg: &str) -> String {
    let mut session = session_for(CATALOG, false)
        .await
        .expect("the test catalog is valid");
    match session.add_source("segments.seg", seg) {
        Ok(warnings) => {
            let warnings = warnings.clone();
            segql::render::render_all(warnings.iter(), session.sources(), false)
        }
        Err(report) => report.render(false),
    }
}

async fn catalog_error(text: &str) -> String {
    match session_for(text, false).await {
        Ok(_) => panic!("catalog should be rejected:\n{text}"),
        Err(rendered) => rendered,
    }
}

fn assert_code(code: &str, rendered: &str) {
    assert!(
        rendered.contains(&format!("[{code}]")),
        "expected a {code} diagnostic, got:\n{rendered}"
    );
}

macro_rules! case {
    ($name:ident, $code:literal, $rendered:expr) => {
        #[tokio::test]
        async fn $name() {
            let rendered = $rendered;
            assert_code($code, &rendered);
            insta::assert_snapshot!($code, rendered);
        }
    };
}

case!(
    e0001_syntax_error,
    "E0001",
    check("segment big = aov 100").await
);
case!(
    e0002_invalid_literal,
    "E0002",
    check("segment s = purchased within 30days").await
);
case!(
    e0003_nesting,
    "E0003",
    check(&format!(
        "segment deep = {}age > 1{}",
        "(".repeat(300),
        ")".repeat(300)
    ))
    .await
);
case!(
    e0101_unknown_name,
    "E0101",
    check(r#"segment germans = contry = "DE""#).await
);
case!(
    e0103_unknown_event_column,
    "E0103",
    check("segment s = sum(purchased.amont) > 100").await
);
case!(
    e0104_unknown_segment,
    "E0104",
    check("segment a = age > 30\nsegment b = in aa").await
);
case!(
    e0105_ambiguous_name,
    "E0105",
    check("metric age = 3\nsegment s = age > 2").await
);
case!(
    e0106_duplicate,
    "E0106",
    check("segment s = age > 30\nsegment s = age < 20").await
);
case!(
    e0107_cycle,
    "E0107",
    check("segment a = in b\nsegment b = in a").await
);
case!(
    e0108_unknown_function,
    "E0108",
    check("segment s = lowr(country) = \"de\"").await
);
case!(
    e0109_profile_column_in_filter,
    "E0109",
    check("segment s = purchased(age > 30)").await
);
case!(
    e0110_not_a_segment,
    "E0110",
    check("metric spend = sum(purchased.amount)\nsegment s = in spend").await
);
case!(
    e0201_type_mismatch,
    "E0201",
    check(r#"segment s = age > "thirty""#).await
);
case!(
    e0202_segment_not_bool,
    "E0202",
    check("segment s = sum(purchased.amount)").await
);
case!(
    e0203_event_column_outside_aggregate,
    "E0203",
    check("segment s = purchased.amount > 100").await
);
case!(
    e0204_bad_aggregate_argument,
    "E0204",
    check("segment s = sum(income) > 100").await
);
case!(
    e0205_argument_count,
    "E0205",
    check("segment s = geo_distance_km(1, 2, 3) < 5").await
);
case!(
    e0206_bad_window,
    "E0206",
    check("segment s = purchased within 1998-01-01").await
);
case!(
    e0208_bad_regex,
    "E0208",
    check(r#"segment s = country matches "([A-Z""#).await
);
case!(
    e0209_aggregate_in_filter,
    "E0209",
    check("segment s = purchased(count(viewed) > 2)").await
);
case!(
    e0211_invalid_sample,
    "E0211",
    check("segment holdout = sample(0.1, seed = \"spring\")").await
);
case!(
    e0212_invalid_ranking,
    "E0212",
    check("segment top_vips = top 10 by vip").await
);
case!(
    e0213_invalid_lookalike,
    "E0213",
    check("segment similar = lookalike(purchased, 5000, by = [age, country])").await
);
case!(
    e0214_invalid_sequence,
    "E0214",
    check("segment s = viewed then not purchased within 1d then viewed within 1h").await
);
case!(
    w0003_unused_binding,
    "W0003",
    check("segment s = viewed(product = p) then purchased within 1h").await
);
case!(
    e0210_stage_arm_not_bool,
    "E0210",
    check("stage tier {\n  gold = income\n  other = true\n}").await
);
case!(
    w0002_contradiction,
    "W0002",
    check("segment lapsed = purchased and not purchased within 180d").await
);
case!(
    w0001_window_without_events,
    "W0001",
    check("segment s = age > 30 within 30d").await
);

case!(
    e0301_invalid_catalog,
    "E0301",
    catalog_error("[profiles]\nkey = \"id\"\nsourse = \"x.parquet\"\n").await
);
case!(
    e0302_missing_data,
    "E0302",
    catalog_error("[profiles]\nkey = \"id\"\nsource = \"tests/fixtures/no_such_file.parquet\"\n")
        .await
);
case!(
    e0303_unknown_key_column,
    "E0303",
    catalog_error("[profiles]\nkey = \"id\"\ncolumns = { customer_id = \"int\" }\n").await
);
case!(
    e0304_unknown_type,
    "E0304",
    catalog_error("[profiles]\nkey = \"id\"\ncolumns = { id = \"integer\" }\n").await
);
case!(
    e0305_duplicate_table,
    "E0305",
    catalog_error(
        "[profiles]\nname = \"viewed\"\nkey = \"id\"\ncolumns = { id = \"int\" }\n\n[events.viewed]\nkey = \"id\"\ntime = \"ts\"\ncolumns = { id = \"int\", ts = \"timestamp\" }\n"
    )
    .await
);
case!(
    e0306_unreadable_data,
    "E0306",
    catalog_error("[profiles]\nkey = \"id\"\nsource = \"tests/fixtures/not_parquet.parquet\"\n")
        .await
);
case!(
    e0307_time_not_timestamp,
    "E0307",
    catalog_error(
        "[profiles]\nkey = \"id\"\ncolumns = { id = \"int\" }\n\n[events.viewed]\nkey = \"id\"\ntime = \"ts\"\ncolumns = { id = \"int\", ts = \"string\" }\n"
    )
    .await
);
case!(
    e0308_key_types_differ,
    "E0308",
    catalog_error(
        "[profiles]\nkey = \"id\"\ncolumns = { id = \"int\" }\n\n[events.viewed]\nkey = \"id\"\ntime = \"ts\"\ncolumns = { id = \"string\", ts = \"timestamp\" }\n"
    )
    .await
);

#[tokio::test]
async fn e0207_unsupported_column_type() {
    use datafusion::arrow::array::{BinaryArray, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use std::sync::Arc;
    let directory = tempfile::tempdir().expect("temporary directory");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("photo", DataType::Binary, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(BinaryArray::from(vec![Some(b"x".as_ref()), None])),
        ],
    )
    .expect("batch");
    let path = directory.path().join("people.parquet");
    let file = std::fs::File::create(&path).expect("create");
    let mut writer =
        datafusion::parquet::arrow::ArrowWriter::try_new(file, schema, None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    let catalog = format!(
        "[profiles]\nkey = \"id\"\nsource = {:?}\n",
        path.display().to_string()
    );
    let mut session = session_for(&catalog, true)
        .await
        .expect("a binary column is fine until used");
    let rendered = session
        .add_source("segments.seg", "segment s = photo is null")
        .map(|_| String::new())
        .unwrap_or_else(|r| r.render(false));
    assert_code("E0207", &rendered);
    insta::assert_snapshot!("E0207", rendered);
}

#[tokio::test]
async fn e0401_unreadable_source_file() {
    let missing =
        segql::read_source(Path::new("tests/fixtures/no_such_file.seg")).expect_err("missing");
    assert_eq!(missing.code, "E0401");
    let directory = tempfile::tempdir().expect("temporary directory");
    let latin1 = directory.path().join("latin1.seg");
    std::fs::write(&latin1, b"segment s = city = \"K\xf6ln\"").expect("write");
    let not_utf8 = segql::read_source(&latin1).expect_err("not UTF-8");
    assert_eq!(not_utf8.code, "E0401");
    assert!(
        not_utf8.message.contains("offset 21"),
        "{}",
        not_utf8.message
    );
}

#[tokio::test]
async fn e0402_unknown_requested_segment() {
    let mut session = session_for(CATALOG, false).await.expect("catalog");
    session
        .add_source("segments.seg", "segment adults = age >= 18")
        .expect("valid");
    let report = session
        .plan_segments(&["adult"], &[])
        .expect_err("no such segment");
    let rendered = report.render(false);
    assert_code("E0402", &rendered);
    insta::assert_snapshot!("E0402", rendered);
}

#[tokio::test]
async fn e0403_bad_data_row() {
    let catalog = "[profiles]\nkey = \"customer_id\"\nsource = \"tests/fixtures/customers.csv\"\n\n\
        [events.purchased]\nkey = \"customer_id\"\ntime = \"ts\"\nsource = \"tests/fixtures/bad_amount.csv\"\n\
        columns = { ts = \"timestamp\", amount = \"float\" }\n";
    let mut session = session_for(catalog, true)
        .await
        .expect("the schema is fine");
    session
        .add_source("segments.seg", "segment big = sum(purchased.amount) > 5")
        .expect("checks");
    let plan = session.plan_segments(&["big"], &[]).expect("plans");
    let rendered = session
        .execute(plan)
        .await
        .expect_err("a row does not parse")
        .render(false);
    assert_code("E0403", &rendered);
    assert!(
        rendered.contains("twelve"),
        "names the bad value:\n{rendered}"
    );
}

#[tokio::test]
async fn e0406_duplicate_and_null_profile_keys() {
    let catalog = "[profiles]\nkey = \"customer_id\"\nsource = \"tests/fixtures/bad_keys.csv\"\n";
    let session = session_for(catalog, true)
        .await
        .expect("the schema is fine");
    let rendered = session
        .check_profile_keys()
        .await
        .map(|_| String::new())
        .unwrap_or_else(|r| r.render(false));
    assert_code("E0406", &rendered);
    insta::assert_snapshot!("E0406", rendered);
    // The demo data is clean.
    let demo = segql::Session::open(Path::new("examples/shop/segql.toml"))
        .await
        .expect("demo");
    demo.check_profile_keys()
        .await
        .expect("unique, non-null keys");
}

#[tokio::test]
async fn e0407_timeout() {
    let demo = segql::Session::open(Path::new("examples/shop/segql.toml"))
        .await
        .expect("demo");
    let never = std::future::pending::<Result<(), segql::Report>>();
    let rendered = demo
        .with_timeout(Some(std::time::Duration::from_millis(5)), never)
        .await
        .expect_err("stopped")
        .render(false);
    assert_code("E0407", &rendered);
    assert!(rendered.contains("5ms"), "{rendered}");
}

#[tokio::test]
async fn e0408_memory_limit() {
    let mut sources = SourceMap::new();
    let path = Path::new("examples/shop/segql.toml");
    let catalog = Catalog::load(path, &mut sources).expect("demo catalog");
    let ctx = segql::new_context_with_memory_limit(Some(10_000));
    let mut session = Session::with_context(catalog, ctx, sources, true)
        .await
        .expect("demo");
    session
        .add_file(Path::new("examples/shop/segments.seg"))
        .expect("demo segments");
    let rendered = session
        .counts(&[])
        .await
        .expect_err("10 KB is not enough")
        .render(false);
    assert_code("E0408", &rendered);
    assert!(rendered.contains("--memory-limit"), "{rendered}");
}

#[tokio::test]
async fn e0409_no_sql_for_this_segment() {
    let mut session = Session::open(Path::new("examples/shop/segql.toml"))
        .await
        .expect("demo");
    session
        .add_source(
            "long.seg",
            "segment long_members = signup_ts + (now - signup_ts) > now",
        )
        .expect("checks");
    let rendered = session
        .segment_sql(
            "long_members",
            &[],
            segql::sql::SqlDialect::Postgres,
            &segql::sql::TableNaming::default(),
        )
        .expect_err("computed durations added to times have no SQL")
        .render(false);
    assert_code("E0409", &rendered);
    assert!(rendered.contains("long_members"), "{rendered}");
}

#[tokio::test]
async fn e0410_engine_unavailable() {
    let engine: segql::engine::Engine = "ballista://127.0.0.1:1".parse().expect("an engine");
    let Err(diagnostic) = segql::engine::context(&engine, None).await else {
        panic!("nothing listens on port 1");
    };
    let rendered = segql::Report::new(diagnostic.into(), &SourceMap::new()).render(false);
    assert_code("E0410", &rendered);
    assert!(rendered.contains("ballista://127.0.0.1:1"), "{rendered}");
}

/// Rendered diagnostics of computing the features `names` on the standard catalog.
async fn features_error(names: &[&str]) -> String {
    let mut session = session_for(CATALOG, false)
        .await
        .expect("the test catalog is valid");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let as_of = session.as_of();
    match segql::learn::feature_table(&mut session, &names, as_of, None).await {
        Ok(_) => String::new(),
        Err(report) => report.render(false),
    }
}

case!(
    e0412_feature_not_a_number,
    "E0412",
    features_error(&["age", "country"]).await
);
case!(e0413_cannot_learn, "E0413", features_error(&[]).await);

#[tokio::test]
async fn e0411_not_available_in_real_time() {
    let mut session = Session::open(Path::new("examples/shop/segql.toml"))
        .await
        .expect("demo");
    session
        .add_source(
            "top.seg",
            "segment top_spenders = top 50 by sum(purchased.amount) within 365d",
        )
        .expect("checks");
    let Err(diagnostic) =
        segql::live::Membership::new(session.program(), session.schema(), &["top_spenders"])
    else {
        panic!("a ranking cannot be kept current event by event");
    };
    let rendered = segql::Report::new(diagnostic.into(), session.sources()).render(false);
    assert_code("E0411", &rendered);
    insta::assert_snapshot!("E0411", rendered);
}

#[test]
fn every_documented_code_is_tested() {
    let docs = std::fs::read_to_string("docs/diagnostics.md").expect("docs/diagnostics.md");
    let documented: BTreeSet<String> = docs
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let tests = std::fs::read_to_string("tests/diagnostics.rs").expect("this file");
    let sources: String = [
        "src/check/mod.rs",
        "src/check/resolve.rs",
        "src/catalog.rs",
        "src/syntax/parser.rs",
        "src/syntax/errors.rs",
        "src/lib.rs",
        "src/exec.rs",
        "src/engine.rs",
        "src/check/population.rs",
        "src/check/sequence.rs",
        "src/live/mod.rs",
        "src/learn/mod.rs",
    ]
    .iter()
    .map(|p| std::fs::read_to_string(p).expect("source"))
    .collect();
    for code in &documented {
        // E0404 (internal errors) and E0405 (write failures) are covered by CLI tests.
        if code != "E0404" && code != "E0405" {
            assert!(
                tests.contains(&format!("\"{code}\"")),
                "{code} is documented but has no test here"
            );
        }
        assert!(
            sources.contains(&format!("\"{code}\"")),
            "{code} is documented but never emitted"
        );
    }
    for code in ["E0001", "E0101", "E0201", "E0301", "E0401", "W0001"] {
        assert!(
            documented.contains(code),
            "{code} is missing from docs/diagnostics.md"
        );
    }
}
