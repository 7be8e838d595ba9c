//! `segql discover`, `segql train` and `segql score`: segments found by clustering, and
//! propensity scores trained with time travel (`segql::learn`, docs/learn.md).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use segql::learn::discover::{ClusterCount, Discovery, discover};
use segql::learn::predict::{MODEL_FORMAT, Model, Training, train};
use segql::learn::{feature_table, learn_error};
use segql::{Report, Session};

use super::{Common, Format, Printer, execute_and_write, parse_time, print_stdout, session_for};
use crate::cli::progress::Progress;

#[derive(clap::Args)]
pub struct DiscoverArgs {
    file: PathBuf,
    /// The features to cluster on: numeric metrics and profile columns (comma-separated)
    #[arg(long, value_name = "NAME,...", value_delimiter = ',', required = true)]
    features: Vec<String>,
    /// How many clusters: a number, or `auto` for the best silhouette among 2 to 8
    #[arg(long, value_name = "N|auto", default_value = "auto", value_parser = parse_k)]
    k: ClusterCount,
    /// Cluster only the members of this segment; the definitions then start with `in NAME`
    #[arg(long, value_name = "NAME")]
    segment: Option<String>,
    /// Also write each profile's key and cluster number as CSV to this file
    #[arg(long, value_name = "PATH")]
    assignments: Option<PathBuf>,
    /// Evaluation time (default: the catalog's `as_of`, else now)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    as_of: Option<i64>,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args)]
pub struct TrainArgs {
    file: PathBuf,
    /// The condition to predict, as SegQL, evaluated at the end of the horizon (e.g.
    /// "not purchased within 90d")
    #[arg(long, value_name = "CONDITION")]
    label: String,
    /// How far ahead to predict: features are cut off this long before the label is
    /// observed (e.g. 90d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    horizon: i64,
    /// The model's inputs: numeric metrics and profile columns (comma-separated)
    #[arg(long, value_name = "NAME,...", value_delimiter = ',', required = true)]
    features: Vec<String>,
    /// Train and measure only on the members of this segment
    #[arg(long, value_name = "NAME")]
    segment: Option<String>,
    /// Where to save the model (JSON)
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
    /// Also write the model as a SegQL metric of this name, usable in segments
    /// (`segment at_risk = NAME > 0.7`), to `--metric-out`
    #[arg(long, value_name = "NAME")]
    metric: Option<String>,
    /// Where to write the metric (default: NAME.seg next to the model)
    #[arg(long, value_name = "PATH", requires = "metric")]
    metric_out: Option<PathBuf>,
    /// The time the labels are observed at (default: the catalog's `as_of`, else now)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    as_of: Option<i64>,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args)]
pub struct ScoreArgs {
    file: PathBuf,
    /// A model `segql train` saved
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// The score column's name
    #[arg(long, value_name = "NAME", default_value = "score")]
    name: String,
    /// Output format (default: from the `--out` extension, else csv)
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Write to this file instead of standard output (required for parquet)
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Evaluation time (default: the catalog's `as_of`, else now)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    as_of: Option<i64>,
    #[command(flatten)]
    common: Common,
}

fn parse_k(text: &str) -> Result<ClusterCount, String> {
    if text == "auto" {
        return Ok(ClusterCount::Auto);
    }
    match text.parse::<usize>() {
        Ok(k) if (2..=50).contains(&k) => Ok(ClusterCount::Fixed(k)),
        _ => Err(format!(
            "`{text}` is not a number of clusters: write 2 to 50, or `auto`"
        )),
    }
}

/// A SegQL duration (`90d`, `12w`, `6mo`) in nanoseconds.
fn parse_duration(text: &str) -> Result<i64, String> {
    let error = || format!("`{text}` is not a duration: write e.g. `30d`, `12w` or `6mo`");
    let parsed = segql::syntax::parse_expression(text, 0).map_err(|_| error())?;
    match parsed.kind {
        segql::syntax::ast::ExprKind::Literal(segql::syntax::ast::Literal::Duration(d)) => {
            d.nanoseconds().filter(|n| *n > 0).ok_or_else(error)
        }
        _ => Err(error()),
    }
}

pub async fn run_discover(args: DiscoverArgs) -> ExitCode {
    let printer = Printer::new(args.common.diagnostics);
    let mut session = match session_for(&args.file, &args.common, args.as_of, true, &printer).await
    {
        Ok(session) => session,
        Err(code) => return code,
    };
    let progress = Progress::start("computing features and clusters");
    let as_of = session.as_of();
    let sources = session.sources().clone();
    let table = match session.check_profile_keys().await {
        Ok(()) => {
            let features =
                feature_table(&mut session, &args.features, as_of, args.segment.as_deref());
            segql::timed(args.common.timeout, &sources, features).await
        }
        Err(report) => Err(report),
    };
    progress.finish();
    let table = match table {
        Ok(table) => table,
        Err(report) => return printer.report(&report),
    };
    let discovery = match discover(&table, args.k) {
        Ok(discovery) => discovery,
        Err(diagnostic) => {
            return printer.report(&Report::new(diagnostic.into(), session.sources()));
        }
    };
    let text = match describe(&mut session, &discovery, args.segment.as_deref()) {
        Ok(text) => text,
        Err(report) => return printer.report(&report),
    };
    if let Some(path) = &args.assignments {
        let mut csv = format!("{},cluster\n", session.schema().profiles.key);
        for (key, cluster) in &discovery.assignments {
            let _ = writeln!(csv, "{key},{}", cluster + 1);
        }
        if let Err(e) = std::fs::write(path, csv) {
            eprintln!("error: cannot write `{}`: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    print_stdout(&text)
}

/// The clusters as a SegQL file: a comment per cluster and its segment, each checked.
fn describe(
    session: &mut Session,
    discovery: &Discovery,
    base: Option<&str>,
) -> Result<String, Report> {
    let clustered: usize = discovery.clusters.iter().map(|c| c.size).sum();
    let mut text = format!(
        "# segql discover: {} clusters of {clustered} profiles by {}",
        discovery.clusters.len(),
        discovery.features.join(", ")
    );
    if discovery.left_out > 0 {
        let _ = write!(
            text,
            " ({} left out: a feature is null)",
            discovery.left_out
        );
    }
    let _ = writeln!(
        text,
        "\n# silhouette {:.2}{}\n",
        discovery.silhouette,
        if discovery.chosen {
            ", the best of k = 2 to 8"
        } else {
            ""
        }
    );
    for (i, cluster) in discovery.clusters.iter().enumerate() {
        let name = format!("cluster_{}", i + 1);
        let segment = discovery.segment(i, &name, base);
        // The definition must be valid SegQL in this file's context.
        let condition = segment.split_once(" = ").map_or("", |(_, c)| c);
        session.check_condition(&name, condition)?;
        let distinguishing: Vec<String> = cluster
            .distinguishing
            .iter()
            .take(3)
            .map(|(feature, sd)| format!("{feature} {sd:+.1} sd"))
            .collect();
        let _ = writeln!(
            text,
            "# Cluster {}: {} profiles ({:.1}%); distinguished by {}\n\
             # this definition selects {}: precision {:.2}, recall {:.2}\n{segment}\n",
            i + 1,
            cluster.size,
            100.0 * cluster.size as f64 / clustered.max(1) as f64,
            distinguishing.join(", "),
            cluster.selected,
            cluster.precision,
            cluster.recall,
        );
    }
    Ok(text)
}

pub async fn run_train(args: TrainArgs) -> ExitCode {
    let printer = Printer::new(args.common.diagnostics);
    let mut session = match session_for(&args.file, &args.common, args.as_of, true, &printer).await
    {
        Ok(session) => session,
        Err(code) => return code,
    };
    if let Err(report) = session.check_profile_keys().await {
        return printer.report(&report);
    }
    let training = Training {
        label: &args.label,
        horizon: args.horizon,
        features: &args.features,
        base: args.segment.as_deref(),
    };
    let progress = Progress::start("computing features at two cut-offs and training");
    let sources = session.sources().clone();
    let model = segql::timed(
        args.common.timeout,
        &sources,
        train(&mut session, &training),
    )
    .await;
    progress.finish();
    let model = match model {
        Ok(model) => model,
        Err(report) => return printer.report(&report),
    };
    let json = serde_json::to_string_pretty(&model).unwrap_or_default();
    if let Err(e) = std::fs::write(&args.out, json + "\n") {
        eprintln!(
            "error: cannot write the model to `{}`: {e}",
            args.out.display()
        );
        return ExitCode::from(1);
    }
    let mut text = report_text(&model);
    let _ = writeln!(text, "model written to {}", args.out.display());
    if let Some(name) = &args.metric {
        let path = args.metric_out.clone().unwrap_or_else(|| {
            args.out
                .parent()
                .unwrap_or(Path::new("."))
                .join(format!("{name}.seg"))
        });
        // The metric must check in this file's context before it is offered.
        if let Err(report) = session.add_source(&format!("{name}.seg"), &model.metric(name)) {
            return printer.report(&report);
        }
        if let Err(e) = std::fs::write(&path, model.metric(name)) {
            eprintln!(
                "error: cannot write the metric to `{}`: {e}",
                path.display()
            );
            return ExitCode::from(1);
        }
        let _ = writeln!(
            text,
            "metric `{name}` written to {}: add it to the catalog's `segments` to use it",
            path.display()
        );
    }
    print_stdout(&text)
}

/// What `segql train` prints: the split, the holdout AUC and the calibration.
fn report_text(model: &Model) -> String {
    let e = &model.evaluation;
    let mut text = format!(
        "label: {}\n\
         training: features at {}, labels at {}: {} profiles, {} positive\n\
         holdout:  features at {}, labels at {}: {} profiles, {} positive\n\
         holdout AUC {:.3} (a constant prediction: {:.3})\n\
         calibration (holdout, ten bins by prediction): predicted -> observed\n",
        model.label,
        e.training_features_at,
        e.training_labels_at,
        e.training_rows,
        e.training_positives,
        e.holdout_features_at,
        e.holdout_labels_at,
        e.holdout_rows,
        e.holdout_positives,
        e.auc,
        e.baseline_auc,
    );
    for bin in &e.calibration {
        let _ = writeln!(
            text,
            "  {:.3} -> {:.3}  ({} profiles)",
            bin.predicted, bin.observed, bin.rows
        );
    }
    for feature in &e.unversioned_features {
        let _ = writeln!(
            text,
            "warning: `{feature}` is a profile column; profiles are not versioned, so the model \
             saw today's value at every cut-off (use event-based metrics to avoid leakage)"
        );
    }
    text
}

pub async fn run_score(args: ScoreArgs) -> ExitCode {
    let printer = Printer::new(args.common.diagnostics);
    let format = Format::chosen(args.format, args.out.as_deref());
    if format == Format::Parquet && args.out.is_none() {
        eprintln!("error: `--format parquet` needs `--out PATH`");
        return ExitCode::from(2);
    }
    let mut session = match session_for(&args.file, &args.common, args.as_of, true, &printer).await
    {
        Ok(session) => session,
        Err(code) => return code,
    };
    let model = match read_model(&args.model) {
        Ok(model) => model,
        Err(diagnostic) => {
            return printer.report(&Report::new(diagnostic.into(), session.sources()));
        }
    };
    let expression = match session.check_value(&args.name, &model.expression()) {
        Ok(expression) => expression,
        Err(report) => return printer.report(&report),
    };
    let plan = match session.plan_expression_values(&expression, &args.name) {
        Ok(plan) => plan,
        Err(report) => return printer.report(&report),
    };
    let progress = Progress::start("scoring");
    execute_and_write(
        &session,
        plan,
        (format, args.out.as_deref()),
        &args.common,
        &printer,
        progress,
    )
    .await
}

fn read_model(path: &Path) -> Result<Model, segql::diagnostic::Diagnostic> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        learn_error(
            format!("cannot read the model `{}`: {e}", path.display()),
            "pass a file `segql train --out` wrote",
        )
    })?;
    let model: Model = serde_json::from_str(&text).map_err(|e| {
        learn_error(
            format!("`{}` is not a SegQL model: {e}", path.display()),
            "pass a file `segql train --out` wrote",
        )
    })?;
    let consistent = model.format == MODEL_FORMAT
        && [
            model.means.len(),
            model.deviations.len(),
            model.weights.len(),
        ]
        .iter()
        .all(|n| *n == model.features.len());
    if !consistent {
        return Err(learn_error(
            format!(
                "`{}` is a model of another format or is damaged",
                path.display()
            ),
            "train it again with this version of segql",
        ));
    }
    Ok(model)
}
