//! pest errors -> diagnostics in the user's words: what was expected, after what.

use pest::error::{Error, ErrorVariant, InputLocation};

use super::parser::Rule;
use crate::diagnostic::{Diagnostic, FileId, Span};

/// What the user is told a rule stands for. Several rules share one description.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "the end of the input",
        Rule::kw_segment | Rule::kw_metric | Rule::kw_stage | Rule::declaration_input => {
            "a declaration (`segment`, `metric` or `stage`)"
        }
        Rule::ident => "a name",
        Rule::assign => "`=`",
        Rule::open_brace => "`{`",
        Rule::close_brace => "`}`",
        Rule::close_paren => "`)`",
        Rule::close_bracket => "`]`",
        Rule::comma => "`,`",
        Rule::string => "a string",
        Rule::stage_arm => "a stage label (`label = condition`)",
        Rule::compare_op
        | Rule::compare_tail
        | Rule::between_tail
        | Rule::in_tail
        | Rule::not_in_tail
        | Rule::has_tail
        | Rule::is_null_tail
        | Rule::string_tail
        | Rule::string_op
        | Rule::kw_between
        | Rule::kw_is
        | Rule::kw_has
        | Rule::kw_contains
        | Rule::kw_starts_with
        | Rule::kw_ends_with
        | Rule::kw_matches => "a comparison operator",
        Rule::arith_op => "an arithmetic operator",
        Rule::kw_and => "`and`",
        Rule::kw_then | Rule::sequence_step => "`then`",
        Rule::kw_or => "`or`",
        Rule::window | Rule::kw_within | Rule::kw_since => "a window (`within`, `since`)",
        Rule::range_dots => "`..`",
        Rule::member => "`.column`",
        Rule::has_quantifier | Rule::kw_any | Rule::kw_all => "`any` or `all`",
        Rule::kw_null => "`null`",
        Rule::kw_in => "`in`",
        Rule::kw_ago => "`ago`",
        Rule::argument => "an argument",
        Rule::duration | Rule::duration_unit => "a duration such as `30d`",
        _ => "an expression",
    })
}

/// A syntax error, located in `file` at `offset + (position in text)`.
pub fn syntax_error(error: &Error<Rule>, text: &str, file: FileId, offset: usize) -> Diagnostic {
    let position = match error.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((start, _)) => start,
    };
    let mut expected: Vec<&str> = Vec::new();
    if let ErrorVariant::ParsingError { positives, .. } = &error.variant {
        for rule in positives {
            if let Some(description) = describe(*rule)
                && !expected.contains(&description)
            {
                expected.push(description);
            }
        }
    }
    // After a complete operand pest lists every operator that could follow; say it in one phrase.
    let after_operand = expected.contains(&"a comparison operator");
    if after_operand {
        expected.retain(|d| {
            !matches!(
                *d,
                "an expression"
                    | "an arithmetic operator"
                    | "a window (`within`, `since`)"
                    | "`.column`"
                    | "`in`"
                    | "`and`"
                    | "`or`"
                    | "`then`"
                    | "the end of the input"
                    | "a declaration (`segment`, `metric` or `stage`)"
                    | "a stage label (`label = condition`)"
            )
        });
        for description in expected.iter_mut() {
            if *description == "a comparison operator" {
                *description = "an operator (such as `>` or `and`)";
            }
        }
    }
    // Keep "an expression" first: it is what users most often forgot.
    expected.sort_by_key(|d| (*d != "an expression", *d == "the end of the input"));

    let found = found_at(text, position);
    let after = previous_token(text, position);
    let expected_text = join_alternatives(&expected);
    let mut message = match (&after, expected.is_empty()) {
        (_, true) => format!("unexpected {found}"),
        (Some(after), false) => format!("expected {expected_text} after `{after}`"),
        (None, false) => format!("expected {expected_text}"),
    };
    if !expected.is_empty() {
        message.push_str(&format!(", found {found}"));
    }
    let end = position + found_len(text, position);
    let mut diagnostic = Diagnostic::error("E0001", message).with_label(
        Span::new(file, offset + position, offset + end),
        if expected.is_empty() {
            "not valid here".to_string()
        } else {
            format!("expected {expected_text}")
        },
    );
    let found_value =
        text[position..].starts_with(|c: char| c.is_alphanumeric() || c == '"' || c == '_');
    let help = help_for(text, position, &after, &expected).or_else(|| {
        (after_operand && found_value).then(|| {
            format!(
                "two values need an operator between them, e.g. `{} > {}`",
                after.clone().unwrap_or_default(),
                &text[position..position + found_len(text, position)]
            )
        })
    });
    if let Some(help) = help {
        diagnostic = diagnostic.with_help(help);
    }
    diagnostic
}

fn help_for(
    text: &str,
    position: usize,
    after: &Option<String>,
    expected: &[&str],
) -> Option<String> {
    let rest = &text[position..];
    if rest.starts_with('"') && !rest[1..].lines().next().unwrap_or("").contains('"') {
        return Some("this string is not closed: end it with `\"` on the same line".into());
    }
    if rest.starts_with("==") {
        return Some("SegQL compares with a single `=`".into());
    }
    if rest.starts_with("&&") {
        return Some("write `and` instead of `&&`".into());
    }
    if rest.starts_with("||") {
        return Some("write `or` instead of `||`".into());
    }
    if rest.starts_with('\'') {
        return Some("strings are written in double quotes: `\"text\"`".into());
    }
    let is_comparison_op = ["=", "!=", "<", ">"].iter().any(|op| rest.starts_with(op));
    if is_comparison_op && expected.contains(&"a window (`within`, `since`)") && after.is_some() {
        return Some(
            "comparisons cannot be chained: combine them with `and`, e.g. `a > 1 and a < 5`".into(),
        );
    }
    if matches!(after.as_deref(), Some("segment" | "metric" | "stage")) {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !word.is_empty() {
            return Some(format!(
                "`{word}` is a keyword and cannot be a name; choose another, such as `{word}_1`"
            ));
        }
    }
    None
}

fn join_alternatives(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The token at `position`, for "found ..." in messages.
fn found_at(text: &str, position: usize) -> String {
    let rest = &text[position..];
    match rest.chars().next() {
        None => "the end of the input".to_string(),
        Some(_) => format!("`{}`", &rest[..found_len(text, position)]),
    }
}

fn found_len(text: &str, position: usize) -> usize {
    let rest = &text[position..];
    let word: usize = rest
        .char_indices()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_' || *c == '.')
        .map(|(_, c)| c.len_utf8())
        .sum();
    if word > 0 {
        word
    } else {
        rest.chars().next().map(char::len_utf8).unwrap_or(0)
    }
}

/// The last token before `position`, ignoring whitespace and comments.
fn previous_token(text: &str, position: usize) -> Option<String> {
    let before = &text[..position];
    let mut lines: Vec<&str> = before.lines().collect();
    if before.ends_with('\n') {
        lines.push("");
    }
    while let Some(line) = lines.pop() {
        let code = strip_comment(line).trim_end();
        if code.is_empty() {
            continue;
        }
        let last = code.chars().last()?;
        let token: String = if last.is_alphanumeric() || last == '_' || last == '.' {
            let start = code
                .char_indices()
                .rev()
                .take_while(|(_, c)| c.is_alphanumeric() || *c == '_' || *c == '.')
                .last()
                .map(|(i, _)| i)
                .unwrap_or(0);
            code[start..].to_string()
        } else {
            last.to_string()
        };
        return Some(token);
    }
    None
}

/// The part of a line before a `#` comment that is not inside a string.
pub(super) fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => {}
        }
    }
    line
}
