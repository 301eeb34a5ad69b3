//! Reading a data feed's file once, before the run: CSV (with or without a
//! header, any one-byte delimiter, RFC 4180 quoting), JSON Lines and JSON
//! arrays, each row kept as one JSON text. Errors name the file and line.

use std::io::Read;
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

/// The largest data file read, in bytes (the rows take several times this
/// in memory).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Read `path` as `format`. Errors say which line is wrong and how; a file
/// over [`MAX_FILE_BYTES`] (or an endless one, such as /dev/zero) is refused.
pub fn read(path: &Path, format: Format, csv: CsvOptions) -> Result<Rows> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let too_large = || {
        anyhow!(
            "{} is larger than {} MiB, the most a data feed reads (split it, or keep only the \
             columns the scenario uses)",
            path.display(),
            MAX_FILE_BYTES >> 20
        )
    };
    // A regular file's size is known before reading it.
    if file
        .metadata()
        .is_ok_and(|m| m.is_file() && m.len() > MAX_FILE_BYTES)
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
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
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(options.header)
        .delimiter(options.delimiter)
        .from_reader(bytes);
    let columns: Option<Vec<String>> = if options.header {
        let header = reader.headers().map_err(csv_error)?.clone();
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
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
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
        rows.push(value.to_string().into_boxed_str());
    }
    Ok(rows)
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
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
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
        rows.push(value.to_string().into_boxed_str());
    }
    Ok(rows)
}

fn read_json(bytes: &[u8]) -> Result<Vec<Box<str>>> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| anyhow!("{e}"))?;
    let Value::Array(items) = value else {
        bail!(
            "expected a JSON array of objects, found {} (use .jsonl for one object a line)",
            kind(&value)
        );
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            if item.is_object() {
                Ok(item.to_string().into_boxed_str())
            } else {
                Err(anyhow!(
                    "element {i} of the array (0-based) is {}, not an object",
                    kind(&item)
                ))
            }
        })
        .collect()
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
}
