//! A generated world: a catalog of one profile table and one to three event tables, their
//! rows (kept here for the reference evaluator), and the same rows written as Parquet for
//! the compiler. Column names say their type (`p_int0`, `e_str1`), so expressions can be
//! generated without knowing a world, and rendered against one.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, ListBuilder, StringArray,
    StringBuilder, TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const DAY: i64 = 86_400_000_000_000;
pub const HOUR: i64 = 3_600_000_000_000;

/// A value as the reference evaluator sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// Nanoseconds since the epoch, UTC.
    Ts(i64),
    /// Nanoseconds.
    Dur(i64),
    List(Vec<V>),
}

/// The types columns are generated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Bool,
    Int,
    Float,
    Str,
    Ts,
    StrList,
}

impl Ty {
    pub fn prefix(self) -> &'static str {
        match self {
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Float => "float",
            Ty::Str => "str",
            Ty::Ts => "ts",
            Ty::StrList => "tags",
        }
    }
}

/// How a timestamp column is stored: the reference sees nanoseconds whatever the storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeStorage {
    Nanos { utc: bool },
    Micros { utc: bool },
    Millis { utc: bool },
    Date,
}

impl TimeStorage {
    /// The smallest step the storage can represent, in nanoseconds.
    fn unit(self) -> i64 {
        match self {
            TimeStorage::Nanos { .. } => 1,
            TimeStorage::Micros { .. } => 1_000,
            TimeStorage::Millis { .. } => 1_000_000,
            TimeStorage::Date => DAY,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub ty: Ty,
    pub time_storage: TimeStorage,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    /// Column 0 is the key; in an event table column 1 is the time.
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<V>>,
}

impl Table {
    pub fn index(&self, name: &str) -> usize {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .unwrap_or_else(|| panic!("no column {name} in {}", self.name))
    }

    /// The names of the columns of a type, key and time excluded unless `with_time`.
    pub fn names_of(&self, ty: Ty) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|c| c.ty == ty && c.name != "id")
            .map(|c| c.name.as_str())
            .collect()
    }
}

#[derive(Debug)]
pub struct World {
    pub seed: u64,
    pub as_of: i64,
    pub profiles: Table,
    pub events: Vec<Table>,
}

/// Values drawn from small pools, so that equalities, ties and window edges happen.
pub const STRINGS: [&str; 11] = [
    "", "a", "A", "ab", "b", " b ", "é", "ß", "x\ty", "Ab", "\tq",
];

fn maybe_null(rng: &mut StdRng, value: V) -> V {
    if rng.random_bool(0.15) {
        V::Null
    } else {
        value
    }
}

fn value(rng: &mut StdRng, ty: Ty, as_of: i64, storage: TimeStorage) -> V {
    let v = match ty {
        Ty::Bool => V::Bool(rng.random_bool(0.5)),
        Ty::Int => V::Int(rng.random_range(-5..=20)),
        Ty::Float => V::Float(rng.random_range(-40..=200) as f64 * 0.25),
        Ty::Str => V::Str(STRINGS[rng.random_range(0..STRINGS.len())].to_string()),
        Ty::Ts => V::Ts(time(rng, as_of, storage)),
        Ty::StrList => {
            let n = rng.random_range(0..=3);
            V::List(
                (0..n)
                    .map(|_| V::Str(STRINGS[rng.random_range(0..4)].to_string()))
                    .collect(),
            )
        }
    };
    maybe_null(rng, v)
}

/// A time on a coarse grid around `as_of` (whole days, some hours, some one storage unit
/// off a day boundary), a few of them after `as_of`.
fn time(rng: &mut StdRng, as_of: i64, storage: TimeStorage) -> i64 {
    let days = rng.random_range(-120..=3);
    let base = as_of + days * DAY;
    let unit = storage.unit();
    let t = match rng.random_range(0..6) {
        0 => base + rng.random_range(0..24) * HOUR,
        1 => base - unit,
        2 => base + unit,
        _ => base,
    };
    // Round down to what the storage holds.
    t.div_euclid(unit) * unit
}

fn time_storage(rng: &mut StdRng) -> TimeStorage {
    let utc = rng.random_bool(0.7);
    match rng.random_range(0..8) {
        0..=2 => TimeStorage::Nanos { utc },
        3 | 4 => TimeStorage::Micros { utc },
        5 | 6 => TimeStorage::Millis { utc },
        _ => TimeStorage::Date,
    }
}

fn columns(rng: &mut StdRng, prefix: &str, types: &[(Ty, usize, usize)]) -> Vec<Column> {
    let mut out = Vec::new();
    for &(ty, min, max) in types {
        for i in 0..rng.random_range(min..=max) {
            out.push(Column {
                name: format!("{prefix}_{}{i}", ty.prefix()),
                ty,
                time_storage: time_storage(rng),
            });
        }
    }
    out
}

impl World {
    pub fn generate(seed: u64) -> World {
        let mut rng = StdRng::seed_from_u64(seed);
        // Midnight or noon, so date literals fall on window edges.
        let as_of = 1_710_028_800_000_000_000 + rng.random_range(0..2) * 12 * HOUR;
        let mut profile_columns = vec![Column {
            name: "id".into(),
            ty: Ty::Int,
            time_storage: TimeStorage::Nanos { utc: true },
        }];
        profile_columns.extend(columns(
            &mut rng,
            "p",
            &[
                (Ty::Int, 1, 2),
                (Ty::Float, 1, 3),
                (Ty::Str, 1, 2),
                (Ty::Bool, 0, 1),
                (Ty::Ts, 1, 2),
                (Ty::StrList, 0, 1),
            ],
        ));
        let customers = rng.random_range(15..=40);
        let profile_rows = (1..=customers)
            .map(|id| {
                let mut row = vec![V::Int(id)];
                row.extend(
                    profile_columns[1..]
                        .iter()
                        .map(|c| value(&mut rng, c.ty, as_of, c.time_storage)),
                );
                row
            })
            .collect();
        let profiles = Table {
            name: "profiles".into(),
            columns: profile_columns,
            rows: profile_rows,
        };
        let events = (0..rng.random_range(1..=3))
            .map(|e| {
                let mut columns_of_event = vec![
                    Column {
                        name: "id".into(),
                        ty: Ty::Int,
                        time_storage: TimeStorage::Nanos { utc: true },
                    },
                    Column {
                        name: "ts".into(),
                        ty: Ty::Ts,
                        time_storage: time_storage(&mut rng),
                    },
                ];
                columns_of_event.extend(columns(
                    &mut rng,
                    "e",
                    &[
                        (Ty::Int, 1, 2),
                        (Ty::Float, 1, 2),
                        (Ty::Str, 1, 2),
                        (Ty::Bool, 0, 1),
                        (Ty::Ts, 0, 1),
                    ],
                ));
                let mut rows = Vec::new();
                for id in 1..=customers + 3 {
                    // Some customers have no events; keys past the last profile are orphans.
                    let n = if rng.random_bool(0.25) {
                        0
                    } else {
                        rng.random_range(1..=7)
                    };
                    for _ in 0..n {
                        let mut row = vec![V::Int(id)];
                        let ts = time(&mut rng, as_of, columns_of_event[1].time_storage);
                        // Rarely an event without a time, or without a key.
                        row.push(if rng.random_bool(0.03) {
                            V::Null
                        } else {
                            V::Ts(ts)
                        });
                        if rng.random_bool(0.02) {
                            row[0] = V::Null;
                        }
                        row.extend(
                            columns_of_event[2..]
                                .iter()
                                .map(|c| value(&mut rng, c.ty, as_of, c.time_storage)),
                        );
                        rows.push(row);
                    }
                }
                Table {
                    name: format!("ev{e}"),
                    columns: columns_of_event,
                    rows,
                }
            })
            .collect();
        World {
            seed,
            as_of,
            profiles,
            events,
        }
    }

    /// Writes every table as Parquet into `dir` and returns the catalog text.
    pub fn write(&self, dir: &Path) -> String {
        let mut catalog = String::from("[profiles]\nsource = \"profiles.parquet\"\nkey = \"id\"\n");
        write_parquet(&self.profiles, &dir.join("profiles.parquet"));
        for event in &self.events {
            let file = format!("{}.parquet", event.name);
            write_parquet(event, &dir.join(&file));
            catalog.push_str(&format!(
                "\n[events.{}]\nsource = \"{file}\"\nkey = \"id\"\ntime = \"ts\"\n",
                event.name
            ));
        }
        catalog
    }
}

fn write_parquet(table: &Table, path: &Path) {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (i, column) in table.columns.iter().enumerate() {
        let values: Vec<&V> = table.rows.iter().map(|r| &r[i]).collect();
        let (data_type, array) = array(column, &values);
        fields.push(Field::new(&column.name, data_type, true));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays).expect("a consistent batch");
    let file = File::create(path).expect("create a Parquet file");
    let mut writer = ArrowWriter::try_new(file, schema, None).expect("a Parquet writer");
    writer.write(&batch).expect("write a batch");
    writer.close().expect("close the Parquet file");
}

fn array(column: &Column, values: &[&V]) -> (DataType, ArrayRef) {
    match column.ty {
        Ty::Bool => (
            DataType::Boolean,
            Arc::new(
                values
                    .iter()
                    .map(|v| match v {
                        V::Bool(b) => Some(*b),
                        _ => None,
                    })
                    .collect::<BooleanArray>(),
            ),
        ),
        Ty::Int => (
            DataType::Int64,
            Arc::new(
                values
                    .iter()
                    .map(|v| match v {
                        V::Int(i) => Some(*i),
                        _ => None,
                    })
                    .collect::<Int64Array>(),
            ),
        ),
        Ty::Float => (
            DataType::Float64,
            Arc::new(
                values
                    .iter()
                    .map(|v| match v {
                        V::Float(x) => Some(*x),
                        _ => None,
                    })
                    .collect::<Float64Array>(),
            ),
        ),
        Ty::Str => (
            DataType::Utf8,
            Arc::new(
                values
                    .iter()
                    .map(|v| match v {
                        V::Str(s) => Some(s.as_str()),
                        _ => None,
                    })
                    .collect::<StringArray>(),
            ),
        ),
        Ty::StrList => {
            let mut builder = ListBuilder::new(StringBuilder::new());
            for v in values {
                match v {
                    V::List(items) => {
                        for item in items {
                            match item {
                                V::Str(s) => builder.values().append_value(s),
                                _ => builder.values().append_null(),
                            }
                        }
                        builder.append(true);
                    }
                    _ => builder.append(false),
                }
            }
            let array = builder.finish();
            (array.data_type().clone(), Arc::new(array))
        }
        Ty::Ts => {
            let nanos = values.iter().map(|v| match v {
                V::Ts(t) => Some(*t),
                _ => None,
            });
            let tz = |utc: bool| utc.then(|| Arc::<str>::from("UTC"));
            match column.time_storage {
                TimeStorage::Nanos { utc } => {
                    let a = nanos
                        .collect::<TimestampNanosecondArray>()
                        .with_timezone_opt(tz(utc));
                    (a.data_type().clone(), Arc::new(a))
                }
                TimeStorage::Micros { utc } => {
                    let a = nanos
                        .map(|t| t.map(|t| t / 1_000))
                        .collect::<TimestampMicrosecondArray>()
                        .with_timezone_opt(tz(utc));
                    (a.data_type().clone(), Arc::new(a))
                }
                TimeStorage::Millis { utc } => {
                    let a = nanos
                        .map(|t| t.map(|t| t / 1_000_000))
                        .collect::<TimestampMillisecondArray>()
                        .with_timezone_opt(tz(utc));
                    (a.data_type().clone(), Arc::new(a))
                }
                TimeStorage::Date => (
                    DataType::Date32,
                    Arc::new(
                        nanos
                            .map(|t| t.map(|t| (t / DAY) as i32))
                            .collect::<Date32Array>(),
                    ),
                ),
            }
        }
    }
}
