//! Writes the demo shop dataset.
//!
//! ```text
//! cargo run --example gen_demo -- OUT_DIR [CUSTOMERS] [SEED] [EVENTS_PER_CUSTOMER]
//! ```
//! With no count, writes the default 2000 customers (seed 42, about 20 events
//! each). `examples/shop/` holds the checked-in copy of the default dataset.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use segql::demo::{DemoOptions, generate};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: gen_demo OUT_DIR [CUSTOMERS] [SEED] [EVENTS_PER_CUSTOMER]";
    let Some(out_dir) = args.first().map(PathBuf::from) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let mut options = DemoOptions::default();
    let parse = |i: usize| -> Result<Option<u64>, String> {
        args.get(i)
            .map(|s| {
                s.replace('_', "")
                    .parse::<u64>()
                    .map_err(|e| format!("argument {i} ({s:?}): {e}\n{usage}"))
            })
            .transpose()
    };
    let parsed = (|| -> Result<(), String> {
        if let Some(n) = parse(1)? {
            options.customers = n as usize;
        }
        if let Some(n) = parse(2)? {
            options.seed = n;
        }
        if let Some(n) = parse(3)? {
            options.events_per_customer = n as usize;
        }
        Ok(())
    })();
    if let Err(msg) = parsed {
        eprintln!("{msg}");
        return ExitCode::from(2);
    }
    let started = Instant::now();
    match generate(&options, &out_dir) {
        Ok(summary) => {
            for (table, rows) in &summary.tables {
                println!("{table:>14}  {rows:>10} rows");
            }
            println!(
                "wrote {} in {:.1}s",
                out_dir.display(),
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("gen_demo: {err}");
            ExitCode::FAILURE
        }
    }
}
