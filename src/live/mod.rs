//! The real-time back end: an interpreter of the checked program that keeps per-profile
//! state and emits membership changes as events arrive and as time passes.
//!
//! It shares the checker and the IR with the DataFusion back end and nothing else; the
//! differential test (`tests/live.rs`) holds the two to the same members at the same
//! `as_of`. [`Membership`] is the engine:
//!
//! ```
//! use segql::live::{Datum, Event, Membership};
//! # use segql::{Session, catalog::{Catalog, TableConfig}, check::ir::Type};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let catalog = Catalog::new(
//! #     TableConfig::new("customers", None, "customer_id").with_column("customer_id", Type::Int),
//! # )
//! # .with_event(
//! #     TableConfig::new("purchased", None, "customer_id")
//! #         .with_time("ts")
//! #         .with_column("customer_id", Type::Int)
//! #         .with_column("ts", Type::Timestamp),
//! # );
//! # let mut session = Session::without_data(catalog).await?;
//! session.add_source("s.seg", "segment recent = purchased within 30d")?;
//! let mut live = Membership::new(session.program(), session.schema(), &[])?;
//! const DAY: i64 = 86_400_000_000_000;
//! live.ingest(Event::profile(vec![Datum::Int(7)]))?;
//! let entered = live.ingest(Event::occurred(0, vec![Datum::Int(7), Datum::Ts(100 * DAY)]))?;
//! assert!(entered[0].entered);
//! // Thirty days later, with no new event, the purchase leaves the window.
//! let exited = live.advance_to(131 * DAY);
//! assert_eq!(exited[0].at, 130 * DAY + 1);
//! assert!(!exited[0].entered);
//! # Ok(())
//! # }
//! ```

pub mod durable;
mod eval;
pub mod json;
mod load;
mod prefetch;
mod schedule;
mod sequence;
mod slots;
mod state;
mod value;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogSchema, TableSchema};
use crate::check::ir::{Aggregate, IrExpr, Program, Sequence, TimePoint, Type, TypedExpr};
use crate::diagnostic::Diagnostic;
use eval::{Evaluation, MeasureClock, Names, Node};
use schedule::Schedule;
use sequence::{CorrelationPlan, SequencePlan, StepPlan};
use slots::Slots;
use state::{MeasurePlan, MeasureState, Shape};

pub use eval::DAY;
pub use load::{batch_rows, current_events, datum};
pub use value::{Datum, Key};

/// Something that happened: a profile written, or an event of an event table.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A whole profile row, in the profile table's column order; it replaces the
    /// profile with the same key.
    Profile(Vec<Datum>),
    /// A row of the event table at `table` (its position in the catalog), in its column
    /// order.
    Occurred { table: usize, row: Vec<Datum> },
}

impl Event {
    pub fn profile(row: Vec<Datum>) -> Event {
        Event::Profile(row)
    }

    pub fn occurred(table: usize, row: Vec<Datum>) -> Event {
        Event::Occurred { table, row }
    }
}

/// A profile entering or leaving a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub segment: Arc<str>,
    pub key: Key,
    /// `true`: entered; `false`: exited.
    pub entered: bool,
    /// When: the event's time, or the instant the passage of time changed the answer.
    pub at: i64,
}

/// Why an event was not accepted. Nothing was changed by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    UnknownTable(usize),
    WrongWidth {
        table: String,
        expected: usize,
        got: usize,
    },
    NoKey {
        table: String,
        column: String,
    },
    NoTime {
        table: String,
        column: String,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::UnknownTable(i) => write!(f, "there is no event table number {i}"),
            Rejection::WrongWidth {
                table,
                expected,
                got,
            } => write!(f, "a `{table}` row has {expected} columns, not {got}"),
            Rejection::NoKey { table, column } => {
                write!(
                    f,
                    "the `{table}` row has no key: `{column}` is null or not an integer or string"
                )
            }
            Rejection::NoTime { table, column } => {
                write!(f, "the `{table}` event has no time: `{column}` is null")
            }
        }
    }
}

impl std::error::Error for Rejection {}

struct SegmentPlan {
    name: Arc<str>,
    condition: Node,
    /// The engine's measures the condition reads.
    measures: Vec<usize>,
    /// Those of `measures` the condition reads only through another's filter.
    indirect: Vec<usize>,
}

/// Where an event table's key and time are.
struct TableLayout {
    name: String,
    width: usize,
    key: usize,
    key_name: String,
    time: usize,
    time_name: String,
    /// The engine's measures over this table.
    measures: Vec<usize>,
    /// The smallest range of the engine's measures that holds `measures`.
    measure_range: Range<usize>,
}

/// A profile's standing in one segment.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Standing {
    member: bool,
    /// The answer moves with the clock with no computed next instant.
    restless: bool,
    /// The earliest time after the last evaluation at which the answer may change
    /// (`i64::MAX`: only an event can change it).
    horizon: i64,
}

impl Standing {
    const OUT: Standing = Standing {
        member: false,
        restless: false,
        horizon: i64::MAX,
    };
}

#[derive(Serialize, Deserialize)]
struct Profile {
    key: Key,
    row: Option<Vec<Datum>>,
    measures: Vec<Option<MeasureState>>,
    standings: Vec<Standing>,
    /// The time of this profile's live entry in the schedule (`i64::MAX`: none).
    scheduled: i64,
}

impl Profile {
    /// Asks for the memory an evaluation of this profile reads: its standings, its row and
    /// the states of `measures`, which live in allocations of their own.
    fn prefetch(&self, measures: Range<usize>) {
        prefetch::slice(&self.standings, 8);
        if let Some(row) = &self.row {
            prefetch::slice(row, 8);
        }
        if let Some(states) = self.measures.get(measures) {
            prefetch::slice(states, 16);
        }
    }

    fn new(key: Key, measures: usize, segments: usize) -> Profile {
        Profile {
            key,
            row: None,
            measures: (0..measures).map(|_| None).collect(),
            standings: vec![Standing::OUT; segments],
            scheduled: i64::MAX,
        }
    }
}

/// Which of a profile's segments an evaluation recomputes; the others keep their
/// standing, which nothing since their last evaluation can have changed.
#[derive(Debug, Clone, Copy)]
enum Affected {
    /// The profile row changed, or the profile is evaluated for the first time.
    All,
    /// An event may have changed the values of the measures in [`Scratch::changed`], or
    /// brought their next change earlier: the segments that read one of them.
    Measures,
    /// The clock reached the profile's scheduled time: the segments whose horizon passed.
    Due,
}

/// Measure values computed during one evaluation, reused across its segments, and the
/// segments due at a scheduled evaluation: buffers kept from one evaluation to the next.
#[derive(Default)]
struct Scratch {
    values: Vec<Datum>,
    clocks: Vec<MeasureClock>,
    /// The evaluation that computed each measure's entry.
    computed: Vec<u32>,
    evaluation: u32,
    /// The measures whose value the event at hand may have changed (see
    /// [`MeasureState::add`]).
    changed: Vec<usize>,
    /// The segments an evaluation recomputes, and which of them are listed.
    chosen: Vec<usize>,
    listed: Vec<bool>,
}

/// How many events or scheduled profiles ahead of the one at hand the engine asks for a
/// profile's state; it asks for the profile itself twice as far ahead.
const READ_AHEAD: usize = 2;

/// A profile's place in [`Membership::profiles`], given when its key is first seen and
/// kept for the engine's life. The schedule and the sets of profiles hold slots, so a
/// scheduled evaluation goes straight to its profile without looking its key up.
type Slot = usize;

/// The membership of a set of segments, kept current event by event.
pub struct Membership {
    segments: Vec<SegmentPlan>,
    /// `0..segments.len()`.
    every_segment: Vec<usize>,
    /// For each measure, the segments that read it: the only ones a change of its state
    /// can change.
    readers: Vec<Vec<usize>>,
    measures: Vec<MeasurePlan>,
    /// Each measure's value over no events.
    empty: Vec<Datum>,
    profile_width: usize,
    profile_key: usize,
    profile_key_name: String,
    profile_name: String,
    tables: Vec<TableLayout>,
    /// Every profile (and customer seen only in events), in the order first seen.
    profiles: Vec<Profile>,
    /// Each profile's slot in `profiles`, by key.
    slots: Slots,
    schedule: Schedule,
    restless: BTreeSet<Slot>,
    /// Profiles written before any event set the clock.
    waiting: BTreeSet<Slot>,
    scratch: Scratch,
    /// The clock; `i64::MIN` until the first event or advance.
    now: i64,
}

impl Membership {
    /// An engine for the named segments of `program` (all of them if `names` is empty),
    /// with no profiles and the clock at the start of time.
    pub fn new(
        program: &Program,
        schema: &CatalogSchema,
        names: &[&str],
    ) -> Result<Membership, Diagnostic> {
        let chosen: Vec<_> = if names.is_empty() {
            program.segments.iter().collect()
        } else {
            let mut chosen = Vec::new();
            for name in names {
                let segment = program.segment(name).ok_or_else(|| {
                    Diagnostic::error("E0402", format!("there is no segment `{name}`"))
                        .with_help("list the segments with `segql count FILE`")
                })?;
                chosen.push(segment);
            }
            chosen
        };
        for segment in &chosen {
            let mut ranked = None;
            crate::plan::visit(&segment.condition, &mut |e| {
                if let IrExpr::Rank(_) = e.kind {
                    ranked.get_or_insert(e.span);
                }
            });
            if let Some(span) = ranked {
                return Err(Diagnostic::error(
                    "E0411",
                    format!("segment `{}` ranks profiles, which the real-time engine cannot keep current", segment.name),
                )
                .with_label(span, "a ranking compares every profile with all the others")
                .with_help("evaluate it in batch with `segql run`, or watch only the other segments with `--segment NAME`"));
            }
        }
        // The measures the chosen segments read, in first-use order, then their sequences.
        let mut used = Vec::new();
        let mut sequences_used = Vec::new();
        for segment in &chosen {
            collect_measures(&segment.condition, program, &mut used, &mut sequences_used);
        }
        // The measures of one table side by side: an event visits the state of each of its
        // table's measures, and adjacent states share cache lines.
        used.sort_by_key(|&id| {
            let event = &program.measures[id].event;
            schema.events.iter().position(|t| t.name == *event)
        });
        let positions: HashMap<usize, usize> =
            used.iter().enumerate().map(|(at, &id)| (id, at)).collect();
        let sequence_positions: HashMap<usize, usize> = (sequences_used.iter().enumerate())
            .map(|(at, &id)| (id, used.len() + at))
            .collect();
        let profile_columns = column_positions(&schema.profiles);
        let mut tables: Vec<TableLayout> = schema
            .events
            .iter()
            .map(|table| TableLayout {
                name: table.name.clone(),
                width: table.columns.len(),
                key: position(table, &table.key),
                key_name: table.key.clone(),
                time: table.time.as_deref().map_or(0, |t| position(table, t)),
                time_name: table.time.clone().unwrap_or_default(),
                measures: Vec::new(),
                measure_range: 0..0,
            })
            .collect();
        let mut measures = Vec::new();
        for (at, &id) in used.iter().enumerate() {
            let measure = &program.measures[id];
            let Some(table) = schema.events.iter().position(|t| t.name == measure.event) else {
                return Err(crate::internal_error(&format!(
                    "the measure over `{}` names no catalog event table",
                    measure.event
                )));
            };
            let event_columns = column_positions(&schema.events[table]);
            let names = Names {
                profile: &profile_columns,
                event: Some(&event_columns),
                measures: &positions,
                sequences: &sequence_positions,
            };
            let filter = measure.filter.as_ref().map(|f| Node::compile(f, &names));
            let relative = |point: Option<TimePoint>| matches!(point, Some(TimePoint::FromNow(_)));
            let shape = if filter
                .as_ref()
                .is_some_and(Node::depends_on_more_than_the_event)
            {
                Shape::Rechecked
            } else if measure.aggregate == Aggregate::Exists
                && relative(measure.window.start)
                && !relative(measure.window.end)
            {
                Shape::Newest
            } else if relative(measure.window.start)
                || relative(measure.window.end)
                || matches!(measure.aggregate, Aggregate::ActivePeriods(_))
            {
                Shape::Windowed
            } else {
                Shape::Running
            };
            let column = measure
                .column
                .as_ref()
                .and_then(|c| event_columns.get(c).copied());
            let integer_sum = measure.ty == Type::Int;
            measures.push(MeasurePlan {
                aggregate: measure.aggregate,
                column,
                filter,
                start: measure.window.start,
                end: measure.window.end,
                integer_sum,
                shape,
                sequence: None,
            });
            tables[table].measures.push(at);
        }
        for &id in &sequences_used {
            let sequence = &program.sequences[id];
            let plan = sequence_plan(sequence, schema, &profile_columns)?;
            let at = measures.len();
            let mut step_tables: Vec<usize> = plan.steps.iter().map(|s| s.table).collect();
            step_tables.sort_unstable();
            step_tables.dedup();
            for table in step_tables {
                tables[table].measures.push(at);
            }
            measures.push(MeasurePlan {
                aggregate: Aggregate::Exists,
                column: None,
                filter: None,
                start: sequence.window.start,
                end: sequence.window.end,
                integer_sum: false,
                shape: Shape::Sequence,
                sequence: Some(plan),
            });
        }
        for table in &mut tables {
            if let (Some(first), Some(last)) =
                (table.measures.iter().min(), table.measures.iter().max())
            {
                table.measure_range = *first..last + 1;
            }
        }
        let names = Names {
            profile: &profile_columns,
            event: None,
            measures: &positions,
            sequences: &sequence_positions,
        };
        let mut segments = Vec::new();
        let mut readers = vec![Vec::new(); measures.len()];
        for (at, segment) in chosen.iter().enumerate() {
            let (mut read, mut read_sequences) = (Vec::new(), Vec::new());
            collect_measures(&segment.condition, program, &mut read, &mut read_sequences);
            let read: Vec<usize> = (read.iter().map(|id| positions[id]))
                .chain(read_sequences.iter().map(|id| sequence_positions[id]))
                .collect();
            for &m in &read {
                readers[m].push(at);
            }
            let condition = Node::compile(&segment.condition, &names);
            let direct = condition.measures();
            segments.push(SegmentPlan {
                name: Arc::from(segment.name.as_str()),
                indirect: (read.iter().copied())
                    .filter(|m| !direct.contains(m))
                    .collect(),
                condition,
                measures: read,
            });
        }
        let empty = measures
            .iter()
            .map(|plan| {
                let (mut horizon, mut restless) = (i64::MAX, false);
                MeasureState::new(plan).value(plan, 0, &[], &mut horizon, &mut restless)
            })
            .collect();
        Ok(Membership {
            every_segment: (0..segments.len()).collect(),
            readers,
            segments,
            measures,
            empty,
            profile_width: schema.profiles.columns.len(),
            profile_key: position(&schema.profiles, &schema.profiles.key),
            profile_key_name: schema.profiles.key.clone(),
            profile_name: schema.profiles.name.clone(),
            tables,
            profiles: Vec::new(),
            slots: Slots::default(),
            schedule: Schedule::default(),
            restless: BTreeSet::new(),
            waiting: BTreeSet::new(),
            scratch: Scratch::default(),
            now: i64::MIN,
        })
    }

    /// The segments this engine keeps, in order.
    pub fn segment_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().map(|s| &*s.name)
    }

    /// The clock: the latest event time seen or time advanced to.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// How many profiles are re-evaluated at every advance of the clock, because a
    /// condition moves with time in a way with no computed next instant (a product of
    /// two times, say). Zero for the usual constructs.
    pub fn restless_profiles(&self) -> usize {
        self.restless.len()
    }

    /// How many profiles (and customers seen only in events) the engine holds state for.
    pub fn profiles(&self) -> usize {
        self.profiles.len()
    }

    /// The members of `segment` now, sorted; `None` for a segment this engine does not keep.
    pub fn members(&self, segment: &str) -> Option<Vec<Key>> {
        let index = self.segments.iter().position(|s| &*s.name == segment)?;
        let mut keys: Vec<Key> = self
            .profiles
            .iter()
            .filter(|p| p.standings[index].member)
            .map(|p| p.key.clone())
            .collect();
        keys.sort();
        Some(keys)
    }

    /// Loads the current tables without emitting changes: `events` are applied in any
    /// order, the clock is set to `as_of` (or the latest event, if later), and every
    /// profile's membership is computed once.
    pub fn initialize(
        &mut self,
        events: impl IntoIterator<Item = Event>,
        as_of: i64,
    ) -> Result<(), Rejection> {
        let mut identified = Vec::new();
        let mut now = as_of.max(self.now);
        for event in events {
            let (key, time) = self.identify(&event)?;
            now = now.max(time.unwrap_or(now));
            identified.push((event, key, time));
        }
        self.now = now;
        let mut touched = std::mem::take(&mut self.waiting);
        for (event, key, time) in identified {
            let (slot, _) = self.apply(event, key, time);
            touched.insert(slot);
        }
        for slot in touched {
            self.evaluate(slot, now, Affected::All, &mut Vec::new());
        }
        Ok(())
    }

    /// Applies `events` in order and returns what [`Membership::ingest`] returns for each,
    /// as if each were ingested alone. Faster on large engines: while one event is applied,
    /// the state of the next one or two is read, so that their cache misses overlap with
    /// the work at hand instead of following one another when their turn comes.
    pub fn ingest_batch(
        &mut self,
        events: impl IntoIterator<Item = Event>,
    ) -> Vec<Result<Vec<Change>, Rejection>> {
        let events: Vec<Event> = events.into_iter().collect();
        // The slot of each event's profile, if it has one yet, and the measures the event
        // updates.
        let ahead: Vec<Option<(Slot, Range<usize>)>> =
            events.iter().map(|event| self.lookahead(event)).collect();
        let mut results = Vec::with_capacity(events.len());
        for (at, event) in events.into_iter().enumerate() {
            let upcoming = |n: usize| ahead.get(at + n).cloned().flatten();
            self.read_ahead(
                upcoming(READ_AHEAD),
                upcoming(2 * READ_AHEAD).map(|(slot, _)| slot),
            );
            results.push(self.ingest(event));
        }
        results
    }

    /// The slot of `event`'s profile, if it has one, and the measures it updates.
    fn lookahead(&self, event: &Event) -> Option<(Slot, Range<usize>)> {
        let (row, key, measures) = match event {
            Event::Profile(row) => (row, self.profile_key, 0..0),
            Event::Occurred { table, row } => {
                let layout = self.tables.get(*table)?;
                (row, layout.key, layout.measure_range.clone())
            }
        };
        let slot = match row.get(key)? {
            Datum::Int(k) => self.slots.get(&Key::Int(*k)),
            other => self.slots.get(&Key::from_datum(other)?),
        }?;
        Some((slot, measures))
    }

    /// Applies one event and returns the changes it causes, after those the passage of
    /// time up to the event's time caused. An event older than the clock (late) is
    /// applied as of its own time; the changes it causes happen at the clock's time.
    pub fn ingest(&mut self, event: Event) -> Result<Vec<Change>, Rejection> {
        let (key, time) = self.identify(&event)?;
        let mut changes = time.map_or_else(Vec::new, |time| self.advance_to(time));
        let affected = match &event {
            Event::Profile(_) => Affected::All,
            Event::Occurred { .. } => Affected::Measures,
        };
        let (slot, first) = self.apply(event, key, time);
        if self.now == i64::MIN {
            // No event has set the clock yet: the profile's changes wait for the first.
            self.waiting.insert(slot);
            return Ok(changes);
        }
        let now = self.now;
        let affected = if first { Affected::All } else { affected };
        self.evaluate(slot, now, affected, &mut changes);
        Ok(changes)
    }

    /// Moves the clock to `time` and returns the changes the passage of time caused, in
    /// time order: windows that lost their last qualifying event, absences that began,
    /// comparisons with `now` that flipped.
    pub fn advance_to(&mut self, time: i64) -> Vec<Change> {
        let mut changes = Vec::new();
        if time <= self.now {
            return changes;
        }
        if self.now == i64::MIN {
            // The clock starts: profiles written before it are evaluated at its start.
            self.now = time;
            for slot in std::mem::take(&mut self.waiting) {
                self.evaluate(slot, time, Affected::All, &mut changes);
            }
            return changes;
        }
        while let Some((at, slot)) = self.schedule.pop_until(time) {
            let (next, after) = {
                let mut upcoming = self.schedule.upcoming();
                let next = upcoming.nth(READ_AHEAD - 1);
                (next, upcoming.nth(READ_AHEAD - 1))
            };
            self.read_ahead(next.map(|slot| (slot, 0..self.measures.len())), after);
            self.now = self.now.max(at);
            // A stale entry (the profile was rescheduled since) evaluates nothing.
            self.evaluate(slot, at, Affected::Due, &mut changes);
        }
        self.now = time;
        let restless: Vec<Slot> = self.restless.iter().copied().collect();
        for slot in restless {
            self.evaluate(slot, time, Affected::All, &mut changes);
        }
        changes
    }

    /// Reads ahead of the work at hand (the next events of a batch, the next profiles in
    /// the schedule), so that their cache misses overlap with it: the allocations of the
    /// profile at `next` (with the states of its measures in the range), and the profile
    /// at `after`, whose allocations a later call asks for.
    fn read_ahead(&self, next: Option<(Slot, Range<usize>)>, after: Option<Slot>) {
        if let Some((slot, measures)) = next
            && let Some(profile) = self.profiles.get(slot)
        {
            profile.prefetch(measures);
        }
        if let Some(profile) = after.and_then(|slot| self.profiles.get(slot)) {
            prefetch::slice(std::slice::from_ref(profile), 2);
        }
    }

    /// Writes the engine's state (not its program) to `out`, for [`Membership::restore`].
    pub fn save(&self, out: impl std::io::Write) -> Result<(), postcard::Error> {
        let state = SavedRef {
            now: self.now,
            waiting: &self.waiting,
            profiles: &self.profiles,
        };
        postcard::to_io(&state, out).map(|_| ())
    }

    /// Replaces the engine's state with one [`Membership::save`] wrote, from an engine
    /// of the same program (see [`Membership::fingerprint`]).
    pub fn restore(&mut self, saved: &[u8]) -> Result<(), postcard::Error> {
        let state: Saved = postcard::from_bytes(saved)?;
        let shape_fits = state.profiles.iter().all(|p| {
            p.measures.len() == self.measures.len() && p.standings.len() == self.segments.len()
        });
        let mut slots = Slots::default();
        for (slot, profile) in state.profiles.iter().enumerate() {
            slots.get_or_insert(&profile.key, slot);
        }
        let fits = shape_fits
            && slots.len() == state.profiles.len()
            && (state.waiting.iter()).all(|&slot| slot < state.profiles.len());
        if !fits {
            return Err(postcard::Error::DeserializeBadEncoding);
        }
        self.now = state.now;
        self.waiting = state.waiting;
        self.profiles = state.profiles;
        self.slots = slots;
        self.schedule = Schedule::default();
        self.restless.clear();
        for (slot, profile) in self.profiles.iter().enumerate() {
            if profile.scheduled != i64::MAX {
                self.schedule.push(profile.scheduled, slot);
            }
            if profile.standings.iter().any(|s| s.restless) {
                self.restless.insert(slot);
            }
        }
        Ok(())
    }

    /// Identifies the program this engine runs: the segments, measures and table layouts
    /// it was built with. Saved state fits only an engine with the same fingerprint.
    pub fn fingerprint(&self) -> u64 {
        let mut text = format!(
            "{}:{}:{}:{}",
            self.profile_name, self.profile_width, self.profile_key, self.profile_key_name
        );
        for segment in &self.segments {
            text.push_str(&format!("|{}={:?}", segment.name, segment.condition));
        }
        for measure in &self.measures {
            text.push_str(&format!("|{measure:?}"));
        }
        for table in &self.tables {
            text.push_str(&format!(
                "|{}:{}:{}:{}:{:?}",
                table.name, table.width, table.key, table.time, table.measures
            ));
        }
        crate::stable_hash(text.as_bytes())
    }

    fn layout(&self, table: usize, row: &[Datum]) -> Result<&TableLayout, Rejection> {
        let layout = self
            .tables
            .get(table)
            .ok_or(Rejection::UnknownTable(table))?;
        if row.len() != layout.width {
            return Err(Rejection::WrongWidth {
                table: layout.name.clone(),
                expected: layout.width,
                got: row.len(),
            });
        }
        Ok(layout)
    }

    fn key_of(row: &[Datum], at: usize, table: &str, column: &str) -> Result<Key, Rejection> {
        Key::from_datum(&row[at]).ok_or_else(|| Rejection::NoKey {
            table: table.to_string(),
            column: column.to_string(),
        })
    }

    fn check_profile(&self, row: &[Datum]) -> Result<Key, Rejection> {
        if row.len() != self.profile_width {
            return Err(Rejection::WrongWidth {
                table: self.profile_name.clone(),
                expected: self.profile_width,
                got: row.len(),
            });
        }
        Membership::key_of(
            row,
            self.profile_key,
            &self.profile_name,
            &self.profile_key_name,
        )
    }

    /// An event's profile key and, for an event-table row, its time: it is acceptable
    /// when both are there. Nothing changes.
    fn identify(&self, event: &Event) -> Result<(Key, Option<i64>), Rejection> {
        match event {
            Event::Profile(row) => Ok((self.check_profile(row)?, None)),
            Event::Occurred { table, row } => {
                let layout = self.layout(*table, row)?;
                let Datum::Ts(time) = row[layout.time] else {
                    return Err(Rejection::NoTime {
                        table: layout.name.clone(),
                        column: layout.time_name.clone(),
                    });
                };
                let key = Membership::key_of(row, layout.key, &layout.name, &layout.key_name)?;
                Ok((key, Some(time)))
            }
        }
    }

    /// Adds an event [`Membership::identify`] accepted to its profile's state. Returns the
    /// profile's slot, and `true` if it is the profile's first event.
    fn apply(&mut self, event: Event, key: Key, time: Option<i64>) -> (Slot, bool) {
        let (slot, first) = self.slots.get_or_insert(&key, self.profiles.len());
        if first {
            self.profiles
                .push(Profile::new(key, self.measures.len(), self.segments.len()));
        }
        let profile = &mut self.profiles[slot];
        match (event, time) {
            (Event::Profile(row), _) => profile.row = Some(row),
            (Event::Occurred { table, row }, Some(time)) => {
                self.scratch.changed.clear();
                for &at in &self.tables[table].measures {
                    let plan = &self.measures[at];
                    let changed = profile.measures[at]
                        .get_or_insert_with(|| MeasureState::new(plan))
                        .add(plan, table, time, &row, self.now);
                    if changed {
                        self.scratch.changed.push(at);
                    }
                }
            }
            (Event::Occurred { .. }, None) => {}
        }
        (slot, first)
    }

    /// Evaluates the `affected` segments of one profile at `now`, records changes at
    /// `now`, and schedules the profile's next possible change.
    fn evaluate(&mut self, slot: Slot, now: i64, affected: Affected, changes: &mut Vec<Change>) {
        let profile = &mut self.profiles[slot];
        if matches!(affected, Affected::Due) && profile.scheduled != now {
            return;
        }
        let scratch = &mut self.scratch;
        if scratch.values.len() != self.measures.len() {
            scratch.values.resize(self.measures.len(), Datum::Null);
            scratch.clocks = (self.measures.iter())
                .map(|plan| MeasureClock {
                    falling: plan.falls_with_time(),
                    ..MeasureClock::STILL
                })
                .collect();
            scratch.computed.resize(self.measures.len(), 0);
        }
        // A measure is computed in this evaluation when its stamp is this evaluation's.
        scratch.evaluation = scratch.evaluation.wrapping_add(1);
        if scratch.evaluation == 0 {
            scratch.computed.fill(0);
            scratch.evaluation = 1;
        }
        let stamp = scratch.evaluation;
        let chosen: &[usize] = match affected {
            Affected::All => &self.every_segment,
            Affected::Measures => {
                scratch.chosen.clear();
                scratch.listed.clear();
                scratch.listed.resize(self.segments.len(), false);
                for &m in &scratch.changed {
                    for &at in &self.readers[m] {
                        if !scratch.listed[at] {
                            scratch.listed[at] = true;
                            scratch.chosen.push(at);
                        }
                    }
                }
                &scratch.chosen
            }
            Affected::Due => {
                scratch.chosen.clear();
                scratch.chosen.extend(
                    (profile.standings.iter().enumerate())
                        .filter(|(_, s)| s.horizon <= now || s.restless)
                        .map(|(at, _)| at),
                );
                &scratch.chosen
            }
        };
        // The earliest horizon of the recomputed standings, and whether one of them was
        // or is restless.
        let mut chosen_horizon = i64::MAX;
        let (mut was_restless, mut is_restless) = (false, false);
        for &at in chosen {
            let segment = &self.segments[at];
            // Only profiles are members: events alone make no member.
            let standing = match profile.row.as_deref() {
                None => Standing::OUT,
                Some(row) => {
                    for &m in &segment.measures {
                        if scratch.computed[m] != stamp {
                            let (mut h, mut r) = (i64::MAX, false);
                            scratch.values[m] = match &mut profile.measures[m] {
                                Some(state) => {
                                    state.value(&self.measures[m], now, row, &mut h, &mut r)
                                }
                                None => self.empty[m].clone(),
                            };
                            (scratch.clocks[m].horizon, scratch.clocks[m].restless) = (h, r);
                            scratch.computed[m] = stamp;
                        }
                    }
                    // The condition takes the horizons of the measures it reads as it
                    // reads them; those it reads only through others', here.
                    let mut horizon = i64::MAX;
                    let mut restless = false;
                    for &m in &segment.indirect {
                        horizon = horizon.min(scratch.clocks[m].horizon);
                        restless |= scratch.clocks[m].restless;
                    }
                    let mut evaluation =
                        Evaluation::new(now, row, &scratch.values).with_clocks(&scratch.clocks);
                    let member = evaluation.holds(&segment.condition);
                    Standing {
                        member,
                        restless: restless || evaluation.restless,
                        horizon: horizon.min(evaluation.horizon),
                    }
                }
            };
            if standing.member != profile.standings[at].member {
                changes.push(Change {
                    segment: segment.name.clone(),
                    key: profile.key.clone(),
                    entered: standing.member,
                    at: now,
                });
            }
            chosen_horizon = chosen_horizon.min(standing.horizon);
            was_restless |= profile.standings[at].restless;
            is_restless |= standing.restless;
            profile.standings[at] = standing;
        }
        if let Affected::Measures = affected {
            // After an event, the profile is scheduled no later than any standing's
            // horizon, and later than now (the clock's advance to the event evaluated
            // whatever was due): only the recomputed standings can bring it earlier, and
            // the others need not be read. A later horizon leaves the earlier entry, as
            // below.
            if chosen_horizon < profile.scheduled {
                self.schedule.push(chosen_horizon, slot);
                profile.scheduled = chosen_horizon;
            }
            if is_restless {
                self.restless.insert(slot);
            } else if was_restless && !profile.standings.iter().any(|s| s.restless) {
                self.restless.remove(&slot);
            }
            return;
        }
        let horizon = profile.standings.iter().map(|s| s.horizon).min();
        let horizon = horizon.unwrap_or(i64::MAX);
        // An entry still waiting in the schedule for an earlier time stays: it evaluates
        // nothing when it comes and schedules the horizon then. Replacing it would leave
        // it in the schedule anyway, and a profile that keeps acting would leave one such
        // entry per event.
        let earlier_waiting = now < profile.scheduled && profile.scheduled < horizon;
        if !earlier_waiting {
            if horizon != i64::MAX && horizon != profile.scheduled {
                self.schedule.push(horizon, slot);
            }
            profile.scheduled = horizon;
        }
        if profile.standings.iter().any(|s| s.restless) {
            self.restless.insert(slot);
        } else {
            self.restless.remove(&slot);
        }
    }
}

/// The engine's state as [`Membership::save`] writes it ...
#[derive(Serialize)]
struct SavedRef<'a> {
    now: i64,
    waiting: &'a BTreeSet<Slot>,
    profiles: &'a [Profile],
}

/// ... and as [`Membership::restore`] reads it: the same fields, owned.
#[derive(Deserialize)]
struct Saved {
    now: i64,
    waiting: BTreeSet<Slot>,
    profiles: Vec<Profile>,
}

fn column_positions(table: &TableSchema) -> HashMap<String, usize> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(at, c)| (c.name.clone(), at))
        .collect()
}

fn position(table: &TableSchema, column: &str) -> usize {
    table
        .columns
        .iter()
        .position(|c| c.name == column)
        .unwrap_or(0)
}

/// The program's measures `expr` reads, including through measure filters.
/// The measures and sequences `expr` reads, each once, in first-use order.
fn collect_measures(
    expr: &TypedExpr,
    program: &Program,
    used: &mut Vec<usize>,
    sequences: &mut Vec<usize>,
) {
    crate::plan::visit(expr, &mut |e| match e.kind {
        IrExpr::Measure(id) if !used.contains(&id) => {
            used.push(id);
            if let Some(filter) = &program.measures[id].filter {
                collect_measures(filter, program, used, sequences);
            }
        }
        IrExpr::Sequence(id) if !sequences.contains(&id) => sequences.push(id),
        _ => {}
    });
}

/// A checked sequence compiled for the interpreter: its steps' tables and column
/// positions, and each bound name numbered.
fn sequence_plan(
    sequence: &Sequence,
    schema: &CatalogSchema,
    profile_columns: &HashMap<String, usize>,
) -> Result<SequencePlan, Diagnostic> {
    let mut bindings: Vec<&str> = Vec::new();
    let mut steps = Vec::new();
    for step in &sequence.steps {
        let Some(table) = schema.events.iter().position(|t| t.name == step.event) else {
            return Err(crate::internal_error(&format!(
                "the sequence step over `{}` names no catalog event table",
                step.event
            )));
        };
        let event_columns = column_positions(&schema.events[table]);
        let names = Names {
            profile: profile_columns,
            event: Some(&event_columns),
            measures: &HashMap::new(),
            sequences: &HashMap::new(),
        };
        let filter = step.filter.as_ref().map(|f| Node::compile(f, &names));
        let mut correlations = Vec::new();
        for c in &step.correlations {
            let binding = match bindings.iter().position(|b| *b == c.name) {
                Some(at) => at,
                None => {
                    bindings.push(&c.name);
                    bindings.len() - 1
                }
            };
            correlations.push(CorrelationPlan {
                column: position(&schema.events[table], &c.column),
                binding,
                binds: c.binds,
            });
        }
        steps.push(StepPlan {
            table,
            rechecked: filter
                .as_ref()
                .is_some_and(Node::depends_on_more_than_the_event),
            filter,
            gap: step.gap,
            negated: step.negated,
            correlations,
        });
    }
    Ok(SequencePlan {
        steps,
        bindings: bindings.len(),
    })
}
