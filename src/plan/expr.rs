//! Typed expressions -> DataFusion `Expr`.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Column, ScalarValue};
use datafusion::error::Result;
use datafusion::functions::expr_fn::{
    abs, ascii, asin, btrim, ceil, character_length, concat, contains, cos, date_part, date_trunc,
    ends_with, exp, floor, md5, nullif, radians, round, sin, sqrt, starts_with, substring, upper,
};
use datafusion::functions_nested::expr_fn::{array_has, array_has_all, array_has_any, make_array};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, binary_expr, cast, lit, when};
use datafusion::prelude::{coalesce, col};

use super::{PROFILES_ALIAS, measure_column, measure_relation, sequence_relation};
use crate::check::ir::*;
use crate::syntax::ast::PERCENT_SCALE;

/// Mean Earth radius used by `geo_distance_km`, in km.
const EARTH_RADIUS_KM: f64 = 6371.0;
const NANOS_PER_DAY_INT: i64 = 86_400 * 1_000_000_000;
const NANOS_PER_DAY: f64 = NANOS_PER_DAY_INT as f64;
/// What `trim` removes: spaces, tabs, line breaks, form and line feeds.
const ASCII_WHITESPACE: &str = " \t\n\r\x0b\x0c";

/// A timestamp literal in the normalized timestamp type.
pub fn timestamp_literal(ns: i64) -> Expr {
    lit(ScalarValue::TimestampNanosecond(Some(ns), None))
}

/// A measure's value for a profile without events, which has no row in the measure's
/// relation: zero for counts and sums (false for an existence in this process, see
/// [`exists_as_bool`]), the empty list for `distinct_list`, `None` (null) for the others.
/// Plans read a measure's column only through this module, which puts this value in place
/// of null; where an operator fills it in itself (the gather), the column is not nullable
/// and DataFusion's simplifier removes that step.
pub fn absent_value(measure: &Measure, own_aggregates: bool) -> Result<Option<ScalarValue>> {
    Ok(match measure.aggregate {
        Aggregate::Exists if exists_as_bool(own_aggregates) => {
            Some(ScalarValue::Boolean(Some(false)))
        }
        Aggregate::Exists
        | Aggregate::Count
        | Aggregate::CountValues
        | Aggregate::CountDistinct
        | Aggregate::Active(_)
        | Aggregate::ActivePeriods(_) => Some(ScalarValue::Int64(Some(0))),
        Aggregate::Sum if measure.ty == Type::Int => Some(ScalarValue::Int64(Some(0))),
        Aggregate::Sum => Some(ScalarValue::Float64(Some(0.0))),
        Aggregate::DistinctList => {
            let Type::List(item) = &measure.ty else {
                return Err(datafusion::error::DataFusionError::Internal(
                    "distinct_list is not a list".into(),
                ));
            };
            let empty = ScalarValue::new_list_nullable(&[], &super::arrow_type(item));
            Some(ScalarValue::List(empty))
        }
        Aggregate::Avg
        | Aggregate::Min
        | Aggregate::Max
        | Aggregate::First
        | Aggregate::Last
        | Aggregate::Mode => None,
    })
}

/// Whether an existence (`purchased within 30d`) is computed as a boolean, SegQL's own
/// `segql_any` of its condition ([`super::any_true`]), rather than as a count compared
/// with 0: in this process. A million profiles' booleans take a bit each where counts
/// take 64, and the count of the benchmark's 50 segments has a dozen existences.
pub fn exists_as_bool(own_aggregates: bool) -> bool {
    own_aggregates
}

/// Where column references point.
#[derive(Clone, Copy)]
enum Scope<'p> {
    /// Profile level: columns of `__p`, measures of the joined measure tables (with
    /// `first` and `last` in edge passes of their own unless the plan may use SegQL's own
    /// aggregates).
    Profile(&'p Program, bool),
    /// Inside one event table's grouped pass: unqualified event columns.
    Event,
}

/// Lowers a profile-level expression; `portable` for plans that become SQL text.
pub fn lower_profile(
    expr: &TypedExpr,
    as_of: i64,
    program: &Program,
    own_aggregates: bool,
    portable: bool,
) -> Result<Expr> {
    lower(
        expr,
        as_of,
        Scope::Profile(program, own_aggregates),
        portable,
    )
}

/// Lowers an event filter; `portable` for plans that become SQL text.
pub fn lower_event(expr: &TypedExpr, as_of: i64, portable: bool) -> Result<Expr> {
    lower(expr, as_of, Scope::Event, portable)
}

/// Calls `f` on every node of `expr`, parents first.
pub fn visit(expr: &TypedExpr, f: &mut dyn FnMut(&TypedExpr)) {
    f(expr);
    match &expr.kind {
        IrExpr::Literal(_)
        | IrExpr::RelativeTime(_)
        | IrExpr::ProfileColumn(_)
        | IrExpr::EventColumn(_)
        | IrExpr::Measure(_) => {}
        IrExpr::List(items) => items.iter().for_each(|i| visit(i, f)),
        IrExpr::Not(e) | IrExpr::IsTrue(e) | IrExpr::Negate(e) | IrExpr::IsNull { expr: e, .. } => {
            visit(e, f)
        }
        IrExpr::Binary { lhs, rhs, .. } => {
            visit(lhs, f);
            visit(rhs, f);
        }
        IrExpr::Between { expr, low, high } => {
            visit(expr, f);
            visit(low, f);
            visit(high, f);
        }
        IrExpr::InList { expr, items, .. } => {
            visit(expr, f);
            items.iter().for_each(|i| visit(i, f));
        }
        IrExpr::InArray { expr, array, .. } => {
            visit(expr, f);
            visit(array, f);
        }
        IrExpr::Has { array, items, .. } => {
            visit(array, f);
            items.iter().for_each(|i| visit(i, f));
        }
        IrExpr::StringTest { expr, pattern, .. } => {
            visit(expr, f);
            visit(pattern, f);
        }
        IrExpr::Function { args, .. } => args.iter().for_each(|a| visit(a, f)),
        IrExpr::Stage { arms } => arms.iter().for_each(|(_, c)| visit(c, f)),
        IrExpr::Sample { key, .. } => visit(key, f),
        IrExpr::Rank(_) | IrExpr::Sequence(_) => {}
    }
}

/// Like [`visit`], and also through the values the rankings of `expr` order by.
pub fn visit_through_rankings(expr: &TypedExpr, program: &Program, f: &mut dyn FnMut(&TypedExpr)) {
    visit(expr, &mut |e| {
        f(e);
        if let IrExpr::Rank(id) = e.kind {
            let ranking = &program.rankings[id];
            visit_through_rankings(&ranking.by, program, f);
            if let Some(seed) = &ranking.seed {
                visit_through_rankings(seed, program, f);
            }
        }
    });
}

/// The relation holding a ranking's columns, one row per profile.
pub fn rank_relation(id: usize) -> String {
    format!("__r_{id}")
}

/// The column holding a ranking's position among the ranked profiles.
pub fn rank_column(id: usize) -> String {
    format!("__rank_{id}")
}

/// The column holding how many profiles a ranking ranks (0 for an unranked profile).
pub fn ranked_column(id: usize) -> String {
    format!("__ranked_{id}")
}

/// `x`, with -0.0 made 0.0 where `x` is float arithmetic that can yield it (`-x`,
/// `round(-0.3)`, `0 * -1.5`). Arrow orders floats totally, so -0.0 is less than 0.0 and
/// not equal to it; the language compares numbers by value, so `round(x) = 0` must hold
/// for -0.0. Columns and aggregates are compared as stored.
///
/// Only a comparison with a zero can tell the two apart: [`compared_with`] skips the
/// normalization (a `CASE` that computes `x` twice) when `x` is compared with nonzero
/// numbers alone.
fn positive_zero(x: Expr, typed: &TypedExpr) -> Expr {
    let computed = match &typed.kind {
        IrExpr::Negate(_) | IrExpr::Binary { .. } => true,
        IrExpr::Function { function, .. } => matches!(
            function,
            Function::Round | Function::Ceil | Function::Floor | Function::Coalesce
        ),
        _ => false,
    };
    if typed.ty != Type::Float || !computed {
        return x;
    }
    match when(abs(x.clone()).eq(lit(0.0f64)), lit(0.0f64)).otherwise(x.clone()) {
        Ok(normalized) => normalized,
        Err(_) => x,
    }
}

/// `x`, compared with `others`: as [`positive_zero`] makes it, unless every one of `others`
/// is a nonzero number, which -0.0 and 0.0 are both equal to, both below or both above.
fn compared_with(x: Expr, typed: &TypedExpr, others: &[&TypedExpr]) -> Expr {
    if others.iter().all(|other| nonzero_number(other)) {
        x
    } else {
        positive_zero(x, typed)
    }
}

/// Whether `e` is a number other than zero, written out (`5`, `-0.4`).
fn nonzero_number(e: &TypedExpr) -> bool {
    match &e.kind {
        IrExpr::Literal(Value::Int(i)) => *i != 0,
        IrExpr::Literal(Value::Float(f)) => *f != 0.0,
        IrExpr::Negate(inner) => nonzero_number(inner),
        _ => false,
    }
}

/// A stage compared with a string (`lifecycle = "active"`, in either order): the stage's
/// arms and the string.
fn stage_and_label<'e>(
    lhs: &'e TypedExpr,
    rhs: &'e TypedExpr,
) -> Option<(&'e [(String, TypedExpr)], &'e str)> {
    match (&lhs.kind, &rhs.kind) {
        (IrExpr::Stage { arms }, IrExpr::Literal(Value::String(label)))
        | (IrExpr::Literal(Value::String(label)), IrExpr::Stage { arms }) => Some((arms, label)),
        _ => None,
    }
}

/// The strings of a list of string literals; `None` if an item is anything else (a null
/// among them makes a miss null, not false).
fn string_literals(items: &[TypedExpr]) -> Option<Vec<&str>> {
    items
        .iter()
        .map(|item| match &item.kind {
            IrExpr::Literal(Value::String(s)) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

/// A test of a stage's label (`=`, `!=`, `in`, `not in` strings) as the stage's own
/// `CASE`, each arm giving the test's answer for its label, and null when no arm holds
/// (as the test of a null label is). The stage's labels are then never built as strings
/// and compared: counting `value_tier in ["silver", "bronze"] and email_opt_in` over 1M
/// profiles took 72–75 ms of CPU that way, 50 ms this way.
fn stage_test(
    arms: &[(String, TypedExpr)],
    test: impl Fn(&str) -> bool,
    recurse: impl Fn(&TypedExpr) -> Result<Expr>,
) -> Result<Expr> {
    let Some(((first_label, first_condition), rest)) = arms.split_first() else {
        return Ok(lit(ScalarValue::Boolean(None)));
    };
    let mut case = when(recurse(first_condition)?, lit(test(first_label)));
    for (label, condition) in rest {
        case = case.when(recurse(condition)?, lit(test(label)));
    }
    case.otherwise(lit(ScalarValue::Boolean(None)))
}

fn value_literal(value: &Value) -> Expr {
    match value {
        Value::Null => lit(ScalarValue::Null),
        Value::Bool(b) => lit(*b),
        Value::Int(i) => lit(*i),
        Value::Float(x) => lit(*x),
        Value::String(s) => lit(s.as_str()),
        Value::Timestamp(ns) => timestamp_literal(*ns),
        Value::Duration(ns) => lit(ScalarValue::DurationNanosecond(Some(*ns))),
    }
}

/// Whether `expr` is a profile or event column as it is stored.
fn is_column(expr: &TypedExpr) -> bool {
    matches!(expr.kind, IrExpr::ProfileColumn(_) | IrExpr::EventColumn(_))
}

/// Whether `expr` is a constant other than null.
fn is_constant(expr: &TypedExpr) -> bool {
    matches!(&expr.kind, IrExpr::Literal(value) if *value != Value::Null)
}

fn lower(expr: &TypedExpr, as_of: i64, scope: Scope<'_>, portable: bool) -> Result<Expr> {
    let recurse = |e: &TypedExpr| lower(e, as_of, scope, portable);
    Ok(match &expr.kind {
        // Other engines have no duration type: durations are seconds there (a float).
        IrExpr::Literal(Value::Duration(ns)) if portable => lit(*ns as f64 / 1e9),
        IrExpr::Literal(value) => value_literal(value),
        IrExpr::RelativeTime(offset) => timestamp_literal(as_of.saturating_add(*offset)),
        IrExpr::ProfileColumn(name) => {
            Expr::Column(Column::new(Some(PROFILES_ALIAS), name.as_str()))
        }
        IrExpr::EventColumn(name) => Expr::Column(Column::from_name(name.as_str())),
        IrExpr::Measure(id) => {
            let Scope::Profile(program, own_aggregates) = scope else {
                return Err(datafusion::error::DataFusionError::Internal(
                    "a measure inside an event filter".into(),
                ));
            };
            let measure = &program.measures[*id];
            let column = Expr::Column(Column::new(
                Some(measure_relation(*id, measure, own_aggregates)),
                measure_column(*id),
            ));
            match (&measure.aggregate, absent_value(measure, own_aggregates)?) {
                (Aggregate::Exists, Some(zero)) if !exists_as_bool(own_aggregates) => {
                    coalesce(vec![column, lit(zero.clone())]).gt(lit(zero))
                }
                (_, Some(absent)) => coalesce(vec![column, lit(absent)]),
                (_, None) => column,
            }
        }
        IrExpr::List(items) => make_array(items.iter().map(recurse).collect::<Result<Vec<_>>>()?),
        IrExpr::Not(inner) => Expr::Not(Box::new(recurse(inner)?)),
        // `coalesce(c, false)`, not `c IS TRUE`: DataFusion 55 declares `IS TRUE` non-null in
        // the logical plan but nullable in the physical one, and rejects a plan in which
        // common-subexpression elimination has projected it into a column.
        IrExpr::IsTrue(inner) => coalesce(vec![recurse(inner)?, lit(false)]),
        IrExpr::Negate(inner) => Expr::Negative(Box::new(recurse(inner)?)),
        IrExpr::Binary { op, lhs, rhs }
            if portable && lhs.ty == Type::Timestamp && rhs.ty == Type::Duration =>
        {
            // timestamp ± duration: the duration as an interval, which every engine adds.
            let (IrExpr::Literal(Value::Duration(ns)), BinaryOp::Add | BinaryOp::Sub) =
                (&rhs.kind, op)
            else {
                return Err(datafusion::error::DataFusionError::NotImplemented(
                    "a timestamp plus or minus a computed duration".into(),
                ));
            };
            let interval = lit(ScalarValue::new_interval_mdn(
                0,
                (ns / 86_400_000_000_000) as i32,
                ns % 86_400_000_000_000,
            ));
            let operator = if *op == BinaryOp::Add {
                Operator::Plus
            } else {
                Operator::Minus
            };
            binary_expr(recurse(lhs)?, operator, interval)
        }
        IrExpr::Binary { op, lhs, rhs }
            if portable
                && *op == BinaryOp::Sub
                && lhs.ty == Type::Timestamp
                && rhs.ty == Type::Timestamp =>
        {
            // timestamp - timestamp: seconds between them.
            let seconds = |e: Expr| date_part(lit("epoch"), e);
            seconds(recurse(lhs)?) - seconds(recurse(rhs)?)
        }
        IrExpr::Binary {
            op: op @ (BinaryOp::Eq | BinaryOp::NotEq),
            lhs,
            rhs,
        } if let Some((arms, label)) = stage_and_label(lhs, rhs) => {
            let equal = *op == BinaryOp::Eq;
            stage_test(arms, |arm| (arm == label) == equal, recurse)?
        }
        IrExpr::Binary { op, lhs, rhs } => {
            let (mut l, mut r) = (recurse(lhs)?, recurse(rhs)?);
            if op.is_comparison() && !portable {
                (l, r) = (compared_with(l, lhs, &[rhs]), compared_with(r, rhs, &[lhs]));
            }
            let operator = match op {
                BinaryOp::Or => Operator::Or,
                BinaryOp::And => Operator::And,
                BinaryOp::Eq => Operator::Eq,
                BinaryOp::NotEq => Operator::NotEq,
                BinaryOp::Lt => Operator::Lt,
                BinaryOp::LtEq => Operator::LtEq,
                BinaryOp::Gt => Operator::Gt,
                BinaryOp::GtEq => Operator::GtEq,
                BinaryOp::Add => Operator::Plus,
                BinaryOp::Sub => Operator::Minus,
                BinaryOp::Mul => Operator::Multiply,
                // `/` always divides as floats; by zero, it is null.
                BinaryOp::Div => {
                    return Ok(binary_expr(
                        cast(l, DataType::Float64),
                        Operator::Divide,
                        nullif(positive_zero(cast(r, DataType::Float64), rhs), lit(0.0f64)),
                    ));
                }
                // The remainder of a division by zero is null too (not an error, not NaN).
                BinaryOp::Rem => {
                    let zero = if rhs.ty == Type::Float {
                        lit(0.0f64)
                    } else {
                        lit(0i64)
                    };
                    let divisor = positive_zero(r, rhs);
                    return Ok(binary_expr(l, Operator::Modulo, nullif(divisor, zero)));
                }
            };
            if *op == BinaryOp::Sub && lhs.ty == Type::Timestamp && rhs.ty == Type::Timestamp {
                // timestamp - timestamp: a duration in nanoseconds.
                let nanos = binary_expr(
                    cast(l, DataType::Int64),
                    Operator::Minus,
                    cast(r, DataType::Int64),
                );
                return Ok(cast(nanos, DataType::Duration(TimeUnit::Nanosecond)));
            }
            Expr::BinaryExpr(BinaryExpr::new(Box::new(l), operator, Box::new(r)))
        }
        IrExpr::Between { expr, low, high } => {
            let compared = |e: &TypedExpr, others: &[&TypedExpr]| {
                recurse(e).map(|x| compared_with(x, e, others))
            };
            compared(expr, &[low, high])?.between(compared(low, &[expr])?, compared(high, &[expr])?)
        }
        IrExpr::InList {
            expr,
            items,
            negated,
        } if let (IrExpr::Stage { arms }, Some(labels)) = (&expr.kind, string_literals(items)) => {
            stage_test(arms, |arm| labels.contains(&arm) != *negated, recurse)?
        }
        IrExpr::InList {
            expr,
            items,
            negated,
        } => {
            let compared = |e: &TypedExpr, others: &[&TypedExpr]| {
                recurse(e).map(|x| compared_with(x, e, others))
            };
            let listed = items
                .iter()
                .map(|item| compared(item, &[expr]))
                .collect::<Result<Vec<_>>>()?;
            compared(expr, &items.iter().collect::<Vec<_>>())?.in_list(listed, *negated)
        }
        IrExpr::InArray {
            expr,
            array,
            negated,
        } => {
            let has = array_has(recurse(array)?, recurse(expr)?);
            if *negated {
                Expr::Not(Box::new(has))
            } else {
                has
            }
        }
        IrExpr::Has {
            array,
            quantifier,
            items,
        } if !portable
            && is_column(array)
            && !items.is_empty()
            && items.iter().all(is_constant) =>
        {
            // Each constant as an `array_has` of its own: one comparison over all the
            // lists' values at once, where `array_has_all` and `array_has_any` compare row
            // by row (`fashion_funnel_dach` in DataFusion SQL: 8% less time). Nulls agree:
            // a null list gives null, null elements are never a match.
            let list = recurse(array)?;
            let tests = (items.iter())
                .map(|item| Ok(array_has(list.clone(), recurse(item)?)))
                .collect::<Result<Vec<_>>>()?;
            let joined = match quantifier {
                Quantifier::All => tests.into_iter().reduce(Expr::and),
                Quantifier::Any => tests.into_iter().reduce(Expr::or),
            };
            joined.unwrap_or_else(|| lit(false))
        }
        IrExpr::Has {
            array,
            quantifier,
            items,
        } => {
            let items = make_array(items.iter().map(recurse).collect::<Result<Vec<_>>>()?);
            match quantifier {
                Quantifier::Any => array_has_any(recurse(array)?, items),
                Quantifier::All => array_has_all(recurse(array)?, items),
            }
        }
        IrExpr::IsNull { expr, negated } => {
            let inner = recurse(expr)?;
            if *negated {
                inner.is_not_null()
            } else {
                inner.is_null()
            }
        }
        IrExpr::StringTest { op, expr, pattern } => {
            let (value, pattern) = (recurse(expr)?, recurse(pattern)?);
            match op {
                StringOp::Contains => contains(value, pattern),
                StringOp::StartsWith => starts_with(value, pattern),
                StringOp::EndsWith => ends_with(value, pattern),
                // A function, not the `~` operator, in SQL for other engines: the SQL
                // module rewrites it per dialect (`REGEXP`, `regexp_matches`, ...).
                StringOp::Matches if portable => {
                    datafusion::functions::expr_fn::regexp_like(value, pattern, None)
                }
                StringOp::Matches => binary_expr(value, Operator::RegexMatch, pattern),
            }
        }
        IrExpr::Function { function, args } => {
            let args = args.iter().map(recurse).collect::<Result<Vec<_>>>()?;
            lower_function(*function, args, as_of, portable)?
        }
        IrExpr::Stage { arms } => {
            let Some(((first_label, first_condition), rest)) = arms.split_first() else {
                return Ok(lit(ScalarValue::Utf8(None)));
            };
            let mut case = when(recurse(first_condition)?, lit(first_label.as_str()));
            for (label, condition) in rest {
                case = case.when(recurse(condition)?, lit(label.as_str()));
            }
            case.otherwise(lit(ScalarValue::Utf8(None)))?
        }
        IrExpr::Sample {
            seed,
            threshold,
            key,
        } => sample_bucket(recurse(key)?, seed).lt(lit(*threshold as i64)),
        IrExpr::Sequence(id) => {
            col(Column::new(Some(sequence_relation(*id)), "__key")).is_not_null()
        }
        IrExpr::Rank(id) => {
            let Scope::Profile(program, _) = scope else {
                return Err(datafusion::error::DataFusionError::Internal(
                    "a ranking inside an event filter".into(),
                ));
            };
            let column = |name: String| col(Column::new(Some(rank_relation(*id)), name));
            let position = cast(column(rank_column(*id)), DataType::Int64);
            let ranked = column(ranked_column(*id));
            match program.rankings[*id].kind {
                // An unranked profile (a null value) has `ranked` = 0, so it never passes.
                RankKind::Top(n) | RankKind::Lookalike(n) => {
                    position.clone().lt_eq(lit(n)).and(position.lt_eq(ranked))
                }
                // position <= ceil(share × ranked) exactly: (position - 1) × 10^6 < share × ranked.
                RankKind::TopShare(share) => {
                    ((position - lit(1i64)) * lit(PERCENT_SCALE)).lt(lit(share) * ranked)
                }
                // The position column holds `percent_rank()` here.
                RankKind::PercentileRank => when(
                    ranked.gt(lit(0i64)),
                    cast(column(rank_column(*id)), DataType::Float64),
                )
                .otherwise(lit(ScalarValue::Float64(None)))?,
            }
        }
    })
}

/// [`crate::check::ir::sample_bucket`] in DataFusion's functions: the first eight hex digits
/// of `md5(seed || ':' || key)` as an integer. A hex digit's value is
/// `(ascii(digit) - 48) % 39`: `'0'..'9'` are 48..57 and `'a'..'f'` 97..102.
fn sample_bucket(key: Expr, seed: &str) -> Expr {
    let digest = md5(concat(vec![
        lit(format!("{seed}:")),
        cast(key, DataType::Utf8),
    ]));
    (0..8i64)
        .map(|i| {
            let digit = substring(digest.clone(), lit(i + 1), lit(1i64));
            // 64-bit arithmetic on every engine: SQL engines type the literals as 32-bit.
            let code = cast(ascii(digit), DataType::Int64);
            ((code - lit(48i64)) % lit(39i64)) * lit(16i64.pow(7 - i as u32))
        })
        .reduce(|a, b| a + b)
        .unwrap_or_else(|| lit(0i64))
}

fn lower_function(
    function: Function,
    mut args: Vec<Expr>,
    as_of: i64,
    portable: bool,
) -> Result<Expr> {
    let mut arg = |i: usize| std::mem::replace(&mut args[i], lit(ScalarValue::Null));
    Ok(match function {
        Function::Lower => datafusion::functions::expr_fn::lower(arg(0)),
        Function::Upper => upper(arg(0)),
        Function::Trim => btrim(vec![arg(0), lit(ASCII_WHITESPACE)]),
        Function::Length => cast(character_length(arg(0)), DataType::Int64),
        Function::Abs => abs(arg(0)),
        Function::Round => round(vec![arg(0)]),
        Function::Floor => floor(arg(0)),
        Function::Ceil => ceil(arg(0)),
        Function::Exp => exp(cast(arg(0), DataType::Float64)),
        Function::Coalesce => coalesce(args),
        // Other engines cannot cast a timestamp to an integer: seconds since the epoch
        // there (`date_part('epoch', t)`), exact to the engines' microseconds.
        Function::DaysSince if portable => binary_expr(
            lit(as_of as f64 / 1e9) - date_part(lit("epoch"), arg(0)),
            Operator::Divide,
            lit(86_400.0),
        ),
        Function::DaysSince => {
            let nanos = binary_expr(lit(as_of), Operator::Minus, cast(arg(0), DataType::Int64));
            binary_expr(
                cast(nanos, DataType::Float64),
                Operator::Divide,
                lit(NANOS_PER_DAY),
            )
        }
        Function::DateTrunc => date_trunc(arg(0), arg(1)),
        // DataFusion rewrites `date_part('year', t) > 1600` into a range of `t`, and with a
        // year a nanosecond timestamp cannot hold, the range is unbounded and no row
        // matches. Microseconds hold every year chrono knows, so the range is exact.
        Function::Year => cast(
            date_part(
                lit("year"),
                cast(arg(0), DataType::Timestamp(TimeUnit::Microsecond, None)),
            ),
            DataType::Int64,
        ),
        Function::Month => cast(date_part(lit("month"), arg(0)), DataType::Int64),
        Function::DayOfWeek if portable => cast(date_part(lit("dow"), arg(0)), DataType::Int64),
        // Days since the last Thursday midnight (the epoch was a Thursday, day 4), the
        // remainder taken towards minus infinity: integer arithmetic, where `date_part`
        // makes a calendar date of every time (45 ms over the benchmark's 2.68M purchases).
        Function::DayOfWeek => {
            let nanos = cast(arg(0), DataType::Int64);
            let week = lit(7 * NANOS_PER_DAY_INT);
            let since_thursday = ((nanos % week.clone()) + week.clone()) % week;
            (since_thursday / lit(NANOS_PER_DAY_INT) + lit(4i64)) % lit(7i64)
        }
        Function::GeoDistanceKm => {
            // Haversine: 2R asin(sqrt(sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2))).
            let as_float = |e: Expr| cast(e, DataType::Float64);
            let (lat1, lon1, lat2, lon2) = (
                radians(as_float(arg(0))),
                radians(as_float(arg(1))),
                radians(as_float(arg(2))),
                radians(as_float(arg(3))),
            );
            let half_sin_squared = |a: Expr, b: Expr| {
                let s = sin((a - b) / lit(2.0));
                s.clone() * s
            };
            let h = half_sin_squared(lat2.clone(), lat1.clone())
                + cos(lat1) * cos(lat2) * half_sin_squared(lon2, lon1);
            lit(2.0 * EARTH_RADIUS_KM) * asin(sqrt(h))
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, AsArray, RecordBatch, TimestampNanosecondArray};
    use datafusion::arrow::datatypes::{Field, Int64Type, Schema};
    use datafusion::prelude::{SessionContext, col};

    use super::*;

    /// `day_of_week` in process (integer arithmetic) against `date_part('dow')` for times
    /// before and after the epoch, at and around midnight, and null.
    #[tokio::test]
    async fn day_of_week_by_arithmetic_is_date_parts_dow() {
        let day = NANOS_PER_DAY_INT;
        let mut times: Vec<Option<i64>> = vec![None, Some(0), Some(-1), Some(1)];
        for days in [
            -40_000i64, -3653, -8, -7, -1, 1, 6, 7, 10_000, 20_794, 100_000,
        ] {
            for offset in [-1, 0, 1, day / 2, day - 1] {
                times.push(Some(days * day + offset));
            }
        }
        let schema = Arc::new(Schema::new(vec![Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            true,
        )]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(TimestampNanosecondArray::from(times.clone()))],
        )
        .expect("batch");
        let ctx = SessionContext::new();
        let days = ctx
            .read_batch(batch)
            .expect("table")
            .select(vec![
                lower_function(Function::DayOfWeek, vec![col("t")], 0, false)
                    .expect("in process")
                    .alias("arithmetic"),
                lower_function(Function::DayOfWeek, vec![col("t")], 0, true)
                    .expect("portable")
                    .alias("date_part"),
            ])
            .expect("select")
            .collect()
            .await
            .expect("run");
        let mut compared = 0;
        for batch in &days {
            let arithmetic = batch.column(0).as_primitive::<Int64Type>();
            let date_part = batch.column(1).as_primitive::<Int64Type>();
            for row in 0..batch.num_rows() {
                assert_eq!(
                    arithmetic.is_valid(row).then(|| arithmetic.value(row)),
                    date_part.is_valid(row).then(|| date_part.value(row)),
                    "day_of_week of {:?}",
                    times[compared]
                );
                compared += 1;
            }
        }
        assert_eq!(compared, times.len());
    }
}
