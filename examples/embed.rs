//! Embedding SegQL in another tool: open a catalog, add segment definitions from text,
//! look at the DataFusion plan, run it, and handle diagnostics as data.
//!
//! ```text
//! cargo run --example embed
//! ```

use std::path::Path;

use datafusion::arrow::util::pretty::pretty_format_batches;
use segql::Session;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Open a catalog: its tables are registered in a fresh DataFusion context.
    let mut session = Session::open(Path::new("examples/shop/segql.toml")).await?;

    // 2. Add definitions. Errors come back as a `Report` with structured diagnostics.
    let source = r#"
        metric spend_90d = sum(purchased.amount) within 90d
        segment loyal_dach "Spent over 300 in 90 days, in DACH" =
            spend_90d > 300 and country in ["DE", "AT", "CH"]
    "#;
    session.add_source("embedded.seg", source)?;

    if let Err(report) = session.add_source("typo.seg", "segment oops = spend_90 > 1") {
        for diagnostic in report.diagnostics.iter() {
            println!(
                "{} {}: {}",
                diagnostic.code,
                diagnostic.message,
                diagnostic.help.as_deref().unwrap_or("")
            );
        }
    }

    // 3. The DataFusion logical plan, to inspect or to run on your own context.
    let plan = session.plan_segments(&["loyal_dach"], &["spend_90d", "city"])?;
    println!("{}", plan.display_indent());

    // 4. Run it.
    let batches = session.execute(plan).await?;
    println!(
        "{}",
        pretty_format_batches(&batches[..batches.len().min(1)])?
    );

    // 5. Sizes of several segments in one pass.
    for (segment, size) in session.counts(&[]).await? {
        println!("{segment}: {size}");
    }
    Ok(())
}
