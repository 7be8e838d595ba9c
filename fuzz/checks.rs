//! What the fuzz targets check, shared with `tests/fuzz_regressions.rs`, which replays
//! every input the fuzzers ever failed on.

use segql::check::ir::ValueKind;
use segql::repl::lexer::tokens;
use segql::sql::{SqlDialect, TableNaming};
use segql::{Report, Session};

/// Parse → check → lower: diagnostics or plans, never a panic; a program that checks lowers.
pub fn compile(session: &mut Session, text: &str) {
    session.clear_sources();
    if session.add_source("fuzz.seg", text).is_ok() {
        let segments: Vec<String> = session
            .program()
            .segments
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let values: Vec<String> = session
            .value_names(ValueKind::Metric)
            .into_iter()
            .chain(session.value_names(ValueKind::Stage))
            .map(str::to_string)
            .collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        if !segments.is_empty() {
            lowers("its segments", session.plan_segments(&segments, &values));
            lowers("its counts", session.plan_counts(&segments));
            // SQL for another engine: E0409 is an answer, a panic is not.
            for dialect in [SqlDialect::Postgres, SqlDialect::Mysql] {
                let _ = session.segment_sql(segments[0], &[], dialect, &TableNaming::default());
            }
        }
        if !values.is_empty() {
            lowers("its metrics and stages", session.plan_values(&values));
        }
    }
    // The same text as one REPL line: a condition, else a value.
    session.clear_sources();
    if let Ok(condition) = session.check_condition("fuzz", text) {
        lowers("a condition", session.plan_condition(&condition, &[]));
    } else if let Ok(value) = session.check_value("fuzz", text) {
        lowers("a value", session.plan_expression_values(&value, "fuzz"));
    }
}

/// What checked must lower: an error here is a compiler bug.
fn lowers<T>(what: &str, planned: Result<T, Report>) {
    if let Err(report) = planned {
        panic!(
            "{what} checked but did not lower:\n{}",
            report.render(false)
        );
    }
}

/// The REPL's lexer never fails, and its tokens tile the text in order, each on character
/// boundaries, so highlighting can slice the line safely.
pub fn lex(text: &str) {
    let mut end = 0;
    for lexeme in tokens(text) {
        assert!(
            lexeme.start >= end,
            "tokens overlap: {lexeme:?} after {end}"
        );
        assert!(lexeme.start < lexeme.end, "an empty token: {lexeme:?}");
        assert!(text.is_char_boundary(lexeme.start) && text.is_char_boundary(lexeme.end));
        let gap = &text[end..lexeme.start];
        assert!(skippable(gap), "{gap:?} skipped before {lexeme:?}");
        end = lexeme.end;
    }
    assert!(
        skippable(&text[end..]),
        "{:?} skipped at the end",
        &text[end..]
    );
}

/// What the lexer skips between tokens.
fn skippable(text: &str) -> bool {
    text.chars()
        .all(|c| matches!(c, ' ' | '\t' | '\r' | '\n' | '\x0c'))
}
