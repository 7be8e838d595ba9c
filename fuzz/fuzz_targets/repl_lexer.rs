//! The REPL's lexer on any text (`checks::lex`).
#![no_main]

#[path = "../checks.rs"]
#[allow(dead_code)] // each target uses one of the checks
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| checks::lex(text));
