//! Per-profile state of one measure, and the measure's value from it at a time.
//!
//! Three shapes, chosen per measure when the engine is built:
//!
//! | shape | when | state per profile |
//! | --- | --- | --- |
//! | running | the window has no start relative to `now` (none, `since`, `between` dates) and the filter reads only the event | the aggregate itself: a count, a sum (and count for `avg`), a min or max, a set of distinct values, each distinct value with its count (`mode`, `distinct_list`), or the first or last (time, value) |
//! | newest | existence in a window whose start is relative to `now` and whose end is not (`viewed within 7d`) | the time of the newest counted event: whether any event is in the window changes only when the newest leaves it |
//! | windowed | another window start or end relative to `now` (`count(...) within 30d`) | the (time, value) of each counted event still inside the window, oldest first; older ones are dropped |
//! | rechecked | the filter reads the profile or the clock (`purchased(ts > signup_ts)`) | every event row of that table that a window could still count |
//! | sequence | a sequence (`added_to_cart then purchased within 1h`) | per step, the event rows its filter accepts that a window could still count (see `sequence.rs`) |
//!
//! Running state never changes with the clock. Newest, windowed and rechecked state
//! changes when an event leaves the window, which is when the profile is scheduled.
//!
//! The state of the rare, large aggregates (distinct sets, tallies, rechecked rows,
//! sequences) is boxed, so the common ones stay small: every event of a table visits
//! the state of each of the table's measures, and the smaller they are, the fewer
//! cache lines an event touches.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::eval::{Evaluation, Node, truncate};
use super::sequence::{SequenceClock, SequencePlan, SequenceState};
use super::value::{Datum, DistinctKey};
use crate::check::ir::{Aggregate, TimePoint, period_index};

/// A measure compiled for the interpreter.
#[derive(Debug, Clone)]
pub struct MeasurePlan {
    pub aggregate: Aggregate,
    /// The aggregated column's position in the event table.
    pub column: Option<usize>,
    pub filter: Option<Node>,
    pub start: Option<TimePoint>,
    pub end: Option<TimePoint>,
    /// `sum` over an integer column is an integer.
    pub integer_sum: bool,
    pub shape: Shape,
    /// The sequence this slot holds, for [`Shape::Sequence`].
    pub sequence: Option<SequencePlan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Running,
    Newest,
    Windowed,
    Rechecked,
    /// Not a measure but a sequence, whose value is whether it holds.
    Sequence,
}

impl MeasurePlan {
    /// Whether an event at `time` can ever be counted, whatever the clock says.
    fn ever_in_window(&self, time: i64) -> bool {
        let after_start = match self.start {
            Some(TimePoint::Absolute(start)) => time >= start,
            _ => true,
        };
        let before_end = match self.end {
            Some(TimePoint::Absolute(end)) => time < end,
            _ => true,
        };
        after_start && before_end
    }

    /// Whether the value can only fall as time passes with no new event: a count over a
    /// window whose start moves with now and whose end does not, so that events only
    /// leave it.
    pub fn falls_with_time(&self) -> bool {
        let counts = matches!(
            self.aggregate,
            Aggregate::Exists
                | Aggregate::Count
                | Aggregate::CountValues
                | Aggregate::CountDistinct
                | Aggregate::Active(_)
        );
        counts
            && matches!(self.shape, Shape::Newest | Shape::Windowed)
            && matches!(self.start, Some(TimePoint::FromNow(_)))
            && !matches!(self.end, Some(TimePoint::FromNow(_)))
    }

    /// Whether an event at `time` is counted at `now`.
    fn in_window(&self, time: i64, now: i64) -> bool {
        time <= now
            && self.start.is_none_or(|s| time >= s.resolve(now))
            && self.end.is_none_or(|e| time < e.resolve(now))
    }

    /// The earliest clock time after `now` at which an event at `time` enters or leaves
    /// the window.
    fn window_change(&self, time: i64, now: i64) -> Option<i64> {
        let mut next = None::<i64>;
        let mut consider = |t: i64| {
            if t > now {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        if time > now {
            consider(time);
        }
        if let Some(TimePoint::FromNow(offset)) = self.start {
            // Counted while time >= now + offset.
            consider(time.saturating_sub(offset).saturating_add(1));
        }
        if let Some(TimePoint::FromNow(offset)) = self.end {
            // Counted once time < now + offset.
            consider(time.saturating_sub(offset).saturating_add(1));
        }
        if let Aggregate::ActivePeriods(period) = self.aggregate
            && time <= now
        {
            // The event moves to the next period back from now.
            let k = period_index(now, time, period);
            consider(
                time.saturating_add(period.saturating_mul(k.saturating_add(1)))
                    .saturating_add(1),
            );
        }
        next
    }
}

/// One profile's state for one measure.
#[derive(Debug, Clone, Serialize, Deserialize)]
// Boxed on purpose: the rare large kinds would make every state larger (module docs).
#[allow(clippy::box_collection)]
pub enum MeasureState {
    Running(Running),
    /// The newest counted event's time (`i64::MIN`: none yet).
    Newest(i64),
    /// Counted events' (time, value), oldest first.
    Windowed(VecDeque<(i64, Datum)>),
    /// Event rows that may still count, oldest first.
    Rechecked(Box<VecDeque<(i64, Vec<Datum>)>>),
    Sequence(Box<SequenceState>),
}

/// The aggregate so far, for measures whose events never leave.
#[derive(Debug, Clone, Serialize, Deserialize)]
// Boxed on purpose: the rare large kinds would make every state larger (module docs).
#[allow(clippy::box_collection)]
pub enum Running {
    Count(i64),
    Distinct(Box<HashSet<DistinctKey>>),
    IntSum(i64),
    FloatSum(f64),
    Avg {
        sum: f64,
        count: i64,
    },
    Extreme(Datum),
    Edge(Option<(i64, Datum)>),
    /// Each distinct value with how often it occurred (`mode`, `distinct_list`).
    Tally(Box<HashMap<DistinctKey, (Datum, i64)>>),
}

impl MeasureState {
    pub fn new(plan: &MeasurePlan) -> MeasureState {
        match plan.shape {
            Shape::Running => MeasureState::Running(match plan.aggregate {
                Aggregate::Exists | Aggregate::Count | Aggregate::CountValues => Running::Count(0),
                Aggregate::CountDistinct | Aggregate::Active(_) => {
                    Running::Distinct(Box::default())
                }
                Aggregate::Sum if plan.integer_sum => Running::IntSum(0),
                Aggregate::Sum => Running::FloatSum(0.0),
                Aggregate::Avg => Running::Avg { sum: 0.0, count: 0 },
                Aggregate::Min | Aggregate::Max => Running::Extreme(Datum::Null),
                Aggregate::First | Aggregate::Last => Running::Edge(None),
                Aggregate::Mode | Aggregate::DistinctList => Running::Tally(Box::default()),
                // Its value moves with the clock: the engine keeps it windowed.
                Aggregate::ActivePeriods(_) => Running::Count(0),
            }),
            Shape::Newest => MeasureState::Newest(i64::MIN),
            Shape::Windowed => MeasureState::Windowed(VecDeque::new()),
            Shape::Rechecked => MeasureState::Rechecked(Box::default()),
            Shape::Sequence => MeasureState::Sequence(Box::new(
                plan.sequence
                    .as_ref()
                    .map(SequencePlan::new_state)
                    .unwrap_or_default(),
            )),
        }
    }

    /// Adds one event of the event table at position `table` (`row`, at `time`) for a
    /// profile, at clock `now`, and says whether the measure's value at `now`, or the next
    /// time it may change, may have changed. Events a window can never count, or the
    /// filter rejects, are not kept and change nothing.
    ///
    /// An event can change the state and neither of those: another view by a customer who
    /// viewed this week leaves `viewed within 7d` true, and only moves later the time it
    /// turns false. The segments that read the measure need no new evaluation then: a
    /// horizon they keep from before is earlier than the true one, and an evaluation at an
    /// early horizon finds no change and takes the new one.
    pub fn add(
        &mut self,
        plan: &MeasurePlan,
        table: usize,
        time: i64,
        row: &[Datum],
        now: i64,
    ) -> bool {
        if !plan.ever_in_window(time) {
            return false;
        }
        if let Some(TimePoint::FromNow(offset)) = plan.start
            && time < now.saturating_add(offset)
        {
            // Already older than the window, and windows only move forward.
            return false;
        }
        if let MeasureState::Rechecked(rows) = self {
            insert_by_time(rows, time, row.to_vec());
            return true;
        }
        if let (MeasureState::Sequence(state), Some(sequence)) = (&mut *self, &plan.sequence) {
            return sequence.add(state, table, time, row);
        }
        if let Some(filter) = &plan.filter {
            let mut evaluation = Evaluation::new(now, &[], &[]);
            evaluation.event = Some(row);
            if !evaluation.holds(filter) {
                return false;
            }
        }
        match self {
            MeasureState::Running(running) => {
                running.add(plan.aggregate, time, measure_value(plan, time, row))
            }
            // An event older than the newest changes neither the answer nor when it
            // changes.
            MeasureState::Newest(newest) if time <= *newest => false,
            MeasureState::Newest(newest) => {
                let before = *newest != i64::MIN && plan.in_window(*newest, now);
                *newest = time;
                // A newer event in the window leaves it later than the one before.
                time > now || before != plan.in_window(time, now)
            }
            MeasureState::Windowed(events) => {
                insert_by_time(events, time, measure_value(plan, time, row));
                true
            }
            MeasureState::Rechecked(_) | MeasureState::Sequence(_) => true,
        }
    }

    /// The measure's value at `now` for a profile, lowering `horizon` to the next time it
    /// may change. Events that left a `now`-relative window for good are dropped.
    pub fn value(
        &mut self,
        plan: &MeasurePlan,
        now: i64,
        profile: &[Datum],
        horizon: &mut i64,
        restless: &mut bool,
    ) -> Datum {
        let start = match plan.start {
            Some(TimePoint::FromNow(offset)) => Some(now.saturating_add(offset)),
            _ => None,
        };
        match self {
            MeasureState::Running(running) => running.value(plan.aggregate),
            MeasureState::Sequence(state) => {
                let Some(sequence) = &plan.sequence else {
                    return Datum::Bool(false);
                };
                let clock = SequenceClock {
                    profile,
                    start,
                    in_window: &|time| plan.in_window(time, now),
                    window_change: &|time| plan.window_change(time, now),
                    horizon,
                    restless,
                };
                Datum::Bool(sequence.holds(state, now, clock))
            }
            MeasureState::Newest(newest) => {
                if *newest == i64::MIN {
                    return Datum::Bool(false);
                }
                if let Some(change) = plan.window_change(*newest, now) {
                    *horizon = (*horizon).min(change);
                }
                Datum::Bool(plan.in_window(*newest, now))
            }
            MeasureState::Windowed(events) => {
                if let Some(start) = start {
                    while events.front().is_some_and(|(t, _)| *t < start) {
                        events.pop_front();
                    }
                }
                let only_start_moves = plan.end.is_none()
                    && !matches!(plan.aggregate, Aggregate::ActivePeriods(_))
                    && events.back().is_none_or(|(t, _)| *t <= now);
                if only_start_moves {
                    // Every event left is counted, and the oldest leaves first.
                    if let Some((time, _)) = events.front()
                        && let Some(change) = plan.window_change(*time, now)
                    {
                        *horizon = (*horizon).min(change);
                    }
                    return aggregate(plan, events.iter().map(|(t, v)| (*t, v)), now);
                }
                for (time, _) in events.iter() {
                    if let Some(change) = plan.window_change(*time, now) {
                        *horizon = (*horizon).min(change);
                    }
                }
                let counted = events
                    .iter()
                    .filter(|(time, _)| plan.in_window(*time, now))
                    .map(|(time, value)| (*time, value));
                aggregate(plan, counted, now)
            }
            MeasureState::Rechecked(rows) => {
                if let Some(start) = start {
                    while rows.front().is_some_and(|(t, _)| *t < start) {
                        rows.pop_front();
                    }
                }
                let mut values = Vec::with_capacity(rows.len());
                for (time, row) in rows.iter() {
                    if let Some(change) = plan.window_change(*time, now) {
                        *horizon = (*horizon).min(change);
                    }
                    if !plan.in_window(*time, now) {
                        continue;
                    }
                    if let Some(filter) = &plan.filter {
                        let mut evaluation = Evaluation::new(now, profile, &[]);
                        evaluation.event = Some(row);
                        let holds = evaluation.holds(filter);
                        *horizon = (*horizon).min(evaluation.horizon);
                        *restless |= evaluation.restless;
                        if !holds {
                            continue;
                        }
                    }
                    values.push((*time, measure_value(plan, *time, row)));
                }
                aggregate(plan, values.iter().map(|(time, value)| (*time, value)), now)
            }
        }
    }
}

/// What a measure aggregates of one event: its column, or for `active_days` and the like
/// the calendar unit of its time.
fn measure_value(plan: &MeasurePlan, time: i64, row: &[Datum]) -> Datum {
    if let Aggregate::Active(unit) = plan.aggregate {
        return truncate(unit.name(), time).map_or(Datum::Null, Datum::Ts);
    }
    plan.column
        .and_then(|c| row.get(c))
        .cloned()
        .unwrap_or(Datum::Null)
}

/// Keeps `events` in time order; most events come in order and go to the back, which
/// looks at no other entry's memory.
fn insert_by_time<T>(events: &mut VecDeque<(i64, T)>, time: i64, item: T) {
    if events.back().is_none_or(|(t, _)| *t <= time) {
        events.push_back((time, item));
        return;
    }
    let at = events.partition_point(|(t, _)| *t <= time);
    events.insert(at, (time, item));
}

impl Running {
    /// Adds one event's value and says whether the aggregate's value may have changed.
    fn add(&mut self, aggregate: Aggregate, time: i64, value: Datum) -> bool {
        match self {
            Running::Count(n) => {
                if aggregate == Aggregate::CountValues && value.is_null() {
                    return false;
                }
                *n += 1;
                // `exists` changes with the first event only.
                aggregate != Aggregate::Exists || *n == 1
            }
            Running::Distinct(set) => !value.is_null() && set.insert(value.distinct_key()),
            Running::Tally(tally) => {
                if value.is_null() {
                    return false;
                }
                tally.entry(value.distinct_key()).or_insert((value, 0)).1 += 1;
                true
            }
            Running::IntSum(sum) => match value {
                Datum::Int(i) => {
                    *sum = sum.wrapping_add(i);
                    i != 0
                }
                _ => false,
            },
            Running::FloatSum(sum) => match value.as_float() {
                Some(x) => {
                    *sum += x;
                    x != 0.0 || x.is_nan()
                }
                None => false,
            },
            Running::Avg { sum, count } => match value.as_float() {
                Some(x) => {
                    *sum += x;
                    *count += 1;
                    true
                }
                None => false,
            },
            Running::Extreme(current) => {
                if value.is_null() {
                    return false;
                }
                let replace = current.is_null()
                    || match value.compare(current) {
                        Some(order) if aggregate == Aggregate::Min => order.is_lt(),
                        Some(order) => order.is_gt(),
                        None => false,
                    };
                if replace {
                    *current = value;
                }
                replace
            }
            Running::Edge(edge) => {
                let first = aggregate == Aggregate::First;
                let replace = match edge {
                    None => true,
                    Some((t, current)) => {
                        (first && time < *t)
                            || (!first && time > *t)
                            || (time == *t && better_tie(first, &value, current))
                    }
                };
                if replace {
                    *edge = Some((time, value));
                }
                replace
            }
        }
    }

    fn value(&self, aggregate: Aggregate) -> Datum {
        match self {
            Running::Count(n) if aggregate == Aggregate::Exists => Datum::Bool(*n > 0),
            Running::Count(n) => Datum::Int(*n),
            Running::Distinct(set) => Datum::Int(set.len() as i64),
            Running::IntSum(sum) => Datum::Int(*sum),
            Running::FloatSum(sum) => Datum::Float(*sum),
            Running::Avg { sum, count } => {
                if *count == 0 {
                    Datum::Null
                } else {
                    Datum::Float(sum / *count as f64)
                }
            }
            Running::Extreme(value) => value.clone(),
            Running::Edge(edge) => edge.as_ref().map_or(Datum::Null, |(_, v)| v.clone()),
            Running::Tally(tally) => {
                from_tally(aggregate, tally.values().map(|(value, n)| (value, *n)))
            }
        }
    }
}

/// `mode` or `distinct_list` from each distinct value and its number of occurrences.
fn from_tally<'a>(aggregate: Aggregate, tally: impl Iterator<Item = (&'a Datum, i64)>) -> Datum {
    let ascending = |a: &Datum, b: &Datum| a.compare(b).unwrap_or(std::cmp::Ordering::Equal);
    if aggregate == Aggregate::DistinctList {
        let mut values: Vec<Datum> = tally.map(|(value, _)| value.clone()).collect();
        values.sort_by(ascending);
        return Datum::List(values.into());
    }
    // The most frequent value; among equally frequent ones, the smallest.
    let mut best: Option<(&Datum, i64)> = None;
    for (value, n) in tally {
        let better = match best {
            None => true,
            Some((current, most)) => n > most || (n == most && ascending(value, current).is_lt()),
        };
        if better {
            best = Some((value, n));
        }
    }
    best.map_or(Datum::Null, |(value, _)| value.clone())
}

/// Among events at the same time, `first` takes the smallest value and `last` the
/// largest; nulls come last either way.
fn better_tie(first: bool, candidate: &Datum, current: &Datum) -> bool {
    match (candidate.is_null(), current.is_null()) {
        (true, _) => false,
        (false, true) => true,
        (false, false) => match candidate.compare(current) {
            Some(order) if first => order.is_lt(),
            Some(order) => order.is_gt(),
            None => false,
        },
    }
}

/// The aggregate over counted events' (time, value), in time order.
fn aggregate<'a>(
    plan: &MeasurePlan,
    events: impl Iterator<Item = (i64, &'a Datum)> + Clone,
    now: i64,
) -> Datum {
    let values = || events.clone().map(|(_, v)| v).filter(|v| !v.is_null());
    match plan.aggregate {
        Aggregate::Exists => Datum::Bool(events.clone().next().is_some()),
        Aggregate::Count => Datum::Int(events.clone().count() as i64),
        Aggregate::CountValues => Datum::Int(values().count() as i64),
        Aggregate::ActivePeriods(period) => Datum::Int(
            events
                .clone()
                .map(|(time, _)| period_index(now, time, period))
                .collect::<HashSet<_>>()
                .len() as i64,
        ),
        Aggregate::CountDistinct | Aggregate::Active(_) => Datum::Int(
            values()
                .map(Datum::distinct_key)
                .collect::<HashSet<_>>()
                .len() as i64,
        ),
        Aggregate::Mode | Aggregate::DistinctList => {
            let mut tally: HashMap<DistinctKey, (&Datum, i64)> = HashMap::new();
            for value in values() {
                tally.entry(value.distinct_key()).or_insert((value, 0)).1 += 1;
            }
            from_tally(plan.aggregate, tally.into_values())
        }
        Aggregate::Sum if plan.integer_sum => Datum::Int(
            values()
                .filter_map(|v| match v {
                    Datum::Int(i) => Some(*i),
                    _ => None,
                })
                .fold(0i64, i64::wrapping_add),
        ),
        Aggregate::Sum => Datum::Float(values().filter_map(Datum::as_float).sum()),
        Aggregate::Avg => {
            let (sum, count) = values()
                .filter_map(Datum::as_float)
                .fold((0.0, 0usize), |(sum, count), x| (sum + x, count + 1));
            if count == 0 {
                Datum::Null
            } else {
                Datum::Float(sum / count as f64)
            }
        }
        Aggregate::Min | Aggregate::Max => {
            let mut best: Option<&Datum> = None;
            for value in values() {
                let replace = match best {
                    None => true,
                    Some(current) => match value.compare(current) {
                        Some(order) if plan.aggregate == Aggregate::Min => order.is_lt(),
                        Some(order) => order.is_gt(),
                        None => false,
                    },
                };
                if replace {
                    best = Some(value);
                }
            }
            best.cloned().unwrap_or(Datum::Null)
        }
        Aggregate::First | Aggregate::Last => {
            let first = plan.aggregate == Aggregate::First;
            let mut edge: Option<(i64, &Datum)> = None;
            for (time, value) in events {
                let replace = match edge {
                    None => true,
                    Some((t, current)) => {
                        (first && time < t)
                            || (!first && time > t)
                            || (time == t && better_tie(first, value, current))
                    }
                };
                if replace {
                    edge = Some((time, value));
                }
            }
            edge.map_or(Datum::Null, |(_, v)| v.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::DAY;

    fn windowed(aggregate: Aggregate) -> MeasurePlan {
        MeasurePlan {
            aggregate,
            column: None,
            filter: None,
            start: Some(TimePoint::FromNow(-7 * DAY)),
            end: None,
            integer_sum: false,
            shape: Shape::Windowed,
            sequence: None,
        }
    }

    /// The value at `now` and the horizon after two events, at days 1 and 3.
    fn after_two_events(plan: &MeasurePlan, now: i64) -> (Datum, i64) {
        let mut state = MeasureState::new(plan);
        for day in [1, 3] {
            state.add(plan, 0, day * DAY, &[], 3 * DAY);
        }
        let (mut horizon, mut restless) = (i64::MAX, false);
        let value = state.value(plan, now, &[], &mut horizon, &mut restless);
        assert!(!restless);
        (value, horizon)
    }

    #[test]
    fn a_measure_state_takes_40_bytes() {
        // docs/realtime.md gives this size; the large kinds of state are boxed for it.
        assert_eq!(std::mem::size_of::<Option<MeasureState>>(), 40);
    }

    #[test]
    fn counts_over_a_window_that_only_loses_events_fall_with_time() {
        assert!(windowed(Aggregate::Count).falls_with_time());
        assert!(
            !windowed(Aggregate::Sum).falls_with_time(),
            "amounts may be negative"
        );
        let ending_later = MeasurePlan {
            end: Some(TimePoint::FromNow(-DAY)),
            ..windowed(Aggregate::Count)
        };
        assert!(
            !ending_later.falls_with_time(),
            "events enter it as time passes"
        );
    }

    #[test]
    fn a_windowed_count_changes_when_its_oldest_event_leaves() {
        let plan = windowed(Aggregate::Count);
        let (value, horizon) = after_two_events(&plan, 4 * DAY);
        assert_eq!((value, horizon), (Datum::Int(2), 8 * DAY + 1));
    }

    #[test]
    fn a_windowed_existence_changes_only_when_its_newest_event_leaves() {
        let plan = MeasurePlan {
            shape: Shape::Newest,
            ..windowed(Aggregate::Exists)
        };
        let (value, horizon) = after_two_events(&plan, 4 * DAY);
        assert_eq!((value, horizon), (Datum::Bool(true), 10 * DAY + 1));
        // At that instant nothing is left, and nothing more can change.
        let (value, horizon) = after_two_events(&plan, 10 * DAY + 1);
        assert_eq!((value, horizon), (Datum::Bool(false), i64::MAX));
    }

    /// What `add` says of each event in turn (`now` is each event's time), for a measure
    /// of `aggregate` in `shape` over the event's only column.
    fn changes(aggregate: Aggregate, shape: Shape, events: &[(i64, Datum)]) -> Vec<bool> {
        let plan = MeasurePlan {
            column: Some(0),
            integer_sum: true,
            shape,
            start: (shape != Shape::Running).then_some(TimePoint::FromNow(-7 * DAY)),
            ..windowed(aggregate)
        };
        let mut state = MeasureState::new(&plan);
        (events.iter())
            .map(|(day, value)| {
                state.add(&plan, 0, day * DAY, std::slice::from_ref(value), day * DAY)
            })
            .collect()
    }

    #[test]
    fn an_event_reports_a_change_only_when_it_can_change_the_value_or_its_next_change() {
        let int = |days: &[(i64, i64)]| -> Vec<(i64, Datum)> {
            days.iter().map(|&(d, v)| (d, Datum::Int(v))).collect()
        };
        let (running, newest) = (Shape::Running, Shape::Newest);
        // Existence: the first event, and in a window, one after the window emptied.
        let seen = int(&[(1, 0), (3, 0), (20, 0), (22, 0)]);
        assert_eq!(
            changes(Aggregate::Exists, running, &seen),
            [true, false, false, false]
        );
        assert_eq!(
            changes(Aggregate::Exists, newest, &seen),
            [true, false, true, false]
        );
        assert_eq!(changes(Aggregate::Count, running, &seen), [true; 4]);
        // A value that is no new extreme, seen before, or adds nothing.
        let values = int(&[(1, 5), (2, 7), (3, 3), (4, 3)]);
        assert_eq!(
            changes(Aggregate::Min, running, &values),
            [true, false, true, false]
        );
        assert_eq!(
            changes(Aggregate::Max, running, &values),
            [true, true, false, false]
        );
        assert_eq!(
            changes(Aggregate::First, running, &values),
            [true, false, false, false]
        );
        assert_eq!(
            changes(Aggregate::CountDistinct, running, &values),
            [true, true, true, false]
        );
        let sums = int(&[(1, 0), (2, 4), (3, 0)]);
        assert_eq!(
            changes(Aggregate::Sum, running, &sums),
            [false, true, false]
        );
        // A null counts nowhere.
        let null = [(1, Datum::Null)];
        assert_eq!(changes(Aggregate::CountValues, running, &null), [false]);
        assert_eq!(changes(Aggregate::Max, running, &null), [false]);
        // Every event changes a windowed count.
        let windowed = changes(Aggregate::Count, Shape::Windowed, &seen);
        assert_eq!(windowed, [true; 4]);
    }
}
