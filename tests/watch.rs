//! `segql watch` run as a user runs it: NDJSON events in, NDJSON changes out.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const SEGMENTS: &str = "examples/shop/segments.seg";

fn watch(args: &[&str], input: &str, directory: &std::path::Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_segql"))
        .arg("watch")
        .arg(std::fs::canonicalize(SEGMENTS).expect("the demo segments"))
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
        stderr.contains("error[E0402]: there is no segment `nope`"),
        "{stderr}"
    );
}

#[test]
fn a_broker_address_is_not_taken_for_a_file() {
    let directory = tempfile::tempdir().expect("tempdir");
    let output = watch(
        &["--events", "nats://127.0.0.1:4222/events"],
        "",
        directory.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a file"), "{stderr}");
    assert!(stderr.contains("standard input"), "{stderr}");
}
