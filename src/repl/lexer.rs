//! A forgiving lexer for the REPL: it never fails, so half-typed input can be highlighted
//! and completed. pest remains the parser; these tokens only colour and guide.

use logos::Logos;

/// The kinds of token the REPL distinguishes.
#[derive(Logos, Debug, Clone, Copy, PartialEq, Eq)]
#[logos(skip r"[ \t\r\n\f]+")]
pub enum Token {
    #[token("segment")]
    #[token("metric")]
    #[token("stage")]
    #[token("and")]
    #[token("or")]
    #[token("not")]
    #[token("within")]
    #[token("since")]
    #[token("between")]
    #[token("in")]
    #[token("is")]
    #[token("null")]
    #[token("has")]
    #[token("any")]
    #[token("all")]
    #[token("contains")]
    #[token("starts_with")]
    #[token("ends_with")]
    #[token("matches")]
    #[token("true")]
    #[token("false")]
    #[token("now")]
    #[token("ago")]
    #[token("distinct")]
    #[token("then")]
    Keyword,
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", priority = 1)]
    Ident,
    #[regex(r"[0-9]+(\.[0-9]+)?", priority = 3)]
    Number,
    #[regex(r"[0-9]+(s|min|h|d|w|mo|y)", priority = 4)]
    Duration,
    #[regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?", priority = 5)]
    Timestamp,
    #[regex(r#""([^"\\\n]|\\.)*""#)]
    String,
    /// A string still being typed.
    #[regex(r#""([^"\\\n]|\\.)*"#, priority = 0)]
    UnterminatedString,
    #[regex(r"#[^\n]*", allow_greedy = true)]
    Comment,
    #[token("=")]
    #[token("!=")]
    #[token("<")]
    #[token("<=")]
    #[token(">")]
    #[token(">=")]
    #[token("+")]
    #[token("-")]
    #[token("*")]
    #[token("/")]
    #[token("%")]
    #[token("..")]
    Operator,
    #[token("(")]
    OpenParen,
    #[token(")")]
    CloseParen,
    #[token("[")]
    OpenBracket,
    #[token("]")]
    CloseBracket,
    #[token("{")]
    OpenBrace,
    #[token("}")]
    CloseBrace,
    #[token(",")]
    Comma,
    #[token(".")]
    Dot,
    #[token(":")]
    Colon,
    /// Anything else: shown as an error, never a failure.
    Unknown,
}

/// A token with its byte range in the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexeme {
    pub token: Token,
    pub start: usize,
    pub end: usize,
}

/// Every token of `text`, in order; characters the lexer does not know become `Unknown`.
pub fn tokens(text: &str) -> Vec<Lexeme> {
    Token::lexer(text)
        .spanned()
        .map(|(token, range)| Lexeme {
            token: token.unwrap_or(Token::Unknown),
            start: range.start,
            end: range.end,
        })
        .collect()
}
