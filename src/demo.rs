//! A deterministic, scalable generator of a realistic online-shop dataset.
//!
//! [`generate`] writes one profile table (`customers.parquet`), five event
//! tables (`purchased`, `viewed`, `added_to_cart`, `email_opened`,
//! `ticket_opened`) and a `segql.toml` catalog describing them. The data is
//! meant for demos, tutorials and tests of SegQL, so it is shaped to make
//! segments interesting: browsers who never buy, one-time buyers, regulars,
//! loyal customers and a few big spenders; customers who lapse; bursts of
//! activity (sessions that follow each other within hours, the Christmas
//! season, e-mail click-throughs); purchases usually preceded by a view and an
//! add-to-cart of the same product; support tickets after some orders; and
//! predictive scores (`churn_score`, `ltv`) that agree with the behaviour.
//!
//! # Determinism and scale
//!
//! Every customer is generated from its own random stream, seeded from the
//! `seed` option and the customer id, and the customers are generated and
//! written in id order. The same options therefore always give byte-identical
//! files, and the first `n` customers of a large dataset are the same as those
//! of a small one (order ids, which are numbered across customers, included).
//! Rows are buffered in Arrow builders and flushed as record batches of
//! [`BATCH_ROWS`] rows into one streaming Parquet writer per table (row groups
//! of [`ROW_GROUP_ROWS`] rows), so memory does not grow with the number of
//! customers: a million customers and twenty million events are fine.
//!
//! Each file is first written as `NAME.parquet.tmp`; all of them are renamed
//! into place only once every table has been written completely, so an
//! interrupted run never leaves a truncated `NAME.parquet` behind.
//!
//! # Time
//!
//! All events fall in `[1997-01-01T00:00:00Z, 1998-07-01T00:00:00Z)`; the
//! catalog's `as_of` is `1998-07-01T00:00:00Z`. Timestamps are stored as
//! `Timestamp(Microsecond, None)` holding UTC. A customer's `signup_ts` lies
//! before each of its events (customers who already existed at the start of
//! the period signed up in 1994–1996). Within a table the rows are grouped by
//! customer in id order and, per customer, sorted by time.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Rows per Arrow record batch handed to the Parquet writers.
pub const BATCH_ROWS: usize = 65_536;
/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 131_072;
/// The evaluation time written into `segql.toml` (as text).
pub const AS_OF: &str = "1998-07-01T00:00:00Z";

/// 1997-01-01T00:00:00Z in microseconds since the Unix epoch: the earliest event.
const START_US: i64 = 852_076_800_000_000;
/// 1998-07-01T00:00:00Z in microseconds since the Unix epoch: every event is before this.
const AS_OF_US: i64 = 899_251_200_000_000;
const MINUTE_US: i64 = 60_000_000;
const HOUR_US: i64 = 60 * MINUTE_US;
const DAY_US: i64 = 24 * HOUR_US;

/// Names of the tables, in the order they are reported in [`DemoSummary`].
const TABLES: [&str; 6] = [
    "customers",
    "purchased",
    "viewed",
    "added_to_cart",
    "email_opened",
    "ticket_opened",
];

/// Options for the demo dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOptions {
    /// Number of customers (profile rows); ids are `1..=customers`.
    pub customers: usize,
    /// Seed of the random streams; the same seed gives byte-identical files.
    pub seed: u64,
    /// Events per customer on average, over all five event tables together.
    pub events_per_customer: usize,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            customers: 2000,
            seed: 42,
            events_per_customer: 20,
        }
    }
}

/// What [`generate`] wrote: `(table name, rows)` for each table, the profile
/// table first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSummary {
    pub tables: Vec<(String, usize)>,
}

impl DemoSummary {
    /// Rows written to `table`, if it is one of the generated tables.
    pub fn rows(&self, table: &str) -> Option<usize> {
        self.tables
            .iter()
            .find(|(name, _)| name == table)
            .map(|(_, rows)| *rows)
    }

    /// Rows written to the five event tables together.
    pub fn event_rows(&self) -> usize {
        self.tables
            .iter()
            .filter(|(name, _)| name != "customers")
            .map(|(_, rows)| *rows)
            .sum()
    }
}

/// Why [`generate`] failed.
#[derive(Debug)]
pub enum DemoError {
    /// A file-system operation on the given path failed.
    Io(std::io::Error, PathBuf),
    /// Building a record batch or writing Parquet failed.
    Arrow(String),
}

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DemoError::Io(err, path) => write!(f, "{}: {err}", path.display()),
            DemoError::Arrow(msg) => write!(f, "writing the demo data failed: {msg}"),
        }
    }
}

impl std::error::Error for DemoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DemoError::Io(err, _) => Some(err),
            DemoError::Arrow(_) => None,
        }
    }
}

fn arrow_err(err: impl std::fmt::Display) -> DemoError {
    DemoError::Arrow(err.to_string())
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DemoError + '_ {
    move |err| DemoError::Io(err, path.to_path_buf())
}

/// Writes customers.parquet, purchased.parquet, viewed.parquet,
/// added_to_cart.parquet, email_opened.parquet, ticket_opened.parquet and
/// segql.toml into `out_dir` (created if missing). Returns a summary (rows
/// written per table).
///
/// `segql.toml` lists `segments.seg` under `segments` only if that file
/// already exists in `out_dir`.
pub fn generate(options: &DemoOptions, out_dir: &Path) -> Result<DemoSummary, DemoError> {
    fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
    let mut sinks = Sinks::default();
    let result = write_all_tables(options, out_dir, &mut sinks);
    let summary = match result {
        Ok(()) => sinks.commit(),
        Err(err) => {
            sinks.abort();
            return Err(err);
        }
    }?;
    write_catalog(out_dir)?;
    Ok(summary)
}

fn write_all_tables(
    options: &DemoOptions,
    out_dir: &Path,
    sinks: &mut Sinks,
) -> Result<(), DemoError> {
    let schemas = Schemas::new();
    for (name, schema) in TABLES.iter().zip(schemas.all()) {
        sinks.open(out_dir, name, schema)?;
    }
    let world = World::new(options);
    let mut tables = TableBuilders::new(&schemas);
    let mut scratch = Scratch::default();
    let mut next_order_id: i64 = 1;
    for index in 0..options.customers {
        let id = index as i64 + 1;
        let mut rng = StdRng::seed_from_u64(splitmix64(options.seed ^ splitmix64(id as u64)));
        let profile = world.customer(&mut rng, &mut scratch, &mut next_order_id);
        tables.push_customer(id, &profile, &scratch, &world);
        tables.flush(sinks, false)?;
    }
    tables.flush(sinks, true)
}

fn write_catalog(out_dir: &Path) -> Result<(), DemoError> {
    let mut toml = String::new();
    toml.push_str("# SegQL catalog of the demo shop dataset (written by segql::demo).\n");
    let _ = writeln!(toml, "as_of = \"{AS_OF}\"");
    if out_dir.join("segments.seg").is_file() {
        toml.push_str("segments = [\"segments.seg\"]\n");
    }
    toml.push_str("\n[profiles]\nsource = \"customers.parquet\"\nkey = \"customer_id\"\n");
    for name in &TABLES[1..] {
        let _ = write!(
            toml,
            "\n[events.{name}]\nsource = \"{name}.parquet\"\nkey = \"customer_id\"\ntime = \"ts\"\n"
        );
    }
    let path = out_dir.join("segql.toml");
    let tmp = out_dir.join("segql.toml.tmp");
    fs::write(&tmp, toml).map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))
}

// ---------------------------------------------------------------------------
// Parquet sinks

struct Sink {
    name: String,
    tmp: PathBuf,
    path: PathBuf,
    writer: ArrowWriter<BufWriter<File>>,
    rows: usize,
}

#[derive(Default)]
struct Sinks {
    open: Vec<Sink>,
    tmp_paths: Vec<PathBuf>,
}

impl Sinks {
    fn open(&mut self, dir: &Path, name: &str, schema: SchemaRef) -> Result<(), DemoError> {
        let path = dir.join(format!("{name}.parquet"));
        let tmp = dir.join(format!("{name}.parquet.tmp"));
        let file = File::create(&tmp).map_err(io_err(&tmp))?;
        self.tmp_paths.push(tmp.clone());
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let writer =
            ArrowWriter::try_new(BufWriter::new(file), schema, Some(props)).map_err(arrow_err)?;
        self.open.push(Sink {
            name: name.to_string(),
            tmp,
            path,
            writer,
            rows: 0,
        });
        Ok(())
    }

    fn write(&mut self, table: usize, batch: &RecordBatch) -> Result<(), DemoError> {
        let sink = self
            .open
            .get_mut(table)
            .ok_or_else(|| DemoError::Arrow(format!("no open writer for table #{table}")))?;
        sink.writer.write(batch).map_err(arrow_err)?;
        sink.rows += batch.num_rows();
        Ok(())
    }

    /// Finishes every file, then renames all of them into place.
    fn commit(mut self) -> Result<DemoSummary, DemoError> {
        let mut done = Vec::new();
        for sink in std::mem::take(&mut self.open) {
            let buffered = match sink.writer.into_inner() {
                Ok(buffered) => buffered,
                Err(err) => {
                    self.abort();
                    return Err(arrow_err(err));
                }
            };
            let synced = buffered
                .into_inner()
                .map_err(|err| err.into_error())
                .and_then(|file| file.sync_all());
            if let Err(err) = synced {
                self.abort();
                return Err(DemoError::Io(err, sink.tmp));
            }
            done.push((sink.name, sink.tmp, sink.path, sink.rows));
        }
        let mut tables = Vec::new();
        for (name, tmp, path, rows) in done {
            if let Err(err) = fs::rename(&tmp, &path) {
                self.abort();
                return Err(DemoError::Io(err, path));
            }
            tables.push((name, rows));
        }
        Ok(DemoSummary { tables })
    }

    /// Drops the writers and removes every temporary file (best effort).
    fn abort(&mut self) {
        self.open.clear();
        for tmp in self.tmp_paths.drain(..) {
            let _ = fs::remove_file(tmp);
        }
    }
}

// ---------------------------------------------------------------------------
// Schemas and Arrow builders

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

struct Schemas {
    customers: SchemaRef,
    purchased: SchemaRef,
    viewed: SchemaRef,
    added_to_cart: SchemaRef,
    email_opened: SchemaRef,
    ticket_opened: SchemaRef,
}

impl Schemas {
    fn new() -> Self {
        let key = || Field::new("customer_id", DataType::Int64, false);
        let ts = || Field::new("ts", ts_type(), false);
        let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);
        let customers = Schema::new(vec![
            key(),
            Field::new("age", DataType::Int64, true),
            Field::new("gender", DataType::Utf8, true),
            Field::new("income", DataType::Float64, true),
            utf8("country"),
            utf8("city"),
            Field::new("lat", DataType::Float64, false),
            Field::new("lon", DataType::Float64, false),
            Field::new(
                "interests",
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
                false,
            ),
            Field::new("signup_ts", ts_type(), false),
            Field::new("churn_score", DataType::Float64, false),
            Field::new("ltv", DataType::Float64, false),
            Field::new("email_opt_in", DataType::Boolean, false),
        ]);
        let purchased = Schema::new(vec![
            key(),
            ts(),
            Field::new("order_id", DataType::Int64, false),
            utf8("category"),
            Field::new("amount", DataType::Float64, false),
            utf8("channel"),
            utf8("product"),
        ]);
        let viewed = Schema::new(vec![
            key(),
            ts(),
            utf8("product"),
            utf8("category"),
            utf8("channel"),
        ]);
        let added_to_cart = Schema::new(vec![
            key(),
            ts(),
            utf8("product"),
            utf8("category"),
            Field::new("amount", DataType::Float64, false),
        ]);
        let email_opened = Schema::new(vec![key(), ts(), utf8("campaign"), utf8("channel")]);
        let ticket_opened = Schema::new(vec![
            key(),
            ts(),
            utf8("reason"),
            Field::new("priority", DataType::Int64, false),
        ]);
        Schemas {
            customers: Arc::new(customers),
            purchased: Arc::new(purchased),
            viewed: Arc::new(viewed),
            added_to_cart: Arc::new(added_to_cart),
            email_opened: Arc::new(email_opened),
            ticket_opened: Arc::new(ticket_opened),
        }
    }

    /// The schemas in the order of [`TABLES`].
    fn all(&self) -> [SchemaRef; 6] {
        [
            self.customers.clone(),
            self.purchased.clone(),
            self.viewed.clone(),
            self.added_to_cart.clone(),
            self.email_opened.clone(),
            self.ticket_opened.clone(),
        ]
    }
}

fn batch(schema: &SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch, DemoError> {
    RecordBatch::try_new(schema.clone(), columns).map_err(arrow_err)
}

struct CustomerCols {
    schema: SchemaRef,
    customer_id: Int64Builder,
    age: Int64Builder,
    gender: StringBuilder,
    income: Float64Builder,
    country: StringBuilder,
    city: StringBuilder,
    lat: Float64Builder,
    lon: Float64Builder,
    interests: ListBuilder<StringBuilder>,
    signup_ts: TimestampMicrosecondBuilder,
    churn_score: Float64Builder,
    ltv: Float64Builder,
    email_opt_in: BooleanBuilder,
}

impl CustomerCols {
    fn new(schema: SchemaRef) -> Self {
        CustomerCols {
            schema,
            customer_id: Int64Builder::new(),
            age: Int64Builder::new(),
            gender: StringBuilder::new(),
            income: Float64Builder::new(),
            country: StringBuilder::new(),
            city: StringBuilder::new(),
            lat: Float64Builder::new(),
            lon: Float64Builder::new(),
            interests: ListBuilder::new(StringBuilder::new()),
            signup_ts: TimestampMicrosecondBuilder::new(),
            churn_score: Float64Builder::new(),
            ltv: Float64Builder::new(),
            email_opt_in: BooleanBuilder::new(),
        }
    }

    fn len(&self) -> usize {
        self.customer_id.len()
    }

    fn push(&mut self, id: i64, p: &Profile) {
        self.customer_id.append_value(id);
        self.age.append_option(p.age);
        self.gender.append_option(p.gender);
        self.income.append_option(p.income);
        self.country.append_value(p.country);
        self.city.append_value(p.city);
        self.lat.append_value(p.lat);
        self.lon.append_value(p.lon);
        for (bit, name) in INTERESTS.iter().enumerate() {
            if p.interests & (1 << bit) != 0 {
                self.interests.values().append_value(name);
            }
        }
        self.interests.append(true);
        self.signup_ts.append_value(p.signup_ts);
        self.churn_score.append_value(p.churn_score);
        self.ltv.append_value(p.ltv);
        self.email_opt_in.append_value(p.email_opt_in);
    }

    fn finish(&mut self) -> Result<RecordBatch, DemoError> {
        batch(
            &self.schema,
            vec![
                Arc::new(self.customer_id.finish()),
                Arc::new(self.age.finish()),
                Arc::new(self.gender.finish()),
                Arc::new(self.income.finish()),
                Arc::new(self.country.finish()),
                Arc::new(self.city.finish()),
                Arc::new(self.lat.finish()),
                Arc::new(self.lon.finish()),
                Arc::new(self.interests.finish()),
                Arc::new(self.signup_ts.finish()),
                Arc::new(self.churn_score.finish()),
                Arc::new(self.ltv.finish()),
                Arc::new(self.email_opt_in.finish()),
            ],
        )
    }
}

struct PurchasedCols {
    schema: SchemaRef,
    customer_id: Int64Builder,
    ts: TimestampMicrosecondBuilder,
    order_id: Int64Builder,
    category: StringBuilder,
    amount: Float64Builder,
    channel: StringBuilder,
    product: StringBuilder,
}

impl PurchasedCols {
    fn new(schema: SchemaRef) -> Self {
        PurchasedCols {
            schema,
            customer_id: Int64Builder::new(),
            ts: TimestampMicrosecondBuilder::new(),
            order_id: Int64Builder::new(),
            category: StringBuilder::new(),
            amount: Float64Builder::new(),
            channel: StringBuilder::new(),
            product: StringBuilder::new(),
        }
    }

    fn len(&self) -> usize {
        self.customer_id.len()
    }

    fn finish(&mut self) -> Result<RecordBatch, DemoError> {
        batch(
            &self.schema,
            vec![
                Arc::new(self.customer_id.finish()),
                Arc::new(self.ts.finish()),
                Arc::new(self.order_id.finish()),
                Arc::new(self.category.finish()),
                Arc::new(self.amount.finish()),
                Arc::new(self.channel.finish()),
                Arc::new(self.product.finish()),
            ],
        )
    }
}

struct ViewedCols {
    schema: SchemaRef,
    customer_id: Int64Builder,
    ts: TimestampMicrosecondBuilder,
    product: StringBuilder,
    category: StringBuilder,
    channel: StringBuilder,
}

impl ViewedCols {
    fn new(schema: SchemaRef) -> Self {
        ViewedCols {
            schema,
            customer_id: Int64Builder::new(),
            ts: TimestampMicrosecondBuilder::new(),
            product: StringBuilder::new(),
            category: StringBuilder::new(),
            channel: StringBuilder::new(),
        }
    }

    fn len(&self) -> usize {
        self.customer_id.len()
    }

    fn finish(&mut self) -> Result<RecordBatch, DemoError> {
        batch(
            &self.schema,
            vec![
                Arc::new(self.customer_id.finish()),
                Arc::new(self.ts.finish()),
                Arc::new(self.product.finish()),
                Arc::new(self.category.finish()),
                Arc::new(self.channel.finish()),
            ],
        )
    }
}

struct CartCols {
    schema: SchemaRef,
    customer_id: Int64Builder,
    ts: TimestampMicrosecondBuilder,
    product: StringBuilder,
    category: StringBuilder,
    amount: Float64Builder,
}

impl CartCols {
    fn new(schema: SchemaRef) -> Self {
        CartCols {
            schema,
            customer_id: Int64Builder::new(),
            ts: TimestampMicrosecondBuilder::new(),
            product: StringBuilder::new(),
            category: StringBuilder::new(),
            amount: Float64Builder::new(),
        }
    }

    fn len(&self) -> usize {
        self.customer_id.len()
    }

    fn finish(&mut self) -> Result<RecordBatch, DemoError> {
        batch(
            &self.schema,
            vec![
                Arc::new(self.customer_id.finish()),
                Arc::new(self.ts.finish()),
                Arc::new(self.product.finish()),
                Arc::new(self.category.finish()),
                Arc::new(self.amount.finish()),
            ],
        )
    }
}

struct EmailCols {
    schema: SchemaRef,
    customer_id: Int64Builder,
    ts: TimestampMicrosecondBuilder,
    campaign: StringBuilder,
    channel: StringBuilder,
}

impl EmailCols {
    fn new(schema: SchemaRef) -> Self {
        EmailCols {
            schema,
            customer_id: Int64Builder::new(),
            ts: TimestampMicrosecondBuilder::new(),
            campaign: StringBuilder::new(),
            channel: StringBuilder::new(),
        }
    }

    fn len(&self) -> usize {
        self.customer_id.len()
    }

    fn finish(&mut self) -> Result<RecordBatch, DemoError> {
        batch(
            &self.schema,
            vec![
                Arc::new(self.customer_id.finish()),
                Arc::new(self.ts.finish()),
                Arc::new(self.campaign.finish()),
                Arc::new(self.channel.finish()),
            ],
        )
    }
}

struct TicketCols {
    schema: SchemaRef,
    customer_id: Int64Builder,
    ts: TimestampMicrosecondBuilder,
    reason: StringBuilder,
    priority: Int64Builder,
}

impl TicketCols {
    fn new(schema: SchemaRef) -> Self {
        TicketCols {
            schema,
            customer_id: Int64Builder::new(),
            ts: TimestampMicrosecondBuilder::new(),
            reason: StringBuilder::new(),
            priority: Int64Builder::new(),
        }
    }

    fn len(&self) -> usize {
        self.customer_id.len()
    }

    fn finish(&mut self) -> Result<RecordBatch, DemoError> {
        batch(
            &self.schema,
            vec![
                Arc::new(self.customer_id.finish()),
                Arc::new(self.ts.finish()),
                Arc::new(self.reason.finish()),
                Arc::new(self.priority.finish()),
            ],
        )
    }
}

/// The Arrow builders of all six tables; each is flushed to its sink when it
/// holds [`BATCH_ROWS`] rows.
struct TableBuilders {
    customers: CustomerCols,
    purchased: PurchasedCols,
    viewed: ViewedCols,
    added_to_cart: CartCols,
    email_opened: EmailCols,
    ticket_opened: TicketCols,
    /// Reused to format product names.
    text: String,
}

impl TableBuilders {
    fn new(schemas: &Schemas) -> Self {
        TableBuilders {
            customers: CustomerCols::new(schemas.customers.clone()),
            purchased: PurchasedCols::new(schemas.purchased.clone()),
            viewed: ViewedCols::new(schemas.viewed.clone()),
            added_to_cart: CartCols::new(schemas.added_to_cart.clone()),
            email_opened: EmailCols::new(schemas.email_opened.clone()),
            ticket_opened: TicketCols::new(schemas.ticket_opened.clone()),
            text: String::new(),
        }
    }

    fn push_customer(&mut self, id: i64, profile: &Profile, s: &Scratch, world: &World) {
        self.customers.push(id, profile);
        let t = &mut self.purchased;
        for p in &s.purchases {
            t.customer_id.append_value(id);
            t.ts.append_value(p.ts);
            t.order_id.append_value(p.order_id);
            t.category
                .append_value(CATEGORIES[p.item.category as usize].name);
            t.amount.append_value(p.amount);
            t.channel.append_value(CHANNELS[p.channel as usize]);
            product_name(&mut self.text, p.item);
            t.product.append_value(&self.text);
        }
        let t = &mut self.viewed;
        for v in &s.views {
            t.customer_id.append_value(id);
            t.ts.append_value(v.ts);
            product_name(&mut self.text, v.item);
            t.product.append_value(&self.text);
            t.category
                .append_value(CATEGORIES[v.item.category as usize].name);
            t.channel.append_value(CHANNELS[v.channel as usize]);
        }
        let t = &mut self.added_to_cart;
        for c in &s.carts {
            t.customer_id.append_value(id);
            t.ts.append_value(c.ts);
            product_name(&mut self.text, c.item);
            t.product.append_value(&self.text);
            t.category
                .append_value(CATEGORIES[c.item.category as usize].name);
            t.amount.append_value(c.amount);
        }
        let t = &mut self.email_opened;
        for e in &s.emails {
            t.customer_id.append_value(id);
            t.ts.append_value(e.ts);
            t.campaign.append_value(&world.campaigns[e.campaign].name);
            t.channel.append_value("email");
        }
        let t = &mut self.ticket_opened;
        for k in &s.tickets {
            t.customer_id.append_value(id);
            t.ts.append_value(k.ts);
            t.reason.append_value(TICKET_REASONS[k.reason as usize]);
            t.priority.append_value(k.priority);
        }
    }

    /// Writes every builder holding at least [`BATCH_ROWS`] rows (with
    /// `all`, every non-empty builder) to its sink.
    fn flush(&mut self, sinks: &mut Sinks, all: bool) -> Result<(), DemoError> {
        let min = if all { 1 } else { BATCH_ROWS };
        if self.customers.len() >= min {
            sinks.write(0, &self.customers.finish()?)?;
        }
        if self.purchased.len() >= min {
            sinks.write(1, &self.purchased.finish()?)?;
        }
        if self.viewed.len() >= min {
            sinks.write(2, &self.viewed.finish()?)?;
        }
        if self.added_to_cart.len() >= min {
            sinks.write(3, &self.added_to_cart.finish()?)?;
        }
        if self.email_opened.len() >= min {
            sinks.write(4, &self.email_opened.finish()?)?;
        }
        if self.ticket_opened.len() >= min {
            sinks.write(5, &self.ticket_opened.finish()?)?;
        }
        Ok(())
    }
}

fn product_name(out: &mut String, item: Item) {
    out.clear();
    let _ = write!(
        out,
        "{}-{:03}",
        CATEGORIES[item.category as usize].name, item.number
    );
}

// ---------------------------------------------------------------------------
// Reference data

struct City {
    name: &'static str,
    lat: f64,
    lon: f64,
    weight: f64,
}

struct Country {
    code: &'static str,
    weight: f64,
    /// Median yearly income of a 35–54 year old, in EUR.
    income: f64,
    cities: &'static [City],
}

const fn city(name: &'static str, lat: f64, lon: f64, weight: f64) -> City {
    City {
        name,
        lat,
        lon,
        weight,
    }
}

/// Countries with their share of customers and real cities (with their
/// coordinates). Freising, Dachau, Rosenheim and Augsburg sit around the
/// 50 km circle about Munich, so distance segments have a real boundary.
const COUNTRIES: [Country; 9] = [
    Country {
        code: "DE",
        weight: 35.0,
        income: 46_000.0,
        cities: &[
            city("Berlin", 52.520, 13.405, 30.0),
            city("Hamburg", 53.551, 9.994, 15.0),
            city("München", 48.137, 11.575, 14.0),
            city("Köln", 50.938, 6.960, 9.0),
            city("Frankfurt am Main", 50.110, 8.682, 7.0),
            city("Stuttgart", 48.776, 9.183, 6.0),
            city("Düsseldorf", 51.228, 6.774, 5.0),
            city("Leipzig", 51.340, 12.375, 5.0),
            city("Nürnberg", 49.452, 11.077, 4.0),
            city("Augsburg", 48.371, 10.898, 3.0),
            city("Freising", 48.403, 11.749, 2.0),
            city("Rosenheim", 47.857, 12.129, 2.0),
            city("Dachau", 48.260, 11.434, 1.0),
        ],
    },
    Country {
        code: "AT",
        weight: 8.0,
        income: 45_000.0,
        cities: &[
            city("Wien", 48.208, 16.373, 20.0),
            city("Graz", 47.071, 15.439, 6.0),
            city("Linz", 48.306, 14.286, 5.0),
            city("Salzburg", 47.809, 13.055, 4.0),
            city("Innsbruck", 47.269, 11.404, 3.0),
        ],
    },
    Country {
        code: "CH",
        weight: 7.0,
        income: 78_000.0,
        cities: &[
            city("Zürich", 47.377, 8.541, 10.0),
            city("Genève", 46.204, 6.143, 5.0),
            city("Basel", 47.560, 7.589, 4.0),
            city("Bern", 46.948, 7.447, 4.0),
            city("Lausanne", 46.520, 6.633, 3.0),
        ],
    },
    Country {
        code: "FR",
        weight: 12.0,
        income: 40_000.0,
        cities: &[
            city("Paris", 48.857, 2.352, 25.0),
            city("Marseille", 43.296, 5.370, 8.0),
            city("Lyon", 45.764, 4.836, 8.0),
            city("Toulouse", 43.605, 1.444, 6.0),
            city("Nice", 43.710, 7.262, 4.0),
            city("Bordeaux", 44.838, -0.579, 4.0),
            city("Lille", 50.629, 3.057, 4.0),
            city("Strasbourg", 48.573, 7.752, 3.0),
        ],
    },
    Country {
        code: "NL",
        weight: 8.0,
        income: 47_000.0,
        cities: &[
            city("Amsterdam", 52.370, 4.895, 12.0),
            city("Rotterdam", 51.924, 4.478, 8.0),
            city("Den Haag", 52.070, 4.300, 6.0),
            city("Utrecht", 52.091, 5.122, 5.0),
            city("Eindhoven", 51.441, 5.470, 3.0),
        ],
    },
    Country {
        code: "US",
        weight: 12.0,
        income: 55_000.0,
        cities: &[
            city("New York", 40.713, -74.006, 20.0),
            city("Los Angeles", 34.052, -118.244, 12.0),
            city("Chicago", 41.878, -87.630, 8.0),
            city("Houston", 29.760, -95.370, 6.0),
            city("San Francisco", 37.775, -122.419, 5.0),
            city("Seattle", 47.606, -122.332, 4.0),
            city("Boston", 42.360, -71.059, 4.0),
            city("Miami", 25.762, -80.192, 3.0),
        ],
    },
    Country {
        code: "GB",
        weight: 10.0,
        income: 42_000.0,
        cities: &[
            city("London", 51.507, -0.128, 25.0),
            city("Manchester", 53.481, -2.243, 6.0),
            city("Birmingham", 52.486, -1.890, 6.0),
            city("Glasgow", 55.864, -4.252, 4.0),
            city("Leeds", 53.801, -1.549, 4.0),
            city("Edinburgh", 55.953, -3.188, 3.0),
            city("Bristol", 51.455, -2.588, 3.0),
        ],
    },
    Country {
        code: "ES",
        weight: 4.0,
        income: 30_000.0,
        cities: &[
            city("Madrid", 40.417, -3.704, 12.0),
            city("Barcelona", 41.385, 2.173, 10.0),
            city("Valencia", 39.470, -0.376, 4.0),
            city("Sevilla", 37.389, -5.984, 3.0),
        ],
    },
    Country {
        code: "IT",
        weight: 4.0,
        income: 32_000.0,
        cities: &[
            city("Roma", 41.903, 12.496, 10.0),
            city("Milano", 45.464, 9.190, 10.0),
            city("Napoli", 40.852, 14.268, 5.0),
            city("Torino", 45.070, 7.686, 4.0),
            city("Bolzano", 46.498, 11.354, 1.0),
        ],
    },
];

const INTERESTS: [&str; 10] = [
    "fashion", "sports", "outdoor", "tech", "books", "beauty", "home", "travel", "gaming",
    "cooking",
];

struct Category {
    name: &'static str,
    /// Median list price in EUR.
    median_price: f64,
    /// Base weight of the category in a customer's preferences.
    weight: f64,
}

const CATEGORIES: [Category; 8] = [
    Category {
        name: "fashion",
        median_price: 50.0,
        weight: 3.0,
    },
    Category {
        name: "electronics",
        median_price: 150.0,
        weight: 2.0,
    },
    Category {
        name: "sports",
        median_price: 55.0,
        weight: 1.5,
    },
    Category {
        name: "home",
        median_price: 60.0,
        weight: 2.0,
    },
    Category {
        name: "beauty",
        median_price: 22.0,
        weight: 1.5,
    },
    Category {
        name: "books",
        median_price: 14.0,
        weight: 1.5,
    },
    Category {
        name: "toys",
        median_price: 28.0,
        weight: 1.0,
    },
    Category {
        name: "grocery",
        median_price: 9.0,
        weight: 1.5,
    },
];

/// Products per category: `fashion-000` … `fashion-299`.
const PRODUCTS_PER_CATEGORY: usize = 300;

/// How each interest (index into [`INTERESTS`]) raises category weights
/// (index into [`CATEGORIES`]).
const INTEREST_BOOSTS: [&[(usize, f64)]; 10] = [
    &[(0, 5.0)],           // fashion
    &[(2, 4.0)],           // sports
    &[(2, 3.0), (0, 0.5)], // outdoor
    &[(1, 4.0)],           // tech
    &[(5, 4.0)],           // books
    &[(4, 4.0)],           // beauty
    &[(3, 4.0)],           // home
    &[(0, 1.0), (2, 1.0)], // travel
    &[(1, 2.0), (6, 2.0)], // gaming
    &[(7, 3.0), (3, 1.0)], // cooking
];

const CHANNELS: [&str; 3] = ["web", "app", "store"];
/// How often each channel is a customer's usual one (and the channel of a
/// session outside the usual one).
const CHANNEL_SHARES: [f64; 3] = [0.55, 0.37, 0.08];
const WEB: u8 = 0;
const STORE: u8 = 2;

const TICKET_REASONS: [&str; 4] = ["delivery", "refund", "defect", "account"];

// ---------------------------------------------------------------------------
// Calendar helpers (proleptic Gregorian, UTC)

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

const fn micros(y: i64, m: i64, d: i64, hour: i64) -> i64 {
    days_from_civil(y, m, d) * DAY_US + hour * HOUR_US
}

struct Campaign {
    name: String,
    sent: i64,
    promo: bool,
}

/// The e-mail campaigns: a newsletter every Thursday at 09:00 UTC and the
/// seasonal promotions at 15:00 UTC.
fn campaigns() -> Vec<Campaign> {
    const PROMOS: [(&str, i64, i64, i64); 13] = [
        ("spring-sale-1997", 1997, 3, 20),
        ("mothers-day-1997", 1997, 5, 1),
        ("summer-sale-1997", 1997, 6, 26),
        ("back-to-school-1997", 1997, 8, 28),
        ("autumn-fashion-1997", 1997, 9, 25),
        ("black-friday-1997", 1997, 11, 28),
        ("xmas-gifts-1997", 1997, 12, 8),
        ("new-year-sale-1998", 1998, 1, 2),
        ("valentines-1998", 1998, 2, 5),
        ("spring-sale-1998", 1998, 3, 19),
        ("mothers-day-1998", 1998, 4, 30),
        ("summer-preview-1998", 1998, 6, 4),
        ("summer-sale-1998", 1998, 6, 25),
    ];
    let mut list = Vec::new();
    // 1997-01-02 is a Thursday.
    let mut day = days_from_civil(1997, 1, 2);
    while day * DAY_US + 9 * HOUR_US < AS_OF_US {
        let (y, m, d) = civil_from_days(day);
        list.push(Campaign {
            name: format!("newsletter-{y:04}-{m:02}-{d:02}"),
            sent: day * DAY_US + 9 * HOUR_US,
            promo: false,
        });
        day += 7;
    }
    for (name, y, m, d) in PROMOS {
        list.push(Campaign {
            name: name.to_string(),
            sent: micros(y, m, d, 15),
            promo: true,
        });
    }
    list.sort_by_key(|c| c.sent);
    list
}

/// Seasonal multiplier of the session rate: the Christmas season, the
/// January sales and the summer sales bring bursts of activity.
fn season(ts: i64) -> f64 {
    const PEAKS: [(i64, i64, f64); 5] = [
        (micros(1997, 11, 20, 0), micros(1997, 12, 24, 0), 2.0),
        (micros(1997, 12, 26, 0), micros(1998, 1, 8, 0), 1.4),
        (micros(1997, 6, 20, 0), micros(1997, 7, 10, 0), 1.3),
        (micros(1998, 6, 20, 0), micros(1998, 7, 1, 0), 1.4),
        (micros(1998, 3, 15, 0), micros(1998, 3, 31, 0), 1.2),
    ];
    PEAKS
        .iter()
        .find(|(from, to, _)| (*from..*to).contains(&ts))
        .map_or(1.0, |(_, _, factor)| *factor)
}

// ---------------------------------------------------------------------------
// Random helpers

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(rng: &mut StdRng) -> f64 {
    rng.random::<f64>()
}

/// A standard normal deviate (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1 = 1.0 - unit(rng); // (0, 1]
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// An exponentially distributed duration with the given mean, in microseconds.
fn exp_us(rng: &mut StdRng, mean_us: f64) -> i64 {
    (-(1.0 - unit(rng)).ln() * mean_us) as i64
}

fn pick(rng: &mut StdRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = unit(rng) * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len().saturating_sub(1)
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

// ---------------------------------------------------------------------------
// The simulation

/// A product: a category (index into [`CATEGORIES`]) and a number in it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Item {
    category: u8,
    number: u16,
}

struct Purchase {
    ts: i64,
    order_id: i64,
    item: Item,
    amount: f64,
    channel: u8,
}

struct View {
    ts: i64,
    item: Item,
    channel: u8,
}

struct Cart {
    ts: i64,
    item: Item,
    amount: f64,
}

struct EmailOpen {
    ts: i64,
    campaign: usize,
}

struct Ticket {
    ts: i64,
    reason: u8,
    priority: i64,
}

/// One customer's events, reused from customer to customer.
#[derive(Default)]
struct Scratch {
    purchases: Vec<Purchase>,
    views: Vec<View>,
    carts: Vec<Cart>,
    emails: Vec<EmailOpen>,
    tickets: Vec<Ticket>,
    /// Session start times; `true` for a click-through from an e-mail.
    sessions: Vec<(i64, bool)>,
    /// Products viewed in the current session, with the time of the view.
    seen: Vec<(Item, i64)>,
}

impl Scratch {
    fn clear(&mut self) {
        self.purchases.clear();
        self.views.clear();
        self.carts.clear();
        self.emails.clear();
        self.tickets.clear();
        self.sessions.clear();
        self.seen.clear();
    }
}

struct Profile {
    age: Option<i64>,
    gender: Option<&'static str>,
    income: Option<f64>,
    country: &'static str,
    city: &'static str,
    lat: f64,
    lon: f64,
    /// Bit set over [`INTERESTS`].
    interests: u16,
    signup_ts: i64,
    churn_score: f64,
    ltv: f64,
    email_opt_in: bool,
}

/// Behavioural parameters of a kind of customer.
struct Archetype {
    /// Share of customers (before the income adjustment of big spenders).
    share: f64,
    /// Browsing sessions per 30 days while active.
    sessions_per_month: f64,
    /// Probability that an online session puts something into the cart.
    cart: f64,
    /// Probability that a session with a cart ends in an order.
    convert: f64,
    /// Mean length of the active period in days.
    lifetime_days: f64,
    /// Picks the priciest of this many candidate products.
    premium: usize,
    /// Probability of buying two or three of an item.
    multi: f64,
}

const ARCHETYPES: [Archetype; 5] = [
    // Browsers never buy.
    Archetype {
        share: 0.22,
        sessions_per_month: 0.9,
        cart: 0.12,
        convert: 0.0,
        lifetime_days: 150.0,
        premium: 1,
        multi: 0.0,
    },
    // Occasional buyers.
    Archetype {
        share: 0.45,
        sessions_per_month: 1.3,
        cart: 0.45,
        convert: 0.60,
        lifetime_days: 200.0,
        premium: 1,
        multi: 0.15,
    },
    // Regulars.
    Archetype {
        share: 0.23,
        sessions_per_month: 1.8,
        cart: 0.45,
        convert: 0.65,
        lifetime_days: 380.0,
        premium: 1,
        multi: 0.2,
    },
    // Loyal, frequent buyers.
    Archetype {
        share: 0.07,
        sessions_per_month: 6.0,
        cart: 0.65,
        convert: 0.80,
        lifetime_days: 900.0,
        premium: 1,
        multi: 0.25,
    },
    // Big spenders: fewer sessions, expensive products, larger quantities.
    Archetype {
        share: 0.035,
        sessions_per_month: 2.5,
        cart: 0.55,
        convert: 0.75,
        lifetime_days: 500.0,
        premium: 4,
        multi: 0.45,
    },
];
const BIG_SPENDER: usize = 4;

/// Calibrates the overall volume: with this many sessions per month per
/// unit of archetype rate, the default options give about 20 events per
/// customer.
const ACTIVITY: f64 = 0.25;

/// Everything shared by all customers.
struct World {
    campaigns: Vec<Campaign>,
    /// List price of every product, `[category][number]`.
    prices: Vec<Vec<f64>>,
    /// Scales the volume of events to `events_per_customer`.
    volume: f64,
    country_weights: Vec<f64>,
    city_weights: Vec<Vec<f64>>,
    archetype_shares: [f64; 5],
    category_weights: [f64; 8],
}

impl World {
    fn new(options: &DemoOptions) -> Self {
        let prices = CATEGORIES
            .iter()
            .enumerate()
            .map(|(c, cat)| {
                (0..PRODUCTS_PER_CATEGORY)
                    .map(|n| list_price(cat.median_price, c, n))
                    .collect()
            })
            .collect();
        World {
            campaigns: campaigns(),
            prices,
            volume: options.events_per_customer as f64 / 20.0,
            country_weights: COUNTRIES.iter().map(|c| c.weight).collect(),
            city_weights: COUNTRIES
                .iter()
                .map(|c| c.cities.iter().map(|city| city.weight).collect())
                .collect(),
            archetype_shares: ARCHETYPES.map(|a| a.share),
            category_weights: CATEGORIES.map(|c| c.weight),
        }
    }

    fn price(&self, item: Item) -> f64 {
        self.prices[item.category as usize][item.number as usize]
    }

    /// Generates one customer: its events into `s`, its profile as result.
    fn customer(&self, rng: &mut StdRng, s: &mut Scratch, next_order_id: &mut i64) -> Profile {
        s.clear();

        // Demographics and geography.
        let country_index = pick(rng, &self.country_weights);
        let country = &COUNTRIES[country_index];
        let city = &country.cities[pick(rng, &self.city_weights[country_index])];
        let lat = round_to(city.lat + 0.025 * normal(rng), 5);
        let lon = round_to(city.lon + 0.035 * normal(rng), 5);
        let gender = match pick(rng, &[0.48, 0.47, 0.02, 0.03]) {
            0 => Some("f"),
            1 => Some("m"),
            2 => Some("d"),
            _ => None,
        };
        let age_value = if unit(rng) < 0.7 {
            (36.0 + 10.0 * normal(rng)).round() as i64
        } else {
            rng.random_range(18..80)
        }
        .clamp(18, 79);
        let age = (unit(rng) >= 0.015).then_some(age_value);
        let age_factor = match age_value {
            ..25 => 0.55,
            25..35 => 0.85,
            35..55 => 1.0,
            55..65 => 0.95,
            _ => 0.75,
        };
        let income_value =
            (country.income * age_factor * (0.45 * normal(rng)).exp() / 100.0).round() * 100.0;
        let income = (unit(rng) >= 0.05).then_some(income_value.max(3_000.0));
        let interests = interests(rng, gender, age_value);
        let email_opt_in = unit(rng) < 0.62;

        // Behaviour.
        let mut shares = self.archetype_shares;
        if income_value > 75_000.0 {
            shares[BIG_SPENDER] *= 4.0;
        }
        let kind = &ARCHETYPES[pick(rng, &shares)];
        let rate = kind.sessions_per_month * ACTIVITY * self.volume * (0.5 * normal(rng)).exp();
        let start = if unit(rng) < 0.45 {
            START_US + exp_us(rng, 20.0 * DAY_US as f64)
        } else {
            rng.random_range(START_US..AS_OF_US - DAY_US)
        }
        .min(AS_OF_US - HOUR_US);
        let end =
            (start + 7 * DAY_US + exp_us(rng, kind.lifetime_days * DAY_US as f64)).min(AS_OF_US);
        let existing = start < START_US + 30 * DAY_US && unit(rng) < 0.8;
        let signup_ts = if existing {
            START_US - rng.random_range(DAY_US..3 * 365 * DAY_US)
        } else {
            start - 10 * MINUTE_US - exp_us(rng, 3.0 * DAY_US as f64)
        };
        let mut preference = self.category_weights;
        for (bit, boosts) in INTEREST_BOOSTS.iter().enumerate() {
            if interests & (1 << bit) != 0 {
                for (category, boost) in *boosts {
                    preference[*category] += boost;
                }
            }
        }
        if (30..50).contains(&age_value) {
            preference[6] += 1.5; // parents buy toys
        }
        let home_channel = pick(rng, &CHANNEL_SHARES) as u8;

        // E-mail opens, some of which lead to a visit of the shop.
        if email_opt_in && self.volume > 0.0 {
            let open_rate = if unit(rng) < 0.15 {
                0.25 + 0.35 * unit(rng)
            } else {
                0.01 + 0.06 * unit(rng)
            };
            let open_rate = (open_rate * self.volume).min(0.95);
            for (index, campaign) in self.campaigns.iter().enumerate() {
                if campaign.sent <= signup_ts {
                    continue;
                }
                let mut p = open_rate;
                if campaign.promo {
                    p *= 1.5;
                }
                if campaign.sent > end {
                    p *= 0.4;
                }
                if unit(rng) >= p {
                    continue;
                }
                let ts = campaign.sent + 2 * MINUTE_US + exp_us(rng, 5.0 * HOUR_US as f64);
                if ts >= AS_OF_US {
                    continue;
                }
                s.emails.push(EmailOpen {
                    ts,
                    campaign: index,
                });
                let click = if ts <= end { 0.25 } else { 0.08 };
                if ts >= start && unit(rng) < click {
                    s.sessions
                        .push((ts + 30_000_000 + exp_us(rng, 10.0 * MINUTE_US as f64), true));
                }
            }
        }

        // Sessions of their own, with bursts.
        if self.volume > 0.0 {
            let mut t = start;
            while t < end {
                s.sessions.push((t, false));
                let gap = if unit(rng) < 0.3 {
                    exp_us(rng, 1.5 * DAY_US as f64)
                } else {
                    exp_us(rng, 30.0 * DAY_US as f64 / rate.max(1e-3))
                };
                t += (gap as f64 / season(t)) as i64 + 10 * MINUTE_US;
            }
        }
        s.sessions.sort_unstable();

        // What happens in each session.
        let mut spent = 0.0;
        let sessions = std::mem::take(&mut s.sessions);
        for &(t, from_email) in &sessions {
            let mut channel = if unit(rng) < 0.7 {
                home_channel
            } else {
                pick(rng, &CHANNEL_SHARES) as u8
            };
            if from_email && channel == STORE {
                channel = WEB;
            }
            if channel == STORE {
                if kind.convert > 0.0 && unit(rng) < 0.6 {
                    spent += self.store_visit(rng, s, kind, &preference, t, next_order_id);
                }
                continue;
            }
            spent += self.online_session(rng, s, kind, &preference, t, channel, next_order_id);
        }
        s.sessions = sessions;

        // A few tickets about the account.
        if self.volume > 0.0 && unit(rng) < 0.03 {
            let ts = rng.random_range(start..AS_OF_US);
            let priority = [3, 3, 3, 2, 1][rng.random_range(0..5)];
            s.tickets.push(Ticket {
                ts,
                reason: 3,
                priority,
            });
        }

        // Nothing at or after `as_of`; each table in time order.
        s.purchases.retain(|e| e.ts < AS_OF_US);
        s.views.retain(|e| e.ts < AS_OF_US);
        s.carts.retain(|e| e.ts < AS_OF_US);
        s.emails.retain(|e| e.ts < AS_OF_US);
        s.tickets.retain(|e| e.ts < AS_OF_US);
        s.purchases.sort_by_key(|e| e.ts);
        s.views.sort_by_key(|e| e.ts);
        s.carts.sort_by_key(|e| e.ts);
        s.emails.sort_by_key(|e| e.ts);
        s.tickets.sort_by_key(|e| e.ts);

        // Predictive scores that agree with the behaviour.
        let last_activity = s
            .purchases
            .iter()
            .map(|e| e.ts)
            .chain(s.views.iter().map(|e| e.ts))
            .chain(s.carts.iter().map(|e| e.ts))
            .max()
            .unwrap_or(start);
        let idle_days = (AS_OF_US - last_activity) as f64 / DAY_US as f64;
        let churn_score = round_to(logistic((idle_days - 150.0) / 50.0 + 0.7 * normal(rng)), 4);
        let ltv = if spent > 0.0 {
            spent * (0.8 + 1.6 * (1.0 - churn_score)) * (0.2 * normal(rng)).exp()
        } else {
            40.0 * unit(rng) * (1.0 - churn_score)
        };

        Profile {
            age,
            gender,
            income,
            country: country.code,
            city: city.name,
            lat,
            lon,
            interests,
            signup_ts,
            churn_score,
            ltv: round_to(ltv, 2),
            email_opt_in,
        }
    }

    fn choose_item(&self, rng: &mut StdRng, preference: &[f64], kind: &Archetype) -> Item {
        let category = pick(rng, preference) as u8;
        let mut best: Option<Item> = None;
        for _ in 0..kind.premium.max(1) {
            // Low numbers are the bestsellers.
            let number = ((PRODUCTS_PER_CATEGORY as f64) * unit(rng).powf(1.8)) as u16;
            let item = Item {
                category,
                number: number.min(PRODUCTS_PER_CATEGORY as u16 - 1),
            };
            if best.is_none_or(|b| self.price(item) > self.price(b)) {
                best = Some(item);
            }
        }
        best.unwrap_or(Item {
            category,
            number: 0,
        })
    }

    /// Price of buying one, two or three of `item`, at most 2000.
    fn line_amount(&self, rng: &mut StdRng, item: Item, kind: &Archetype) -> f64 {
        let price = self.price(item);
        let mut quantity = if unit(rng) < kind.multi {
            if unit(rng) < 0.7 { 2.0 } else { 3.0 }
        } else {
            1.0
        };
        while quantity > 1.0 && price * quantity > 2000.0 {
            quantity -= 1.0;
        }
        round_to(price * quantity, 2)
    }

    /// A visit to a shop: an order without views or carts. Returns the amount spent.
    fn store_visit(
        &self,
        rng: &mut StdRng,
        s: &mut Scratch,
        kind: &Archetype,
        preference: &[f64],
        t: i64,
        next_order_id: &mut i64,
    ) -> f64 {
        let order_id = *next_order_id;
        *next_order_id += 1;
        let lines = 1 + usize::from(unit(rng) < 0.3) + usize::from(unit(rng) < 0.1);
        let mut spent = 0.0;
        for _ in 0..lines {
            let item = self.choose_item(rng, preference, kind);
            let amount = self.line_amount(rng, item, kind);
            spent += amount;
            s.purchases.push(Purchase {
                ts: t,
                order_id,
                item,
                amount,
                channel: STORE,
            });
            self.maybe_ticket(rng, s, t);
        }
        spent
    }

    /// An online session: views, maybe an add-to-cart of viewed products,
    /// maybe an order of the cart. Returns the amount spent.
    #[allow(clippy::too_many_arguments)]
    fn online_session(
        &self,
        rng: &mut StdRng,
        s: &mut Scratch,
        kind: &Archetype,
        preference: &[f64],
        start: i64,
        channel: u8,
        next_order_id: &mut i64,
    ) -> f64 {
        s.seen.clear();
        let mut t = start;
        let mut views = 1;
        while views < 8 && unit(rng) < 0.4 {
            views += 1;
        }
        let focus = self.choose_item(rng, preference, kind);
        for i in 0..views {
            let item = if i == 0 {
                focus
            } else if unit(rng) < 0.7 {
                // More of the same category.
                let mut other = self.choose_item(rng, preference, kind);
                other.category = focus.category;
                other
            } else {
                self.choose_item(rng, preference, kind)
            };
            s.views.push(View {
                ts: t,
                item,
                channel,
            });
            s.seen.push((item, t));
            t += 10_000_000 + exp_us(rng, 2.5 * MINUTE_US as f64);
        }
        if unit(rng) >= kind.cart {
            return 0.0;
        }
        let lines = 1 + usize::from(unit(rng) < 0.25);
        let mut cart: Vec<(Item, f64)> = Vec::with_capacity(lines);
        for _ in 0..lines {
            let (item, _) = s.seen[rng.random_range(0..s.seen.len())];
            if cart.iter().any(|(i, _)| *i == item) {
                continue;
            }
            let amount = self.line_amount(rng, item, kind);
            s.carts.push(Cart {
                ts: t,
                item,
                amount,
            });
            cart.push((item, amount));
            t += 20_000_000 + exp_us(rng, 90_000_000.0);
        }
        if unit(rng) >= kind.convert {
            return 0.0;
        }
        let ts = t + MINUTE_US + exp_us(rng, 8.0 * MINUTE_US as f64);
        let order_id = *next_order_id;
        *next_order_id += 1;
        let mut spent = 0.0;
        for (item, amount) in cart {
            spent += amount;
            s.purchases.push(Purchase {
                ts,
                order_id,
                item,
                amount,
                channel,
            });
            self.maybe_ticket(rng, s, ts);
        }
        spent
    }

    /// Sometimes an order line leads to a support ticket a few days later.
    fn maybe_ticket(&self, rng: &mut StdRng, s: &mut Scratch, ordered: i64) {
        if unit(rng) >= 0.035 {
            return;
        }
        let ts = ordered + DAY_US + exp_us(rng, 4.0 * DAY_US as f64);
        let reason = pick(rng, &[0.45, 0.30, 0.25]) as u8;
        let priority = match reason {
            0 => [2, 3, 3][rng.random_range(0..3)],
            1 => [1, 2, 2, 2, 3][rng.random_range(0..5)],
            _ => [1, 1, 2, 2, 3][rng.random_range(0..5)],
        };
        s.tickets.push(Ticket {
            ts,
            reason,
            priority,
        });
    }
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The list price of product `number` of a category: lognormal around the
/// category's median, ending in .99, .49 or .95, between 5.99 and 1999.99.
fn list_price(median: f64, category: usize, number: usize) -> f64 {
    let h = splitmix64(0x5EC9_u64 ^ ((category as u64) << 32) ^ number as u64);
    let u1 = ((h >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let u2 = (splitmix64(h) >> 11) as f64 / (1u64 << 53) as f64;
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    let p = (median * (0.75 * z).exp()).clamp(5.0, 1995.0);
    let price = if p < 20.0 {
        p.floor() + 0.99
    } else if p < 100.0 {
        p.floor() + if h.is_multiple_of(3) { 0.49 } else { 0.99 }
    } else {
        (p / 5.0).floor() * 5.0 + if h.is_multiple_of(4) { 4.95 } else { 4.99 }
    };
    round_to(price, 2)
}

/// Zero to four interests, drawn without replacement with weights that
/// depend a little on gender and age.
fn interests(rng: &mut StdRng, gender: Option<&str>, age: i64) -> u16 {
    let count = pick(rng, &[0.15, 0.25, 0.30, 0.20, 0.10]);
    let female = gender == Some("f");
    let male = gender == Some("m");
    let mut weights = [
        if female {
            3.0
        } else if male {
            1.0
        } else {
            2.0
        }, // fashion
        if male { 2.5 } else { 1.5 },     // sports
        1.5,                              // outdoor
        if male { 2.5 } else { 1.0 },     // tech
        if age > 40 { 2.2 } else { 1.5 }, // books
        if female {
            2.5
        } else if male {
            0.5
        } else {
            1.5
        }, // beauty
        if age > 35 { 2.0 } else { 1.0 }, // home
        1.5,                              // travel
        if age < 35 {
            if male { 2.5 } else { 1.2 }
        } else {
            0.5
        }, // gaming
        1.5,                              // cooking
    ];
    let mut set = 0u16;
    for _ in 0..count {
        let i = pick(rng, &weights);
        set |= 1 << i;
        weights[i] = 0.0;
    }
    set
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::TimestampMicrosecondType;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn small(customers: usize) -> DemoOptions {
        DemoOptions {
            customers,
            ..DemoOptions::default()
        }
    }

    fn read(path: &Path) -> (SchemaRef, Vec<RecordBatch>) {
        let file = File::open(path).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let schema = builder.schema().clone();
        let batches = builder
            .build()
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        (schema, batches)
    }

    #[test]
    fn constants_are_the_documented_dates() {
        let start = chrono::DateTime::parse_from_rfc3339("1997-01-01T00:00:00Z").unwrap();
        let as_of = chrono::DateTime::parse_from_rfc3339(AS_OF).unwrap();
        assert_eq!(START_US, start.timestamp_micros());
        assert_eq!(AS_OF_US, as_of.timestamp_micros());
        assert_eq!(
            civil_from_days(days_from_civil(1998, 2, 28) + 1),
            (1998, 3, 1)
        );
        assert_eq!(
            civil_from_days(days_from_civil(1996, 2, 28) + 1),
            (1996, 2, 29)
        );
    }

    #[test]
    fn same_seed_same_bytes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let sa = generate(&small(300), a.path()).unwrap();
        let sb = generate(&small(300), b.path()).unwrap();
        assert_eq!(sa, sb);
        for name in TABLES {
            let file = format!("{name}.parquet");
            let x = fs::read(a.path().join(&file)).unwrap();
            let y = fs::read(b.path().join(&file)).unwrap();
            assert!(x == y, "{file} differs between two runs");
        }
        assert_eq!(
            fs::read(a.path().join("segql.toml")).unwrap(),
            fs::read(b.path().join("segql.toml")).unwrap()
        );
        let c = tempfile::tempdir().unwrap();
        let other = DemoOptions {
            seed: 7,
            ..small(300)
        };
        generate(&other, c.path()).unwrap();
        assert_ne!(
            fs::read(a.path().join("purchased.parquet")).unwrap(),
            fs::read(c.path().join("purchased.parquet")).unwrap()
        );
    }

    #[test]
    fn rows_scale_with_customers() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let small_run = generate(&small(200), a.path()).unwrap();
        let large_run = generate(&small(1000), b.path()).unwrap();
        assert_eq!(small_run.rows("customers"), Some(200));
        assert_eq!(large_run.rows("customers"), Some(1000));
        let names: Vec<&str> = large_run.tables.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, TABLES);
        for name in &TABLES[1..] {
            let s = small_run.rows(name).unwrap();
            let l = large_run.rows(name).unwrap();
            assert!(s > 0 && l > 3 * s && l < 7 * s, "{name}: {s} vs {l}");
        }
        // About `events_per_customer` events per customer.
        let per_customer = large_run.event_rows() as f64 / 1000.0;
        assert!((15.0..25.0).contains(&per_customer), "{per_customer}");
        // The first customers of a larger dataset are those of the smaller one.
        let (_, small_batches) = read(&a.path().join("customers.parquet"));
        let (_, large_batches) = read(&b.path().join("customers.parquet"));
        assert_eq!(small_batches[0], large_batches[0].slice(0, 200));
        // More events per customer when asked.
        let c = tempfile::tempdir().unwrap();
        let busy = DemoOptions {
            events_per_customer: 40,
            ..small(200)
        };
        let busy_run = generate(&busy, c.path()).unwrap();
        assert!(busy_run.event_rows() > small_run.event_rows() * 3 / 2);
    }

    #[test]
    fn files_read_back_with_the_expected_schema() {
        let dir = tempfile::tempdir().unwrap();
        let summary = generate(&small(250), dir.path()).unwrap();
        let schemas = Schemas::new();
        for (name, expected) in TABLES.iter().zip(schemas.all()) {
            let (schema, batches) = read(&dir.path().join(format!("{name}.parquet")));
            let fields: Vec<_> = schema
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
                .collect();
            let want: Vec<_> = expected
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
                .collect();
            assert_eq!(fields, want, "{name}");
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            assert_eq!(Some(rows), summary.rows(name), "{name}");
            assert!(!dir.path().join(format!("{name}.parquet.tmp")).exists());
        }
        assert_eq!(
            schemas
                .customers
                .field_with_name("interests")
                .unwrap()
                .data_type(),
            &DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
        );
        let toml = fs::read_to_string(dir.path().join("segql.toml")).unwrap();
        assert!(toml.contains("as_of = \"1998-07-01T00:00:00Z\""));
        assert!(toml.contains("[events.ticket_opened]"));
        assert!(!toml.contains("segments"));
        // With a segments.seg next to the data, the catalog lists it.
        fs::write(dir.path().join("segments.seg"), "segment all = true\n").unwrap();
        generate(&small(10), dir.path()).unwrap();
        let toml = fs::read_to_string(dir.path().join("segql.toml")).unwrap();
        assert!(toml.contains("segments = [\"segments.seg\"]"));
    }

    #[test]
    fn events_fall_in_the_period_after_signup() {
        let dir = tempfile::tempdir().unwrap();
        generate(&small(400), dir.path()).unwrap();
        let (_, customers) = read(&dir.path().join("customers.parquet"));
        let mut signup = std::collections::HashMap::new();
        for b in &customers {
            let ids = b
                .column(0)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            let ts = b.column(9).as_primitive::<TimestampMicrosecondType>();
            for i in 0..b.num_rows() {
                signup.insert(ids.value(i), ts.value(i));
            }
        }
        assert_eq!(signup.len(), 400);
        for name in &TABLES[1..] {
            let (_, batches) = read(&dir.path().join(format!("{name}.parquet")));
            let mut last_id = 0;
            for b in &batches {
                let ids = b
                    .column(0)
                    .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                let ts = b.column(1).as_primitive::<TimestampMicrosecondType>();
                assert_eq!(ts.null_count(), 0);
                for i in 0..b.num_rows() {
                    let t = ts.value(i);
                    assert!((START_US..AS_OF_US).contains(&t), "{name}: {t}");
                    assert!(signup[&ids.value(i)] < t, "{name}: event before signup");
                    assert!(ids.value(i) >= last_id, "{name}: not grouped by customer");
                    last_id = ids.value(i);
                }
            }
        }
    }

    #[test]
    fn purchases_follow_views_and_carts() {
        let world = World::new(&DemoOptions::default());
        let mut scratch = Scratch::default();
        let mut order = 1;
        let (mut lines, mut preceded, mut buyers, mut never) = (0, 0, 0, 0);
        for id in 1..=300 {
            let mut rng = StdRng::seed_from_u64(splitmix64(42 ^ splitmix64(id)));
            world.customer(&mut rng, &mut scratch, &mut order);
            if scratch.purchases.is_empty() {
                never += 1;
            } else {
                buyers += 1;
            }
            for p in &scratch.purchases {
                assert!((5.0..=2000.0).contains(&p.amount), "{}", p.amount);
                lines += 1;
                let viewed = scratch
                    .views
                    .iter()
                    .any(|v| v.item == p.item && v.ts < p.ts);
                let carted = scratch
                    .carts
                    .iter()
                    .any(|c| c.item == p.item && c.ts < p.ts);
                if viewed && carted {
                    preceded += 1;
                }
            }
        }
        assert!(preceded * 10 > lines * 7, "{preceded} of {lines}");
        assert!(
            never > 30 && buyers > 150,
            "{never} never bought, {buyers} did"
        );
    }

    #[test]
    fn io_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("not-a-dir");
        fs::write(&blocked, "x").unwrap();
        let err = generate(&small(5), &blocked).unwrap_err();
        assert!(matches!(err, DemoError::Io(..)), "{err}");
        assert!(err.to_string().contains("not-a-dir"));
    }
}
