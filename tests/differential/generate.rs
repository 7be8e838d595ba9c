//! Well-typed segment expressions, generated as skeletons that name columns by type and
//! position (`the second int column of the profile table`) and rendered against a world.
//! A column a world lacks is rendered as a literal of the same type, so every skeleton is
//! well-typed in every world and proptest can shrink it freely.

use proptest::prelude::*;
use proptest::sample::select;

use super::world::{DAY, STRINGS, Table, Ty, World};

#[derive(Debug, Clone)]
pub enum S {
    /// Source text that needs no world.
    Text(String),
    /// A test of the profile list column `p_tags0`.
    Tags(String),
    /// A date literal this many days after `as_of` (negative: before).
    Date(i64),
    Profile(Ty, u8),
    /// A column of the event table whose filter this is.
    Event(Ty, u8),
    Prefix(&'static str, Box<S>),
    Infix(Box<S>, &'static str, Box<S>),
    Call(&'static str, Vec<S>),
    /// `[a, b, ...]`
    List(Vec<S>),
    Suffix(Box<S>, String),
    Between(Box<S>, Box<S>, Box<S>),
    Window(Box<S>, Window),
    /// An event set of the `ev`-th event table, with a filter.
    Set {
        ev: u8,
        filter: Option<Box<S>>,
    },
    /// `A then B within GAP then not C`: steps of event sets; with `correlate`, the steps
    /// marked `correlated` bind or compare a column of that type.
    Sequence {
        steps: Vec<Step>,
        negated_last: bool,
        correlate: Option<Ty>,
    },
    /// `func(set.column)`, or `count(set)` without a column.
    Agg {
        func: &'static str,
        ev: u8,
        filter: Option<Box<S>>,
        column: Option<(Ty, u8)>,
    },
}

/// One step of [`S::Sequence`].
#[derive(Debug, Clone)]
pub struct Step {
    ev: u8,
    filter: Option<Box<S>>,
    gap: Option<&'static str>,
    correlated: bool,
    /// Which column of the correlated type.
    k: u8,
}

#[derive(Debug, Clone)]
pub enum Window {
    Within(&'static str),
    /// `since` a date this many days before `as_of`.
    Since(i64),
    /// `within A .. B`: A this many days before `as_of`, B that many days later.
    Range(i64, i64),
}

/// One generated file: a metric, a segment and a stage the main segment may refer to. The
/// stage's last arm is generated too, so it is null for the profiles no arm holds for.
#[derive(Debug, Clone)]
pub struct Case {
    pub metric: S,
    pub helper: S,
    pub stage: (S, S, S),
    pub main: S,
}

impl Case {
    pub fn source(&self, world: &World) -> String {
        let r = Render { world, event: None };
        format!(
            "metric m0 = {}\nsegment s0 = {}\nstage st0 {{\n  a = {}\n  b = {}\n  c = {}\n}}\nsegment main = {}\n",
            r.render(&self.metric),
            r.render(&self.helper),
            r.render(&self.stage.0),
            r.render(&self.stage.1),
            r.render(&self.stage.2),
            r.render(&self.main),
        )
    }
}

pub fn case() -> impl Strategy<Value = Case> {
    let plain = levels(false);
    let with_definitions = levels(true);
    (
        prop_oneof![plain.int.clone(), plain.float.clone()],
        plain.bool.clone(),
        (plain.bool.clone(), plain.bool.clone(), plain.bool),
        with_definitions.bool,
    )
        .prop_map(|(metric, helper, stage, main)| Case {
            metric,
            helper,
            stage,
            main,
        })
}

/// Strategies for each type at one nesting depth.
#[derive(Clone)]
struct Level {
    bool: BoxedStrategy<S>,
    int: BoxedStrategy<S>,
    float: BoxedStrategy<S>,
    string: BoxedStrategy<S>,
    time: BoxedStrategy<S>,
}

const DEPTH: usize = 3;

/// The profile-level strategies at the full depth.
fn levels(definitions: bool) -> Level {
    let mut event = leaves(Context::Event, None, false);
    for _ in 0..2 {
        event = compose(&event, Context::Event);
    }
    let mut level = leaves(Context::Profile, Some(event.bool), definitions);
    for _ in 0..DEPTH {
        level = compose(&level, Context::Profile);
    }
    level
}

#[derive(Clone, Copy, PartialEq)]
enum Context {
    Profile,
    Event,
}

fn text(s: impl Into<String>) -> S {
    S::Text(s.into())
}

fn int_literal() -> BoxedStrategy<S> {
    prop_oneof![
        (-3i64..12).prop_map(|i| text(i.to_string())),
        select(vec!["0", "100", "-1"]).prop_map(text),
    ]
    .boxed()
}

fn float_literal() -> BoxedStrategy<S> {
    (-8i64..40)
        .prop_map(|q| text(format!("{:.2}", q as f64 * 0.25)))
        .boxed()
}

fn quote(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\t', "\\t")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

fn string_literal() -> BoxedStrategy<S> {
    select(STRINGS.to_vec())
        .prop_map(|s| text(quote(s)))
        .boxed()
}

fn time_literal() -> BoxedStrategy<S> {
    prop_oneof![
        Just(text("now")),
        (1i64..100).prop_map(|d| text(format!("{d}d ago"))),
        (-100i64..3).prop_map(S::Date),
    ]
    .boxed()
}

fn duration_literal() -> BoxedStrategy<S> {
    select(vec!["1d", "7d", "30d", "12h", "2w", "1mo", "90d", "1s"])
        .prop_map(text)
        .boxed()
}

fn window() -> BoxedStrategy<Window> {
    prop_oneof![
        select(vec!["1d", "7d", "30d", "60d", "12h", "2w", "1y"]).prop_map(Window::Within),
        (0i64..100).prop_map(Window::Since),
        ((1i64..100), (1i64..60)).prop_map(|(start, length)| Window::Range(start, length)),
    ]
    .boxed()
}

fn column(ty: Ty, context: Context) -> BoxedStrategy<S> {
    (0u8..4)
        .prop_map(move |k| match context {
            Context::Profile => S::Profile(ty, k),
            Context::Event => S::Event(ty, k),
        })
        .boxed()
}

fn set(filter: &BoxedStrategy<S>) -> BoxedStrategy<S> {
    (0u8..3, proptest::option::of(filter.clone()))
        .prop_map(|(ev, filter)| S::Set {
            ev,
            filter: filter.map(Box::new),
        })
        .boxed()
}

fn sequence(filter: &BoxedStrategy<S>) -> BoxedStrategy<S> {
    let step = (
        0u8..3,
        proptest::option::of(filter.clone()),
        proptest::option::of(select(vec!["1h", "12h", "1d", "2d", "7d"])),
        any::<bool>(),
        0u8..3,
    )
        .prop_map(|(ev, filter, gap, correlated, k)| Step {
            ev,
            filter: filter.map(Box::new),
            gap,
            correlated,
            k,
        });
    (
        proptest::collection::vec(step, 2..=3),
        any::<bool>(),
        proptest::option::of(select(vec![Ty::Int, Ty::Str])),
    )
        .prop_map(|(steps, negated_last, correlate)| S::Sequence {
            steps,
            negated_last,
            correlate,
        })
        .boxed()
}

fn aggregate(
    functions: Vec<&'static str>,
    types: Vec<Ty>,
    filter: &BoxedStrategy<S>,
) -> BoxedStrategy<S> {
    (
        select(functions),
        0u8..3,
        proptest::option::of(filter.clone()),
        select(types),
        0u8..3,
    )
        .prop_map(|(func, ev, filter, ty, k)| S::Agg {
            func,
            ev,
            filter: filter.map(Box::new),
            column: (func != "count" && !func.starts_with("active_")).then_some((ty, k)),
        })
        .boxed()
}

/// Depth 0: literals, columns, and at the profile level event sets, aggregates and the
/// file's definitions.
fn leaves(context: Context, filter: Option<BoxedStrategy<S>>, definitions: bool) -> Level {
    let mut bool = vec![
        select(vec!["true", "false"]).prop_map(text).boxed(),
        column(Ty::Bool, context),
    ];
    let mut int = vec![int_literal(), column(Ty::Int, context)];
    let mut float = vec![float_literal(), column(Ty::Float, context)];
    let mut string = vec![string_literal(), column(Ty::Str, context)];
    let mut time = vec![time_literal(), column(Ty::Ts, context)];
    if let Some(filter) = &filter {
        bool.push(set(filter));
        int.push(aggregate(vec!["count"], vec![Ty::Int], filter));
        int.push(aggregate(
            vec!["active_days", "active_weeks", "active_months"],
            vec![Ty::Int],
            filter,
        ));
        bool.push(
            (
                set(filter),
                select(vec![
                    "in 1 of the last 2 days",
                    "in 2 of the last 3 weeks",
                    "in 2 of the last 4 months",
                ]),
            )
                .prop_map(|(set, periods)| S::Suffix(Box::new(set), periods.to_string()))
                .boxed(),
        );
        bool.push(sequence(filter));
        // `first ES` and `last ES`: tested against the enclosing window (see `compose`).
        bool.push(
            (select(vec!["first", "last"]), set(filter))
                .prop_map(|(edge, set)| S::Prefix(edge, Box::new(set)))
                .boxed(),
        );
        int.push(aggregate(
            vec!["count", "count(distinct"],
            vec![Ty::Int, Ty::Str, Ty::Float, Ty::Ts],
            filter,
        ));
        int.push(aggregate(
            vec!["sum", "min", "max", "first", "last"],
            vec![Ty::Int],
            filter,
        ));
        float.push(aggregate(vec!["avg"], vec![Ty::Int, Ty::Float], filter));
        float.push(aggregate(
            vec!["sum", "min", "max", "first", "last"],
            vec![Ty::Float],
            filter,
        ));
        string.push(aggregate(
            vec!["min", "max", "first", "last", "mode"],
            vec![Ty::Str],
            filter,
        ));
        int.push(aggregate(vec!["mode"], vec![Ty::Int], filter));
        time.push(aggregate(vec!["mode"], vec![Ty::Ts], filter));
        bool.push(
            (
                select(vec!["\"a\" in", "\"b\" not in", "\"\" in"]),
                aggregate(vec!["distinct_list"], vec![Ty::Str], filter),
            )
                .prop_map(|(test, list)| S::Prefix(test, Box::new(list)))
                .boxed(),
        );
        bool.push(
            (
                select(vec!["has any [1, 2]", "has all [0]", "has any [-1, 3]"]),
                aggregate(vec!["distinct_list"], vec![Ty::Int], filter),
            )
                .prop_map(|(test, list)| S::Suffix(Box::new(list), test.to_string()))
                .boxed(),
        );
        time.push(aggregate(
            vec!["min", "max", "first", "last"],
            vec![Ty::Ts],
            filter,
        ));
    }
    if definitions {
        bool.push(Just(text("in s0")).boxed());
        float.push(Just(text("m0")).boxed());
        string.push(Just(text("st0")).boxed());
    }
    Level {
        bool: union(bool),
        int: union(int),
        float: union(float),
        string: union(string),
        time: union(time),
    }
}

fn union(options: Vec<BoxedStrategy<S>>) -> BoxedStrategy<S> {
    proptest::strategy::Union::new(options).boxed()
}

fn infix(a: &BoxedStrategy<S>, ops: Vec<&'static str>, b: &BoxedStrategy<S>) -> BoxedStrategy<S> {
    (a.clone(), select(ops), b.clone())
        .prop_map(|(a, op, b)| S::Infix(Box::new(a), op, Box::new(b)))
        .boxed()
}

fn call(name: &'static str, args: Vec<BoxedStrategy<S>>) -> BoxedStrategy<S> {
    args.prop_map(move |args| S::Call(name, args)).boxed()
}

fn suffix(a: &BoxedStrategy<S>, suffixes: Vec<String>) -> BoxedStrategy<S> {
    (a.clone(), select(suffixes))
        .prop_map(|(a, s)| S::Suffix(Box::new(a), s))
        .boxed()
}

const COMPARISONS: [&str; 6] = ["=", "!=", "<", "<=", ">", ">="];

/// One level deeper: operators and functions over the previous level.
fn compose(p: &Level, context: Context) -> Level {
    let number = prop_oneof![p.int.clone(), p.float.clone()].boxed();
    let mut bool = vec![
        p.bool.clone(),
        infix(&p.bool, vec!["and", "or"], &p.bool),
        p.bool
            .clone()
            .prop_map(|b| S::Prefix("not", Box::new(b)))
            .boxed(),
        infix(&number, COMPARISONS.to_vec(), &number),
        infix(&p.string, COMPARISONS.to_vec(), &p.string),
        infix(&p.time, COMPARISONS.to_vec(), &p.time),
        infix(&p.time, vec!["before", "after"], &p.time),
        infix(&p.bool, vec!["=", "!="], &p.bool),
        (number.clone(), number.clone(), number.clone())
            .prop_map(|(x, lo, hi)| S::Between(Box::new(x), Box::new(lo), Box::new(hi)))
            .boxed(),
        suffix(
            &p.string,
            vec![
                "in [\"a\", \"b\"]".into(),
                "not in [\"a\", \"\", \"é\"]".into(),
                "in [\"A\", null]".into(),
                "not in [\"b\", null]".into(),
            ],
        ),
        suffix(&p.int, vec!["in [1, 2, 3]".into(), "not in [0, 5]".into()]),
        suffix(&number, vec!["is null".into(), "is not null".into()]),
        suffix(&p.string, vec!["is null".into(), "is not null".into()]),
        suffix(&p.time, vec!["is null".into(), "is not null".into()]),
        suffix(
            &p.string,
            vec![
                "contains \"b\"".into(),
                "starts_with \"A\"".into(),
                "ends_with \"b\"".into(),
                "contains \"\"".into(),
                "matches \"^[ab]\"".into(),
                "matches \"(?i)b\"".into(),
                "matches \"\\\\s\"".into(),
            ],
        ),
    ];
    let mut int = vec![
        p.int.clone(),
        infix(&p.int, vec!["+", "-", "*", "%"], &p.int),
        p.int
            .clone()
            .prop_map(|i| S::Prefix("-", Box::new(i)))
            .boxed(),
        call("abs", vec![p.int.clone()]),
        call("length", vec![p.string.clone()]),
        call("year", vec![p.time.clone()]),
        call("month", vec![p.time.clone()]),
        call("day_of_week", vec![p.time.clone()]),
        call("coalesce", vec![p.int.clone(), p.int.clone()]),
        call("round", vec![p.int.clone()]),
    ];
    let mut float = vec![
        p.float.clone(),
        infix(&number, vec!["+", "-", "*", "/", "%"], &p.float),
        infix(&p.int, vec!["/"], &p.int),
        p.float
            .clone()
            .prop_map(|x| S::Prefix("-", Box::new(x)))
            .boxed(),
        call("abs", vec![p.float.clone()]),
        call("round", vec![p.float.clone()]),
        call("floor", vec![p.float.clone()]),
        call("ceil", vec![p.float.clone()]),
        call("days_since", vec![p.time.clone()]),
        call("coalesce", vec![p.float.clone(), p.float.clone()]),
        call(
            "geo_distance_km",
            vec![
                p.float.clone(),
                p.float.clone(),
                p.float.clone(),
                p.float.clone(),
            ],
        ),
    ];
    let string = vec![
        p.string.clone(),
        call("lower", vec![p.string.clone()]),
        call("upper", vec![p.string.clone()]),
        call("trim", vec![p.string.clone()]),
        call("coalesce", vec![p.string.clone(), p.string.clone()]),
    ];
    let time = vec![
        p.time.clone(),
        infix(&p.time, vec!["+", "-"], &duration_literal()),
        (
            select(vec![
                "\"year\"",
                "\"quarter\"",
                "\"month\"",
                "\"week\"",
                "\"day\"",
                "\"hour\"",
            ]),
            p.time.clone(),
        )
            .prop_map(|(unit, t)| S::Call("date_trunc", vec![text(unit), t]))
            .boxed(),
        call("coalesce", vec![p.time.clone(), p.time.clone()]),
    ];
    if context == Context::Profile {
        // Population constructs: hash samples and rankings over every profile.
        bool.push(
            select(vec![
                "sample(10%, seed = \"a\")",
                "sample(50%)",
                "sample(0.5%, seed = \"b\")",
                "sample(100%, seed = \"all\")",
            ])
            .prop_map(text)
            .boxed(),
        );
        for ordered in [&number, &p.string, &p.time] {
            bool.push(
                (
                    select(vec!["top 1 by", "top 3 by", "top 10% by", "top 50% by"]),
                    ordered.clone(),
                )
                    .prop_map(|(top, by)| S::Prefix(top, Box::new(by)))
                    .boxed(),
            );
        }
        float.push(call("percentile_rank", vec![number.clone()]));
        bool.push(
            (
                p.bool.clone(),
                select(vec![1, 3, 10]),
                number.clone(),
                number.clone(),
            )
                .prop_map(|(seed, n, a, b)| {
                    let by = S::Infix(Box::new(text("by")), "=", Box::new(S::List(vec![a, b])));
                    S::Call("lookalike", vec![seed, text(n.to_string()), by])
                })
                .boxed(),
        );
        bool.push(
            (p.bool.clone(), window())
                .prop_map(|(b, w)| S::Window(Box::new(b), w))
                .boxed(),
        );
        bool.push(suffix(
            &p.string,
            vec!["in p_tags0".into(), "not in p_tags0".into()],
        ));
        bool.push(
            select(vec![
                "p_tags0 has any [\"a\", \"b\"]",
                "p_tags0 has all [\"a\", \"\"]",
                "p_tags0 has any [\"A\"]",
            ])
            .prop_map(|t| S::Tags(t.to_string()))
            .boxed(),
        );
        int.push(
            (p.int.clone(), window())
                .prop_map(|(i, w)| S::Window(Box::new(i), w))
                .boxed(),
        );
        float.push(
            (p.float.clone(), window())
                .prop_map(|(x, w)| S::Window(Box::new(x), w))
                .boxed(),
        );
    }
    Level {
        bool: union(bool),
        int: union(int),
        float: union(float),
        string: union(string),
        time: union(time),
    }
}

/// Renders skeletons as source text for one world.
struct Render<'w> {
    world: &'w World,
    /// The event table whose filter is being rendered.
    event: Option<&'w Table>,
}

fn date(world: &World, days: i64) -> String {
    let midnight = (world.as_of + days * DAY).div_euclid(DAY) * DAY;
    chrono::DateTime::from_timestamp_nanos(midnight)
        .format("%Y-%m-%d")
        .to_string()
}

/// A literal standing in for a column a world lacks.
fn stand_in(ty: Ty) -> &'static str {
    match ty {
        Ty::Bool => "true",
        Ty::Int => "7",
        Ty::Float => "1.5",
        Ty::Str => "\"a\"",
        Ty::Ts => "now",
        Ty::StrList => "[\"a\"]",
    }
}

impl Render<'_> {
    /// A list test's text, on a literal list when the world has no list column.
    fn tags(&self, text: &str) -> String {
        if self.world.profiles.names_of(Ty::StrList).is_empty() {
            text.replace("p_tags0", "[\"a\"]")
        } else {
            text.to_string()
        }
    }

    fn column(table: &Table, ty: Ty, k: u8) -> String {
        let names = table.names_of(ty);
        if names.is_empty() {
            stand_in(ty).to_string()
        } else {
            names[k as usize % names.len()].to_string()
        }
    }

    fn event_table(&self, ev: u8) -> &Table {
        &self.world.events[ev as usize % self.world.events.len()]
    }

    fn set(&self, ev: u8, filter: &Option<Box<S>>) -> String {
        let table = self.event_table(ev);
        match filter {
            None => table.name.clone(),
            Some(filter) => {
                let inner = Render {
                    world: self.world,
                    event: Some(table),
                };
                format!("{}({})", table.name, inner.render(filter))
            }
        }
    }

    fn render(&self, s: &S) -> String {
        match s {
            S::Text(t) => t.clone(),
            S::Tags(t) => format!("({})", self.tags(t)),
            S::Date(days) => date(self.world, *days),
            S::Profile(ty, k) => Self::column(&self.world.profiles, *ty, *k),
            S::Event(ty, k) => match self.event {
                Some(table) => Self::column(table, *ty, *k),
                None => stand_in(*ty).to_string(),
            },
            S::Prefix(op, a) => format!("({op} {})", self.render(a)),
            S::Infix(a, op, b) => format!("({} {op} {})", self.render(a), self.render(b)),
            S::Call(name, args) => {
                let args: Vec<String> = args.iter().map(|a| self.render(a)).collect();
                format!("{name}({})", args.join(", "))
            }
            S::List(items) => {
                let items: Vec<String> = items.iter().map(|a| self.render(a)).collect();
                format!("[{}]", items.join(", "))
            }
            S::Suffix(a, suffix) => {
                format!("({} {})", self.render(a), self.tags(suffix))
            }
            S::Between(x, lo, hi) => format!(
                "({} between {} and {})",
                self.render(x),
                self.render(lo),
                self.render(hi)
            ),
            S::Window(a, window) => {
                let bound = match window {
                    Window::Within(d) => format!("within {d}"),
                    Window::Since(days) => format!("since {}", date(self.world, -days)),
                    Window::Range(start, length) => format!(
                        "within {} .. {}",
                        date(self.world, -start),
                        date(self.world, length - start)
                    ),
                };
                format!("({} {bound})", self.render(a))
            }
            S::Set { ev, filter } => self.set(*ev, filter),
            S::Sequence {
                steps,
                negated_last,
                correlate,
            } => {
                let mut bound = false;
                let mut text = Vec::new();
                for (i, step) in steps.iter().enumerate() {
                    let negated = i > 0 && i + 1 == steps.len() && *negated_last;
                    let table = self.event_table(step.ev);
                    let mut conditions = Vec::new();
                    if let Some(ty) = correlate
                        && step.correlated
                        && (bound || !negated)
                    {
                        conditions.push(format!("{} = x", Self::column(table, *ty, step.k)));
                        bound = true;
                    }
                    if let Some(filter) = &step.filter {
                        let inner = Render {
                            world: self.world,
                            event: Some(table),
                        };
                        conditions.push(inner.render(filter));
                    }
                    let mut written = if conditions.is_empty() {
                        table.name.clone()
                    } else {
                        format!("{}({})", table.name, conditions.join(" and "))
                    };
                    if i > 0 {
                        let not = if negated { "not " } else { "" };
                        written = format!("then {not}{written}");
                        if let Some(gap) = step.gap {
                            written = format!("{written} within {gap}");
                        }
                    }
                    text.push(written);
                }
                format!("({})", text.join(" "))
            }
            S::Agg {
                func,
                ev,
                filter,
                column,
            } => {
                let set = self.set(*ev, filter);
                match column {
                    None => format!("{func}({set})"),
                    Some((ty, k)) => {
                        let name = Self::column(self.event_table(*ev), *ty, *k);
                        if func.ends_with("(distinct") {
                            format!("count(distinct {set}.{name})")
                        } else {
                            format!("{func}({set}.{name})")
                        }
                    }
                }
            }
        }
    }
}
