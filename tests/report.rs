//! `segql report` on the demo: the figures on the page against an independent count (each
//! segment's own plan, the profile table read with SQL), the page self-contained, and, in
//! a real headless browser, drawn.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use datafusion::arrow::array::{Array, AsArray, Int64Array};
use segql::Session;

const SEGMENTS: &str = "examples/shop/segments.seg";
const DAY: i64 = 86_400_000_000_000;

fn report(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_segql"))
        .arg("report")
        .arg(SEGMENTS)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("segql runs")
}

/// The figures embedded in the page.
fn data(page: &str) -> serde_json::Value {
    let start = page
        .find(r#"<script type="application/json" id="segql-report-data">"#)
        .expect("the embedded figures");
    let json = &page[start..];
    let json = &json[json.find('>').expect("the tag ends") + 1..];
    let json = &json[..json.find("</script>").expect("the script ends")];
    serde_json::from_str(&json.replace("<\\/", "</")).expect("JSON")
}

fn numbers(value: &serde_json::Value) -> Vec<u64> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|n| n.as_u64().expect("a count"))
        .collect()
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

/// Every profile's country, read with SQL.
async fn countries(session: &Session) -> BTreeMap<i64, Option<String>> {
    let table = &session.schema().profiles.name;
    let frame = session
        .context()
        .sql(&format!("SELECT customer_id, country FROM \"{table}\""))
        .await
        .expect("SQL");
    let mut countries = BTreeMap::new();
    for batch in frame.collect().await.expect("rows") {
        let keys = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("keys");
        let names = batch.column(1).as_string_view_opt().map_or_else(
            || {
                (0..batch.num_rows())
                    .map(|i| {
                        let c = batch.column(1).as_string::<i32>();
                        (!c.is_null(i)).then(|| c.value(i).to_string())
                    })
                    .collect::<Vec<_>>()
            },
            |c| {
                (0..batch.num_rows())
                    .map(|i| (!c.is_null(i)).then(|| c.value(i).to_string()))
                    .collect()
            },
        );
        for (i, name) in names.into_iter().enumerate() {
            countries.insert(keys.value(i), name);
        }
    }
    countries
}

#[test]
fn the_report_shows_what_the_segments_hold() {
    let directory = tempfile::tempdir().expect("tempdir");
    let out = directory.path().join("report.html");
    let output = report(&[
        "--out",
        out.to_str().expect("utf-8"),
        "--by",
        "country",
        "--every",
        "30d",
        "--points",
        "4",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let page = std::fs::read_to_string(&out).expect("the page");
    // Self-contained: nothing to fetch.
    for reference in ["://", "@import", "src="] {
        assert!(
            !page.contains(reference),
            "the page refers to `{reference}`"
        );
    }
    assert!(page.contains("<svg"), "charts");
    let figures = data(&page);

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let mut session = Session::open(Path::new("examples/shop/segql.toml"))
            .await
            .expect("the demo");
        session.add_file(Path::new(SEGMENTS)).expect("the segments");
        let names = session.program().segment_names();
        assert_eq!(strings(&figures["segments"]), names);
        for name in &names {
            assert!(page.contains(name.as_str()), "{name} is on the page");
        }
        let mut members: Vec<BTreeSet<i64>> = Vec::new();
        for name in &names {
            members.push(common::members(&session, name).await);
        }
        let countries = countries(&session).await;
        assert_eq!(figures["profiles"], countries.len() as u64);
        assert_eq!(
            numbers(&figures["sizes"]),
            members.iter().map(|m| m.len() as u64).collect::<Vec<_>>()
        );
        for (i, row) in figures["overlaps"]
            .as_array()
            .expect("rows")
            .iter()
            .enumerate()
        {
            let expected: Vec<u64> = members
                .iter()
                .map(|other| members[i].intersection(other).count() as u64)
                .collect();
            assert_eq!(numbers(row), expected, "overlaps of {}", names[i]);
        }

        // Composition: the top countries of all profiles, the rest as "(other)".
        let composition = &figures["composition"];
        assert_eq!(composition["by"], "country");
        let values = strings(&composition["values"]);
        let label = |country: &Option<String>| {
            let name = country.clone().unwrap_or_else(|| "(none)".into());
            if values.contains(&name) {
                name
            } else {
                "(other)".into()
            }
        };
        let split = |keys: &mut dyn Iterator<Item = &i64>| {
            let mut row = vec![0u64; values.len()];
            for key in keys {
                let at = values
                    .iter()
                    .position(|v| *v == label(&countries[key]))
                    .expect("a drawn value");
                row[at] += 1;
            }
            row
        };
        assert_eq!(numbers(&composition["all"]), split(&mut countries.keys()));
        for (i, row) in composition["counts"]
            .as_array()
            .expect("rows")
            .iter()
            .enumerate()
        {
            assert_eq!(numbers(row), split(&mut members[i].iter()), "{}", names[i]);
        }

        // History: four points 30 days apart, the last at `as_of`.
        let history = figures["history"].as_array().expect("history");
        assert_eq!(history.len(), 4);
        assert_eq!(numbers(&history[3]["sizes"]), numbers(&figures["sizes"]));
        let as_of = session.as_of();
        session.set_as_of(as_of - 90 * DAY);
        for (i, name) in names.iter().enumerate() {
            let then = common::members(&session, name).await.len() as u64;
            assert_eq!(history[0]["sizes"][i], then, "{name} 90 days earlier");
        }
    });

    // A real browser draws it.
    let chromium = std::env::var("SEGQL_TEST_CHROMIUM").ok().or_else(|| {
        Path::new("/usr/bin/chromium")
            .exists()
            .then(|| "/usr/bin/chromium".into())
    });
    let Some(chromium) = chromium else {
        eprintln!(
            "NOT RUN: the screenshot needs Chromium; install it (`apt-get install chromium`) \
             or set SEGQL_TEST_CHROMIUM (.ci/run does)"
        );
        return;
    };
    let screenshot = directory.path().join("report.png");
    let drawn = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1100,2600",
        ])
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("file://{}", out.display()))
        .output()
        .expect("chromium runs");
    assert!(
        drawn.status.success(),
        "{}",
        String::from_utf8_lossy(&drawn.stderr)
    );
    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    // A blank page compresses to a few kilobytes; charts and text do not.
    assert!(png.len() > 40_000, "the screenshot is {} bytes", png.len());
    if let Ok(keep) = std::env::var("SEGQL_KEEP_SCREENSHOT") {
        std::fs::copy(&screenshot, keep).expect("keep the screenshot");
    }
}

#[test]
fn bad_report_options_are_named() {
    let directory = tempfile::tempdir().expect("tempdir");
    let out = directory.path().join("report.html");
    let out = out.to_str().expect("utf-8");
    let unknown = report(&["--out", out, "--by", "contry"]);
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("`contry` is no profile column"), "{stderr}");
    assert!(stderr.contains("country"), "{stderr}");
    let span = report(&["--out", out, "--every", "5x"]);
    assert_eq!(span.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&span.stderr).contains("write e.g. `12h`, `7d` or `2w`"));
    let nowhere = report(&["--out", "/nonexistent/report.html", "--points", "1"]);
    assert_eq!(nowhere.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nowhere.stderr).contains("cannot write the report"));
    assert!(!Path::new(out).exists(), "nothing written on failure");
}
