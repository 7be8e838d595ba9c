//! SQL for other engines: a segment's logical plan, unparsed by DataFusion's SQL unparser
//! in the dialect of the target engine.
//!
//! The plan is the unoptimized one the planner builds (filters above joins, an explicit
//! final projection: the shape the unparser handles). Tables are named by their catalog
//! names, optionally qualified with a schema or given a prefix.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::TimeUnit;
use datafusion::common::TableReference;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, TableScan};
use datafusion::sql::sqlparser::ast::{self, BinaryOperator};
use datafusion::sql::unparser::Unparser;
use datafusion::sql::unparser::dialect::{
    BigQueryDialect, CharacterLengthStyle, DateFieldExtractStyle, Dialect, DistinctFromStyle,
    DuckDBDialect, IntervalStyle, MySqlDialect, PostgreSqlDialect, SqliteDialect,
};

/// The engines SegQL writes SQL for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum SqlDialect {
    #[default]
    Postgres,
    Duckdb,
    Mysql,
    Sqlite,
    Bigquery,
}

impl SqlDialect {
    pub const ALL: [SqlDialect; 5] = [
        SqlDialect::Postgres,
        SqlDialect::Duckdb,
        SqlDialect::Mysql,
        SqlDialect::Sqlite,
        SqlDialect::Bigquery,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SqlDialect::Postgres => "postgres",
            SqlDialect::Duckdb => "duckdb",
            SqlDialect::Mysql => "mysql",
            SqlDialect::Sqlite => "sqlite",
            SqlDialect::Bigquery => "bigquery",
        }
    }
}

impl fmt::Display for SqlDialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the catalog's tables live in the target database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableNaming {
    /// A schema (or BigQuery dataset) qualifying every table: `schema.table`.
    pub schema: Option<String>,
    /// Prepended to every table name: `prefix` + `table`.
    pub prefix: Option<String>,
}

impl TableNaming {
    fn reference(&self, table: &str) -> TableReference {
        let name = format!("{}{table}", self.prefix.as_deref().unwrap_or(""));
        match &self.schema {
            Some(schema) => TableReference::partial(schema.as_str(), name),
            None => TableReference::bare(name),
        }
    }
}

/// The SQL text of `plan` for `dialect`, its tables renamed by `naming`.
pub fn plan_to_sql(
    plan: &LogicalPlan,
    dialect: SqlDialect,
    naming: &TableNaming,
) -> Result<String> {
    let plan = rename_tables(plan.clone(), naming)?;
    let (postgres, duckdb, mysql, sqlite, bigquery) = (
        PostgreSqlDialect {},
        DuckDBDialect::new(),
        MySqlDialect {},
        SqliteDialect {},
        BigQueryDialect {},
    );
    let base: &dyn Dialect = match dialect {
        SqlDialect::Postgres => &postgres,
        SqlDialect::Duckdb => &duckdb,
        SqlDialect::Mysql => &mysql,
        SqlDialect::Sqlite => &sqlite,
        SqlDialect::Bigquery => &bigquery,
    };
    let target = Target {
        kind: dialect,
        base,
    };
    Ok(Unparser::new(&target).plan_to_sql(&plan)?.to_string())
}

/// Points every table scan at the table's name in the target database.
fn rename_tables(plan: LogicalPlan, naming: &TableNaming) -> Result<LogicalPlan> {
    if naming == &TableNaming::default() {
        return Ok(plan);
    }
    plan.transform_up(|node| match node {
        LogicalPlan::TableScan(scan) => {
            let name = scan.table_name.clone();
            let renamed = LogicalPlan::TableScan(TableScan {
                table_name: naming.reference(name.table()),
                ..scan
            });
            // Columns stay qualified by the catalog name: `FROM prefix_t AS t`.
            LogicalPlanBuilder::from(renamed)
                .alias(name)?
                .build()
                .map(Transformed::yes)
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

/// The target dialect: DataFusion's for `base`, with SegQL's rewrites of the functions the
/// engine names or lacks.
struct Target<'d> {
    kind: SqlDialect,
    base: &'d dyn Dialect,
}

/// Whether a table or column name can be quoted as an identifier in every dialect. The
/// unparser quotes names with sqlparser, whose escaping has the flaw `string_literal`
/// describes, so SegQL refuses names holding a quote or a backslash instead.
pub fn quotable(name: &str) -> bool {
    !name.contains(['"', '`', '\\', '\''])
}

/// SQL text the unparser prints as it is: an identifier without quotes.
fn verbatim(text: String) -> ast::Expr {
    ast::Expr::Identifier(ast::Ident::new(text))
}

/// A string literal in the target's syntax. sqlparser's own escaping leaves a quote after
/// a backslash, or a doubled quote, as it is (it takes them for escapes already made), so
/// `\'; drop table x; --` would end the literal: SegQL escapes every literal itself.
pub fn string_literal(dialect: SqlDialect, value: &str) -> String {
    match dialect {
        // Standard SQL: a quote is doubled, a backslash is an ordinary character.
        SqlDialect::Postgres | SqlDialect::Duckdb | SqlDialect::Sqlite => {
            format!("'{}'", value.replace('\'', "''"))
        }
        // MySQL and MariaDB (by default) and BigQuery treat a backslash as an escape.
        SqlDialect::Mysql | SqlDialect::Bigquery => {
            let mut out = String::with_capacity(value.len() + 2);
            out.push('\'');
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\'' => out.push_str("\\'"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\0' => out.push_str("\\0"),
                    c => out.push(c),
                }
            }
            out.push('\'');
            out
        }
    }
}

/// Whether the JSON list `list` holds any (or all) of `items`; null when `list` is null.
fn json_list_has(kind: SqlDialect, list: &str, items: &[String], any: bool) -> String {
    let joiner = if any { " OR " } else { " AND " };
    let tests: Vec<String> = items
        .iter()
        .map(|item| match kind {
            SqlDialect::Mysql => format!("json_contains({list}, json_array({item}))"),
            _ => format!("EXISTS (SELECT 1 FROM json_each({list}) WHERE value = {item})"),
        })
        .collect();
    format!(
        "CASE WHEN {list} IS NULL THEN NULL ELSE ({}) END",
        tests.join(joiner)
    )
}

impl Target<'_> {
    /// SegQL's rewrite of a call, as SQL text, if the target needs one.
    fn rewrite(&self, name: &str, args: &[String]) -> Option<String> {
        use SqlDialect::*;
        let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("NULL");
        let (a, b) = (arg(0), arg(1));
        Some(match (self.kind, name) {
            // `trim` removes ASCII whitespace (`btrim(s, chars)` in DataFusion).
            (Duckdb | Sqlite, "btrim") => format!("trim({a}, {b})"),
            (Mysql, "btrim") => {
                format!("regexp_replace({a}, '^[[:space:]]+|[[:space:]]+$', '')")
            }
            (Postgres, "contains") => format!("strpos({a}, {b}) > 0"),
            (Mysql, "contains") => format!("locate({b}, {a}) > 0"),
            (Sqlite, "contains") => format!("instr({a}, {b}) > 0"),
            (Mysql, "starts_with") => format!("left({a}, char_length({b})) = {b}"),
            (Sqlite, "starts_with") => format!("substr({a}, 1, length({b})) = {b}"),
            (Postgres | Mysql, "ends_with") => format!("right({a}, char_length({b})) = {b}"),
            (Sqlite, "ends_with") => {
                format!("substr({a}, length({a}) - length({b}) + 1) = {b}")
            }
            // `matches`: the pattern matches anywhere in the string.
            (Postgres, "regexp_like") => format!("{a} ~ {b}"),
            (Duckdb, "regexp_like") => format!("regexp_matches({a}, {b})"),
            (Mysql, "regexp_like") => format!("{a} REGEXP {b}"),
            (Bigquery, "regexp_like") => format!("regexp_contains({a}, {b})"),
            // `date_trunc(unit, t)` for MySQL, which has none.
            (Mysql, "date_trunc") => match a.trim_matches('\'') {
                "year" => format!("CAST(date_format({b}, '%Y-01-01') AS DATETIME)"),
                "quarter" => format!(
                    "CAST(makedate(year({b}), 1) + INTERVAL (quarter({b}) - 1) QUARTER AS DATETIME)"
                ),
                "month" => format!("CAST(date_format({b}, '%Y-%m-01') AS DATETIME)"),
                "week" => format!("CAST(date({b}) - INTERVAL weekday({b}) DAY AS DATETIME)"),
                "day" => format!("CAST(date({b}) AS DATETIME)"),
                "hour" => format!("CAST(date_format({b}, '%Y-%m-%d %H:00:00') AS DATETIME)"),
                "minute" => format!("CAST(date_format({b}, '%Y-%m-%d %H:%i:00') AS DATETIME)"),
                _ => return None,
            },
            // SQLite: DataFusion's dialect writes the other units with `strftime`; a week
            // is the Monday on or before the day, in the same `YYYY-MM-DD` form as a day.
            (Sqlite, "date_trunc") if a.trim_matches('\'') == "week" => {
                format!("date({b}, '-6 days', 'weekday 1')")
            }
            // `x in LIST`; lists are JSON text in MySQL and SQLite.
            (Mysql | Sqlite, "array_has") => format!(
                "CASE WHEN {b} IS NULL THEN NULL ELSE {} END",
                json_list_has(self.kind, a, &[b.to_string()], true)
            ),
            (Postgres, "array_has_any") => format!("{a} && {b}"),
            (Postgres, "array_has_all") => format!("{a} @> {b}"),
            // `date_part(part, t)` for the parts SegQL uses.
            (Mysql, "date_part") => match a.trim_matches('\'') {
                "epoch" => {
                    format!("timestampdiff(MICROSECOND, '1970-01-01 00:00:00', {b}) / 1000000.0")
                }
                "dow" => format!("dayofweek({b}) - 1"),
                "year" => format!("year({b})"),
                "month" => format!("month({b})"),
                _ => return None,
            },
            (Sqlite, "date_part") => match a.trim_matches('\'') {
                // Whole seconds, then the milliseconds SQLite's times carry.
                "epoch" => format!(
                    "CAST(strftime('%s', {b}) AS REAL) + CAST(strftime('%f', {b}) AS REAL) - CAST(strftime('%S', {b}) AS REAL)"
                ),
                "dow" => format!("CAST(strftime('%w', {b}) AS INTEGER)"),
                "year" => format!("CAST(strftime('%Y', {b}) AS INTEGER)"),
                "month" => format!("CAST(strftime('%m', {b}) AS INTEGER)"),
                _ => return None,
            },
            _ => return None,
        })
    }
}

/// Every setting the base dialect makes for what SegQL's plans contain is passed through;
/// the rest (unnest, higher-order functions, zoned timestamps) keep the
/// trait's defaults, as the plans never hold them.
impl Dialect for Target<'_> {
    fn scalar_function_to_sql_overrides(
        &self,
        unparser: &Unparser,
        func_name: &str,
        args: &[Expr],
    ) -> Result<Option<ast::Expr>> {
        let sql = |e: &Expr| unparser.expr_to_sql(e).map(|e| e.to_string());
        let texts = args.iter().map(sql).collect::<Result<Vec<_>>>()?;
        // `has any` / `has all` against a list literal, on engines storing lists as JSON.
        if let (Some(list), [_, Expr::ScalarFunction(items)]) = (texts.first(), args)
            && items.name() == "make_array"
            && matches!(func_name, "array_has_any" | "array_has_all")
            && matches!(self.kind, SqlDialect::Mysql | SqlDialect::Sqlite)
        {
            let items = items.args.iter().map(sql).collect::<Result<Vec<_>>>()?;
            let any = func_name == "array_has_any";
            return Ok(Some(verbatim(format!(
                "({})",
                json_list_has(self.kind, list, &items, any)
            ))));
        }
        match self.rewrite(func_name, &texts) {
            // The arguments are SQL the unparser wrote, the rest is SegQL's text.
            Some(text) => Ok(Some(verbatim(format!("({text})")))),
            None => self
                .base
                .scalar_function_to_sql_overrides(unparser, func_name, args),
        }
    }

    fn string_literal_to_sql(&self, value: &str) -> Option<ast::Expr> {
        Some(verbatim(string_literal(self.kind, value)))
    }

    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        self.base.identifier_quote_style(identifier)
    }
    fn use_array_keyword_for_array_literals(&self) -> bool {
        self.base.use_array_keyword_for_array_literals()
    }
    fn supports_nulls_first_in_sort(&self) -> bool {
        self.base.supports_nulls_first_in_sort()
    }
    fn use_timestamp_for_date64(&self) -> bool {
        self.base.use_timestamp_for_date64()
    }
    fn interval_style(&self) -> IntervalStyle {
        self.base.interval_style()
    }
    fn float64_ast_dtype(&self) -> ast::DataType {
        self.base.float64_ast_dtype()
    }
    fn utf8_cast_dtype(&self) -> ast::DataType {
        self.base.utf8_cast_dtype()
    }
    fn large_utf8_cast_dtype(&self) -> ast::DataType {
        self.base.large_utf8_cast_dtype()
    }
    fn date_field_extract_style(&self) -> DateFieldExtractStyle {
        self.base.date_field_extract_style()
    }
    fn distinct_from_style(&self) -> DistinctFromStyle {
        self.base.distinct_from_style()
    }
    fn character_length_style(&self) -> CharacterLengthStyle {
        self.base.character_length_style()
    }
    fn int64_cast_dtype(&self) -> ast::DataType {
        self.base.int64_cast_dtype()
    }
    fn int8_cast_dtype(&self) -> ast::DataType {
        self.base.int8_cast_dtype()
    }
    fn int32_cast_dtype(&self) -> ast::DataType {
        self.base.int32_cast_dtype()
    }
    fn timestamp_cast_dtype(&self, time_unit: &TimeUnit, tz: &Option<Arc<str>>) -> ast::DataType {
        self.base.timestamp_cast_dtype(time_unit, tz)
    }
    fn date32_cast_dtype(&self) -> ast::DataType {
        self.base.date32_cast_dtype()
    }
    fn supports_column_alias_in_table_alias(&self) -> bool {
        self.base.supports_column_alias_in_table_alias()
    }
    fn requires_derived_table_alias(&self) -> bool {
        self.base.requires_derived_table_alias()
    }
    fn division_operator(&self) -> BinaryOperator {
        self.base.division_operator()
    }
    fn full_qualified_col(&self) -> bool {
        self.base.full_qualified_col()
    }
    fn supports_qualify(&self) -> bool {
        self.base.supports_qualify()
    }
    fn supports_empty_select_list(&self) -> bool {
        self.base.supports_empty_select_list()
    }
    fn col_alias_overrides(&self, alias: &str) -> Result<Option<String>> {
        self.base.col_alias_overrides(alias)
    }
    /// Rankings: a frame means nothing to a ranking function, and MySQL rejects one; the
    /// count of ranked profiles keeps its whole-partition frame.
    fn window_func_support_window_frame(
        &self,
        func_name: &str,
        _start_bound: &ast::WindowFrameBound,
        _end_bound: &ast::WindowFrameBound,
    ) -> bool {
        !matches!(func_name, "row_number" | "percent_rank" | "rank")
    }
}
