//! AST + catalog schema -> typed [`Program`]. Resolves names, infers and checks types,
//! binds event sets to windows, and collects every problem as a diagnostic.
//!
//! References are inlined: a metric's definition is checked again at each use in the
//! window of the use (metrics are open to windows); segments and stages are closed and
//! checked without a window. Cycles are found first so inlining always ends.

pub mod display;
pub mod ir;
mod population;
mod resolve;
mod sequence;

/// The functions over the whole profile table (`sample`, `percentile_rank`), for completion.
pub use population::FUNCTIONS as POPULATION_FUNCTIONS;

use std::collections::{HashMap, HashSet};

use crate::catalog::{CatalogSchema, TableSchema};
use crate::diagnostic::{Diagnostic, Diagnostics, Span, list_names};
use crate::syntax::ast::{self, Declaration, ExprKind, Literal};
use ir::*;

/// Checks the declarations of all `files` together against `catalog`.
///
/// Always returns a program (with the declarations that checked cleanly) and the
/// diagnostics; callers decide whether errors stop them.
pub fn check(files: &[ast::File], catalog: &CatalogSchema) -> (Program, Diagnostics) {
    crate::diagnostic::with_deep_stack(|| {
        let mut checker = Checker::new(files, catalog);
        checker.check_all();
        (checker.program, checker.diagnostics)
    })
}

/// Checks one expression against already-checked declarations (REPL input, ad-hoc audiences).
/// The expression may use any name of `files`; its measures are added to `program`. With
/// `require_bool`, it must be a condition.
pub fn check_expression(
    expr: &ast::Expr,
    files: &[ast::File],
    catalog: &CatalogSchema,
    program: &mut Program,
    require_bool: bool,
) -> Result<TypedExpr, Diagnostics> {
    crate::diagnostic::with_deep_stack(|| {
        check_expression_here(expr, files, catalog, program, require_bool)
    })
}

fn check_expression_here(
    expr: &ast::Expr,
    files: &[ast::File],
    catalog: &CatalogSchema,
    program: &mut Program,
    require_bool: bool,
) -> Result<TypedExpr, Diagnostics> {
    let mut checker = Checker::new(files, catalog);
    checker.program = std::mem::take(program);
    let typed = checker.expr(expr, &Ctx::default());
    let errors_before = checker.diagnostics.has_errors();
    if require_bool && !errors_before {
        checker.expect_type(
            &typed,
            &Type::Bool,
            "E0202",
            "an audience must be a condition",
        );
    }
    *program = std::mem::take(&mut checker.program);
    if checker.diagnostics.has_errors() {
        Err(checker.diagnostics)
    } else {
        Ok(typed)
    }
}

/// Where an expression is being checked.
#[derive(Clone, Copy, Default)]
struct Ctx<'c> {
    /// The nearest enclosing window, as an index into `Checker::windows`.
    window: Option<usize>,
    /// Inside the filter of this event table.
    event: Option<&'c TableSchema>,
}

struct WindowFrame {
    window: TimeWindow,
    uses: usize,
}

struct Checker<'a> {
    catalog: &'a CatalogSchema,
    declarations: HashMap<&'a str, &'a Declaration>,
    in_cycle: HashSet<String>,
    program: Program,
    diagnostics: Diagnostics,
    /// While > 0, diagnostics are counted in `suppressed` instead of reported.
    quiet: usize,
    suppressed: usize,
    windows: Vec<WindowFrame>,
    /// Inlined references by (name, window), with whether they bound the window.
    inline_cache: HashMap<(String, Option<TimeWindow>), (TypedExpr, bool, bool)>,
}

impl<'a> Checker<'a> {
    fn new(files: &'a [ast::File], catalog: &'a CatalogSchema) -> Checker<'a> {
        let mut declarations = HashMap::new();
        let mut diagnostics = Diagnostics::default();
        for declaration in files.iter().flat_map(|f| &f.declarations) {
            let name = declaration.name();
            if name.name.is_empty() {
                continue;
            }
            match declarations.get(name.name.as_str()) {
                Some(first) => {
                    let first: &&Declaration = first;
                    diagnostics.push(
                        Diagnostic::error("E0106", format!("`{}` is defined twice", name.name))
                            .with_label(name.span, format!("second definition of `{}`", name.name))
                            .with_secondary(first.name().span, "first defined here")
                            .with_help("segments, metrics and stages share one namespace: rename one of them"),
                    );
                }
                None => {
                    declarations.insert(name.name.as_str(), declaration);
                }
            }
        }
        let mut checker = Checker {
            catalog,
            declarations,
            in_cycle: HashSet::new(),
            program: Program::default(),
            diagnostics,
            quiet: 0,
            suppressed: 0,
            windows: Vec::new(),
            inline_cache: HashMap::new(),
        };
        let files_declarations: Vec<&Declaration> =
            files.iter().flat_map(|f| &f.declarations).collect();
        checker.find_cycles(&files_declarations);
        checker
    }

    fn report(&mut self, diagnostic: Diagnostic) {
        if self.quiet > 0 {
            if diagnostic.is_error() {
                self.suppressed += 1;
            }
        } else {
            self.diagnostics.push(diagnostic);
        }
    }

    fn check_all(&mut self) {
        let declarations: Vec<&'a Declaration> = {
            let mut seen = HashSet::new();
            let mut list: Vec<&'a Declaration> = self.declarations.values().copied().collect();
            list.sort_by_key(|d| (d.span().file, d.span().start));
            list.retain(|d| seen.insert(d.name().name.clone()));
            list
        };
        for declaration in declarations {
            let name = &declaration.name().name;
            if self.in_cycle.contains(name) {
                continue;
            }
            match declaration {
                Declaration::Segment(segment) => {
                    let condition = self.expr(&segment.expr, &Ctx::default());
                    self.expect_type(
                        &condition,
                        &Type::Bool,
                        "E0202",
                        "a segment is defined by a condition",
                    );
                    self.program.segments.push(CheckedSegment {
                        name: name.clone(),
                        description: segment.description.clone(),
                        condition,
                        span: segment.span,
                    });
                }
                Declaration::Metric(metric) => {
                    let expr = self.expr(&metric.expr, &Ctx::default());
                    self.program.values.push(CheckedValue {
                        name: name.clone(),
                        kind: ValueKind::Metric,
                        expr,
                        span: metric.span,
                    });
                }
                Declaration::Stage(stage) => {
                    let expr = self.stage(stage);
                    self.program.values.push(CheckedValue {
                        name: name.clone(),
                        kind: ValueKind::Stage,
                        expr,
                        span: stage.span,
                    });
                }
            }
        }
    }

    fn stage(&mut self, stage: &ast::StageDecl) -> TypedExpr {
        let mut labels: HashMap<&str, Span> = HashMap::new();
        let mut arms = Vec::new();
        for arm in &stage.arms {
            if let Some(first) = labels.get(arm.label.name.as_str()) {
                let first = *first;
                self.report(
                    Diagnostic::error(
                        "E0106",
                        format!("stage label `{}` is used twice in `{}`", arm.label.name, stage.name.name),
                    )
                    .with_label(arm.label.span, "second use")
                    .with_secondary(first, "first used here")
                    .with_help("a profile gets the first label whose condition is true, so the second can never apply: remove or rename it"),
                );
            }
            labels.insert(&arm.label.name, arm.label.span);
            let condition = self.expr(&arm.expr, &Ctx::default());
            self.expect_type(
                &condition,
                &Type::Bool,
                "E0210",
                "each stage label needs a condition",
            );
            arms.push((arm.label.name.clone(), condition));
        }
        let ty = if arms.iter().any(|(_, c)| c.ty == Type::Error) {
            Type::Error
        } else {
            Type::String
        };
        TypedExpr {
            kind: IrExpr::Stage { arms },
            ty,
            span: stage.span,
        }
    }

    /// Reports `code` unless `expr` has type `expected` (or an unknown type).
    fn expect_type(&mut self, expr: &TypedExpr, expected: &Type, code: &'static str, why: &str) {
        if expr.ty.is_unknown() || &expr.ty == expected {
            return;
        }
        let mut diagnostic =
            Diagnostic::error(code, format!("expected {expected}, found {}", expr.ty))
                .with_label(expr.span, format!("this is {}", describe_type(&expr.ty)))
                .with_note(why.to_string());
        if *expected == Type::Bool {
            diagnostic = diagnostic.with_help(match expr.ty {
                Type::Int | Type::Float => "compare it with a number, e.g. `... > 100`",
                Type::String => "compare it with a string, e.g. `... = \"DE\"`",
                Type::Timestamp => "compare it with a time, e.g. `... > 30d ago`",
                _ => "write a condition that is true or false for each profile",
            });
        }
        self.report(diagnostic);
    }

    fn error_expr(span: Span) -> TypedExpr {
        TypedExpr {
            kind: IrExpr::Literal(Value::Null),
            ty: Type::Error,
            span,
        }
    }

    /// Checks an expression.
    fn expr(&mut self, expr: &ast::Expr, ctx: &Ctx<'a>) -> TypedExpr {
        let span = expr.span;
        let typed = |kind: IrExpr, ty: Type| TypedExpr { kind, ty, span };
        match &expr.kind {
            ExprKind::Error => Self::error_expr(span),
            ExprKind::Literal(literal) => {
                let (value, ty) = match literal {
                    Literal::Int(v) => (Value::Int(*v), Type::Int),
                    Literal::Float(v) => (Value::Float(*v), Type::Float),
                    Literal::String(v) => (Value::String(v.clone()), Type::String),
                    Literal::Bool(v) => (Value::Bool(*v), Type::Bool),
                    Literal::Null => (Value::Null, Type::Null),
                    Literal::Duration(d) => (
                        Value::Duration(d.nanoseconds().unwrap_or(0)),
                        Type::Duration,
                    ),
                    Literal::Timestamp(t) => (Value::Timestamp(*t), Type::Timestamp),
                    Literal::Percent(share) => (
                        Value::Float(*share as f64 / ast::PERCENT_SCALE as f64),
                        Type::Float,
                    ),
                };
                typed(IrExpr::Literal(value), ty)
            }
            ExprKind::Now => typed(IrExpr::RelativeTime(0), Type::Timestamp),
            ExprKind::Ago(duration) => typed(
                IrExpr::RelativeTime(-duration.nanoseconds().unwrap_or(0)),
                Type::Timestamp,
            ),
            ExprKind::List(items) => {
                let items: Vec<TypedExpr> = items.iter().map(|i| self.expr(i, ctx)).collect();
                let item_type = self.unify_items(&items, "list items");
                let ty = if item_type == Type::Error {
                    Type::Error
                } else {
                    Type::List(Box::new(item_type))
                };
                typed(IrExpr::List(items), ty)
            }
            ExprKind::Name(ident) => self.name(ident, ctx),
            ExprKind::InSegment(ident) => self.in_segment(ident, ctx),
            ExprKind::Call { function, args } => self.call(function, args, span, ctx),
            ExprKind::Member { base, column } => {
                let base_is_event = self.event_of(base).is_some();
                let message = if base_is_event {
                    format!("event column `{}` used outside an aggregate", column.name)
                } else {
                    "`.` is only for event columns, such as `purchased.amount`".to_string()
                };
                let mut diagnostic = Diagnostic::error("E0203", message)
                    .with_label(span, "a single profile cannot have one value here");
                if let (true, Some(event)) = (base_is_event, self.event_of(base)) {
                    diagnostic = diagnostic.with_help(format!(
                        "wrap it in an aggregate, e.g. `sum({event}.{col})`, `max({event}.{col})` or `last({event}.{col})`",
                        col = column.name
                    ));
                }
                self.report(diagnostic);
                Self::error_expr(span)
            }
            ExprKind::Negate(inner) => {
                let inner = self.expr(inner, ctx);
                let ty = match &inner.ty {
                    t if t.is_numeric() || *t == Type::Duration || t.is_unknown() => {
                        inner.ty.clone()
                    }
                    other => {
                        self.report(
                            Diagnostic::error(
                                "E0201",
                                format!("cannot negate {}", describe_type(other)),
                            )
                            .with_label(inner.span, format!("this is {other}"))
                            .with_help("`-` applies to numbers and durations"),
                        );
                        Type::Error
                    }
                };
                typed(IrExpr::Negate(Box::new(inner)), ty)
            }
            ExprKind::Not(inner) => {
                let inner = self.expr(inner, ctx);
                let ty = self.bool_operand(&inner, "not");
                typed(IrExpr::Not(Box::new(inner)), ty)
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let lhs = self.expr(lhs, ctx);
                let rhs = self.expr(rhs, ctx);
                let ty = self.binary_type(*op, &lhs, &rhs, span);
                typed(
                    IrExpr::Binary {
                        op: *op,
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                    },
                    ty,
                )
            }
            ExprKind::Between { expr, low, high } => {
                let value = self.expr(expr, ctx);
                let low = self.expr(low, ctx);
                let high = self.expr(high, ctx);
                let ok_low = self.comparable(&value, &low, "between");
                let ok_high = self.comparable(&value, &high, "between");
                let ty = if ok_low && ok_high {
                    Type::Bool
                } else {
                    Type::Error
                };
                typed(
                    IrExpr::Between {
                        expr: Box::new(value),
                        low: Box::new(low),
                        high: Box::new(high),
                    },
                    ty,
                )
            }
            ExprKind::In { expr, set, negated } => self.in_expr(expr, set, *negated, span, ctx),
            ExprKind::Has {
                expr,
                quantifier,
                set,
            } => {
                let array = self.expr(expr, ctx);
                let items = self.list_literal(set, ctx, "has");
                let mut ty = Type::Bool;
                match (&array.ty, &items) {
                    (Type::List(item), Some((items, item_ty))) => {
                        if !item.comparable_with(item_ty) {
                            ty = Type::Error;
                            self.report(
                                Diagnostic::error(
                                    "E0201",
                                    format!("`has` compares list<{item}> with a list of {item_ty}"),
                                )
                                .with_label(set.span, format!("these are {item_ty}"))
                                .with_secondary(array.span, format!("this is list<{item}>")),
                            );
                        }
                        let _ = items;
                    }
                    (t, _) if t.is_unknown() => ty = Type::Error,
                    (other, _) => {
                        ty = Type::Error;
                        self.report(
                            Diagnostic::error("E0201", format!("`has` needs a list on its left, found {other}"))
                                .with_label(array.span, format!("this is {other}"))
                                .with_help("to test one value against several, write `value in [\"a\", \"b\"]`"),
                        );
                    }
                }
                let items = items.map(|(items, _)| items).unwrap_or_default();
                typed(
                    IrExpr::Has {
                        array: Box::new(array),
                        quantifier: *quantifier,
                        items,
                    },
                    ty,
                )
            }
            ExprKind::IsNull { expr, negated } => {
                let inner = self.expr(expr, ctx);
                let ty = if inner.ty == Type::Error {
                    Type::Error
                } else {
                    Type::Bool
                };
                typed(
                    IrExpr::IsNull {
                        expr: Box::new(inner),
                        negated: *negated,
                    },
                    ty,
                )
            }
            ExprKind::StringTest { op, expr, pattern } => {
                let value = self.expr(expr, ctx);
                let pattern_typed = self.expr(pattern, ctx);
                let mut ty = Type::Bool;
                for (operand, role) in [(&value, "left"), (&pattern_typed, "right")] {
                    if operand.ty.is_unknown() {
                        if operand.ty == Type::Error {
                            ty = Type::Error;
                        }
                    } else if operand.ty != Type::String {
                        ty = Type::Error;
                        self.report(
                            Diagnostic::error(
                                "E0201",
                                format!(
                                    "`{}` needs strings, found {} on the {role}",
                                    op.keyword(),
                                    operand.ty
                                ),
                            )
                            .with_label(operand.span, format!("this is {}", operand.ty))
                            .with_help("convert numbers with a comparison instead, e.g. `x = 5`"),
                        );
                    }
                }
                if *op == StringOp::Matches {
                    match &pattern_typed.kind {
                        IrExpr::Literal(Value::String(regex)) => {
                            if let Err(error) = regex::Regex::new(regex) {
                                ty = Type::Error;
                                let detail = error.to_string();
                                let last = detail
                                    .lines()
                                    .last()
                                    .unwrap_or("invalid")
                                    .trim()
                                    .to_string();
                                self.report(
                                    Diagnostic::error("E0208", format!("invalid regular expression: {last}"))
                                        .with_label(pattern_typed.span, "this pattern does not compile")
                                        .with_help("patterns use the syntax of Rust's `regex` crate; escape special characters with `\\\\`"),
                                );
                            }
                        }
                        _ if pattern_typed.ty == Type::Error => {}
                        _ => {
                            ty = Type::Error;
                            self.report(
                                Diagnostic::error("E0208", "`matches` needs a string literal pattern")
                                    .with_label(pattern_typed.span, "not a literal")
                                    .with_help("write the pattern in the query, e.g. `email matches \"@example\\\\.com$\"`"),
                            );
                        }
                    }
                }
                typed(
                    IrExpr::StringTest {
                        op: *op,
                        expr: Box::new(value),
                        pattern: Box::new(pattern_typed),
                    },
                    ty,
                )
            }
            ExprKind::Window { expr, window } => self.window(expr, window, span, ctx),
            ExprKind::Occurrence { last, set } => self.occurrence(*last, set, span, ctx),
            ExprKind::Sequence { first, steps } => self.sequence(first, steps, span, ctx),
            ExprKind::Top { amount, by } => {
                let kind = match amount {
                    ast::TopAmount::Count(n) => RankKind::Top(*n),
                    ast::TopAmount::Share(share) => RankKind::TopShare(*share),
                };
                self.ranking(kind, by, span, ctx)
            }
        }
    }

    fn unify_items(&mut self, items: &[TypedExpr], what: &str) -> Type {
        let mut item_type = Type::Null;
        for item in items {
            match item_type.unify(&item.ty) {
                Some(t) => item_type = t,
                None => {
                    self.report(
                        Diagnostic::error(
                            "E0201",
                            format!("{what} mix {item_type} and {}", item.ty),
                        )
                        .with_label(item.span, format!("this is {}", item.ty))
                        .with_help(format!("make every item {item_type}")),
                    );
                    return Type::Error;
                }
            }
        }
        item_type
    }

    fn list_literal(
        &mut self,
        set: &ast::Expr,
        ctx: &Ctx<'a>,
        operator: &str,
    ) -> Option<(Vec<TypedExpr>, Type)> {
        match &set.kind {
            ExprKind::List(items) => {
                let items: Vec<TypedExpr> = items.iter().map(|i| self.expr(i, ctx)).collect();
                let item_type = self.unify_items(&items, "list items");
                Some((items, item_type))
            }
            _ => {
                self.report(
                    Diagnostic::error(
                        "E0201",
                        format!("`{operator}` needs a list literal on its right"),
                    )
                    .with_label(set.span, "not a list")
                    .with_help(format!(
                        "write the values in brackets, e.g. `{operator} [\"a\", \"b\"]`"
                    )),
                );
                None
            }
        }
    }

    fn in_expr(
        &mut self,
        expr: &ast::Expr,
        set: &ast::Expr,
        negated: bool,
        span: Span,
        ctx: &Ctx<'a>,
    ) -> TypedExpr {
        let value = self.expr(expr, ctx);
        if let ExprKind::List(_) = set.kind {
            let (items, item_type) = self
                .list_literal(set, ctx, "in")
                .unwrap_or((Vec::new(), Type::Error));
            let mut ty = Type::Bool;
            if item_type == Type::Error || value.ty == Type::Error {
                ty = Type::Error;
            } else if !value.ty.comparable_with(&item_type) {
                ty = Type::Error;
                self.report(
                    Diagnostic::error(
                        "E0201",
                        format!("cannot look for {} in a list of {item_type}", value.ty),
                    )
                    .with_label(value.span, format!("this is {}", value.ty))
                    .with_secondary(set.span, format!("these are {item_type}")),
                );
            }
            return TypedExpr {
                kind: IrExpr::InList {
                    expr: Box::new(value),
                    items,
                    negated,
                },
                ty,
                span,
            };
        }
        let array = self.expr(set, ctx);
        let ty = match &array.ty {
            Type::List(item) if value.ty.comparable_with(item) => Type::Bool,
            Type::List(item) => {
                self.report(
                    Diagnostic::error(
                        "E0201",
                        format!("cannot look for {} in list<{item}>", value.ty),
                    )
                    .with_label(value.span, format!("this is {}", value.ty))
                    .with_secondary(array.span, format!("this is list<{item}>")),
                );
                Type::Error
            }
            t if t.is_unknown() => Type::Error,
            other => {
                let mut diagnostic = Diagnostic::error(
                    "E0201",
                    format!("`in` needs a list on its right, found {other}"),
                )
                .with_label(array.span, format!("this is {other}"));
                diagnostic = if let ExprKind::Name(name) = &set.kind
                    && matches!(
                        self.declarations.get(name.name.as_str()),
                        Some(Declaration::Segment(_))
                    ) {
                    diagnostic.with_help(format!(
                        "to test membership of segment `{0}`, write `in {0}` on its own",
                        name.name
                    ))
                } else {
                    diagnostic
                        .with_help("write a list such as `[\"DE\", \"AT\"]` or use a list column")
                };
                self.report(diagnostic);
                Type::Error
            }
        };
        TypedExpr {
            kind: IrExpr::InArray {
                expr: Box::new(value),
                array: Box::new(array),
                negated,
            },
            ty,
            span,
        }
    }

    fn bool_operand(&mut self, operand: &TypedExpr, operator: &str) -> Type {
        match &operand.ty {
            Type::Bool | Type::Null => Type::Bool,
            Type::Error => Type::Error,
            other => {
                self.report(
                    Diagnostic::error(
                        "E0201",
                        format!("`{operator}` needs conditions, found {other}"),
                    )
                    .with_label(operand.span, format!("this is {}", describe_type(other)))
                    .with_help("turn it into a condition with a comparison, e.g. `... > 0`"),
                );
                Type::Error
            }
        }
    }

    fn comparable(&mut self, lhs: &TypedExpr, rhs: &TypedExpr, operator: &str) -> bool {
        if lhs.ty == Type::Error || rhs.ty == Type::Error {
            return false;
        }
        if lhs.ty.comparable_with(&rhs.ty) && !matches!(lhs.ty, Type::List(_)) {
            return true;
        }
        let help = match (&lhs.ty, &rhs.ty) {
            (Type::Timestamp, Type::Duration) | (Type::Duration, Type::Timestamp) => {
                "to compare a time with a duration before now, write `... > 30d ago`"
            }
            (Type::String, t) | (t, Type::String) if t.is_numeric() => {
                "numbers and strings do not compare: drop the quotes around the number, or quote both"
            }
            (Type::List(_), _) | (_, Type::List(_)) => {
                "test list membership with `value in list_column` or `list_column has any [..]`"
            }
            _ => "compare values of the same type",
        };
        self.report(
            Diagnostic::error(
                "E0201",
                format!(
                    "cannot compare {} with {} using `{operator}`",
                    lhs.ty, rhs.ty
                ),
            )
            .with_label(rhs.span, format!("this is {}", rhs.ty))
            .with_secondary(lhs.span, format!("this is {}", lhs.ty))
            .with_help(help),
        );
        false
    }

    fn binary_type(&mut self, op: BinaryOp, lhs: &TypedExpr, rhs: &TypedExpr, span: Span) -> Type {
        use BinaryOp::*;
        match op {
            And | Or => {
                let l = self.bool_operand(lhs, op.symbol());
                let r = self.bool_operand(rhs, op.symbol());
                if l == Type::Error || r == Type::Error {
                    Type::Error
                } else {
                    Type::Bool
                }
            }
            Eq | NotEq | Lt | LtEq | Gt | GtEq => {
                if self.comparable(lhs, rhs, op.symbol()) {
                    Type::Bool
                } else {
                    Type::Error
                }
            }
            Add | Sub | Mul | Div | Rem => {
                if lhs.ty == Type::Error || rhs.ty == Type::Error {
                    return Type::Error;
                }
                let result = match (op, &lhs.ty, &rhs.ty) {
                    (_, Type::Null, t) | (_, t, Type::Null) if t.is_numeric() || t.is_unknown() => {
                        Some(if op == Div { Type::Float } else { t.clone() })
                    }
                    (Div, a, b) if a.is_numeric() && b.is_numeric() => Some(Type::Float),
                    (_, Type::Int, Type::Int) => Some(Type::Int),
                    (_, a, b) if a.is_numeric() && b.is_numeric() => Some(Type::Float),
                    (Add | Sub, Type::Timestamp, Type::Duration) => Some(Type::Timestamp),
                    (Add, Type::Duration, Type::Timestamp) => Some(Type::Timestamp),
                    (Sub, Type::Timestamp, Type::Timestamp) => Some(Type::Duration),
                    (Add | Sub, Type::Duration, Type::Duration) => Some(Type::Duration),
                    _ => None,
                };
                result.unwrap_or_else(|| {
                    let help = match (&lhs.ty, &rhs.ty) {
                        (Type::Timestamp, Type::Timestamp) => "timestamps can be subtracted, not added",
                        (Type::String, _) | (_, Type::String) => "arithmetic works on numbers, timestamps and durations, not strings",
                        _ => "arithmetic works on numbers; timestamps and durations support `+` and `-`",
                    };
                    self.report(
                        Diagnostic::error("E0201", format!("cannot apply `{}` to {} and {}", op.symbol(), lhs.ty, rhs.ty))
                            .with_label(span, format!("{} {} {}", lhs.ty, op.symbol(), rhs.ty))
                            .with_help(help),
                    );
                    Type::Error
                })
            }
        }
    }

    fn name(&mut self, ident: &ast::Ident, ctx: &Ctx<'a>) -> TypedExpr {
        let span = ident.span;
        if let Some(event) = ctx.event {
            return self.event_column_in_filter(ident, event);
        }
        let declaration = self.declarations.get(ident.name.as_str()).copied();
        let column = self.catalog.profiles.column(&ident.name);
        let event = self.catalog.event(&ident.name);
        let mut meanings = Vec::new();
        if let Some(d) = declaration {
            meanings.push((format!("a {}", d.kind()), d.name().span));
        }
        if column.is_some() {
            meanings.push(("a profile column".to_string(), span));
        }
        if event.is_some() {
            meanings.push(("an event table".to_string(), span));
        }
        if meanings.len() > 1 {
            let what: Vec<String> = meanings.iter().map(|(m, _)| m.clone()).collect();
            let mut diagnostic = Diagnostic::error(
                "E0105",
                format!(
                    "`{}` is ambiguous: it is {}",
                    ident.name,
                    what.join(" and ")
                ),
            )
            .with_label(span, "ambiguous name")
            .with_help(format!(
                "rename the definition of `{}` so it differs from the catalog",
                ident.name
            ));
            if let Some(d) = declaration {
                diagnostic = diagnostic.with_secondary(d.name().span, "defined here");
            }
            self.report(diagnostic);
            return Self::error_expr(span);
        }
        match (declaration, column, event) {
            (Some(Declaration::Segment(_)), _, _) => {
                self.report(
                    Diagnostic::error(
                        "E0110",
                        format!("`{}` is a segment, not a value", ident.name),
                    )
                    .with_label(span, "segment used as a value")
                    .with_help(format!("test membership with `in {}`", ident.name)),
                );
                Self::error_expr(span)
            }
            (Some(declaration @ (Declaration::Metric(_) | Declaration::Stage(_))), _, _) => {
                self.inline(declaration, span, ctx)
            }
            (None, Some(column), _) => match &column.ty {
                Some(ty) => TypedExpr {
                    kind: IrExpr::ProfileColumn(column.name.clone()),
                    ty: ty.clone(),
                    span,
                },
                None => {
                    self.report(unsupported_column(column, span));
                    Self::error_expr(span)
                }
            },
            (None, None, Some(_)) => {
                self.measure_for_event_set(&ident.name, None, span, ctx, Aggregate::Exists, None)
            }
            (None, None, None) => {
                let mut candidates: Vec<&str> = self.declarations.keys().copied().collect();
                candidates.extend(
                    self.catalog
                        .profiles
                        .columns
                        .iter()
                        .map(|c| c.name.as_str()),
                );
                candidates.extend(self.catalog.events.iter().map(|e| e.name.as_str()));
                let mut diagnostic =
                    Diagnostic::error("E0101", format!("unknown name `{}`", ident.name))
                        .with_label(span, "not a metric, stage, profile column or event");
                diagnostic = diagnostic.with_suggestion(&ident.name, candidates, || {
                    format!(
                        "profile columns are {}",
                        list_names(
                            self.catalog
                                .profiles
                                .columns
                                .iter()
                                .map(|c| c.name.as_str()),
                            12
                        )
                    )
                });
                self.report(diagnostic);
                Self::error_expr(span)
            }
        }
    }

    fn event_column_in_filter(&mut self, ident: &ast::Ident, event: &TableSchema) -> TypedExpr {
        let span = ident.span;
        if let Some(column) = event.column(&ident.name) {
            return match &column.ty {
                Some(ty) => TypedExpr {
                    kind: IrExpr::EventColumn(column.name.clone()),
                    ty: ty.clone(),
                    span,
                },
                None => {
                    self.report(unsupported_column(column, span));
                    Self::error_expr(span)
                }
            };
        }
        let is_profile = self.catalog.profiles.column(&ident.name).is_some()
            || self.declarations.contains_key(ident.name.as_str());
        let diagnostic = if is_profile {
            Diagnostic::error(
                "E0109",
                format!("`{}` is not a column of `{}`; an event filter sees only that table's columns", ident.name, event.name),
            )
            .with_label(span, "not an event column")
            .with_help(format!(
                "move the condition outside the event set, e.g. `{}(...) and {} ...`; columns of `{}` are {}",
                event.name,
                ident.name,
                event.name,
                list_names(event.columns.iter().map(|c| c.name.as_str()), 12)
            ))
        } else {
            unknown_event_column(event, ident)
        };
        self.report(diagnostic);
        Self::error_expr(span)
    }

    /// Checks a referenced definition at the use site, reporting nothing (its own check reports).
    /// Checks a referenced definition at the use site, reporting nothing (its own check
    /// reports). Metrics are open to the use's window; segments and stages are closed.
    fn inline(&mut self, declaration: &'a Declaration, span: Span, ctx: &Ctx<'a>) -> TypedExpr {
        let name = &declaration.name().name;
        if self.in_cycle.contains(name) {
            return Self::error_expr(span);
        }
        let open = matches!(declaration, Declaration::Metric(_));
        let window = if open {
            ctx.window.map(|i| self.windows[i].window)
        } else {
            None
        };
        let key = (name.to_string(), window);
        if let Some((expr, binds_window, failed)) = self.inline_cache.get(&key).cloned() {
            if binds_window && let Some(i) = ctx.window {
                self.windows[i].uses += 1;
            }
            return if failed { Self::error_expr(span) } else { expr };
        }
        let inner_ctx = Ctx {
            window: if open { ctx.window } else { None },
            event: None,
        };
        let uses_before = ctx.window.map(|i| self.windows[i].uses);
        self.quiet += 1;
        let suppressed_before = self.suppressed;
        let expr = match declaration {
            Declaration::Metric(metric) => self.expr(&metric.expr, &inner_ctx),
            Declaration::Segment(segment) => self.expr(&segment.expr, &inner_ctx),
            Declaration::Stage(stage) => self.stage(stage),
        };
        let failed = self.suppressed > suppressed_before || expr.ty == Type::Error;
        self.quiet -= 1;
        let binds_window = ctx.window.map(|i| self.windows[i].uses) != uses_before;
        self.inline_cache
            .insert(key, (expr.clone(), binds_window, failed));
        if failed { Self::error_expr(span) } else { expr }
    }

    fn in_segment(&mut self, ident: &ast::Ident, ctx: &Ctx<'a>) -> TypedExpr {
        let span = ident.span;
        if let Some(event) = ctx.event {
            self.report(
                Diagnostic::error("E0209", format!("`in {}` cannot be used inside a filter of `{}`", ident.name, event.name))
                    .with_label(span, "segment membership inside an event filter")
                    .with_help("an event filter sees only the event's columns: move `in ...` outside the parentheses"),
            );
            return Self::error_expr(span);
        }
        match self.declarations.get(ident.name.as_str()).copied() {
            Some(declaration @ Declaration::Segment(_)) => {
                // Membership is two-valued: a profile whose condition is null is not a member,
                // so `not in x` holds for it.
                let condition = self.inline(declaration, span, ctx);
                let ty = if condition.ty == Type::Error {
                    Type::Error
                } else {
                    Type::Bool
                };
                TypedExpr {
                    kind: IrExpr::IsTrue(Box::new(condition)),
                    ty,
                    span,
                }
            }
            Some(other) => {
                self.report(
                    Diagnostic::error(
                        "E0110",
                        format!(
                            "`in` takes a segment, but `{}` is a {}",
                            ident.name,
                            other.kind()
                        ),
                    )
                    .with_label(span, format!("a {}", other.kind()))
                    .with_secondary(other.name().span, "defined here")
                    .with_help(if other.kind() == "stage" {
                        format!(
                            "compare the stage with a label, e.g. `{} = \"active\"`",
                            ident.name
                        )
                    } else {
                        format!("use the metric in a comparison, e.g. `{} > 0`", ident.name)
                    }),
                );
                Self::error_expr(span)
            }
            None => {
                let segments: Vec<&str> = self
                    .declarations
                    .iter()
                    .filter(|(_, d)| matches!(d, Declaration::Segment(_)))
                    .map(|(n, _)| *n)
                    .collect();
                let mut diagnostic =
                    Diagnostic::error("E0104", format!("unknown segment `{}`", ident.name))
                        .with_label(span, "no segment of this name");
                diagnostic =
                    diagnostic.with_suggestion(&ident.name, segments.iter().copied(), || {
                        let mut sorted = segments.clone();
                        sorted.sort();
                        format!("known segments are {}", list_names(sorted, 10))
                    });
                self.report(diagnostic);
                Self::error_expr(span)
            }
        }
    }

    fn window(
        &mut self,
        inner: &ast::Expr,
        window: &ast::Window,
        span: Span,
        ctx: &Ctx<'a>,
    ) -> TypedExpr {
        let window_value = self.window_bounds(window);
        let Some(window_value) = window_value else {
            let _ = self.expr(inner, ctx);
            return Self::error_expr(span);
        };
        self.warn_if_contradiction(inner, span);
        if ctx.event.is_some() {
            self.report(
                Diagnostic::error("E0206", "a window cannot be used inside an event filter")
                    .with_label(span, "window inside a filter")
                    .with_help("put the window after the event set: `purchased(category = \"x\") within 30d`"),
            );
            return Self::error_expr(span);
        }
        self.windows.push(WindowFrame {
            window: window_value,
            uses: 0,
        });
        let index = self.windows.len() - 1;
        let inner_ctx = Ctx {
            window: Some(index),
            event: None,
        };
        let typed = self.expr(inner, &inner_ctx);
        if self.windows[index].uses == 0 && typed.ty != Type::Error {
            self.report(
                Diagnostic::warning("W0001", "this window has no event set to apply to")
                    .with_label(span, "window without events")
                    .with_note("a window limits event sets such as `purchased` or `count(viewed)`; profile columns and referenced segments are not affected")
                    .with_help("remove the window, or move it next to the event set it is meant for"),
            );
        }
        // The window's frame is kept so later measures with it can still be counted.
        typed
    }

    /// `purchased and not purchased within 180d` windows both sides, so it is never true;
    /// the author almost always meant `purchased and not (purchased within 180d)`.
    fn warn_if_contradiction(&mut self, inner: &ast::Expr, window_span: Span) {
        let ExprKind::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } = &inner.kind
        else {
            return;
        };
        let ExprKind::Not(negated) = &rhs.kind else {
            return;
        };
        let same = self.event_of(lhs).is_some()
            && ir::same_ignoring_spans(&format!("{lhs:?}"), &format!("{negated:?}"));
        if same {
            self.report(
                Diagnostic::warning("W0002", "this condition can never be true")
                    .with_label(inner.span, "both sides are limited by the same window")
                    .with_secondary(
                        Span::new(window_span.file, inner.span.end, window_span.end),
                        "this window applies to both event sets",
                    )
                    .with_note("a window binds everything to its left, so this asks for events that exist and do not exist in the same period")
                    .with_help("to window only the negated part, add parentheses: `... and not (... within ...)`"),
            );
        }
    }

    /// The window's bounds, or `None` after reporting why they are not constant times.
    fn window_bounds(&mut self, window: &ast::Window) -> Option<TimeWindow> {
        match window {
            ast::Window::Within(length) => match self.constant_time(length)? {
                ConstTime::Duration(d) if d > 0 => Some(TimeWindow {
                    start: Some(TimePoint::FromNow(-d)),
                    end: None,
                }),
                ConstTime::Duration(_) => {
                    self.report(
                        Diagnostic::error("E0206", "a window must be longer than zero")
                            .with_label(length.span, "not a positive duration")
                            .with_help("write a positive duration such as `within 30d`"),
                    );
                    None
                }
                ConstTime::Point(_) => {
                    self.report(
                        Diagnostic::error("E0206", "`within` takes a duration or a range of times")
                            .with_label(length.span, "a single time")
                            .with_help("write `since 1997-06-01` for everything after a time, or `within 1997-01-01 .. 1997-04-01` for a range"),
                    );
                    None
                }
            },
            ast::Window::Since(start) => match self.constant_time(start)? {
                ConstTime::Point(point) => Some(TimeWindow {
                    start: Some(point),
                    end: None,
                }),
                ConstTime::Duration(_) => {
                    self.report(
                        Diagnostic::error("E0206", "`since` takes a time, not a duration")
                            .with_label(start.span, "a duration")
                            .with_help("write `since 30d ago`, or `within 30d`"),
                    );
                    None
                }
            },
            ast::Window::Range(start, end) => {
                let start_value = self.constant_time(start);
                let end_value = self.constant_time(end);
                match (start_value?, end_value?) {
                    (ConstTime::Point(a), ConstTime::Point(b)) => {
                        if let (TimePoint::Absolute(x), TimePoint::Absolute(y)) = (a, b)
                            && x >= y
                        {
                            self.report(
                                Diagnostic::error("E0206", "the range ends before it starts")
                                    .with_label(start.span.to(end.span), "empty range")
                                    .with_help(
                                        "write the earlier time first: `within START .. END`",
                                    ),
                            );
                            return None;
                        }
                        Some(TimeWindow {
                            start: Some(a),
                            end: Some(b),
                        })
                    }
                    _ => {
                        self.report(
                            Diagnostic::error("E0206", "a range window needs two times")
                                .with_label(start.span.to(end.span), "not two times")
                                .with_help("write `within 1997-01-01 .. 1997-04-01`"),
                        );
                        None
                    }
                }
            }
        }
    }

    /// Evaluates a window argument that must be known before any data is read.
    fn constant_time(&mut self, expr: &ast::Expr) -> Option<ConstTime> {
        let typed = self.expr(expr, &Ctx::default());
        if typed.ty == Type::Error {
            return None;
        }
        let value = fold_time(&typed);
        if value.is_none() {
            self.report(
                Diagnostic::error("E0206", "a window needs a fixed duration or time")
                    .with_label(
                        expr.span,
                        format!("this is {}, not a constant", describe_type(&typed.ty)),
                    )
                    .with_help(
                        "write a duration such as `30d`, a date such as `1997-06-01`, or `90d ago`",
                    ),
            );
        }
        value
    }

    fn call(
        &mut self,
        function: &ast::Ident,
        args: &[ast::Argument],
        span: Span,
        ctx: &Ctx<'a>,
    ) -> TypedExpr {
        let name = function.name.as_str();
        if self.catalog.event(name).is_some() {
            if let Some(event) = ctx.event {
                self.report(
                    Diagnostic::error(
                        "E0209",
                        format!(
                            "event set `{name}` cannot be used inside a filter of `{}`",
                            event.name
                        ),
                    )
                    .with_label(span, "event set inside an event filter")
                    .with_help("combine event sets with `and` outside the parentheses"),
                );
                return Self::error_expr(span);
            }
            return match self.event_filter(name, args, span) {
                Some(filter) => {
                    self.measure_for_event_set(name, filter, span, ctx, Aggregate::Exists, None)
                }
                None => Self::error_expr(span),
            };
        }
        if let Some(aggregate) = Aggregate::from_name(name) {
            if let Some(event) = ctx.event {
                self.report(
                    Diagnostic::error("E0209", format!("aggregate `{name}` cannot be used inside a filter of `{}`", event.name))
                        .with_label(span, "aggregate inside an event filter")
                        .with_help("an event filter tests one event at a time; compare the aggregate outside the parentheses"),
                );
                return Self::error_expr(span);
            }
            return match aggregate {
                // Its period is a second argument.
                Aggregate::ActivePeriods(_) => self.active_periods(function, args, span, ctx),
                _ => self.aggregate(aggregate, function, args, span, ctx),
            };
        }
        if let Some(f) = Function::from_name(name) {
            return self.function(f, args, span, ctx);
        }
        if let Some(result) = self.population_call(name, args, span, ctx) {
            return result;
        }
        let mut candidates: Vec<&str> = Function::ALL.iter().map(|f| f.name()).collect();
        candidates.extend(population::FUNCTIONS);
        candidates.extend(Aggregate::NAMES);
        candidates.extend(self.catalog.events.iter().map(|e| e.name.as_str()));
        let mut diagnostic = Diagnostic::error("E0108", format!("unknown function `{name}`"))
            .with_label(function.span, "not a function, aggregate or event");
        diagnostic = diagnostic.with_suggestion(name, candidates, || {
            format!(
                "functions are {}; aggregates are {}",
                list_names(
                    Function::ALL
                        .iter()
                        .map(|f| f.name())
                        .chain(population::FUNCTIONS),
                    20
                ),
                list_names(Aggregate::NAMES, 10)
            )
        });
        self.report(diagnostic);
        for arg in args {
            self.quiet += 1;
            let _ = self.expr(&arg.expr, ctx);
            self.quiet -= 1;
        }
        Self::error_expr(span)
    }
}

/// E0103 for a name that is not a column of `event`.
fn unknown_event_column(event: &TableSchema, ident: &ast::Ident) -> Diagnostic {
    let columns = event.columns.iter().map(|c| c.name.as_str());
    Diagnostic::error(
        "E0103",
        format!("`{}` has no column `{}`", event.name, ident.name),
    )
    .with_label(ident.span, "unknown event column")
    .with_suggestion(&ident.name, columns.clone(), || {
        format!(
            "columns of `{}` are {}",
            event.name,
            list_names(columns, 12)
        )
    })
}

/// E0207 for a column whose source type has no SegQL type.
fn unsupported_column(column: &crate::catalog::ColumnSchema, span: Span) -> Diagnostic {
    Diagnostic::error(
        "E0207",
        format!(
            "column `{}` has type {}, which SegQL cannot use",
            column.name, column.source_type
        ),
    )
    .with_label(span, "unsupported type")
    .with_help(
        "declare a supported type for it under `columns` in segql.toml, or use another column",
    )
}

/// A constant used as a window bound.
enum ConstTime {
    Duration(i64),
    Point(TimePoint),
}

fn fold_time(expr: &TypedExpr) -> Option<ConstTime> {
    match &expr.kind {
        IrExpr::Literal(Value::Duration(d)) => Some(ConstTime::Duration(*d)),
        IrExpr::Literal(Value::Timestamp(t)) => Some(ConstTime::Point(TimePoint::Absolute(*t))),
        IrExpr::RelativeTime(offset) => Some(ConstTime::Point(TimePoint::FromNow(*offset))),
        IrExpr::Negate(inner) => match fold_time(inner)? {
            ConstTime::Duration(d) => Some(ConstTime::Duration(d.checked_neg()?)),
            ConstTime::Point(_) => None,
        },
        IrExpr::Binary { op, lhs, rhs } => {
            let (l, r) = (fold_time(lhs)?, fold_time(rhs)?);
            let shift = |point: TimePoint, by: i64| -> Option<TimePoint> {
                Some(match point {
                    TimePoint::Absolute(t) => TimePoint::Absolute(t.checked_add(by)?),
                    TimePoint::FromNow(t) => TimePoint::FromNow(t.checked_add(by)?),
                })
            };
            match (op, l, r) {
                (BinaryOp::Add, ConstTime::Duration(a), ConstTime::Duration(b)) => {
                    Some(ConstTime::Duration(a.checked_add(b)?))
                }
                (BinaryOp::Sub, ConstTime::Duration(a), ConstTime::Duration(b)) => {
                    Some(ConstTime::Duration(a.checked_sub(b)?))
                }
                (BinaryOp::Add, ConstTime::Point(p), ConstTime::Duration(d))
                | (BinaryOp::Add, ConstTime::Duration(d), ConstTime::Point(p)) => {
                    Some(ConstTime::Point(shift(p, d)?))
                }
                (BinaryOp::Sub, ConstTime::Point(p), ConstTime::Duration(d)) => {
                    Some(ConstTime::Point(shift(p, d.checked_neg()?)?))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// "a number", "a string", ... for messages.
pub fn describe_type(ty: &Type) -> String {
    match ty {
        Type::Bool => "a condition (bool)".into(),
        Type::Int => "a number (int)".into(),
        Type::Float => "a number (float)".into(),
        Type::String => "a string".into(),
        Type::Timestamp => "a timestamp".into(),
        Type::Duration => "a duration".into(),
        Type::List(item) => format!("a list<{item}>"),
        Type::Null => "null".into(),
        Type::Error => "invalid".into(),
    }
}
