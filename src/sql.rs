//! SQL for other engines: a segment's logical plan, unparsed by DataFusion's SQL unparser
//! in the dialect of the target engine.
//!
//! The plan is the unoptimized one the planner builds (filters above joins, an explicit
//! final projection: the shape the unparser handles). Tables are named by their catalog
//! names, optionally qualified with a schema or given a prefix.

use std::fmt;

use datafusion::common::TableReference;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, TableScan};
use datafusion::sql::unparser::Unparser;
use datafusion::sql::unparser::dialect::{
    BigQueryDialect, DuckDBDialect, MySqlDialect, PostgreSqlDialect, SqliteDialect,
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
    let statement = match dialect {
        SqlDialect::Postgres => Unparser::new(&PostgreSqlDialect {}).plan_to_sql(&plan)?,
        SqlDialect::Duckdb => Unparser::new(&DuckDBDialect::new()).plan_to_sql(&plan)?,
        SqlDialect::Mysql => Unparser::new(&MySqlDialect {}).plan_to_sql(&plan)?,
        SqlDialect::Sqlite => Unparser::new(&SqliteDialect {}).plan_to_sql(&plan)?,
        SqlDialect::Bigquery => Unparser::new(&BigQueryDialect {}).plan_to_sql(&plan)?,
    };
    Ok(statement.to_string())
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
