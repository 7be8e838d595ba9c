//! Diagnostics -> text (ariadne) or JSON. The only user of ariadne.

use ariadne::{
    Color, Config, IndexType, Label as AriadneLabel, Report as AriadneReport, ReportKind,
};
use serde::Serialize;

use crate::diagnostic::{Diagnostic, Severity, SourceMap};

/// Renders one diagnostic as a report; `color` adds ANSI colours.
pub fn render(diagnostic: &Diagnostic, sources: &SourceMap, color: bool) -> String {
    let config = Config::default()
        .with_color(color)
        .with_index_type(IndexType::Byte);
    let kind = match diagnostic.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let Some(primary) = &diagnostic.primary else {
        // Nothing to point at: a plain message in the same style.
        let mut text = format!(
            "{}[{}]: {}\n",
            match diagnostic.severity {
                Severity::Error => "Error",
                Severity::Warning => "Warning",
            },
            diagnostic.code,
            diagnostic.message
        );
        for note in &diagnostic.notes {
            text.push_str(&format!("  note: {note}\n"));
        }
        if let Some(help) = &diagnostic.help {
            text.push_str(&format!("  help: {help}\n"));
        }
        return text;
    };
    let file_name = |file| sources.name(file).to_string();
    let clamp = |file, start: usize, end: usize| {
        let len = sources.text(file).len();
        let start = start.min(len);
        start..end.clamp(start, len)
    };
    let primary_range = clamp(primary.span.file, primary.span.start, primary.span.end);
    let mut report =
        AriadneReport::build(kind, (file_name(primary.span.file), primary_range.clone()))
            .with_config(config)
            .with_code(diagnostic.code)
            .with_message(&diagnostic.message)
            .with_label(
                AriadneLabel::new((file_name(primary.span.file), primary_range))
                    .with_message(&primary.message)
                    .with_color(if diagnostic.is_error() {
                        Color::Red
                    } else {
                        Color::Yellow
                    }),
            );
    for label in &diagnostic.secondary {
        report = report.with_label(
            AriadneLabel::new((
                file_name(label.span.file),
                clamp(label.span.file, label.span.start, label.span.end),
            ))
            .with_message(&label.message)
            .with_color(Color::Blue),
        );
    }
    for note in &diagnostic.notes {
        report = report.with_note(note);
    }
    if let Some(help) = &diagnostic.help {
        report = report.with_help(help);
    }
    let mut files: Vec<u32> = vec![primary.span.file];
    files.extend(diagnostic.secondary.iter().map(|l| l.span.file));
    files.dedup();
    let cache = ariadne::sources(
        files
            .into_iter()
            .map(|f| (file_name(f), sources.text(f).to_string())),
    );
    let mut buffer = Vec::new();
    match report.finish().write(cache, &mut buffer) {
        Ok(()) => String::from_utf8_lossy(&buffer).into_owned(),
        Err(_) => format!("error[{}]: {}\n", diagnostic.code, diagnostic.message),
    }
}

/// Renders all diagnostics, one after the other.
pub fn render_all<'a>(
    diagnostics: impl IntoIterator<Item = &'a Diagnostic>,
    sources: &SourceMap,
    color: bool,
) -> String {
    diagnostics
        .into_iter()
        .map(|d| render(d, sources, color))
        .collect()
}

#[derive(Serialize)]
struct JsonPosition {
    line: usize,
    column: usize,
}

#[derive(Serialize)]
struct JsonLabel {
    file: String,
    start: usize,
    end: usize,
    start_position: JsonPosition,
    end_position: JsonPosition,
    message: String,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    code: &'a str,
    severity: Severity,
    message: &'a str,
    /// The primary location, if any.
    location: Option<JsonLabel>,
    labels: Vec<JsonLabel>,
    notes: &'a [String],
    help: Option<&'a str>,
}

/// The diagnostics as a JSON array, for editors and embedders.
pub fn to_json<'a>(
    diagnostics: impl IntoIterator<Item = &'a Diagnostic>,
    sources: &SourceMap,
) -> String {
    let label = |l: &crate::diagnostic::Label| {
        let (line, column) = sources.line_col(l.span.file, l.span.start);
        let (end_line, end_column) = sources.line_col(l.span.file, l.span.end);
        JsonLabel {
            file: sources.name(l.span.file).to_string(),
            start: l.span.start,
            end: l.span.end,
            start_position: JsonPosition { line, column },
            end_position: JsonPosition {
                line: end_line,
                column: end_column,
            },
            message: l.message.clone(),
        }
    };
    let items: Vec<JsonDiagnostic> = diagnostics
        .into_iter()
        .map(|d| JsonDiagnostic {
            code: d.code,
            severity: d.severity,
            message: &d.message,
            location: d.primary.as_ref().map(label),
            labels: d.secondary.iter().map(label).collect(),
            notes: &d.notes,
            help: d.help.as_deref(),
        })
        .collect();
    serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".to_string())
}
