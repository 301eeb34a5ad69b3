//! The `data` capability: test data feeds granted with `--data`, read once
//! before the run, held once for every VU, and handed out row by row under
//! a strategy (sequential, random, shuffle, unique, per-vu).

pub mod load;
pub mod spec;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::bindings::data::{self as wit, Row};
use crate::schedule::segment::Segment;
use crate::vu::VuState;
use load::{CsvOptions, Format};
pub use spec::{FeedSpec, OnEnd, Strategy};

/// One feed, shared by every VU of the run.
#[derive(Debug)]
pub struct Feed {
    name: String,
    file: PathBuf,
    format: Format,
    strategy: Strategy,
    on_end: OnEnd,
    rows: Vec<Box<str>>,
    /// `shuffle`: the order rows are handed out in.
    order: Vec<u32>,
    sha256: String,
    bytes: u64,
    /// The run's `--seed` (reported) and this feed's stream drawn from it.
    seed: u64,
    stream: u64,
    /// This segment's slice of the rows (`--segment`): sequential, shuffle
    /// and unique hand out only these, so segments never share a row.
    first: u64,
    count: u64,
    /// Rows asked for so far (the shared cursor of sequential, shuffle,
    /// unique; the draw counter of random).
    cursor: AtomicU64,
    handed_out: AtomicU64,
    /// Why the rows ran out, the first time they did.
    ended: std::sync::OnceLock<String>,
}

/// Where a row request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Take {
    Row(u64),
    /// The rows ran out; the feed's `on-end` says what follows.
    End,
}

impl Feed {
    fn load(spec: &FeedSpec, seed: u64, segment: Segment) -> Result<Feed> {
        let file = spec
            .file
            .clone()
            .with_context(|| format!("feed {} has no file", spec.name))?;
        let Some(format) = spec.format else {
            bail!(
                "--data {}={}: cannot tell the format from the file name; add ;format=csv, \
                 ;format=tsv, ;format=jsonl or ;format=json",
                spec.name,
                file.display()
            );
        };
        let strategy = spec.strategy.unwrap_or(Strategy::Sequential);
        let on_end = spec.on_end.unwrap_or(strategy.default_on_end());
        let flag = format!("--data {}", spec.name);
        if strategy == Strategy::Random && spec.on_end.is_some() {
            bail!("{flag}: strategy=random never runs out of rows, so on-end does not apply");
        }
        if format != Format::Csv && (spec.header.is_some() || spec.delimiter.is_some()) {
            bail!(
                "{flag}: header and delimiter apply to CSV; {} is read as {}",
                file.display(),
                format.label()
            );
        }
        if spec.delimiter == Some(b'"') {
            bail!("{flag}: the delimiter cannot be the quote character");
        }
        if strategy == Strategy::Unique && on_end == OnEnd::Wrap {
            // Flag and declaration each pass this alone; together they may not.
            bail!(
                "{flag}: strategy=unique (from the flag or the scenario's declaration of the \
                 feed) hands out each row at most once, so it cannot wrap; choose another \
                 strategy (;strategy=sequential) or on-end=stop-test (the default), stop-vu or fail"
            );
        }
        let csv = CsvOptions {
            header: spec.header.unwrap_or(true),
            delimiter: spec.delimiter.unwrap_or(b','),
        };
        let read = load::read(&file, format, csv)
            .with_context(|| format!("--data {}={}", spec.name, file.display()))?;
        if read.rows.len() > u32::MAX as usize {
            bail!("feed {} has more than {} rows", spec.name, u32::MAX);
        }
        // Each feed draws from its own stream, so adding a feed does not
        // change another's sequence.
        let mut stream = seed ^ fnv1a(spec.name.as_bytes());
        // Random draws differ per segment; shuffle's order must not.
        if !segment.is_whole() && strategy == Strategy::Random {
            stream ^= fnv1a(segment.to_string().as_bytes());
        }
        let rows = read.rows.len() as u64;
        let (first, count) = match segment.part(rows) {
            0 => (0, rows),
            count => (segment.offset(rows), count),
        };
        let mut order = Vec::new();
        if strategy == Strategy::Shuffle {
            order = (0..read.rows.len() as u32).collect();
            fastrand::Rng::with_seed(stream).shuffle(&mut order);
        }
        Ok(Feed {
            name: spec.name.clone(),
            file,
            format,
            strategy,
            on_end,
            rows: read.rows,
            order,
            sha256: read.sha256,
            bytes: read.bytes,
            seed,
            stream,
            first,
            count,
            cursor: AtomicU64::new(0),
            handed_out: AtomicU64::new(0),
            ended: std::sync::OnceLock::new(),
        })
    }

    fn len(&self) -> u64 {
        self.rows.len() as u64
    }

    /// The row VU `vu_id` gets now.
    fn take(&self, vu_id: u32) -> Take {
        let n = self.len();
        let position = match self.strategy {
            Strategy::PerVu => u64::from(vu_id.saturating_sub(1)),
            Strategy::Random => {
                let draw = self.cursor.fetch_add(1, Ordering::Relaxed);
                return Take::Row(self.counted(mix(self.stream, draw) % n));
            }
            _ => self.cursor.fetch_add(1, Ordering::Relaxed),
        };
        let (first, n) = match self.strategy {
            Strategy::PerVu => (0, n),
            _ => (self.first, self.count),
        };
        if position >= n && self.on_end != OnEnd::Wrap {
            return Take::End;
        }
        let index = first + position % n;
        let index = match self.strategy {
            Strategy::Shuffle => u64::from(self.order[index as usize]),
            _ => index,
        };
        Take::Row(self.counted(index))
    }

    fn counted(&self, index: u64) -> u64 {
        self.handed_out.fetch_add(1, Ordering::Relaxed);
        index
    }

    /// Why the rows ran out, for the stop reason and the error.
    fn ran_out(&self, vu_id: u32) -> String {
        let rows = self.len();
        match self.strategy {
            Strategy::PerVu => format!(
                "data feed {} has {rows} rows, too few for VU {vu_id} (strategy per-vu, on-end {})",
                self.name,
                self.on_end.label()
            ),
            strategy if self.count < rows => format!(
                "data feed {} ran out of rows: all {} of this segment's rows handed out \
                 (strategy {}, on-end {})",
                self.name,
                self.count,
                strategy.label(),
                self.on_end.label()
            ),
            strategy => format!(
                "data feed {} ran out of rows: all {rows} handed out (strategy {}, on-end {})",
                self.name,
                strategy.label(),
                self.on_end.label()
            ),
        }
    }

    fn report(&self) -> FeedReport {
        FeedReport {
            name: self.name.clone(),
            file: self.file.display().to_string(),
            sha256: self.sha256.clone(),
            bytes: self.bytes,
            format: self.format,
            rows: self.len(),
            strategy: self.strategy,
            on_end: self.on_end,
            seed: matches!(self.strategy, Strategy::Random | Strategy::Shuffle)
                .then_some(self.seed),
            handed_out: self.handed_out.load(Ordering::Relaxed),
        }
    }
}

impl Strategy {
    /// The strategy as written in the flag.
    pub fn label(self) -> &'static str {
        match self {
            Strategy::Sequential => "sequential",
            Strategy::Random => "random",
            Strategy::Shuffle => "shuffle",
            Strategy::Unique => "unique",
            Strategy::PerVu => "per-vu",
        }
    }
}

impl OnEnd {
    /// The setting as written in the flag.
    pub fn label(self) -> &'static str {
        match self {
            OnEnd::Wrap => "wrap",
            OnEnd::StopVu => "stop-vu",
            OnEnd::StopTest => "stop-test",
            OnEnd::Fail => "fail",
        }
    }
}

/// A feed as the report shows it (JSON `data`).
#[derive(Debug, Clone, Serialize)]
pub struct FeedReport {
    pub name: String,
    pub file: String,
    /// SHA-256 of the file, so a result names the exact data it used.
    pub sha256: String,
    pub bytes: u64,
    pub format: Format,
    pub rows: u64,
    pub strategy: Strategy,
    pub on_end: OnEnd,
    /// The run's `--seed` (random and shuffle): run again with the same
    /// `--seed` for the same sequence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Rows handed to VUs (a row handed out twice counts twice).
    pub handed_out: u64,
}

/// Every feed of a run, by name.
#[derive(Debug, Default)]
pub struct Feeds {
    feeds: BTreeMap<String, Feed>,
}

impl Feeds {
    /// Read every feed the command line grants; `declared` are the feeds
    /// the scenario expects (each must be granted, and gives the options the
    /// flag leaves unset). `seed` orders random and shuffle.
    pub fn load(
        specs: &[FeedSpec],
        declared: &[FeedSpec],
        seed: u64,
        segment: Segment,
    ) -> Result<Feeds> {
        let mut feeds = BTreeMap::new();
        for spec in specs {
            let mut spec = spec.clone();
            if let Some(declared) = declared.iter().find(|d| d.name == spec.name) {
                spec.complete_from(declared);
            }
            if feeds.contains_key(&spec.name) {
                bail!(
                    "--data names feed {} twice; give each feed one file",
                    spec.name
                );
            }
            feeds.insert(spec.name.clone(), Feed::load(&spec, seed, segment)?);
        }
        let missing: Vec<&str> = declared
            .iter()
            .map(|d| d.name.as_str())
            .filter(|name| !feeds.contains_key(*name))
            .collect();
        if !missing.is_empty() {
            bail!(
                "the scenario reads the data feed{} {}; grant {} with {}",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", "),
                if missing.len() == 1 { "it" } else { "them" },
                missing
                    .iter()
                    .map(|name| format!("--data {name}=FILE"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        Ok(Feeds { feeds })
    }

    /// What each feed was and how much of it was used.
    pub fn report(&self) -> Vec<FeedReport> {
        self.feeds.values().map(Feed::report).collect()
    }

    /// Why a feed ran out of rows, if one did.
    pub fn ran_out(&self) -> Option<String> {
        self.feeds.values().find_map(|f| f.ended.get().cloned())
    }

    pub fn is_empty(&self) -> bool {
        self.feeds.is_empty()
    }
}

/// FNV-1a, to give each feed name its own stream.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The `draw`-th random number of the stream `seed` (SplitMix64): draw k
/// gives the same row in every run with the same seed.
fn mix(seed: u64, draw: u64) -> u64 {
    let mut z = seed.wrapping_add(draw.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl wit::Host for VuState {
    async fn next(&mut self, name: String) -> wasmtime::Result<Result<Row, wit::Error>> {
        let run = self.run.clone();
        let Some(feed) = run.data.feeds.get(&name) else {
            let name = crate::stats::truncate(&name, 64);
            let message = format!(
                "the scenario reads data feed {name:?}, which the command line does not grant: \
                 add --data {name}=FILE"
            );
            run.misuse(message.clone());
            self.data_stopped = true;
            return Ok(Err(wit::Error::Stopped(message)));
        };
        match feed.take(self.vu_id) {
            Take::Row(index) => Ok(Ok(Row {
                index,
                json: feed.rows[index as usize].to_string(),
            })),
            Take::End => {
                let message = feed.ran_out(self.vu_id);
                let _ = feed.ended.set(message.clone());
                match feed.on_end {
                    OnEnd::Fail | OnEnd::Wrap => Ok(Err(wit::Error::Exhausted(message))),
                    OnEnd::StopVu | OnEnd::StopTest => {
                        if feed.on_end == OnEnd::StopTest {
                            run.request_stop(message.clone());
                        }
                        self.stop_requested = true;
                        self.data_stopped = true;
                        Ok(Err(wit::Error::Stopped(message)))
                    }
                }
            }
        }
    }

    async fn len(&mut self, name: String) -> wasmtime::Result<u64> {
        Ok(self.run.data.feeds.get(&name).map_or(0, Feed::len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(strategy: Strategy, on_end: OnEnd, rows: usize) -> Feed {
        let mut order: Vec<u32> = (0..rows as u32).collect();
        fastrand::Rng::with_seed(7).shuffle(&mut order);
        Feed {
            name: "users".into(),
            file: "users.csv".into(),
            format: Format::Csv,
            strategy,
            on_end,
            rows: (0..rows).map(|i| format!("[\"{i}\"]").into()).collect(),
            order,
            sha256: String::new(),
            bytes: 0,
            seed: 7,
            stream: 7,
            first: 0,
            count: rows as u64,
            cursor: AtomicU64::new(0),
            handed_out: AtomicU64::new(0),
            ended: std::sync::OnceLock::new(),
        }
    }

    fn rows(feed: &Feed, vu: u32, count: usize) -> Vec<Take> {
        (0..count).map(|_| feed.take(vu)).collect()
    }

    #[test]
    fn sequential_wraps_and_unique_ends() {
        let sequential = feed(Strategy::Sequential, OnEnd::Wrap, 3);
        let taken = rows(&sequential, 1, 7);
        let expected: Vec<Take> = [0, 1, 2, 0, 1, 2, 0].into_iter().map(Take::Row).collect();
        assert_eq!(taken, expected);
        let unique = feed(Strategy::Unique, OnEnd::StopTest, 3);
        let taken = rows(&unique, 1, 4);
        assert_eq!(taken[3], Take::End);
        assert_eq!(unique.report().handed_out, 3);
    }

    #[test]
    fn per_vu_keeps_row_k_for_vu_k() {
        let per_vu = feed(Strategy::PerVu, OnEnd::StopVu, 3);
        assert_eq!(rows(&per_vu, 2, 3), vec![Take::Row(1); 3]);
        assert_eq!(per_vu.take(1), Take::Row(0));
        assert_eq!(per_vu.take(4), Take::End);
        let wrapping = feed(Strategy::PerVu, OnEnd::Wrap, 3);
        assert_eq!(wrapping.take(5), Take::Row(1));
    }

    #[test]
    fn shuffle_is_a_permutation_and_random_repeats_with_its_seed() {
        let shuffle = feed(Strategy::Shuffle, OnEnd::Wrap, 50);
        let mut seen: Vec<u64> = rows(&shuffle, 1, 50)
            .into_iter()
            .map(|t| match t {
                Take::Row(i) => i,
                Take::End => panic!("ended"),
            })
            .collect();
        assert_ne!(seen, (0..50).collect::<Vec<_>>(), "shuffled");
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        let first = rows(&feed(Strategy::Random, OnEnd::Wrap, 1000), 1, 100);
        let again = rows(&feed(Strategy::Random, OnEnd::Wrap, 1000), 3, 100);
        assert_eq!(first, again);
        let distinct: std::collections::HashSet<_> =
            first.iter().map(|t| format!("{t:?}")).collect();
        assert!(distinct.len() > 80, "{}", distinct.len());
    }
}
