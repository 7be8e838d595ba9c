//! Text -> AST. The grammar lives in `grammar/segql.pest`; pest types never leave this module.

pub mod ast;
mod errors;
mod parser;
pub mod print;

pub use parser::{MAX_BRACKET_NESTING, MAX_NESTING, parse_expression, parse_file, parse_timestamp};

/// Words that cannot be names.
pub const KEYWORDS: [&str; 21] = [
    "segment",
    "metric",
    "stage",
    "and",
    "or",
    "not",
    "within",
    "since",
    "between",
    "in",
    "is",
    "null",
    "has",
    "contains",
    "starts_with",
    "ends_with",
    "matches",
    "true",
    "false",
    "now",
    "ago",
];

pub fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}
