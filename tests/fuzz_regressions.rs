//! Replays every input the fuzzers (`fuzz/`, docs/fuzzing.md) failed on, through the same
//! checks the fuzz targets make: `tests/fuzz-regressions/compile/*` through parse → check
//! → lower against the demo catalog, `tests/fuzz-regressions/repl_lexer/*` through the
//! REPL's lexer.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new("tests/fuzz-regressions").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn compile_regressions() {
    let mut session = segql::Session::open(Path::new("examples/shop/segql.toml"))
        .await
        .expect("the demo catalog opens");
    let files = inputs("compile");
    assert!(!files.is_empty(), "the compile corpus is empty");
    for file in files {
        let bytes = std::fs::read(&file).expect("a corpus file");
        if let Ok(text) = std::str::from_utf8(&bytes) {
            eprintln!("{}", file.display());
            checks::compile(&mut session, text);
        }
    }
}

#[test]
fn repl_lexer_regressions() {
    let files = inputs("repl_lexer");
    assert!(!files.is_empty(), "the lexer corpus is empty");
    for file in files {
        let bytes = std::fs::read(&file).expect("a corpus file");
        checks::lex(&String::from_utf8_lossy(&bytes));
    }
}
