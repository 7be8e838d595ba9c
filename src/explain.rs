//! "Why is this customer in (or not in) this segment?": the segment's condition as a tree,
//! with the value every node took for one profile, and the events behind every measure.
//! Values are computed by the same DataFusion plans as membership, one column per node.

use std::fmt::Write;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::logical_expr::{Expr, lit};

use crate::check::display;
use crate::check::ir::*;
use crate::diagnostic::{Diagnostic, SourceMap};
use crate::exec::format_cell;
use crate::plan::OutputColumn;
use crate::{Report, Session, internal_error};

/// How many events are listed under each measure.
const EVENTS_SHOWN: usize = 10;

/// One node of the explanation tree.
struct Node<'e> {
    depth: usize,
    /// How the user wrote it (the source text at its span), or a description.
    label: String,
    expr: &'e TypedExpr,
}

/// The explanation of `segment`'s membership for the profile with key `key`.
pub async fn why(session: &Session, segment: &str, key: &str) -> Result<String, Report> {
    let report = |d: Diagnostic| Report::new(d.into(), session.sources());
    let checked = session.segments(&[segment])?[0].clone();
    let key_expr = key_literal(session, key).map_err(report)?;

    let mut nodes = Vec::new();
    collect(
        &checked.condition,
        0,
        session.program(),
        session.sources(),
        &mut nodes,
    );
    let columns: Vec<OutputColumn> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| OutputColumn {
            name: format!("n{i}"),
            expr: node.expr.clone(),
        })
        .collect();
    let planner = session.planner();
    let plan = planner
        .values_for_key(&columns, key_expr.clone())
        .map_err(|e| report(internal_error(&e.to_string())))?;
    let batches = session.execute(plan).await?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        let key_name = &session.schema().profiles.key;
        return Err(report(
            Diagnostic::error("E0402", format!("no profile has {key_name} = {key}")).with_help(
                format!(
                    "check the key; `:sample` or `segql run` lists members with their `{key_name}`"
                ),
            ),
        ));
    };
    let values: Vec<String> = (0..nodes.len())
        .map(|i| format_cell(batch, i + 1, 0))
        .collect();

    let member = values.first().map(String::as_str) == Some("true");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {key} is {}a member of `{segment}` at {}",
        session.schema().profiles.key,
        if member { "" } else { "NOT " },
        display::timestamp(session.as_of())
    );
    if let Some(description) = &checked.description {
        let _ = writeln!(out, "  \"{description}\"");
    }
    for (node, value) in nodes.iter().zip(&values) {
        let marker = match (node.expr.ty == Type::Bool, value.as_str()) {
            (true, "true") => "✓",
            (true, "false") => "✗",
            (true, _) => "?",
            _ => "=",
        };
        let shown = if value.is_empty() {
            "null (unknown)"
        } else {
            value
        };
        let _ = writeln!(
            out,
            "{}{marker} {}  → {shown}",
            "  ".repeat(node.depth + 1),
            node.label
        );
        if let IrExpr::Sequence(id) = node.expr.kind {
            let indent = "  ".repeat(node.depth + 3);
            let sequence = &session.program().sequences[id];
            let _ = writeln!(out, "{indent}{}", display::sequence(sequence));
            for (step, written) in sequence.steps.iter().enumerate() {
                let _ = writeln!(out, "{indent}step {}: {}", step + 1, written.event);
                let events_plan = planner
                    .sequence_step_events(id, step, key_expr.clone(), EVENTS_SHOWN + 1)
                    .map_err(|e| report(internal_error(&e.to_string())))?;
                let events = session.execute(events_plan).await?;
                list_events(&mut out, &format!("{indent}  "), &events);
            }
        }
        if let IrExpr::Measure(id) = node.expr.kind {
            let indent = "  ".repeat(node.depth + 3);
            let _ = writeln!(
                out,
                "{indent}{}",
                display::measure(&session.program().measures[id])
            );
            let events_plan = planner
                .measure_events(id, key_expr.clone(), EVENTS_SHOWN + 1)
                .map_err(|e| report(internal_error(&e.to_string())))?;
            let events = session.execute(events_plan).await?;
            list_events(&mut out, &indent, &events);
        }
    }
    Ok(out)
}

/// One line per event (its time, then `column=value`), at most [`EVENTS_SHOWN`].
fn list_events(out: &mut String, indent: &str, events: &[RecordBatch]) {
    let rows: usize = events.iter().map(RecordBatch::num_rows).sum();
    if rows == 0 {
        let _ = writeln!(out, "{indent}no matching events");
    }
    let mut shown_rows = 0;
    for batch in events {
        for row in 0..batch.num_rows() {
            if shown_rows == EVENTS_SHOWN {
                let _ = writeln!(out, "{indent}… more events");
                return;
            }
            let cells: Vec<String> = (0..batch.num_columns())
                .map(|c| {
                    let name = batch.schema().field(c).name().clone();
                    let value = format_cell(batch, c, row);
                    if c == 0 {
                        value
                    } else {
                        format!("{name}={value}")
                    }
                })
                .collect();
            let _ = writeln!(out, "{indent}• {}", cells.join("  "));
            shown_rows += 1;
        }
    }
}

fn key_literal(session: &Session, key: &str) -> Result<Expr, Diagnostic> {
    let profiles = &session.schema().profiles;
    match profiles.column(&profiles.key).and_then(|c| c.ty.clone()) {
        Some(Type::Int) => key.trim().parse::<i64>().map(lit).map_err(|_| {
            Diagnostic::error(
                "E0402",
                format!("`{key}` is not a valid {}: keys are integers", profiles.key),
            )
            .with_help("give the key as a number, e.g. `:why big_spenders 42`")
        }),
        _ => Ok(lit(key.trim().trim_matches('"'))),
    }
}

/// Pre-order nodes worth showing: conditions, values and measures; literals are shown
/// in their parent's label. A ranking shows the value it orders by (a lookalike, its seed
/// and features).
fn collect<'e>(
    expr: &'e TypedExpr,
    depth: usize,
    program: &'e Program,
    sources: &SourceMap,
    out: &mut Vec<Node<'e>>,
) {
    let label = match &expr.kind {
        IrExpr::IsTrue(_) => format!("{} (segment)", source_text(expr, sources)),
        IrExpr::Stage { .. } => format!("{} (stage)", source_text(expr, sources)),
        _ => source_text(expr, sources),
    };
    out.push(Node { depth, label, expr });
    let child = |e: &'e TypedExpr, out: &mut Vec<Node<'e>>| {
        if !matches!(
            e.kind,
            IrExpr::Literal(_) | IrExpr::RelativeTime(_) | IrExpr::List(_)
        ) {
            collect(e, depth + 1, program, sources, out);
        }
    };
    match &expr.kind {
        IrExpr::Not(e) | IrExpr::IsTrue(e) | IrExpr::Negate(e) | IrExpr::IsNull { expr: e, .. } => {
            child(e, out)
        }
        IrExpr::Binary { lhs, rhs, .. } => {
            child(lhs, out);
            child(rhs, out);
        }
        IrExpr::Between { expr, low, high } => {
            for e in [expr, low, high] {
                child(e, out);
            }
        }
        IrExpr::InList { expr, .. } => child(expr, out),
        IrExpr::InArray { expr, array, .. } => {
            child(expr, out);
            child(array, out);
        }
        IrExpr::Has { array, .. } => child(array, out),
        IrExpr::StringTest { expr, .. } => child(expr, out),
        IrExpr::Function { args, .. } => args.iter().for_each(|a| child(a, out)),
        IrExpr::Stage { arms } => arms.iter().for_each(|(_, c)| child(c, out)),
        IrExpr::Rank(id) => {
            let ranking = &program.rankings[*id];
            if let Some(seed) = &ranking.seed {
                child(seed, out);
            }
            match &ranking.by.kind {
                IrExpr::List(features) => features.iter().for_each(|f| child(f, out)),
                _ => child(&ranking.by, out),
            }
        }
        _ => {}
    }
}

fn source_text(expr: &TypedExpr, sources: &SourceMap) -> String {
    let text = sources.text(expr.span.file);
    let raw = text.get(expr.span.start..expr.span.end).unwrap_or_default();
    let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return display::expr(expr);
    }
    if collapsed.chars().count() > 80 {
        let short: String = collapsed.chars().take(77).collect();
        return format!("{short}...");
    }
    collapsed
}
