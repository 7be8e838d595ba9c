//! Subcommands of `segql`: thin front ends over the library.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use datafusion::logical_expr::LogicalPlan;
use segql::catalog::Catalog;
use segql::diagnostic::{Diagnostic, Diagnostics, SourceMap};
use segql::engine::{self, Engine};
use segql::exec::OutputFormat;
use segql::segment_report::{ReportOptions, SegmentReport};
use segql::sql::{SqlDialect, TableNaming};
use segql::{Report, Session, render};

#[cfg(feature = "ballista")]
mod cluster;
mod learn;
mod progress;
mod watch;

use progress::Progress;

/// The demo's segments, written next to generated data.
const DEMO_SEGMENTS: &str = include_str!("../../examples/shop/segments.seg");

#[derive(Parser)]
#[command(
    name = "segql",
    version,
    about = "SegQL: customer segments compiled to DataFusion plans"
)]
#[command(
    long_about = "SegQL compiles customer-segment definitions (.seg files) against a catalog \
of profile and event tables (segql.toml) and evaluates them with DataFusion.\n\n\
The catalog is found next to the first segment file or in a parent directory, or given with --catalog."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// The catalog file (default: segql.toml next to the first file or in a parent directory)
    #[arg(long, global = true, value_name = "PATH")]
    catalog: Option<PathBuf>,
    /// How diagnostics are printed
    #[arg(long, global = true, value_enum, default_value_t = DiagnosticsFormat::Human)]
    diagnostics: DiagnosticsFormat,
    /// Memory an evaluation may use, e.g. 512MB or 2GiB (default: no limit); sorts and
    /// grouping spill to disk beyond it
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size)]
    memory_limit: Option<usize>,
    /// Stop `run`, `count` and `why` when the evaluation takes longer, e.g. 30s, 5min, 1h
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<std::time::Duration>,
    /// Where plans run: `local` (this process) or `ballista://HOST:PORT` (an Apache
    /// Ballista scheduler; needs a segql built with `--features ballista`)
    #[arg(long, global = true, value_name = "ENGINE", default_value_t = Engine::Local)]
    engine: Engine,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DiagnosticsFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check segment files and print diagnostics; exit 1 on errors
    Check {
        /// Segment files (default: the catalog's `segments`)
        files: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Print one compilation stage of a segment
    Compile {
        file: PathBuf,
        /// The segment to compile
        #[arg(long, value_name = "NAME")]
        segment: String,
        /// The stage to print
        #[arg(long, value_enum, default_value_t = Emit::Plan)]
        emit: Emit,
        /// Extra columns of the plans and the SQL: profile columns, metrics or stages
        /// (comma-separated)
        #[arg(long, value_name = "COL,...", value_delimiter = ',')]
        with: Vec<String>,
        #[command(flatten)]
        sql: SqlArgs,
        /// Evaluation time (default: the catalog's `as_of`, else now)
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        as_of: Option<i64>,
        #[command(flatten)]
        common: Common,
    },
    /// List the members of segments
    Run {
        file: PathBuf,
        /// Segments to run (repeatable; default: every segment in FILE)
        #[arg(long, value_name = "NAME")]
        segment: Vec<String>,
        /// Evaluation time (default: the catalog's `as_of`, else now)
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        as_of: Option<i64>,
        /// Extra columns: profile columns, metrics or stages (comma-separated)
        #[arg(long, value_name = "COL,...", value_delimiter = ',')]
        with: Vec<String>,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        /// Write to this file instead of standard output (required for parquet)
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// Print the physical plan with what each operator did (rows, time, Parquet row
        /// groups pruned) instead of the members
        #[arg(long)]
        explain_analyze: bool,
        /// Instead of running, write each segment as SQL for another engine to DIR/NAME.sql
        /// (see `--dialect`)
        #[arg(long, value_name = "DIR", conflicts_with = "explain_analyze")]
        emit_sql_dir: Option<PathBuf>,
        #[command(flatten)]
        sql: SqlArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Count the members of every segment, in one pass over each event table
    Count {
        file: PathBuf,
        /// Segments to count (repeatable; default: every segment in FILE)
        #[arg(long, value_name = "NAME")]
        segment: Vec<String>,
        /// Evaluation time (default: the catalog's `as_of`, else now)
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        as_of: Option<i64>,
        /// Print the physical plan with what each operator did (rows, time, Parquet row
        /// groups pruned) instead of the counts
        #[arg(long)]
        explain_analyze: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Write a segment report: an HTML page with each segment's size, the overlap between
    /// segments, each size over time and the composition by one attribute
    Report {
        file: PathBuf,
        /// Segments to include (repeatable; default: every segment in FILE)
        #[arg(long, value_name = "NAME")]
        segment: Vec<String>,
        /// Where to write the page
        #[arg(long, value_name = "PATH", default_value = "report.html")]
        out: PathBuf,
        /// Split each segment by this attribute: a profile column, metric or stage
        /// (default: the first text column of the profiles)
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        /// Time between two points of the size history (h, d or w)
        #[arg(long, value_name = "SPAN", default_value = "7d", value_parser = parse_span)]
        every: i64,
        /// Points of the size history, the last at the evaluation time
        #[arg(long, value_name = "N", default_value_t = 13,
              value_parser = clap::value_parser!(u64).range(1..=520))]
        points: u64,
        /// Evaluation time (default: the catalog's `as_of`, else now)
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        as_of: Option<i64>,
        #[command(flatten)]
        common: Common,
    },
    /// Write every profile's metrics and stages as a table (computed traits for email,
    /// ads and other tools)
    Traits {
        file: PathBuf,
        /// Metrics and stages to write (comma-separated; default: all of them)
        #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
        only: Vec<String>,
        /// Evaluation time (default: the catalog's `as_of`, else now)
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        as_of: Option<i64>,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        /// Write to this file instead of standard output (required for parquet)
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Find segments by clustering profiles on features, printed as SegQL definitions
    /// with their precision and recall
    Discover(learn::DiscoverArgs),
    /// Train a propensity model: features at a past cut-off, labels observed in the
    /// horizon after it, measured on a later holdout
    Train(learn::TrainArgs),
    /// Write every profile's score from a model `segql train` saved
    Score(learn::ScoreArgs),
    /// Explain why one profile is (or is not) a member of a segment
    Why {
        file: PathBuf,
        /// The segment
        #[arg(long, value_name = "NAME")]
        segment: String,
        /// The profile's key
        #[arg(long, value_name = "KEY")]
        key: String,
        /// Evaluation time (default: the catalog's `as_of`, else now)
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        as_of: Option<i64>,
        #[command(flatten)]
        common: Common,
    },
    /// The interactive segment workbench (reads lines from standard input when it is not a terminal)
    Repl {
        /// Segment files to load at start
        files: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Generate the demo shop dataset (Parquet, with a catalog and segments)
    Demo {
        /// Number of customers
        #[arg(long, default_value_t = 2000)]
        customers: usize,
        /// Average number of events per customer
        #[arg(long, default_value_t = 20)]
        events_per_customer: usize,
        /// Random seed: the same seed gives the same files
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Directory to write to
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Keep segment membership current from a stream of events: NDJSON events in, NDJSON
    /// enter/exit changes out
    Watch {
        file: PathBuf,
        #[command(flatten)]
        args: watch::WatchArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Run a node of an Apache Ballista cluster for `--engine ballista://HOST:PORT`
    #[cfg(feature = "ballista")]
    #[command(subcommand)]
    Cluster(cluster::Node),
}

/// Where and how SQL for another engine is written (`--emit sql`, `--emit-sql-dir`).
#[derive(clap::Args)]
struct SqlArgs {
    /// The SQL dialect of `--emit sql` and `--emit-sql-dir`
    #[arg(long, value_enum, default_value_t = SqlDialect::Postgres)]
    dialect: SqlDialect,
    /// For SQL: the schema (or BigQuery dataset) holding the tables
    #[arg(long, value_name = "NAME")]
    schema: Option<String>,
    /// For SQL: a prefix of every table name
    #[arg(long, value_name = "PREFIX")]
    table_prefix: Option<String>,
}

impl SqlArgs {
    fn naming(&self) -> TableNaming {
        TableNaming {
            schema: self.schema.clone(),
            prefix: self.table_prefix.clone(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Emit {
    /// The syntax tree of the file
    Ast,
    /// The checked, typed segment with its measures
    Ir,
    /// The DataFusion logical plan as built
    Plan,
    /// The logical plan after DataFusion's optimizer
    Optimized,
    /// DataFusion's physical plan (what runs, with partitions and pushed-down predicates)
    Physical,
    /// One SQL query for another engine (see `--dialect`), returning the members' keys
    Sql,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Csv,
    Ndjson,
    Table,
    Parquet,
}

impl Format {
    /// The format `--format` names, else the one `--out`'s extension implies (`.parquet`,
    /// `.ndjson`/`.jsonl`/`.json`), else CSV.
    fn chosen(format: Option<Format>, out: Option<&Path>) -> Format {
        let extension = out
            .and_then(|p| p.extension())
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        format.unwrap_or(match extension.as_deref() {
            Some("parquet") => Format::Parquet,
            Some("ndjson" | "jsonl" | "json") => Format::Ndjson,
            _ => Format::Csv,
        })
    }
}

/// `"2.5 GiB"` -> `("2.5", "GiB")`: the leading number and the unit after it.
fn amount_and_unit(text: &str) -> (&str, &str) {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    (number, unit.trim())
}

/// `512MB`, `2GiB`, `100000` (bytes): decimal (KB, MB, GB) and binary (KiB, MiB, GiB) units.
fn parse_size(text: &str) -> Result<usize, String> {
    let (number, unit) = amount_and_unit(text);
    let factor: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "`{text}` is not a size; write e.g. `512MB` or `2GiB`"
            ));
        }
    };
    match number.parse::<f64>() {
        Ok(n) if n > 0.0 => Ok((n * factor) as usize),
        _ => Err(format!(
            "`{text}` is not a size; write e.g. `512MB` or `2GiB`"
        )),
    }
}

/// `12h`, `7d`, `2w`: a span of time in nanoseconds.
fn parse_span(text: &str) -> Result<i64, String> {
    let (number, unit) = amount_and_unit(text);
    let hours: i64 = match unit {
        "h" => 1,
        "d" => 24,
        "w" => 24 * 7,
        _ => {
            return Err(format!(
                "`{text}` is not a span; write e.g. `12h`, `7d` or `2w`"
            ));
        }
    };
    match number.parse::<i64>() {
        Ok(n) if n > 0 && n <= 100_000 => Ok(n * hours * 3_600_000_000_000),
        _ => Err(format!(
            "`{text}` is not a span; write e.g. `12h`, `7d` or `2w`"
        )),
    }
}

/// `30s`, `5min`, `1h`, `250ms`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = amount_and_unit(text);
    let seconds: f64 = match unit {
        "ms" => 1e-3,
        "s" => 1.0,
        "min" | "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "`{text}` is not a duration; write e.g. `30s`, `5min` or `1h`"
            ));
        }
    };
    match number.parse::<f64>() {
        Ok(n) if n > 0.0 => Ok(std::time::Duration::from_secs_f64(n * seconds)),
        _ => Err(format!(
            "`{text}` is not a duration; write e.g. `30s`, `5min` or `1h`"
        )),
    }
}

fn parse_time(text: &str) -> Result<i64, String> {
    segql::syntax::parse_timestamp(text).ok_or_else(|| {
        format!("`{text}` is not a time; write `1998-07-01` or `1998-07-01T12:00:00Z`")
    })
}

/// Where diagnostics go and how they look.
struct Printer {
    format: DiagnosticsFormat,
    color: bool,
}

impl Printer {
    fn new(format: DiagnosticsFormat) -> Printer {
        let color = std::io::stderr().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Printer { format, color }
    }

    fn print(&self, diagnostics: &Diagnostics, sources: &SourceMap) {
        if diagnostics.is_empty() && self.format == DiagnosticsFormat::Human {
            return;
        }
        let text = match self.format {
            DiagnosticsFormat::Human => render::render_all(diagnostics.iter(), sources, self.color),
            DiagnosticsFormat::Json => render::to_json(diagnostics.iter(), sources) + "\n",
        };
        let _ = std::io::stderr().write_all(text.as_bytes());
    }

    fn report(&self, report: &Report) -> ExitCode {
        self.print(&report.diagnostics, &report.sources);
        ExitCode::from(1)
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check { files, common } => check(&files, &common).await,
        Command::Compile {
            file,
            segment,
            emit,
            with,
            sql,
            as_of,
            common,
        } => {
            let naming = sql.naming();
            compile(
                &file,
                (&segment, &with_columns(&with)),
                (emit, sql.dialect, &naming),
                as_of,
                &common,
            )
            .await
        }
        Command::Run {
            file,
            segment,
            as_of,
            with,
            format,
            out,
            explain_analyze,
            emit_sql_dir,
            sql,
            common,
        } => {
            if let Some(dir) = emit_sql_dir {
                return emit_sql_files(&file, &segment, as_of, (&dir, &sql), &with, &common).await;
            }
            let output = Output {
                with: &with,
                format,
                out: out.as_deref(),
                explain_analyze,
            };
            run_segments(&file, &segment, as_of, output, &common).await
        }
        Command::Count {
            file,
            segment,
            as_of,
            explain_analyze,
            common,
        } => count(&file, &segment, as_of, explain_analyze, &common).await,
        Command::Report {
            file,
            segment,
            out,
            by,
            every,
            points,
            as_of,
            common,
        } => {
            let options = ReportOptions {
                segments: segment,
                by,
                every,
                points: points as usize,
            };
            report(&file, options, &out, as_of, &common).await
        }
        Command::Traits {
            file,
            only,
            as_of,
            format,
            out,
            common,
        } => traits(&file, &only, as_of, (format, out.as_deref()), &common).await,
        Command::Why {
            file,
            segment,
            key,
            as_of,
            common,
        } => why(&file, &segment, &key, as_of, &common).await,
        Command::Discover(args) => learn::run_discover(args).await,
        Command::Train(args) => learn::run_train(args).await,
        Command::Score(args) => learn::run_score(args).await,
        Command::Repl { files, common } => repl(&files, &common).await,
        Command::Demo {
            customers,
            events_per_customer,
            seed,
            out,
        } => demo(customers, events_per_customer, seed, &out),
        #[cfg(feature = "ballista")]
        Command::Cluster(node) => cluster::run(node).await,
        Command::Watch { file, args, common } => {
            let printer = Printer::new(common.diagnostics);
            let session = match session_for(&file, &common, None, args.initial, &printer).await {
                Ok(session) => session,
                Err(code) => return code,
            };
            watch::watch(&session, args).await
        }
    }
}

/// Opens the catalog for `files` and adds the catalog's segment files and `files`.
async fn open_session(
    files: &[PathBuf],
    common: &Common,
    require_data: bool,
) -> Result<Session, Report> {
    for file in files {
        if !file.exists() {
            let diagnostic =
                Diagnostic::error("E0401", format!("`{}` does not exist", file.display()))
                    .with_help("check the path of the segment file");
            return Err(Report::new(diagnostic.into(), &SourceMap::new()));
        }
    }
    let catalog_path = match &common.catalog {
        Some(path) => path.clone(),
        None => {
            let start = files
                .first()
                .map(PathBuf::as_path)
                .unwrap_or(Path::new("."));
            Catalog::find(start).ok_or_else(|| {
                let diagnostic = Diagnostic::error(
                    "E0302",
                    format!("no `segql.toml` found in `{}` or its parent directories", start.display()),
                )
                .with_help("pass the catalog with `--catalog PATH`, or create `segql.toml` (see the README)");
                Report::new(diagnostic.into(), &SourceMap::new())
            })?
        }
    };
    let mut sources = SourceMap::new();
    let catalog =
        Catalog::load(&catalog_path, &mut sources).map_err(|d| Report::new(d, &sources))?;
    let mut seen = HashSet::new();
    let mut to_load = Vec::new();
    for file in catalog.segment_files.iter().chain(files) {
        let identity = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
        if seen.insert(identity) {
            to_load.push(file.clone());
        }
    }
    let ctx = engine::context(&common.engine, common.memory_limit)
        .await
        .map_err(|d| Report::new(d.into(), &sources))?;
    let mut session = Session::with_context(catalog, ctx, sources, require_data).await?;
    if let Some(dir) = verified_keys_dir() {
        session.remember_verified_keys(segql::verified::VerifiedKeys::new(dir));
    }
    // Parse and check all files together so every error of every file is reported.
    let mut texts = Vec::new();
    let mut diagnostics = Diagnostics::default();
    for path in &to_load {
        match segql::read_source(path) {
            Ok(text) => texts.push((path.display().to_string(), text)),
            Err(diagnostic) => diagnostics.push(diagnostic),
        }
    }
    if diagnostics.has_errors() {
        return Err(Report::new(diagnostics, session.sources()));
    }
    session.add_sources(&texts)?;
    Ok(session)
}

/// Where the profile tables whose keys passed the check are remembered:
/// `$SEGQL_CACHE_DIR/verified-keys`, or the user's cache directory; nowhere when
/// `SEGQL_CACHE_DIR` is set but empty.
fn verified_keys_dir() -> Option<PathBuf> {
    let cache = match std::env::var_os("SEGQL_CACHE_DIR") {
        Some(dir) if dir.is_empty() => return None,
        Some(dir) => PathBuf::from(dir),
        None => dirs::cache_dir()?.join("segql"),
    };
    Some(cache.join("verified-keys"))
}

/// Opens the session for `file`, prints its warnings and applies `--as-of`; on failure,
/// the diagnostics are printed and the exit code returned. With `require_data`, every
/// table must have data; commands that evaluate also run [`checked`].
async fn session_for(
    file: &Path,
    common: &Common,
    as_of: Option<i64>,
    require_data: bool,
    printer: &Printer,
) -> Result<Session, ExitCode> {
    let mut session = open_session(&[file.to_path_buf()], common, require_data)
        .await
        .map_err(|report| printer.report(&report))?;
    printer.print(session.warnings(), session.sources());
    if let Some(as_of) = as_of {
        session.set_as_of(as_of);
    }
    Ok(session)
}

/// Runs `evaluation` together with the profile-key check (`E0406`), which reads the
/// profile keys while the evaluation reads the events; a failed check wins. Both stop at
/// `--timeout`.
async fn checked<T>(
    session: &Session,
    common: &Common,
    evaluation: impl std::future::Future<Output = Result<T, Report>>,
) -> Result<T, Report> {
    let both = async {
        let (keys, result) = tokio::join!(session.check_profile_keys(), evaluation);
        keys?;
        result
    };
    session.with_timeout(common.timeout, both).await
}

async fn check(files: &[PathBuf], common: &Common) -> ExitCode {
    let printer = Printer::new(common.diagnostics);
    match open_session(files, common, false).await {
        Ok(session) => {
            printer.print(session.warnings(), session.sources());
            if common.diagnostics == DiagnosticsFormat::Human {
                let program = session.program();
                eprintln!(
                    "ok: {} segments, {} metrics and stages, {} measures",
                    program.segments.len(),
                    program.values.len(),
                    program.measures.len()
                );
            }
            ExitCode::SUCCESS
        }
        Err(report) => printer.report(&report),
    }
}

async fn compile(
    file: &Path,
    (segment, with): (&str, &[&str]),
    (emit, dialect, naming): (Emit, SqlDialect, &TableNaming),
    as_of: Option<i64>,
    common: &Common,
) -> ExitCode {
    let printer = Printer::new(common.diagnostics);
    let session = match session_for(file, common, as_of, false, &printer).await {
        Ok(session) => session,
        Err(code) => return code,
    };
    let text = match emit {
        Emit::Ast => {
            let identity = std::fs::canonicalize(file).ok();
            let declaration = session
                .files()
                .iter()
                .flat_map(|f| &f.declarations)
                .find(|d| d.name().name == segment);
            match (declaration, identity) {
                (Some(declaration), _) => format!("{declaration:#?}\n"),
                (None, _) => match session.segments(&[segment]) {
                    Ok(_) => String::new(),
                    Err(report) => return printer.report(&report),
                },
            }
        }
        Emit::Ir => match session.segments(&[segment]) {
            Ok(segments) => segql::check::display::segment_ir(segments[0], session.program()),
            Err(report) => return printer.report(&report),
        },
        Emit::Sql => match session.segment_sql(segment, with, dialect, naming) {
            Ok(sql) => sql + ";\n",
            Err(report) => return printer.report(&report),
        },
        Emit::Plan | Emit::Optimized | Emit::Physical => {
            let plan = match session.plan_segments(&[segment], with) {
                Ok(plan) => plan,
                Err(report) => return printer.report(&report),
            };
            let state = segql::exec::state_for(session.context(), &plan);
            let shown = match emit {
                Emit::Plan => Ok(format!("{}\n", plan.display_indent())),
                Emit::Optimized => state
                    .optimize(&plan)
                    .map(|p| format!("{}\n", p.display_indent())),
                _ => state.create_physical_plan(&plan).await.map(|p| {
                    format!(
                        "{}",
                        datafusion::physical_plan::displayable(p.as_ref()).indent(true)
                    )
                }),
            };
            match shown {
                Ok(text) => text,
                Err(error) => {
                    let diagnostic = segql::internal_error(&error.to_string());
                    return printer.report(&Report::new(diagnostic.into(), session.sources()));
                }
            }
        }
    };
    print_stdout(&text)
}

fn print_stdout(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is not an error worth a message.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: cannot write to standard output: {error}");
            ExitCode::from(1)
        }
    }
}

/// The segments to evaluate: those named, else every segment defined in `file` itself.
fn segment_names(session: &Session, file: &Path, named: &[String]) -> Vec<String> {
    if !named.is_empty() {
        return named.to_vec();
    }
    let wanted = std::fs::canonicalize(file).ok();
    session
        .files_with_paths()
        .filter(|(path, _)| std::fs::canonicalize(path).ok() == wanted)
        .flat_map(|(_, parsed)| &parsed.declarations)
        .filter(|d| d.kind() == "segment")
        .map(|d| d.name().name.clone())
        .collect()
}

/// What `segql run` writes, and where.
struct Output<'a> {
    with: &'a [String],
    format: Format,
    out: Option<&'a Path>,
    explain_analyze: bool,
}

/// The `--with` columns named (`--with a,,b` names two).
fn with_columns(with: &[String]) -> Vec<&str> {
    with.iter()
        .map(String::as_str)
        .filter(|w| !w.is_empty())
        .collect()
}

/// `segql run --emit-sql-dir DIR`: each segment as SQL in DIR/NAME.sql, written whole or
/// not at all (a temporary file renamed into place).
async fn emit_sql_files(
    file: &Path,
    named: &[String],
    as_of: Option<i64>,
    (dir, sql): (&Path, &SqlArgs),
    with: &[String],
    common: &Common,
) -> ExitCode {
    let printer = Printer::new(common.diagnostics);
    let session = match session_for(file, common, as_of, false, &printer).await {
        Ok(session) => session,
        Err(code) => return code,
    };
    if let Err(error) = std::fs::create_dir_all(dir) {
        eprintln!("error: cannot create `{}`: {error}", dir.display());
        return ExitCode::FAILURE;
    }
    let with = with_columns(with);
    let naming = sql.naming();
    let names = segment_names(&session, file, named);
    for name in &names {
        let text = match session.segment_sql(name, &with, sql.dialect, &naming) {
            Ok(text) => text + ";\n",
            Err(report) => return printer.report(&report),
        };
        let path = dir.join(format!("{name}.sql"));
        let written =
            segql::exec::replace_file(&path, |mut file| file.write_all(text.as_bytes()), |e| e);
        if let Err(error) = written {
            eprintln!("error: cannot write `{}`: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    eprintln!(
        "wrote {} {} SQL file{} to {}",
        names.len(),
        sql.dialect,
        if names.len() == 1 { "" } else { "s" },
        dir.display()
    );
    ExitCode::SUCCESS
}

async fn run_segments(
    file: &Path,
    named: &[String],
    as_of: Option<i64>,
    output: Output<'_>,
    common: &Common,
) -> ExitCode {
    let printer = Printer::new(common.diagnostics);
    if output.format == Format::Parquet && output.out.is_none() && !output.explain_analyze {
        eprintln!("error: `--format parquet` needs `--out PATH`");
        return ExitCode::from(2);
    }
    let session = match session_for(file, common, as_of, true, &printer).await {
        Ok(session) => session,
        Err(code) => return code,
    };
    let names = segment_names(&session, file, named);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let with = with_columns(output.with);
    let plan = match session.plan_segments(&names, &with) {
        Ok(plan) => plan,
        Err(report) => return printer.report(&report),
    };
    if output.explain_analyze {
        return explain_analyze(&session, plan, common, &printer).await;
    }
    let progress = Progress::start(evaluating(names.len()));
    execute_and_write(
        &session,
        plan,
        (output.format, output.out),
        common,
        &printer,
        progress,
    )
    .await
}

/// `segql traits`: every profile's metrics and stages (or the `only` ones).
async fn traits(
    file: &Path,
    only: &[String],
    as_of: Option<i64>,
    (format, out): (Format, Option<&Path>),
    common: &Common,
) -> ExitCode {
    let printer = Printer::new(common.diagnostics);
    if format == Format::Parquet && out.is_none() {
        eprintln!("error: `--format parquet` needs `--out PATH`");
        return ExitCode::from(2);
    }
    let session = match session_for(file, common, as_of, true, &printer).await {
        Ok(session) => session,
        Err(code) => return code,
    };
    let names = with_columns(only);
    if names.is_empty() && session.program().values.is_empty() {
        eprintln!(
            "error: `{}` defines no metric or stage; define one with `metric NAME = ...` or \
             `stage NAME {{ ... }}`",
            file.display()
        );
        return ExitCode::from(1);
    }
    let plan = match session.plan_values(&names) {
        Ok(plan) => plan,
        Err(report) => return printer.report(&report),
    };
    let progress = Progress::start("computing traits");
    execute_and_write(&session, plan, (format, out), common, &printer, progress).await
}

/// Runs `plan` (with the profile-key check) and writes its rows as `format` to `out` or
/// standard output.
async fn execute_and_write(
    session: &Session,
    plan: LogicalPlan,
    (format, out): (Format, Option<&Path>),
    common: &Common,
    printer: &Printer,
    progress: Progress,
) -> ExitCode {
    let schema = plan.schema().as_arrow().clone();
    let executed = checked(session, common, session.execute(plan)).await;
    progress.finish();
    let batches = match executed {
        Ok(batches) => batches,
        Err(report) => return printer.report(&report),
    };
    let format = match format {
        Format::Csv => OutputFormat::Csv,
        Format::Ndjson => OutputFormat::Ndjson,
        Format::Table => OutputFormat::Table,
        Format::Parquet => OutputFormat::Parquet,
    };
    let written = match out {
        Some(path) => segql::exec::write_file(&batches, &schema, format, path),
        None => segql::exec::write(
            &batches,
            &schema,
            format,
            std::io::BufWriter::new(std::io::stdout()),
        ),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(diagnostic) if diagnostic.message.contains("Broken pipe") => ExitCode::SUCCESS,
        Err(diagnostic) => printer.report(&Report::new(diagnostic.into(), session.sources())),
    }
}

/// The progress message while segments are evaluated.
fn evaluating(segments: usize) -> String {
    match segments {
        1 => "evaluating 1 segment".to_string(),
        n => format!("evaluating {n} segments"),
    }
}

/// `--explain-analyze`: runs the plan and prints the physical plan with its metrics.
async fn explain_analyze(
    session: &Session,
    plan: LogicalPlan,
    common: &Common,
    printer: &Printer,
) -> ExitCode {
    let progress = Progress::start("evaluating, with metrics");
    let explained = checked(session, common, session.explain_analyze(plan)).await;
    progress.finish();
    match explained {
        Ok(text) => print_stdout(&text),
        Err(report) => printer.report(&report),
    }
}

async fn report(
    file: &Path,
    mut options: ReportOptions,
    out: &Path,
    as_of: Option<i64>,
    common: &Common,
) -> ExitCode {
    let printer = Printer::new(common.diagnostics);
    let mut session = match session_for(file, common, as_of, true, &printer).await {
        Ok(session) => session,
        Err(code) => return code,
    };
    options.segments = segment_names(&session, file, &options.segments);
    if let Err(report) = session.check_profile_keys().await {
        return printer.report(&report);
    }
    let started = std::time::Instant::now();
    let progress = Progress::start(format!(
        "reporting on {} segments ({} points of history)",
        options.segments.len(),
        options.points
    ));
    let title = file.display().to_string();
    let collected = SegmentReport::collect(&mut session, &title, &options).await;
    progress.finish();
    let collected = match collected {
        Ok(collected) => collected,
        Err(report) => return printer.report(&report),
    };
    let page = collected.to_html();
    let written = segql::exec::replace_file(
        out,
        |mut file| std::io::Write::write_all(&mut file, page.as_bytes()),
        |e| e,
    );
    if let Err(error) = written {
        eprintln!(
            "error: cannot write the report to `{}`: {error}",
            out.display()
        );
        return ExitCode::from(1);
    }
    eprintln!(
        "segql report: {} segments, {} points of history, written to `{}` in {:.1} s",
        collected.segments.len(),
        collected.history.len(),
        out.display(),
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

async fn count(
    file: &Path,
    named: &[String],
    as_of: Option<i64>,
    explain: bool,
    common: &Common,
) -> ExitCode {
    let printer = Printer::new(common.diagnostics);
    let session = match session_for(file, common, as_of, true, &printer).await {
        Ok(session) => session,
        Err(code) => return code,
    };
    let names = segment_names(&session, file, named);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    if explain {
        return match session.plan_counts(&names) {
            Ok(plan) => explain_analyze(&session, plan, common, &printer).await,
            Err(report) => printer.report(&report),
        };
    }
    let started = std::time::Instant::now();
    let progress = Progress::start(evaluating(names.len()));
    let counted = checked(&session, common, session.counts(&names)).await;
    progress.finish();
    let counts = match counted {
        Ok(counts) => counts,
        Err(report) => return printer.report(&report),
    };
    let elapsed = started.elapsed();
    let width = counts
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut text = format!("{:<width$}  {:>10}\n", "segment", "members");
    for (name, members) in &counts {
        text.push_str(&format!("{name:<width$}  {members:>10}\n"));
    }
    eprintln!(
        "{} segments counted in {:.3} s",
        counts.len(),
        elapsed.as_secs_f64()
    );
    print_stdout(&text)
}

async fn why(
    file: &Path,
    segment: &str,
    key: &str,
    as_of: Option<i64>,
    common: &Common,
) -> ExitCode {
    let printer = Printer::new(common.diagnostics);
    let session = match session_for(file, common, as_of, true, &printer).await {
        Ok(session) => session,
        Err(code) => return code,
    };
    match checked(
        &session,
        common,
        segql::explain::why(&session, segment, key),
    )
    .await
    {
        Ok(text) => print_stdout(&text),
        Err(report) => printer.report(&report),
    }
}

async fn repl(files: &[PathBuf], common: &Common) -> ExitCode {
    let printer = Printer::new(common.diagnostics);
    let catalog_start: Vec<PathBuf> = files.to_vec();
    let session = match open_session(&catalog_start, common, true).await {
        Ok(session) => session,
        Err(report) => return printer.report(&report),
    };
    if let Err(report) = session.check_profile_keys().await {
        return printer.report(&report);
    }
    segql::repl::run(session).await
}

fn demo(customers: usize, events_per_customer: usize, seed: u64, out: &Path) -> ExitCode {
    let options = segql::demo::DemoOptions {
        customers,
        seed,
        events_per_customer,
    };
    if let Err(error) = std::fs::create_dir_all(out) {
        eprintln!("error: cannot create `{}`: {error}", out.display());
        return ExitCode::from(1);
    }
    // Segments first, so the generated catalog lists them.
    let segments = out.join("segments.seg");
    if !segments.exists()
        && let Err(error) = std::fs::write(&segments, DEMO_SEGMENTS)
    {
        eprintln!("error: cannot write `{}`: {error}", segments.display());
        return ExitCode::from(1);
    }
    let started = std::time::Instant::now();
    match segql::demo::generate(&options, out) {
        Ok(summary) => {
            for (table, rows) in &summary.tables {
                eprintln!("{table:>14}: {rows} rows");
            }
            eprintln!(
                "wrote {} in {:.1} s",
                out.display(),
                started.elapsed().as_secs_f64()
            );
            eprintln!("try: segql count {}", segments.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}
