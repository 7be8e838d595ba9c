//! Conditions over the whole profile population rather than one profile's data:
//! rankings (`top 10 by ltv`, `top 5% by ...`, `percentile_rank(...)`) and hash samples
//! for holdouts (`sample(10%, seed = "spring")`).

use super::{Checker, Ctx, describe_type};
use crate::check::ir::*;
use crate::diagnostic::{Diagnostic, Span};
use crate::syntax::ast::{self, ExprKind, Literal, PERCENT_SCALE};

/// The call-shaped names this module checks, for suggestions and help.
pub const FUNCTIONS: [&str; 3] = ["sample", "percentile_rank", "lookalike"];

const SAMPLE_USAGE: &str = "write `sample(10%)` or `sample(10%, seed = \"spring\")`: a share from 0.0001% to 100%, and a seed naming the draw";
const LOOKALIKE_USAGE: &str = "write `lookalike(high_value, 5000, by = [age, income, sum(purchased.amount) within 365d])`: a seed segment, how many profiles to find, and numeric features";
const TOP_USAGE: &str = "write `top 1000 by ltv` or `top 5% by sum(purchased.amount) within 365d`";

impl<'a> Checker<'a> {
    /// `sample(...)` and `percentile_rank(...)`; `None` for any other name.
    pub(super) fn population_call(
        &mut self,
        name: &str,
        args: &[ast::Argument],
        span: Span,
        ctx: &Ctx<'a>,
    ) -> Option<TypedExpr> {
        match name {
            "sample" => Some(self.sample(args, span, ctx)),
            "lookalike" => Some(self.lookalike(args, span, ctx)),
            "percentile_rank" => Some(match args {
                [argument] if argument.distinct.is_none() => {
                    self.ranking(RankKind::PercentileRank, &argument.expr, span, ctx)
                }
                _ => {
                    self.report(
                        Diagnostic::error(
                            "E0205",
                            format!("`percentile_rank` takes one value, found {} arguments", args.len()),
                        )
                        .with_label(span, "wrong arguments")
                        .with_help("write `percentile_rank(ltv)` or `percentile_rank(sum(purchased.amount) within 365d)`"),
                    );
                    Self::error_expr(span)
                }
            }),
            _ => None,
        }
    }

    /// `sample(P%)` or `sample(P%, seed = "S")`.
    fn sample(&mut self, args: &[ast::Argument], span: Span, ctx: &Ctx<'a>) -> TypedExpr {
        if self.outside_profiles("sample", span, ctx) {
            return Self::error_expr(span);
        }
        let invalid = argument_error("E0211", SAMPLE_USAGE);
        let (share, seed) = match args {
            [share] => (share, None),
            [share, seed] => (share, Some(seed)),
            _ => {
                self.report(invalid(
                    format!(
                        "`sample` takes a share and an optional seed, found {} arguments",
                        args.len()
                    ),
                    span,
                    "wrong arguments",
                ));
                return Self::error_expr(span);
            }
        };
        let share = match share.expr.kind {
            ExprKind::Literal(Literal::Percent(share)) if share > 0 && share <= PERCENT_SCALE => {
                share
            }
            ExprKind::Literal(Literal::Percent(_)) => {
                self.report(invalid(
                    "a sample's share must be more than 0% and at most 100%".into(),
                    share.expr.span,
                    "out of range",
                ));
                return Self::error_expr(span);
            }
            ExprKind::Error => return Self::error_expr(span),
            _ => {
                self.report(invalid(
                    "`sample` needs its share as a percentage, such as `10%`".into(),
                    share.expr.span,
                    "not a percentage",
                ));
                return Self::error_expr(span);
            }
        };
        let seed = match seed.map(|s| (s, named_argument(&s.expr, "seed"))) {
            None => String::new(),
            Some((_, Some(rhs))) => match &rhs.kind {
                ExprKind::Literal(Literal::String(seed)) => seed.clone(),
                ExprKind::Error => return Self::error_expr(span),
                _ => {
                    self.report(invalid(
                        "a sample's seed must be a string literal".into(),
                        rhs.span,
                        "not a string",
                    ));
                    return Self::error_expr(span);
                }
            },
            Some((seed, None)) => {
                self.report(invalid(
                    "the second argument of `sample` must be `seed = \"...\"`".into(),
                    seed.expr.span,
                    "expected `seed = \"...\"`",
                ));
                return Self::error_expr(span);
            }
        };
        let profiles = &self.catalog.profiles;
        let key_type = profiles.column(&profiles.key).and_then(|c| c.ty.clone());
        let Some(key_type @ (Type::Int | Type::String)) = key_type else {
            let found =
                key_type.map_or("of an unsupported type".to_string(), |t| describe_type(&t));
            self.report(invalid(
                format!(
                    "`sample` hashes the profile key as text, which needs an int or string key, but `{}` is {found}",
                    profiles.key
                ),
                span,
                "cannot hash this key",
            ));
            return Self::error_expr(span);
        };
        let key = TypedExpr {
            kind: IrExpr::ProfileColumn(profiles.key.clone()),
            ty: key_type,
            span,
        };
        TypedExpr {
            kind: IrExpr::Sample {
                seed,
                threshold: sample_threshold(share),
                key: Box::new(key),
            },
            ty: Type::Bool,
            span,
        }
    }

    /// `top ... by E` and `percentile_rank(E)`: E is checked as a profile value where the
    /// ranking stands, so an enclosing window reaches its event sets.
    pub(super) fn ranking(
        &mut self,
        kind: RankKind,
        by: &ast::Expr,
        span: Span,
        ctx: &Ctx<'a>,
    ) -> TypedExpr {
        let what = match kind {
            RankKind::PercentileRank => "percentile_rank",
            _ => "top",
        };
        if self.outside_profiles(what, span, ctx) {
            return Self::error_expr(span);
        }
        let value = self.expr(by, ctx);
        if value.ty == Type::Error {
            return Self::error_expr(span);
        }
        let invalid = |message: String, label: String| {
            Diagnostic::error("E0212", message)
                .with_label(span, label)
                .with_help(if what == "top" {
                    TOP_USAGE
                } else {
                    "write `percentile_rank(ltv)`: a number, string or timestamp per profile"
                })
        };
        if !matches!(
            value.ty,
            Type::Int | Type::Float | Type::String | Type::Timestamp
        ) {
            let message = format!(
                "`{what}` orders profiles by a number, string or timestamp, but this is {}",
                describe_type(&value.ty)
            );
            self.report(invalid(message, format!("this orders by {}", value.ty)));
            return Self::error_expr(span);
        }
        match kind {
            RankKind::Top(n) if n <= 0 => {
                self.report(invalid(
                    format!("`top {n}` keeps no profile"),
                    "a count of at least 1 is needed".into(),
                ));
                return Self::error_expr(span);
            }
            RankKind::TopShare(share) if share <= 0 || share > PERCENT_SCALE => {
                self.report(invalid(
                    "the share of a `top` must be more than 0% and at most 100%".into(),
                    "out of range".into(),
                ));
                return Self::error_expr(span);
            }
            _ => {}
        }
        let ty = match kind {
            RankKind::PercentileRank => Type::Float,
            _ => Type::Bool,
        };
        let id = self.program.intern_ranking(Ranking {
            kind,
            by: value,
            seed: None,
        });
        TypedExpr {
            kind: IrExpr::Rank(id),
            ty,
            span,
        }
    }

    /// `lookalike(SEED, N, by = [FEATURE, ...])`.
    fn lookalike(&mut self, args: &[ast::Argument], span: Span, ctx: &Ctx<'a>) -> TypedExpr {
        if self.outside_profiles("lookalike", span, ctx) {
            return Self::error_expr(span);
        }
        let invalid = argument_error("E0213", LOOKALIKE_USAGE);
        let [seed, count, features] = args else {
            self.report(invalid(
                format!("`lookalike` takes a seed segment, a count and `by = [...]`, found {} arguments", args.len()),
                span,
                "wrong arguments",
            ));
            return Self::error_expr(span);
        };
        // The seed: a segment by name (`high_value`), or any condition.
        let seed = match &seed.expr.kind {
            ExprKind::Name(ident)
                if matches!(
                    self.declarations.get(ident.name.as_str()),
                    Some(ast::Declaration::Segment(_))
                ) =>
            {
                self.in_segment(ident, ctx)
            }
            _ => self.expr(&seed.expr, ctx),
        };
        let count = match count.expr.kind {
            ExprKind::Literal(Literal::Int(n)) if n >= 1 => n,
            ExprKind::Error => return Self::error_expr(span),
            _ => {
                self.report(invalid(
                    "a lookalike's count must be a whole number of at least 1".into(),
                    count.expr.span,
                    "expected a count such as `5000`",
                ));
                return Self::error_expr(span);
            }
        };
        let items = match named_argument(&features.expr, "by") {
            Some(rhs) => match &rhs.kind {
                ExprKind::List(items) if !items.is_empty() => items,
                _ => {
                    self.report(invalid(
                        "a lookalike's features must be a non-empty list".into(),
                        rhs.span,
                        "expected `[feature, ...]`",
                    ));
                    return Self::error_expr(span);
                }
            },
            None => {
                self.report(invalid(
                    "the third argument of `lookalike` must be `by = [...]`".into(),
                    features.expr.span,
                    "expected `by = [feature, ...]`",
                ));
                return Self::error_expr(span);
            }
        };
        let features: Vec<TypedExpr> = items.iter().map(|item| self.expr(item, ctx)).collect();
        if seed.ty == Type::Error || features.iter().any(|f| f.ty == Type::Error) {
            return Self::error_expr(span);
        }
        if !matches!(seed.ty, Type::Bool | Type::Null) {
            self.report(invalid(
                format!(
                    "a lookalike's seed must be a segment or a condition, but this is {}",
                    describe_type(&seed.ty)
                ),
                seed.span,
                "not a segment",
            ));
            return Self::error_expr(span);
        }
        if let Some(feature) = features.iter().find(|f| !f.ty.is_numeric()) {
            self.report(invalid(
                format!(
                    "lookalike features must be numbers, but this is {}",
                    describe_type(&feature.ty)
                ),
                feature.span,
                "not a number",
            ));
            return Self::error_expr(span);
        }
        let by = TypedExpr {
            kind: IrExpr::List(features),
            ty: Type::List(Box::new(Type::Float)),
            span: items[0].span.to(items[items.len() - 1].span),
        };
        let id = self.program.intern_ranking(Ranking {
            kind: RankKind::Lookalike(count),
            by,
            seed: Some(seed),
        });
        TypedExpr {
            kind: IrExpr::Rank(id),
            ty: Type::Bool,
            span,
        }
    }

    /// E0209 when a profile-level construct stands inside an event filter.
    pub(super) fn outside_profiles(&mut self, what: &str, span: Span, ctx: &Ctx<'a>) -> bool {
        let Some(event) = ctx.event else {
            return false;
        };
        self.report(
            Diagnostic::error(
                "E0209",
                format!("`{what}` cannot be used inside a filter of `{}`", event.name),
            )
            .with_label(span, "a profile-level condition inside an event filter")
            .with_help("an event filter tests one event at a time; combine it with `and` outside the parentheses"),
        );
        true
    }
}

/// The error of a construct's arguments: its code and usage, with a message and a label.
fn argument_error(
    code: &'static str,
    usage: &'static str,
) -> impl Fn(String, Span, &str) -> Diagnostic {
    move |message, at, label| {
        Diagnostic::error(code, message)
            .with_label(at, label.to_string())
            .with_help(usage)
    }
}

/// `value` of an argument written `name = value` (`seed = "spring"`, `by = [age]`), which
/// parses as a comparison.
fn named_argument<'e>(argument: &'e ast::Expr, name: &str) -> Option<&'e ast::Expr> {
    match &argument.kind {
        ExprKind::Binary {
            op: ast::BinaryOp::Eq,
            lhs,
            rhs,
        } if matches!(&lhs.kind, ExprKind::Name(n) if n.name == name) => Some(rhs),
        _ => None,
    }
}
