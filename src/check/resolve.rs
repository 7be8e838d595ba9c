//! Event sets, aggregates, functions and reference cycles: the parts of checking that
//! consult the catalog's event tables.

use std::collections::{HashMap, HashSet};

use super::ir::*;
use super::{Checker, Ctx, describe_type};
use crate::diagnostic::{Diagnostic, Span, list_names};
use crate::syntax::ast::{self, Declaration, ExprKind};

impl<'a> Checker<'a> {
    /// Finds reference cycles among declarations and reports each once.
    pub(super) fn find_cycles(&mut self, declarations: &[&'a Declaration]) {
        let mut edges: HashMap<&str, Vec<(String, Span)>> = HashMap::new();
        for declaration in declarations {
            let mut references = Vec::new();
            match declaration {
                Declaration::Segment(d) => collect_references(&d.expr, &mut references),
                Declaration::Metric(d) => collect_references(&d.expr, &mut references),
                Declaration::Stage(d) => d
                    .arms
                    .iter()
                    .for_each(|arm| collect_references(&arm.expr, &mut references)),
            }
            references.retain(|(name, _)| self.declarations.contains_key(name.as_str()));
            edges
                .entry(declaration.name().name.as_str())
                .or_insert(references);
        }
        let mut names: Vec<&str> = edges.keys().copied().collect();
        names.sort_by_key(|n| {
            self.declarations
                .get(n)
                .map(|d| (d.span().file, d.span().start))
        });
        let mut done: HashSet<&str> = HashSet::new();
        for start in names {
            if done.contains(start) {
                continue;
            }
            // Iterative depth-first search keeping the current path.
            let mut path: Vec<(&str, usize)> = vec![(start, 0)];
            let mut on_path: HashSet<&str> = HashSet::from([start]);
            while let Some((node, next_edge)) = path.last().copied() {
                let node_edges = edges.get(node).map(Vec::as_slice).unwrap_or(&[]);
                if next_edge >= node_edges.len() {
                    path.pop();
                    on_path.remove(node);
                    done.insert(node);
                    continue;
                }
                if let Some(last) = path.last_mut() {
                    last.1 += 1;
                }
                let (target, span) = &node_edges[next_edge];
                let Some((target, _)) = edges.get_key_value(target.as_str()) else {
                    continue;
                };
                let target: &str = target;
                if on_path.contains(target) {
                    let cycle_start = path.iter().position(|(n, _)| *n == target).unwrap_or(0);
                    let members: Vec<&str> = path[cycle_start..].iter().map(|(n, _)| *n).collect();
                    if members.iter().all(|m| !self.in_cycle.contains(*m)) {
                        let chain = members
                            .iter()
                            .chain(std::iter::once(&target))
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(" -> ");
                        self.diagnostics.push(
                            Diagnostic::error("E0107", format!("`{target}` is defined in terms of itself"))
                                .with_label(*span, format!("this reference closes the cycle {chain}"))
                                .with_help("a definition cannot depend on itself, directly or through others: break the cycle"),
                        );
                    }
                    for member in members {
                        self.in_cycle.insert(member.to_string());
                    }
                } else if !done.contains(target) {
                    path.push((target, 0));
                    on_path.insert(target);
                }
            }
        }
    }

    /// The event table an event-set expression (`purchased`, `purchased(...)`) is about.
    pub(super) fn event_of(&self, expr: &ast::Expr) -> Option<String> {
        let name = match &expr.kind {
            ExprKind::Name(ident) => &ident.name,
            ExprKind::Call { function, .. } => &function.name,
            _ => return None,
        };
        self.catalog.event(name).map(|e| e.name.clone())
    }

    /// Checks the filter of `event(args)`. `None` after an error; `Some(None)` for no filter.
    pub(super) fn event_filter(
        &mut self,
        event: &str,
        args: &[ast::Argument],
        span: Span,
    ) -> Option<Option<TypedExpr>> {
        let table = self.catalog.event(event)?;
        match args {
            [] => Some(None),
            [argument] => {
                if let Some(distinct) = argument.distinct {
                    self.report(
                        Diagnostic::error("E0204", "`distinct` belongs inside `count(...)`")
                            .with_label(distinct, "not valid in an event filter")
                            .with_help(format!("write `count(distinct {event}.column)`")),
                    );
                }
                let ctx = Ctx {
                    window: None,
                    event: Some(table),
                };
                let filter = self.expr(&argument.expr, &ctx);
                match filter.ty {
                    Type::Error => None,
                    Type::Bool | Type::Null => Some(Some(filter)),
                    ref other => {
                        self.report(
                            Diagnostic::error("E0201", format!("an event filter must be a condition, found {other}"))
                                .with_label(filter.span, format!("this is {}", describe_type(other)))
                                .with_help(format!("compare a column of `{event}`, e.g. `{event}(category = \"books\")`")),
                        );
                        None
                    }
                }
            }
            [_, extra, ..] => {
                self.report(
                    Diagnostic::error("E0205", format!("an event filter takes one condition, found {}", args.len()))
                        .with_label(extra.expr.span.to(span), "extra arguments")
                        .with_help("combine conditions with `and`: `purchased(category = \"x\" and amount > 10)`"),
                );
                None
            }
        }
    }

    /// Creates (or reuses) the measure for an aggregate over an event set in the current window.
    pub(super) fn measure_for_event_set(
        &mut self,
        event: &str,
        filter: Option<TypedExpr>,
        span: Span,
        ctx: &Ctx<'a>,
        aggregate: Aggregate,
        column: Option<(String, Type)>,
    ) -> TypedExpr {
        let window = match ctx.window {
            Some(i) => {
                self.windows[i].uses += 1;
                self.windows[i].window
            }
            None => TimeWindow::default(),
        };
        let column_type = column
            .as_ref()
            .map(|(_, t)| t.clone())
            .unwrap_or(Type::Null);
        let ty = match aggregate {
            Aggregate::Exists => Type::Bool,
            Aggregate::Count
            | Aggregate::CountValues
            | Aggregate::CountDistinct
            | Aggregate::Active(_)
            | Aggregate::ActivePeriods(_) => Type::Int,
            Aggregate::Sum if column_type == Type::Int => Type::Int,
            Aggregate::Sum | Aggregate::Avg => Type::Float,
            Aggregate::Min
            | Aggregate::Max
            | Aggregate::First
            | Aggregate::Last
            | Aggregate::Mode => column_type,
            Aggregate::DistinctList => Type::List(Box::new(column_type)),
        };
        let id = self.program.intern_measure(Measure {
            event: event.to_string(),
            aggregate,
            column: column.map(|(name, _)| name),
            filter,
            window,
            ty: ty.clone(),
        });
        TypedExpr {
            kind: IrExpr::Measure(id),
            ty,
            span,
        }
    }

    pub(super) fn aggregate(
        &mut self,
        aggregate: Aggregate,
        function: &ast::Ident,
        args: &[ast::Argument],
        span: Span,
        ctx: &Ctx<'a>,
    ) -> TypedExpr {
        let name = function.name.as_str();
        let example_event = self
            .catalog
            .events
            .first()
            .map(|e| e.name.clone())
            .unwrap_or_else(|| "purchased".into());
        let [argument] = args else {
            self.report(
                Diagnostic::error(
                    "E0205",
                    format!("`{name}` takes one argument, found {}", args.len()),
                )
                .with_label(span, "wrong number of arguments")
                .with_help(aggregate_usage(aggregate, &example_event)),
            );
            return Self::error_expr(span);
        };
        // Split `ES.col` into the event set and the column.
        let (set_expr, column_ident) = match &argument.expr.kind {
            ExprKind::Member { base, column } => (base.as_ref(), Some(column)),
            _ => (&argument.expr, None),
        };
        let Some(event) = self.event_of(set_expr) else {
            let found = self.expr_quietly(&argument.expr, ctx);
            let what = if found.ty == Type::Error {
                "this".to_string()
            } else {
                describe_type(&found.ty)
            };
            self.report(
                Diagnostic::error(
                    "E0204",
                    format!("`{name}` aggregates over events, but its argument is {what}"),
                )
                .with_label(argument.expr.span, "not an event set or event column")
                .with_help(aggregate_usage(aggregate, &example_event)),
            );
            return Self::error_expr(span);
        };
        let filter = match &set_expr.kind {
            ExprKind::Call { args, .. } => match self.event_filter(&event, args, set_expr.span) {
                Some(filter) => filter,
                None => return Self::error_expr(span),
            },
            _ => None,
        };
        let column = match column_ident {
            None => None,
            Some(ident) => {
                let Some(table) = self.catalog.event(&event) else {
                    return Self::error_expr(span);
                };
                let Some(column) = table.column(&ident.name) else {
                    self.report(super::unknown_event_column(table, ident));
                    return Self::error_expr(span);
                };
                let Some(ty) = column.ty.clone() else {
                    self.report(super::unsupported_column(column, ident.span));
                    return Self::error_expr(span);
                };
                Some((column.name.clone(), ty))
            }
        };
        let aggregate = match (aggregate, &column, argument.distinct) {
            (Aggregate::Count, None, None) => Aggregate::Count,
            (Aggregate::Count, Some(_), None) => Aggregate::CountValues,
            (Aggregate::Count, Some(_), Some(_)) => Aggregate::CountDistinct,
            (Aggregate::Count, None, Some(distinct)) => {
                self.report(
                    Diagnostic::error("E0204", "`count(distinct ...)` needs an event column")
                        .with_label(distinct.to(argument.expr.span), "distinct what?")
                        .with_help(format!("name the column to count distinct values of, e.g. `count(distinct {event}.product)`")),
                );
                return Self::error_expr(span);
            }
            (Aggregate::Active(_) | Aggregate::ActivePeriods(_), None, None) => aggregate,
            (Aggregate::Active(_) | Aggregate::ActivePeriods(_), Some(_), _) => {
                self.report(
                    Diagnostic::error(
                        "E0204",
                        format!("`{name}` counts the days of an event set, not of a column"),
                    )
                    .with_label(argument.expr.span, "an event column")
                    .with_help(format!(
                        "write `{name}({event})` or `{name}({event}(FILTER))`"
                    )),
                );
                return Self::error_expr(span);
            }
            (_, _, Some(distinct)) => {
                self.report(
                    Diagnostic::error("E0204", format!("`distinct` is only supported in `count`, not `{name}`"))
                        .with_label(distinct, "not supported here")
                        .with_help(format!("remove `distinct`, or count distinct values with `count(distinct {event}.column)`")),
                );
                return Self::error_expr(span);
            }
            (_, None, None) => {
                self.report(
                    Diagnostic::error(
                        "E0204",
                        format!("`{name}` needs an event column, such as `{name}({event}.amount)`"),
                    )
                    .with_label(argument.expr.span, "an event set, not a column")
                    .with_help(format!(
                        "columns of `{event}` are {}",
                        list_names(
                            self.catalog
                                .event(&event)
                                .map(|t| t
                                    .columns
                                    .iter()
                                    .map(|c| c.name.as_str())
                                    .collect::<Vec<_>>())
                                .unwrap_or_default(),
                            12
                        )
                    )),
                );
                return Self::error_expr(span);
            }
            (other, Some(_), None) => other,
        };
        if let Some((column_name, ty)) = &column {
            let problem = match aggregate {
                Aggregate::Sum | Aggregate::Avg if !ty.is_numeric() => Some("numbers"),
                Aggregate::Min | Aggregate::Max if matches!(ty, Type::List(_) | Type::Bool) => {
                    Some("numbers, strings or timestamps")
                }
                Aggregate::Mode | Aggregate::DistinctList if matches!(ty, Type::List(_)) => {
                    Some("single values, not lists")
                }
                _ => None,
            };
            if let Some(expected) = problem {
                self.report(
                    Diagnostic::error("E0201", format!("`{name}` needs {expected}, but `{event}.{column_name}` is {ty}"))
                        .with_label(argument.expr.span, format!("this is {ty}"))
                        .with_help(if aggregate == Aggregate::Sum || aggregate == Aggregate::Avg {
                            format!("count events instead: `count({event})`, or `count(distinct {event}.{column_name})`")
                        } else {
                            "use `first` or `last` for the value at the earliest or latest event".to_string()
                        }),
                );
                return Self::error_expr(span);
            }
        }
        self.measure_for_event_set(&event, filter, span, ctx, aggregate, column)
    }

    /// `active_periods(ES, DURATION)`: the period is a positive duration literal.
    pub(super) fn active_periods(
        &mut self,
        function: &ast::Ident,
        args: &[ast::Argument],
        span: Span,
        ctx: &Ctx<'a>,
    ) -> TypedExpr {
        let usage = aggregate_usage(Aggregate::ActivePeriods(0), "purchased");
        let [set, period] = args else {
            self.report(
                Diagnostic::error(
                    "E0205",
                    format!(
                        "`active_periods` takes an event set and a period, found {} arguments",
                        args.len()
                    ),
                )
                .with_label(span, "wrong number of arguments")
                .with_help(usage),
            );
            return Self::error_expr(span);
        };
        let nanoseconds = match &period.expr.kind {
            ExprKind::Literal(ast::Literal::Duration(d)) => d.nanoseconds().filter(|n| *n > 0),
            ExprKind::Error => return Self::error_expr(span),
            _ => None,
        };
        let Some(nanoseconds) = nanoseconds else {
            self.report(
                Diagnostic::error(
                    "E0204",
                    "the period of `active_periods` must be a positive duration such as `30d`",
                )
                .with_label(period.expr.span, "not a positive duration")
                .with_help(usage),
            );
            return Self::error_expr(span);
        };
        self.aggregate(
            Aggregate::ActivePeriods(nanoseconds),
            function,
            std::slice::from_ref(set),
            span,
            ctx,
        )
    }

    /// `first ES` / `last ES`: the time of the set's first (last) event over all history,
    /// inside the enclosing window. Without a window: whether there is such an event.
    pub(super) fn occurrence(
        &mut self,
        last: bool,
        set: &ast::Expr,
        span: Span,
        ctx: &Ctx<'a>,
    ) -> TypedExpr {
        let which = if last { "last" } else { "first" };
        let Some(event) = self.event_of(set) else {
            let example = self
                .catalog
                .events
                .first()
                .map_or("purchased", |e| e.name.as_str());
            self.report(
                Diagnostic::error("E0204", format!("`{which}` takes an event set, such as `{which} {example}`"))
                    .with_label(set.span, "not an event set")
                    .with_help(format!("write `{which} {example} within 30d`, or `{which}({example}.column)` for a value")),
            );
            return Self::error_expr(span);
        };
        if self.outside_profiles(&format!("{which} {event}"), span, ctx) {
            return Self::error_expr(span);
        }
        let filter = match &set.kind {
            ExprKind::Call { args, .. } => match self.event_filter(&event, args, set.span) {
                Some(filter) => filter,
                None => return Self::error_expr(span),
            },
            _ => None,
        };
        let Some(time) = self.catalog.event(&event).and_then(|t| t.time.clone()) else {
            return Self::error_expr(span);
        };
        let aggregate = if last {
            Aggregate::Last
        } else {
            Aggregate::First
        };
        // Over all history: the window tests the time instead of bounding the events.
        let window = ctx.window.map(|i| {
            self.windows[i].uses += 1;
            self.windows[i].window
        });
        let whole_history = Ctx {
            window: None,
            event: None,
        };
        let time_value = self.measure_for_event_set(
            &event,
            filter,
            span,
            &whole_history,
            aggregate,
            Some((time, Type::Timestamp)),
        );
        let typed = |kind: IrExpr, ty: Type| TypedExpr { kind, ty, span };
        let point = |p: TimePoint| match p {
            TimePoint::Absolute(t) => typed(IrExpr::Literal(Value::Timestamp(t)), Type::Timestamp),
            TimePoint::FromNow(offset) => typed(IrExpr::RelativeTime(offset), Type::Timestamp),
        };
        let compare = |op: BinaryOp, bound: TypedExpr| {
            typed(
                IrExpr::Binary {
                    op,
                    lhs: Box::new(time_value.clone()),
                    rhs: Box::new(bound),
                },
                Type::Bool,
            )
        };
        // "There is such an event" first, so the condition is false, never null, for a
        // profile without one: `not (first purchased within 7d)` holds for it.
        let mut tests = vec![typed(
            IrExpr::IsNull {
                expr: Box::new(time_value.clone()),
                negated: true,
            },
            Type::Bool,
        )];
        if let Some(window) = window {
            if let Some(start) = window.start {
                tests.push(compare(BinaryOp::GtEq, point(start)));
            }
            if let Some(end) = window.end {
                tests.push(compare(BinaryOp::Lt, point(end)));
            }
        }
        tests
            .into_iter()
            .reduce(|a, b| {
                typed(
                    IrExpr::Binary {
                        op: BinaryOp::And,
                        lhs: Box::new(a),
                        rhs: Box::new(b),
                    },
                    Type::Bool,
                )
            })
            .unwrap_or_else(|| Self::error_expr(span))
    }

    fn expr_quietly(&mut self, expr: &ast::Expr, ctx: &Ctx<'a>) -> TypedExpr {
        self.quiet += 1;
        let typed = self.expr(expr, ctx);
        self.quiet -= 1;
        typed
    }

    pub(super) fn function(
        &mut self,
        function: Function,
        args: &[ast::Argument],
        span: Span,
        ctx: &Ctx<'a>,
    ) -> TypedExpr {
        if let Some(distinct) = args.iter().find_map(|a| a.distinct) {
            self.report(
                Diagnostic::error(
                    "E0204",
                    format!("`distinct` is not valid in `{}`", function.name()),
                )
                .with_label(distinct, "only `count(distinct ...)` takes it"),
            );
            return Self::error_expr(span);
        }
        let typed_args: Vec<TypedExpr> = args.iter().map(|a| self.expr(&a.expr, ctx)).collect();
        if typed_args.iter().any(|a| a.ty == Type::Error) {
            return Self::error_expr(span);
        }
        let arity_ok = match function {
            Function::Coalesce => !typed_args.is_empty(),
            Function::DateTrunc => typed_args.len() == 2,
            Function::GeoDistanceKm => typed_args.len() == 4,
            _ => typed_args.len() == 1,
        };
        if !arity_ok {
            self.report(
                Diagnostic::error(
                    "E0205",
                    format!(
                        "`{}` takes {} arguments, found {}",
                        function.name(),
                        arity_text(function),
                        typed_args.len()
                    ),
                )
                .with_label(span, "wrong number of arguments")
                .with_help(format!("usage: {}", function.signature())),
            );
            return Self::error_expr(span);
        }
        let expect =
            |checker: &mut Checker<'a>, arg: &TypedExpr, ok: bool, expected: &str| -> bool {
                if ok || arg.ty.is_unknown() {
                    return true;
                }
                checker.report(
                    Diagnostic::error(
                        "E0201",
                        format!("`{}` expects {expected}, found {}", function.name(), arg.ty),
                    )
                    .with_label(arg.span, format!("this is {}", arg.ty))
                    .with_help(format!("usage: {}", function.signature())),
                );
                false
            };
        let first = &typed_args[0];
        let (ok, ty) = match function {
            Function::Lower | Function::Upper | Function::Trim => (
                expect(self, first, first.ty == Type::String, "a string"),
                Type::String,
            ),
            Function::Length => (
                expect(self, first, first.ty == Type::String, "a string"),
                Type::Int,
            ),
            Function::Abs | Function::Round | Function::Floor | Function::Ceil => {
                let ty = if first.ty == Type::Null {
                    Type::Float
                } else {
                    first.ty.clone()
                };
                (expect(self, first, first.ty.is_numeric(), "a number"), ty)
            }
            Function::Exp => (
                expect(
                    self,
                    first,
                    first.ty.is_numeric() || first.ty == Type::Null,
                    "a number",
                ),
                Type::Float,
            ),
            Function::Coalesce => {
                let mut ty = Type::Null;
                let mut ok = true;
                for arg in &typed_args {
                    match ty.unify(&arg.ty) {
                        Some(t) => ty = t,
                        None => {
                            ok = expect(self, arg, false, &format!("values of one type ({ty})"));
                            break;
                        }
                    }
                }
                (ok, ty)
            }
            Function::DaysSince => (
                expect(self, first, first.ty == Type::Timestamp, "a timestamp"),
                Type::Float,
            ),
            Function::Year | Function::Month | Function::DayOfWeek => (
                expect(self, first, first.ty == Type::Timestamp, "a timestamp"),
                Type::Int,
            ),
            Function::DateTrunc => {
                let unit_ok = match &first.kind {
                    IrExpr::Literal(Value::String(unit)) => {
                        let valid = ["year", "quarter", "month", "week", "day", "hour", "minute"]
                            .contains(&unit.as_str());
                        if !valid {
                            self.report(
                                Diagnostic::error("E0201", format!("`date_trunc` does not know the unit \"{unit}\""))
                                    .with_label(first.span, "unknown unit")
                                    .with_help("units are \"year\", \"quarter\", \"month\", \"week\", \"day\", \"hour\" and \"minute\""),
                            );
                        }
                        valid
                    }
                    _ => expect(
                        self,
                        first,
                        false,
                        "a unit string literal such as \"month\" first",
                    ),
                };
                let second = &typed_args[1];
                (
                    unit_ok
                        && expect(
                            self,
                            second,
                            second.ty == Type::Timestamp,
                            "a timestamp second",
                        ),
                    Type::Timestamp,
                )
            }
            Function::GeoDistanceKm => {
                let ok = typed_args.iter().all(|arg| {
                    expect(
                        self,
                        arg,
                        arg.ty.is_numeric(),
                        "coordinates in degrees (numbers)",
                    )
                });
                (ok, Type::Float)
            }
        };
        TypedExpr {
            kind: IrExpr::Function {
                function,
                args: typed_args,
            },
            ty: if ok { ty } else { Type::Error },
            span,
        }
    }
}

fn arity_text(function: Function) -> &'static str {
    match function {
        Function::Coalesce => "at least 1",
        Function::DateTrunc => "2",
        Function::GeoDistanceKm => "4",
        _ => "1",
    }
}

fn aggregate_usage(aggregate: Aggregate, event: &str) -> String {
    match aggregate {
        Aggregate::Active(_) => format!(
            "write `{}({event})`: the number of distinct days (weeks, months) with an event",
            aggregate.name()
        ),
        Aggregate::ActivePeriods(_) => format!(
            "write `active_periods({event}, 30d)`: how many 30-day periods back from now have an event"
        ),
        Aggregate::Count
        | Aggregate::CountValues
        | Aggregate::CountDistinct
        | Aggregate::Exists => {
            format!(
                "write `count({event})`, `count({event}(FILTER))` or `count(distinct {event}.column)`"
            )
        }
        other => format!("write `{}({event}.column)`", other.name()),
    }
}

/// Names used in `expr` that may refer to declarations, with the span of each use.
fn collect_references(expr: &ast::Expr, out: &mut Vec<(String, Span)>) {
    match &expr.kind {
        ExprKind::Name(ident) | ExprKind::InSegment(ident) => {
            out.push((ident.name.clone(), ident.span))
        }
        ExprKind::Error | ExprKind::Literal(_) | ExprKind::Now | ExprKind::Ago(_) => {}
        ExprKind::List(items) => items.iter().for_each(|i| collect_references(i, out)),
        ExprKind::Call { args, .. } => args.iter().for_each(|a| collect_references(&a.expr, out)),
        ExprKind::Member { base, .. } => collect_references(base, out),
        ExprKind::Negate(e)
        | ExprKind::Not(e)
        | ExprKind::Top { by: e, .. }
        | ExprKind::Occurrence { set: e, .. } => collect_references(e, out),
        ExprKind::IsNull { expr, .. } => collect_references(expr, out),
        ExprKind::Binary { lhs, rhs, .. } => {
            collect_references(lhs, out);
            collect_references(rhs, out);
        }
        ExprKind::Between { expr, low, high } => {
            for e in [expr, low, high] {
                collect_references(e, out);
            }
        }
        ExprKind::In { expr, set, .. } | ExprKind::Has { expr, set, .. } => {
            collect_references(expr, out);
            collect_references(set, out);
        }
        ExprKind::StringTest { expr, pattern, .. } => {
            collect_references(expr, out);
            collect_references(pattern, out);
        }
        ExprKind::Sequence { first, steps } => {
            collect_references(first, out);
            for step in steps {
                collect_references(&step.event, out);
                if let Some(gap) = &step.gap {
                    collect_references(gap, out);
                }
            }
        }
        ExprKind::Window { expr, window } => {
            collect_references(expr, out);
            match window {
                ast::Window::Within(e) | ast::Window::Since(e) => collect_references(e, out),
                ast::Window::Range(a, b) => {
                    collect_references(a, out);
                    collect_references(b, out);
                }
            }
        }
    }
}
