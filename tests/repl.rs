//! The REPL: `eval_line` over a session, the lexer, completion, the validator, and one
//! run of the real binary through a pseudo-terminal.

use std::path::Path;

use segql::Session;
use segql::repl::lexer::{Token, tokens};
use segql::repl::{Knowledge, NameKind, Repl, is_complete};

async fn repl() -> Repl {
    let mut session = Session::open(Path::new("examples/shop/segql.toml"))
        .await
        .expect("demo catalog");
    session
        .add_file(Path::new("examples/shop/segments.seg"))
        .expect("demo segments");
    Repl::new(session).with_timing(false)
}

/// The keys listed in a pretty-printed table's first column.
fn keys_in(table: &str) -> Vec<i64> {
    table
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split('|').next())
        .filter_map(|k| k.trim().parse().ok())
        .collect()
}

#[tokio::test]
async fn definitions_are_added_and_used() {
    let mut repl = repl().await;
    let out = repl.eval_line("metric spend = sum(purchased.amount)").await;
    assert!(!out.failed, "{}", out.text);
    assert_eq!(out.text, "defined metric `spend`: float\n");
    let out = repl
        .eval_line("segment whales \"Big\" = spend > 2000")
        .await;
    assert_eq!(out.text, "defined segment `whales`\n");
    let out = repl.eval_line("in whales").await;
    assert!(!out.failed, "{}", out.text);
    let whales = repl.eval_line("spend > 2000").await;
    assert_eq!(out.text, whales.text, "`in whales` and its condition agree");
    assert!(
        out.text.starts_with("54 profiles (2.7% of 2000)"),
        "{}",
        out.text
    );
    // Redefinition replaces the old definition.
    let out = repl.eval_line("segment whales = spend > 3000").await;
    assert_eq!(out.text, "redefined segment `whales`\n");
    let smaller = repl.eval_line("in whales").await;
    let count = |text: &str| {
        text.split_whitespace()
            .next()
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0)
    };
    assert!(
        count(&smaller.text) < 54 && count(&smaller.text) > 0,
        "{}",
        smaller.text
    );
}

#[tokio::test]
async fn sql_shows_a_condition_as_sql_for_a_dialect() {
    let mut repl = repl().await;
    let out = repl
        .eval_line(":sql purchased(category = \"O'Brien\") within 30d")
        .await;
    assert!(!out.failed, "{}", out.text);
    // PostgreSQL by default: double-quoted names, the quote in the string doubled.
    assert!(out.text.starts_with("SELECT"), "{}", out.text);
    assert!(out.text.contains("FROM \"purchased\""), "{}", out.text);
    assert!(out.text.contains("'O''Brien'"), "{}", out.text);
    let out = repl.eval_line(":sql mysql in vip_at_risk").await;
    assert!(
        !out.failed && out.text.contains("FROM `profiles`"),
        "{}",
        out.text
    );
    let out = repl.eval_line(":sql").await;
    assert!(out.failed && out.text.contains("usage"), "{}", out.text);
    let out = repl.eval_line(":sql contry = \"DE\"").await;
    assert!(out.failed && out.text.contains("E0101"), "{}", out.text);
}

#[tokio::test]
async fn errors_are_rendered_and_the_session_goes_on() {
    let mut repl = repl().await;
    let out = repl.eval_line("contry = \"DE\"").await;
    assert!(out.failed);
    assert!(
        out.text.contains("E0101") && out.text.contains("did you mean `country`?"),
        "{}",
        out.text
    );
    let out = repl.eval_line("segment broken = age > \"x\"").await;
    assert!(out.failed && out.text.contains("E0201"), "{}", out.text);
    // The failed definition was not kept.
    let out = repl.eval_line("in broken").await;
    assert!(out.failed && out.text.contains("E0104"), "{}", out.text);
    let out = repl.eval_line("country = \"DE\"").await;
    assert!(!out.failed, "{}", out.text);
}

#[tokio::test]
async fn conditions_show_size_and_sample_with_their_columns() {
    let mut repl = repl().await;
    repl.eval_line(":sample 3").await;
    let out = repl.eval_line("gender = \"f\" and age > 60").await;
    assert!(
        out.text.contains("| customer_id | gender | age |"),
        "{}",
        out.text
    );
    let keys = keys_in(&out.text);
    assert_eq!(keys.len(), 3);
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    let out = repl.eval_line(":with city, lifecycle").await;
    assert!(!out.failed, "{}", out.text);
    let out = repl.eval_line("in vip_at_risk").await;
    assert!(
        out.text.contains("| city") && out.text.contains("lifecycle"),
        "{}",
        out.text
    );
    let out = repl.eval_line(":with nosuch").await;
    assert!(out.failed && out.text.contains("E0402"), "{}", out.text);
    let out = repl.eval_line("count(purchased) within 30d").await;
    assert!(
        out.text
            .starts_with("count(purchased) within 30d: int per profile"),
        "{}",
        out.text
    );
}

#[tokio::test]
async fn meta_commands() {
    let mut repl = repl().await;
    let out = repl.eval_line(":help").await;
    assert!(out.text.contains(":why") && out.text.contains(":save"));
    let out = repl.eval_line(":schema").await;
    assert!(
        out.text.contains("purchased") && out.text.contains("profiles"),
        "{}",
        out.text
    );
    let out = repl.eval_line(":schema purchased").await;
    assert!(
        out.text.contains("amount") && out.text.contains("(time)"),
        "{}",
        out.text
    );
    let out = repl.eval_line(":schema purchase").await;
    assert!(
        out.failed && out.text.contains("did you mean `purchased`?"),
        "{}",
        out.text
    );
    let out = repl.eval_line(":segments").await;
    assert!(
        out.text.contains("big_fashion_buyers") && out.text.contains("lifecycle"),
        "{}",
        out.text
    );
    let out = repl.eval_line(":count").await;
    assert_eq!(out.text.lines().count(), 20);
    let out = repl.eval_line(":as-of 1998-01-01").await;
    assert_eq!(out.text, "as of 1998-01-01T00:00:00Z\n");
    let out = repl.eval_line(":as-of tomorrow").await;
    assert!(out.failed);
    let out = repl.eval_line(":explain purchased within 30d").await;
    assert!(
        out.text.contains("== physical plan") && out.text.contains("DataSourceExec"),
        "{}",
        out.text
    );
    let out = repl.eval_line(":cuont").await;
    assert!(
        out.failed && out.text.contains("did you mean `:count`?"),
        "{}",
        out.text
    );
    let out = repl.eval_line(":quit").await;
    assert!(out.quit);
}

#[tokio::test]
async fn why_agrees_with_membership() {
    let mut repl = repl().await;
    repl.eval_line(":sample 1").await;
    let member = keys_in(&repl.eval_line("in big_fashion_buyers").await.text)[0];
    let out = repl
        .eval_line(&format!(":why big_fashion_buyers {member}"))
        .await;
    assert!(!out.failed, "{}", out.text);
    assert!(
        out.text.starts_with(&format!(
            "customer_id {member} is a member of `big_fashion_buyers`"
        )),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("✓ purchased(category = \"fashion\")"),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("category=fashion") || out.text.contains("• 1998-"),
        "lists events: {}",
        out.text
    );
    let non_member = keys_in(&repl.eval_line("not in big_fashion_buyers").await.text)[0];
    let out = repl
        .eval_line(&format!(":why big_fashion_buyers {non_member}"))
        .await;
    assert!(out.text.contains("is NOT a member"), "{}", out.text);
    assert!(out.text.contains('✗'), "{}", out.text);
    let out = repl.eval_line(":why big_fashion_buyers 999999").await;
    assert!(
        out.failed && out.text.contains("no profile"),
        "{}",
        out.text
    );
    let out = repl.eval_line(":why big_fashion_buyers abc").await;
    assert!(out.failed && out.text.contains("integers"), "{}", out.text);
}

#[tokio::test]
async fn save_and_load_round_trip() {
    let directory = tempfile::tempdir().expect("tempdir");
    let file = directory.path().join("session.seg");
    let file_text = file.to_str().expect("path");
    let mut first = repl().await;
    first
        .eval_line("metric spend = sum(purchased.amount)")
        .await;
    first.eval_line("segment whales = spend > 2000").await;
    let saved = first.eval_line(&format!(":save {file_text}")).await;
    assert!(!saved.failed, "{}", saved.text);

    let session = Session::open(Path::new("examples/shop/segql.toml"))
        .await
        .expect("catalog");
    let mut second = Repl::new(session).with_timing(false);
    let loaded = second.eval_line(&format!(":load {file_text}")).await;
    assert!(!loaded.failed, "{}", loaded.text);
    assert_eq!(
        second.eval_line("in whales").await.text,
        first.eval_line("in whales").await.text
    );
}

#[test]
fn the_lexer_knows_every_token() {
    let line = r#"segment s "d" = purchased(category = "x").amount >= 1.5 and 30d ago < 1997-01-01T00:00:00Z or [1, 2] # note"#;
    let kinds: Vec<Token> = tokens(line).into_iter().map(|l| l.token).collect();
    use Token::*;
    assert_eq!(
        kinds,
        vec![
            Keyword,
            Ident,
            String,
            Operator,
            Ident,
            OpenParen,
            Ident,
            Operator,
            String,
            CloseParen,
            Dot,
            Ident,
            Operator,
            Number,
            Keyword,
            Duration,
            Keyword,
            Operator,
            Timestamp,
            Keyword,
            OpenBracket,
            Number,
            Comma,
            Number,
            CloseBracket,
            Comment
        ]
    );
    assert_eq!(
        tokens("\"half typed")
            .into_iter()
            .map(|l| l.token)
            .collect::<Vec<_>>(),
        vec![UnterminatedString]
    );
    assert_eq!(
        tokens("a ~ b")
            .into_iter()
            .map(|l| l.token)
            .collect::<Vec<_>>(),
        vec![Ident, Unknown, Ident]
    );
}

#[test]
fn the_lexer_never_fails_and_covers_its_input() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let alphabet: Vec<char> = "segmntadorwihl0123456789.-+*/=<>!()[]{}\",:#\\ \n\tdsmoyzÄü€😀"
        .chars()
        .collect();
    for _ in 0..2000 {
        let length = rng.random_range(0..40);
        let text: String = (0..length)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        let lexemes = tokens(&text);
        let mut last = 0;
        for lexeme in &lexemes {
            assert!(
                lexeme.start >= last && lexeme.end > lexeme.start && lexeme.end <= text.len(),
                "{text:?}"
            );
            assert!(
                text[last..lexeme.start].chars().all(char::is_whitespace),
                "{text:?}"
            );
            last = lexeme.end;
        }
        // Completion and classification never panic either.
        let knowledge = Knowledge::default();
        let _ = knowledge.classify(&text);
        let _ = knowledge.complete(&text, text.len());
        let _ = is_complete(&text);
    }
}

#[tokio::test]
async fn completion_depends_on_context() {
    let knowledge = repl().await.knowledge();
    let complete = |line: &str| knowledge.complete(line, line.len());
    let (start, candidates) = complete("sum(purchased.am");
    assert_eq!((start, candidates), (14, vec!["amount".to_string()]));
    let (_, candidates) = complete("purchased(ca");
    assert_eq!(
        candidates,
        vec!["category".to_string()],
        "only the event's columns inside its filter"
    );
    let (_, candidates) = complete("purchased(a");
    assert!(
        candidates.contains(&"amount".to_string()) && !candidates.contains(&"age".to_string()),
        "{candidates:?}"
    );
    let (_, candidates) = complete("age > 3 and in la");
    assert_eq!(candidates, vec!["lapsed".to_string()]);
    let (_, candidates) = complete("inc");
    assert_eq!(candidates, vec!["income".to_string()]);
    let (_, candidates) = complete("geo_");
    assert_eq!(candidates, vec!["geo_distance_km".to_string()]);
    let (_, candidates) = complete("rev");
    assert_eq!(candidates, vec!["revenue".to_string()], "metrics");
    let (_, candidates) = complete(":sc");
    assert_eq!(candidates, vec![":schema".to_string()]);
    let (start, candidates) = complete(":load examples/shop/segm");
    assert_eq!(
        (start, candidates),
        (6, vec!["examples/shop/segments.seg".to_string()])
    );
    let (_, candidates) = complete(":schema pur");
    assert_eq!(candidates, vec!["purchased".to_string()]);
}

#[tokio::test]
async fn names_are_classified_for_highlighting() {
    let knowledge = repl().await.knowledge();
    let kinds: Vec<(String, NameKind)> = {
        let line = "purchased(category = \"x\") and aov > 1 and contry = 1 and in lapsed and sum(viewed.product) > 0";
        knowledge
            .classify(line)
            .into_iter()
            .filter_map(|(l, k)| k.map(|k| (line[l.start..l.end].to_string(), k)))
            .collect()
    };
    let kind = |name: &str| kinds.iter().find(|(n, _)| n == name).map(|(_, k)| *k);
    assert_eq!(kind("purchased"), Some(NameKind::Event));
    assert_eq!(kind("category"), Some(NameKind::EventColumn));
    assert_eq!(kind("aov"), Some(NameKind::Metric));
    assert_eq!(kind("contry"), Some(NameKind::Unknown));
    assert_eq!(kind("lapsed"), Some(NameKind::Segment));
    assert_eq!(kind("sum"), Some(NameKind::Function));
    assert_eq!(kind("product"), Some(NameKind::EventColumn));
}

#[test]
fn the_validator_keeps_open_input_open() {
    for open in [
        "(age > 3",
        "age > 3 and",
        "city = \"Kö",
        "segment x =",
        "stage s {\n a = true",
        "x in [1,",
        "count(purchased) within",
    ] {
        assert!(!is_complete(open), "{open:?} should continue");
    }
    for done in [
        "age > 3",
        "(age > 3)",
        ":help",
        "",
        "segment x = age > 3",
        "stage s {\n a = true\n}",
        "x # comment (",
    ] {
        assert!(is_complete(done), "{done:?} is complete");
    }
}

/// The real binary in a pseudo-terminal: type a definition, use it, see colours, complete
/// a column with Tab.
#[test]
fn interactive_session_in_a_terminal() {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_segql"));
    command
        .args(["repl", "examples/shop/segments.seg"])
        .env("TERM", "xterm")
        .env_remove("NO_COLOR");
    let home = tempfile::tempdir().expect("tempdir");
    command
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path());
    let mut terminal =
        rexpect::session::spawn_command(command, Some(30_000)).expect("spawn segql repl");
    terminal.exp_string("segql> ").expect("prompt");
    terminal
        .send_line("segment rich = income > 90000")
        .expect("type");
    terminal
        .exp_string("defined segment `rich`")
        .expect("definition accepted");
    // `income` is a profile column: highlighted green as typed.
    terminal.send_line("in rich and age > 50").expect("type");
    terminal.exp_string("profiles (").expect("audience size");
    terminal.exp_string("segql> ").expect("prompt again");
    // Tab completes `purchased.am` to `purchased.amount`.
    terminal.send("sum(purchased.am\t").expect("type");
    terminal.flush().expect("flush");
    terminal.exp_string("amount").expect("completed");
    terminal.send(") > 1000\r").expect("finish the line");
    terminal.flush().expect("flush");
    terminal
        .exp_string("profiles (")
        .expect("evaluated the completed line");
    terminal.send_line("contry = \"DE\"").expect("type");
    terminal
        .exp_string("did you mean `country`?")
        .expect("diagnostic");
    terminal
        .send_line("age > 20 and country = \"DE\"")
        .expect("type");
    terminal
        .exp_string("\x1b[32mage")
        .expect("profile columns are green");
    // The prompt is redrawn with every key; wait for the result before the next prompt.
    terminal.exp_string("profiles (").expect("evaluated");
    terminal.exp_string("segql> ").expect("prompt again");
    terminal.send_control('d').expect("Ctrl-D");
    terminal.flush().expect("flush");
    terminal.exp_eof().expect("exits");
    assert!(
        home.path().join("segql/history.txt").exists(),
        "history is kept in the data directory"
    );
}
