//! The real-time interpreter against the DataFusion plans: the demo's events are fed
//! through `live::Membership` in time order, and at checkpoints every segment of the
//! demo, the benchmark and the construct corpus must have exactly the members the
//! batch plan finds at that `as_of`. The changes the interpreter emitted must add up to
//! the same members, in time order. A small case checks the instants of time-driven
//! changes against times worked out by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray, Int64Array};
use segql::Session;
use segql::live::{Change, Datum, Event, Key, Membership};

const FILES: [&str; 4] = [
    "examples/shop/segments.seg",
    "bench/segments.seg",
    "tests/sql/constructs.seg",
    "tests/sql/sequences.seg",
];

/// The catalog's `as_of`, the last checkpoint.
const AS_OF: &str = "1998-07-01T00:00:00Z";

/// Times to compare at: four inside the data, at odd times of day, and the catalog's
/// `as_of`.
fn checkpoints(first_event: i64) -> Vec<i64> {
    let as_of = nanos(AS_OF);
    let odd = 13 * 3_600_000_000_000 + 30 * 60_000_000_000 + 7;
    let mut times: Vec<i64> = (1..5)
        .map(|k| first_event + (as_of - first_event) / 5 * k + odd)
        .collect();
    times.push(as_of);
    times
}

fn nanos(time: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(time)
        .expect("a time")
        .timestamp_nanos_opt()
        .expect("in range")
}

/// Every named segment's members at `as_of`, from one batch plan.
async fn batch_members(
    session: &mut Session,
    names: &[String],
    as_of: i64,
) -> BTreeMap<String, BTreeSet<i64>> {
    session.set_as_of(as_of);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let plan = session.plan_segments(&names, &[]).expect("plan");
    let batches = session.execute(plan).await.expect("run");
    let mut members: BTreeMap<String, BTreeSet<i64>> = names
        .iter()
        .map(|n| (n.to_string(), BTreeSet::new()))
        .collect();
    for batch in &batches {
        let segments = batch.column(0).as_string::<i32>();
        let keys = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("Int64 keys");
        for row in 0..batch.num_rows() {
            members
                .entry(segments.value(row).to_string())
                .or_default()
                .insert(keys.value(row));
        }
    }
    members
}

fn live_members(live: &Membership, name: &str) -> BTreeSet<i64> {
    live.members(name)
        .expect("a kept segment")
        .into_iter()
        .map(|k| match k {
            Key::Int(i) => i,
            Key::Str(s) => panic!("string key {s}"),
        })
        .collect()
}

fn event_time(event: &Event) -> i64 {
    match event {
        Event::Occurred { row, .. } => match row[1] {
            Datum::Ts(t) => t,
            _ => i64::MIN,
        },
        Event::Profile(_) => i64::MIN,
    }
}

/// Members according to the changes seen so far.
#[derive(Default)]
struct Replay {
    members: BTreeMap<String, BTreeSet<i64>>,
    last_at: i64,
}

impl Replay {
    fn apply(&mut self, changes: Vec<Change>) {
        for change in changes {
            assert!(
                change.at >= self.last_at,
                "changes out of time order: {change:?} after {}",
                self.last_at
            );
            self.last_at = change.at;
            let Key::Int(key) = change.key else {
                panic!("string key")
            };
            let members = self.members.entry(change.segment.to_string()).or_default();
            let changed = if change.entered {
                members.insert(key)
            } else {
                members.remove(&key)
            };
            assert!(changed, "a change that changes nothing: {change:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_interpreter_has_the_batch_members_at_every_checkpoint() {
    let mut session = Session::open(Path::new("examples/shop/segql.toml"))
        .await
        .expect("the demo opens");
    let mut events = segql::live::current_events(&session)
        .await
        .expect("the demo tables read");
    // Every event table of the demo has the key first and the time second.
    for table in &session.schema().events {
        assert_eq!(table.columns[1].name, table.time.clone().expect("a time"));
    }
    events.sort_by_key(event_time);
    let (profiles, occurred): (Vec<Event>, Vec<Event>) = events
        .into_iter()
        .partition(|e| matches!(e, Event::Profile(_)));
    let first_event = event_time(&occurred[0]);
    let checkpoints = checkpoints(first_event);

    let mut compared = 0;
    let mut failures = Vec::new();
    for file in FILES {
        session.clear_sources();
        session.add_file(Path::new(file)).expect("the file checks");
        let names = session.program().segment_names();
        let mut live =
            Membership::new(session.program(), session.schema(), &[]).expect("an engine");
        let mut replay = Replay::default();
        replay.apply(live.advance_to(first_event - 1));
        replay.last_at = i64::MIN;
        for profile in &profiles {
            replay.apply(live.ingest(profile.clone()).expect("a profile"));
        }
        let mut next = occurred.iter().peekable();
        for &checkpoint in &checkpoints {
            while let Some(event) = next.next_if(|e| event_time(e) <= checkpoint) {
                replay.apply(live.ingest(event.clone()).expect("an event"));
            }
            replay.apply(live.advance_to(checkpoint));
            assert_eq!(
                live.restless_profiles(),
                0,
                "{file}: no construct here is restless"
            );
            let batch = batch_members(&mut session, &names, checkpoint).await;
            for name in &names {
                let expected = batch[name].clone();
                let got = live_members(&live, name);
                let replayed = replay.members.get(name).cloned().unwrap_or_default();
                compared += 1;
                if expected != got {
                    let missing: Vec<_> = expected.difference(&got).take(5).collect();
                    let extra: Vec<_> = got.difference(&expected).take(5).collect();
                    failures.push(format!(
                        "{file}: {name} at {checkpoint}: batch {} members, live {} (missing {missing:?}, extra {extra:?})",
                        expected.len(),
                        got.len()
                    ));
                } else if replayed != got {
                    failures.push(format!(
                        "{file}: {name} at {checkpoint}: the changes add up to {} members, not {}",
                        replayed.len(),
                        got.len()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared > 300, "only {compared} comparisons");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_started_from_the_tables_or_a_checkpoint_continues_like_one_fed_from_the_start() {
    let mut session = Session::open(Path::new("examples/shop/segql.toml"))
        .await
        .expect("the demo opens");
    session
        .add_file(Path::new("examples/shop/segments.seg"))
        .expect("the demo segments check");
    let mut events = segql::live::current_events(&session)
        .await
        .expect("the demo tables read");
    events.sort_by_key(event_time);
    let first_event = events
        .iter()
        .map(event_time)
        .find(|t| *t > i64::MIN)
        .expect("events");
    let times = checkpoints(first_event);
    let (start, end) = (times[2], times[4]);
    let (before, after): (Vec<Event>, Vec<Event>) =
        events.into_iter().partition(|e| event_time(e) <= start);
    let mut live = Membership::new(session.program(), session.schema(), &[]).expect("an engine");
    live.initialize(before, start).expect("the tables load");
    assert_eq!(live.now(), start);
    let names: Vec<String> = live.segment_names().map(str::to_string).collect();
    let batch = batch_members(&mut session, &names, start).await;
    for name in &names {
        assert_eq!(
            live_members(&live, name),
            batch[name],
            "{name} after loading"
        );
    }
    // A checkpoint of the engine here, restored into a new one, continues the same way.
    let mut saved = Vec::new();
    live.save(&mut saved).expect("the state saves");
    let mut restored =
        Membership::new(session.program(), session.schema(), &[]).expect("an engine");
    restored.restore(&saved).expect("the state restores");
    let mut changes = 0;
    for event in after {
        let original = live.ingest(event.clone()).expect("an event");
        changes += original.len();
        assert_eq!(restored.ingest(event).expect("an event"), original);
    }
    let original = live.advance_to(end);
    assert_eq!(restored.advance_to(end), original);
    assert!(changes + original.len() > 100, "{changes} changes");
    let batch = batch_members(&mut session, &names, end).await;
    for name in &names {
        assert_eq!(live_members(&live, name), batch[name], "{name} at the end");
        assert_eq!(
            live_members(&restored, name),
            batch[name],
            "{name} restored"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_ingested_in_batches_cause_the_changes_they_cause_one_at_a_time() {
    let mut session = Session::open(Path::new("examples/shop/segql.toml"))
        .await
        .expect("the demo opens");
    session
        .add_file(Path::new("bench/segments.seg"))
        .expect("the file checks");
    let mut events = segql::live::current_events(&session)
        .await
        .expect("the demo tables read");
    events.sort_by_key(event_time);
    // A refused event (no key) in the middle of a batch.
    let mut keyless = events.last().expect("events").clone();
    if let Event::Occurred { row, .. } = &mut keyless {
        row[0] = Datum::Null;
    }
    events.insert(events.len() / 2, keyless);

    let mut alone = Membership::new(session.program(), session.schema(), &[]).expect("an engine");
    let mut batched = Membership::new(session.program(), session.schema(), &[]).expect("an engine");
    let (mut expected, mut refused) = (Vec::new(), Vec::new());
    for (at, event) in events.iter().enumerate() {
        match alone.ingest(event.clone()) {
            Ok(changes) => expected.extend(changes),
            Err(rejection) => refused.push((at, rejection)),
        }
    }
    let (mut got, mut got_refused) = (Vec::new(), Vec::new());
    for (chunk, events) in events.chunks(7).enumerate() {
        for (at, result) in batched
            .ingest_batch(events.to_vec())
            .into_iter()
            .enumerate()
        {
            match result {
                Ok(changes) => got.extend(changes),
                Err(rejection) => got_refused.push((chunk * 7 + at, rejection)),
            }
        }
    }
    assert_eq!(refused.len(), 1, "the keyless event is refused");
    assert_eq!(got_refused, refused);
    assert!(expected.len() > 1000, "only {} changes", expected.len());
    assert!(got == expected, "the batches caused other changes");
}

/// Time-driven changes come at the instant the deciding event leaves its window, however
/// later events moved that instant: the expected times are worked out by hand.
#[tokio::test]
async fn time_driven_changes_come_at_the_instant_the_deciding_event_leaves_its_window() {
    use segql::catalog::{Catalog, TableConfig};
    use segql::check::ir::Type;
    use segql::live::DAY;

    let catalog = Catalog::new(
        TableConfig::new("customers", None, "customer_id").with_column("customer_id", Type::Int),
    )
    .with_event(
        TableConfig::new("purchased", None, "customer_id")
            .with_time("ts")
            .with_column("customer_id", Type::Int)
            .with_column("ts", Type::Timestamp)
            .with_column("amount", Type::Float),
    );
    let mut session = Session::without_data(catalog).await.expect("a session");
    session
        .add_source(
            "s.seg",
            "segment twice = count(purchased) >= 2 within 30d\n\
             segment spent = sum(purchased.amount) > 10 within 30d\n\
             segment recent = purchased within 7d\n\
             segment quiet = not purchased within 90d\n",
        )
        .expect("the segments check");
    let mut live = Membership::new(session.program(), session.schema(), &[]).expect("an engine");
    let mut changes = live.advance_to(50 * DAY);
    changes.extend(
        live.ingest(Event::profile(vec![Datum::Int(7)]))
            .expect("a profile"),
    );
    for (day, amount) in [(100, 6.0), (103, 6.0), (110, 1.0)] {
        let row = vec![Datum::Int(7), Datum::Ts(day * DAY), Datum::Float(amount)];
        changes.extend(live.ingest(Event::occurred(0, row)).expect("a purchase"));
    }
    changes.extend(live.advance_to(300 * DAY));
    let got: Vec<(String, bool, i64)> = (changes.iter())
        .map(|c| (c.segment.to_string(), c.entered, c.at))
        .collect();
    let expected = [
        ("quiet", true, 50 * DAY),
        ("quiet", false, 100 * DAY),
        ("recent", true, 100 * DAY),
        ("spent", true, 103 * DAY),
        ("twice", true, 103 * DAY),
        // The purchase of day 110 keeps `recent` past day 107.
        ("recent", false, 117 * DAY + 1),
        // Day 100 leaves: 6 + 1 is not over 10, but two purchases are left.
        ("spent", false, 130 * DAY + 1),
        ("twice", false, 133 * DAY + 1),
        ("quiet", true, 200 * DAY + 1),
    ];
    let mut got_sorted = got.clone();
    got_sorted.sort_by(|a, b| (a.2, &a.0, a.1).cmp(&(b.2, &b.0, b.1)));
    let expected: Vec<(String, bool, i64)> = (expected.iter())
        .map(|(s, e, at)| (s.to_string(), *e, *at))
        .collect();
    assert_eq!(got_sorted, expected);
    assert!(
        got.is_sorted_by_key(|c| c.2),
        "changes in time order: {got:?}"
    );
}
