//! Results as data: tables written as Apache Parquet files (arrow-rs) that polars, pandas and
//! DuckDB read (docs/analysis.md).
//!
//! A table is described once as a list of [`Column`]s over a row type, each a name and a
//! function from a row to its cell; [`parquet`] turns any description and its rows into one
//! Parquet file, so the tables of a run ([`run`]) and of a sweep are descriptions, not
//! writers. Every file starts with constant context columns (scenario name, seed, swept
//! parameters: what a table joined across runs is told apart by) and carries key-value
//! metadata ([`Context`]). Rows are converted in batches of [`BATCH_ROWS`], so a large table
//! (a scale run's transaction log) is never held as Arrow arrays whole. The output is a pure
//! function of the rows and context: the same run gives byte-identical files.

pub mod run;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, RecordBatchReader, StringArray,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};

/// Rows converted to Arrow arrays at a time.
pub const BATCH_ROWS: usize = 65_536;

/// A table that could not be written (an Arrow or Parquet error).
#[derive(Debug, thiserror::Error)]
#[error("writing the Parquet table `{table}`: {message}")]
pub struct FrameError {
    /// The table's name.
    pub table: String,
    /// What failed.
    pub message: String,
}

/// A function from a row to its cell of type `V` (null: an undefined figure).
type Cell<'a, T, V> = Box<dyn Fn(&T) -> Option<V> + 'a>;

/// A row's cell getter, by column type.
enum Getter<'a, T> {
    U64(Cell<'a, T, u64>),
    I64(Cell<'a, T, i64>),
    F64(Cell<'a, T, f64>),
    Bool(Cell<'a, T, bool>),
    Text(Cell<'a, T, String>),
}

/// One column of a table over rows of type `T`: its name and how a row gives its cell.
pub struct Column<'a, T> {
    name: String,
    get: Getter<'a, T>,
}

impl<'a, T> Column<'a, T> {
    /// An unsigned integer column.
    pub fn u64<V: Into<Option<u64>>>(name: impl Into<String>, get: impl Fn(&T) -> V + 'a) -> Self {
        Self::of(name, Getter::U64(Box::new(move |t| get(t).into())))
    }

    /// A signed integer column.
    pub fn i64<V: Into<Option<i64>>>(name: impl Into<String>, get: impl Fn(&T) -> V + 'a) -> Self {
        Self::of(name, Getter::I64(Box::new(move |t| get(t).into())))
    }

    /// A floating-point column.
    pub fn f64<V: Into<Option<f64>>>(name: impl Into<String>, get: impl Fn(&T) -> V + 'a) -> Self {
        Self::of(name, Getter::F64(Box::new(move |t| get(t).into())))
    }

    /// A boolean column.
    pub fn bool<V: Into<Option<bool>>>(
        name: impl Into<String>,
        get: impl Fn(&T) -> V + 'a,
    ) -> Self {
        Self::of(name, Getter::Bool(Box::new(move |t| get(t).into())))
    }

    /// A text column.
    pub fn text<V: Into<Option<String>>>(
        name: impl Into<String>,
        get: impl Fn(&T) -> V + 'a,
    ) -> Self {
        Self::of(name, Getter::Text(Box::new(move |t| get(t).into())))
    }

    fn of(name: impl Into<String>, get: Getter<'a, T>) -> Self {
        Self {
            name: name.into(),
            get,
        }
    }

    fn data_type(&self) -> DataType {
        match self.get {
            Getter::U64(_) => DataType::UInt64,
            Getter::I64(_) => DataType::Int64,
            Getter::F64(_) => DataType::Float64,
            Getter::Bool(_) => DataType::Boolean,
            Getter::Text(_) => DataType::Utf8,
        }
    }

    fn array(&self, rows: &[T]) -> ArrayRef {
        let cells = rows.iter();
        match &self.get {
            Getter::U64(f) => Arc::new(cells.map(f).collect::<UInt64Array>()),
            Getter::I64(f) => Arc::new(cells.map(f).collect::<Int64Array>()),
            Getter::F64(f) => Arc::new(cells.map(f).collect::<Float64Array>()),
            Getter::Bool(f) => Arc::new(cells.map(f).collect::<BooleanArray>()),
            Getter::Text(f) => Arc::new(cells.map(f).collect::<StringArray>()),
        }
    }
}

/// A value every row of a table shares (a context column).
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    /// An unsigned integer (a seed, a point index).
    U64(u64),
    /// A signed integer.
    I64(i64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// Text.
    Text(String),
}

impl Scalar {
    /// A column of this value on every row.
    fn column<'a, T>(&self, name: &str) -> Column<'a, T> {
        match self.clone() {
            Scalar::U64(v) => Column::u64(name, move |_| v),
            Scalar::I64(v) => Column::i64(name, move |_| v),
            Scalar::F64(v) => Column::f64(name, move |_| v),
            Scalar::Bool(v) => Column::bool(name, move |_| v),
            Scalar::Text(v) => Column::text(name, move |_| v.clone()),
        }
    }
}

/// What every table of one output shares: its constant columns, first in each table
/// (scenario, seed, swept parameters), and the files' key-value metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context {
    /// `(column name, value)`, in column order.
    pub constants: Vec<(String, Scalar)>,
    /// `(key, value)` pairs of each file's metadata (`olsim.table` is added per table).
    pub metadata: Vec<(String, String)>,
}

/// The Parquet file (Snappy-compressed) of table `table`: `context`'s constant columns, then
/// `columns` over `rows`, with `context`'s metadata and `olsim.table = table`.
pub fn parquet<T>(
    table: &str,
    context: &Context,
    columns: &[Column<'_, T>],
    rows: impl IntoIterator<Item = T>,
) -> Result<Vec<u8>, FrameError> {
    let fail = |e: &dyn std::fmt::Display| FrameError {
        table: table.to_string(),
        message: e.to_string(),
    };
    let constants: Vec<Column<'_, T>> = context
        .constants
        .iter()
        .map(|(name, value)| value.column(name))
        .collect();
    let all: Vec<&Column<'_, T>> = constants.iter().chain(columns).collect();
    let schema = Arc::new(Schema::new(
        all.iter()
            .map(|c| Field::new(&c.name, c.data_type(), true))
            .collect::<Vec<_>>(),
    ));
    let properties = properties(table, &context.metadata);
    let mut bytes = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut bytes, schema.clone(), Some(properties)).map_err(|e| fail(&e))?;
    let mut rows = rows.into_iter().peekable();
    let mut chunk = Vec::with_capacity(BATCH_ROWS.min(rows.size_hint().0));
    // An empty table is written too: its schema says what it would hold.
    let mut first = true;
    while first || rows.peek().is_some() {
        first = false;
        chunk.clear();
        chunk.extend(rows.by_ref().take(BATCH_ROWS));
        let arrays = all.iter().map(|c| c.array(&chunk)).collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| fail(&e))?;
        writer.write(&batch).map_err(|e| fail(&e))?;
    }
    writer.close().map_err(|e| fail(&e))?;
    Ok(bytes)
}

/// Snappy compression and `metadata` plus `olsim.table = table`.
fn properties(table: &str, metadata: &[(String, String)]) -> WriterProperties {
    let mut pairs: Vec<KeyValue> = metadata
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    pairs.push(KeyValue::new("olsim.table".into(), table.to_string()));
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_key_value_metadata(Some(pairs))
        .build()
}

/// The key-value metadata of the Parquet file at `path` (its footer only).
pub fn metadata(path: &Path) -> Result<Vec<(String, String)>, FrameError> {
    let reader = File::open(path)
        .map_err(|e| e.to_string())
        .and_then(|f| SerializedFileReader::new(f).map_err(|e| e.to_string()))
        .map_err(|message| read_error(path, message))?;
    Ok(reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
        .collect())
}

/// One Parquet file of table `table` holding the rows of the files `parts` in order, with
/// `metadata` and `olsim.table = table`. The parts must have the same columns; they are read
/// one batch at a time.
pub fn concat(
    table: &str,
    metadata: &[(String, String)],
    parts: &[PathBuf],
) -> Result<Vec<u8>, FrameError> {
    let fail = |e: &dyn std::fmt::Display| FrameError {
        table: table.to_string(),
        message: e.to_string(),
    };
    let mut writer: Option<(ArrowWriter<Vec<u8>>, SchemaRef)> = None;
    for path in parts {
        let reader = File::open(path)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                ParquetRecordBatchReaderBuilder::try_new(f)
                    .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
                    .map_err(|e| e.to_string())
            })
            .map_err(|message| read_error(path, message))?;
        let fields = reader.schema().fields().clone();
        let (writer, schema) = match &mut writer {
            Some(w) => w,
            None => {
                let schema = Arc::new(Schema::new(fields.clone()));
                let w = ArrowWriter::try_new(
                    Vec::new(),
                    schema.clone(),
                    Some(properties(table, metadata)),
                )
                .map_err(|e| fail(&e))?;
                writer.insert((w, schema))
            }
        };
        if schema.fields() != &fields {
            return Err(read_error(
                path,
                format!(
                    "its columns differ from those of {} (a part of another olsim version?)",
                    parts[0].display()
                ),
            ));
        }
        for batch in reader {
            let batch = batch.map_err(|e| read_error(path, e.to_string()))?;
            let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
                .map_err(|e| fail(&e))?;
            writer.write(&batch).map_err(|e| fail(&e))?;
        }
    }
    match writer {
        Some((w, _)) => w.into_inner().map_err(|e| fail(&e)),
        None => Err(fail(&"no parts to join")),
    }
}

fn read_error(path: &Path, message: String) -> FrameError {
    FrameError {
        table: path.display().to_string(),
        message: format!("not a readable Parquet file: {message}"),
    }
}
