//! The printer and the parser agree: for generated expressions, printing, parsing the text
//! and printing again gives the same text (the printer shows everything in the AST but
//! spans). More cases with `PROPTEST_CASES=100000 cargo test --test roundtrip`.

use proptest::prelude::*;
use segql::diagnostic::Span;
use segql::syntax::ast::*;
use segql::syntax::{parse_expression, print};

fn node(kind: ExprKind) -> Expr {
    Expr {
        kind,
        span: Span::new(0, 0, 0),
    }
}

fn ident(name: &str) -> Ident {
    Ident {
        name: name.to_string(),
        span: Span::new(0, 0, 0),
    }
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("age".to_string()),
        Just("purchased".to_string()),
        Just("amount".to_string()),
        Just("in_stock".to_string()),
        Just("nowhere".to_string()),
        Just("x1".to_string()),
        Just("_private".to_string()),
    ]
}

fn duration() -> impl Strategy<Value = Duration> {
    (
        0i64..200, // at most 200 years: durations are limited to about 292
        prop_oneof![
            Just(DurationUnit::Second),
            Just(DurationUnit::Minute),
            Just(DurationUnit::Hour),
            Just(DurationUnit::Day),
            Just(DurationUnit::Week),
            Just(DurationUnit::Month),
            Just(DurationUnit::Year),
        ],
    )
        .prop_map(|(amount, unit)| Duration { amount, unit })
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        (0i64..1_000_000).prop_map(|i| node(ExprKind::Literal(Literal::Int(i)))),
        (0i64..100_000).prop_map(|q| node(ExprKind::Literal(Literal::Float(q as f64 / 8.0)))),
        "[a-z \"\\\\\\n\\té#]{0,8}".prop_map(|s| node(ExprKind::Literal(Literal::String(s)))),
        any::<bool>().prop_map(|b| node(ExprKind::Literal(Literal::Bool(b)))),
        Just(node(ExprKind::Literal(Literal::Null))),
        duration().prop_map(|d| node(ExprKind::Literal(Literal::Duration(d)))),
        (0i64..4_000_000_000)
            .prop_map(|s| node(ExprKind::Literal(Literal::Timestamp(s * 1_000_000_000)))),
        Just(node(ExprKind::Now)),
        duration().prop_map(|d| node(ExprKind::Ago(d))),
        name().prop_map(|n| node(ExprKind::Name(ident(&n)))),
        name().prop_map(|n| node(ExprKind::InSegment(ident(&n)))),
    ]
}

fn binary_op() -> impl Strategy<Value = BinaryOp> {
    prop_oneof![
        Just(BinaryOp::Or),
        Just(BinaryOp::And),
        Just(BinaryOp::Eq),
        Just(BinaryOp::NotEq),
        Just(BinaryOp::Lt),
        Just(BinaryOp::LtEq),
        Just(BinaryOp::Gt),
        Just(BinaryOp::GtEq),
        Just(BinaryOp::Add),
        Just(BinaryOp::Sub),
        Just(BinaryOp::Mul),
        Just(BinaryOp::Div),
        Just(BinaryOp::Rem),
    ]
}

fn expression() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(5, 48, 4, |inner| {
        let boxed = || inner.clone().prop_map(Box::new);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| node(ExprKind::List(items))),
            (
                name(),
                prop::collection::vec((any::<bool>(), inner.clone()), 0..3)
            )
                .prop_map(|(function, args)| node(ExprKind::Call {
                    function: ident(&function),
                    args: args
                        .into_iter()
                        .map(|(distinct, expr)| Argument {
                            distinct: distinct.then(|| Span::new(0, 0, 0)),
                            expr,
                        })
                        .collect(),
                })),
            (name(), name()).prop_map(|(base, column)| node(ExprKind::Member {
                base: Box::new(node(ExprKind::Name(ident(&base)))),
                column: ident(&column),
            })),
            boxed().prop_map(|e| node(ExprKind::Negate(e))),
            boxed().prop_map(|e| node(ExprKind::Not(e))),
            (binary_op(), boxed(), boxed()).prop_map(|(op, lhs, rhs)| node(ExprKind::Binary {
                op,
                lhs,
                rhs
            })),
            (boxed(), boxed(), boxed()).prop_map(|(expr, low, high)| node(ExprKind::Between {
                expr,
                low,
                high
            })),
            (boxed(), boxed(), any::<bool>()).prop_map(|(expr, set, negated)| node(ExprKind::In {
                expr,
                set,
                negated
            })),
            (boxed(), boxed(), any::<bool>()).prop_map(|(expr, set, all)| node(ExprKind::Has {
                expr,
                quantifier: if all {
                    Quantifier::All
                } else {
                    Quantifier::Any
                },
                set,
            })),
            (boxed(), any::<bool>())
                .prop_map(|(expr, negated)| node(ExprKind::IsNull { expr, negated })),
            (
                prop_oneof![
                    Just(StringOp::Contains),
                    Just(StringOp::StartsWith),
                    Just(StringOp::EndsWith),
                    Just(StringOp::Matches),
                ],
                boxed(),
                boxed()
            )
                .prop_map(|(op, expr, pattern)| node(ExprKind::StringTest {
                    op,
                    expr,
                    pattern
                })),
            (
                boxed(),
                prop::collection::vec(
                    (any::<bool>(), inner.clone(), prop::option::of(boxed())),
                    1..3
                )
            )
                .prop_map(|(first, steps)| node(ExprKind::Sequence {
                    first,
                    steps: steps
                        .into_iter()
                        .map(|(negated, event, gap)| SequenceStep {
                            negated,
                            event,
                            gap,
                            span: Span::new(0, 0, 0),
                        })
                        .collect(),
                })),
            (boxed(), boxed(), prop::option::of(boxed()), any::<bool>()).prop_map(
                |(expr, a, b, since)| node(ExprKind::Window {
                    expr,
                    window: match (b, since) {
                        (Some(b), _) => Window::Range(a, b),
                        (None, true) => Window::Since(a),
                        (None, false) => Window::Within(a),
                    },
                })
            ),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(2_000)
    ))]

    #[test]
    fn printed_expressions_parse_back_to_the_same_tree(expr in expression()) {
        let text = print::expr(&expr);
        let parsed = parse_expression(&text, 0)
            .map_err(|d| TestCaseError::fail(format!("`{text}` does not parse: {d:?}")))?;
        prop_assert_eq!(print::expr(&parsed), text);
    }
}

#[test]
fn the_demo_and_benchmark_files_print_and_parse_back() {
    for path in ["examples/shop/segments.seg", "bench/segments.seg"] {
        let text = std::fs::read_to_string(path).expect("segments");
        let (parsed, diagnostics) = segql::syntax::parse_file(&text, 0);
        assert!(!diagnostics.has_errors(), "{path}: {diagnostics:?}");
        let printed = print::file(&parsed);
        let (reparsed, diagnostics) = segql::syntax::parse_file(&printed, 0);
        assert!(
            !diagnostics.has_errors(),
            "{path} printed:\n{printed}\n{diagnostics:?}"
        );
        assert_eq!(reparsed.declarations.len(), parsed.declarations.len());
        assert_eq!(print::file(&reparsed), printed, "{path}");
    }
}
