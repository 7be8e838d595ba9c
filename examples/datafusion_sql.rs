//! The benchmark's hand-written SQL baseline: runs SQL files in DataFusion's own SQL front
//! end over every `*.parquet` file of a directory (each registered under its file stem),
//! the same DataFusion version and default configuration that SegQL uses.
//!
//! ```text
//! cargo run --release --example datafusion_sql -- DATA_DIR QUERY.sql... [--keys OUT_DIR]
//! ```
//!
//! For each query it prints `name<TAB>rows<TAB>milliseconds` (the time to plan and run the
//! query and collect its rows, after the tables are registered). With `--keys`, the first
//! column of each result is written, one value per line, to `OUT_DIR/NAME.txt`
//! (outside the timing) so memberships can be compared across engines.

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use datafusion::arrow::util::display::array_value_to_string;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let data_dir = PathBuf::from(args.next().ok_or(USAGE)?);
    let mut queries = Vec::new();
    let mut keys_dir = None;
    while let Some(arg) = args.next() {
        if arg == "--keys" {
            keys_dir = Some(PathBuf::from(args.next().ok_or(USAGE)?));
        } else {
            queries.push(PathBuf::from(arg));
        }
    }
    if queries.is_empty() {
        return Err(USAGE.into());
    }

    let ctx = SessionContext::new();
    register_parquet_files(&ctx, &data_dir).await?;
    for query in &queries {
        let sql = std::fs::read_to_string(query)
            .map_err(|error| format!("cannot read {}: {error}", query.display()))?;
        let name = query
            .file_stem()
            .and_then(|stem| stem.to_str())
            .ok_or("query file without a name")?;

        let started = Instant::now();
        let batches = ctx.sql(&sql).await?.collect().await?;
        let elapsed = started.elapsed();

        let rows: usize = batches.iter().map(|batch| batch.num_rows()).sum();
        println!("{name}\t{rows}\t{:.1}", elapsed.as_secs_f64() * 1000.0);
        if let Some(dir) = &keys_dir {
            let mut text = String::new();
            for batch in &batches {
                for row in 0..batch.num_rows() {
                    writeln!(text, "{}", array_value_to_string(batch.column(0), row)?)?;
                }
            }
            std::fs::write(dir.join(format!("{name}.txt")), text)?;
        }
    }
    Ok(())
}

const USAGE: &str = "usage: datafusion_sql DATA_DIR QUERY.sql... [--keys OUT_DIR]";

async fn register_parquet_files(ctx: &SessionContext, dir: &Path) -> Result<(), Box<dyn Error>> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path
            .extension()
            .is_some_and(|extension| extension == "parquet")
        {
            let name = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .ok_or("parquet file without a name")?;
            let location = path.to_str().ok_or("path is not UTF-8")?;
            ctx.register_parquet(name, location, ParquetReadOptions::default())
                .await?;
        }
    }
    Ok(())
}
