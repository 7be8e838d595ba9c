//! The `segql` binary, run as a user runs it.

use std::path::Path;
use std::process::{Command, Output};

const SEGMENTS: &str = "examples/shop/segments.seg";

/// Runs `segql` with `args`, remembering no checked profile table: plans do not depend on
/// what earlier runs recorded (see `segql::verified`).
fn segql(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_segql"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("SEGQL_CACHE_DIR", "")
        .output()
        .expect("run segql")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exit code")
}

fn write_bad_file(directory: &Path) -> std::path::PathBuf {
    std::fs::copy("examples/shop/segql.toml", directory.join("segql.toml")).expect("copy catalog");
    let catalog = std::fs::read_to_string(directory.join("segql.toml")).expect("catalog");
    // Point the copy at the demo data and drop its default segment file.
    let shop = std::fs::canonicalize("examples/shop").expect("shop");
    let catalog = catalog
        .replace("segments = [\"segments.seg\"]\n", "")
        .replace("source = \"", &format!("source = \"{}/", shop.display()));
    std::fs::write(directory.join("segql.toml"), catalog).expect("write catalog");
    let bad = directory.join("bad.seg");
    std::fs::write(
        &bad,
        "segment a = contry = \"DE\"\nsegment b = age > \"x\"\n",
    )
    .expect("write");
    bad
}

#[test]
fn check_accepts_the_demo() {
    let output = segql(&["check", SEGMENTS]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("ok: 20 segments"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn check_reports_every_error_and_exits_1() {
    let directory = tempfile::tempdir().expect("tempdir");
    let bad = write_bad_file(directory.path());
    let output = segql(&["check", bad.to_str().expect("path")]);
    assert_eq!(code(&output), 1);
    let text = stderr(&output);
    assert!(
        text.contains("E0101") && text.contains("did you mean `country`?"),
        "{text}"
    );
    assert!(text.contains("E0201"), "both errors are reported: {text}");
    assert!(
        !text.contains('\u{1b}'),
        "no colour when NO_COLOR is set: {text}"
    );

    let json = segql(&[
        "check",
        bad.to_str().expect("path"),
        "--diagnostics",
        "json",
    ]);
    assert_eq!(code(&json), 1);
    let parsed: serde_json::Value = serde_json::from_str(&stderr(&json)).expect("JSON diagnostics");
    let items = parsed.as_array().expect("an array");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["code"], "E0101");
    assert_eq!(items[0]["location"]["start_position"]["line"], 1);
    assert_eq!(items[0]["location"]["start_position"]["column"], 13);
    assert_eq!(items[0]["help"], "did you mean `country`?");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(code(&segql(&["run"])), 2);
    assert_eq!(code(&segql(&["frobnicate"])), 2);
    let output = segql(&["run", SEGMENTS, "--as-of", "yesterday"]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("is not a time"),
        "{}",
        stderr(&output)
    );
    assert_eq!(code(&segql(&["run", SEGMENTS, "--format", "parquet"])), 2);
}

#[test]
fn run_prints_sorted_csv_matching_count() {
    let output = segql(&["run", SEGMENTS, "--segment", "vip_at_risk"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("customer_id"));
    let keys: Vec<i64> = lines.map(|l| l.parse().expect("a key per line")).collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "sorted ascending, no duplicates"
    );

    let counted = segql(&["count", SEGMENTS, "--segment", "vip_at_risk"]);
    assert_eq!(code(&counted), 0, "{}", stderr(&counted));
    let size: usize = stdout(&counted)
        .lines()
        .find_map(|l| l.strip_prefix("vip_at_risk"))
        .and_then(|rest| rest.trim().parse().ok())
        .expect("a count for vip_at_risk");
    assert_eq!(size, keys.len());
    assert!(size > 0);
}

#[test]
fn run_several_segments_with_columns() {
    let output = segql(&[
        "run",
        SEGMENTS,
        "--segment",
        "vip_at_risk",
        "--segment",
        "new_customers",
        "--with",
        "age,lifecycle,aov",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("segment,customer_id,age,lifecycle,aov"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(
        rows.iter().any(|r| r[0] == "new_customers") && rows.iter().any(|r| r[0] == "vip_at_risk")
    );
    assert!(
        rows.iter()
            .filter(|r| r[0] == "new_customers")
            .all(|r| r[3] == "new"),
        "members of new_customers are in stage new"
    );
    let order: Vec<(&str, i64)> = rows
        .iter()
        .map(|r| (r[0], r[1].parse().expect("key")))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "sorted by segment, then key");
}

#[test]
fn run_writes_parquet_atomically() {
    let directory = tempfile::tempdir().expect("tempdir");
    let out = directory.path().join("members.parquet");
    let out_text = out.to_str().expect("path");
    let output = segql(&[
        "run",
        SEGMENTS,
        "--segment",
        "dach",
        "--format",
        "parquet",
        "--out",
        out_text,
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let file = std::fs::File::open(&out).expect("output written");
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("valid parquet")
            .build()
            .expect("reader");
    let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
    assert!(rows > 0);

    // A failed run leaves no file behind.
    let failed_out = directory.path().join("failed.csv");
    let failed = segql(&[
        "run",
        SEGMENTS,
        "--segment",
        "no_such_segment",
        "--out",
        failed_out.to_str().expect("path"),
    ]);
    assert_eq!(code(&failed), 1);
    assert!(stderr(&failed).contains("E0402"), "{}", stderr(&failed));
    assert!(!failed_out.exists());
    let unwritable = segql(&[
        "run",
        SEGMENTS,
        "--segment",
        "dach",
        "--out",
        "/nonexistent/dir/out.csv",
    ]);
    assert_eq!(code(&unwritable), 1);
    assert!(
        stderr(&unwritable).contains("E0405"),
        "{}",
        stderr(&unwritable)
    );
    let leftovers = std::fs::read_dir(directory.path()).expect("dir").count();
    assert_eq!(leftovers, 1, "only the parquet file, no temporary files");
}

#[test]
fn run_formats() {
    let table = segql(&[
        "run",
        SEGMENTS,
        "--segment",
        "unhappy_customers",
        "--with",
        "country",
        "--format",
        "table",
    ]);
    assert_eq!(code(&table), 0);
    assert!(
        stdout(&table).contains("| customer_id | country |"),
        "{}",
        stdout(&table)
    );
    let ndjson = segql(&[
        "run",
        SEGMENTS,
        "--segment",
        "unhappy_customers",
        "--with",
        "country",
        "--format",
        "ndjson",
    ]);
    assert_eq!(code(&ndjson), 0);
    for line in stdout(&ndjson).lines() {
        let row: serde_json::Value = serde_json::from_str(line).expect("a JSON object per line");
        assert!(row["customer_id"].is_i64());
    }
}

#[test]
fn as_of_changes_the_audience() {
    let now = segql(&["count", SEGMENTS, "--segment", "recent_visitors"]);
    let then = segql(&[
        "count",
        SEGMENTS,
        "--segment",
        "recent_visitors",
        "--as-of",
        "1997-03-01",
    ]);
    assert_eq!(code(&now), 0);
    assert_eq!(code(&then), 0);
    assert_ne!(stdout(&now), stdout(&then));
}

/// The view scan of a segment, as `compile --emit physical` shows it.
fn view_scan(segment: &str) -> String {
    let output = segql(&[
        "compile",
        SEGMENTS,
        "--segment",
        segment,
        "--emit",
        "physical",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let plan = stdout(&output);
    let scan = plan.lines().find(|line| line.contains("viewed.parquet"));
    scan.unwrap_or_else(|| panic!("no scan of the views:\n{plan}"))
        .to_string()
}

#[test]
fn a_bound_every_event_meets_is_not_tested_and_its_column_not_read() {
    // Every demo view is older than `as_of` and has a time: `never_purchased` reads the
    // views' keys alone.
    let all_views = view_scan("never_purchased");
    assert!(
        all_views.contains("projection=[customer_id]"),
        "{all_views}"
    );
    // The last 7 days are a bound some views fail: the times are read.
    let recent = view_scan("recent_visitors");
    assert!(recent.contains("projection=[customer_id, ts]"), "{recent}");
}

#[test]
fn compile_prints_each_stage() {
    for (emit, expected) in [
        ("ast", "SegmentDecl"),
        (
            "ir",
            " = exists(purchased) where (category = \"fashion\") in [now - 30d, now]",
        ),
        ("plan", "Inner Join: __m_purchased.__key = __p.customer_id"),
        ("optimized", "TableScan: purchased"),
        ("physical", "pruning_predicate="),
    ] {
        let output = segql(&[
            "compile",
            SEGMENTS,
            "--segment",
            "big_fashion_buyers",
            "--emit",
            emit,
        ]);
        assert_eq!(code(&output), 0, "{emit}: {}", stderr(&output));
        assert!(
            stdout(&output).contains(expected),
            "{emit}: {}",
            stdout(&output)
        );
    }
    let missing = segql(&[
        "compile",
        SEGMENTS,
        "--segment",
        "big_fashion_buyer",
        "--emit",
        "plan",
    ]);
    assert_eq!(code(&missing), 1);
    assert!(
        stderr(&missing).contains("did you mean `big_fashion_buyers`?"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn explain_analyze_shows_the_metrics_and_the_pruning() {
    // A fixed 1997 range: the Parquet scan of `purchased` is bounded on both sides.
    let run = segql(&[
        "run",
        SEGMENTS,
        "--segment",
        "xmas_gift_buyers_1997",
        "--explain-analyze",
    ]);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    let text = stdout(&run);
    for expected in [
        "metrics=[output_rows=",
        "row_groups_pruned_statistics=",
        "pruning_predicate=",
        "projection=[customer_id, ts, category]",
    ] {
        assert!(text.contains(expected), "{expected}:\n{text}");
    }
    assert!(
        !text.contains("customer_id\n"),
        "no members are printed:\n{text}"
    );

    let count = segql(&["count", SEGMENTS, "--explain-analyze"]);
    assert_eq!(code(&count), 0, "{}", stderr(&count));
    assert!(
        stdout(&count).contains("AggregateExec") && stdout(&count).contains("output_rows=1,"),
        "{}",
        stdout(&count)
    );
}

#[test]
fn duplicate_profile_keys_stop_run_count_and_why() {
    let directory = tempfile::tempdir().expect("tempdir");
    let fixtures = std::fs::canonicalize("tests/fixtures").expect("fixtures");
    std::fs::write(
        directory.path().join("segql.toml"),
        format!(
            "[profiles]\nkey = \"customer_id\"\nsource = \"{}/bad_keys.csv\"\n",
            fixtures.display()
        ),
    )
    .expect("catalog");
    let segments = directory.path().join("s.seg");
    std::fs::write(&segments, "segment everyone = true\n").expect("segments");
    let segments = segments.to_str().expect("path");
    let out = directory.path().join("members.csv");
    for args in [
        vec!["run", segments, "--out", out.to_str().expect("path")],
        vec!["count", segments],
        vec!["why", segments, "--segment", "everyone", "--key", "1"],
    ] {
        let output = segql(&args);
        assert_eq!(code(&output), 1, "{args:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("E0406"),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(stdout(&output).is_empty(), "{args:?}: {}", stdout(&output));
    }
    assert!(!out.exists(), "no output file after a failed check");
}

#[test]
fn a_profile_table_is_checked_again_once_it_changes() {
    use segql::verified::{SETTLED, VerifiedKeys};
    let directory = tempfile::tempdir().expect("tempdir");
    let cache = directory.path().join("cache");
    let records = VerifiedKeys::new(cache.join("verified-keys"));
    let good = directory.path().join("good.csv");
    let bad = directory.path().join("bad.csv");
    std::fs::write(&good, "customer_id,country\n1,DE\n2,AT\n").expect("good");
    std::fs::write(&bad, "customer_id,country\n1,DE\n2,AT\n2,CH\n").expect("bad");
    let segments = directory.path().join("s.seg");
    std::fs::write(&segments, "segment everyone = true\n").expect("segments");
    let count = |source: &std::path::Path, cache: &std::path::Path| {
        let catalog = directory.path().join("segql.toml");
        let text = format!(
            "[profiles]\nkey = \"customer_id\"\nsource = \"{}\"\n",
            source.display()
        );
        std::fs::write(&catalog, text).expect("catalog");
        Command::new(env!("CARGO_BIN_EXE_segql"))
            .args(["count", segments.to_str().expect("path")])
            .env("SEGQL_CACHE_DIR", cache)
            .output()
            .expect("run segql")
    };
    let written = || -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(cache.join("verified-keys")) else {
            return Vec::new();
        };
        (entries.flatten())
            .map(|e| std::fs::read_to_string(e.path()).expect("record"))
            .collect()
    };
    // Files written just now are not remembered.
    assert_eq!(code(&count(&good, &cache)), 0);
    assert_eq!(written(), Vec::<String>::new());
    std::thread::sleep(SETTLED + std::time::Duration::from_millis(100));

    // A table that passes is remembered: one record, whose first line names the key
    // column as read.
    assert_eq!(code(&count(&good, &cache)), 0);
    let [record] = written().try_into().expect("one record");
    let key = (record.lines().next())
        .and_then(|line| line.strip_prefix("key "))
        .expect("the key line");
    assert!(key.starts_with("customer_id"), "{record}");
    assert!(records.is_verified(&good, key));
    // Its keys, 1 and 2, are sorted and without gaps: the record keeps their range.
    assert!(record.ends_with("\ncontiguous 1 2\n"), "{record}");

    // A remembered table is not checked: a record for the bad table (which no run of
    // segql writes) lets it through, and without the records it fails.
    let identity = records.identity(&bad, key).expect("settled");
    (records.record(&bad, key, &identity, Default::default())).expect("record");
    assert_eq!(code(&count(&bad, &cache)), 0);
    let output = count(&bad, std::path::Path::new(""));
    assert!(stderr(&output).contains("E0406"), "{}", stderr(&output));

    // Once it changes, it is checked again.
    std::fs::write(&bad, "customer_id,country\n1,DE\n2,AT\n2,CH\n3,FR\n").expect("bad");
    let output = count(&bad, &cache);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert!(stderr(&output).contains("E0406"), "{}", stderr(&output));
}

#[test]
fn timeout_and_memory_limit_stop_without_output() {
    let directory = tempfile::tempdir().expect("tempdir");
    let out = directory.path().join("members.csv");
    let out = out.to_str().expect("path");
    for (limit, code_expected) in [
        (["--timeout", "1ms"], "E0407"),
        (["--memory-limit", "10KB"], "E0408"),
    ] {
        let mut args = vec!["run", SEGMENTS, "--out", out];
        args.extend(limit);
        let output = segql(&args);
        assert_eq!(code(&output), 1, "{limit:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(code_expected),
            "{limit:?}: {}",
            stderr(&output)
        );
        assert!(!Path::new(out).exists(), "{limit:?}: no output file");
    }
    // Generous limits change nothing.
    let limited = segql(&[
        "count",
        SEGMENTS,
        "--memory-limit",
        "1GiB",
        "--timeout",
        "5min",
    ]);
    assert_eq!(code(&limited), 0, "{}", stderr(&limited));
    assert_eq!(stdout(&limited), stdout(&segql(&["count", SEGMENTS])));
    for bad in [["--timeout", "soon"], ["--memory-limit", "lots"]] {
        let mut args = vec!["count", SEGMENTS];
        args.extend(bad);
        let output = segql(&args);
        assert_eq!(code(&output), 2, "{bad:?}");
        assert!(
            stderr(&output).contains("write e.g."),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn no_progress_output_in_pipes() {
    let output = segql(&["count", SEGMENTS]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let errors = stderr(&output);
    assert_eq!(
        errors.lines().collect::<Vec<_>>(),
        vec![errors.lines().next().unwrap_or_default()],
        "one summary line, no spinner:\n{errors}"
    );
    assert!(errors.starts_with("20 segments counted in "), "{errors}");
}

#[test]
fn count_lists_every_segment_of_the_file() {
    let output = segql(&["count", SEGMENTS]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(
        text.lines().count(),
        21,
        "a header and 20 segments:\n{text}"
    );
}

#[test]
fn missing_catalog_and_files_are_diagnostics() {
    let directory = tempfile::tempdir().expect("tempdir");
    let lonely = directory.path().join("lonely.seg");
    std::fs::write(&lonely, "segment s = true").expect("write");
    let output = segql(&["check", lonely.to_str().expect("path")]);
    assert_eq!(code(&output), 1);
    assert!(
        stderr(&output).contains("E0302") && stderr(&output).contains("--catalog"),
        "{}",
        stderr(&output)
    );
    // With --catalog it works from anywhere.
    let output = segql(&[
        "check",
        lonely.to_str().expect("path"),
        "--catalog",
        "examples/shop/segql.toml",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let output = segql(&["check", "no/such/file.seg"]);
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).contains("E0401"), "{}", stderr(&output));
}

#[test]
fn demo_generates_a_runnable_dataset() {
    let directory = tempfile::tempdir().expect("tempdir");
    let out = directory.path().join("shop");
    let output = segql(&[
        "demo",
        "--customers",
        "300",
        "--out",
        out.to_str().expect("path"),
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    for file in [
        "segql.toml",
        "segments.seg",
        "customers.parquet",
        "purchased.parquet",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
    let counted = segql(&["count", out.join("segments.seg").to_str().expect("path")]);
    assert_eq!(code(&counted), 0, "{}", stderr(&counted));
    assert!(stdout(&counted).contains("big_fashion_buyers"));
}

#[test]
fn why_explains_a_member_and_a_non_member() {
    let members = stdout(&segql(&["run", SEGMENTS, "--segment", "vip_at_risk"]));
    let member = members.lines().nth(1).expect("a member").to_string();
    let output = segql(&[
        "why",
        SEGMENTS,
        "--segment",
        "vip_at_risk",
        "--key",
        &member,
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!(
            "customer_id {member} is a member of `vip_at_risk`"
        )),
        "{text}"
    );
    assert!(
        text.contains("✓ churn_score > 0.7") && text.contains("✓ ltv > 500"),
        "{text}"
    );
    let outsider = (1..3000)
        .map(|k| k.to_string())
        .find(|k| !members.lines().any(|l| l == k))
        .expect("someone is not a member");
    let output = segql(&[
        "why",
        SEGMENTS,
        "--segment",
        "vip_at_risk",
        "--key",
        &outsider,
    ]);
    assert!(
        stdout(&output).contains("is NOT a member") && stdout(&output).contains('✗'),
        "{}",
        stdout(&output)
    );
}

#[test]
fn why_shows_the_value_a_ranking_orders_by() {
    let rankings = "tests/sql/rankings.seg";
    let catalog = "examples/shop/segql.toml";
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--catalog", catalog]);
        segql(&all)
    };
    let members = stdout(&run(&["run", rankings, "--segment", "top_spenders_year"]));
    let member = members.lines().nth(1).expect("a member").to_string();
    let output = run(&[
        "why",
        rankings,
        "--segment",
        "top_spenders_year",
        "--key",
        &member,
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("✓ top 50 by sum(purchased.amount)")
            && text.contains("= sum(purchased.amount)  → "),
        "{text}"
    );
    let output = run(&[
        "why",
        rankings,
        "--segment",
        "income_lookalikes",
        "--key",
        &member,
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("income > 80000") && text.contains("= age  → "),
        "{text}"
    );
}

#[test]
fn why_lists_each_step_of_a_sequence_with_its_events() {
    let sequences = "tests/sql/sequences.seg";
    let catalog = "examples/shop/segql.toml";
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--catalog", catalog]);
        segql(&all)
    };
    let members = stdout(&run(&[
        "run",
        sequences,
        "--segment",
        "viewed_product_bought",
    ]));
    let member = members.lines().nth(1).expect("a member").to_string();
    let output = run(&[
        "why",
        sequences,
        "--segment",
        "viewed_product_bought",
        "--key",
        &member,
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    let step = |n: usize, event: &str| {
        let at = text
            .find(&format!("step {n}: {event}"))
            .unwrap_or_else(|| panic!("no step {n} in\n{text}"));
        text[at..].lines().nth(1).unwrap_or_default().to_string()
    };
    // Each step lists the member's events with the correlated product.
    for (n, event) in [(1, "viewed"), (2, "purchased")] {
        let first = step(n, event);
        assert!(
            first.contains("• 199") && first.contains("product="),
            "{first}\n{text}"
        );
    }
}

#[test]
fn repl_runs_a_script_from_standard_input() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_segql"))
        .args(["repl", SEGMENTS])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let script =
        "segment rich = income > 90000\n:sample 2\nin rich and (\n  age > 50)\ncontry = 1\n";
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    assert_eq!(code(&output), 1, "a failed line makes the exit code 1");
    let text = stdout(&output);
    assert!(text.contains("defined segment `rich`"), "{text}");
    assert!(
        text.contains("profiles (") && !text.contains(" ms)"),
        "the multi-line condition ran, without timing: {text}"
    );
    assert!(stderr(&output).contains("E0101"), "{}", stderr(&output));
}

#[test]
fn compile_and_run_write_sql_for_other_engines() {
    let output = segql(&[
        "compile",
        SEGMENTS,
        "--segment",
        "lapsed",
        "--emit",
        "sql",
        "--dialect",
        "mysql",
        "--table-prefix",
        "crm_",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let sql = stdout(&output);
    assert!(
        sql.starts_with("SELECT") && sql.contains("FROM `crm_purchased` AS `purchased`"),
        "{sql}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("sql");
    let output = segql(&[
        "run",
        SEGMENTS,
        "--emit-sql-dir",
        out.to_str().expect("utf-8"),
        "--dialect",
        "sqlite",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let files: Vec<_> = std::fs::read_dir(&out).expect("the directory").collect();
    assert_eq!(files.len(), 20, "one file per demo segment");
    let lapsed = std::fs::read_to_string(out.join("lapsed.sql")).expect("lapsed.sql");
    assert!(
        lapsed.starts_with("SELECT") && lapsed.ends_with(";\n"),
        "{lapsed}"
    );
    assert!(
        stderr(&output).contains("wrote 20 sqlite SQL files"),
        "{}",
        stderr(&output)
    );

    let output = segql(&[
        "compile",
        SEGMENTS,
        "--segment",
        "lapsed",
        "--emit",
        "sql",
        "--dialect",
        "oracle",
    ]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("possible values"),
        "{}",
        stderr(&output)
    );
}
