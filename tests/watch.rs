//! `segql watch` run as a user runs it: NDJSON events in, NDJSON changes out.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const SEGMENTS: &str = "examples/shop/segments.seg";

fn watch(args: &[&str], input: &str, directory: &std::path::Path) -> Output {
    let segments = std::fs::canonicalize(SEGMENTS).expect("the demo segments");
    watch_file(&segments, args, input, directory)
}

fn watch_file(segments: &Path, args: &[&str], input: &str, directory: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_segql"))
        .arg("watch")
        .arg(segments)
        .args(args)
        .current_dir(directory)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run segql");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write events");
    child.wait_with_output().expect("segql ends")
}

fn lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

const EVENTS: &str = r#"{"event": "profile", "customer_id": 7, "country": "DE", "income": 91000}
{"event": "purchased", "customer_id": 7, "ts": "1998-06-01T10:00:00Z", "amount": 950, "category": "electronics"}
not json
{"event": "purchased", "customer_id": "x", "ts": "1998-06-02T00:00:00Z"}
{"event": "bought", "customer_id": 7}

{"event": "purchased", "customer_id": 8, "ts": "1998-06-03T00:00:00Z", "amount": 5}
"#;

#[test]
fn events_in_changes_out_and_bad_lines_to_the_dead_letters() {
    let directory = tempfile::tempdir().expect("tempdir");
    let output = watch(
        &[
            "--segment",
            "new_customers",
            "--segment",
            "high_income",
            "--until",
            "1998-08-01",
        ],
        EVENTS,
        directory.path(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let changes = lines(&output.stdout);
    let expected: Vec<serde_json::Value> = [
        // The profile waits for the first event to set the clock.
        r#"{"segment":"high_income","key":7,"change":"enter","at":"1998-06-01T10:00:00Z"}"#,
        r#"{"segment":"new_customers","key":7,"change":"enter","at":"1998-06-01T10:00:00Z"}"#,
        // 30 days after the first purchase, with no event: `first(ts) > 30d ago` flips.
        r#"{"segment":"new_customers","key":7,"change":"exit","at":"1998-07-01T10:00:00Z"}"#,
    ]
    .iter()
    .map(|l| serde_json::from_str(l).expect("json"))
    .collect();
    // Customer 8 has events but no profile, so is no member.
    assert_eq!(changes, expected, "{stderr}");
    for (line, message) in [
        (3, "line 3: not JSON"),
        (4, "line 4: `customer_id` is \"x\", not an integer"),
        (5, "line 5: unknown event `bought`"),
    ] {
        assert!(stderr.contains(message), "line {line}: {stderr}");
    }
    assert!(
        stderr.contains("3 events accepted, 3 changes written, 3 lines rejected"),
        "{stderr}"
    );
    let dead = std::fs::read(directory.path().join("segql-dead-letters.ndjson"))
        .expect("the dead letters");
    let dead = lines(&dead);
    let numbers: Vec<i64> = dead
        .iter()
        .map(|d| d["line"].as_i64().expect("a line"))
        .collect();
    assert_eq!(numbers, [3, 4, 5]);
    assert_eq!(dead[0]["input"], "not json");
}

#[test]
fn a_cart_abandonment_enters_when_its_gap_ends() {
    let directory = tempfile::tempdir().expect("tempdir");
    let segments = directory.path().join("carts.seg");
    std::fs::write(
        &segments,
        "segment cart_abandoned = added_to_cart(product = p) then not purchased(product = p) within 24h\n",
    )
    .expect("write the segment");
    let catalog = std::fs::canonicalize("examples/shop/segql.toml").expect("the demo catalog");
    let events = r#"{"event": "profile", "customer_id": 7}
{"event": "profile", "customer_id": 8}
{"event": "added_to_cart", "customer_id": 7, "ts": "1998-06-01T10:00:00Z", "product": "a"}
{"event": "added_to_cart", "customer_id": 8, "ts": "1998-06-01T11:00:00Z", "product": "b"}
{"event": "purchased", "customer_id": 7, "ts": "1998-06-01T11:30:00Z", "product": "z"}
{"event": "purchased", "customer_id": 8, "ts": "1998-06-01T12:00:00Z", "product": "b"}
{"event": "added_to_cart", "customer_id": 8, "ts": "1998-06-01T13:00:00Z", "product": "c"}
{"event": "purchased", "customer_id": 8, "ts": "1998-06-02T12:59:59Z", "product": "c"}
{"event": "added_to_cart", "customer_id": 8, "ts": "1998-06-02T14:00:00Z", "product": "d"}
"#;
    let output = watch_file(
        &segments,
        &[
            "--catalog",
            catalog.to_str().expect("a UTF-8 path"),
            "--segment",
            "cart_abandoned",
            "--until",
            "1998-06-04",
        ],
        events,
        directory.path(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let expected: Vec<serde_json::Value> = [
        // Customer 7 bought another product: the cart is abandoned once 24 hours pass,
        // with no event at that moment.
        r#"{"segment":"cart_abandoned","key":7,"change":"enter","at":"1998-06-02T10:00:00Z"}"#,
        // Customer 8 bought the first two products in time; the third is left.
        r#"{"segment":"cart_abandoned","key":8,"change":"enter","at":"1998-06-03T14:00:00Z"}"#,
    ]
    .iter()
    .map(|l| serde_json::from_str(l).expect("json"))
    .collect();
    assert_eq!(lines(&output.stdout), expected, "{stderr}");
}

#[test]
fn initial_members_are_not_emitted_and_changes_go_to_a_file() {
    let directory = tempfile::tempdir().expect("tempdir");
    let out = directory.path().join("changes.ndjson");
    // Customer 1 views a product at the catalog's `as_of`: an entry only if it was not a
    // recent visitor already, since the initial members are loaded silently.
    let events = r#"{"event": "viewed", "customer_id": 1, "ts": "1998-07-01T00:00:00Z", "product": "x", "category": "books"}
"#;
    let output = watch(
        &[
            "--segment",
            "recent_visitors",
            "--initial",
            "--out",
            out.to_str().expect("utf-8"),
            "--until",
            "1998-07-09",
        ],
        events,
        directory.path(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(stderr.contains("rows loaded"), "{stderr}");
    let changes = lines(&std::fs::read(&out).expect("the changes file"));
    // Nothing is emitted for the initial members; eight days later every one has left,
    // and nobody but customer 1 can have entered.
    assert!(!changes.is_empty(), "{stderr}");
    for change in &changes {
        assert_eq!(change["segment"], "recent_visitors");
        if change["change"] == "enter" {
            assert_eq!(change["key"], 1, "{change}");
            assert_eq!(change["at"], "1998-07-01T00:00:00Z");
        } else {
            assert_eq!(change["change"], "exit");
        }
    }
    let exits = changes.iter().filter(|c| c["change"] == "exit").count();
    // The batch engine's recent visitors at `as_of`: all leave within 8 days.
    let count = Command::new(env!("CARGO_BIN_EXE_segql"))
        .args(["count", SEGMENTS, "--segment", "recent_visitors"])
        .output()
        .expect("count");
    let text = String::from_utf8_lossy(&count.stdout);
    let members: usize = text
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(members > 0);
    let enters = changes.len() - exits;
    assert!(enters <= 1);
    // Every loaded member leaves, and so does customer 1 if it entered.
    assert_eq!(
        exits,
        members + enters,
        "{exits} exits of {members} members"
    );
}

#[test]
fn watch_without_events_file_says_so() {
    let directory = tempfile::tempdir().expect("tempdir");
    let output = watch(&["--events", "missing.ndjson"], "", directory.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read events from `missing.ndjson`"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_segment_is_named() {
    let directory = tempfile::tempdir().expect("tempdir");
    let output = watch(&["--segment", "nope"], "", directory.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error[E0402]: there is no segment `nope`"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_or_unreachable_broker_is_named() {
    let directory = tempfile::tempdir().expect("tempdir");
    let output = watch(&["--events", "nats://127.0.0.1:4222"], "", directory.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("there is no subject"), "{stderr}");
    assert!(stderr.contains("nats://HOST:PORT/SUBJECT"), "{stderr}");

    // Port 9 (discard) has no NATS server.
    let output = watch(
        &["--events", "nats://127.0.0.1:9/events"],
        "",
        directory.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot connect to the NATS server at 127.0.0.1:9"),
        "{stderr}"
    );

    let output = watch(&["--publish", "changes.ndjson"], "", directory.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--publish takes a NATS subject"),
        "{stderr}"
    );
}

/// `segql watch FILE --events EVENTS --out OUT --state STATE` with more arguments, not
/// waited for.
fn durable(directory: &Path, events: &Path, out: &Path, state: &Path, more: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_segql"));
    command
        .arg("watch")
        .arg(std::fs::canonicalize(SEGMENTS).expect("the demo segments"))
        .arg("--events")
        .arg(events)
        .arg("--out")
        .arg(out)
        .arg("--state")
        .arg(state)
        .args(more)
        .current_dir(directory)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

const UNTIL: [&str; 2] = ["--until", "1999-01-01"];

/// The reference: every event in one uninterrupted run, without --state.
fn plain_run(directory: &Path, events: &Path) -> Vec<serde_json::Value> {
    let changes = common::plain_watch(directory, events, &UNTIL);
    assert!(changes.len() > 1000, "{} changes", changes.len());
    changes
}

/// The changes of a durable run's output file, checked to be numbered 0, 1, 2, ...
fn numbered(out: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(out).expect("changes");
    for (at, change) in lines(text.as_bytes()).iter().enumerate() {
        assert_eq!(change["id"], at as u64, "{change}");
    }
    common::without_ids(&text)
}

#[test]
fn a_durable_run_resumes_where_the_last_one_stopped() {
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path();
    let all = common::demo_event_lines(usize::MAX);
    let events = path.join("events.ndjson");
    common::write_lines(&events, &all);
    let reference = plain_run(path, &events);

    // The file grows between two runs on the same state: the second starts at the byte
    // where the first stopped, and the output file continues.
    let (out, state) = (path.join("out.ndjson"), path.join("state"));
    let half = all.len() / 2;
    common::write_lines(&events, &all[..half]);
    let first = durable(path, &events, &out, &state, &[])
        .output()
        .expect("segql runs");
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(0), "{stderr}");
    common::write_lines(&events, &all);
    let second = durable(path, &events, &out, &state, &UNTIL)
        .output()
        .expect("segql runs");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(0), "{stderr}");
    let resumed = format!("resumed from `{}`: {half} events accepted", state.display());
    assert!(stderr.contains(&resumed), "{stderr}");
    let rest = format!("{} events accepted,", all.len() - half);
    assert!(stderr.contains(&rest), "{stderr}");
    assert!(
        numbered(&out) == reference,
        "the two runs' changes differ from one run's"
    );

    // Another program on the same state is refused, and nothing is written.
    let before = std::fs::read(&out).expect("changes");
    let other = durable(path, &events, &out, &state, &["--segment", "high_income"])
        .output()
        .expect("segql runs");
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("was kept for other segments"), "{stderr}");
    assert_eq!(std::fs::read(&out).expect("changes"), before);
}

#[test]
fn a_run_killed_at_any_moment_loses_and_repeats_nothing() {
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path();
    let events = path.join("events.ndjson");
    common::write_lines(&events, &common::demo_event_lines(usize::MAX));
    let reference = plain_run(path, &events);

    // Small batches and frequent checkpoints, so kills land in every phase: between
    // batches, between the log's sync and the output, during a checkpoint.
    let (out, state) = (path.join("out.ndjson"), path.join("state"));
    let settings = [
        "--batch",
        "7",
        "--checkpoint-every",
        "3000",
        "--until",
        "1999-01-01",
    ];
    let mut kills = 0;
    let mut delay_ms = 40;
    loop {
        let mut child = durable(path, &events, &out, &state, &settings)
            .stderr(Stdio::null())
            .spawn()
            .expect("segql starts");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if child.try_wait().expect("the run's status").is_some() {
            break;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("the killed run ends");
        kills += 1;
        // Progress needs time past start-up; the delays vary so kills land anywhere.
        delay_ms = 150 + (delay_ms * 7919) % 400;
        assert!(kills < 200, "the run never finished");
    }
    let last = durable(path, &events, &out, &state, &settings)
        .output()
        .expect("segql runs");
    let stderr = String::from_utf8_lossy(&last.stderr);
    assert_eq!(last.status.code(), Some(0), "{stderr}");
    assert!(
        kills >= 3,
        "only {kills} kills: the run was too quick to test recovery"
    );
    let changes = numbered(&out);
    assert_eq!(changes.len(), reference.len(), "after {kills} kills");
    assert!(
        changes == reference,
        "after {kills} kills the changes differ"
    );
}
