//! `segql watch` on a real NATS JetStream server: events from a subject through a durable
//! consumer, changes published to a subject, a `kill -9` in the middle, and every change
//! exactly once at the end, the same as a run over a file.
//!
//! The server comes from `SEGQL_TEST_NATS_URL` (`nats://127.0.0.1:4222`, set by `.ci/run`);
//! without it the test says loudly that it did not run.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};

const SEGMENTS: &str = "examples/shop/segments.seg";

fn server() -> Option<String> {
    match std::env::var("SEGQL_TEST_NATS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "NOT RUN: tests/nats.rs needs a NATS server with JetStream; set \
                 SEGQL_TEST_NATS_URL=nats://127.0.0.1:4222 (.ci/run does)"
            );
            None
        }
    }
}

fn watch(url: &str, names: &Names, state: &Path, directory: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_segql"))
        .arg("watch")
        .arg(std::fs::canonicalize(SEGMENTS).expect("the demo segments"))
        .arg("--events")
        .arg(format!("{url}/{}", names.events))
        .arg("--publish")
        .arg(format!("{url}/{}", names.changes))
        .arg("--consumer")
        .arg(&names.consumer)
        .arg("--state")
        .arg(state)
        .args(["--batch", "20", "--checkpoint-every", "2500"])
        .current_dir(directory)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("segql starts")
}

/// Subjects, streams and the consumer of one test run, unique to it.
struct Names {
    events: String,
    changes: String,
    consumer: String,
    events_stream: String,
    changes_stream: String,
}

impl Names {
    fn new() -> Names {
        let run = format!(
            "{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
        );
        Names {
            events: format!("segql.test.{run}.events"),
            changes: format!("segql.test.{run}.changes"),
            consumer: format!("segql-test-{run}"),
            events_stream: format!("SEGQL_TEST_EVENTS_{run}"),
            changes_stream: format!("SEGQL_TEST_CHANGES_{run}"),
        }
    }
}

#[test]
fn events_from_jetstream_changes_to_jetstream_exactly_once_across_a_kill() {
    let Some(url) = server() else {
        return;
    };
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path();
    let lines = common::demo_event_lines(6000);

    // The reference: the same events from a file.
    let events = path.join("events.ndjson");
    common::write_lines(&events, &lines);
    let expected = common::plain_watch(path, &events, &[]);
    assert!(expected.len() > 100, "{} changes", expected.len());

    let names = Names::new();
    let address = url.trim_start_matches("nats://").to_string();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let context = runtime.block_on(async {
        let client = async_nats::connect(&address)
            .await
            .expect("the NATS server");
        let context = jetstream::new(client);
        for (name, subject) in [
            (&names.events_stream, &names.events),
            (&names.changes_stream, &names.changes),
        ] {
            context
                .create_stream(stream::Config {
                    name: name.clone(),
                    subjects: vec![subject.clone()],
                    duplicate_window: Duration::from_secs(120),
                    ..Default::default()
                })
                .await
                .expect("a stream");
        }
        // Half the events before the first start, the rest while it runs.
        let mut acks = Vec::new();
        for line in &lines[..lines.len() / 2] {
            acks.push(
                context
                    .publish(names.events.clone(), line.clone().into())
                    .await
                    .expect("publish"),
            );
        }
        for ack in acks {
            ack.await.expect("stored");
        }
        context
    });

    let state = path.join("state");
    let mut child = watch(&url, &names, &state, path);
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().expect("SIGKILL");
    child.wait().expect("the killed run ends");

    runtime.block_on(async {
        for line in &lines[lines.len() / 2..] {
            context
                .publish(names.events.clone(), line.clone().into())
                .await
                .expect("publish")
                .await
                .expect("stored");
        }
    });
    let mut child = watch(&url, &names, &state, path);
    // Wait until the consumer has acknowledged every event, then stop the run cleanly.
    let began = Instant::now();
    loop {
        let done = runtime.block_on(async {
            let stream = context
                .get_stream(&names.events_stream)
                .await
                .expect("the stream");
            // The restarted run re-creates the consumer: until it has, there is none.
            let consumer: Result<jetstream::consumer::PullConsumer, _> =
                stream.get_consumer(&names.consumer).await;
            let Ok(mut consumer) = consumer else {
                return false;
            };
            consumer.info().await.is_ok_and(|info| {
                info.num_pending == 0
                    && info.num_ack_pending == 0
                    && info.ack_floor.stream_sequence == lines.len() as u64
            })
        });
        if done {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let output = child.wait_with_output().expect("the run's output");
            panic!(
                "segql stopped early ({status}): {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "the events were never acknowledged"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid = child.id().to_string();
    let term = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(term.success());
    let output = child.wait_with_output().expect("the run ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("resumed from"), "{stderr}");
    assert!(stderr.contains("stopped by a signal"), "{stderr}");

    // Every change once: the server dropped what the restart published again.
    let published = runtime.block_on(async {
        let mut stream = context
            .get_stream(&names.changes_stream)
            .await
            .expect("the stream");
        let last = stream
            .info()
            .await
            .expect("stream info")
            .state
            .last_sequence;
        let mut published = Vec::new();
        for sequence in 1..=last {
            let message = stream
                .get_raw_message(sequence)
                .await
                .expect("a stored change");
            published.push(String::from_utf8(message.payload.to_vec()).expect("utf-8"));
        }
        for name in [&names.events_stream, &names.changes_stream] {
            context.delete_stream(name).await.expect("clean up");
        }
        published
    });
    let text = published.join("\n");
    for (at, change) in text.lines().enumerate() {
        let change: serde_json::Value = serde_json::from_str(change).expect("json");
        assert_eq!(change["id"], at as u64, "{change}");
    }
    assert_eq!(common::without_ids(&text), expected);
}
