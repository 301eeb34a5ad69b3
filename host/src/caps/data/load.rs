//! Reading a data feed's file once, before the run: CSV (with or without a
//! header, any one-byte delimiter, RFC 4180 quoting), JSON Lines and JSON
//! arrays, each row kept as one JSON text. Errors name the file and line.
//! What a feed may cost is bounded: only a regular file is read (a FIFO or
//! device such as /dev/zero is refused before anything is read), at most
//! [`MAX_FILE_BYTES`] of it (also when it grows while read), each row at
//! most [`MAX_ROW_BYTES`], and the rows at most [`MAX_ROWS_BYTES`] in
//! memory.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};

/// How a feed's file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma- (or `delimiter`-) separated values, RFC 4180 quoting.
    Csv,
    /// One JSON object a line (blank lines are skipped).
    Jsonl,
    /// One JSON array of objects.
    Json,
}

impl Format {
    /// The format named `text` (`csv`, `tsv`, `jsonl`, `ndjson`, `json`), and
    /// the delimiter it implies.
    pub fn parse(text: &str) -> Option<(Format, Option<u8>)> {
        match text.to_ascii_lowercase().as_str() {
            "csv" => Some((Format::Csv, None)),
            "tsv" => Some((Format::Csv, Some(b'\t'))),
            "jsonl" | "ndjson" => Some((Format::Jsonl, None)),
            "json" => Some((Format::Json, None)),
            _ => None,
        }
    }

    /// The format's name, as `format=` takes it.
    pub fn label(self) -> &'static str {
        match self {
            Format::Csv => "CSV",
            Format::Jsonl => "JSON Lines",
            Format::Json => "JSON",
        }
    }

    /// The format a file's extension implies.
    pub fn of_path(path: &Path) -> Option<(Format, Option<u8>)> {
        Format::parse(path.extension()?.to_str()?)
    }
}

/// How to read a CSV file.
#[derive(Debug, Clone, Copy)]
pub struct CsvOptions {
    /// The first record names the columns (rows are then JSON objects).
    pub header: bool,
    pub delimiter: u8,
}

/// A feed's rows, read and checked.
#[derive(Debug)]
pub struct Rows {
    /// Each row as JSON text (an object, or an array for a CSV without header).
    pub rows: Vec<Box<str>>,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
    /// The file's size in bytes.
    pub bytes: u64,
}

/// The largest data file read, in bytes (256 MiB).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// The largest row, in bytes of the file (1 MiB): a CSV record, a JSON
/// Lines line, an element of a JSON array.
pub const MAX_ROW_BYTES: usize = 1 << 20;

/// The most a feed's rows may take in memory (1 GiB), counting each row's
/// JSON text and [`ROW_OVERHEAD`].
pub const MAX_ROWS_BYTES: u64 = 1 << 30;

/// What holding one row costs besides its text, in bytes: its slot in the
/// rows' list (16 bytes, up to 32 with the list's room to grow) and the
/// rounding of its allocation (up to 16).
const ROW_OVERHEAD: u64 = 48;

/// Rows as they are read, held to `limit` bytes ([`MAX_ROWS_BYTES`]).
struct Collected {
    rows: Vec<Box<str>>,
    bytes: u64,
    limit: u64,
}

impl Default for Collected {
    fn default() -> Collected {
        Collected {
            rows: Vec::new(),
            bytes: 0,
            limit: MAX_ROWS_BYTES,
        }
    }
}

impl Collected {
    /// Keep `row` (JSON text read at `at`: "line 3"): an error when the
    /// rows would pass the limit.
    fn push(&mut self, at: &str, row: String) -> Result<()> {
        self.bytes += row.len() as u64 + ROW_OVERHEAD;
        if self.bytes > self.limit {
            bail!(
                "{at}: with this row the feed's {} rows would take more than {} MiB in memory, \
                 the most a feed may hold (split the file, or keep only the columns the \
                 scenario uses)",
                self.rows.len() + 1,
                self.limit >> 20
            );
        }
        self.rows.push(row.into_boxed_str());
        Ok(())
    }
}

/// An error when a row read from `size` bytes is over [`MAX_ROW_BYTES`].
fn check_row_size(at: &str, size: usize) -> Result<()> {
    if size > MAX_ROW_BYTES {
        bail!(
            "{at}: a row of {size} bytes, larger than {} MiB, the most one row may hold (check \
             for a quote left open, or a file that is not line-based data)",
            MAX_ROW_BYTES >> 20
        );
    }
    Ok(())
}

/// Read `path` as `format`. Errors say which line is wrong and how; a file
/// that is not a regular file (a FIFO, /dev/zero), or is over
/// [`MAX_FILE_BYTES`] (or grows past it while read), is refused with its
/// name, its size and the limit; so is a row over [`MAX_ROW_BYTES`] or rows
/// over [`MAX_ROWS_BYTES`].
pub fn read(path: &Path, format: Format, csv: CsvOptions) -> Result<Rows> {
    let limit = format!("{} MiB", MAX_FILE_BYTES >> 20);
    // Non-blocking: opening a FIFO must not wait for a writer before it
    // is refused (reads from a regular file are not affected).
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let metadata = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    let kind = metadata.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO (named pipe)"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_dir() {
            "a folder"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        bail!(
            "{} is {what}, of no known size: a data feed is read from a regular file of at most \
             {limit} (save the data to a file and pass that)",
            path.display()
        );
    }
    let size = metadata.len();
    let too_large = |size: &str| {
        anyhow!(
            "{} {size}, larger than {limit}, the most a data feed reads (split it, or keep only \
             the columns the scenario uses)",
            path.display()
        )
    };
    if size > MAX_FILE_BYTES {
        return Err(too_large(&format!(
            "is {} ({size} bytes)",
            bytesize::ByteSize(size).display().iec()
        )));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(&format!(
            "was {size} bytes when opened and grew while it was read"
        )));
    }
    let sha256 = crate::engine::sha256_hex(&bytes);
    let rows = match format {
        Format::Csv => read_csv(&bytes, csv),
        Format::Jsonl => read_jsonl(&bytes),
        Format::Json => read_json(&bytes),
    }
    .with_context(|| format!("{} is not a valid {} feed", path.display(), format.label()))?;
    if rows.is_empty() {
        bail!("{} has no data rows", path.display());
    }
    Ok(Rows {
        rows,
        sha256,
        bytes: bytes.len() as u64,
    })
}

fn read_csv(bytes: &[u8], options: CsvOptions) -> Result<Vec<Box<str>>> {
    // A record holds whole lines: a line over the limit is refused before
    // the CSV reader would grow a record (and the header's copy) to it.
    for (i, piece) in bytes.split(|b| *b == b'\n').enumerate() {
        if let Some(longest) = piece.split(|b| *b == b'\r').map(<[u8]>::len).max() {
            check_row_size(&format!("line {}", i + 1), longest)?;
        }
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(options.header)
        .delimiter(options.delimiter)
        .from_reader(bytes);
    let columns: Option<Vec<String>> = if options.header {
        let header = reader.headers().map_err(csv_error)?.clone();
        check_row_size("line 1", header.as_slice().len())?;
        let mut seen = std::collections::HashSet::new();
        for (i, name) in header.iter().enumerate() {
            if name.is_empty() {
                bail!(
                    "line 1: column {} of the header has no name (name every column, or add \
                     header=false to the --data flag)",
                    i + 1
                );
            }
            if !seen.insert(name) {
                bail!("line 1: the header names column {name:?} twice");
            }
        }
        Some(header.iter().map(str::to_string).collect())
    } else {
        None
    };
    let mut rows = Collected::default();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let at = format!("line {}", record.position().map_or(0, csv::Position::line));
        check_row_size(&at, record.as_slice().len())?;
        let value = match &columns {
            Some(columns) => Value::Object(
                columns
                    .iter()
                    .zip(record.iter())
                    .map(|(name, value)| (name.clone(), Value::String(value.to_string())))
                    .collect::<Map<_, _>>(),
            ),
            None => Value::Array(
                record
                    .iter()
                    .map(|value| Value::String(value.to_string()))
                    .collect(),
            ),
        };
        rows.push(&at, value.to_string())?;
    }
    Ok(rows.rows)
}

/// A CSV error as "line N: what is wrong".
fn csv_error(error: csv::Error) -> anyhow::Error {
    let line = error.position().map(csv::Position::line);
    let what = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "{len} field{} where the first record has {expected_len} (quote values that hold \
             the delimiter, e.g. \"a,b\", and check for a quote left open above)",
            if *len == 1 { "" } else { "s" }
        ),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8 text".to_string(),
        _ => error.to_string(),
    };
    match line {
        Some(line) => anyhow!("line {line}: {what}"),
        None => anyhow!("{what}"),
    }
}

fn read_jsonl(bytes: &[u8]) -> Result<Vec<Box<str>>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        anyhow!("line {line}: not valid UTF-8 text")
    })?;
    let mut rows = Collected::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("line {}", i + 1);
        check_row_size(&at, line.len())?;
        let value: Value = serde_json::from_str(line).map_err(|e| {
            anyhow!(
                "line {}, column {}: {} (each line must be one JSON object)",
                i + 1,
                e.column(),
                json_problem(&e)
            )
        })?;
        if !value.is_object() {
            bail!(
                "line {}: expected a JSON object, found {}",
                i + 1,
                kind(&value)
            );
        }
        rows.push(&at, value.to_string())?;
    }
    Ok(rows.rows)
}

/// A JSON array of objects, read one element at a time: only one
/// element's parsed form exists at once, never the whole array's.
fn read_json(bytes: &[u8]) -> Result<Vec<Box<str>>> {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|at| bytes[at]);
    if start != Some(b'[') {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| anyhow!("{e}"))?;
        bail!(
            "expected a JSON array of objects, found {} (use .jsonl for one object a line)",
            kind(&value)
        );
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let mut rows = Collected::default();
    let read = serde::Deserializer::deserialize_seq(&mut deserializer, Elements(&mut rows))
        .and_then(|()| deserializer.end());
    match read {
        Ok(()) => Ok(rows.rows),
        // An error of ours, with serde_json's position after it.
        Err(e) => Err(anyhow!("{e}")),
    }
}

/// Reads each element of a JSON array into [`Collected`].
struct Elements<'a>(&'a mut Collected);

impl<'de> serde::de::Visitor<'de> for Elements<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of objects")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        use serde::de::Error;
        let mut i = 0usize;
        while let Some(raw) = seq.next_element::<&serde_json::value::RawValue>()? {
            let at = format!("element {i} of the array (0-based)");
            check_row_size(&at, raw.get().len()).map_err(|e| A::Error::custom(format!("{e:#}")))?;
            let item: Value = serde_json::from_str(raw.get()).map_err(A::Error::custom)?;
            if !item.is_object() {
                return Err(A::Error::custom(format!(
                    "{at} is {}, not an object",
                    kind(&item)
                )));
            }
            self.0
                .push(&at, item.to_string())
                .map_err(|e| A::Error::custom(format!("{e:#}")))?;
            i += 1;
        }
        Ok(())
    }
}

/// serde_json's message without its own "at line L column C".
fn json_problem(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMA: CsvOptions = CsvOptions {
        header: true,
        delimiter: b',',
    };

    #[test]
    fn csv_rows_become_objects_and_quotes_hold_delimiters() {
        let rows = read_csv(b"user,pass\nann,\"a,b\"\nbob,\"say \"\"hi\"\"\"\n", COMMA).unwrap();
        let first: Value = serde_json::from_str(&rows[0]).unwrap();
        assert_eq!(first, serde_json::json!({"user": "ann", "pass": "a,b"}));
        let second: Value = serde_json::from_str(&rows[1]).unwrap();
        assert_eq!(second["pass"], "say \"hi\"");
        let bare = read_csv(
            b"ann;1\nbob;2\n",
            CsvOptions {
                header: false,
                delimiter: b';',
            },
        )
        .unwrap();
        assert_eq!(&*bare[1], r#"["bob","2"]"#);
    }

    #[test]
    fn a_short_csv_row_names_its_line() {
        let error = read_csv(b"user,pass\nann,1\nbob\ncid,3\n", COMMA).unwrap_err();
        assert!(
            error.to_string().starts_with("line 3: 1 field where"),
            "{error}"
        );
        let error = read_csv(b"user,user\nann,1\n", COMMA).unwrap_err();
        assert!(error.to_string().contains("twice"), "{error}");
    }

    #[test]
    fn json_lines_and_arrays_keep_objects_only() {
        let rows = read_jsonl(b"{\"id\":1}\n\n{\"id\":2,\"tags\":[\"a\"]}\n").unwrap();
        assert_eq!(rows.len(), 2);
        let error = read_jsonl(b"{\"id\":1}\n[1]\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 2: expected a JSON object, found an array"
        );
        let error = read_jsonl(b"{\"id\":1}\n{\"id\":\n").unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("line 2, column "), "{text}");
        assert!(!text.contains("at line"), "one line number: {text}");
        assert_eq!(read_json(b"[{\"a\":1},{\"a\":2}]").unwrap().len(), 2);
        let error = read_json(b"[{\"a\":1},3]").unwrap_err();
        assert!(error.to_string().contains("element 1"), "{error}");
    }

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let read =
            |path: &Path| format!("{:#}", super::read(path, Format::Csv, COMMA).unwrap_err());
        // Endless or of no known size: refused before anything is read
        // (a FIFO without a writer does not block the open).
        let error = read(Path::new("/dev/zero"));
        assert!(error.contains("/dev/zero is a character device"), "{error}");
        assert!(error.contains("at most 256 MiB"), "{error}");
        let fifo = dir.path().join("feed.csv");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let error = read(&fifo);
        assert!(error.contains("feed.csv is a FIFO"), "{error}");
        // Sparse and over the limit: refused by its size, nothing read.
        let sparse = dir.path().join("sparse.csv");
        let file = std::fs::File::create(&sparse).unwrap();
        file.set_len(MAX_FILE_BYTES + 1).unwrap();
        let error = read(&sparse);
        assert!(
            error.contains("sparse.csv is 256.0 MiB (268435457 bytes), larger than 256 MiB"),
            "{error}"
        );
        // At the limit a regular file is read.
        let fine = dir.path().join("fine.csv");
        std::fs::write(&fine, "user\nann\n").unwrap();
        assert_eq!(
            super::read(&fine, Format::Csv, COMMA).unwrap().rows.len(),
            1
        );
    }

    #[test]
    fn rows_are_held_to_their_limits() {
        let long = "x".repeat(MAX_ROW_BYTES + 1);
        let error = read_csv(format!("user\nann\n{long}\n").as_bytes(), COMMA).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("line 3: a row of 1048577 bytes"),
            "{error}"
        );
        let error = read_jsonl(format!("{{\"a\":\"{long}\"}}\n").as_bytes()).unwrap_err();
        assert!(error.to_string().starts_with("line 1: a row of"), "{error}");
        let error = read_json(format!("[{{}}, {{\"a\":\"{long}\"}}]").as_bytes()).unwrap_err();
        assert!(
            error.to_string().contains("element 1 of the array"),
            "{error}"
        );
        // The rows' memory: 3 rows of 2 bytes fit 150, a 4th does not.
        let mut rows = Collected {
            limit: 3 * (2 + ROW_OVERHEAD),
            ..Collected::default()
        };
        for _ in 0..3 {
            rows.push("line 1", "{}".into()).unwrap();
        }
        let error = rows.push("line 4", "{}".into()).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("line 4: with this row the feed's 4 rows"),
            "{error}"
        );
        assert_eq!(rows.rows.len(), 3);
        // A JSON array is read element by element into the same rows.
        assert_eq!(read_json(b" [{\"a\":1}, {}] ").unwrap().len(), 2);
        let error = read_json(b"{\"a\":1}").unwrap_err();
        assert!(
            error.to_string().starts_with("expected a JSON array"),
            "{error}"
        );
    }
}
