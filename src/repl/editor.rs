//! The terminal layer of the REPL: rustyline with highlighting, completion, hints from
//! history, multi-line input and a persistent history.

use std::borrow::Cow;
use std::cell::RefCell;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Config, Context, Editor, Helper};

use super::knowledge::{Knowledge, NameKind};
use super::lexer::Token;
use super::{Repl, is_complete};

const RESET: &str = "\x1b[0m";

/// The ANSI style of a token (and of a name, by what it names).
pub fn style(token: Token, kind: Option<NameKind>) -> &'static str {
    match (token, kind) {
        (Token::Keyword, _) => "\x1b[1;35m",
        (_, Some(NameKind::Event)) => "\x1b[1;36m",
        (_, Some(NameKind::EventColumn)) => "\x1b[36m",
        (_, Some(NameKind::ProfileColumn)) => "\x1b[32m",
        (_, Some(NameKind::Metric | NameKind::Stage)) => "\x1b[33m",
        (_, Some(NameKind::Segment)) => "\x1b[1;34m",
        (_, Some(NameKind::Function)) => "\x1b[34m",
        (_, Some(NameKind::Definition)) => "\x1b[1m",
        (_, Some(NameKind::Unknown)) => "\x1b[4;31m",
        (Token::Number | Token::Duration | Token::Timestamp, _) => "\x1b[93m",
        (Token::String, _) => "\x1b[92m",
        (Token::UnterminatedString | Token::Unknown, _) => "\x1b[31m",
        (Token::Comment, _) => "\x1b[90m",
        _ => "",
    }
}

/// `line` with ANSI colours; the visible text is unchanged.
pub fn highlight_line(knowledge: &Knowledge, line: &str) -> String {
    if line.trim_start().starts_with(':') {
        let command_end = line.find(char::is_whitespace).unwrap_or(line.len());
        return format!(
            "\x1b[1;90m{}{RESET}{}",
            &line[..command_end],
            &line[command_end..]
        );
    }
    let mut out = String::with_capacity(line.len() * 2);
    let mut last = 0;
    for (lexeme, kind) in knowledge.classify(line) {
        out.push_str(&line[last..lexeme.start]);
        let style = style(lexeme.token, kind);
        if style.is_empty() {
            out.push_str(&line[lexeme.start..lexeme.end]);
        } else {
            out.push_str(style);
            out.push_str(&line[lexeme.start..lexeme.end]);
            out.push_str(RESET);
        }
        last = lexeme.end;
    }
    out.push_str(&line[last..]);
    out
}

struct SegqlHelper {
    knowledge: Rc<RefCell<Knowledge>>,
    hinter: HistoryHinter,
}

impl Completer for SegqlHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, candidates) = self.knowledge.borrow().complete(line, pos);
        let pairs = candidates
            .into_iter()
            .map(|candidate| Pair {
                display: candidate.clone(),
                replacement: candidate,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for SegqlHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, ctx: &Context<'_>) -> Option<String> {
        self.hinter.hint(line, pos, ctx)
    }
}

impl Highlighter for SegqlHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        Cow::Owned(highlight_line(&self.knowledge.borrow(), line))
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[90m{hint}{RESET}"))
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        true
    }
}

impl Validator for SegqlHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if is_complete(ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

impl Helper for SegqlHelper {}

fn history_path() -> Option<PathBuf> {
    let directory = dirs::data_dir()?.join("segql");
    std::fs::create_dir_all(&directory).ok()?;
    Some(directory.join("history.txt"))
}

/// The interactive loop: only `:quit` or Ctrl-D end it.
pub async fn interactive(mut repl: Repl) -> ExitCode {
    let config = Config::builder()
        .max_history_size(10_000)
        .map(|b| b.auto_add_history(false).history_ignore_space(true).build())
        .unwrap_or_default();
    let mut editor: Editor<SegqlHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(editor) => editor,
        Err(error) => {
            eprintln!("error: cannot start the line editor: {error}");
            return ExitCode::from(1);
        }
    };
    let knowledge = Rc::new(RefCell::new(repl.knowledge()));
    editor.set_helper(Some(SegqlHelper {
        knowledge: knowledge.clone(),
        hinter: HistoryHinter::new(),
    }));
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    println!(
        "SegQL {} — `:help` for commands, Ctrl-D to leave",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        match editor.readline("segql> ") {
            Ok(line) => {
                if line.trim().is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(line.as_str());
                if let Some(path) = &history {
                    let _ = editor.append_history(path);
                }
                let output = repl.eval_line(&line).await;
                output.print();
                if output.quit {
                    break;
                }
                *knowledge.borrow_mut() = repl.knowledge();
            }
            // Ctrl-C clears the line, as in a shell.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}
