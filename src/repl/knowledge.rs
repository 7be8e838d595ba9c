//! What the REPL knows about names, for highlighting and completion: a snapshot of the
//! catalog and the session's definitions, refreshed after every line.

use std::collections::BTreeMap;

use super::lexer::{Lexeme, Token, tokens};
use crate::Session;
use crate::check::POPULATION_FUNCTIONS;
use crate::check::ir::{Aggregate, Function, ValueKind};
use crate::syntax::KEYWORDS;

/// The names the REPL can colour and complete.
#[derive(Debug, Clone, Default)]
pub struct Knowledge {
    pub profile_columns: Vec<String>,
    /// Event table -> its columns.
    pub events: BTreeMap<String, Vec<String>>,
    pub segments: Vec<String>,
    pub metrics: Vec<String>,
    pub stages: Vec<String>,
    pub tables: Vec<String>,
}

/// What a name in the input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Event,
    ProfileColumn,
    EventColumn,
    Metric,
    Stage,
    Segment,
    Function,
    /// Being defined: the name after `segment`, `metric` or `stage`, or a stage label.
    Definition,
    Unknown,
}

/// The meta-commands, for completion and `:help`.
pub const META_COMMANDS: [(&str, &str); 16] = [
    (":help", "this list"),
    (
        ":schema",
        "[TABLE]  tables, or one table's columns and types",
    ),
    (":segments", "the session's segments, metrics and stages"),
    (":load", "FILE  add a .seg file's definitions"),
    (":as-of", "[TIME]  show or set the evaluation time"),
    (":count", "the size of every session segment, in one pass"),
    (":sample", "N  how many members to show"),
    (
        ":with",
        "[COL,...]  extra columns for samples (empty to clear)",
    ),
    (
        ":explain",
        "EXPR  the optimized logical plan and the physical plan",
    ),
    (
        ":sql",
        "[DIALECT] EXPR  the members as SQL for postgres (default), duckdb, mysql, sqlite or bigquery",
    ),
    (":why", "SEGMENT KEY  why a profile is in a segment or not"),
    (
        ":save",
        "FILE  write the session's definitions as a .seg file",
    ),
    (":timing", "on|off  show how long each line took"),
    (":clear", "forget the definitions typed in this session"),
    (":quit", "leave (Ctrl-D works too)"),
    (":exit", "leave"),
];

impl Knowledge {
    pub fn of(session: &Session) -> Knowledge {
        let schema = session.schema();
        let program = session.program();
        Knowledge {
            profile_columns: schema
                .profiles
                .columns
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            events: schema
                .events
                .iter()
                .map(|e| {
                    (
                        e.name.clone(),
                        e.columns.iter().map(|c| c.name.clone()).collect(),
                    )
                })
                .collect(),
            segments: program.segments.iter().map(|s| s.name.clone()).collect(),
            metrics: session
                .value_names(ValueKind::Metric)
                .into_iter()
                .map(String::from)
                .collect(),
            stages: session
                .value_names(ValueKind::Stage)
                .into_iter()
                .map(String::from)
                .collect(),
            tables: std::iter::once(schema.profiles.name.clone())
                .chain(schema.events.iter().map(|e| e.name.clone()))
                .collect(),
        }
    }

    fn is_function(name: &str) -> bool {
        Function::from_name(name).is_some() || Aggregate::from_name(name).is_some()
    }

    /// Classifies every identifier of `line`, by token index.
    pub fn classify(&self, line: &str) -> Vec<(Lexeme, Option<NameKind>)> {
        let lexemes = tokens(line);
        let text = |l: &Lexeme| &line[l.start..l.end];
        // For each open parenthesis: the event table it filters, if any.
        let mut parens: Vec<Option<String>> = Vec::new();
        let mut out = Vec::with_capacity(lexemes.len());
        for (i, lexeme) in lexemes.iter().enumerate() {
            let previous = i.checked_sub(1).map(|j| &lexemes[j]);
            let next = lexemes.get(i + 1);
            let kind = match lexeme.token {
                Token::OpenParen => {
                    let event = previous
                        .filter(|p| p.token == Token::Ident && self.events.contains_key(text(p)))
                        .map(|p| text(p).to_string());
                    parens.push(event);
                    None
                }
                Token::CloseParen => {
                    parens.pop();
                    None
                }
                Token::Ident => {
                    let name = text(lexeme);
                    let after_dot = previous.filter(|p| p.token == Token::Dot).and_then(|_| {
                        i.checked_sub(2)
                            .map(|j| &lexemes[j])
                            .filter(|b| b.token == Token::Ident || b.token == Token::CloseParen)
                    });
                    let names_declaration = previous.is_some_and(|p| {
                        p.token == Token::Keyword
                            && matches!(text(p), "segment" | "metric" | "stage")
                    });
                    // A stage label: `label = ...` inside `{ }`, not after an operator.
                    let in_braces = lexemes[..i]
                        .iter()
                        .filter(|l| l.token == Token::OpenBrace)
                        .count()
                        > lexemes[..i]
                            .iter()
                            .filter(|l| l.token == Token::CloseBrace)
                            .count();
                    let is_label = in_braces
                        && next.is_some_and(|n| n.token == Token::Operator && text(n) == "=")
                        && previous
                            .is_none_or(|p| !matches!(p.token, Token::Operator | Token::Keyword));
                    let defining = names_declaration || is_label;
                    Some(if defining {
                        NameKind::Definition
                    } else if let Some(base) = after_dot {
                        let event = if base.token == Token::Ident {
                            Some(text(base).to_string())
                        } else {
                            self.event_before_paren(line, &lexemes, i - 2)
                        };
                        match event.and_then(|e| self.events.get(&e)) {
                            Some(columns) if columns.iter().any(|c| c == name) => {
                                NameKind::EventColumn
                            }
                            _ => NameKind::Unknown,
                        }
                    } else if let Some(Some(event)) = parens.last() {
                        let columns = self.events.get(event).map(Vec::as_slice).unwrap_or(&[]);
                        if columns.iter().any(|c| c == name) {
                            NameKind::EventColumn
                        } else if Self::is_function(name) {
                            NameKind::Function
                        } else {
                            NameKind::Unknown
                        }
                    } else if next.is_some_and(|n| n.token == Token::OpenParen)
                        && Self::is_function(name)
                    {
                        NameKind::Function
                    } else if self.events.contains_key(name) {
                        NameKind::Event
                    } else if previous.is_some_and(|p| p.token == Token::Keyword && text(p) == "in")
                        && self.segments.iter().any(|s| s == name)
                    {
                        NameKind::Segment
                    } else if self.metrics.iter().any(|m| m == name) {
                        NameKind::Metric
                    } else if self.stages.iter().any(|s| s == name) {
                        NameKind::Stage
                    } else if self.profile_columns.iter().any(|c| c == name) {
                        NameKind::ProfileColumn
                    } else if self.segments.iter().any(|s| s == name) {
                        NameKind::Segment
                    } else {
                        NameKind::Unknown
                    })
                }
                _ => None,
            };
            out.push((lexeme.clone(), kind));
        }
        out
    }

    /// For `purchased(...)` ending at `close` (a `)`), the event table name.
    fn event_before_paren(&self, line: &str, lexemes: &[Lexeme], close: usize) -> Option<String> {
        let mut depth = 0usize;
        for j in (0..=close).rev() {
            match lexemes[j].token {
                Token::CloseParen => depth += 1,
                Token::OpenParen => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        let name = j
                            .checked_sub(1)
                            .map(|k| &line[lexemes[k].start..lexemes[k].end])?;
                        return self.events.contains_key(name).then(|| name.to_string());
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Completions for the word ending at `pos`: the start of the word and the candidates.
    pub fn complete(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        let trimmed = before.trim_start();
        if let Some(rest) = trimmed
            .strip_prefix(":load ")
            .or_else(|| trimmed.strip_prefix(":save "))
        {
            let start = pos - rest.len();
            return (start, complete_path(rest));
        }
        if trimmed.starts_with(':') && !trimmed.contains(' ') {
            let start = pos - trimmed.len();
            let candidates = META_COMMANDS
                .iter()
                .map(|(c, _)| c.to_string())
                .filter(|c| c.starts_with(trimmed))
                .collect();
            return (start, candidates);
        }
        if let Some(rest) = trimmed.strip_prefix(":schema ") {
            return (pos - rest.len(), filter(&self.tables, rest));
        }
        if let Some(rest) = trimmed.strip_prefix(":why ")
            && !rest.contains(' ')
        {
            return (pos - rest.len(), filter(&self.segments, rest));
        }
        // Identifiers only from here on.
        let word_start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || *c == '_')
            .last()
            .map(|(i, _)| i)
            .unwrap_or(pos);
        let prefix_ident = &before[word_start..];
        let lexemes = tokens(&before[..word_start]);
        let text = |l: &Lexeme| &before[l.start..l.end];
        let last = lexemes.last();
        // `purchased.` -> that event's columns.
        if last.is_some_and(|l| l.token == Token::Dot) {
            let event = match lexemes.len().checked_sub(2).map(|j| &lexemes[j]) {
                Some(base) if base.token == Token::Ident => Some(text(base).to_string()),
                Some(base) if base.token == Token::CloseParen => {
                    self.event_before_paren(before, &lexemes, lexemes.len() - 2)
                }
                _ => None,
            };
            let columns = event
                .and_then(|e| self.events.get(&e))
                .cloned()
                .unwrap_or_default();
            return (word_start, filter(&columns, prefix_ident));
        }
        // Inside `purchased(` -> that event's columns, functions, keywords.
        let mut open: Vec<Option<String>> = Vec::new();
        for (i, lexeme) in lexemes.iter().enumerate() {
            match lexeme.token {
                Token::OpenParen => open.push(
                    i.checked_sub(1)
                        .map(|j| text(&lexemes[j]).to_string())
                        .filter(|name| self.events.contains_key(name)),
                ),
                Token::CloseParen => {
                    open.pop();
                }
                _ => {}
            }
        }
        if let Some(Some(event)) = open.last() {
            let mut candidates = self.events.get(event).cloned().unwrap_or_default();
            candidates.extend(Function::ALL.iter().map(|f| f.name().to_string()));
            candidates.extend(
                [
                    "and",
                    "or",
                    "not",
                    "in",
                    "is",
                    "null",
                    "between",
                    "contains",
                    "starts_with",
                    "ends_with",
                    "matches",
                ]
                .map(String::from),
            );
            return (word_start, filter(&candidates, prefix_ident));
        }
        // `in ` as a prefix -> segments.
        if last.is_some_and(|l| l.token == Token::Keyword && text(l) == "in") {
            let before_in = lexemes.len().checked_sub(2).map(|j| &lexemes[j]);
            let is_prefix = before_in.is_none_or(|b| {
                matches!(b.token, Token::OpenParen | Token::Operator | Token::Comma)
                    || (b.token == Token::Keyword && matches!(text(b), "and" | "or" | "not"))
            });
            if is_prefix {
                return (word_start, filter(&self.segments, prefix_ident));
            }
        }
        let mut candidates: Vec<String> = Vec::new();
        candidates.extend(self.profile_columns.iter().cloned());
        candidates.extend(self.metrics.iter().cloned());
        candidates.extend(self.stages.iter().cloned());
        candidates.extend(self.events.keys().cloned());
        candidates.extend(Function::ALL.iter().map(|f| f.name().to_string()));
        candidates.extend(Aggregate::NAMES.iter().map(|a| a.to_string()));
        candidates.extend(POPULATION_FUNCTIONS.iter().map(|f| f.to_string()));
        candidates.push("top".to_string());
        candidates.push("then".to_string());
        candidates.extend(KEYWORDS.iter().map(|k| k.to_string()));
        candidates.sort();
        candidates.dedup();
        (word_start, filter(&candidates, prefix_ident))
    }
}

fn filter(candidates: &[String], prefix: &str) -> Vec<String> {
    let mut found: Vec<String> = candidates
        .iter()
        .filter(|c| c.starts_with(prefix))
        .cloned()
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Files and directories starting with `partial`.
fn complete_path(partial: &str) -> Vec<String> {
    let (directory, file_prefix) = match partial.rfind('/') {
        Some(i) => (&partial[..=i], &partial[i + 1..]),
        None => ("", partial),
    };
    let read_from = if directory.is_empty() { "." } else { directory };
    let Ok(entries) = std::fs::read_dir(read_from) else {
        return Vec::new();
    };
    let mut found: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(file_prefix)
                || (name.starts_with('.') && !file_prefix.starts_with('.'))
            {
                return None;
            }
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            Some(format!(
                "{directory}{name}{}",
                if is_dir { "/" } else { "" }
            ))
        })
        .collect();
    found.sort();
    found
}
