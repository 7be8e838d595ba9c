//! pest pairs -> AST. The only code that sees pest types.

use pest::Parser as _;
use pest::iterators::Pair;

use super::ast::*;
use super::errors::syntax_error;
use crate::diagnostic::{Diagnostic, Diagnostics, FileId, Span};

#[derive(pest_derive::Parser)]
#[grammar = "grammar/segql.pest"]
struct SegqlParser;

/// Deeper expressions are rejected with E0003 so no later stage can overflow the stack:
/// at most this many levels of operators (a chain `a and b and ...` is as deep as it is long)…
pub const MAX_NESTING: usize = 200;
/// …and at most this many levels of brackets, which cost the parser far more stack each.
pub const MAX_BRACKET_NESTING: usize = 64;

/// Parses a whole `.seg` file. On syntax errors, every declaration is still parsed on its
/// own so that all errors of the file are reported at once; declarations that parse are kept.
pub fn parse_file(text: &str, file: FileId) -> (File, Diagnostics) {
    crate::diagnostic::with_deep_stack(|| parse_file_here(text, file))
}

fn parse_file_here(text: &str, file: FileId) -> (File, Diagnostics) {
    if let Some(diagnostic) = check_nesting(text, file, 0) {
        return (
            File {
                declarations: Vec::new(),
            },
            diagnostic.into(),
        );
    }
    match SegqlParser::parse(Rule::file, text) {
        Ok(mut pairs) => {
            let mut builder = Builder::new(file, 0);
            let declarations = pairs
                .next()
                .map(|file_pair| {
                    file_pair
                        .into_inner()
                        .filter(|p| p.as_rule() != Rule::EOI)
                        .map(|p| builder.declaration(p))
                        .collect()
                })
                .unwrap_or_default();
            (File { declarations }, builder.diagnostics)
        }
        Err(_) => parse_declarations_separately(text, file),
    }
}

/// Parses one expression (a REPL line, an embedder's ad-hoc audience).
pub fn parse_expression(text: &str, file: FileId) -> Result<Expr, Diagnostics> {
    crate::diagnostic::with_deep_stack(|| parse_expression_here(text, file))
}

fn parse_expression_here(text: &str, file: FileId) -> Result<Expr, Diagnostics> {
    if let Some(diagnostic) = check_nesting(text, file, 0) {
        return Err(diagnostic.into());
    }
    match SegqlParser::parse(Rule::expression_input, text) {
        Ok(mut pairs) => {
            let mut builder = Builder::new(file, 0);
            let expr = pairs
                .next()
                .and_then(|input| input.into_inner().next())
                .map(|pair| builder.expr(pair));
            match expr {
                Some(expr) if builder.diagnostics.is_empty() => Ok(expr),
                _ => Err(builder.diagnostics),
            }
        }
        Err(error) => Err(syntax_error(&error, text, file, 0).into()),
    }
}

fn parse_declarations_separately(text: &str, file: FileId) -> (File, Diagnostics) {
    let mut declarations = Vec::new();
    let mut diagnostics = Diagnostics::default();
    let starts = declaration_starts(text);
    if starts.first() != Some(&0)
        && text[..starts.first().copied().unwrap_or(text.len())].trim() != ""
    {
        // Text before the first declaration keyword: report it through the whole-file parse.
        let end = starts.first().copied().unwrap_or(text.len());
        if let Err(error) = SegqlParser::parse(Rule::file, &text[..end]) {
            diagnostics.push(syntax_error(&error, &text[..end], file, 0));
        }
    }
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(text.len());
        // Without trailing blank lines and comments' newlines, so "end of input" errors
        // point at the end of this declaration rather than at the next one.
        let chunk = text[start..end].trim_end();
        match SegqlParser::parse(Rule::declaration_input, chunk) {
            Ok(mut pairs) => {
                let mut builder = Builder::new(file, start);
                if let Some(declaration) = pairs.next().and_then(|p| p.into_inner().next()) {
                    declarations.push(builder.declaration(declaration));
                }
                diagnostics.extend(builder.diagnostics);
            }
            Err(error) => diagnostics.push(syntax_error(&error, chunk, file, start)),
        }
    }
    (File { declarations }, diagnostics)
}

/// Byte offsets of lines that begin with a declaration keyword.
fn declaration_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let starts_declaration = ["segment", "metric", "stage"].iter().any(|keyword| {
            trimmed.starts_with(keyword)
                && trimmed[keyword.len()..]
                    .chars()
                    .next()
                    .is_some_and(char::is_whitespace)
        });
        if starts_declaration {
            starts.push(offset + indent);
        }
        offset += line.len();
    }
    starts
}

/// Rejects bracket nesting deeper than [`MAX_BRACKET_NESTING`] before pest recurses into it.
fn check_nesting(text: &str, file: FileId, offset: usize) -> Option<Diagnostic> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut in_comment = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_comment {
            in_comment = c != '\n';
            continue;
        }
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' | '\n' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '#' => in_comment = true,
            '"' => in_string = true,
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_BRACKET_NESTING {
                    return Some(too_deep(
                        Span::new(file, offset + i, offset + i + 1),
                        format!("brackets nest more than {MAX_BRACKET_NESTING} levels here"),
                    ));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

fn too_deep(span: Span, label: String) -> Diagnostic {
    Diagnostic::error("E0003", "expression nested too deeply")
        .with_label(span, label)
        .with_help("split the expression into metrics or segments and refer to them by name")
}

/// Converts pairs to AST nodes, collecting literal errors as it goes.
struct Builder {
    file: FileId,
    offset: usize,
    depth: usize,
    diagnostics: Diagnostics,
}

impl Builder {
    fn new(file: FileId, offset: usize) -> Builder {
        Builder {
            file,
            offset,
            depth: 0,
            diagnostics: Diagnostics::default(),
        }
    }

    /// The pair's span without the whitespace and comments pest lets a rule consume at
    /// its end: it ends where its last token ends.
    fn span(&self, pair: &Pair<Rule>) -> Span {
        Span::new(
            self.file,
            self.offset + pair.as_span().start(),
            self.offset + token_end(pair),
        )
    }

    fn ident(&self, pair: Pair<Rule>) -> Ident {
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    fn declaration(&mut self, pair: Pair<Rule>) -> Declaration {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner().filter(|p| {
            !matches!(
                p.as_rule(),
                Rule::kw_segment
                    | Rule::kw_metric
                    | Rule::kw_stage
                    | Rule::assign
                    | Rule::open_brace
                    | Rule::close_brace
            )
        });
        let name = inner
            .next()
            .map(|p| self.ident(p))
            .unwrap_or_else(|| self.missing_ident(span));
        match rule {
            Rule::segment_decl => {
                let mut description = None;
                let mut expr = None;
                for part in inner {
                    match part.as_rule() {
                        Rule::string => description = Some(self.string(part)),
                        _ => expr = Some(self.expr(part)),
                    }
                }
                Declaration::Segment(SegmentDecl {
                    name,
                    description,
                    expr: expr.unwrap_or_else(|| self.null_expr(span)),
                    span,
                })
            }
            Rule::metric_decl => {
                let expr = inner
                    .next()
                    .map(|p| self.expr(p))
                    .unwrap_or_else(|| self.null_expr(span));
                Declaration::Metric(MetricDecl { name, expr, span })
            }
            _ => {
                let arms = inner
                    .map(|arm| {
                        let arm_span = self.span(&arm);
                        let mut parts = arm.into_inner().filter(|p| p.as_rule() != Rule::assign);
                        let label = parts
                            .next()
                            .map(|p| self.ident(p))
                            .unwrap_or_else(|| self.missing_ident(arm_span));
                        let expr = parts
                            .next()
                            .map(|p| self.expr(p))
                            .unwrap_or_else(|| self.null_expr(arm_span));
                        StageArm { label, expr }
                    })
                    .collect();
                Declaration::Stage(StageDecl { name, arms, span })
            }
        }
    }

    fn missing_ident(&self, span: Span) -> Ident {
        Ident {
            name: String::new(),
            span,
        }
    }

    fn null_expr(&self, span: Span) -> Expr {
        Expr {
            kind: ExprKind::Error,
            span,
        }
    }

    /// Builds any expression-level pair.
    /// `depth` counts the nesting the AST will have: brackets, calls and lists here, and
    /// the length of operator chains where they are built.
    fn expr(&mut self, pair: Pair<Rule>) -> Expr {
        let nests = matches!(pair.as_rule(), Rule::paren | Rule::list);
        self.depth += usize::from(nests);
        let expr = if self.depth > MAX_NESTING {
            let span = self.span(&pair);
            self.too_deep_expr(span)
        } else {
            self.expr_inner(pair)
        };
        self.depth -= usize::from(nests);
        expr
    }

    /// Reports E0003 once per input and stands in for the rejected expression.
    fn too_deep_expr(&mut self, span: Span) -> Expr {
        if !self.diagnostics.iter().any(|d| d.code == "E0003") {
            self.diagnostics.push(too_deep(
                span,
                format!("nesting passes {MAX_NESTING} levels here"),
            ));
        }
        self.null_expr(span)
    }

    fn expr_inner(&mut self, pair: Pair<Rule>) -> Expr {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::expr => self.logical(pair),
            Rule::arith => self.arithmetic(pair),
            Rule::paren => match pair.into_inner().next() {
                Some(inner) => {
                    let mut expr = self.expr(inner);
                    expr.span = span;
                    expr
                }
                None => self.null_expr(span),
            },
            Rule::list => {
                let items = pair
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::expr)
                    .map(|p| self.expr(p))
                    .collect();
                Expr {
                    kind: ExprKind::List(items),
                    span,
                }
            }
            Rule::name => {
                let mut inner = pair.into_inner();
                let function = match inner.next() {
                    Some(p) => self.ident(p),
                    None => return self.null_expr(span),
                };
                match inner.next() {
                    None => Expr {
                        kind: ExprKind::Name(function),
                        span,
                    },
                    Some(arguments) => {
                        // A call's arguments are one level deeper.
                        self.depth += 1;
                        let call = if self.depth > MAX_NESTING {
                            self.too_deep_expr(span)
                        } else {
                            self.call(function, arguments, span)
                        };
                        self.depth -= 1;
                        call
                    }
                }
            }
            Rule::occurrence => {
                let mut last = false;
                let mut set = None;
                for part in pair.into_inner() {
                    match part.as_rule() {
                        Rule::kw_last => last = true,
                        Rule::kw_first => {}
                        _ => set = Some(self.expr(part)),
                    }
                }
                Expr {
                    kind: ExprKind::Occurrence {
                        last,
                        set: Box::new(set.unwrap_or_else(|| self.null_expr(span))),
                    },
                    span,
                }
            }
            Rule::ranking => {
                let errors_before = self.diagnostics.0.len();
                let mut amount = TopAmount::Count(0);
                let mut by = None;
                for part in pair.into_inner() {
                    match part.as_rule() {
                        Rule::percent => {
                            if let Literal::Percent(share) = self.literal(part) {
                                amount = TopAmount::Share(share);
                            }
                        }
                        Rule::number => amount = TopAmount::Count(self.whole_number(part)),
                        Rule::arith => by = Some(self.expr(part)),
                        _ => {}
                    }
                }
                let by = Box::new(by.unwrap_or_else(|| self.null_expr(span)));
                let kind = if self.diagnostics.0.len() > errors_before {
                    ExprKind::Error
                } else {
                    ExprKind::Top { amount, by }
                };
                Expr { kind, span }
            }
            Rule::in_segment => {
                let name = pair
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::ident)
                    .map(|p| self.ident(p))
                    .unwrap_or_else(|| self.missing_ident(span));
                Expr {
                    kind: ExprKind::InSegment(name),
                    span,
                }
            }
            Rule::kw_now => Expr {
                kind: ExprKind::Now,
                span,
            },
            Rule::ago => {
                let errors_before = self.diagnostics.0.len();
                let duration = pair
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::duration)
                    .map(|p| self.duration(p))
                    .unwrap_or(Duration {
                        amount: 0,
                        unit: DurationUnit::Day,
                    });
                let kind = if self.diagnostics.0.len() > errors_before {
                    ExprKind::Error
                } else {
                    ExprKind::Ago(duration)
                };
                Expr { kind, span }
            }
            _ => {
                let errors_before = self.diagnostics.0.len();
                let literal = self.literal(pair);
                let kind = if self.diagnostics.0.len() > errors_before {
                    ExprKind::Error
                } else {
                    ExprKind::Literal(literal)
                };
                Expr { kind, span }
            }
        }
    }

    /// `function(arguments)`.
    fn call(&mut self, function: Ident, arguments: Pair<Rule>, span: Span) -> Expr {
        let args = arguments
            .into_inner()
            .filter(|p| p.as_rule() == Rule::argument)
            .map(|argument| {
                let mut distinct = None;
                let mut expr = None;
                for part in argument.into_inner() {
                    match part.as_rule() {
                        Rule::kw_distinct => distinct = Some(self.span(&part)),
                        _ => expr = Some(self.expr(part)),
                    }
                }
                Argument {
                    distinct,
                    expr: expr.unwrap_or_else(|| self.null_expr(span)),
                }
            })
            .collect();
        Expr {
            kind: ExprKind::Call { function, args },
            span,
        }
    }

    /// An `expr` pair: conditions joined by `or` and `and` (`and` binds tighter), each
    /// `not`s, a comparison and sequence steps; then trailing windows.
    fn logical(&mut self, pair: Pair<Rule>) -> Expr {
        let span = self.span(&pair);
        let children: Vec<Pair<Rule>> = pair.into_inner().collect();
        let windows_at = children
            .iter()
            .position(|p| p.as_rule() == Rule::window)
            .unwrap_or(children.len());
        let (chain, windows) = children.split_at(windows_at);
        let (conditions, operators) = split_at_operators(chain, |part| match part.as_rule() {
            Rule::kw_or => Some(BinaryOp::Or),
            Rule::kw_and => Some(BinaryOp::And),
            _ => None,
        });
        if self.depth + windows.len() > MAX_NESTING {
            return self.too_deep_expr(span);
        }
        self.depth += windows.len();
        let and = |op| op == BinaryOp::And;
        let mut expr = self.by_precedence(&conditions, &operators, span, and, |b, c| {
            b.condition(c, span)
        });
        self.depth -= windows.len();
        for window in windows {
            let window_span = self.span(window);
            let window = self.window(window.clone());
            expr = Expr {
                span: expr.span.to(window_span),
                kind: ExprKind::Window {
                    expr: Box::new(expr),
                    window,
                },
            };
        }
        expr
    }

    /// An `arith` pair: operands joined by `+ -` and `* / %` (which bind tighter), each
    /// unary minuses, a primary and optionally `.column`.
    fn arithmetic(&mut self, pair: Pair<Rule>) -> Expr {
        let span = self.span(&pair);
        let mut inner = pair.clone().into_inner();
        if let (Some(only), None) = (inner.next(), inner.next())
            && only.as_rule() != Rule::negate
        {
            // A lone primary, the common case.
            return self.expr(only);
        }
        let children: Vec<Pair<Rule>> = pair.into_inner().collect();
        let (operands, operators) = split_at_operators(&children, |part| {
            (part.as_rule() == Rule::arith_op).then(|| match part.as_str() {
                "+" => BinaryOp::Add,
                "-" => BinaryOp::Sub,
                "*" => BinaryOp::Mul,
                "/" => BinaryOp::Div,
                _ => BinaryOp::Rem,
            })
        });
        let multiplicative = |op| matches!(op, BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem);
        self.by_precedence(&operands, &operators, span, multiplicative, |b, o| {
            b.operand(o, span)
        })
    }

    /// Left-deep trees for `operands` joined by `operators` of two precedence levels:
    /// runs joined by the tight operators first, then those runs by the loose ones.
    /// The tree is as deep as its chains are long, which counts toward [`MAX_NESTING`].
    fn by_precedence(
        &mut self,
        operands: &[&[Pair<Rule>]],
        operators: &[BinaryOp],
        span: Span,
        is_tight: impl Fn(BinaryOp) -> bool,
        mut build: impl FnMut(&mut Builder, &[Pair<Rule>]) -> Expr,
    ) -> Expr {
        let loose = operators.iter().filter(|op| !is_tight(**op)).count();
        if self.depth + loose > MAX_NESTING {
            return self.too_deep_expr(span);
        }
        self.depth += loose;
        let mut result: Option<Expr> = None;
        let mut first = 0;
        while first < operands.len() {
            let mut last = first;
            while last < operators.len() && is_tight(operators[last]) {
                last += 1;
            }
            let run = last - first;
            if self.depth + run > MAX_NESTING {
                self.depth -= loose;
                return self.too_deep_expr(span);
            }
            self.depth += run;
            let mut term = build(self, operands[first]);
            for at in first + 1..=last {
                let rhs = build(self, operands[at]);
                term = binary(operators[at - 1], term, rhs);
            }
            self.depth -= run;
            result = Some(match result {
                None => term,
                Some(lhs) => binary(operators[first - 1], lhs, term),
            });
            first = last + 1;
        }
        self.depth -= loose;
        result.unwrap_or_else(|| self.null_expr(span))
    }

    /// `not`s, a comparison and sequence steps: the pairs between two logical operators.
    fn condition(&mut self, parts: &[Pair<Rule>], span: Span) -> Expr {
        let nots = parts
            .iter()
            .take_while(|p| p.as_rule() == Rule::kw_not)
            .count();
        let rest = &parts[nots..];
        let Some((operand, rest)) = rest.split_first() else {
            return self.null_expr(span);
        };
        let (tail, steps) = match rest.split_first() {
            Some((tail, steps)) if tail.as_rule() != Rule::sequence_step => (Some(tail), steps),
            _ => (None, rest),
        };
        if self.depth + nots + steps.len() > MAX_NESTING {
            let first = self.span(&parts[0]);
            let last = self.span(&parts[parts.len() - 1]);
            return self.too_deep_expr(first.to(last));
        }
        let mut expr = self.comparison(operand.clone(), tail.cloned());
        if let Some(last) = steps.last() {
            let sequence_span = expr.span.to(self.span(last));
            let steps = steps
                .iter()
                .map(|s| self.sequence_step(s.clone()))
                .collect();
            expr = Expr {
                kind: ExprKind::Sequence {
                    first: Box::new(expr),
                    steps,
                },
                span: sequence_span,
            };
        }
        for not in parts[..nots].iter().rev() {
            expr = Expr {
                span: self.span(not).to(expr.span),
                kind: ExprKind::Not(Box::new(expr)),
            };
        }
        expr
    }

    /// Unary minuses, a primary and optionally `.column`: the pairs between two
    /// arithmetic operators.
    fn operand(&mut self, parts: &[Pair<Rule>], span: Span) -> Expr {
        let negations = parts
            .iter()
            .take_while(|p| p.as_rule() == Rule::negate)
            .count();
        let Some((primary, member)) = parts[negations..].split_first() else {
            return self.null_expr(span);
        };
        if self.depth + negations > MAX_NESTING {
            let first = self.span(&parts[0]);
            return self.too_deep_expr(first.to(self.span(primary)));
        }
        let mut expr = self.expr(primary.clone());
        if let Some(column) = member.first().and_then(|m| m.clone().into_inner().next()) {
            let column = self.ident(column);
            expr = Expr {
                span: expr.span.to(column.span),
                kind: ExprKind::Member {
                    base: Box::new(expr),
                    column,
                },
            };
        }
        for negate in parts[..negations].iter().rev() {
            expr = Expr {
                span: self.span(negate).to(expr.span),
                kind: ExprKind::Negate(Box::new(expr)),
            };
        }
        expr
    }

    /// A comparison: `lhs`, and the tail with its operator and operands, if any.
    fn comparison(&mut self, lhs: Pair<Rule>, tail: Option<Pair<Rule>>) -> Expr {
        let lhs = self.expr(lhs);
        let Some(tail) = tail else {
            return lhs;
        };
        let span = lhs.span.to(self.span(&tail));
        let tail_rule = tail.as_rule();
        let parts: Vec<Pair<Rule>> = tail.into_inner().collect();
        let operands: Vec<Pair<Rule>> = parts
            .iter()
            .filter(|p| p.as_rule() == Rule::arith)
            .cloned()
            .collect();
        let mut operands = operands
            .into_iter()
            .map(|p| self.expr(p))
            .collect::<Vec<_>>()
            .into_iter();
        let mut next_operand =
            |builder: &Builder| operands.next().unwrap_or_else(|| builder.null_expr(span));
        let lhs = Box::new(lhs);
        let kind = match tail_rule {
            Rule::compare_tail => {
                let op = match parts.first().map(|p| p.as_str()) {
                    Some("=") => BinaryOp::Eq,
                    Some("!=") => BinaryOp::NotEq,
                    Some("<") => BinaryOp::Lt,
                    Some("<=") => BinaryOp::LtEq,
                    Some(">") | Some("after") => BinaryOp::Gt,
                    Some("before") => BinaryOp::Lt,
                    _ => BinaryOp::GtEq,
                };
                ExprKind::Binary {
                    op,
                    lhs,
                    rhs: Box::new(next_operand(self)),
                }
            }
            Rule::between_tail => {
                let low = Box::new(next_operand(self));
                let high = Box::new(next_operand(self));
                ExprKind::Between {
                    expr: lhs,
                    low,
                    high,
                }
            }
            Rule::in_tail | Rule::not_in_tail => ExprKind::In {
                expr: lhs,
                set: Box::new(next_operand(self)),
                negated: tail_rule == Rule::not_in_tail,
            },
            Rule::has_tail => {
                let quantifier = if parts
                    .iter()
                    .any(|p| p.as_rule() == Rule::has_quantifier && p.as_str() == "all")
                {
                    Quantifier::All
                } else {
                    Quantifier::Any
                };
                ExprKind::Has {
                    expr: lhs,
                    quantifier,
                    set: Box::new(next_operand(self)),
                }
            }
            Rule::frequency_tail => {
                // `ES on at least N distinct days` is `active_days(ES) >= N`.
                let mut count = 0;
                let mut unit = "days";
                for part in &parts {
                    match part.as_rule() {
                        Rule::number => count = self.whole_number(part.clone()),
                        Rule::calendar_unit => unit = part.as_str(),
                        _ => {}
                    }
                }
                at_least(&format!("active_{unit}"), vec![*lhs], count, span).kind
            }
            Rule::periods_tail => {
                // `ES in N of the last M UNITs` is
                // `active_periods(ES, 1UNIT) >= N within MUNIT`.
                let mut numbers = Vec::new();
                let mut unit = DurationUnit::Month;
                for part in &parts {
                    match part.as_rule() {
                        Rule::number => numbers.push(self.whole_number(part.clone())),
                        Rule::period_unit => unit = period_unit(part.as_str()),
                        _ => {}
                    }
                }
                let (count, periods) = (numbers.first().copied(), numbers.get(1).copied());
                let duration = |amount: i64| Expr {
                    kind: ExprKind::Literal(Literal::Duration(Duration { amount, unit })),
                    span,
                };
                let condition = at_least(
                    "active_periods",
                    vec![*lhs, duration(1)],
                    count.unwrap_or(0),
                    span,
                );
                ExprKind::Window {
                    expr: Box::new(condition),
                    window: Window::Within(Box::new(duration(periods.unwrap_or(0)))),
                }
            }
            Rule::is_null_tail => ExprKind::IsNull {
                expr: lhs,
                negated: parts.iter().any(|p| p.as_rule() == Rule::kw_not),
            },
            _ => {
                let op = match parts.first().map(|p| p.as_str()) {
                    Some("contains") => StringOp::Contains,
                    Some("starts_with") => StringOp::StartsWith,
                    Some("ends_with") => StringOp::EndsWith,
                    _ => StringOp::Matches,
                };
                ExprKind::StringTest {
                    op,
                    expr: lhs,
                    pattern: Box::new(next_operand(self)),
                }
            }
        };
        Expr { kind, span }
    }

    /// `then [not] EVENT_SET [within GAP]`.
    fn sequence_step(&mut self, pair: Pair<Rule>) -> SequenceStep {
        let span = self.span(&pair);
        let mut step = SequenceStep {
            negated: false,
            event: self.null_expr(span),
            gap: None,
            span,
        };
        let (mut operand, mut tail) = (None, None);
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::kw_then => {}
                Rule::step_not => step.negated = true,
                Rule::arith => operand = Some(part),
                Rule::step_gap => {
                    let gap = part.into_inner().find(|p| p.as_rule() == Rule::arith);
                    step.gap = gap.map(|g| Box::new(self.expr(g)));
                }
                _ => tail = Some(part),
            }
        }
        if let Some(operand) = operand {
            step.event = self.comparison(operand, tail);
        }
        step
    }

    fn window(&mut self, pair: Pair<Rule>) -> Window {
        let span = self.span(&pair);
        let mut is_since = false;
        let mut operands = Vec::new();
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::kw_since => is_since = true,
                Rule::arith => operands.push(self.expr(part)),
                _ => {}
            }
        }
        let mut operands = operands.into_iter();
        let first = Box::new(operands.next().unwrap_or_else(|| self.null_expr(span)));
        match (is_since, operands.next()) {
            (true, _) => Window::Since(first),
            (false, Some(end)) => Window::Range(first, Box::new(end)),
            (false, None) => Window::Within(first),
        }
    }

    fn literal(&mut self, pair: Pair<Rule>) -> Literal {
        let span = self.span(&pair);
        let text = pair.as_str();
        match pair.as_rule() {
            Rule::kw_true => Literal::Bool(true),
            Rule::kw_false => Literal::Bool(false),
            Rule::kw_null => Literal::Null,
            Rule::string => Literal::String(self.string(pair)),
            Rule::duration => Literal::Duration(self.duration(pair)),
            Rule::number if text.contains('.') => match text.parse::<f64>() {
                Ok(value) => Literal::Float(value),
                Err(_) => self.bad_literal(span, format!("`{text}` is not a number"), None),
            },
            Rule::number => match text.parse::<i64>() {
                Ok(value) => Literal::Int(value),
                Err(_) => self.bad_literal(
                    span,
                    format!("integer `{text}` is too large"),
                    Some("integers range from -9223372036854775808 to 9223372036854775807; write a float such as `1e19` as `10000000000000000000.0`"),
                ),
            },
            Rule::percent => match parse_millionths(text.trim_end_matches('%')) {
                Some(share) => Literal::Percent(share),
                None => self.bad_literal(
                    span,
                    format!("`{text}` is not a percentage SegQL can hold exactly"),
                    Some("write a percentage with at most four decimals, such as `12.5%` or `0.0001%`"),
                ),
            },
            Rule::timestamp => match parse_timestamp(text) {
                Some(nanos) => Literal::Timestamp(nanos),
                None => self.bad_literal(
                    span,
                    format!("`{text}` is not a valid date or time"),
                    Some("write dates as `YYYY-MM-DD` and times as `YYYY-MM-DDTHH:MM:SSZ`, e.g. `1997-06-01T12:30:00Z`"),
                ),
            },
            Rule::bad_duration => {
                let unit_start = text
                    .find(|c: char| c.is_ascii_alphabetic())
                    .unwrap_or(text.len());
                let unit = &text[unit_start..];
                self.bad_literal(
                    Span::new(span.file, span.start + unit_start, span.end),
                    format!("unknown duration unit `{unit}`"),
                    Some("durations are a whole number followed by `s`, `min`, `h`, `d`, `w`, `mo` (30 days) or `y` (365 days), e.g. `30d`"),
                )
            }
            _ => Literal::Null,
        }
    }

    /// A count of a sugar (`top 10`, `on at least 3 distinct days`): a whole number, else
    /// E0002 and 0.
    fn whole_number(&mut self, pair: Pair<Rule>) -> i64 {
        let span = self.span(&pair);
        let text = pair.as_str();
        match self.literal(pair) {
            Literal::Int(n) => n,
            Literal::Float(_) => {
                self.bad_literal(
                    span,
                    format!("`{text}` is no count: a whole number is needed here"),
                    Some("write a whole number, such as `3`"),
                );
                0
            }
            _ => 0,
        }
    }

    fn bad_literal(&mut self, span: Span, message: String, help: Option<&str>) -> Literal {
        let mut diagnostic =
            Diagnostic::error("E0002", message).with_label(span, "invalid literal");
        if let Some(help) = help {
            diagnostic = diagnostic.with_help(help);
        }
        self.diagnostics.push(diagnostic);
        Literal::Null
    }

    fn duration(&mut self, pair: Pair<Rule>) -> Duration {
        let span = self.span(&pair);
        let text = pair.as_str();
        let digits_end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let unit = match &text[digits_end..] {
            "s" => DurationUnit::Second,
            "min" => DurationUnit::Minute,
            "h" => DurationUnit::Hour,
            "d" => DurationUnit::Day,
            "w" => DurationUnit::Week,
            "mo" => DurationUnit::Month,
            _ => DurationUnit::Year,
        };
        let duration = text[..digits_end]
            .parse::<i64>()
            .ok()
            .map(|amount| Duration { amount, unit })
            .filter(|d| d.nanoseconds().is_some());
        match duration {
            Some(duration) => duration,
            None => {
                self.bad_literal(
                    span,
                    format!("duration `{text}` is too long"),
                    Some("durations can be at most about 292 years"),
                );
                Duration { amount: 0, unit }
            }
        }
    }

    /// The value of a string literal, with escapes resolved.
    fn string(&mut self, pair: Pair<Rule>) -> String {
        let span = self.span(&pair);
        let raw = pair
            .into_inner()
            .next()
            .map(|p| p.as_str())
            .unwrap_or_default();
        let mut value = String::with_capacity(raw.len());
        let mut chars = raw.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '\\' {
                value.push(c);
                continue;
            }
            match chars.next() {
                Some((_, '"')) => value.push('"'),
                Some((_, '\\')) => value.push('\\'),
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((j, other)) => {
                    // +1 for the opening quote.
                    let start = span.start + 1 + i;
                    let end = span.start + 1 + j + other.len_utf8();
                    self.diagnostics.push(
                        Diagnostic::error("E0002", format!("unknown escape `\\{other}` in string"))
                            .with_label(Span::new(span.file, start, end), "invalid escape")
                            .with_help(r#"the escapes are `\"`, `\\`, `\n` and `\t`"#),
                    );
                }
                None => {}
            }
        }
        value
    }
}

/// A flat rule's children split at its binary operators (those `operator` names): the
/// runs of pairs between them, and the operators in order.
fn split_at_operators<'p>(
    children: &'p [Pair<'p, Rule>],
    operator: impl Fn(&Pair<Rule>) -> Option<BinaryOp>,
) -> (Vec<&'p [Pair<'p, Rule>]>, Vec<BinaryOp>) {
    let mut operands = Vec::new();
    let mut operators = Vec::new();
    let mut start = 0;
    for (at, part) in children.iter().enumerate() {
        if let Some(op) = operator(part) {
            operands.push(&children[start..at]);
            operators.push(op);
            start = at + 1;
        }
    }
    operands.push(&children[start..]);
    (operands, operators)
}

/// `lhs op rhs`, spanning both.
fn binary(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
    Expr {
        span: lhs.span.to(rhs.span),
        kind: ExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
    }
}

/// Where the pair's last token ends: its span without trailing whitespace and comments.
fn token_end(pair: &Pair<Rule>) -> usize {
    let span = pair.as_span();
    let text = span.as_str();
    if !text.contains('#') {
        // No comment: the text without its trailing whitespace.
        return span.start() + text.trim_end().len();
    }
    let mut end = text.len();
    loop {
        let trimmed = text[..end].trim_end();
        let line_start = trimmed.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let code = super::errors::strip_comment(&trimmed[line_start..]);
        let code_end = line_start + code.len();
        if code_end == end {
            break;
        }
        end = code_end;
    }
    span.start() + end
}

/// `12.5` as millionths of 100: `125000` (a percentage's numeral). `None` with more than
/// four decimals or beyond 64 bits.
fn parse_millionths(numeral: &str) -> Option<i64> {
    let (whole, fraction) = numeral.split_once('.').unwrap_or((numeral, ""));
    if fraction.len() > 4 {
        return None;
    }
    let padded = format!("{fraction:0<4}");
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = padded.parse().ok()?;
    whole.checked_mul(10_000)?.checked_add(fraction)
}

/// Nanoseconds since the epoch for `YYYY-MM-DD` or an RFC 3339 time (UTC if no offset).
pub fn parse_timestamp(text: &str) -> Option<i64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let datetime = if text.len() == 10 {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()?
            .and_hms_opt(0, 0, 0)?
            .and_utc()
    } else if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
        with_offset.to_utc()
    } else {
        let trimmed = text.trim_end_matches('Z');
        NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%dT%H:%M"))
            .ok()?
            .and_utc()
    };
    datetime.timestamp_nanos_opt()
}

/// The duration unit a period is named by, singular or plural: `months` is `mo`.
fn period_unit(word: &str) -> DurationUnit {
    match word.trim_end_matches('s') {
        "hour" => DurationUnit::Hour,
        "day" => DurationUnit::Day,
        "week" => DurationUnit::Week,
        "year" => DurationUnit::Year,
        _ => DurationUnit::Month,
    }
}

/// `function(args) >= count`, what frequency sugar stands for; every part spans `span`.
fn at_least(function: &str, args: Vec<Expr>, count: i64, span: Span) -> Expr {
    let call = Expr {
        kind: ExprKind::Call {
            function: Ident {
                name: function.to_string(),
                span,
            },
            args: args
                .into_iter()
                .map(|expr| Argument {
                    distinct: None,
                    expr,
                })
                .collect(),
        },
        span,
    };
    Expr {
        kind: ExprKind::Binary {
            op: BinaryOp::GtEq,
            lhs: Box::new(call),
            rhs: Box::new(Expr {
                kind: ExprKind::Literal(Literal::Int(count)),
                span,
            }),
        },
        span,
    }
}
