//! AST -> SegQL text. Every compound operand is parenthesized, so the text parses back to
//! the same tree whatever the precedence (parentheses leave no node of their own).

use std::fmt::Write as _;

use super::ast::*;

/// A whole file, one declaration per line.
pub fn file(file: &File) -> String {
    let mut out = String::new();
    for declaration in &file.declarations {
        match declaration {
            Declaration::Segment(d) => {
                let _ = write!(out, "segment {}", d.name.name);
                if let Some(description) = &d.description {
                    let _ = write!(out, " {}", string(description));
                }
                let _ = writeln!(out, " = {}", expr(&d.expr));
            }
            Declaration::Metric(d) => {
                let _ = writeln!(out, "metric {} = {}", d.name.name, expr(&d.expr));
            }
            Declaration::Stage(d) => {
                let _ = writeln!(out, "stage {} {{", d.name.name);
                for arm in &d.arms {
                    let _ = writeln!(out, "    {} = {}", arm.label.name, expr(&arm.expr));
                }
                out.push_str("}\n");
            }
        }
    }
    out
}

/// One expression.
pub fn expr(e: &Expr) -> String {
    let p = |e: &Expr| operand(e);
    match &e.kind {
        ExprKind::Error => "null".to_string(),
        ExprKind::Literal(literal) => self::literal(literal),
        ExprKind::Now => "now".to_string(),
        ExprKind::Ago(d) => format!("{} ago", duration(d)),
        ExprKind::List(items) => {
            let items: Vec<String> = items.iter().map(expr).collect();
            format!("[{}]", items.join(", "))
        }
        ExprKind::Name(name) => name.name.clone(),
        ExprKind::InSegment(name) => format!("in {}", name.name),
        ExprKind::Call { function, args } => {
            let args: Vec<String> = args
                .iter()
                .map(|a| match a.distinct {
                    Some(_) => format!("distinct {}", expr(&a.expr)),
                    None => expr(&a.expr),
                })
                .collect();
            format!("{}({})", function.name, args.join(", "))
        }
        ExprKind::Member { base, column } => format!("{}.{}", expr(base), column.name),
        ExprKind::Negate(inner) => format!("-{}", p(inner)),
        ExprKind::Not(inner) => format!("not {}", p(inner)),
        ExprKind::Binary { op, lhs, rhs } => format!("{} {} {}", p(lhs), op.symbol(), p(rhs)),
        ExprKind::Between { expr, low, high } => {
            format!("{} between {} and {}", p(expr), p(low), p(high))
        }
        ExprKind::In { expr, set, negated } => format!(
            "{} {}in {}",
            p(expr),
            if *negated { "not " } else { "" },
            p(set)
        ),
        ExprKind::Has {
            expr,
            quantifier,
            set,
        } => {
            let quantifier = match quantifier {
                Quantifier::Any => "any",
                Quantifier::All => "all",
            };
            format!("{} has {quantifier} {}", p(expr), p(set))
        }
        ExprKind::IsNull { expr, negated } => {
            format!("{} is {}null", p(expr), if *negated { "not " } else { "" })
        }
        ExprKind::StringTest { op, expr, pattern } => {
            format!("{} {} {}", p(expr), op.keyword(), p(pattern))
        }
        ExprKind::Window { expr, window } => match window {
            Window::Within(d) => format!("{} within {}", p(expr), p(d)),
            Window::Range(start, end) => format!("{} within {} .. {}", p(expr), p(start), p(end)),
            Window::Since(start) => format!("{} since {}", p(expr), p(start)),
        },
        ExprKind::Occurrence { last, set } => {
            format!("{} {}", if *last { "last" } else { "first" }, expr(set))
        }
        ExprKind::Sequence { first, steps } => {
            let mut text = p(first);
            for step in steps {
                text.push_str(" then ");
                if step.negated {
                    text.push_str("not ");
                }
                text.push_str(&p(&step.event));
                if let Some(gap) = &step.gap {
                    let _ = write!(text, " within {}", p(gap));
                }
            }
            text
        }
        ExprKind::Top { amount, by } => {
            let amount = match amount {
                TopAmount::Count(n) => n.to_string(),
                TopAmount::Share(share) => percent(*share),
            };
            format!("top {amount} by {}", p(by))
        }
    }
}

/// An operand: atoms as they are, anything else in parentheses.
fn operand(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Literal(Literal::Int(i)) if *i < 0 => format!("({})", expr(e)),
        ExprKind::Literal(Literal::Float(f)) if *f < 0.0 => format!("({})", expr(e)),
        ExprKind::Literal(_)
        | ExprKind::Now
        | ExprKind::List(_)
        | ExprKind::Name(_)
        | ExprKind::Call { .. }
        | ExprKind::Member { .. }
        | ExprKind::Error => expr(e),
        _ => format!("({})", expr(e)),
    }
}

fn literal(literal: &Literal) -> String {
    match literal {
        Literal::Int(i) => i.to_string(),
        Literal::Float(f) if f.fract() == 0.0 => format!("{f:.1}"),
        Literal::Float(f) => format!("{f}"),
        Literal::String(s) => string(s),
        Literal::Bool(b) => b.to_string(),
        Literal::Null => "null".to_string(),
        Literal::Duration(d) => duration(d),
        Literal::Timestamp(ns) => timestamp(*ns),
        Literal::Percent(share) => percent(*share),
    }
}

/// Millionths as a percentage: `125000` is `12.5%`.
fn percent(share: i64) -> String {
    let (whole, fraction) = (share / 10_000, share % 10_000);
    if fraction == 0 {
        format!("{whole}%")
    } else {
        let digits = format!("{fraction:04}");
        format!("{whole}.{}%", digits.trim_end_matches('0'))
    }
}

fn duration(d: &Duration) -> String {
    format!("{}{}", d.amount, d.unit.suffix())
}

fn timestamp(ns: i64) -> String {
    let seconds = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    match chrono::DateTime::from_timestamp(seconds, nanos) {
        Some(time) if nanos == 0 => time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(time) => time.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string(),
        None => "null".to_string(),
    }
}

fn string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
