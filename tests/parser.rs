//! Precedence, literals and spans of the parser, shown as fully parenthesized text.

use segql::syntax::ast::{Expr, ExprKind, Literal, Window};
use segql::syntax::{parse_expression, parse_file};

fn show(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Error => "<error>".into(),
        ExprKind::Literal(Literal::Int(i)) => i.to_string(),
        ExprKind::Literal(Literal::Float(x)) => format!("{x:?}"),
        ExprKind::Literal(Literal::String(s)) => format!("{s:?}"),
        ExprKind::Literal(Literal::Bool(b)) => b.to_string(),
        ExprKind::Literal(Literal::Null) => "null".into(),
        ExprKind::Literal(Literal::Duration(d)) => format!("{d}"),
        ExprKind::Literal(Literal::Timestamp(t)) => format!("@{t}"),
        ExprKind::Now => "now".into(),
        ExprKind::Ago(d) => format!("{d} ago"),
        ExprKind::List(items) => format!(
            "[{}]",
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        ExprKind::Name(n) => n.name.clone(),
        ExprKind::InSegment(n) => format!("(in {})", n.name),
        ExprKind::Call { function, args } => format!(
            "{}({})",
            function.name,
            args.iter()
                .map(|a| format!(
                    "{}{}",
                    if a.distinct.is_some() {
                        "distinct "
                    } else {
                        ""
                    },
                    show(&a.expr)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ExprKind::Member { base, column } => format!("{}.{}", show(base), column.name),
        ExprKind::Negate(inner) => format!("(- {})", show(inner)),
        ExprKind::Not(inner) => format!("(not {})", show(inner)),
        ExprKind::Binary { op, lhs, rhs } => {
            format!("({} {} {})", show(lhs), op.symbol(), show(rhs))
        }
        ExprKind::Between { expr, low, high } => {
            format!("({} between {} {})", show(expr), show(low), show(high))
        }
        ExprKind::In { expr, set, negated } => format!(
            "({} {}in {})",
            show(expr),
            if *negated { "not " } else { "" },
            show(set)
        ),
        ExprKind::Has {
            expr,
            quantifier,
            set,
        } => format!("({} has {:?} {})", show(expr), quantifier, show(set)),
        ExprKind::IsNull { expr, negated } => format!(
            "({} is {}null)",
            show(expr),
            if *negated { "not " } else { "" }
        ),
        ExprKind::StringTest { op, expr, pattern } => {
            format!("({} {} {})", show(expr), op.keyword(), show(pattern))
        }
        ExprKind::Window { expr, window } => match window {
            Window::Within(d) => format!("({} within {})", show(expr), show(d)),
            Window::Range(a, b) => format!("({} within {} .. {})", show(expr), show(a), show(b)),
            Window::Since(t) => format!("({} since {})", show(expr), show(t)),
        },
        ExprKind::Literal(Literal::Percent(millionths)) => format!("{millionths}ppm"),
        ExprKind::Top { amount, by } => format!("(top {amount:?} by {})", show(by)),
        ExprKind::Occurrence { last, set } => {
            format!("({} {})", if *last { "last" } else { "first" }, show(set))
        }
        ExprKind::Sequence { first, steps } => {
            let mut text = format!("({}", show(first));
            for step in steps {
                text.push_str(" then ");
                if step.negated {
                    text.push_str("not ");
                }
                text.push_str(&show(&step.event));
                if let Some(gap) = &step.gap {
                    text.push_str(&format!(" within {}", show(gap)));
                }
            }
            text + ")"
        }
    }
}

fn parse(text: &str) -> String {
    show(&parse_expression(text, 0).unwrap_or_else(|d| panic!("`{text}` does not parse: {d:?}")))
}

#[test]
fn window_scope_is_loosest() {
    assert_eq!(
        parse(r#"purchased(category = "X") and aov > 100 within 30d"#),
        r#"((purchased((category = "X")) and (aov > 100)) within 30d)"#
    );
    assert_eq!(parse("a or b within 7d"), "((a or b) within 7d)");
    assert_eq!(
        parse("(a within 7d) or b within 3d"),
        "(((a within 7d) or b) within 3d)"
    );
    assert_eq!(
        parse("a within 30d within 60d"),
        "((a within 30d) within 60d)"
    );
}

#[test]
fn boolean_and_comparison_precedence() {
    assert_eq!(parse("a or b and not c"), "(a or (b and (not c)))");
    assert_eq!(parse("not a = 1"), "(not (a = 1))");
    assert_eq!(parse("not not a"), "(not (not a))");
    assert_eq!(
        parse("a + b * c - d / e % f > 3"),
        "(((a + (b * c)) - ((d / e) % f)) > 3)"
    );
    assert_eq!(parse("-a * -2 < 3"), "(((- a) * (- 2)) < 3)");
    assert_eq!(parse("x between 1 and 5 and y"), "((x between 1 5) and y)");
    assert_eq!(
        parse("x not in [1, 2] or y in z"),
        "((x not in [1, 2]) or (y in z))"
    );
    assert_eq!(parse("in a and not in b"), "((in a) and (not (in b)))");
    assert_eq!(
        parse("tags has all [\"a\"] and t has any [\"b\",]"),
        "((tags has All [\"a\"]) and (t has Any [\"b\"]))"
    );
    assert_eq!(
        parse("x is not null and y is null"),
        "((x is not null) and (y is null))"
    );
    assert_eq!(
        parse("city starts_with \"M\" or city matches \"^K\""),
        "((city starts_with \"M\") or (city matches \"^K\"))"
    );
}

#[test]
fn percentages_and_the_remainder_operator() {
    assert_eq!(parse("10%"), "100000ppm");
    assert_eq!(parse("12.5% "), "125000ppm");
    assert_eq!(parse("0.0001%"), "1ppm");
    assert_eq!(parse("x >= 90% and y"), "((x >= 900000ppm) and y)");
    assert_eq!(
        parse("sample(10%, seed = \"s\")"),
        "sample(100000ppm, (seed = \"s\"))"
    );
    // Followed by an operand, `%` is the remainder.
    assert_eq!(parse("10%3"), "(10 % 3)");
    assert_eq!(parse("10 % 3"), "(10 % 3)");
    assert_eq!(parse("10% x"), "(10 % x)");
    assert_eq!(parse("10%(x)"), "(10 % x)");
    assert_eq!(parse("10%\n-1"), "(10 % (- 1))");
    let error = parse_expression("sample(10.00001%)", 0).expect_err("five decimals");
    assert_eq!(error.0[0].code, "E0002");
}

#[test]
fn top_binds_an_arithmetic_operand() {
    assert_eq!(parse("top 10 by ltv"), "(top Count(10) by ltv)");
    assert_eq!(
        parse("top 5% by a + b and c"),
        "((top Share(50000) by (a + b)) and c)"
    );
    assert_eq!(
        parse("top 3 by sum(p.amount) within 30d"),
        "((top Count(3) by sum(p.amount)) within 30d)"
    );
    // `top` and `by` are not reserved.
    assert_eq!(parse("top > by"), "(top > by)");
    assert_eq!(parse("top(by)"), "top(by)");
}

#[test]
fn frequency_occurrence_and_time_order_sugar() {
    assert_eq!(
        parse("purchased on at least 3 distinct days within 30d"),
        "((active_days(purchased) >= 3) within 30d)"
    );
    assert_eq!(
        parse("viewed(category = \"books\") on at least 2 distinct weeks"),
        "(active_weeks(viewed((category = \"books\"))) >= 2)"
    );
    assert_eq!(
        parse("first purchased within 7d"),
        "((first purchased) within 7d)"
    );
    assert_eq!(
        parse("last purchased(amount > 5) and x"),
        "((last purchased((amount > 5))) and x)"
    );
    assert_eq!(
        parse("last(purchased.ts) before 90d ago"),
        "(last(purchased.ts) < 90d ago)"
    );
    assert_eq!(
        parse("signup_ts after 1998-01-01"),
        "(signup_ts > @883612800000000000)"
    );
    // None of the words is reserved.
    assert_eq!(parse("first(x) > last"), "(first(x) > last)");
    assert_eq!(parse("on + at - least"), "((on + at) - least)");
    assert_eq!(parse("before = after"), "(before = after)");
    assert_eq!(
        parse("purchased in 3 of the last 4 months"),
        "((active_periods(purchased, 1mo) >= 3) within 4mo)"
    );
    assert_eq!(
        parse("viewed in 1 of the last 2 week and x"),
        "(((active_periods(viewed, 1w) >= 1) within 2w) and x)"
    );
    assert_eq!(parse("x in [1, 2]"), "(x in [1, 2])");
    // Counts are whole numbers.
    for fraction in [
        "purchased on at least 2.5 distinct days",
        "purchased in 1.5 of the last 4 months",
        "top 2.5 by ltv",
    ] {
        let error = parse_expression(fraction, 0).expect_err(fraction);
        assert_eq!(error.0[0].code, "E0002", "{fraction}: {:?}", error.0);
    }
}

#[test]
fn comparisons_do_not_chain() {
    let error = parse_expression("a = b = c", 0).expect_err("chained comparison");
    assert_eq!(error.0[0].code, "E0001");
    assert!(
        error.0[0]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("cannot be chained"),
        "{:?}",
        error.0[0]
    );
}

#[test]
fn literals() {
    assert_eq!(parse("42 + 99.5"), "(42 + 99.5)");
    assert_eq!(
        parse(r#""a \"quoted\" word\n\t\\""#),
        r#""a \"quoted\" word\n\t\\""#
    );
    assert_eq!(parse("[true, false, null]"), "[true, false, null]");
    assert_eq!(
        parse("[30s, 15min, 12h, 30d, 2w, 3mo, 1y]"),
        "[30s, 15min, 12h, 30d, 2w, 3mo, 1y]"
    );
    assert_eq!(parse("1970-01-02"), "@86400000000000");
    assert_eq!(parse("1970-01-01T00:00:01Z"), "@1000000000");
    assert_eq!(parse("1970-01-01T01:00:00+01:00"), "@0");
    assert_eq!(parse("now - 30d ago"), "(now - 30d ago)");
    assert_eq!(
        parse("x within 1997-01-01 .. 1997-04-01"),
        "(x within @852076800000000000 .. @859852800000000000)"
    );
    assert_eq!(parse("x since 90d ago"), "(x since 90d ago)");
}

#[test]
fn event_sets_columns_and_aggregates() {
    assert_eq!(
        parse("count(distinct purchased.product) >= 3"),
        "(count(distinct purchased.product) >= 3)"
    );
    assert_eq!(
        parse("sum(purchased(channel = \"web\").amount)"),
        "sum(purchased((channel = \"web\")).amount)"
    );
    assert_eq!(
        parse("first(purchased.ts) > 30d ago"),
        "(first(purchased.ts) > 30d ago)"
    );
    assert_eq!(
        parse("geo_distance_km(lat, lon, 48.1, 11.5) < 50"),
        "(geo_distance_km(lat, lon, 48.1, 11.5) < 50)"
    );
}

#[test]
fn declarations_and_spans() {
    let text = "# comment\nsegment big \"Big spenders\" = x > 1 # trailing\nmetric m = 1\nstage s {\n  a = true\n  b = x\n}\n";
    let (file, diagnostics) = parse_file(text, 3);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    assert_eq!(file.declarations.len(), 3);
    let segql::syntax::ast::Declaration::Segment(segment) = &file.declarations[0] else {
        panic!("a segment")
    };
    assert_eq!(segment.description.as_deref(), Some("Big spenders"));
    assert_eq!(&text[segment.name.span.start..segment.name.span.end], "big");
    assert_eq!(
        &text[segment.expr.span.start..segment.expr.span.end],
        "x > 1"
    );
    assert_eq!(segment.expr.span.file, 3);
    let segql::syntax::ast::Declaration::Stage(stage) = &file.declarations[2] else {
        panic!("a stage")
    };
    assert_eq!(stage.arms.len(), 2);
}

#[test]
fn non_ascii_spans_are_bytes() {
    let text = "city = \"Köln\" and 1 2";
    let diagnostics = parse_expression(text, 0).expect_err("two values without an operator");
    let label = diagnostics.0[0].primary.as_ref().expect("located");
    assert_eq!(&text[label.span.start..label.span.end], "2");
}

#[test]
fn every_syntax_error_of_a_file_is_reported() {
    let text = "segment a = (x\nsegment b = y +\nsegment c = z > 1\nsegment d = 1 2\n";
    let (file, diagnostics) = parse_file(text, 0);
    let lines: Vec<usize> = diagnostics
        .iter()
        .map(|d| {
            text[..d.primary.as_ref().map(|l| l.span.start).unwrap_or(0)]
                .matches('\n')
                .count()
                + 1
        })
        .collect();
    assert_eq!(lines, vec![1, 2, 4]);
    assert_eq!(file.declarations.len(), 1, "the valid declaration is kept");
}

#[test]
fn keywords_are_not_names() {
    let (_, diagnostics) = parse_file("segment and = true", 0);
    assert_eq!(diagnostics.0[0].code, "E0001");
    assert!(
        diagnostics.0[0]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("keyword"),
        "{:?}",
        diagnostics.0[0]
    );
}

#[test]
fn invalid_literals() {
    for (text, message) in [
        ("x within 30days", "unknown duration unit `days`"),
        ("x > 1997-02-30", "not a valid date"),
        ("x > 99999999999999999999", "too large"),
        (r#"x = "a\qb""#, "unknown escape"),
    ] {
        let diagnostics = parse_expression(text, 0).expect_err(text);
        assert_eq!(diagnostics.0[0].code, "E0002", "{text}");
        assert!(
            diagnostics.0[0].message.contains(message),
            "{text}: {}",
            diagnostics.0[0].message
        );
    }
}

#[test]
fn sequences_bind_tighter_than_and_and_looser_than_comparisons() {
    assert_eq!(
        parse("added_to_cart then purchased within 1h"),
        "(added_to_cart then purchased within 1h)"
    );
    assert_eq!(
        parse(
            r#"viewed(product = p) then added_to_cart then not purchased(product = p) within 24h and age > 30"#
        ),
        r#"((viewed((product = p)) then added_to_cart then not purchased((product = p)) within 24h) and (age > 30))"#
    );
    // The first `within` is the step's gap, the second windows the whole expression.
    assert_eq!(
        parse("viewed then purchased within 1h within 30d"),
        "((viewed then purchased within 1h) within 30d)"
    );
    assert_eq!(
        parse("not viewed then purchased"),
        "(not (viewed then purchased))"
    );
    // `then` is not reserved: a column of that name still works.
    assert_eq!(parse("then > 3"), "(then > 3)");
}

#[test]
fn sequence_steps_are_event_sets_with_an_optional_gap() {
    for text in [
        "viewed then",
        "viewed then purchased within",
        "viewed then purchased within 1h .. 2h",
    ] {
        assert!(parse_expression(text, 0).is_err(), "{text} parsed");
    }
}
