//! Sequences: `added_to_cart then purchased within 1h`, checked into a [`Sequence`] with
//! its steps' filters, gaps and the names that correlate a column across steps.

use std::collections::HashMap;

use super::ir::*;
use super::{Checker, ConstTime, Ctx};
use crate::catalog::TableSchema;
use crate::diagnostic::{Diagnostic, Span};
use crate::syntax::ast::{self, ExprKind};

const USAGE: &str = "write steps as `added_to_cart then purchased within 1h`: event sets, each `within` bounding the time since the previous step, and `then not EVENT within GAP` as the last step for a drop-off";

/// A step as written, the first one included.
struct WrittenStep<'e> {
    negated: bool,
    event: &'e ast::Expr,
    gap: Option<&'e ast::Expr>,
    span: Span,
}

/// `column = name` in a step's filter, where `name` is not a column of the step's table.
struct WrittenCorrelation {
    column: String,
    name: String,
    span: Span,
}

/// A name bound by a step: the bound column's type and where it was bound.
struct Binding {
    ty: Type,
    span: Span,
    used: bool,
}

impl<'a> Checker<'a> {
    pub(super) fn sequence(
        &mut self,
        first: &ast::Expr,
        steps: &[ast::SequenceStep],
        span: Span,
        ctx: &Ctx<'a>,
    ) -> TypedExpr {
        if self.outside_profiles("... then ...", span, ctx) {
            return Self::error_expr(span);
        }
        let window = match ctx.window {
            Some(i) => {
                self.windows[i].uses += 1;
                self.windows[i].window
            }
            None => TimeWindow::default(),
        };
        let written: Vec<WrittenStep> = std::iter::once(WrittenStep {
            negated: false,
            event: first,
            gap: None,
            span: first.span,
        })
        .chain(steps.iter().map(|s| WrittenStep {
            negated: s.negated,
            event: &s.event,
            gap: s.gap.as_deref(),
            span: s.span,
        }))
        .collect();
        let mut bindings: HashMap<String, Binding> = HashMap::new();
        let mut checked = Vec::new();
        let mut failed = false;
        for (index, step) in written.iter().enumerate() {
            match self.sequence_step(step, index + 1 == written.len(), &mut bindings) {
                Some(step) => checked.push(step),
                None => failed = true,
            }
        }
        let mut unused: Vec<(&String, &Binding)> =
            bindings.iter().filter(|(_, b)| !b.used).collect();
        unused.sort_by_key(|(_, b)| b.span.start);
        for (name, binding) in unused {
            self.report(
                Diagnostic::warning("W0003", format!("`{name}` is bound but no later step uses it"))
                    .with_label(binding.span, "bound here")
                    .with_note("a name in a step's filter, as in `viewed(product = p)`, takes the column's value so a later step can require the same value")
                    .with_help(format!("compare it in a later step, e.g. `then purchased(product = {name})`, or remove it")),
            );
        }
        if failed {
            return Self::error_expr(span);
        }
        let id = self.program.intern_sequence(Sequence {
            steps: checked,
            window,
        });
        TypedExpr {
            kind: IrExpr::Sequence(id),
            ty: Type::Bool,
            span,
        }
    }

    /// One step, or `None` after reporting why it is invalid.
    fn sequence_step(
        &mut self,
        step: &WrittenStep,
        is_last: bool,
        bindings: &mut HashMap<String, Binding>,
    ) -> Option<SequenceStep> {
        let error = |message: String, at: Span, label: &str| {
            Diagnostic::error("E0214", message)
                .with_label(at, label.to_string())
                .with_help(USAGE)
        };
        let Some(event) = self.event_of(step.event) else {
            self.report(error(
                "a step of a sequence must be an event set".to_string(),
                step.event.span,
                "not an event table or an event table with a filter",
            ));
            return None;
        };
        let table = self.catalog.event(&event)?;
        let mut valid = true;
        if step.negated && !is_last {
            self.report(
                error(
                    "only the last step of a sequence can be negated".to_string(),
                    step.span,
                    "a negated step in the middle",
                )
                .with_help("a drop-off ends a sequence: end it there, and write what must come before it as earlier steps, e.g. `viewed then added_to_cart within 1h then not purchased within 24h`"),
            );
            valid = false;
        }
        let gap = match step.gap {
            None => None,
            Some(gap) => match self.constant_time(gap) {
                Some(ConstTime::Duration(d)) if d > 0 => Some(d),
                Some(_) => {
                    self.report(error(
                        "the gap of a step must be a duration longer than zero".to_string(),
                        gap.span,
                        "not a positive duration",
                    ));
                    return None;
                }
                None => return None,
            },
        };
        let args: &[ast::Argument] = match &step.event.kind {
            ExprKind::Call { args, .. } => args,
            _ => &[],
        };
        let (filter_args, written) = split_correlations(table, args);
        let filter = self.event_filter(&event, &filter_args, step.event.span)?;
        let mut correlations: Vec<Correlation> = Vec::new();
        for correlation in written {
            if correlations.iter().any(|c| c.name == correlation.name) {
                self.report(
                    error(
                        format!("`{}` is named twice in one step", correlation.name),
                        correlation.span,
                        "a second column for the same name",
                    )
                    .with_help("a step binds or compares each name once; compare two columns of one event with `a = b`"),
                );
                valid = false;
                continue;
            }
            let ty = table
                .column(&correlation.column)
                .and_then(|c| c.ty.clone())
                .unwrap_or(Type::Error);
            let binds = match bindings.get_mut(&correlation.name) {
                Some(binding) => {
                    binding.used = true;
                    if ty != binding.ty && !ty.is_unknown() && !binding.ty.is_unknown() {
                        self.report(
                            Diagnostic::error(
                                "E0201",
                                format!(
                                    "`{}` is {} here but {} where it was bound",
                                    correlation.name, ty, binding.ty
                                ),
                            )
                            .with_label(
                                correlation.span,
                                format!("`{}` is {}", correlation.column, ty),
                            )
                            .with_secondary(binding.span, "bound here")
                            .with_help("compare columns of the same type across steps"),
                        );
                        valid = false;
                    }
                    false
                }
                None if step.negated => {
                    self.report(
                        error(
                            format!("`{}` is not bound by an earlier step", correlation.name),
                            correlation.span,
                            "a negated step has no event to bind a value from",
                        )
                        .with_help(format!(
                            "bind `{}` in an earlier step, e.g. `added_to_cart({} = {})`, or compare the column with a value",
                            correlation.name, correlation.column, correlation.name
                        )),
                    );
                    valid = false;
                    false
                }
                None => {
                    bindings.insert(
                        correlation.name.clone(),
                        Binding {
                            ty,
                            span: correlation.span,
                            used: false,
                        },
                    );
                    true
                }
            };
            correlations.push(Correlation {
                column: correlation.column,
                name: correlation.name,
                binds,
            });
        }
        valid.then_some(SequenceStep {
            event,
            filter,
            gap,
            negated: step.negated,
            correlations,
        })
    }
}

/// Splits a step's filter into the conditions on its own event and the correlations: the
/// top-level conjuncts `column = name` (or `name = column`) where `name` is not a column of
/// `table`. Returns the remaining filter as arguments for [`Checker::event_filter`].
fn split_correlations(
    table: &TableSchema,
    args: &[ast::Argument],
) -> (Vec<ast::Argument>, Vec<WrittenCorrelation>) {
    let [argument] = args else {
        return (args.to_vec(), Vec::new());
    };
    let mut conjuncts = Vec::new();
    flatten_and(&argument.expr, &mut conjuncts);
    let mut correlations = Vec::new();
    let mut rest: Vec<ast::Expr> = Vec::new();
    for conjunct in conjuncts {
        match correlation(table, conjunct) {
            Some(c) => correlations.push(c),
            None => rest.push(conjunct.clone()),
        }
    }
    let filter = rest.into_iter().reduce(|lhs, rhs| ast::Expr {
        span: lhs.span.to(rhs.span),
        kind: ExprKind::Binary {
            op: ast::BinaryOp::And,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
    });
    let args = filter
        .map(|expr| ast::Argument {
            distinct: argument.distinct,
            expr,
        })
        .into_iter()
        .collect();
    (args, correlations)
}

fn flatten_and<'e>(expr: &'e ast::Expr, out: &mut Vec<&'e ast::Expr>) {
    match &expr.kind {
        ExprKind::Binary {
            op: ast::BinaryOp::And,
            lhs,
            rhs,
        } => {
            flatten_and(lhs, out);
            flatten_and(rhs, out);
        }
        _ => out.push(expr),
    }
}

fn correlation(table: &TableSchema, conjunct: &ast::Expr) -> Option<WrittenCorrelation> {
    let ExprKind::Binary {
        op: ast::BinaryOp::Eq,
        lhs,
        rhs,
    } = &conjunct.kind
    else {
        return None;
    };
    let (ExprKind::Name(a), ExprKind::Name(b)) = (&lhs.kind, &rhs.kind) else {
        return None;
    };
    let is_column = |name: &ast::Ident| table.column(&name.name).is_some();
    let (column, name) = match (is_column(a), is_column(b)) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        _ => return None,
    };
    Some(WrittenCorrelation {
        column: column.name.clone(),
        name: name.name.clone(),
        span: conjunct.span,
    })
}
