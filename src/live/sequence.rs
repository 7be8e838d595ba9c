//! Sequences in the real-time engine: each profile keeps, per step, the events that may
//! still count (those its filter accepts, inside the window), and the sequence is
//! evaluated from them as `docs/language.md` defines it.
//!
//! Memory per profile is one row per kept event and step. A window bounds it: events
//! that left a `now`-relative window are dropped. Without a window, every matching event
//! is kept. The value changes with the clock when an event enters or leaves the window
//! and when a drop-off's gap ends, which is when the profile is scheduled.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::eval::{Evaluation, Node};
use super::value::Datum;

/// A sequence compiled for the interpreter.
#[derive(Debug, Clone)]
pub struct SequencePlan {
    pub steps: Vec<StepPlan>,
    /// How many names the steps bind.
    pub bindings: usize,
}

/// One step of a [`SequencePlan`].
#[derive(Debug, Clone)]
pub struct StepPlan {
    /// The event table's position in the catalog.
    pub table: usize,
    pub filter: Option<Node>,
    /// The filter reads the profile or the clock: it is tested at every evaluation
    /// instead of once, when the event arrives.
    pub rechecked: bool,
    /// Nanoseconds.
    pub gap: Option<i64>,
    pub negated: bool,
    pub correlations: Vec<CorrelationPlan>,
}

/// A correlated column of a step: its position in the step's table, the bound name's
/// index, and whether this step binds the name or compares with it.
#[derive(Debug, Clone, Copy)]
pub struct CorrelationPlan {
    pub column: usize,
    pub binding: usize,
    pub binds: bool,
}

/// One profile's kept events, per step: (time, row), oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SequenceState {
    steps: Vec<VecDeque<(i64, Vec<Datum>)>>,
}

/// A chain of matched steps: the time of its last event and the values bound so far.
type ChainEnd = (i64, Vec<Datum>);

impl SequencePlan {
    pub fn new_state(&self) -> SequenceState {
        SequenceState {
            steps: vec![VecDeque::new(); self.steps.len()],
        }
    }

    /// Keeps an event of `table` for every step over that table that may count it;
    /// `true` if any did.
    pub fn add(&self, state: &mut SequenceState, table: usize, time: i64, row: &[Datum]) -> bool {
        let mut kept = false;
        for (step, events) in self.steps.iter().zip(&mut state.steps) {
            if step.table != table {
                continue;
            }
            if !step.rechecked
                && let Some(filter) = &step.filter
            {
                let mut evaluation = Evaluation::new(time, &[], &[]);
                evaluation.event = Some(row);
                if !evaluation.holds(filter) {
                    continue;
                }
            }
            let at = events.partition_point(|(t, _)| *t <= time);
            events.insert(at, (time, row.to_vec()));
            kept = true;
        }
        kept
    }

    /// Whether the profile's events hold the sequence at `now`. `window` says which kept
    /// events count and when that changes; `start`, if the window moves with the clock,
    /// is its start at `now`: older events are dropped. Lowers `horizon` to the next time
    /// the answer may change.
    pub fn holds(&self, state: &mut SequenceState, now: i64, at: SequenceClock<'_>) -> bool {
        let SequenceClock {
            profile,
            start,
            in_window,
            window_change,
            horizon,
            restless,
        } = at;
        let mut counted: Vec<Vec<(i64, &[Datum])>> = Vec::with_capacity(self.steps.len());
        for (step, events) in self.steps.iter().zip(&mut state.steps) {
            if let Some(start) = start {
                while events.front().is_some_and(|(t, _)| *t < start) {
                    events.pop_front();
                }
            }
            let mut step_events = Vec::new();
            for (time, row) in events.iter() {
                if let Some(change) = window_change(*time) {
                    *horizon = (*horizon).min(change);
                }
                if !in_window(*time) {
                    continue;
                }
                if step.rechecked
                    && let Some(filter) = &step.filter
                {
                    let mut evaluation = Evaluation::new(now, profile, &[]);
                    evaluation.event = Some(row);
                    let holds = evaluation.holds(filter);
                    *horizon = (*horizon).min(evaluation.horizon);
                    *restless |= evaluation.restless;
                    if !holds {
                        continue;
                    }
                }
                step_events.push((*time, row.as_slice()));
            }
            counted.push(step_events);
        }
        let Some((first, rest)) = self.steps.split_first() else {
            return false;
        };
        let mut ends: Vec<ChainEnd> = counted[0]
            .iter()
            .map(|(time, row)| {
                let mut bound = vec![Datum::Null; self.bindings];
                bind(first, row, &mut bound);
                (*time, bound)
            })
            .collect();
        for (step, events) in rest.iter().zip(&counted[1..]) {
            let follows = |end: &ChainEnd, time: i64, row: &[Datum]| {
                time > end.0
                    && step.gap.is_none_or(|gap| time - end.0 <= gap)
                    && step
                        .correlations
                        .iter()
                        .filter(|c| !c.binds)
                        .all(|c| same(&row[c.column], &end.1[c.binding]))
            };
            if step.negated {
                let mut dropped_off = false;
                for end in &ends {
                    if events.iter().any(|(time, row)| follows(end, *time, row)) {
                        continue;
                    }
                    match step.gap.map(|gap| end.0.saturating_add(gap)) {
                        Some(deadline) if deadline > now => {
                            *horizon = (*horizon).min(deadline);
                        }
                        _ => dropped_off = true,
                    }
                }
                return dropped_off;
            }
            let mut next: Vec<ChainEnd> = Vec::new();
            for (time, row) in events {
                for end in &ends {
                    if follows(end, *time, row) {
                        let mut bound = end.1.clone();
                        bind(step, row, &mut bound);
                        let new = (*time, bound);
                        if !next.contains(&new) {
                            next.push(new);
                        }
                        if self.bindings == 0 {
                            // One chain per event is all that matters.
                            break;
                        }
                    }
                }
            }
            ends = next;
            if ends.is_empty() {
                return false;
            }
        }
        !ends.is_empty()
    }
}

/// What [`SequencePlan::holds`] needs of the clock, the window and the profile.
pub struct SequenceClock<'a> {
    pub profile: &'a [Datum],
    pub start: Option<i64>,
    pub in_window: &'a dyn Fn(i64) -> bool,
    pub window_change: &'a dyn Fn(i64) -> Option<i64>,
    pub horizon: &'a mut i64,
    pub restless: &'a mut bool,
}

/// Records the values `step` binds from `row`.
fn bind(step: &StepPlan, row: &[Datum], bound: &mut [Datum]) {
    for c in step.correlations.iter().filter(|c| c.binds) {
        bound[c.binding] = row[c.column].clone();
    }
}

/// Equality of a correlated value: null equals nothing.
fn same(a: &Datum, b: &Datum) -> bool {
    !a.is_null() && !b.is_null() && a.compare(b) == Some(std::cmp::Ordering::Equal)
}
