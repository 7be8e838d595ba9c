//! Nothing a user types panics the compiler: random token soups and random text through
//! parse, check and plan. (Coverage-guided fuzzing is a separate, longer exercise.)

use std::path::Path;

use rand::{Rng, SeedableRng};
use segql::Session;

const VOCABULARY: &[&str] = &[
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
    "any",
    "all",
    "contains",
    "starts_with",
    "ends_with",
    "matches",
    "true",
    "false",
    "now",
    "ago",
    "distinct",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    "..",
    "purchased",
    "viewed",
    "amount",
    "category",
    "ts",
    "age",
    "country",
    "interests",
    "income",
    "lifecycle",
    "aov",
    "lapsed",
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "first",
    "last",
    "lower",
    "coalesce",
    "geo_distance_km",
    "date_trunc",
    "days_since",
    "30d",
    "2mo",
    "1y",
    "15min",
    "42",
    "0",
    "99.5",
    "\"DE\"",
    "\"a\\\"b\"",
    "\"^x(\"",
    "1997-01-01",
    "1998-02-30",
    "1997-06-01T12:00:00Z",
    "#",
    "\n",
    "x",
    "s",
    "9999999999999999999999",
    "\"",
    "\\",
    "ü",
    "30days",
];

async fn session() -> Session {
    let mut session = Session::open(Path::new("examples/shop/segql.toml"))
        .await
        .expect("demo catalog");
    session
        .add_file(Path::new("examples/shop/segments.seg"))
        .expect("demo segments");
    session
}

#[tokio::test]
async fn random_token_sequences_never_panic() {
    let mut session = session().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let mut planned = 0;
    for i in 0..1500 {
        let length = rng.random_range(1..14);
        let words: Vec<&str> = (0..length)
            .map(|_| VOCABULARY[rng.random_range(0..VOCABULARY.len())])
            .collect();
        let text = words.join(" ");
        // As a condition: it either checks, and then plans, or yields diagnostics.
        if let Ok(condition) = session.check_condition(&format!("<case {i}>"), &text) {
            session
                .plan_condition(&condition, &[])
                .unwrap_or_else(|r| panic!("`{text}` checked but did not plan:\n{r}"));
            planned += 1;
        }
        // As a file of declarations.
        let declaration = format!("segment case_{i} = {text}");
        if session
            .add_source(&format!("<file {i}>"), &declaration)
            .is_ok()
        {
            session
                .plan_segments(&[&format!("case_{i}")], &[])
                .unwrap_or_else(|r| panic!("`{declaration}` checked but did not plan:\n{r}"));
        }
    }
    assert!(planned >= 5, "some random conditions are valid ({planned})");
}

#[tokio::test]
async fn random_text_never_panics() {
    let mut session = session().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let alphabet: Vec<char> = "segmntadorwihl0123456789.-+*/=<>!()[]{}\",:#\\ \n\tdsmoyzÄü€😀"
        .chars()
        .collect();
    for i in 0..1500 {
        let length = rng.random_range(0..60);
        let text: String = (0..length)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        let _ = session.check_condition(&format!("<text {i}>"), &text);
        let _ = session.add_source(&format!("<text file {i}>"), &text);
    }
}

#[tokio::test]
async fn deep_and_long_inputs_are_diagnosed_not_crashed() {
    let mut session = session().await;
    let deep_not = format!("{}age > 3", "not ".repeat(100_000));
    let report = session
        .check_condition("<deep not>", &deep_not)
        .map(|_| ())
        .expect_err("too deep");
    assert_eq!(report.diagnostics.0[0].code, "E0003");
    let long_chain = vec!["age > 3"; 50_000].join(" and ");
    let report = session
        .check_condition("<long chain>", &long_chain)
        .map(|_| ())
        .expect_err("too deep");
    assert_eq!(report.diagnostics.0[0].code, "E0003");
    // Just inside the limits, everything works, even on a test thread's small stack.
    let nested = format!("{}age > 3{}", "(".repeat(60), ")".repeat(60));
    let chain = vec!["age > 3"; 45].join(" and ");
    let condition = session
        .check_condition("<near the limit>", &format!("{nested} and {chain}"))
        .unwrap_or_else(|r| panic!("{r}"));
    session
        .plan_condition(&condition, &[])
        .unwrap_or_else(|r| panic!("{r}"));
    let brackets = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let report = session
        .check_condition("<brackets>", &brackets)
        .map(|_| ())
        .expect_err("too deep");
    assert_eq!(report.diagnostics.0[0].code, "E0003");
}

/// The deepest inputs the parser accepts fit in `DEEP_STACK_BYTES`: on a thread with just
/// that much (plus what the test itself uses), every stage runs without growing the stack.
#[test]
fn the_deepest_accepted_inputs_fit_the_stack_budget() {
    let limit = segql::syntax::MAX_NESTING;
    let brackets = segql::syntax::MAX_BRACKET_NESTING;
    let nested = format!("{}age > 3{}", "(".repeat(brackets), ")".repeat(brackets));
    let chain = vec!["age > 3"; limit - 2].join(" and ");
    let nots = format!("{}age > 3", "not ".repeat(limit - 2));
    let calls = format!(
        "{}1{} > 0",
        "abs(".repeat(brackets - 1),
        ")".repeat(brackets - 1)
    );
    let mixed = format!(
        "{}age > 3{} and {}",
        "(".repeat(brackets),
        ")".repeat(brackets),
        vec!["age > 3"; limit / 2].join(" and ")
    );
    let budget = segql::diagnostic::DEEP_STACK_BYTES + (512 << 10);
    let worker = std::thread::Builder::new()
        .stack_size(budget)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let mut session = session().await;
                for condition in [nested, chain, nots, calls, mixed] {
                    let typed = session
                        .check_condition("<deep>", &condition)
                        .unwrap_or_else(|r| panic!("{r}"));
                    session
                        .plan_condition(&typed, &[])
                        .unwrap_or_else(|r| panic!("{r}"));
                }
            });
        })
        .expect("spawn");
    worker.join().expect("no stack overflow");
}
