//! The catalog: `segql.toml` and the schemas of its sources. The checker's and the
//! planner's only window on data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext};
use serde::Deserialize;
use toml::Spanned;

use crate::check::ir::Type;
use crate::diagnostic::{Diagnostic, Diagnostics, FileId, SourceMap, Span, list_names};

/// The file name looked for next to a query file and in its parents.
pub const CATALOG_FILE_NAME: &str = "segql.toml";

/// One column as the checker sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSchema {
    pub name: String,
    /// `None` for a source type SegQL cannot use (an error only where used).
    pub ty: Option<Type>,
    /// The type as the source declares it, for messages and `:schema`.
    pub source_type: String,
}

/// A table as the checker sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    pub name: String,
    pub key: String,
    /// The event time column; `None` for the profile table.
    pub time: Option<String>,
    pub columns: Vec<ColumnSchema>,
}

impl TableSchema {
    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The schemas of all tables: everything the checker knows about data.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogSchema {
    pub profiles: TableSchema,
    pub events: Vec<TableSchema>,
}

impl CatalogSchema {
    pub fn event(&self, name: &str) -> Option<&TableSchema> {
        self.events.iter().find(|e| e.name == name)
    }
}

/// How a source file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Parquet,
    Csv,
    Json,
    Arrow,
}

impl SourceFormat {
    pub fn from_name(name: &str) -> Option<SourceFormat> {
        Some(match name.to_ascii_lowercase().as_str() {
            "parquet" => SourceFormat::Parquet,
            "csv" => SourceFormat::Csv,
            "json" | "ndjson" | "jsonl" => SourceFormat::Json,
            "arrow" | "ipc" | "feather" => SourceFormat::Arrow,
            _ => return None,
        })
    }

    fn from_path(path: &Path) -> Option<SourceFormat> {
        SourceFormat::from_name(path.extension()?.to_str()?)
    }
}

/// One table of the catalog as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct TableConfig {
    /// The name queries use: the profile table's `name`, or the event name.
    pub name: String,
    pub source: Option<PathBuf>,
    pub format: Option<SourceFormat>,
    pub key: String,
    pub time: Option<String>,
    /// Columns declared in the catalog, overriding or replacing the source's types.
    pub columns: Vec<(String, Type)>,
    spans: TableSpans,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct TableSpans {
    table: Option<Span>,
    source: Option<Span>,
    key: Option<Span>,
    time: Option<Span>,
    columns: Option<Span>,
}

impl TableConfig {
    /// A table whose rows come from `source` (relative paths are taken from the working directory).
    pub fn new(
        name: impl Into<String>,
        source: Option<PathBuf>,
        key: impl Into<String>,
    ) -> TableConfig {
        TableConfig {
            name: name.into(),
            source,
            format: None,
            key: key.into(),
            time: None,
            columns: Vec::new(),
            spans: TableSpans::default(),
        }
    }

    pub fn with_time(mut self, time: impl Into<String>) -> TableConfig {
        self.time = Some(time.into());
        self
    }

    pub fn with_format(mut self, format: SourceFormat) -> TableConfig {
        self.format = Some(format);
        self
    }

    pub fn with_column(mut self, name: impl Into<String>, ty: Type) -> TableConfig {
        self.columns.push((name.into(), ty));
        self
    }

    fn format(&self) -> Option<SourceFormat> {
        self.format
            .or_else(|| self.source.as_deref().and_then(SourceFormat::from_path))
    }
}

/// A loaded catalog: where the data is and how it is keyed.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    /// The catalog file, if it came from one.
    pub path: Option<PathBuf>,
    /// Evaluation time from the catalog, in nanoseconds since the epoch.
    pub as_of: Option<i64>,
    /// Segment files loaded by default.
    pub segment_files: Vec<PathBuf>,
    pub profiles: TableConfig,
    pub events: Vec<TableConfig>,
    file: Option<FileId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    as_of: Option<Spanned<String>>,
    #[serde(default)]
    segments: Vec<Spanned<String>>,
    profiles: Option<Spanned<TableSection>>,
    #[serde(default)]
    events: BTreeMap<String, Spanned<TableSection>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableSection {
    name: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    time: Option<Spanned<String>>,
    columns: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
}

impl Catalog {
    /// A catalog built in code, with no events yet.
    pub fn new(profiles: TableConfig) -> Catalog {
        Catalog {
            path: None,
            as_of: None,
            segment_files: Vec::new(),
            profiles,
            events: Vec::new(),
            file: None,
        }
    }

    pub fn with_event(mut self, event: TableConfig) -> Catalog {
        self.events.push(event);
        self
    }

    pub fn with_as_of(mut self, as_of: i64) -> Catalog {
        self.as_of = Some(as_of);
        self
    }

    /// Finds `segql.toml` in `start` or one of its parents.
    pub fn find(start: &Path) -> Option<PathBuf> {
        let start = match start.parent() {
            // `segments.seg` alone has the parent "": the current directory.
            Some(parent) if start.is_file() && parent.as_os_str().is_empty() => Path::new("."),
            Some(parent) if start.is_file() => parent,
            _ => start,
        };
        let absolute = std::fs::canonicalize(start).ok()?;
        absolute
            .ancestors()
            .map(|dir| dir.join(CATALOG_FILE_NAME))
            .find(|candidate| candidate.is_file())
    }

    /// Reads and validates a catalog file. Its text is added to `sources` for diagnostics.
    pub fn load(path: &Path, sources: &mut SourceMap) -> Result<Catalog, Diagnostics> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            Diagnostic::error("E0302", format!("cannot read catalog `{}`: {error}", path.display()))
                .with_help("pass the catalog with `--catalog PATH`, or create `segql.toml` next to your segment files")
        })?;
        let file = sources.add(path.display().to_string(), text.clone());
        Catalog::parse(&text, path, file)
    }

    /// Parses catalog text; relative paths are resolved against `path`'s directory.
    pub fn parse(text: &str, path: &Path, file: FileId) -> Result<Catalog, Diagnostics> {
        let span = |range: std::ops::Range<usize>| Span::new(file, range.start, range.end);
        let parsed: CatalogFile = toml::from_str(text).map_err(|error| {
            let range = error.span().unwrap_or(0..0);
            let message = error.message().trim().to_string();
            let mut diagnostic = Diagnostic::error("E0301", format!("invalid catalog: {message}"))
                .with_label(span(range), "here");
            if message.contains("unknown field") {
                diagnostic = diagnostic.with_help(
                    "top-level keys are `as_of`, `segments`, `[profiles]` and `[events.NAME]`; tables take `name`, `source`, `format`, `key`, `time` and `columns`",
                );
            }
            Diagnostics::from(diagnostic)
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut diagnostics = Diagnostics::default();

        let as_of = parsed.as_of.as_ref().and_then(|as_of| {
            let value = crate::syntax::parse_timestamp(as_of.get_ref());
            if value.is_none() {
                diagnostics.push(
                    Diagnostic::error("E0301", format!("`as_of` is not a valid time: \"{}\"", as_of.get_ref()))
                        .with_label(span(as_of.span()), "invalid time")
                        .with_help("write a date such as \"1998-07-01\" or a time such as \"1998-07-01T00:00:00Z\""),
                );
            }
            value
        });

        let Some(profiles_section) = parsed.profiles else {
            diagnostics.push(
                Diagnostic::error("E0301", "the catalog has no `[profiles]` table")
                    .with_label(span(0..0), "expected `[profiles]`")
                    .with_help(
                        "add a `[profiles]` table with `source` and `key`, as in the README",
                    ),
            );
            return Err(diagnostics);
        };
        let table_span = span(profiles_section.span());
        let profiles_section = profiles_section.into_inner();
        let profiles_name = profiles_section
            .name
            .as_ref()
            .map(|n| n.get_ref().clone())
            .unwrap_or_else(|| "profiles".to_string());
        let profiles = table_config(
            &profiles_name,
            profiles_section,
            table_span,
            &base,
            false,
            &span,
            &mut diagnostics,
        );

        let mut events = Vec::new();
        for (name, section) in parsed.events {
            let table_span = span(section.span());
            let section = section.into_inner();
            if let Some(name_key) = &section.name {
                diagnostics.push(
                    Diagnostic::error(
                        "E0301",
                        "event tables are named by their section, not `name`",
                    )
                    .with_label(span(name_key.span()), "not allowed here")
                    .with_help(format!("rename the section `[events.{name}]` instead")),
                );
            }
            events.push(table_config(
                &name,
                section,
                table_span,
                &base,
                true,
                &span,
                &mut diagnostics,
            ));
        }
        for (i, table) in std::iter::once(&profiles).chain(&events).enumerate() {
            let is_identifier = table
                .name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && table
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !is_identifier || crate::syntax::is_keyword(&table.name) {
                diagnostics.push(
                    Diagnostic::error("E0305", format!("`{}` cannot be a table name", table.name))
                        .with_label(table.spans.table.unwrap_or(span(0..0)), "invalid name")
                        .with_help("table names are letters, digits and `_`, start with a letter, and are not SegQL keywords"),
                );
            }
            let clash = std::iter::once(&profiles)
                .chain(&events)
                .take(i)
                .any(|t| t.name == table.name);
            if clash {
                diagnostics.push(
                    Diagnostic::error("E0305", format!("two tables are named `{}`", table.name))
                        .with_label(
                            table.spans.table.unwrap_or(span(0..0)),
                            "duplicate table name",
                        )
                        .with_help(
                            "the profile table's `name` and the event names must all differ",
                        ),
                );
            }
        }
        let segment_files = parsed
            .segments
            .iter()
            .map(|s| base.join(s.get_ref()))
            .collect();
        if diagnostics.has_errors() {
            return Err(diagnostics);
        }
        Ok(Catalog {
            path: Some(path.to_path_buf()),
            as_of,
            segment_files,
            profiles,
            events,
            file: Some(file),
        })
    }

    fn span_or_catalog(&self, span: Option<Span>) -> Option<Span> {
        span.or_else(|| self.file.map(|f| Span::new(f, 0, 0)))
    }

    fn located(&self, diagnostic: Diagnostic, span: Option<Span>, label: &str) -> Diagnostic {
        match self.span_or_catalog(span) {
            Some(span) => diagnostic.with_label(span, label),
            None => diagnostic,
        }
    }

    /// Registers every source with data in `ctx` and returns the schemas the checker uses.
    ///
    /// With `require_data` false, a table whose source is missing but whose columns are all
    /// declared is accepted (checking without data); with it true, that is an error.
    pub async fn register(
        &self,
        ctx: &SessionContext,
        require_data: bool,
    ) -> Result<CatalogSchema, Diagnostics> {
        let mut diagnostics = Diagnostics::default();
        let profiles = self
            .table_schema(ctx, &self.profiles, require_data, &mut diagnostics)
            .await;
        let mut events = Vec::new();
        for event in &self.events {
            if let Some(schema) = self
                .table_schema(ctx, event, require_data, &mut diagnostics)
                .await
            {
                events.push(schema);
            }
        }
        if let Some(profiles) = &profiles {
            let profile_key = profiles.column(&profiles.key).and_then(|c| c.ty.clone());
            for (event, config) in events.iter().zip(&self.events) {
                let event_key = event.column(&event.key).and_then(|c| c.ty.clone());
                // An event table without rows (key of type null) joins with any key.
                if let (Some(a), Some(b)) = (&profile_key, &event_key)
                    && a != b
                    && *b != Type::Null
                {
                    diagnostics.push(self.located(
                        Diagnostic::error(
                            "E0308",
                            format!("`{}.{}` is {b} but the profile key `{}` is {a}", event.name, event.key, profiles.key),
                        )
                        .with_help(format!("declare the key with the profile key's type: `columns = {{ {} = \"{a}\" }}`", event.key)),
                        config.spans.key,
                        "key type differs from the profile key",
                    ));
                }
            }
        }
        match profiles {
            Some(profiles) if !diagnostics.has_errors() => Ok(CatalogSchema { profiles, events }),
            _ => Err(diagnostics),
        }
    }

    async fn table_schema(
        &self,
        ctx: &SessionContext,
        table: &TableConfig,
        require_data: bool,
        diagnostics: &mut Diagnostics,
    ) -> Option<TableSchema> {
        let source_schema = match &table.source {
            Some(path) if path.exists() => match register_source(ctx, table, path).await {
                Ok(schema) => Some(schema),
                Err(message) => {
                    diagnostics.push(self.located(
                        Diagnostic::error("E0306", format!("cannot read `{}`: {message}", path.display()))
                            .with_help("check the file's format; set `format = \"csv\"` (or parquet, json, arrow) if its extension does not tell"),
                        table.spans.source,
                        "source that failed",
                    ));
                    return None;
                }
            },
            Some(path) if require_data || table.columns.is_empty() => {
                diagnostics.push(self.located(
                    Diagnostic::error("E0302", format!("data file `{}` of table `{}` does not exist", path.display(), table.name))
                        .with_help(if table.columns.is_empty() {
                            "fix the path (it is relative to the catalog file), or declare the table's `columns` to check segments without data"
                        } else {
                            "fix the path (it is relative to the catalog file); running segments needs the data"
                        }),
                    table.spans.source,
                    "missing file",
                ));
                return None;
            }
            None if require_data || table.columns.is_empty() => {
                diagnostics.push(self.located(
                    Diagnostic::error("E0302", format!("table `{}` has no `source`", table.name))
                        .with_help("add `source = \"path/to/data.parquet\"` (Parquet, CSV, NDJSON or Arrow IPC)"),
                    table.spans.table,
                    "no source",
                ));
                return None;
            }
            _ => None,
        };
        let mut columns: Vec<ColumnSchema> = match &source_schema {
            Some(schema) => schema
                .fields()
                .iter()
                .map(|field| ColumnSchema {
                    name: field.name().clone(),
                    ty: language_type(field.data_type()),
                    source_type: field.data_type().to_string(),
                })
                .collect(),
            None => Vec::new(),
        };
        for (name, ty) in &table.columns {
            match columns.iter_mut().find(|c| &c.name == name) {
                Some(column) if !declarable(column.ty.as_ref(), ty) => {
                    let stored = column.ty.as_ref().map(Type::to_string);
                    diagnostics.push(self.located(
                        Diagnostic::error(
                            "E0303",
                            format!(
                                "`{}` declares column `{name}` as {ty}, but its source holds {} values",
                                table.name,
                                stored.as_deref().unwrap_or(&column.source_type)
                            ),
                        )
                        .with_help(format!(
                            "converting them would change values; declare it as {}, or fix the data",
                            stored.as_deref().unwrap_or("its source type")
                        )),
                        table.spans.columns,
                        "type differs from the data",
                    ));
                }
                Some(column) => column.ty = Some(ty.clone()),
                None if source_schema.is_none() => columns.push(ColumnSchema {
                    name: name.clone(),
                    ty: Some(ty.clone()),
                    source_type: ty.to_string(),
                }),
                None => {
                    diagnostics.push(
                        self.located(
                            Diagnostic::error(
                                "E0303",
                                format!(
                                    "`{}` declares column `{name}`, which its source does not have",
                                    table.name
                                ),
                            )
                            .with_help(format!(
                                "the source has {}",
                                list_names(columns.iter().map(|c| c.name.as_str()), 12)
                            )),
                            table.spans.columns,
                            "unknown column",
                        ),
                    );
                }
            }
        }
        let mut ok = true;
        let mut check_column = |role: &str, name: &str, span: Option<Span>, allowed: &[Type]| {
            match columns.iter().find(|c| c.name == name) {
                None => {
                    ok = false;
                    let mut diagnostic = Diagnostic::error(
                        "E0303",
                        format!("{role} column `{name}` is not a column of `{}`", table.name),
                    );
                    diagnostic = diagnostic.with_suggestion(
                        name,
                        columns.iter().map(|c| c.name.as_str()),
                        || {
                            format!(
                                "columns are {}",
                                list_names(columns.iter().map(|c| c.name.as_str()), 12)
                            )
                        },
                    );
                    diagnostics.push(self.located(diagnostic, span, "unknown column"));
                }
                // A column with no values (an empty CSV file) fits any role.
                Some(column) if column.ty == Some(Type::Null) => {}
                Some(column) if !column.ty.as_ref().is_some_and(|t| allowed.contains(t)) => {
                    ok = false;
                    let expected: Vec<String> = allowed.iter().map(|t| t.to_string()).collect();
                    diagnostics.push(self.located(
                        Diagnostic::error(
                            if role == "time" { "E0307" } else { "E0303" },
                            format!("{role} column `{name}` of `{}` is {}, expected {}", table.name, column.source_type, expected.join(" or ")),
                        )
                        .with_help(if role == "time" {
                            format!("if it holds ISO times as text, declare it: `columns = {{ {name} = \"timestamp\" }}`")
                        } else {
                            "keys must be integers or strings".to_string()
                        }),
                        span,
                        "wrong type",
                    ));
                }
                Some(_) => {}
            }
        };
        check_column(
            "key",
            &table.key,
            table.spans.key,
            &[Type::Int, Type::String],
        );
        if let Some(time) = &table.time {
            check_column("time", time, table.spans.time, &[Type::Timestamp]);
        }
        ok.then(|| TableSchema {
            name: table.name.clone(),
            key: table.key.clone(),
            time: table.time.clone(),
            columns,
        })
    }
}

/// Registers one source under the table's name and returns its schema.
async fn register_source(
    ctx: &SessionContext,
    table: &TableConfig,
    path: &Path,
) -> Result<Schema, String> {
    let location = path.to_string_lossy().to_string();
    let format = table.format().ok_or_else(|| {
        format!(
            "its format is unknown (extension `{}`)",
            path.extension().and_then(|e| e.to_str()).unwrap_or("")
        )
    })?;
    let is_dir = path.is_dir();
    // Listing options filter files by extension: give the source's own, so it matches.
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    let result = match format {
        SourceFormat::Parquet => {
            let mut options = ParquetReadOptions::default();
            if is_dir {
                options.file_extension = ".parquet";
            }
            ctx.register_parquet(&table.name, &location, options).await
        }
        SourceFormat::Csv => {
            let extension = if is_dir { ".csv" } else { "" };
            let options = CsvReadOptions::new()
                .has_header(true)
                .file_extension(extension);
            ctx.register_csv(&table.name, &location, options).await
        }
        SourceFormat::Json => {
            let options = JsonReadOptions::default().file_extension(&extension);
            ctx.register_json(&table.name, &location, options).await
        }
        SourceFormat::Arrow => {
            let options = datafusion::datasource::file_format::options::ArrowReadOptions {
                file_extension: &extension,
                ..Default::default()
            };
            ctx.register_arrow(&table.name, &location, options).await
        }
    };
    result.map_err(|e| first_line(&e.to_string()))?;
    let provider = ctx
        .table_provider(table.name.as_str())
        .await
        .map_err(|e| first_line(&e.to_string()))?;
    Ok(provider.schema().as_ref().clone())
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).to_string()
}

/// The language type of an Arrow type, if it has one.
pub fn language_type(data_type: &DataType) -> Option<Type> {
    use DataType::*;
    Some(match data_type {
        Boolean => Type::Bool,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => Type::Int,
        Float16 | Float32 | Float64 | Decimal32(..) | Decimal64(..) | Decimal128(..)
        | Decimal256(..) => Type::Float,
        Utf8 | LargeUtf8 | Utf8View => Type::String,
        Dictionary(_, value) => return language_type(value).filter(|t| *t == Type::String),
        Date32 | Date64 | Timestamp(..) => Type::Timestamp,
        Duration(_) => Type::Duration,
        List(field)
        | LargeList(field)
        | ListView(field)
        | LargeListView(field)
        | FixedSizeList(field, _) => {
            let item = language_type(field.data_type())?;
            if matches!(item, Type::List(_)) {
                return None;
            }
            Type::List(Box::new(item))
        }
        Null => Type::Null,
        _ => return None,
    })
}

/// Whether a column stored as `stored` may be declared `declared`: the same type, an
/// integer read as a float, text (parsed when read; a value that does not parse is an
/// evaluation error) or no values at all. Anything else would change values silently.
fn declarable(stored: Option<&Type>, declared: &Type) -> bool {
    match stored {
        // Text is parsed when read; an all-null column (an empty CSV file) holds nothing.
        None | Some(Type::String | Type::Null) => true,
        Some(Type::Int) => matches!(declared, Type::Int | Type::Float),
        Some(stored) => stored == declared,
    }
}

/// Parses a declared type name: `int`, `list<string>`, ...
pub fn parse_type_name(name: &str) -> Option<Type> {
    let name = name.trim();
    if let Some(inner) = name.strip_prefix("list<").and_then(|r| r.strip_suffix('>')) {
        let item = parse_type_name(inner)?;
        return (!matches!(item, Type::List(_))).then(|| Type::List(Box::new(item)));
    }
    Some(match name {
        "bool" => Type::Bool,
        "int" => Type::Int,
        "float" => Type::Float,
        "string" => Type::String,
        "timestamp" => Type::Timestamp,
        "duration" => Type::Duration,
        _ => return None,
    })
}

fn table_config(
    name: &str,
    section: TableSection,
    table_span: Span,
    base: &Path,
    is_event: bool,
    span: &dyn Fn(std::ops::Range<usize>) -> Span,
    diagnostics: &mut Diagnostics,
) -> TableConfig {
    let what = if is_event {
        format!("[events.{name}]")
    } else {
        "[profiles]".to_string()
    };
    let key = match &section.key {
        Some(key) => key.get_ref().clone(),
        None => {
            diagnostics.push(
                Diagnostic::error("E0303", format!("`{what}` has no `key`"))
                    .with_label(table_span, "missing `key`")
                    .with_help(if is_event {
                        "add `key = \"customer_id\"`: the column joining events to the profile key"
                    } else {
                        "add `key = \"customer_id\"`: the column that identifies a profile"
                    }),
            );
            String::new()
        }
    };
    let time = match (&section.time, is_event) {
        (Some(time), true) => Some(time.get_ref().clone()),
        (None, true) => {
            diagnostics.push(
                Diagnostic::error("E0303", format!("`{what}` has no `time`"))
                    .with_label(table_span, "missing `time`")
                    .with_help("add `time = \"ts\"`: the column holding each event's time"),
            );
            Some(String::new())
        }
        (Some(time), false) => {
            diagnostics.push(
                Diagnostic::error("E0301", "the profile table has no event time")
                    .with_label(span(time.span()), "not allowed in `[profiles]`")
                    .with_help("remove `time`; only `[events.NAME]` tables have one"),
            );
            None
        }
        (None, false) => None,
    };
    let format = section.format.as_ref().and_then(|format| {
        let parsed = SourceFormat::from_name(format.get_ref());
        if parsed.is_none() {
            diagnostics.push(
                Diagnostic::error("E0301", format!("unknown format \"{}\"", format.get_ref()))
                    .with_label(span(format.span()), "unknown format")
                    .with_help("formats are \"parquet\", \"csv\", \"json\" (newline-delimited) and \"arrow\" (IPC)"),
            );
        }
        parsed
    });
    let mut columns = Vec::new();
    if let Some(declared) = &section.columns {
        for (column, type_name) in declared.get_ref() {
            match parse_type_name(type_name.get_ref()) {
                Some(ty) => columns.push((column.clone(), ty)),
                None => diagnostics.push(
                    Diagnostic::error("E0304", format!("unknown type \"{}\" for column `{column}`", type_name.get_ref()))
                        .with_label(span(type_name.span()), "unknown type")
                        .with_help("types are \"bool\", \"int\", \"float\", \"string\", \"timestamp\", \"duration\" and \"list<T>\""),
                ),
            }
        }
    }
    TableConfig {
        name: name.to_string(),
        source: section.source.as_ref().map(|s| base.join(s.get_ref())),
        format,
        key,
        time,
        columns,
        spans: TableSpans {
            table: Some(table_span),
            source: section.source.as_ref().map(|s| span(s.span())),
            key: section.key.as_ref().map(|s| span(s.span())),
            time: section.time.as_ref().map(|s| span(s.span())),
            columns: section.columns.as_ref().map(|s| span(s.span())),
        },
    }
}
