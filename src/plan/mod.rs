//! Typed IR -> DataFusion `LogicalPlan`, built with `LogicalPlanBuilder` (never SQL text).
//! The only place DataFusion expressions are built.
//!
//! Shape of every plan:
//!
//! ```text
//! (one grouped pass per event table: every measure as a FILTER-ed aggregate) AS __m_<event>
//!   RIGHT JOIN profiles (needed columns, normalized types) AS __p
//! ... one join per measure relation (INNER where the condition needs its rows: see `absence`)
//! -> filter / project / aggregate, depending on the request
//! ```

mod absence;
mod any_true;
mod count_distinct;
mod count_true;
mod counted;
mod dense_aggregate;
mod edge;
pub mod existence_rows;
mod expr;
mod extremes;
pub mod gather;
mod memberships;
pub mod narrow;
pub mod proven;
mod sequence;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::UnnestOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::datasource::provider_as_source;
use datafusion::error::{DataFusionError, Result};
use datafusion::functions::expr_fn::{ceil, date_part, date_trunc, round, sqrt};
use datafusion::functions_aggregate::average::avg_udaf;
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::expr_fn::{array_agg, avg, count, max, min, sum};
use datafusion::functions_aggregate::stddev::stddev_pop_udaf;
use datafusion::functions_nested::expr_fn::{array_positions, array_sort, make_array};
use datafusion::functions_window::expr_fn::{percent_rank, row_number};
use datafusion::logical_expr::{
    AggregateUDF, Expr, ExprFunctionExt, JoinType, LogicalPlan, LogicalPlanBuilder,
    LogicalTableSource, SortExpr, TableSource, WindowFrame, WindowFrameBound, WindowFrameUnits,
    case, cast, col, expr::WindowFunction, lit, logical_plan, when,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionContext, coalesce};

use crate::catalog::{CatalogSchema, TableSchema};
use crate::check::ir::*;
pub use expr::{
    rank_column, rank_relation, ranked_column, timestamp_literal, visit, visit_through_rankings,
};
pub use sequence::sequence_relation;

/// The alias of the profile table in every plan.
pub const PROFILES_ALIAS: &str = "__p";
/// The alias of the profile keys that plans with several measure relations join them to
/// before the profile columns (see [`Planner::profiles_with_measures`]).
const KEYS_ALIAS: &str = "__k";
/// How many measure relations make a plan of many, which, when it joins them rather than
/// gathers them ([`GATHERED_RELATIONS`]), joins them to the profile keys before the
/// profile columns.
const MANY_RELATIONS: usize = 4;
/// How many measure relations a plan in this process gathers ([`gather`]) rather than
/// joins: from two, the gather's indexes cost less than hash joins of every profile
/// (`engaged_browsers` and `reachable_engaged` of the segment benchmark: 0.30 and 0.30 s
/// median against 0.37 and 0.37 s).
const GATHERED_RELATIONS: usize = 2;
/// The output column naming the segment when several are returned.
pub const SEGMENT_COLUMN: &str = "segment";

/// In a listing of several segments, a member's segment as its position (from 1) among
/// the segments in name order.
const SEGMENT_POSITION: &str = "__segment_at";

/// Registers SegQL's own aggregate functions, and its scalar `segql_memberships`, in `ctx`.
pub fn register_own_functions(ctx: &SessionContext) {
    for function in own_functions() {
        ctx.register_udaf(function.as_ref().clone());
    }
    ctx.register_udf(memberships::memberships_udf().as_ref().clone());
}

fn own_functions() -> [Arc<AggregateUDF>; 5] {
    [
        any_true::any_true_udaf(),
        edge::edge_udaf(edge::Edge::First),
        edge::edge_udaf(edge::Edge::Last),
        count_true::count_true_udaf(),
        count_distinct::count_distinct_udaf(),
    ]
}

/// Whether `ctx` has SegQL's own aggregate functions, so plans may use them.
pub fn has_own_functions(ctx: &SessionContext) -> bool {
    use datafusion::execution::FunctionRegistry;
    own_functions()
        .iter()
        .all(|function| ctx.udaf(function.name()).is_ok())
}

/// `plan` with each node `replace` gives a replacement for replaced, from the leaves up:
/// the physical optimizer rules that rewrite operators one at a time.
fn replace_bottom_up(
    plan: Arc<dyn ExecutionPlan>,
    replace: impl Fn(&Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        Ok(match replace(&node)? {
            Some(replacement) => Transformed::yes(replacement),
            None => Transformed::no(node),
        })
    })
    .data()
}

/// The tables a plan reads, by catalog name.
#[derive(Clone)]
pub struct Tables {
    sources: HashMap<String, Arc<dyn TableSource>>,
}

impl Tables {
    /// The registered tables of `ctx` (see [`crate::catalog::Catalog::register`]).
    pub async fn from_context(ctx: &SessionContext, catalog: &CatalogSchema) -> Result<Tables> {
        let mut sources = HashMap::new();
        for table in std::iter::once(&catalog.profiles).chain(&catalog.events) {
            let provider = ctx.table_provider(table.name.as_str()).await?;
            sources.insert(table.name.clone(), provider_as_source(provider));
        }
        Ok(Tables { sources })
    }

    /// Tables with the catalog's column types and no data: enough to build and show a plan.
    pub fn from_schema(catalog: &CatalogSchema) -> Tables {
        let mut sources: HashMap<String, Arc<dyn TableSource>> = HashMap::new();
        for table in std::iter::once(&catalog.profiles).chain(&catalog.events) {
            let fields: Vec<Field> = table
                .columns
                .iter()
                .map(|c| {
                    Field::new(
                        &c.name,
                        c.ty.as_ref().map(arrow_type).unwrap_or(DataType::Null),
                        true,
                    )
                })
                .collect();
            let schema = Arc::new(Schema::new(fields));
            sources.insert(
                table.name.clone(),
                Arc::new(LogicalTableSource::new(schema)),
            );
        }
        Tables { sources }
    }

    fn get(&self, name: &str) -> Result<Arc<dyn TableSource>> {
        self.sources
            .get(name)
            .cloned()
            .ok_or_else(|| DataFusionError::Plan(format!("table `{name}` is not registered")))
    }
}

/// The Arrow type every column of a language type is normalized to.
pub fn arrow_type(ty: &Type) -> DataType {
    match ty {
        Type::Bool => DataType::Boolean,
        Type::Int => DataType::Int64,
        Type::Float => DataType::Float64,
        Type::String => DataType::Utf8,
        Type::Timestamp => DataType::Timestamp(TimeUnit::Nanosecond, None),
        Type::Duration => DataType::Duration(TimeUnit::Nanosecond),
        Type::List(item) => DataType::List(Arc::new(Field::new_list_field(arrow_type(item), true))),
        Type::Null | Type::Error => DataType::Null,
    }
}

/// A profile-level output column: a profile column, a metric or a stage.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputColumn {
    pub name: String,
    pub expr: TypedExpr,
}

/// Builds plans for one checked program at one evaluation time.
pub struct Planner<'a> {
    program: &'a Program,
    catalog: &'a CatalogSchema,
    tables: &'a Tables,
    /// Evaluation time, nanoseconds since the epoch.
    as_of: i64,
    /// Plans for SQL text (`crate::sql`) rather than for DataFusion to run.
    portable: bool,
    /// Plans may use SegQL's own aggregate functions ([`edge`], [`count_true`]), which
    /// only DataFusion in this process has. Without them, `first` and `last` have edge
    /// passes of their own, built from DataFusion's built-ins (see [`has_edge_pass`]).
    own_aggregates: bool,
    /// The profile keys are every integer of this range, each once (see
    /// [`Planner::with_contiguous_keys`]).
    contiguous_keys: Option<(i64, i64)>,
}

impl<'a> Planner<'a> {
    pub fn new(
        program: &'a Program,
        catalog: &'a CatalogSchema,
        tables: &'a Tables,
        as_of: i64,
    ) -> Planner<'a> {
        Planner {
            program,
            catalog,
            tables,
            as_of,
            portable: false,
            own_aggregates: false,
            contiguous_keys: None,
        }
    }

    /// A planner that knows the profile keys to be every integer from `low` to `high`,
    /// each once (`crate::verified` remembers it of a checked table). A condition that
    /// reads no profile column and holds only for profiles with events then selects the
    /// keys of those events within the range, without reading the profiles. Portable
    /// plans do not use it.
    pub fn with_contiguous_keys(self, range: Option<(i64, i64)>) -> Planner<'a> {
        Planner {
            contiguous_keys: range.filter(|_| !self.portable),
            ..self
        }
    }

    /// A planner whose plans may use SegQL's own aggregates, which only DataFusion in this
    /// process has: `first` and `last` then join the grouped pass of their event table.
    pub fn with_own_aggregates(self, own: bool) -> Planner<'a> {
        Planner {
            own_aggregates: own && !self.portable,
            ..self
        }
    }

    /// A planner whose plans unparse to SQL other engines run: the profiles are the left
    /// input of every join (DataFusion's unparser mis-nests a join whose right input is a
    /// join), whichever side DataFusion would rather build its hash table on.
    pub fn portable(self) -> Planner<'a> {
        Planner {
            portable: true,
            own_aggregates: false,
            contiguous_keys: None,
            ..self
        }
    }

    /// Members of one segment (or any condition): the profile key and `with` columns, sorted by key.
    ///
    /// Extremes compared with constants are planned as existences ([`extremes`]).
    pub fn members(&self, condition: &TypedExpr, with: &[OutputColumn]) -> Result<LogicalPlan> {
        match extremes::as_existences(condition, self.program) {
            Some((condition, program)) => Planner {
                program: &program,
                ..*self
            }
            .members_as_written(&condition, with),
            None => self.members_as_written(condition, with),
        }
    }

    fn members_as_written(
        &self,
        condition: &TypedExpr,
        with: &[OutputColumn],
    ) -> Result<LogicalPlan> {
        let mut exprs: Vec<&TypedExpr> = vec![condition];
        exprs.extend(with.iter().map(|w| &w.expr));
        let builder = self.profiles_with_measures(&exprs, Some(condition))?;
        let projection = self.key_and(with)?;
        builder
            .filter(self.lower(&as_filter(condition))?)?
            .project(projection)?
            .sort(vec![
                col(Column::from_name(self.catalog.profiles.key.as_str())).sort(true, false),
            ])?
            .build()
    }

    /// Members of several segments in one pass: a `segment` column, the key and `with`
    /// columns, sorted by segment name and key.
    pub fn members_of_many(
        &self,
        segments: &[&CheckedSegment],
        with: &[OutputColumn],
    ) -> Result<LogicalPlan> {
        let mut exprs: Vec<&TypedExpr> = segments.iter().map(|s| &s.condition).collect();
        exprs.extend(with.iter().map(|w| &w.expr));
        let key_name = self.catalog.profiles.key.as_str();
        let base = self.profiles_with_measures(&exprs, None)?;
        let mut projection = self.key_and(with)?;
        for (i, segment) in segments.iter().enumerate() {
            // Only the filter below reads it.
            let member = self.lower(&as_filter(&segment.condition))?;
            projection.push(member.alias(format!("__in{i}")));
        }
        // Each profile's row lists the positions, in name order, of the segments it is a
        // member of; one row per membership comes out of that list, sorted by position
        // (so by name) and key, and the position is replaced by the name. A cross join
        // of the segment names with the profiles tested every pair.
        let mut by_name: Vec<usize> = (0..segments.len()).collect();
        by_name.sort_by(|&a, &b| segments[a].name.cmp(&segments[b].name));
        let conditions = by_name.iter().map(|i| col(format!("__in{i}"))).collect();
        let memberships = if self.own_aggregates {
            memberships::memberships(conditions)
        } else {
            array_positions(make_array(conditions), lit(true))
        };
        let mut listed = vec![col(Column::from_name(key_name))];
        listed.extend(with.iter().map(|w| col(Column::from_name(w.name.as_str()))));
        let mut output = listed.clone();
        listed.push(memberships.alias(SEGMENT_POSITION));
        let mut name = case(col(SEGMENT_POSITION));
        for (position, &i) in (1u64..).zip(&by_name) {
            name = name.when(lit(position), lit(segments[i].name.as_str()));
        }
        output.insert(0, col(SEGMENT_COLUMN));
        let mut named = vec![name.end()?.alias(SEGMENT_COLUMN), col(SEGMENT_POSITION)];
        named.extend(listed[..listed.len() - 1].iter().cloned());
        // The names are given before the sort: a projection above it may be run in
        // partitions whose rows come out interleaved.
        base.project(projection)?
            .project(listed)?
            .unnest_column_with_options(
                SEGMENT_POSITION,
                UnnestOptions::new().with_preserve_nulls(false),
            )?
            .project(named)?
            .sort(vec![
                col(SEGMENT_POSITION).sort(true, false),
                col(Column::from_name(key_name)).sort(true, false),
            ])?
            .project(output)?
            .build()
    }

    /// The size of every segment, computed in one pass: one row, one column per segment
    /// (named after it), plus `__profiles`, the number of profiles.
    pub fn counts(&self, segments: &[&CheckedSegment]) -> Result<LogicalPlan> {
        let exprs: Vec<&TypedExpr> = segments.iter().map(|s| &s.condition).collect();
        let base = self.profiles_with_measures(&exprs, None)?.build()?;
        let mut aggregates = vec![count(lit(1)).alias("__profiles")];
        let mut fields = vec![Field::new("__profiles", DataType::Int64, false)];
        for segment in segments {
            // Either way, only the rows it is TRUE for count.
            let condition = self.lower(&as_filter(&segment.condition))?;
            // Built-ins: `count(CASE WHEN c THEN 1 END)`, not `count(*) FILTER (WHERE c)`:
            // DataFusion applies each FILTER by copying the whole input batch, which with
            // 50 segments over 1M profiles took 85 s instead of 1.
            let members = if self.own_aggregates {
                count_true::count_true(condition)
            } else {
                count(when(condition, lit(1i64)).end()?)
            };
            aggregates.push(members.alias(segment.name.as_str()));
            fields.push(Field::new(segment.name.as_str(), DataType::Int64, false));
        }
        // The schema is known (counts are non-null integers). Deriving it, DataFusion
        // would write out every condition as a column name it then discards: half the
        // time of compiling the demo file.
        let schema = DFSchema::from_unqualified_fields(fields.into(), HashMap::new())?;
        let aggregate = logical_plan::Aggregate::try_new_with_schema(
            Arc::new(base),
            Vec::new(),
            aggregates,
            schema.into(),
        )?;
        Ok(LogicalPlan::Aggregate(aggregate))
    }

    /// Every profile with the given values (metrics, stages, columns), sorted by key.
    pub fn values(&self, columns: &[OutputColumn]) -> Result<LogicalPlan> {
        let exprs: Vec<&TypedExpr> = columns.iter().map(|c| &c.expr).collect();
        let key_name = self.catalog.profiles.key.as_str();
        let projection = self.key_and(columns)?;
        self.profiles_with_measures(&exprs, None)?
            .project(projection)?
            .sort(vec![col(Column::from_name(key_name)).sort(true, false)])?
            .build()
    }

    /// One profile's values of `columns` (which may be sub-expressions of a segment).
    pub fn values_for_key(&self, columns: &[OutputColumn], key: Expr) -> Result<LogicalPlan> {
        let exprs: Vec<&TypedExpr> = columns.iter().map(|c| &c.expr).collect();
        let projection = self.key_and(columns)?;
        self.profiles_with_measures(&exprs, None)?
            .filter(self.key_column().eq(key))?
            .project(projection)?
            .build()
    }

    /// The events one profile's measure counts: time (and the measured column), by time.
    pub fn measure_events(&self, id: usize, key: Expr, limit: usize) -> Result<LogicalPlan> {
        let measure = &self.program.measures[id];
        let table = self.event_table(&measure.event)?;
        let time_name = table.time.clone().unwrap_or_default();
        let columns = self.pass_columns(table, &[id]);
        let profile_key_type = self.profile_key_type();
        let time = col(Column::from_name(time_name.as_str()));
        let mut condition = time
            .clone()
            .lt_eq(timestamp_literal(self.as_of))
            .and(col(Column::from_name(table.key.as_str())).eq(key));
        if let Some(filter) = &measure.filter {
            condition = condition.and(expr::lower_event(filter, self.as_of, self.portable)?);
        }
        if let Some(start) = measure.window.start {
            condition = condition.and(
                time.clone()
                    .gt_eq(timestamp_literal(start.resolve(self.as_of))),
            );
        }
        if let Some(end) = measure.window.end {
            condition = condition.and(time.clone().lt(timestamp_literal(end.resolve(self.as_of))));
        }
        let mut projection = vec![time.clone()];
        if let Some(column) = &measure.column
            && *column != time_name
        {
            projection.push(col(Column::from_name(column.as_str())));
        }
        self.normalized_scan(table, &columns, Some(&profile_key_type))?
            .filter(condition)?
            .project(projection)?
            .sort(vec![time.sort(true, false)])?
            .limit(0, Some(limit))?
            .build()
    }

    /// Profile keys that are null or appear more than once: `key`, `copies` (at most 5 rows).
    pub fn bad_profile_keys(&self) -> Result<LogicalPlan> {
        let profiles = &self.catalog.profiles;
        let key = col(Column::new(
            Some(profiles.name.as_str()),
            profiles.key.as_str(),
        ));
        let copies = count(lit(1)).alias("copies");
        LogicalPlanBuilder::scan(
            profiles.name.as_str(),
            self.tables.get(&profiles.name)?,
            None,
        )?
        .aggregate(vec![key.clone().alias("key")], vec![copies])?
        .filter(col("copies").gt(lit(1i64)).or(col("key").is_null()))?
        .project(vec![
            cast(col("key"), DataType::Utf8).alias("key"),
            col("copies"),
        ])?
        .sort(vec![col("key").sort(true, true)])?
        .limit(0, Some(5))?
        .build()
    }

    /// The projection `key, column AS name, ...` shared by every output.
    fn key_and(&self, columns: &[OutputColumn]) -> Result<Vec<Expr>> {
        let mut projection = vec![self.key_column().alias(self.catalog.profiles.key.as_str())];
        for column in columns {
            projection.push(self.lower(&column.expr)?.alias(column.name.as_str()));
        }
        Ok(projection)
    }

    /// The profile key's type, which event keys are read as.
    fn profile_key_type(&self) -> Type {
        let profiles = &self.catalog.profiles;
        (profiles.column(&profiles.key))
            .and_then(|c| c.ty.clone())
            .unwrap_or(Type::Int)
    }

    fn key_column(&self) -> Expr {
        Expr::Column(Column::new(
            Some(PROFILES_ALIAS),
            self.catalog.profiles.key.as_str(),
        ))
    }

    fn lower(&self, expr: &TypedExpr) -> Result<Expr> {
        crate::diagnostic::with_deep_stack(|| {
            expr::lower_profile(
                expr,
                self.as_of,
                self.program,
                self.own_aggregates,
                self.portable,
            )
        })
    }

    /// The profiles, outer-joined with one measure relation per event table the expressions
    /// use (and one per distinct count), so every profile is kept. When only profiles with
    /// a row in a relation can satisfy `condition`, that join is an inner join instead
    /// (see [`absence`]).
    ///
    /// In this process, four relations or more none of which may drop a profile are
    /// gathered to the profiles in one operator instead ([`gather`]).
    ///
    /// Otherwise, with many relations, the relations join the profile keys alone, and the
    /// profile columns the expressions read join their result once, at the end, as the
    /// build side (built on the dozens of measure columns, that join alone took longer
    /// than the others together). A hash join copies every column of its inputs into its
    /// output: carrying the wide profile columns (strings, lists) through each of a dozen
    /// joins took a tenth of the time of counting the benchmark's 50 segments.
    fn profiles_with_measures(
        &self,
        exprs: &[&TypedExpr],
        condition: Option<&TypedExpr>,
    ) -> Result<LogicalPlanBuilder> {
        let mut profile_columns = BTreeSet::new();
        let mut measures = BTreeSet::new();
        let mut rankings = BTreeSet::new();
        let mut sequences = BTreeSet::new();
        for expr in exprs {
            collect_uses(
                expr,
                &mut profile_columns,
                &mut measures,
                &mut rankings,
                &mut sequences,
            );
        }
        let profiles = &self.catalog.profiles;
        profile_columns.insert(profiles.key.clone());

        // One relation per event table, and one per aggregate over distinct values (see
        // `value_pass`).
        let mut relations: BTreeMap<String, (&str, Vec<usize>)> = BTreeMap::new();
        for id in measures {
            let measure = &self.program.measures[id];
            relations
                .entry(measure_relation(id, measure, self.own_aggregates))
                .or_insert_with(|| (measure.event.as_str(), Vec::new()))
                .1
                .push(id);
        }
        let profile_key_type = self.profile_key_type();
        // A hash join copies every column of its inputs into its output, so the measure
        // columns joined first travel through every later join: the relations with the
        // fewest columns join first.
        let mut relations: Vec<(String, (&str, Vec<usize>))> = relations.into_iter().collect();
        relations.sort_by_key(|(_, (_, ids))| ids.len());
        // Each relation with its alias, and whether only profiles with a row in it can
        // satisfy the condition.
        let mut joined: Vec<(String, LogicalPlan, bool)> = Vec::new();
        // Each measure column's value for profiles without a row in its relation.
        let mut absent = Vec::new();
        // The grouped passes: their rows of aggregates over no events are as good as no row
        // (a count's 0 is its absent value, the others' value over no events is null).
        let mut grouped_passes = BTreeSet::new();
        for (alias, (event, ids)) in relations {
            for &id in &ids {
                if let Some(value) =
                    expr::absent_value(&self.program.measures[id], self.own_aggregates)?
                {
                    absent.push((Column::new(Some(alias.as_str()), measure_column(id)), value));
                }
            }
            let measures_plan = match ids.as_slice() {
                [id] if has_value_pass(&self.program.measures[*id], self.own_aggregates) => {
                    self.value_pass(*id, &alias, &profile_key_type)?
                }
                [id] if has_edge_pass(&self.program.measures[*id], self.own_aggregates) => {
                    self.edge_pass(*id, &alias, &profile_key_type)?
                }
                _ => {
                    grouped_passes.insert(alias.clone());
                    self.measure_pass(event, &ids, &profile_key_type)?
                }
            };
            let inner = condition.is_some_and(|c| absence::requires_rows(c, &ids, self.program));
            joined.push((alias, measures_plan, inner));
        }
        // Each ranking is a relation of its own over every profile, so the joins above
        // may leave out profiles the condition cannot select.
        for id in rankings {
            let alias = rank_relation(id);
            let ranked = self.rank_pass(id, &alias)?;
            joined.push((alias, ranked, false));
        }
        // A sequence is the keys of its matching profiles.
        for id in sequences {
            let alias = sequence_relation(id);
            let matching = self.sequence_pass(id, &alias, &profile_key_type)?;
            joined.push((alias, matching, false));
        }
        let profile_key = |alias| Column::new(Some(alias), profiles.key.as_str());
        let relation_key = |alias: &str| Column::new(Some(alias), "__key");
        // In this process, relations none of which may drop a profile are gathered in one
        // operator (see `gather`) onto the profiles, or onto what stands for them.
        let gatherable = |joined: &[(String, LogicalPlan, bool)]| {
            self.own_aggregates && joined.iter().all(|(_, _, inner)| !inner)
        };
        let gather_onto = |base: LogicalPlan,
                           joined: Vec<(String, LogicalPlan, bool)>,
                           absent,
                           ranges|
         -> Result<LogicalPlanBuilder> {
            let relations = joined
                .into_iter()
                .map(|(alias, plan, _)| (plan, relation_key(&alias)))
                .collect();
            let plan =
                gather::gather(base, profile_key(PROFILES_ALIAS), relations, absent, ranges)?;
            Ok(LogicalPlanBuilder::from(plan))
        };
        if gatherable(&joined)
            && joined.len() >= GATHERED_RELATIONS
            && profile_key_type == Type::Int
        {
            let scan = self.normalized_scan(profiles, &profile_columns, None)?;
            let ranges = gather::KeyRanges {
                profile_keys: self.contiguous_keys,
                empty_rows_absent: (joined.iter())
                    .map(|(alias, _, _)| grouped_passes.contains(alias))
                    .collect(),
            };
            return gather_onto(scan.alias(PROFILES_ALIAS)?.build()?, joined, absent, ranges);
        }
        // Profiles known to be a range of keys need not be read when only the key is
        // needed and a relation's rows are: its keys within the range are the profiles.
        if let Some(mut builder) = self.keys_of_relation(&profile_columns, &mut joined)? {
            if gatherable(&joined) && !joined.is_empty() {
                let ranges = gather::KeyRanges::default();
                return gather_onto(builder.build()?, joined, absent, ranges);
            }
            for (alias, plan, inner) in joined {
                builder = self.join_to_profiles(builder, PROFILES_ALIAS, plan, &alias, inner)?;
            }
            return Ok(builder);
        }
        // With few joins, the extra join of the profile columns costs more than it saves
        // (measured on the segment benchmark: 0.19 s against 0.24 s for two joins).
        let keys_first =
            !self.portable && joined.len() >= MANY_RELATIONS && profile_columns.len() > 1;
        let (mut builder, keys) = if keys_first {
            let key = BTreeSet::from([profiles.key.clone()]);
            let keys = self.normalized_scan(profiles, &key, None)?;
            (keys.alias(KEYS_ALIAS)?, KEYS_ALIAS)
        } else {
            let scan = self.normalized_scan(profiles, &profile_columns, None)?;
            (scan.alias(PROFILES_ALIAS)?, PROFILES_ALIAS)
        };
        for (alias, plan, inner) in joined {
            builder = self.join_to_profiles(builder, keys, plan, &alias, inner)?;
        }
        if keys_first {
            let columns = self
                .normalized_scan(profiles, &profile_columns, None)?
                .alias(PROFILES_ALIAS)?
                .build()?;
            builder = LogicalPlanBuilder::from(columns).join(
                builder.build()?,
                JoinType::Inner,
                (
                    vec![profile_key(PROFILES_ALIAS)],
                    vec![profile_key(KEYS_ALIAS)],
                ),
                None,
            )?;
        }
        Ok(builder)
    }

    /// When the profile keys are a known range ([`Planner::with_contiguous_keys`]), only
    /// the key of the profiles is read, and some relation's rows are needed (an inner
    /// join): that relation, taken out of `joined`, with its keys outside the range
    /// dropped and its key also as the profiles' key column. It selects the same profiles
    /// as the profiles joined to it, whose keys are every integer of the range.
    fn keys_of_relation(
        &self,
        profile_columns: &BTreeSet<String>,
        joined: &mut Vec<(String, LogicalPlan, bool)>,
    ) -> Result<Option<LogicalPlanBuilder>> {
        let key = &self.catalog.profiles.key;
        let only_key = profile_columns.len() == 1 && profile_columns.contains(key);
        let Some((low, high)) = self.contiguous_keys.filter(|_| only_key) else {
            return Ok(None);
        };
        if self.profile_key_type() != Type::Int {
            return Ok(None);
        }
        let Some(at) = joined.iter().position(|(_, _, inner)| *inner) else {
            return Ok(None);
        };
        let (alias, relation, _) = joined.remove(at);
        let relation_key = col(Column::new(Some(alias.as_str()), "__key"));
        let mut columns: Vec<Expr> = (relation.schema().columns().into_iter()).map(col).collect();
        columns.push(
            relation_key
                .clone()
                .alias_qualified(Some(PROFILES_ALIAS), key),
        );
        let keys = LogicalPlanBuilder::from(relation)
            .filter(relation_key.between(lit(low), lit(high)))?
            .project(columns)?;
        Ok(Some(keys))
    }

    /// Joins `relation` (one row per profile key at most, the key in `__key`) to the
    /// profiles (or their keys), whose alias is `profiles_alias`, keeping every profile
    /// unless `inner`.
    ///
    /// The relation is the join's left (build) side and the profiles its right (probe)
    /// side: DataFusion builds the hash table on the left, and the narrow measures build it
    /// in a fraction of the time and memory the wide profiles do. Portable plans keep the
    /// profiles on the left, which the unparser nests correctly.
    fn join_to_profiles(
        &self,
        profiles: LogicalPlanBuilder,
        profiles_alias: &str,
        relation: LogicalPlan,
        alias: &str,
        inner: bool,
    ) -> Result<LogicalPlanBuilder> {
        let profile_key = Column::new(Some(profiles_alias), self.catalog.profiles.key.as_str());
        let relation_key = Column::new(Some(alias), "__key");
        if self.portable {
            let join = if inner {
                JoinType::Inner
            } else {
                JoinType::Left
            };
            return profiles.join(
                relation,
                join,
                (vec![profile_key], vec![relation_key]),
                None,
            );
        }
        let join = if inner {
            JoinType::Inner
        } else {
            JoinType::Right
        };
        LogicalPlanBuilder::from(relation).join(
            profiles.build()?,
            join,
            (vec![relation_key], vec![profile_key]),
            None,
        )
    }

    /// Ranking `id` over every profile, as a relation `alias` of (`__key`, position
    /// ([`rank_column`]), number of ranked profiles ([`ranked_column`])). Profiles with a
    /// null value form a partition of their own, in which the count of values is 0.
    fn rank_pass(&self, id: usize, alias: &str) -> Result<LogicalPlan> {
        let ranking = &self.program.rankings[id];
        if let (RankKind::Lookalike(_), Some(seed)) = (ranking.kind, &ranking.seed) {
            return self.lookalike_pass(id, seed, alias);
        }
        let profiles = self.profiles_with_measures(&[&ranking.by], None)?;
        let value = self.lower(&ranking.by)?;
        let (position, order) = match ranking.kind {
            RankKind::Top(_) | RankKind::TopShare(_) => (
                row_number(),
                vec![
                    value.clone().sort(false, false),
                    self.key_column().sort(true, false),
                ],
            ),
            RankKind::PercentileRank => (percent_rank(), vec![value.clone().sort(true, false)]),
            RankKind::Lookalike(_) => {
                return Err(DataFusionError::Internal(
                    "a lookalike without a seed".into(),
                ));
            }
        };
        ranking_relation(
            profiles,
            id,
            alias,
            RankWindow {
                key: self.key_column(),
                position,
                partition: value.clone().is_null(),
                order,
                counted: value,
            },
        )
    }

    /// A lookalike as a ranking relation: each feature standardized over every profile
    /// with a value (z-score, population standard deviation; a constant feature is 0),
    /// the seed's centroid (mean z-score of its members), and each non-member's Euclidean
    /// distance to it. Profiles with a null feature are not ranked; the nearest first,
    /// ties to the smaller key.
    fn lookalike_pass(&self, id: usize, seed: &TypedExpr, alias: &str) -> Result<LogicalPlan> {
        let IrExpr::List(features) = &self.program.rankings[id].by.kind else {
            return Err(DataFusionError::Internal(
                "lookalike features are a list".into(),
            ));
        };
        let mut exprs: Vec<&TypedExpr> = features.iter().collect();
        exprs.push(seed);
        let profiles = self.profiles_with_measures(&exprs, None)?;
        let feature = |i: usize| col(format!("__f{i}"));
        let over_all = |function: Arc<AggregateUDF>, argument: Expr| {
            Expr::from(WindowFunction::new(function, vec![argument]))
        };
        // (key, seed, f0, f1, ...), every profile.
        let mut columns = vec![
            self.key_column().alias("__key"),
            coalesce(vec![self.lower(seed)?, lit(false)]).alias("__seed"),
        ];
        for (i, f) in features.iter().enumerate() {
            columns.push(cast(self.lower(f)?, DataType::Float64).alias(format!("__f{i}")));
        }
        let mut plan = profiles.project(columns)?;
        // The mean and spread of each feature over every profile with a value.
        let mut statistics = Vec::new();
        for i in 0..features.len() {
            statistics.push(over_all(avg_udaf(), feature(i)).alias(format!("__mean{i}")));
            statistics.push(over_all(stddev_pop_udaf(), feature(i)).alias(format!("__sd{i}")));
        }
        plan = plan.window(statistics)?;
        let mut standardized = vec![col("__key"), col("__seed")];
        for i in 0..features.len() {
            let sd = col(format!("__sd{i}"));
            let z = when(feature(i).is_null(), lit(ScalarValue::Float64(None)))
                .when(sd.clone().eq(lit(0.0f64)), lit(0.0f64))
                .otherwise((feature(i) - col(format!("__mean{i}"))) / sd)?;
            standardized.push(z.alias(format!("__z{i}")));
        }
        plan = plan.project(standardized)?;
        // The seed's centroid: each z-score averaged over the seed's members.
        let mut centroid = Vec::new();
        for i in 0..features.len() {
            let member_z = when(col("__seed"), col(format!("__z{i}"))).end()?;
            centroid.push(over_all(avg_udaf(), member_z).alias(format!("__c{i}")));
        }
        plan = plan.window(centroid)?;
        let squares = (0..features.len())
            .map(|i| {
                let difference = col(format!("__z{i}")) - col(format!("__c{i}"));
                difference.clone() * difference
            })
            .reduce(|a, b| a + b)
            .unwrap_or_else(|| lit(0.0f64));
        plan = plan.project(vec![
            col("__key"),
            col("__seed"),
            // Rounded, so distances equal but for the rounding of the statistics (computed in
            // another order on another engine) tie, and the tie goes to the smaller key.
            round(vec![sqrt(squares), lit(DISTANCE_DECIMALS)]).alias("__distance"),
        ])?;
        // Non-members with a distance are ranked, nearest first; the others are in a
        // partition whose count of ranked profiles is 0.
        ranking_relation(
            plan,
            id,
            alias,
            RankWindow {
                key: col("__key"),
                position: row_number(),
                partition: col("__seed").or(col("__distance").is_null()),
                order: vec![
                    col("__distance").sort(true, false),
                    col("__key").sort(true, false),
                ],
                counted: when(Expr::Not(Box::new(col("__seed"))), col("__distance")).end()?,
            },
        )
    }

    /// Scans `table`, keeping `columns` (and the time column) with normalized types.
    fn normalized_scan(
        &self,
        table: &TableSchema,
        columns: &BTreeSet<String>,
        key_type: Option<&Type>,
    ) -> Result<LogicalPlanBuilder> {
        self.normalized_scan_keeping(table, columns, key_type, None)
    }

    /// Like [`Planner::normalized_scan`], also keeping the column `raw` as stored, as
    /// [`RAW_TIME`].
    fn normalized_scan_keeping(
        &self,
        table: &TableSchema,
        columns: &BTreeSet<String>,
        key_type: Option<&Type>,
        raw: Option<&str>,
    ) -> Result<LogicalPlanBuilder> {
        let source = self.tables.get(&table.name)?;
        let source_schema = source.schema();
        let mut projection = Vec::new();
        for name in columns {
            let language = if key_type.is_some() && *name == table.key {
                key_type.cloned()
            } else {
                table.column(name).and_then(|c| c.ty.clone())
            };
            let column = col(Column::new(Some(table.name.as_str()), name.as_str()));
            let source_type = source_schema
                .field_with_name(name)
                .map(|f| f.data_type().clone())
                .ok();
            let expr = match (language, source_type) {
                (Some(language), Some(source_type)) if needs_cast(&source_type, &language) => {
                    cast(column, arrow_type(&language))
                }
                _ => column,
            };
            projection.push(expr.alias(name.as_str()));
        }
        if let Some(raw) = raw {
            projection.push(col(Column::new(Some(table.name.as_str()), raw)).alias(RAW_TIME));
        }
        LogicalPlanBuilder::scan(table.name.as_str(), source, None)?.project(projection)
    }

    /// One grouped pass over an event table computing the given measures per key.
    fn measure_pass(
        &self,
        event: &str,
        ids: &[usize],
        profile_key_type: &Type,
    ) -> Result<LogicalPlan> {
        let table = self.event_table(event)?;
        let time_name = table.time.clone().unwrap_or_default();
        let columns = self.pass_columns(table, ids);
        let time = self.time_column(table)?;
        let bounds = self.scan_bounds(ids);
        let scan_filter = self.scan_filter(&time, &bounds)?;
        let mut aggregates = Vec::new();
        for &id in ids {
            aggregates.push(
                self.measure_aggregate(id, &time, &bounds)?
                    .alias(measure_column(id)),
            );
        }
        let key = col(Column::from_name(table.key.as_str())).alias("__key");
        let raw = time.is_raw().then_some(time_name.as_str());
        let scan = self.normalized_scan_keeping(table, &columns, Some(profile_key_type), raw)?;
        scan.filter(scan_filter)?
            .aggregate(vec![key], aggregates)?
            .alias(measure_alias(event))?
            .build()
    }

    /// `first` or `last` in a pass of its own, for SQL engines without an ordered
    /// `first_value` aggregate: the earliest (latest) matching time per key, then the
    /// smallest (largest) non-null value among the events at that time.
    fn edge_pass(&self, id: usize, alias: &str, profile_key_type: &Type) -> Result<LogicalPlan> {
        let measure = &self.program.measures[id];
        let first = measure.aggregate == Aggregate::First;
        let (table, events) = self.single_measure_events(id, profile_key_type)?;
        let time_name = table.time.clone().unwrap_or_default();
        let value_name = measure.column.clone().unwrap_or_default();
        let events = events
            .project(vec![
                col(Column::from_name(table.key.as_str())).alias("__key"),
                col(Column::from_name(time_name.as_str())).alias("__t"),
                col(Column::from_name(value_name.as_str())).alias("__v"),
            ])?
            .build()?;
        let edge = |e: Expr| if first { min(e) } else { max(e) };
        let edges = LogicalPlanBuilder::from(events.clone())
            .aggregate(vec![col("__key")], vec![edge(col("__t")).alias("__edge")])?
            .alias("__edges")?
            .build()?;
        LogicalPlanBuilder::from(events)
            .alias("__events")?
            .join(
                edges,
                JoinType::Inner,
                (
                    vec![
                        Column::new(Some("__events"), "__key"),
                        Column::new(Some("__events"), "__t"),
                    ],
                    vec![
                        Column::new(Some("__edges"), "__key"),
                        Column::new(Some("__edges"), "__edge"),
                    ],
                ),
                None,
            )?
            .aggregate(
                vec![col(Column::new(Some("__events"), "__key")).alias("__key")],
                vec![edge(col(Column::new(Some("__events"), "__v"))).alias(measure_column(id))],
            )?
            .alias(alias)?
            .build()
    }

    /// An aggregate over distinct values in a pass of its own: the matching events grouped
    /// by key and value, then counted (`count(distinct)`, `active_*`), reduced to the most
    /// frequent value (`mode`) or listed (`distinct_list`) per key. DataFusion's
    /// `count(DISTINCT)` keeps a hash set per group, which takes gigabytes for a million
    /// customers; two grouped passes take megabytes.
    fn value_pass(&self, id: usize, alias: &str, profile_key_type: &Type) -> Result<LogicalPlan> {
        let measure = &self.program.measures[id];
        let (table, events) = self.single_measure_events(id, profile_key_type)?;
        let value = self.distinct_value(measure, table.time.as_deref().unwrap_or_default())?;
        // Each profile's distinct values (a distinct count skips the null group itself),
        // with how often each occurs where the mode needs it.
        let (events, occurrences) = match measure.aggregate {
            Aggregate::CountDistinct | Aggregate::Active(_) | Aggregate::ActivePeriods(_) => {
                (events, vec![])
            }
            Aggregate::Mode => (
                events.filter(value.clone().is_not_null())?,
                vec![count(lit(1i64)).alias("__occurrences")],
            ),
            _ => (events.filter(value.clone().is_not_null())?, vec![]),
        };
        let mut pairs = events.aggregate(
            vec![
                col(Column::from_name(table.key.as_str())).alias("__key"),
                value.clone().alias("__value"),
            ],
            occurrences,
        )?;
        if self.portable {
            // The unparser merges two stacked aggregates into one SELECT; a derived table
            // keeps the distinct pairs a query of their own.
            pairs = pairs.alias("__distinct")?;
        }
        let ascending = || col("__value").sort(true, false);
        let aggregate = match measure.aggregate {
            Aggregate::Mode => {
                // The first value by occurrences, then value: a window rather than an ordered
                // `first_value`, whose order other engines' SQL would not keep.
                let place = row_number()
                    .partition_by(vec![col("__key")])
                    .order_by(vec![col("__occurrences").sort(false, false), ascending()])
                    .build()?;
                return pairs
                    .window(vec![place.alias("__place")])?
                    .filter(col("__place").eq(lit(1i64)))?
                    .project(vec![col("__key"), col("__value").alias(measure_column(id))])?
                    .alias(alias)?
                    .build();
            }
            // Other engines' SQL orders inside the aggregate. DataFusion's ordered
            // `array_agg` keeps the ordering for every row and merges it: 24 s and 3 GB
            // over the views of 1M customers, where sorting each finished list takes 0.8 s.
            Aggregate::DistinctList if self.portable => array_agg(col("__value"))
                .order_by(vec![ascending()])
                .build()?,
            Aggregate::DistinctList => {
                array_sort(array_agg(col("__value")), lit("ASC"), lit("NULLS LAST"))
            }
            _ => count(col("__value")),
        };
        pairs
            .aggregate(
                vec![col("__key")],
                vec![aggregate.alias(measure_column(id))],
            )?
            .alias(alias)?
            .build()
    }

    /// The value whose distinct values an aggregate over them takes, per event: the
    /// measured column, or for `active_*` the calendar unit each event falls in, and for
    /// `active_periods` the period counted back from now, of the normalized time column
    /// `time`.
    fn distinct_value(&self, measure: &Measure, time: &str) -> Result<Expr> {
        let time = || col(Column::from_name(time));
        Ok(match (measure.aggregate, &measure.column) {
            (Aggregate::Active(unit), _) => date_trunc(lit(unit.name()), time()),
            (Aggregate::ActivePeriods(period), _) => self.period_index(time(), period)?,
            (_, column) => col(Column::from_name(column.clone().unwrap_or_default())),
        })
    }

    /// [`period_index`] of the normalized time column `time`: exact nanoseconds in
    /// DataFusion; in SQL for other engines `max(ceil((now - t) / P) - 1, 0)` over epoch
    /// seconds, which is the same period for times stored to the microsecond.
    fn period_index(&self, time: Expr, period: i64) -> Result<Expr> {
        if !self.portable {
            let nanoseconds = cast(time, DataType::Int64);
            return Ok((lit(self.as_of.saturating_sub(1)) - nanoseconds) / lit(period));
        }
        let seconds = |ns: i64| lit(ns as f64 / 1e9);
        let elapsed = seconds(self.as_of) - date_part(lit("epoch"), time);
        let index = cast(ceil(elapsed / seconds(period)), DataType::Int64) - lit(1i64);
        // A CASE rather than `greatest`, which SQLite lacks.
        when(index.clone().lt(lit(0i64)), lit(0i64)).otherwise(index)
    }

    /// The events one measure aggregates, for a pass of its own: its window and filter are
    /// the whole scan filter. Also returns the measure's event table.
    fn single_measure_events(
        &self,
        id: usize,
        profile_key_type: &Type,
    ) -> Result<(&'a TableSchema, LogicalPlanBuilder)> {
        let table = self.event_table(&self.program.measures[id].event)?;
        let time_name = table.time.clone().unwrap_or_default();
        let time = self.time_column(table)?;
        let condition = self.scan_filter(&time, &self.scan_bounds(&[id]))?;
        let raw = time.is_raw().then_some(time_name.as_str());
        let columns = self.pass_columns(table, &[id]);
        let events = self
            .normalized_scan_keeping(table, &columns, Some(profile_key_type), raw)?
            .filter(condition)?;
        Ok((table, events))
    }

    fn event_table(&self, event: &str) -> Result<&'a TableSchema> {
        self.catalog
            .event(event)
            .ok_or_else(|| DataFusionError::Plan(format!("unknown event table `{event}`")))
    }

    /// The columns a pass over `table` reads for the measures `ids`: the key, the time,
    /// the measured columns and the columns their filters use.
    fn pass_columns(&self, table: &TableSchema, ids: &[usize]) -> BTreeSet<String> {
        let time_name = table.time.clone().unwrap_or_default();
        let mut columns = BTreeSet::from([table.key.clone(), time_name]);
        for &id in ids {
            let measure = &self.program.measures[id];
            if let Some(column) = &measure.column {
                columns.insert(column.clone());
            }
            if let Some(filter) = &measure.filter {
                collect_event_columns(filter, &mut columns);
            }
        }
        columns
    }

    /// The time column of an event table as window conditions compare it.
    fn time_column(&self, table: &TableSchema) -> Result<TimeColumn> {
        let time_name = table.time.clone().unwrap_or_default();
        let stored = self
            .tables
            .get(&table.name)?
            .schema()
            .field_with_name(&time_name)
            .map(|f| f.data_type().clone())
            .ok();
        Ok(TimeColumn::new(&time_name, stored.as_ref()))
    }

    /// The `WHERE` of a pass: events after `now` never count, and the bounds shared by all
    /// its measures apply in the scan too, so Parquet row groups outside every window are
    /// skipped.
    fn scan_filter(&self, time: &TimeColumn, bounds: &ScanBounds) -> Result<Expr> {
        let mut filter = time.at_most(self.as_of);
        if let Some(start) = bounds.start {
            filter = filter.and(time.at_least(start));
        }
        if let Some(end) = bounds.end {
            filter = filter.and(time.before(end));
        }
        if let Some(shared) = &bounds.filter {
            filter = filter.and(expr::lower_event(shared, self.as_of, self.portable)?);
        }
        Ok(filter)
    }

    /// The time range of a grouped pass: the earliest start of the measures' windows when
    /// they all have one, and the latest end when they all have one; and the event filter
    /// when every measure has the same one.
    fn scan_bounds(&self, ids: &[usize]) -> ScanBounds {
        let windows = ids.iter().map(|&id| &self.program.measures[id].window);
        let starts: Option<Vec<i64>> = windows
            .clone()
            .map(|w| w.start.map(|s| s.resolve(self.as_of)))
            .collect();
        let ends: Option<Vec<i64>> = windows
            .map(|w| w.end.map(|e| e.resolve(self.as_of)))
            .collect();
        let first_filter = ids
            .first()
            .and_then(|&id| self.program.measures[id].filter.as_ref());
        let same_filter = ids
            .iter()
            .all(|&id| self.program.measures[id].filter.as_ref() == first_filter);
        ScanBounds {
            start: starts.and_then(|s| s.into_iter().min()),
            end: ends.and_then(|e| e.into_iter().max()),
            filter: first_filter.filter(|_| same_filter).cloned(),
        }
    }

    /// One measure as an aggregate of its pass. The window bounds and the event filter the
    /// scan already applies are left out of its `FILTER`, so a pass whose measures share
    /// them aggregates plainly.
    fn measure_aggregate(&self, id: usize, time: &TimeColumn, scan: &ScanBounds) -> Result<Expr> {
        let measure = &self.program.measures[id];
        // The window's bounds first: comparing times is cheap and usually leaves few rows,
        // and `AND` evaluates its right side over the rows its left side leaves undecided.
        let mut conditions = Vec::new();
        if let Some(start) = measure.window.start.map(|s| s.resolve(self.as_of))
            && scan.start != Some(start)
        {
            conditions.push(time.at_least(start));
        }
        if let Some(end) = measure.window.end.map(|e| e.resolve(self.as_of))
            && scan.end != Some(end)
        {
            conditions.push(time.before(end));
        }
        if let Some(filter) = &measure.filter
            && scan.filter.as_ref() != Some(filter)
        {
            conditions.push(expr::lower_event(filter, self.as_of, self.portable)?);
        }
        let condition = conditions.into_iter().reduce(Expr::and);
        let column_name = measure.column.clone().unwrap_or_default();
        let value = || col(Column::from_name(column_name.as_str()));
        // Engines without `FILTER` (MySQL, BigQuery) take a value only where the condition
        // holds: `count(CASE WHEN c THEN 1 END)`, `sum(CASE WHEN c THEN x END)`.
        let in_case = if self.portable {
            condition.clone()
        } else {
            None
        };
        let only_matching = |e: Expr| match &in_case {
            Some(c) => when(c.clone(), e).end(),
            None => Ok(e),
        };
        let aggregate = match measure.aggregate {
            // Whether any event matches: the condition itself, no filter (see
            // `expr::exists_as_bool`).
            Aggregate::Exists if expr::exists_as_bool(self.own_aggregates) => {
                return Ok(any_true::any_true(condition.unwrap_or_else(|| lit(true))));
            }
            Aggregate::Exists | Aggregate::Count => count(only_matching(lit(1))?),
            Aggregate::CountValues => count(only_matching(value())?),
            // In this process only (see `has_value_pass`).
            Aggregate::CountDistinct | Aggregate::Active(_) | Aggregate::ActivePeriods(_)
                if self.own_aggregates =>
            {
                count_distinct::count_distinct(self.distinct_value(measure, &time.name)?)
            }
            Aggregate::CountDistinct
            | Aggregate::Mode
            | Aggregate::DistinctList
            | Aggregate::Active(_)
            | Aggregate::ActivePeriods(_) => {
                return Err(DataFusionError::Internal(
                    "an aggregate over distinct values has a pass of its own".into(),
                ));
            }
            Aggregate::Sum => sum(only_matching(value())?),
            Aggregate::Avg => avg(only_matching(value())?),
            Aggregate::Min => min(only_matching(value())?),
            Aggregate::Max => max(only_matching(value())?),
            // The earliest (latest) time is the smallest (largest) one.
            Aggregate::First if column_name == time.name => min(only_matching(value())?),
            Aggregate::Last if column_name == time.name => max(only_matching(value())?),
            // The value at the earliest (latest) matching event, ties to the smallest
            // (largest) value; only in plans with no edge passes (see `has_edge_pass`). The
            // stored time column orders events as the normalized one does.
            Aggregate::First => edge::edge_value(edge::Edge::First, value(), time.column.clone()),
            Aggregate::Last => edge::edge_value(edge::Edge::Last, value(), time.column.clone()),
        };
        match condition {
            Some(condition) if in_case.is_none() => aggregate.filter(condition).build(),
            _ => Ok(aggregate),
        }
    }
}

/// `condition` as a filter, which keeps the rows it is TRUE for: without the `is true` of
/// the segment references it reaches through `and` and `or` alone
/// ([`TypedExpr::for_each_and_or_operand`]), which keeps the same rows. DataFusion would
/// evaluate a referenced condition twice for its `coalesce(c, false)`, as
/// `c IS NOT NULL AND c`.
fn as_filter(condition: &TypedExpr) -> TypedExpr {
    let mut filter = condition.clone();
    strip_is_true(&mut filter);
    filter
}

fn strip_is_true(expr: &mut TypedExpr) {
    expr.for_each_and_or_operand(&mut |operand| {
        if let IrExpr::IsTrue(inner) = &operand.kind {
            let mut inner = inner.as_ref().clone();
            strip_is_true(&mut inner);
            *operand = inner;
        }
    });
}

/// The decimals a lookalike's distances are compared at.
pub const DISTANCE_DECIMALS: i64 = 9;

/// How a ranking relation places the profiles of its input.
struct RankWindow {
    /// The profile key in the input.
    key: Expr,
    /// The ranking window function: `row_number()` or `percent_rank()`.
    position: Expr,
    /// Partitions the ranked profiles from the others.
    partition: Expr,
    order: Vec<SortExpr>,
    /// Its non-null values over the partition are the number of ranked profiles (0 in the
    /// partition of the others).
    counted: Expr,
}

/// Ranking `id` as the relation `alias` of (`__key`, [`rank_column`], [`ranked_column`])
/// over `input`: one window node, as both columns share the partitioning and the order
/// (the count's frame is the whole partition).
fn ranking_relation(
    input: LogicalPlanBuilder,
    id: usize,
    alias: &str,
    window: RankWindow,
) -> Result<LogicalPlan> {
    let partition = vec![window.partition];
    let position = window
        .position
        .partition_by(partition.clone())
        .order_by(window.order.clone())
        .build()?;
    let whole_partition = WindowFrame::new_bounds(
        WindowFrameUnits::Rows,
        WindowFrameBound::Preceding(ScalarValue::UInt64(None)),
        WindowFrameBound::Following(ScalarValue::UInt64(None)),
    );
    let ranked = Expr::from(WindowFunction::new(count_udaf(), vec![window.counted]))
        .partition_by(partition)
        .order_by(window.order)
        .window_frame(whole_partition)
        .build()?;
    input
        .window(vec![
            position.alias(rank_column(id)),
            ranked.alias(ranked_column(id)),
        ])?
        .project(vec![
            window.key.alias("__key"),
            col(rank_column(id)),
            col(ranked_column(id)),
        ])?
        .alias(alias)?
        .build()
}

/// The alias of an event table's time column as stored, next to its normalized copy.
const RAW_TIME: &str = "__time";

/// An event table's time column as window conditions compare it. A UTC timestamp of any
/// unit is compared as stored, with each bound rounded to its unit in the direction that
/// keeps the comparison exact, so no row is cast and Parquet pruning sees the plain column.
/// Any other type (dates, text declared `timestamp`) is compared in its normalized form.
struct TimeColumn {
    /// The normalized column's name.
    name: String,
    column: Expr,
    /// Nanoseconds per unit of the compared column.
    unit: i64,
    tz: Option<Arc<str>>,
    raw: bool,
}

impl TimeColumn {
    fn new(name: &str, stored: Option<&DataType>) -> TimeColumn {
        let normalized = || TimeColumn {
            name: name.to_string(),
            column: col(Column::from_name(name)),
            unit: 1,
            tz: None,
            raw: false,
        };
        let Some(DataType::Timestamp(unit, tz)) = stored else {
            return normalized();
        };
        let is_utc = tz
            .as_deref()
            .is_none_or(|tz| matches!(tz, "UTC" | "utc" | "Z" | "+00:00" | "Etc/UTC"));
        if !is_utc || (*unit == TimeUnit::Nanosecond && tz.is_none()) {
            return normalized();
        }
        let unit = match unit {
            TimeUnit::Second => 1_000_000_000,
            TimeUnit::Millisecond => 1_000_000,
            TimeUnit::Microsecond => 1_000,
            TimeUnit::Nanosecond => 1,
        };
        TimeColumn {
            name: name.to_string(),
            column: col(RAW_TIME),
            unit,
            tz: tz.clone(),
            raw: true,
        }
    }

    fn is_raw(&self) -> bool {
        self.raw
    }

    fn literal(&self, value: i64) -> Expr {
        let (value, tz) = (Some(value), self.tz.clone());
        lit(match self.unit {
            1 => ScalarValue::TimestampNanosecond(value, tz),
            1_000 => ScalarValue::TimestampMicrosecond(value, tz),
            1_000_000 => ScalarValue::TimestampMillisecond(value, tz),
            _ => ScalarValue::TimestampSecond(value, tz),
        })
    }

    /// `time <= ns`: `t * unit <= ns` holds exactly when `t <= floor(ns / unit)`.
    fn at_most(&self, ns: i64) -> Expr {
        let bound = ns.div_euclid(self.unit);
        self.column.clone().lt_eq(self.literal(bound))
    }

    /// `time >= ns`: `t * unit >= ns` holds exactly when `t >= ceil(ns / unit)`.
    fn at_least(&self, ns: i64) -> Expr {
        self.column.clone().gt_eq(self.literal(self.ceil(ns)))
    }

    /// `time < ns`: `t * unit < ns` holds exactly when `t < ceil(ns / unit)`.
    fn before(&self, ns: i64) -> Expr {
        self.column.clone().lt(self.literal(self.ceil(ns)))
    }

    fn ceil(&self, ns: i64) -> i64 {
        ns.div_euclid(self.unit) + i64::from(ns.rem_euclid(self.unit) != 0)
    }
}

/// What every event of a grouped pass satisfies, besides `time <= now`.
struct ScanBounds {
    /// `time >= start`
    start: Option<i64>,
    /// `time < end`
    end: Option<i64>,
    /// The event filter every measure of the pass has.
    filter: Option<TypedExpr>,
}

/// Whether a source column must be cast to be used as `language`.
fn needs_cast(source: &DataType, language: &Type) -> bool {
    match language {
        // Strings of any encoding compare with each other; dictionaries are decoded.
        Type::String => !matches!(
            source,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ),
        // Lists are used as they are.
        Type::List(_) => !matches!(
            source,
            DataType::List(_)
                | DataType::LargeList(_)
                | DataType::FixedSizeList(..)
                | DataType::ListView(_)
        ),
        other => *source != arrow_type(other),
    }
}

/// The relation holding a measure's column: the grouped pass of its event table, or, for
/// an aggregate over distinct values and for `first` and `last` in edge passes (see
/// [`has_edge_pass`]), a pass of its own.
pub fn measure_relation(id: usize, measure: &Measure, own_aggregates: bool) -> String {
    if has_value_pass(measure, own_aggregates) || has_edge_pass(measure, own_aggregates) {
        format!("__m_{}_{id}", measure.event)
    } else {
        measure_alias(&measure.event)
    }
}

/// Whether an aggregate over distinct values is computed in a pass of its own (the
/// events grouped by key and value, then by key) rather than in the grouped pass.
///
/// In this process distinct counts (`count(distinct)`, `active_*`) are SegQL's own
/// aggregate ([`count_distinct`]) in the grouped pass, which spares a scan of the event
/// table per distinct count; the mode and `distinct_list` always have a pass of their own.
pub fn has_value_pass(measure: &Measure, own_aggregates: bool) -> bool {
    measure.aggregate.groups_values() && !(own_aggregates && counts_distinct(measure.aggregate))
}

/// Whether `aggregate` counts distinct values (of a column, of calendar units, of periods).
fn counts_distinct(aggregate: Aggregate) -> bool {
    matches!(
        aggregate,
        Aggregate::CountDistinct | Aggregate::Active(_) | Aggregate::ActivePeriods(_)
    )
}

/// Whether `first` or `last` is computed in an edge pass of its own (the earliest or
/// latest time per key, then the value at it) rather than in the grouped pass.
///
/// SQL engines other than DataFusion, and Ballista's executors, have no aggregate that
/// takes the value at the earliest event; DataFusion's ordered `first_value` keeps each
/// group's ordering as a row of boxed values (more than a second per measure over a
/// million customers). In this process SegQL's own aggregate ([`edge`]) takes it in the
/// grouped pass; elsewhere an edge pass computes it from two plain aggregates and a join.
pub fn has_edge_pass(measure: &Measure, own_aggregates: bool) -> bool {
    matches!(measure.aggregate, Aggregate::First | Aggregate::Last) && !own_aggregates
}

pub fn measure_alias(event: &str) -> String {
    format!("__m_{event}")
}

pub fn measure_column(id: usize) -> String {
    format!("m{id}")
}

/// The profile columns, measures, rankings and sequences an expression reads.
fn collect_uses(
    expr: &TypedExpr,
    columns: &mut BTreeSet<String>,
    measures: &mut BTreeSet<usize>,
    rankings: &mut BTreeSet<usize>,
    sequences: &mut BTreeSet<usize>,
) {
    expr::visit(expr, &mut |e| match &e.kind {
        IrExpr::ProfileColumn(name) => {
            columns.insert(name.clone());
        }
        IrExpr::Measure(id) => {
            measures.insert(*id);
        }
        IrExpr::Rank(id) => {
            rankings.insert(*id);
        }
        IrExpr::Sequence(id) => {
            sequences.insert(*id);
        }
        _ => {}
    });
}

fn collect_event_columns(expr: &TypedExpr, columns: &mut BTreeSet<String>) {
    expr::visit(expr, &mut |e| {
        if let IrExpr::EventColumn(name) = &e.kind {
            columns.insert(name.clone());
        }
    });
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Session;
    use crate::catalog::Catalog;
    use crate::check::display;

    /// A catalog of profiles and two event tables for tests of the planner's analyses.
    const CATALOG: &str = r#"
[profiles]
source = "customers.parquet"
key = "customer_id"
columns = { customer_id = "int", age = "int" }

[events.purchased]
source = "purchased.parquet"
key = "customer_id"
time = "ts"
columns = { customer_id = "int", ts = "timestamp", amount = "float", category = "string" }

[events.viewed]
source = "viewed.parquet"
key = "customer_id"
time = "ts"
columns = { customer_id = "int", ts = "timestamp" }
"#;

    /// A session over [`CATALOG`], without data.
    pub(crate) async fn session() -> Session {
        let catalog = Catalog::parse(CATALOG, std::path::Path::new("segql.toml"), 0)
            .unwrap_or_else(|d| panic!("{d:?}"));
        Session::without_data(catalog)
            .await
            .unwrap_or_else(|report| panic!("{report}"))
    }

    /// `condition` checked against [`CATALOG`], and the program holding its measures.
    pub(crate) async fn checked(condition: &str) -> (TypedExpr, Program) {
        let mut session = session().await;
        let typed = session
            .check_condition("<test>", condition)
            .unwrap_or_else(|report| panic!("{report}"));
        (typed, session.program().clone())
    }

    fn bound(expr: Expr) -> (String, i64) {
        let Expr::BinaryExpr(binary) = expr else {
            panic!("a comparison: {expr}");
        };
        let Expr::Literal(ScalarValue::TimestampMicrosecond(Some(value), _), _) = *binary.right
        else {
            panic!("a microsecond literal: {}", binary.right);
        };
        (binary.op.to_string(), value)
    }

    #[test]
    fn stored_time_bounds_round_towards_exact_comparisons() {
        let stored = DataType::Timestamp(TimeUnit::Microsecond, None);
        let time = TimeColumn::new("ts", Some(&stored));
        assert!(time.is_raw());
        // t µs <= 1500 ns  <=>  t <= 1;  t µs >= 1500 ns  <=>  t >= 2;  t µs < 1500 ns  <=>  t < 2
        assert_eq!(bound(time.at_most(1_500)), ("<=".into(), 1));
        assert_eq!(bound(time.at_least(1_500)), (">=".into(), 2));
        assert_eq!(bound(time.before(1_500)), ("<".into(), 2));
        // Aligned bounds are unchanged, and negative times round the same way.
        assert_eq!(bound(time.at_most(3_000)), ("<=".into(), 3));
        assert_eq!(bound(time.at_least(3_000)), (">=".into(), 3));
        assert_eq!(bound(time.at_most(-1_500)), ("<=".into(), -2));
        assert_eq!(bound(time.at_least(-1_500)), (">=".into(), -1));
    }

    #[tokio::test]
    async fn a_filter_drops_the_is_true_of_segments_reached_through_and_and_or_only() {
        let (old, _) = checked("age > 60").await;
        let (young, _) = checked("age < 20").await;
        let is_true = |e: TypedExpr| TypedExpr {
            span: e.span,
            ty: Type::Bool,
            kind: IrExpr::IsTrue(Box::new(e)),
        };
        let binary = |op: BinaryOp, lhs: TypedExpr, rhs: TypedExpr| TypedExpr {
            span: lhs.span,
            ty: Type::Bool,
            kind: IrExpr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
        };
        let not = |e: TypedExpr| TypedExpr {
            span: e.span,
            ty: Type::Bool,
            kind: IrExpr::Not(Box::new(e)),
        };
        // (in old or in young) and not in young
        let condition = binary(
            BinaryOp::And,
            binary(BinaryOp::Or, is_true(old.clone()), is_true(young.clone())),
            not(is_true(young.clone())),
        );
        assert_eq!(
            display::expr(&as_filter(&condition)),
            "(((age > 60) or (age < 20)) and (not ((age < 20) is true)))"
        );
        // A reference of a reference loses both.
        let nested = is_true(binary(BinaryOp::And, is_true(old), young));
        assert_eq!(
            display::expr(&as_filter(&nested)),
            "((age > 60) and (age < 20))"
        );
    }

    #[test]
    fn other_time_types_are_compared_normalized() {
        for stored in [
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            DataType::Timestamp(TimeUnit::Microsecond, Some("+02:00".into())),
            DataType::Date32,
            DataType::Utf8,
        ] {
            assert!(!TimeColumn::new("ts", Some(&stored)).is_raw(), "{stored}");
        }
    }
}
