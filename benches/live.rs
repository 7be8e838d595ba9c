//! Throughput and latency of the real-time interpreter: the demo's 20 segments over
//! synthetic customers, events ingested one at a time on one core.
//!
//! ```text
//! cargo bench --bench live                         # 1M customers, 5M events, one at a time
//! cargo bench --bench live -- 100000 1000000       # CUSTOMERS EVENTS
//! cargo bench --bench live -- 1000000 5000000 64   # ... in batches of 64 (`ingest_batch`)
//! cargo bench --bench live -- 10000 50000 64 200   # ... 200 rounds: the state fits in cache
//! ```
//!
//! Profiles and events are the demo's own rows, re-keyed onto the synthetic customers and
//! re-timed to arrive in order over 30 days, so values and selectivities are the demo's.
//! It ingests two such rounds (or ROUNDS, the fourth number), each 30 days after the one
//! before: in the first, the customers' state grows from nothing; the others show an
//! engine that has been running, and are reported together.
//! For each round it prints events per second and the latency of `ingest` (p50, p99,
//! p99.9, max; in batches, of the whole `ingest_batch`, the longest any of its events
//! waits). Then the time of `advance_to` over each of three days with no events, the peak
//! resident memory, and the size and time of a checkpoint (`segql watch --state`).

use std::path::Path;
use std::time::Instant;

use segql::live::{DAY, Datum, Event, Membership};

/// The `segql` binary's allocator, jemalloc (see Cargo.toml).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, as an embedder that runs the engine on a large population would set
/// them: transparent huge pages for its memory. The engine reads gigabytes of state in no
/// order, and with 4 KB pages almost every customer's state also missed the address
/// translation cache (docs/realtime.md, "Huge pages"). `_RJEM_MALLOC_CONF=thp:default`
/// measures without them.
#[allow(unsafe_code, non_upper_case_globals)]
// SAFETY: jemalloc reads this symbol, a C string of its options, when it starts; the name
// is the one tikv-jemalloc-sys gives jemalloc's `malloc_conf`, and nothing else defines
// it. A reference to a byte array is a plain pointer, as C's `const char *`.
#[unsafe(export_name = "_rjem_malloc_conf")]
static malloc_conf: &[u8; 11] = b"thp:always\0";

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at] as f64 / 1_000.0
}

fn main() {
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let customers = numbers.first().copied().unwrap_or(1_000_000);
    let events = numbers.get(1).copied().unwrap_or(5_000_000);
    let batch_size = numbers.get(2).copied().unwrap_or(1).max(1);
    let rounds = numbers.get(3).copied().unwrap_or(2).max(2);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (session, demo_events) = runtime.block_on(async {
        let mut session = segql::Session::open(Path::new("examples/shop/segql.toml"))
            .await
            .expect("the demo catalog");
        session
            .add_file(Path::new("examples/shop/segments.seg"))
            .expect("the demo segments");
        let events = segql::live::current_events(&session)
            .await
            .expect("the demo tables");
        (session, events)
    });
    let (profiles, occurred): (Vec<Event>, Vec<Event>) = demo_events
        .into_iter()
        .partition(|e| matches!(e, Event::Profile(_)));
    let start = session.as_of();

    let mut live = Membership::new(session.program(), session.schema(), &[]).expect("an engine");
    let segments = live.segment_names().count();
    live.advance_to(start);
    let began = Instant::now();
    for customer in 0..customers {
        let Event::Profile(mut row) = profiles[customer % profiles.len()].clone() else {
            unreachable!("profiles only")
        };
        row[0] = Datum::Int(customer as i64);
        live.ingest(Event::Profile(row)).expect("a profile");
    }
    let profile_seconds = began.elapsed().as_secs_f64();

    // Events spread over 30 days, in order; customers drawn by a fixed LCG.
    let how = if batch_size == 1 {
        "one at a time".to_string()
    } else {
        format!("in batches of {batch_size}")
    };
    println!(
        "real-time interpreter: {customers} customers, {segments} segments, {events} events {how}, {rounds} rounds"
    );
    println!("  profiles loaded         {:>10.2} s", profile_seconds);
    // Rounds of 30 days each: in the first, every customer's state grows from nothing
    // (and the process takes fresh memory from the system); in the others, old events
    // leave the windows as new ones come, as in an engine that has been running a while.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    // The rounds after the first, together.
    let (mut steady_seconds, mut steady_changes, mut steady_latencies) = (0.0, 0, Vec::new());
    for round in 0..rounds {
        let from = live.now();
        let step = (30 * DAY) / events as i64;
        let mut batch = Vec::with_capacity(events);
        for i in 0..events {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let Event::Occurred { table, mut row } = occurred[i % occurred.len()].clone() else {
                unreachable!("events only")
            };
            row[0] = Datum::Int(((state >> 33) % customers as u64) as i64);
            row[1] = Datum::Ts(from + (i as i64 + 1) * step);
            batch.push(Event::Occurred { table, row });
        }
        let (seconds, changes, latencies) = ingest(&mut live, batch, batch_size);
        if round == 0 {
            report(
                "first 30 days (state grows)",
                events,
                seconds,
                changes,
                latencies,
            );
        } else {
            steady_seconds += seconds;
            steady_changes += changes;
            steady_latencies.extend(latencies);
        }
    }
    steady_latencies.sort_unstable();
    let title = if rounds == 2 {
        "next 30 days (steady state)".to_string()
    } else {
        format!("next {} × 30 days (steady state)", rounds - 1)
    };
    report(
        &title,
        events * (rounds - 1),
        steady_seconds,
        steady_changes,
        steady_latencies,
    );
    for day in 1..=3 {
        let began = Instant::now();
        let expired = live.advance_to(live.now() + DAY).len();
        let advance_ms = began.elapsed().as_secs_f64() * 1e3;
        println!("  advance_to, day {day}       {advance_ms:>10.1} ms ({expired} changes)");
    }
    println!("  restless profiles       {:>10}", live.restless_profiles());
    println!("  peak resident memory    {:>10.0} MB", peak_rss_mb());

    let began = Instant::now();
    let mut saved = Vec::new();
    live.save(&mut saved).expect("the state encodes");
    let save_seconds = began.elapsed().as_secs_f64();
    let mut restored =
        Membership::new(session.program(), session.schema(), &[]).expect("an engine");
    let began = Instant::now();
    restored.restore(&saved).expect("the state decodes");
    let restore_seconds = began.elapsed().as_secs_f64();
    assert_eq!(restored.profiles(), live.profiles());
    println!(
        "  checkpoint              {:>10.0} MB, saved in {save_seconds:.2} s, restored in {restore_seconds:.2} s",
        saved.len() as f64 / 1e6
    );
}

/// Prints a round's throughput and latencies (`latencies` sorted, in nanoseconds).
fn report(title: &str, events: usize, seconds: f64, changes: usize, latencies: Vec<u64>) {
    println!("  {title}:");
    println!(
        "    events ingested       {:>10.0} events/s ({seconds:.2} s, {changes} changes)",
        events as f64 / seconds
    );
    println!(
        "    ingest latency (µs)   p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.0}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999),
        percentile(&latencies, 1.0)
    );
}

/// Ingests `events` one at a time or in batches, timing each call: the seconds it took,
/// the changes returned, and the sorted latencies in nanoseconds.
fn ingest(live: &mut Membership, events: Vec<Event>, batch_size: usize) -> (f64, usize, Vec<u64>) {
    let mut latencies = Vec::with_capacity(events.len());
    let mut changes = 0usize;
    let began = Instant::now();
    if batch_size == 1 {
        for event in events {
            let t = Instant::now();
            changes += live.ingest(event).expect("an event").len();
            latencies.push(t.elapsed().as_nanos() as u64);
        }
    } else {
        let mut events = events.into_iter();
        loop {
            let chunk: Vec<Event> = events.by_ref().take(batch_size).collect();
            if chunk.is_empty() {
                break;
            }
            let t = Instant::now();
            for result in live.ingest_batch(chunk) {
                changes += result.expect("an event").len();
            }
            latencies.push(t.elapsed().as_nanos() as u64);
        }
    }
    let seconds = began.elapsed().as_secs_f64();
    latencies.sort_unstable();
    (seconds, changes, latencies)
}
