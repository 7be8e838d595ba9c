//! SegQL: a customer-segmentation language compiled to DataFusion plans.
//!
//! The pipeline is `syntax` (text -> AST) -> `check` (AST + catalog -> typed IR) ->
//! `plan` (IR -> DataFusion `LogicalPlan`) -> `exec` (plan -> record batches / files).
//! A [`Session`] ties them together for embedders:
//!
//! ```
//! use segql::{Session, catalog::{Catalog, TableConfig}, check::ir::Type};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), segql::Report> {
//! // A catalog built in code, with declared columns and no data: enough to check and plan.
//! let catalog = Catalog::new(
//!     TableConfig::new("customers", None, "customer_id")
//!         .with_column("customer_id", Type::Int)
//!         .with_column("country", Type::String),
//! )
//! .with_event(
//!     TableConfig::new("purchased", None, "customer_id")
//!         .with_time("ts")
//!         .with_column("customer_id", Type::Int)
//!         .with_column("ts", Type::Timestamp)
//!         .with_column("amount", Type::Float),
//! );
//! let mut session = Session::without_data(catalog).await?;
//! session.add_source("example.seg", "segment big = sum(purchased.amount) > 100 within 30d")?;
//! let plan = session.plan_segments(&["big"], &[])?;
//! assert!(plan.display_indent().to_string().contains("purchased"));
//!
//! // A typo is a diagnostic, not a panic.
//! let report = session.add_source("typo.seg", "segment x = contry = \"DE\"").unwrap_err();
//! assert!(report.to_string().contains("did you mean `country`?"));
//! # Ok(())
//! # }
//! ```

/// The README's Rust examples, compiled by `cargo test`.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

// The code pest_derive generates without pest's `std` feature names `::alloc`.
extern crate alloc;

pub mod catalog;
pub mod check;
pub mod demo;
pub mod diagnostic;
pub mod engine;
pub mod exec;
pub mod explain;
pub mod learn;
pub mod live;
pub mod plan;
pub mod render;
#[cfg(feature = "cli")]
pub mod repl;
pub mod segment_report;
pub mod sql;
pub mod syntax;
pub mod verified;

use std::path::Path;

use datafusion::arrow::array::Array;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;

use catalog::{Catalog, CatalogSchema};
use check::ir::{CheckedSegment, Program, TypedExpr, ValueKind};
use diagnostic::{Diagnostic, Diagnostics, SourceMap};
use plan::{OutputColumn, Planner, Tables};
use syntax::ast;

/// Diagnostics together with the texts they point into: the error type of the library.
#[derive(Debug, Clone)]
pub struct Report {
    pub diagnostics: Diagnostics,
    pub sources: SourceMap,
}

impl Report {
    pub fn new(diagnostics: Diagnostics, sources: &SourceMap) -> Report {
        Report {
            diagnostics,
            sources: sources.clone(),
        }
    }

    /// Renders every diagnostic, in colour or not.
    pub fn render(&self, color: bool) -> String {
        render::render_all(self.diagnostics.iter(), &self.sources, color)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.render(false))
    }
}

impl std::error::Error for Report {}

/// Runs `evaluation`, stopped with E0407 after `timeout`. For evaluations that hold the
/// session mutably; [`Session::with_timeout`] is the same for the others.
pub async fn timed<T>(
    timeout: Option<std::time::Duration>,
    sources: &SourceMap,
    evaluation: impl std::future::Future<Output = Result<T, Report>>,
) -> Result<T, Report> {
    let Some(timeout) = timeout else {
        return evaluation.await;
    };
    match tokio::time::timeout(timeout, evaluation).await {
        Ok(result) => result,
        Err(_) => {
            let diagnostic = Diagnostic::error(
                "E0407",
                format!(
                    "the evaluation took longer than the timeout of {timeout:?} and was stopped"
                ),
            )
            .with_help(
                "raise `--timeout`, evaluate fewer segments at once, or narrow their windows",
            );
            Err(Report::new(diagnostic.into(), sources))
        }
    }
}

/// A catalog with its tables registered, the segment files added so far, and their
/// checked program. The embedding API.
pub struct Session {
    ctx: SessionContext,
    catalog: Catalog,
    schema: CatalogSchema,
    tables: Tables,
    sources: SourceMap,
    /// Added files' names and texts, and, at the same index, their syntax trees.
    added: Vec<(String, String)>,
    files: Vec<ast::File>,
    program: Program,
    warnings: Diagnostics,
    as_of: i64,
    /// The context runs SegQL's own aggregate functions (see [`register_functions`]).
    own_aggregates: bool,
    /// Where profile tables whose keys passed the check are remembered, if anywhere.
    verified_keys: Option<verified::VerifiedKeys>,
}

impl Session {
    /// Opens the catalog at `path` and registers its data in a new DataFusion context.
    pub async fn open(path: &Path) -> Result<Session, Report> {
        let mut sources = SourceMap::new();
        let catalog = Catalog::load(path, &mut sources).map_err(|d| Report::new(d, &sources))?;
        Session::with_context(catalog, new_context(), sources, true).await
    }

    /// A session over `catalog`'s data in a new DataFusion context.
    pub async fn new(catalog: Catalog) -> Result<Session, Report> {
        Session::with_context(catalog, new_context(), SourceMap::new(), true).await
    }

    /// A session that only checks and plans: tables without data need declared columns.
    pub async fn without_data(catalog: Catalog) -> Result<Session, Report> {
        Session::with_context(catalog, new_context(), SourceMap::new(), false).await
    }

    /// A session registering the catalog's tables in the caller's context. Plans use
    /// SegQL's own aggregate functions when `ctx` has them ([`register_functions`]), and
    /// only DataFusion's built-ins otherwise (as a Ballista cluster needs).
    ///
    /// `sources` holds texts diagnostics may already point into (the catalog file).
    /// With `require_data`, every table must have readable data.
    pub async fn with_context(
        catalog: Catalog,
        ctx: SessionContext,
        sources: SourceMap,
        require_data: bool,
    ) -> Result<Session, Report> {
        let schema = catalog
            .register(&ctx, require_data)
            .await
            .map_err(|d| Report::new(d, &sources))?;
        let all_registered = std::iter::once(&catalog.profiles)
            .chain(&catalog.events)
            .all(|t| t.source.as_ref().is_some_and(|p| p.exists()));
        let tables = if all_registered {
            Tables::from_context(&ctx, &schema)
                .await
                .map_err(|e| Report::new(internal_error(&e.to_string()).into(), &sources))?
        } else {
            Tables::from_schema(&schema)
        };
        let as_of = catalog.as_of.unwrap_or_else(now_nanos);
        let own_aggregates = plan::has_own_functions(&ctx);
        Ok(Session {
            ctx,
            catalog,
            schema,
            tables,
            sources,
            added: Vec::new(),
            files: Vec::new(),
            program: Program::default(),
            warnings: Diagnostics::default(),
            as_of,
            own_aggregates,
            verified_keys: None,
        })
    }

    /// Remembers in `keys` the profile tables whose keys pass the check (`E0406`), and
    /// skips the check for a table remembered there that has not changed since (see
    /// [`verified`]).
    pub fn remember_verified_keys(&mut self, keys: verified::VerifiedKeys) {
        self.verified_keys = Some(keys);
    }

    /// Sets the evaluation time (nanoseconds since the epoch, UTC).
    pub fn set_as_of(&mut self, as_of: i64) {
        self.as_of = as_of;
    }

    pub fn as_of(&self) -> i64 {
        self.as_of
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn schema(&self) -> &CatalogSchema {
        &self.schema
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    pub fn sources(&self) -> &SourceMap {
        &self.sources
    }

    /// The tables plans read.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    pub fn program(&self) -> &Program {
        &self.program
    }

    pub fn files(&self) -> &[ast::File] {
        &self.files
    }

    /// Warnings of the last successful compilation.
    pub fn warnings(&self) -> &Diagnostics {
        &self.warnings
    }

    /// Reads a `.seg` file and adds it (see [`Session::add_source`]).
    pub fn add_file(&mut self, path: &Path) -> Result<&Diagnostics, Report> {
        let text = read_source(path).map_err(|d| Report::new(d.into(), &self.sources))?;
        self.add_source(&path.display().to_string(), &text)
    }

    /// Parses `text`, then checks it together with everything added before. On errors
    /// nothing is added. Returns the warnings.
    pub fn add_source(&mut self, name: &str, text: &str) -> Result<&Diagnostics, Report> {
        self.add_sources(&[(name.to_string(), text.to_string())])
    }

    /// Adds several `(name, text)` files at once, reporting the errors of all of them.
    pub fn add_sources(&mut self, texts: &[(String, String)]) -> Result<&Diagnostics, Report> {
        let mut files = self.files.clone();
        let mut diagnostics = Diagnostics::default();
        for (name, text) in texts {
            let file = self.sources.add(name.as_str(), text.as_str());
            let (parsed, parse_diagnostics) = syntax::parse_file(text, file);
            diagnostics.extend(parse_diagnostics);
            files.push(parsed);
        }
        let (program, check_diagnostics) = check::check(&files, &self.schema);
        diagnostics.extend(check_diagnostics);
        // In reading order, whichever stage found them.
        diagnostics
            .0
            .sort_by_key(|d| d.primary.as_ref().map(|l| (l.span.file, l.span.start)));
        if diagnostics.has_errors() {
            return Err(Report::new(diagnostics, &self.sources));
        }
        self.added.extend(texts.iter().cloned());
        self.files = files;
        self.program = program;
        self.warnings = diagnostics;
        Ok(&self.warnings)
    }

    /// The files added so far, by name.
    pub fn files_with_paths(&self) -> impl Iterator<Item = (&str, &ast::File)> {
        self.added
            .iter()
            .zip(&self.files)
            .map(|((name, _), file)| (name.as_str(), file))
    }

    /// The added files' names and texts, in the order added.
    pub fn source_texts(&self) -> impl Iterator<Item = (&str, &str)> {
        self.added
            .iter()
            .map(|(name, text)| (name.as_str(), text.as_str()))
    }

    /// Checks an ad-hoc condition using the session's definitions.
    pub fn check_condition(&mut self, name: &str, text: &str) -> Result<TypedExpr, Report> {
        self.check_text(name, text, true)
    }

    /// Checks an ad-hoc expression of any type (a value per profile).
    pub fn check_value(&mut self, name: &str, text: &str) -> Result<TypedExpr, Report> {
        self.check_text(name, text, false)
    }

    fn check_text(
        &mut self,
        name: &str,
        text: &str,
        require_bool: bool,
    ) -> Result<TypedExpr, Report> {
        let file = self.sources.add(name, text);
        let parsed =
            syntax::parse_expression(text, file).map_err(|d| Report::new(d, &self.sources))?;
        check::check_expression(
            &parsed,
            &self.files,
            &self.schema,
            &mut self.program,
            require_bool,
        )
        .map_err(|d| Report::new(d, &self.sources))
    }

    /// Forgets every added file and definition (the catalog stays).
    pub fn clear_sources(&mut self) {
        self.added.clear();
        self.files.clear();
        self.program = Program::default();
        self.warnings = Diagnostics::default();
    }

    /// The plan counting the profiles matching an ad-hoc condition (one row, one column).
    pub fn plan_condition_count(&self, condition: &TypedExpr) -> Result<LogicalPlan, Report> {
        let segment = CheckedSegment {
            name: "members".to_string(),
            description: None,
            condition: condition.clone(),
            span: condition.span,
        };
        self.planner()
            .counts(&[&segment])
            .map_err(|e| Report::new(internal_error(&e.to_string()).into(), &self.sources))
    }

    /// The plan of every profile's key and the value of an ad-hoc expression, sorted by key.
    pub fn plan_expression_values(
        &self,
        expr: &TypedExpr,
        name: &str,
    ) -> Result<LogicalPlan, Report> {
        let column = OutputColumn {
            name: name.to_string(),
            expr: expr.clone(),
        };
        self.planner()
            .values(&[column])
            .map_err(|e| Report::new(internal_error(&e.to_string()).into(), &self.sources))
    }

    /// A planner for this session's program, using SegQL's own aggregates where the
    /// context has them (see [`register_functions`]).
    pub(crate) fn planner(&self) -> Planner<'_> {
        Planner::new(&self.program, &self.schema, &self.tables, self.as_of)
            .with_own_aggregates(self.own_aggregates)
    }

    /// The planner of members and counts: it also knows the range of the profile keys, if
    /// they are one ([`Session::contiguous_profile_keys`]). Only these plans use the range
    /// (the members of one segment or condition, and the gather of many segments' members
    /// or counts), so only they read the key check's record for it.
    fn members_planner(&self) -> Planner<'_> {
        self.planner()
            .with_contiguous_keys(self.contiguous_profile_keys())
    }

    /// The range of the profile keys, when a record of their check (see [`verified`])
    /// says they are every integer in it and the table has not changed since. Only plans
    /// run in this process use it: another engine may read other files under the same
    /// names.
    fn contiguous_profile_keys(&self) -> Option<(i64, i64)> {
        let keys = self
            .verified_keys
            .as_ref()
            .filter(|_| self.own_aggregates)?;
        let source = self.catalog.profiles.source.as_deref()?;
        let key = self.key_as_read();
        let identity = keys.identity(source, &key)?;
        keys.recorded(source, &key, &identity)?.contiguous
    }

    /// The profile key column as the check records it: its name, type and stored type,
    /// since a catalog declaring another type for it reads other values.
    fn key_as_read(&self) -> String {
        let profiles = &self.schema.profiles;
        match profiles.column(&profiles.key) {
            Some(column) => format!("{} ({:?}, {})", column.name, column.ty, column.source_type),
            None => profiles.key.clone(),
        }
    }

    /// The segments named (all, in file order, if `names` is empty).
    pub fn segments(&self, names: &[&str]) -> Result<Vec<&CheckedSegment>, Report> {
        if names.is_empty() {
            return Ok(self.program.segments.iter().collect());
        }
        let mut found = Vec::new();
        let mut diagnostics = Diagnostics::default();
        for name in names {
            match self.program.segment(name) {
                Some(segment) => found.push(segment),
                None => {
                    let known = self.program.segments.iter().map(|s| s.name.as_str());
                    let mut diagnostic =
                        Diagnostic::error("E0402", format!("no segment named `{name}`"));
                    diagnostic = diagnostic.with_suggestion(name, known.clone(), || {
                        format!("segments are {}", diagnostic::list_names(known, 20))
                    });
                    diagnostics.push(diagnostic);
                }
            }
        }
        if diagnostics.has_errors() {
            return Err(Report::new(diagnostics, &self.sources));
        }
        Ok(found)
    }

    /// Resolves `--with` (and `report --by`) names: profile columns, metrics and stages.
    pub fn output_columns(&self, names: &[&str]) -> Result<Vec<OutputColumn>, Report> {
        let mut columns = Vec::new();
        let mut diagnostics = Diagnostics::default();
        for name in names {
            if let Some(value) = self.program.value(name) {
                columns.push(OutputColumn {
                    name: name.to_string(),
                    expr: value.expr.clone(),
                });
                continue;
            }
            match self.schema.profiles.column(name) {
                Some(column) if column.ty.is_some() => columns.push(OutputColumn {
                    name: name.to_string(),
                    expr: TypedExpr {
                        kind: check::ir::IrExpr::ProfileColumn(column.name.clone()),
                        ty: column.ty.clone().unwrap_or(check::ir::Type::Null),
                        span: diagnostic::Span::new(0, 0, 0),
                    },
                }),
                _ => {
                    let mut candidates: Vec<&str> = self
                        .schema
                        .profiles
                        .columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect();
                    candidates.extend(self.program.values.iter().map(|v| v.name.as_str()));
                    let mut diagnostic = Diagnostic::error(
                        "E0402",
                        format!("`{name}` is no profile column, metric or stage"),
                    );
                    let fallback = format!(
                        "choose from {}",
                        diagnostic::list_names(candidates.iter().copied(), 30)
                    );
                    diagnostic = diagnostic.with_suggestion(name, candidates, || fallback);
                    diagnostics.push(diagnostic);
                }
            }
        }
        if diagnostics.has_errors() {
            return Err(Report::new(diagnostics, &self.sources));
        }
        Ok(columns)
    }

    /// The plan listing the members of the named segments (one or several), with `with` columns.
    pub fn plan_segments(&self, names: &[&str], with: &[&str]) -> Result<LogicalPlan, Report> {
        let segments = self.segments(names)?;
        let with = self.output_columns(with)?;
        let planned = match segments.as_slice() {
            [] => {
                return Err(Report::new(
                    Diagnostic::error("E0402", "there are no segments to run")
                        .with_help("define one with `segment NAME = CONDITION`")
                        .into(),
                    &self.sources,
                ));
            }
            [segment] => self.members_planner().members(&segment.condition, &with),
            many => self.members_planner().members_of_many(many, &with),
        };
        planned.map_err(|e| Report::new(internal_error(&e.to_string()).into(), &self.sources))
    }

    /// One SQL query for another engine listing the members of segment `name` (the profile
    /// key, then `with` columns), in `dialect`, over tables named by `naming`.
    pub fn segment_sql(
        &self,
        name: &str,
        with: &[&str],
        dialect: sql::SqlDialect,
        naming: &sql::TableNaming,
    ) -> Result<String, Report> {
        let segment = self.segments(&[name])?[0];
        let what = format!("segment `{name}`");
        self.sql_for(&segment.condition, with, (dialect, naming), &what)
    }

    /// [`Session::segment_sql`] for an ad-hoc condition (the REPL's `:sql`).
    pub fn condition_sql(
        &self,
        condition: &TypedExpr,
        with: &[&str],
        dialect: sql::SqlDialect,
        naming: &sql::TableNaming,
    ) -> Result<String, Report> {
        self.sql_for(condition, with, (dialect, naming), "this condition")
    }

    fn sql_for(
        &self,
        condition: &TypedExpr,
        with: &[&str],
        (dialect, naming): (sql::SqlDialect, &sql::TableNaming),
        what: &str,
    ) -> Result<String, Report> {
        let with = self.output_columns(with)?;
        let names = std::iter::once(&self.schema.profiles)
            .chain(&self.schema.events)
            .flat_map(|t| std::iter::once(&t.name).chain(t.columns.iter().map(|c| &c.name)));
        let names = names
            .chain(naming.schema.iter())
            .chain(naming.prefix.iter());
        if let Some(unsafe_name) = names.into_iter().find(|n| !sql::quotable(n)) {
            let diagnostic = Diagnostic::error(
                "E0409",
                format!("{what} cannot be written as SQL: the name `{unsafe_name}` holds a quote or a backslash"),
            )
            .with_help("rename the table or column (or declare it under another name) to emit SQL");
            return Err(Report::new(diagnostic.into(), &self.sources));
        }
        // The unparser recurses with the nesting of the plan and its expressions.
        diagnostic::with_deep_stack(|| {
            self.planner()
                .portable()
                .members(condition, &with)
                .and_then(|plan| sql::plan_to_sql(&plan, dialect, naming))
        })
        .map_err(|e| {
            let diagnostic = Diagnostic::error(
                "E0409",
                format!("{what} cannot be written as {dialect} SQL: {e}"),
            )
            .with_help("run it with `segql run`, or try another `--dialect`");
            Report::new(diagnostic.into(), &self.sources)
        })
    }

    /// The plan listing the profiles matching an ad-hoc condition.
    pub fn plan_condition(
        &self,
        condition: &TypedExpr,
        with: &[&str],
    ) -> Result<LogicalPlan, Report> {
        let with = self.output_columns(with)?;
        self.members_planner()
            .members(condition, &with)
            .map_err(|e| Report::new(internal_error(&e.to_string()).into(), &self.sources))
    }

    /// The plan counting every named segment's members in one pass.
    pub fn plan_counts(&self, names: &[&str]) -> Result<LogicalPlan, Report> {
        let segments = self.segments(names)?;
        if segments.is_empty() {
            return Err(Report::new(
                Diagnostic::error("E0402", "there are no segments to count")
                    .with_help("define one with `segment NAME = CONDITION`")
                    .into(),
                &self.sources,
            ));
        }
        self.members_planner()
            .counts(&segments)
            .map_err(|e| Report::new(internal_error(&e.to_string()).into(), &self.sources))
    }

    /// The plan computing named metrics, stages and columns for every profile.
    pub fn plan_values(&self, names: &[&str]) -> Result<LogicalPlan, Report> {
        let names: Vec<&str> = if names.is_empty() {
            self.program
                .values
                .iter()
                .map(|v| v.name.as_str())
                .collect()
        } else {
            names.to_vec()
        };
        let columns = self.output_columns(&names)?;
        self.planner()
            .values(&columns)
            .map_err(|e| Report::new(internal_error(&e.to_string()).into(), &self.sources))
    }

    /// Names of all metrics and stages.
    pub fn value_names(&self, kind: ValueKind) -> Vec<&str> {
        self.program
            .values
            .iter()
            .filter(|v| v.kind == kind)
            .map(|v| v.name.as_str())
            .collect()
    }

    /// Runs a plan in this session's context. Plans of many relations in a context with
    /// SegQL's own functions contain a node of SegQL's own (`plan::gather`); to run one
    /// elsewhere, plan it in the state [`exec::state_for`] gives.
    pub async fn execute(&self, plan: LogicalPlan) -> Result<Vec<RecordBatch>, Report> {
        exec::collect(&self.ctx, plan)
            .await
            .map_err(|d| Report::new(d.into(), &self.sources))
    }

    /// Executes a plan and returns its physical plan with the metrics of the run
    /// (`EXPLAIN ANALYZE`): rows, times, and Parquet pruning.
    pub async fn explain_analyze(&self, plan: LogicalPlan) -> Result<String, Report> {
        exec::explain_analyze(&self.ctx, plan)
            .await
            .map_err(|d| Report::new(d.into(), &self.sources))
    }

    /// Runs `evaluation`, stopping it with `E0407` once `timeout` has passed. Nothing of a
    /// stopped evaluation is kept.
    pub async fn with_timeout<T>(
        &self,
        timeout: Option<std::time::Duration>,
        evaluation: impl std::future::Future<Output = Result<T, Report>>,
    ) -> Result<T, Report> {
        timed(timeout, &self.sources, evaluation).await
    }

    /// Checks that every profile has a key and no key appears twice: otherwise members would
    /// be doubled or keyless. Keys stored in increasing order are proven unique in one
    /// streaming pass; any others take one grouped pass over the key column.
    pub async fn check_profile_keys(&self) -> Result<(), Report> {
        let profiles = &self.schema.profiles;
        let remembered = (self.verified_keys.as_ref()).zip(self.catalog.profiles.source.as_deref());
        let key_as_read = self.key_as_read();
        // The source's identity before the check, read once: it finds the record, and a
        // new record is written only if the source still has it after the check.
        let before = remembered.and_then(|(keys, source)| keys.identity(source, &key_as_read));
        if let (Some((keys, source)), Some(before)) = (remembered, &before)
            && keys.is_recorded(source, &key_as_read, before)
        {
            return Ok(());
        }
        let passed = |facts| {
            if let (Some((keys, source)), Some(before)) = (remembered, &before) {
                // Remembering is only a shortcut: a record that cannot be written costs
                // the next evaluation a check, nothing else.
                let _ = keys.record(source, &key_as_read, before, facts);
            }
            Ok(())
        };
        // Profiles stored sorted by key are proven unique in one cheap pass, which also
        // finds whether they are a range of integers without gaps.
        if let Ok(Some(sorted)) = exec::sorted_keys(&self.ctx, &profiles.name, &profiles.key).await
        {
            let contiguous = sorted.contiguous();
            return passed(verified::Recorded { contiguous });
        }
        let plan = self
            .planner()
            .bad_profile_keys()
            .map_err(|e| Report::new(internal_error(&e.to_string()).into(), &self.sources))?;
        let batches = self.execute(plan).await?;
        let mut problems = Vec::new();
        for batch in &batches {
            for row in 0..batch.num_rows() {
                let copies = exec::format_cell(batch, 1, row);
                problems.push(if batch.column(0).is_null(row) {
                    format!("{copies} rows without a key")
                } else {
                    format!(
                        "key {} appears {copies} times",
                        exec::format_cell(batch, 0, row)
                    )
                });
            }
        }
        if problems.is_empty() {
            return passed(verified::Recorded::default());
        }
        let key = &self.schema.profiles.key;
        let table = &self.schema.profiles.name;
        let diagnostic = Diagnostic::error("E0406", format!("the profile table `{table}` has bad keys: {}", problems.join(", ")))
            .with_note(format!("every profile needs exactly one row with a non-null `{key}`, or members would be doubled or unnamed"))
            .with_help("remove the duplicate rows from the profile data, or choose a unique `key` in segql.toml");
        Err(Report::new(diagnostic.into(), &self.sources))
    }

    /// Each named segment's size (all segments if `names` is empty), in one pass.
    pub async fn counts(&self, names: &[&str]) -> Result<Vec<(String, u64)>, Report> {
        let plan = self.plan_counts(names)?;
        let batches = self.execute(plan).await?;
        exec::counts_from_batches(&batches).map_err(|d| Report::new(d.into(), &self.sources))
    }
}

/// A DataFusion context in this process, configured as SegQL evaluates best (see
/// [`engine::configure_local`]).
pub fn new_context() -> SessionContext {
    new_context_with_memory_limit(None)
}

/// [`new_context`] whose evaluations may use at most `bytes` of memory. Operators that can
/// spill (sorts, grouped aggregation, hash joins in part) write to temporary files beyond
/// it; any other that needs more fails with `E0408` instead of the process being killed.
pub fn new_context_with_memory_limit(bytes: Option<usize>) -> SessionContext {
    let mut runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new();
    if let Some(bytes) = bytes {
        runtime = runtime.with_memory_pool(std::sync::Arc::new(
            datafusion::execution::memory_pool::FairSpillPool::new(bytes),
        ));
    }
    let runtime = match runtime.build_arc() {
        Ok(runtime) => runtime,
        // Building the default runtime cannot fail; fall back to it all the same.
        Err(_) => return SessionContext::new(),
    };
    let config = engine::configure_local(datafusion::prelude::SessionConfig::new());
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    register_functions(&ctx);
    ctx
}

/// Registers SegQL's own aggregate functions in `ctx` (contexts from [`new_context`] have
/// them). A [`Session`] whose context has them plans `first` and `last` in the grouped
/// pass of their event table; without them (a Ballista cluster, whose executors know only
/// DataFusion's built-ins) in passes of their own.
pub fn register_functions(ctx: &SessionContext) {
    plan::register_own_functions(ctx);
}

/// FNV-1a: the same for the same bytes in every run and build, unlike the standard
/// library's hashers.
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Reads a source file, with a diagnostic for missing or non-UTF-8 files.
pub fn read_source(path: &Path) -> Result<String, Diagnostic> {
    let bytes = std::fs::read(path).map_err(|error| {
        Diagnostic::error(
            "E0401",
            format!("cannot read `{}`: {error}", path.display()),
        )
        .with_help("check the path; segment files usually end in `.seg`")
    })?;
    String::from_utf8(bytes).map_err(|error| {
        Diagnostic::error(
            "E0401",
            format!(
                "`{}` is not UTF-8 text (invalid byte at offset {})",
                path.display(),
                error.utf8_error().valid_up_to()
            ),
        )
        .with_help("save the file as UTF-8")
    })
}

/// A DataFusion error on a plan the checker accepted: a bug in SegQL.
pub fn internal_error(message: &str) -> Diagnostic {
    Diagnostic::error(
        "E0404",
        format!(
            "internal error: {}",
            message.lines().next().unwrap_or(message)
        ),
    )
    .with_note(
        "the checker accepted this query but DataFusion rejected its plan; this is a bug in SegQL",
    )
    .with_help("please report it with the query and `segql compile --emit ir`")
}

/// The current time in nanoseconds since the epoch.
pub fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}
