//! Test data feeds: rows of the files the operator grants with
//! `horde run --data users=users.csv`, handed out by the host under the
//! feed's strategy (sequential, random, shuffle, unique, per-vu).
//!
//! ```ignore
//! let user = data::feed("users").next()?;
//! http::post("/login").json(&json!({"username": user.get("username")})).send()?;
//! ```

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::bindings::horde::scenario::data as wit;

/// One row of a feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    index: u64,
    value: Value,
}

impl Row {
    /// The row's position in the file, 0-based (a CSV header does not count).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The value of `column` as text: a CSV cell, or a JSON string (other
    /// JSON values: use [`Row::value`]). For a CSV without header, columns
    /// are named "0", "1", ...
    pub fn get(&self, column: &str) -> Option<&str> {
        match &self.value {
            Value::Object(map) => map.get(column)?.as_str(),
            Value::Array(cells) => cells.get(column.parse::<usize>().ok()?)?.as_str(),
            _ => None,
        }
    }

    /// The whole row: an object (CSV with header, JSON Lines, JSON arrays)
    /// or an array of strings (CSV without header).
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The row as your own type (serde), e.g. `struct Login { username: String }`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, DataError> {
        serde_json::from_value(self.value.clone())
            .map_err(|e| DataError::Malformed(format!("a row does not have the shape asked for: {e}")))
    }
}

/// Why no row came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataError {
    /// The feed ran out and its `on-end` stops the VU or the run: return
    /// the error from the task (`?`); the host does not count it.
    Stopped(String),
    /// The feed ran out and its `on-end` is `fail`: the task fails.
    Exhausted(String),
    /// The row does not have the shape asked for ([`Row::parse`]).
    Malformed(String),
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Stopped(m) | DataError::Exhausted(m) | DataError::Malformed(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for DataError {}

/// A feed, by the name the operator grants it under (`--data NAME=FILE`).
#[derive(Debug, Clone, Copy)]
pub struct Feed<'a>(&'a str);

/// The feed named `name`.
pub fn feed(name: &str) -> Feed<'_> {
    Feed(name)
}

impl Feed<'_> {
    /// The next row under the feed's strategy.
    pub fn next(&self) -> Result<Row, DataError> {
        next(self.0)
    }

    /// How many rows the feed has (0 when the run grants no such feed).
    pub fn len(&self) -> u64 {
        wit::len(self.0)
    }

    /// True when the feed has no rows (or was not granted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The next row of feed `name` under its strategy.
pub fn next(name: &str) -> Result<Row, DataError> {
    match wit::next(name) {
        Ok(row) => {
            let value = serde_json::from_str(&row.json).map_err(|e| {
                DataError::Malformed(format!("row {} of feed {name}: {e}", row.index))
            })?;
            Ok(Row {
                index: row.index,
                value,
            })
        }
        Err(wit::Error::Stopped(message)) => Err(DataError::Stopped(message)),
        Err(wit::Error::Exhausted(message)) => Err(DataError::Exhausted(message)),
    }
}
