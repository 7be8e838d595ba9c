//! Compile latency: parse, check and lower (without DataFusion's optimizer) for the demo
//! file and for a generated file of 500 segments.
//!
//! ```text
//! cargo bench --bench compile
//! ```

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group};
use segql::catalog::CatalogSchema;
use segql::plan::{Planner, Tables};
use segql::{check, syntax};

const AS_OF: i64 = 899_251_200_000_000_000; // 1998-07-01

fn demo_schema() -> CatalogSchema {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        segql::Session::open(Path::new("examples/shop/segql.toml"))
            .await
            .expect("demo catalog")
            .schema()
            .clone()
    })
}

/// The demo's segments repeated with new names and thresholds until there are `count`.
fn many_segments(demo: &str, count: usize) -> String {
    let mut out = String::new();
    let mut made = 0;
    let mut round = 0;
    while made < count {
        for line in demo.lines() {
            let line = line.replace(">= 5 within", &format!(">= {} within", 2 + round % 7));
            if let Some(rest) = line.strip_prefix("segment ") {
                if made == count {
                    break;
                }
                out.push_str(&format!("segment r{round}_{rest}\n"));
                made += 1;
            } else if let Some(rest) = line.strip_prefix("metric ") {
                out.push_str(&format!("metric r{round}_{rest}\n"));
            } else if let Some(rest) = line.strip_prefix("stage ") {
                out.push_str(&format!("stage r{round}_{rest}\n"));
            } else {
                // References to definitions get the same prefix.
                let mut line = line.clone();
                for name in [
                    "in lapsed",
                    "in near_munich",
                    "in vip_at_risk",
                    "lifecycle =",
                    "aov >",
                    "revenue >",
                ] {
                    let (head, tail) = name.split_once(' ').unwrap_or((name, ""));
                    let renamed = if head == "in" {
                        format!("in r{round}_{tail}")
                    } else {
                        format!("r{round}_{head} {tail}")
                    };
                    line = line.replace(name, &renamed);
                }
                out.push_str(&line);
                out.push('\n');
            }
        }
        round += 1;
    }
    out
}

fn compile(text: &str, schema: &CatalogSchema, tables: &Tables) -> usize {
    let (file, diagnostics) = syntax::parse_file(text, 0);
    assert!(!diagnostics.has_errors());
    let (program, diagnostics) = check::check(&[file], schema);
    assert!(!diagnostics.has_errors(), "{diagnostics:?}");
    let segments: Vec<_> = program.segments.iter().collect();
    let plan = Planner::new(&program, schema, tables, AS_OF)
        .counts(&segments)
        .expect("plan");
    black_box(plan);
    segments.len()
}

fn bench(c: &mut Criterion) {
    let schema = demo_schema();
    let tables = Tables::from_schema(&schema);
    let demo = std::fs::read_to_string("examples/shop/segments.seg").expect("demo segments");
    let large = many_segments(&demo, 500);
    assert_eq!(compile(&large, &schema, &tables), 500);

    c.bench_function("parse demo", |b| {
        b.iter(|| syntax::parse_file(black_box(&demo), 0))
    });
    let (file, _) = syntax::parse_file(&demo, 0);
    let files = [file];
    c.bench_function("check demo", |b| {
        b.iter(|| check::check(black_box(&files), &schema))
    });
    c.bench_function("parse+check+lower demo (20 segments)", |b| {
        b.iter(|| compile(black_box(&demo), &schema, &tables))
    });
    c.bench_function("parse+check+lower 500 segments", |b| {
        b.iter(|| compile(black_box(&large), &schema, &tables))
    });
}

criterion_group!(benches, bench);

/// Like `criterion_main!`, on a thread with the stack the CLI gives the compiler, so the
/// figures are those of `segql` itself.
fn main() {
    let stack = segql::diagnostic::DEEP_STACK_BYTES * 2;
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(|| {
            benches();
            Criterion::default().configure_from_args().final_summary();
        })
        .expect("spawn the benchmark thread")
        .join()
        .expect("benchmarks finished");
}
