//! `segql repl`: the interactive segment workbench. The logic is [`Repl::eval_line`], a
//! function of the session and one input; the terminal layer (rustyline) only reads lines,
//! colours them and completes names.

mod editor;
pub mod knowledge;
pub mod lexer;

use std::fmt::Write;
use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;
use std::time::Instant;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::logical_expr::LogicalPlanBuilder;

use crate::check::display;
use crate::check::ir::{IrExpr, Type, ValueKind};
use crate::diagnostic::Diagnostic;
use crate::sql::{SqlDialect, TableNaming};
use crate::syntax::ast::Declaration;
use crate::{Report, Session};
pub use knowledge::{Knowledge, NameKind};
use lexer::{Token, tokens};

/// The result of one input.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// What to print.
    pub text: String,
    /// Whether the input failed (a diagnostic, a failed command).
    pub failed: bool,
    /// Whether the REPL should end.
    pub quit: bool,
}

impl Output {
    fn ok(text: impl Into<String>) -> Output {
        Output {
            text: text.into(),
            failed: false,
            quit: false,
        }
    }

    /// Prints the text: to standard error if the input failed, else to standard output.
    pub fn print(&self) {
        if self.failed {
            eprint!("{}", self.text);
        } else {
            print!("{}", self.text);
        }
    }

    fn failed(text: impl Into<String>) -> Output {
        Output {
            text: text.into(),
            failed: true,
            quit: false,
        }
    }
}

/// The REPL's state: the session and the settings changed by meta-commands.
pub struct Repl {
    session: Session,
    /// Members shown per audience.
    sample: usize,
    /// Extra columns shown with samples.
    with: Vec<String>,
    timing: bool,
    color: bool,
    /// Files loaded (name, text), then definitions typed (name, text).
    loaded: Vec<(String, String)>,
    typed: Vec<(String, String)>,
    lines: usize,
}

impl Repl {
    /// A REPL over `session`; the files already added to it count as loaded.
    pub fn new(session: Session) -> Repl {
        let loaded = session
            .source_texts()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect();
        Repl {
            session,
            sample: 10,
            with: Vec::new(),
            timing: true,
            color: false,
            loaded,
            typed: Vec::new(),
            lines: 0,
        }
    }

    /// Renders diagnostics in colour (for terminals).
    pub fn with_color(mut self, color: bool) -> Repl {
        self.color = color;
        self
    }

    /// Timing lines vary from run to run; tests turn them off.
    pub fn with_timing(mut self, timing: bool) -> Repl {
        self.timing = timing;
        self
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn knowledge(&self) -> Knowledge {
        Knowledge::of(&self.session)
    }

    fn render(&self, report: &Report) -> String {
        report.render(self.color)
    }

    /// Evaluates one complete input: a meta-command, a definition or an expression.
    pub async fn eval_line(&mut self, line: &str) -> Output {
        let input = line.trim();
        if input.is_empty() || input.starts_with('#') {
            return Output::ok("");
        }
        self.lines += 1;
        let started = Instant::now();
        let mut output = if let Some(command) = input.strip_prefix(':') {
            self.meta(command).await
        } else if starts_with_declaration(input) {
            self.define(input)
        } else {
            self.evaluate(input).await
        };
        if self.timing && !output.quit && !input.starts_with(':') {
            let _ = writeln!(
                output.text,
                "({:.1} ms)",
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
        output
    }

    fn line_name(&self) -> String {
        format!("<line {}>", self.lines)
    }

    /// Adds (or replaces) definitions typed at the prompt.
    fn define(&mut self, input: &str) -> Output {
        let (parsed, _) = crate::syntax::parse_file(input, 0);
        let names: Vec<String> = parsed
            .declarations
            .iter()
            .map(|d| d.name().name.clone())
            .collect();
        let previous = self.typed.clone();
        let replaced = names
            .iter()
            .any(|n| self.typed.iter().any(|(_, text)| declares(text, n)));
        self.typed
            .retain(|(_, text)| !names.iter().any(|n| declares(text, n)));
        self.typed.push((self.line_name(), input.to_string()));
        match self.rebuild() {
            Ok(warnings) => {
                let mut text = warnings;
                for declaration in &parsed.declarations {
                    let _ = writeln!(text, "{}", self.describe_definition(declaration, replaced));
                }
                Output::ok(text)
            }
            Err(rendered) => {
                self.typed = previous;
                // Restore the previous, valid state; it checked before, so this succeeds.
                let _ = self.rebuild();
                Output::failed(rendered)
            }
        }
    }

    fn describe_definition(&self, declaration: &Declaration, replaced: bool) -> String {
        let name = &declaration.name().name;
        let verb = if replaced { "redefined" } else { "defined" };
        match declaration {
            Declaration::Segment(_) => format!("{verb} segment `{name}`"),
            Declaration::Metric(_) => {
                let ty = self
                    .session
                    .program()
                    .value(name)
                    .map(|v| v.expr.ty.to_string())
                    .unwrap_or_default();
                format!("{verb} metric `{name}`: {ty}")
            }
            Declaration::Stage(stage) => {
                let labels: Vec<&str> = stage.arms.iter().map(|a| a.label.name.as_str()).collect();
                format!("{verb} stage `{name}` with labels {}", labels.join(", "))
            }
        }
    }

    /// Re-checks the loaded files and typed definitions; returns rendered warnings or errors.
    fn rebuild(&mut self) -> Result<String, String> {
        self.session.clear_sources();
        let all: Vec<(String, String)> = self.loaded.iter().chain(&self.typed).cloned().collect();
        match self.session.add_sources(&all) {
            Ok(warnings) => {
                let warnings = warnings.clone();
                Ok(crate::render::render_all(
                    warnings.iter(),
                    self.session.sources(),
                    self.color,
                ))
            }
            Err(report) => Err(self.render(&report)),
        }
    }

    /// An expression: a condition shows the audience, any other value a sample of values.
    async fn evaluate(&mut self, input: &str) -> Output {
        let name = self.line_name();
        let typed = match self.session.check_value(&name, input) {
            Ok(typed) => typed,
            Err(report) => return Output::failed(self.render(&report)),
        };
        let result = if typed.ty == Type::Bool || typed.ty == Type::Null {
            self.audience(&typed).await
        } else {
            self.values(&typed, input).await
        };
        match result {
            Ok(text) => Output::ok(text),
            Err(report) => Output::failed(self.render(&report)),
        }
    }

    async fn audience(&self, condition: &crate::check::ir::TypedExpr) -> Result<String, Report> {
        let counted = self
            .session
            .execute(self.session.plan_condition_count(condition)?)
            .await?;
        let counts = crate::exec::counts_from_batches(&counted)
            .map_err(|d| Report::new(d.into(), self.session.sources()))?;
        let total = total_profiles(&counted);
        let members = counts.first().map(|(_, n)| *n).unwrap_or(0);
        let mut columns: Vec<String> = Vec::new();
        crate::plan::visit(condition, &mut |e| {
            if let IrExpr::ProfileColumn(name) = &e.kind
                && !columns.contains(name)
                && *name != self.session.schema().profiles.key
            {
                columns.push(name.clone());
            }
        });
        for extra in &self.with {
            if !columns.contains(extra) {
                columns.push(extra.clone());
            }
        }
        let with: Vec<&str> = columns.iter().map(String::as_str).collect();
        let mut text = format!(
            "{members} profiles ({:.1}% of {total})\n",
            if total == 0 {
                0.0
            } else {
                members as f64 * 100.0 / total as f64
            }
        );
        if members > 0 && self.sample > 0 {
            let plan = self.session.plan_condition(condition, &with)?;
            let plan = limit(plan, self.sample)
                .map_err(|d| Report::new(d.into(), self.session.sources()))?;
            let batches = self.session.execute(plan).await?;
            text.push_str(&table(&batches));
            if members as usize > self.sample {
                let _ = writeln!(
                    text,
                    "… {} more (`:sample N` shows more)",
                    members as usize - self.sample
                );
            }
        }
        Ok(text)
    }

    async fn values(
        &self,
        expr: &crate::check::ir::TypedExpr,
        input: &str,
    ) -> Result<String, Report> {
        let label = if input.len() <= 40 {
            input.to_string()
        } else {
            "value".to_string()
        };
        let plan = self.session.plan_expression_values(expr, &label)?;
        let plan = limit(plan, self.sample.max(1))
            .map_err(|d| Report::new(d.into(), self.session.sources()))?;
        let batches = self.session.execute(plan).await?;
        Ok(format!(
            "{}: {} per profile (first {})\n{}",
            input,
            expr.ty,
            self.sample.max(1),
            table(&batches)
        ))
    }

    async fn meta(&mut self, command: &str) -> Output {
        let (name, argument) = match command.split_once(char::is_whitespace) {
            Some((name, rest)) => (name, rest.trim()),
            None => (command, ""),
        };
        match name {
            "quit" | "exit" | "q" => Output {
                text: String::new(),
                failed: false,
                quit: true,
            },
            "help" | "h" | "?" => Output::ok(help_text()),
            "schema" => self.schema(argument),
            "segments" => Output::ok(self.segments()),
            "load" => self.load(argument),
            "as-of" => self.as_of(argument),
            "count" => match self.session.counts(&[]).await {
                Ok(counts) => {
                    let width = counts
                        .iter()
                        .map(|(n, _)| n.len())
                        .max()
                        .unwrap_or(7)
                        .max(7);
                    let mut text = String::new();
                    for (segment, size) in counts {
                        let _ = writeln!(text, "{segment:<width$}  {size:>10}");
                    }
                    Output::ok(text)
                }
                Err(report) => Output::failed(self.render(&report)),
            },
            "sample" => match argument.parse::<usize>() {
                Ok(n) => {
                    self.sample = n;
                    Output::ok(format!("showing {n} members per audience\n"))
                }
                Err(_) => Output::failed(format!(
                    "`:sample` takes a number, e.g. `:sample 20` (now {})\n",
                    self.sample
                )),
            },
            "with" => {
                let columns: Vec<String> = argument
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect();
                let names: Vec<&str> = columns.iter().map(String::as_str).collect();
                match self.session.output_columns(&names) {
                    Ok(_) => {
                        let text = if columns.is_empty() {
                            "no extra columns\n".to_string()
                        } else {
                            format!("samples show {}\n", columns.join(", "))
                        };
                        self.with = columns;
                        Output::ok(text)
                    }
                    Err(report) => Output::failed(self.render(&report)),
                }
            }
            "explain" => self.explain(argument).await,
            "sql" => self.sql(argument),
            "why" => {
                let mut parts = argument.split_whitespace();
                match (parts.next(), parts.next()) {
                    (Some(segment), Some(key)) => {
                        match crate::explain::why(&self.session, segment, key).await {
                            Ok(text) => Output::ok(text),
                            Err(report) => Output::failed(self.render(&report)),
                        }
                    }
                    _ => Output::failed("usage: `:why SEGMENT KEY`, e.g. `:why big_spenders 42`\n"),
                }
            }
            "save" => self.save(argument),
            "timing" => match argument {
                "on" => {
                    self.timing = true;
                    Output::ok("timing on\n")
                }
                "off" => {
                    self.timing = false;
                    Output::ok("timing off\n")
                }
                _ => Output::failed("usage: `:timing on` or `:timing off`\n"),
            },
            "clear" => {
                self.typed.clear();
                match self.rebuild() {
                    Ok(_) => Output::ok("forgot the definitions typed in this session\n"),
                    Err(rendered) => Output::failed(rendered),
                }
            }
            other => {
                let names = knowledge::META_COMMANDS.iter().map(|(c, _)| &c[1..]);
                let hint = crate::diagnostic::closest_name(other, names)
                    .map(|c| format!("did you mean `:{c}`? "))
                    .unwrap_or_default();
                Output::failed(format!(
                    "unknown command `:{other}`; {hint}`:help` lists the commands\n"
                ))
            }
        }
    }

    fn schema(&self, table: &str) -> Output {
        let schema = self.session.schema();
        if table.is_empty() {
            let mut text = String::new();
            let profiles = &schema.profiles;
            let _ = writeln!(
                text,
                "{:<16} profiles  key {}  {} columns",
                profiles.name,
                profiles.key,
                profiles.columns.len()
            );
            for event in &schema.events {
                let _ = writeln!(
                    text,
                    "{:<16} events    key {}  time {}  {} columns",
                    event.name,
                    event.key,
                    event.time.as_deref().unwrap_or(""),
                    event.columns.len()
                );
            }
            let _ = writeln!(text, "`:schema TABLE` lists a table's columns");
            return Output::ok(text);
        }
        let found = std::iter::once(&schema.profiles)
            .chain(&schema.events)
            .find(|t| t.name == table);
        let Some(found) = found else {
            let names = std::iter::once(schema.profiles.name.as_str())
                .chain(schema.events.iter().map(|e| e.name.as_str()));
            let hint = crate::diagnostic::closest_name(table, names.clone())
                .map(|c| format!("did you mean `{c}`?"))
                .unwrap_or_else(|| {
                    format!("tables are {}", crate::diagnostic::list_names(names, 20))
                });
            return Output::failed(format!("no table `{table}`; {hint}\n"));
        };
        let mut text = String::new();
        for column in &found.columns {
            let role = if column.name == found.key {
                "  (key)"
            } else if found.time.as_deref() == Some(column.name.as_str()) {
                "  (time)"
            } else {
                ""
            };
            match &column.ty {
                Some(ty) => {
                    let _ = writeln!(
                        text,
                        "{:<20} {:<14} {}{role}",
                        column.name,
                        ty.to_string(),
                        column.source_type
                    );
                }
                None => {
                    let _ = writeln!(
                        text,
                        "{:<20} {:<14} {} (unsupported: declare a type to use it)",
                        column.name, "-", column.source_type
                    );
                }
            }
        }
        Output::ok(text)
    }

    fn segments(&self) -> String {
        let program = self.session.program();
        let mut text = String::new();
        if program.segments.is_empty() && program.values.is_empty() {
            return "no definitions yet: type `segment NAME = CONDITION` or `:load FILE`\n".into();
        }
        for segment in &program.segments {
            let _ = writeln!(
                text,
                "segment {:<24} {}",
                segment.name,
                segment.description.as_deref().unwrap_or("")
            );
        }
        for value in &program.values {
            let kind = match value.kind {
                ValueKind::Metric => "metric ",
                ValueKind::Stage => "stage  ",
            };
            let _ = writeln!(text, "{kind} {:<24} {}", value.name, value.expr.ty);
        }
        text
    }

    fn load(&mut self, path: &str) -> Output {
        if path.is_empty() {
            return Output::failed("usage: `:load FILE`\n");
        }
        let text = match crate::read_source(std::path::Path::new(path)) {
            Ok(text) => text,
            Err(diagnostic) => {
                return Output::failed(
                    self.render(&Report::new(diagnostic.into(), self.session.sources())),
                );
            }
        };
        self.loaded.push((path.to_string(), text));
        match self.rebuild() {
            Ok(warnings) => {
                let program = self.session.program();
                Output::ok(format!(
                    "{warnings}loaded {path}: {} segments, {} metrics and stages in the session\n",
                    program.segments.len(),
                    program.values.len()
                ))
            }
            Err(rendered) => {
                self.loaded.pop();
                let _ = self.rebuild();
                Output::failed(rendered)
            }
        }
    }

    fn as_of(&mut self, argument: &str) -> Output {
        if argument.is_empty() {
            return Output::ok(format!(
                "as of {}\n",
                display::timestamp(self.session.as_of())
            ));
        }
        match crate::syntax::parse_timestamp(argument.trim_matches('"')) {
            Some(time) => {
                self.session.set_as_of(time);
                Output::ok(format!("as of {}\n", display::timestamp(time)))
            }
            None => Output::failed(format!(
                "`{argument}` is not a time; write `1998-07-01` or `1998-07-01T12:00:00Z`\n"
            )),
        }
    }

    /// `:sql [DIALECT] CONDITION`: the condition as one SQL query for another engine.
    fn sql(&mut self, input: &str) -> Output {
        let (dialect, condition) = match input.split_once(char::is_whitespace) {
            Some((first, rest)) => match SqlDialect::ALL.into_iter().find(|d| d.name() == first) {
                Some(dialect) => (dialect, rest.trim()),
                None => (SqlDialect::default(), input),
            },
            None => (SqlDialect::default(), input),
        };
        if condition.is_empty() {
            return Output::failed(
                "usage: `:sql [postgres|duckdb|mysql|sqlite|bigquery] CONDITION`\n",
            );
        }
        let name = self.line_name();
        let checked = match self.session.check_condition(&name, condition) {
            Ok(checked) => checked,
            Err(report) => return Output::failed(self.render(&report)),
        };
        match self
            .session
            .condition_sql(&checked, &[], dialect, &TableNaming::default())
        {
            Ok(sql) => Output::ok(format!("{sql};\n")),
            Err(report) => Output::failed(self.render(&report)),
        }
    }

    async fn explain(&mut self, input: &str) -> Output {
        if input.is_empty() {
            return Output::failed("usage: `:explain CONDITION`\n");
        }
        let name = self.line_name();
        let condition = match self.session.check_condition(&name, input) {
            Ok(condition) => condition,
            Err(report) => return Output::failed(self.render(&report)),
        };
        let plan = match self.session.plan_condition(&condition, &[]) {
            Ok(plan) => plan,
            Err(report) => return Output::failed(self.render(&report)),
        };
        let state = crate::exec::state_for(self.session.context(), &plan);
        let mut text = String::from("== measures\n");
        crate::plan::visit(&condition, &mut |e| {
            if let IrExpr::Measure(id) = e.kind {
                let _ = writeln!(
                    text,
                    "m{id} = {}",
                    display::measure(&self.session.program().measures[id])
                );
            }
        });
        match state.optimize(&plan) {
            Ok(optimized) => {
                let _ = writeln!(
                    text,
                    "== optimized logical plan\n{}",
                    optimized.display_indent()
                );
            }
            Err(error) => return Output::failed(format!("{error}\n")),
        }
        match state.create_physical_plan(&plan).await {
            Ok(physical) => {
                let _ = write!(
                    text,
                    "== physical plan\n{}",
                    datafusion::physical_plan::displayable(physical.as_ref()).indent(true)
                );
            }
            Err(error) => return Output::failed(format!("{error}\n")),
        }
        Output::ok(text)
    }

    fn save(&self, path: &str) -> Output {
        if path.is_empty() {
            return Output::failed("usage: `:save FILE`\n");
        }
        let mut text = String::from("# Saved from the SegQL REPL.\n");
        for (name, source) in self.loaded.iter().chain(&self.typed) {
            let _ = write!(text, "\n# from {name}\n{}\n", source.trim_end());
        }
        let written = crate::exec::replace_file(
            std::path::Path::new(path),
            |mut file| std::io::Write::write_all(&mut file, text.as_bytes()),
            |e| e,
        );
        match written {
            Ok(()) => Output::ok(format!(
                "saved {} definitions to {path}\n",
                self.session.program().segments.len() + self.session.program().values.len()
            )),
            Err(error) => Output::failed(format!("cannot write `{path}`: {error}\n")),
        }
    }
}

fn total_profiles(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| b.column_by_name("__profiles").cloned())
        .and_then(|c| {
            c.as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .map(|a| a.value(0))
        })
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(0)
}

fn limit(
    plan: datafusion::logical_expr::LogicalPlan,
    n: usize,
) -> Result<datafusion::logical_expr::LogicalPlan, Diagnostic> {
    LogicalPlanBuilder::from(plan)
        .limit(0, Some(n))
        .and_then(|b| b.build())
        .map_err(|e| crate::internal_error(&e.to_string()))
}

fn table(batches: &[RecordBatch]) -> String {
    match pretty_format_batches(batches) {
        Ok(table) => format!("{table}\n"),
        Err(error) => format!("(cannot show the rows: {error})\n"),
    }
}

fn starts_with_declaration(input: &str) -> bool {
    ["segment", "metric", "stage"].iter().any(|keyword| {
        input
            .strip_prefix(keyword)
            .is_some_and(|rest| rest.starts_with(char::is_whitespace))
    })
}

/// Whether `text` declares `name`.
fn declares(text: &str, name: &str) -> bool {
    let (parsed, _) = crate::syntax::parse_file(text, 0);
    parsed.declarations.iter().any(|d| d.name().name == name)
}

fn help_text() -> String {
    let mut text = String::from(
        "Type a condition to see its audience, a value (`aov`, `count(purchased)`) to see it per profile,\n\
         or a definition (`segment NAME = ...`, `metric`, `stage`) to add it to the session.\n\
         Tab completes names; unbalanced parentheses continue on the next line.\n\n",
    );
    for (command, description) in knowledge::META_COMMANDS {
        let _ = writeln!(text, "  {command:<10} {description}");
    }
    text
}

/// Whether `input` is ready to evaluate, or continues on the next line: open brackets,
/// an unterminated string, or a trailing operator keep it open.
pub fn is_complete(input: &str) -> bool {
    let trimmed = input.trim();
    if trimmed.is_empty() || trimmed.starts_with(':') {
        return true;
    }
    let lexemes = tokens(trimmed);
    let mut depth: i64 = 0;
    for lexeme in &lexemes {
        match lexeme.token {
            Token::OpenParen | Token::OpenBracket | Token::OpenBrace => depth += 1,
            Token::CloseParen | Token::CloseBracket | Token::CloseBrace => depth -= 1,
            Token::UnterminatedString => return false,
            _ => {}
        }
    }
    if depth > 0 {
        return false;
    }
    let Some(last) = lexemes.iter().rev().find(|l| l.token != Token::Comment) else {
        return true;
    };
    let text = &trimmed[last.start..last.end];
    match last.token {
        Token::Operator | Token::Comma | Token::Dot => false,
        Token::Keyword => !matches!(
            text,
            "and"
                | "or"
                | "not"
                | "within"
                | "then"
                | "since"
                | "between"
                | "in"
                | "is"
                | "has"
                | "any"
                | "all"
                | "contains"
                | "starts_with"
                | "ends_with"
                | "matches"
                | "segment"
                | "metric"
                | "stage"
                | "distinct"
        ),
        _ => !last_token_is_declaration_head(trimmed),
    }
}

/// `segment name` or `segment name "description"` without `=` yet.
fn last_token_is_declaration_head(input: &str) -> bool {
    starts_with_declaration(input) && !input.contains('=') && !input.contains('{')
}

/// Runs the REPL: interactively on a terminal, else over standard input's lines.
pub async fn run(session: Session) -> ExitCode {
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if interactive {
        let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        editor::interactive(Repl::new(session).with_color(color)).await
    } else {
        script(Repl::new(session).with_timing(false)).await
    }
}

/// Reads lines from standard input, evaluating each complete input; exits 1 if any failed.
async fn script(mut repl: Repl) -> ExitCode {
    let stdin = std::io::stdin();
    let mut buffer = String::new();
    let mut failed = false;
    for line in stdin.lock().lines() {
        let Ok(line) = line else {
            eprintln!("error: standard input is not UTF-8 text");
            return ExitCode::from(1);
        };
        buffer.push_str(&line);
        buffer.push('\n');
        if !is_complete(&buffer) {
            continue;
        }
        let output = repl.eval_line(&buffer).await;
        buffer.clear();
        output.print();
        failed |= output.failed;
        if output.quit {
            break;
        }
    }
    if !buffer.trim().is_empty() {
        let output = repl.eval_line(&buffer).await;
        output.print();
        failed |= output.failed;
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
