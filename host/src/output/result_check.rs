//! What a result-file record must satisfy before it is believed (`horde
//! merge` reading files, `horde aggregate` reading POSTs): HDR histograms
//! are checked against their declared header before anything is allocated
//! (HdrHistogram's V2 format: a 40-byte header, then zig-zag LEB128
//! counts; the deflate form wraps it in zlib), inflating is bounded, and
//! counts that no run can produce (failures beyond requests, negative or
//! endless durations, more users than a process holds, more names than the
//! run's caps allow) are refused with what was wrong.

use std::io::Read;

use anyhow::{Result, bail, ensure};
use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;

use super::result_file::{End, EntryRecord, Second};

/// HdrHistogram's V2 cookies (HdrHistogram's `EncodableHistogram`: base
/// `0x1c849303` plain, `0x1c849304` deflate, each `| 0x10` for V2).
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;
/// The V2 header: cookie, payload length, normalising offset, significant
/// figures, lowest and highest trackable values, integer-to-double ratio.
const V2_HEADER: usize = 40;
/// Most bytes one histogram may inflate to: a histogram of 3 significant
/// figures up to 2^42 has about 33k counts, at most 9 bytes each.
const MAX_INFLATED: usize = 1 << 20;
/// Longest base64 text of one histogram (its deflated form is far smaller
/// than [`MAX_INFLATED`]).
const MAX_ENCODED: usize = 2 << 20;
/// Highest value a histogram of a run may track: 2^42 microseconds is 51
/// days; a trend in thousandths reaches 4.4 * 10^9.
const MAX_HIGHEST: u64 = 1 << 42;
/// Memory the histograms of one record may take once decoded.
pub const RECORD_BUDGET: usize = 256 << 20;
/// The most users one process holds (`horde run` refuses more).
const MAX_USERS: u32 = crate::cli::MAX_VUS;
/// The most of anything (requests of a name, iterations, check outcomes)
/// one process counts in one second: no run comes near it.
const MAX_PER_SECOND: u64 = 1_000_000_000;
/// The most bytes of responses one name counts in one second (1 PiB).
const MAX_BYTES_PER_SECOND: u64 = 1 << 50;
/// Longest failure or exception message kept: a run cuts them at
/// [`crate::stats::MAX_MESSAGE_LEN`] (plus the overflow row's text).
const MAX_MESSAGE: usize = crate::stats::MAX_MESSAGE_LEN + 128;
/// Longest stop reason, threshold or header text taken.
pub const MAX_TEXT: usize = 64 << 10;

/// The caps a record is checked against: a run's own
/// ([`crate::policy::Limits`]' defaults, which no flag raises).
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Distinct (type, name) pairs, and names of each custom-metric kind.
    pub max_names: usize,
    /// Longest name, in bytes.
    pub max_name_len: usize,
}

impl Default for Caps {
    fn default() -> Caps {
        let limits = crate::policy::Limits::default();
        Caps {
            max_names: limits.max_event_names,
            max_name_len: limits.max_name_len,
        }
    }
}

impl Caps {
    /// Rows one second may hold of a kind: the admitted names, one
    /// overflow row for each of their types and one for unknown types, and
    /// as many again for shards that each admitted their own names.
    fn rows(&self) -> usize {
        self.max_names.saturating_mul(4).saturating_add(16)
    }
}

/// Memory a histogram of 3 significant figures from 1 to `highest` takes:
/// 2048 sub-buckets, half of them again for each doubling past 2048.
fn histogram_bytes(highest: u64) -> usize {
    let doublings = (64 - highest.max(2048).leading_zeros()).saturating_sub(11) as usize;
    (doublings + 2) * 1024 * std::mem::size_of::<u64>()
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Decode a base64 HDR V2 histogram (deflated or not) as a run writes
/// them, checking its header before allocating: 3 significant figures,
/// lowest 1, highest at most 2^42, a payload no longer than what follows,
/// at most 1 MiB inflated. What it takes in memory is charged to `budget`.
pub fn decode_histogram(text: &str, budget: &mut usize) -> Result<Histogram<u64>> {
    ensure!(
        text.len() <= MAX_ENCODED,
        "a histogram of {} bytes is larger than any a run writes ({} MiB at most)",
        text.len(),
        MAX_ENCODED >> 20
    );
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| anyhow::anyhow!("a histogram is not base64"))?;
    ensure!(bytes.len() >= 8, "a histogram is cut short");
    let plain = match u32_at(&bytes, 0) {
        V2_DEFLATE_COOKIE => {
            let length = u32_at(&bytes, 4) as usize;
            ensure!(
                length <= bytes.len() - 8,
                "a histogram declares {length} deflated bytes but holds {}",
                bytes.len() - 8
            );
            let mut inflated = Vec::new();
            flate2::read::ZlibDecoder::new(&bytes[8..8 + length])
                .take(MAX_INFLATED as u64 + 1)
                .read_to_end(&mut inflated)
                .map_err(|e| anyhow::anyhow!("a histogram does not inflate: {e}"))?;
            ensure!(
                inflated.len() <= MAX_INFLATED,
                "a histogram inflates past {} MiB: no run writes one",
                MAX_INFLATED >> 20
            );
            inflated
        }
        V2_COOKIE => bytes,
        _ => bail!("a histogram is not HDR V2"),
    };
    ensure!(
        plain.len() >= V2_HEADER && u32_at(&plain, 0) == V2_COOKIE,
        "a histogram is not HDR V2"
    );
    let payload = u32_at(&plain, 4) as usize;
    ensure!(
        payload <= plain.len() - V2_HEADER,
        "a histogram declares a payload of {payload} bytes but holds {}",
        plain.len() - V2_HEADER
    );
    let (figures, lowest, highest) = (u32_at(&plain, 12), u64_at(&plain, 16), u64_at(&plain, 24));
    ensure!(
        figures == 3 && lowest == 1 && (2..=MAX_HIGHEST).contains(&highest),
        "a histogram tracks {lowest}..{highest} with {figures} significant figures; a run's \
         track 1..{MAX_HIGHEST} with 3"
    );
    let cost = histogram_bytes(highest);
    ensure!(
        cost <= *budget,
        "the record's histograms would take more than {} MiB: no run writes such a record",
        RECORD_BUDGET >> 20
    );
    *budget -= cost;
    let mut histogram: Histogram<u64> = Deserializer::new()
        .deserialize(&mut plain.as_slice())
        .map_err(|e| anyhow::anyhow!("a histogram is not HDR V2: {e:?}"))?;
    // Recorded with 3 significant figures and auto-resize: keep adding.
    histogram.auto(true);
    Ok(histogram)
}

fn check_name(name: &str, what: &str, caps: &Caps) -> Result<()> {
    ensure!(
        name.len()
            <= caps
                .max_name_len
                .max(super::super::stats::OVERFLOW_NAME.len())
                + 64,
        "a {what} name of {} bytes is longer than the run keeps ({} bytes)",
        name.len(),
        caps.max_name_len
    );
    Ok(())
}

fn check_entry(entry: &EntryRecord, caps: &Caps) -> Result<()> {
    check_name(&entry.kind, "request type", caps)?;
    check_name(&entry.name, "request", caps)?;
    ensure!(
        entry.statuses.len() <= 1000,
        "{} {}: {} distinct statuses in one second",
        entry.kind,
        entry.name,
        entry.statuses.len()
    );
    Ok(())
}

/// Check what a second claims before its histograms are decoded: its
/// time, users and how many rows of each kind it holds.
pub fn check_second(second: &Second, caps: &Caps) -> Result<()> {
    ensure!(
        second.elapsed_s.is_finite() && (0.0..=1e9).contains(&second.elapsed_s),
        "a second at {} s into the run: a time must be 0 or more",
        second.elapsed_s
    );
    ensure!(
        second.users <= MAX_USERS,
        "{} users in one process (a run holds at most {MAX_USERS})",
        second.users
    );
    let rows = caps.rows();
    let counts = [
        ("requests", second.entries.len()),
        ("failure messages", second.errors.len()),
        ("exception messages", second.exceptions.len()),
        ("checks", second.checks.len()),
        ("counters", second.counters.len()),
        ("gauges", second.gauges.len()),
        ("trends", second.trends.len()),
    ];
    for (what, count) in counts {
        let most = if what.ends_with("messages") {
            rows.max(crate::stats::MAX_DISTINCT_MESSAGES * 4 + rows)
        } else {
            rows
        };
        ensure!(
            count <= most,
            "{count} {what} in one second, more than a run with --max-event-names {} records",
            caps.max_names
        );
    }
    let tagged_most = rows.saturating_mul(crate::stats::tags::MAX_TAG_VALUES + 1);
    ensure!(
        second.tagged.len() <= tagged_most,
        "{} tagged rows in one second, more than a run records",
        second.tagged.len()
    );
    for entry in second
        .entries
        .iter()
        .chain(second.tagged.iter().map(|t| &t.entry))
    {
        check_entry(entry, caps)?;
    }
    ensure!(
        second.iterations <= MAX_PER_SECOND && second.dropped_iterations <= MAX_PER_SECOND,
        "{} iterations and {} dropped in one second: no process runs so many",
        second.iterations,
        second.dropped_iterations
    );
    for (kind, name, message, count) in &second.errors {
        check_name(kind, "request type", caps)?;
        check_name(name, "request", caps)?;
        ensure!(
            message.len() <= MAX_MESSAGE && *count <= MAX_PER_SECOND,
            "a failure message of {} bytes counted {count} times in one second (a run keeps \
             {} bytes of a message)",
            message.len(),
            crate::stats::MAX_MESSAGE_LEN
        );
    }
    for (message, count) in &second.exceptions {
        ensure!(
            message.len() <= MAX_MESSAGE && *count <= MAX_PER_SECOND,
            "an exception message of {} bytes counted {count} times in one second",
            message.len()
        );
    }
    for (name, passes, fails) in &second.checks {
        check_name(name, "check", caps)?;
        ensure!(
            passes.saturating_add(*fails) <= MAX_PER_SECOND,
            "check {name}: {passes} passes and {fails} fails in one second"
        );
    }
    for (name, _) in &second.trends {
        check_name(name, "trend", caps)?;
    }
    for entry in second
        .entries
        .iter()
        .chain(second.tagged.iter().map(|t| &t.entry))
    {
        ensure!(
            entry.bytes <= MAX_BYTES_PER_SECOND
                && entry.messages_sent <= MAX_PER_SECOND
                && entry.messages_received <= MAX_PER_SECOND,
            "{} {}: {} bytes, {} messages sent and {} received in one second",
            entry.kind,
            entry.name,
            entry.bytes,
            entry.messages_sent,
            entry.messages_received
        );
    }
    for tagged in &second.tagged {
        ensure!(
            tagged.key.len() <= crate::stats::tags::MAX_TAG_LEN + 64
                && tagged.value.len() <= crate::stats::tags::MAX_TAG_LEN + 64,
            "a tag of {} and {} bytes (a run keeps {})",
            tagged.key.len(),
            tagged.value.len(),
            crate::stats::tags::MAX_TAG_LEN
        );
    }
    for (name, last, min, max) in &second.gauges {
        check_name(name, "gauge", caps)?;
        ensure!(
            last.is_finite() && min.is_finite() && max.is_finite() && min <= max,
            "gauge {name}: values that are not numbers"
        );
    }
    for (name, value) in &second.counters {
        check_name(name, "counter", caps)?;
        ensure!(
            value.is_finite(),
            "counter {name}: a value that is not a number"
        );
    }
    Ok(())
}

/// Check a decoded request row: failures and statuses never outnumber
/// the requests.
pub fn check_counts(
    kind: &str,
    name: &str,
    count: u64,
    failures: u64,
    statuses: &[(u16, u64)],
) -> Result<()> {
    ensure!(
        count <= MAX_PER_SECOND,
        "{kind} {name}: {count} requests in one second: no process makes so many"
    );
    ensure!(
        failures <= count,
        "{kind} {name}: {failures} failures of {count} requests"
    );
    let answered = statuses
        .iter()
        .fold(0u64, |sum, (_, n)| sum.saturating_add(*n));
    ensure!(
        answered <= count,
        "{kind} {name}: {answered} statuses for {count} requests"
    );
    Ok(())
}

/// Check what a header claims: texts of a sane length.
pub fn check_header(header: &super::result_file::Header) -> Result<()> {
    let texts = [
        &header.scenario,
        &header.sha256,
        &header.settings,
        &header.started_at,
        &header.horde_version,
    ];
    let longest = texts
        .iter()
        .map(|t| t.len())
        .chain(header.segment.iter().map(String::len))
        .chain(header.thresholds.iter().map(String::len))
        .chain(header.command_line.iter().map(String::len))
        .max()
        .unwrap_or(0);
    ensure!(
        longest <= MAX_TEXT
            && header.thresholds.len() <= 1000
            && header.command_line.len() <= 10_000,
        "a header with a text of {longest} bytes, {} thresholds and {} arguments: no run writes \
         one",
        header.thresholds.len(),
        header.command_line.len()
    );
    Ok(())
}

/// Check how a segment says it ended.
pub fn check_end(end: &End) -> Result<()> {
    ensure!(
        end.duration_s.is_finite() && (0.0..=1e9).contains(&end.duration_s),
        "a load of {} s: a duration must be 0 or more",
        end.duration_s
    );
    ensure!(
        end.stop_reason.as_ref().is_none_or(|r| r.len() <= MAX_TEXT),
        "a stop reason of {} bytes",
        end.stop_reason.as_ref().map_or(0, String::len)
    );
    ensure!(
        end.users <= MAX_USERS && end.interrupted_users <= MAX_USERS,
        "{} users in one process (a run holds at most {MAX_USERS})",
        end.users.max(end.interrupted_users)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer, V2Serializer};

    fn encoded(histogram: &Histogram<u64>, deflate: bool) -> Vec<u8> {
        let mut bytes = Vec::new();
        if deflate {
            V2DeflateSerializer::new()
                .serialize(histogram, &mut bytes)
                .unwrap();
        } else {
            V2Serializer::new()
                .serialize(histogram, &mut bytes)
                .unwrap();
        }
        bytes
    }

    fn text(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn a_run_histogram_decodes_as_it_was() {
        let mut h = crate::stats::new_histogram();
        for v in [1u64, 250, 90_000, 3_000_000] {
            h.record(v).unwrap();
        }
        for deflate in [true, false] {
            let mut budget = RECORD_BUDGET;
            let back = decode_histogram(&text(&encoded(&h, deflate)), &mut budget).unwrap();
            assert_eq!(back, h);
            assert!(budget < RECORD_BUDGET);
        }
    }

    #[test]
    fn a_declared_payload_past_the_bytes_is_refused_before_allocating() {
        let h = crate::stats::new_histogram();
        let mut bytes = encoded(&h, false);
        bytes[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        let error = decode_histogram(&text(&bytes), &mut RECORD_BUDGET.clone()).unwrap_err();
        assert!(format!("{error}").contains("declares a payload"), "{error}");
    }

    #[test]
    fn other_ranges_and_precisions_are_refused() {
        for (low, high, figures) in [(1, u64::MAX / 2, 3), (1, 1 << 30, 5), (1000, 1 << 30, 3)] {
            let h: Histogram<u64> = Histogram::new_with_bounds(low, high, figures).unwrap();
            let error = decode_histogram(&text(&encoded(&h, true)), &mut RECORD_BUDGET.clone())
                .unwrap_err();
            assert!(
                format!("{error}").contains("significant figures"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_deflate_bomb_stops_at_the_inflate_limit() {
        // 64 MiB of zeros deflate to about 64 KiB.
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut zlib, &V2_COOKIE.to_be_bytes()).unwrap();
        std::io::Write::write_all(&mut zlib, &vec![0u8; 64 << 20]).unwrap();
        let body = zlib.finish().unwrap();
        let mut bytes = V2_DEFLATE_COOKIE.to_be_bytes().to_vec();
        bytes.extend((body.len() as u32).to_be_bytes());
        bytes.extend(body);
        let error = decode_histogram(&text(&bytes), &mut RECORD_BUDGET.clone()).unwrap_err();
        assert!(format!("{error}").contains("inflates past"), "{error}");
    }

    #[test]
    fn the_budget_bounds_what_a_record_decodes() {
        let mut h = crate::stats::new_histogram();
        h.record(1 << 40).unwrap();
        let one = text(&encoded(&h, true));
        let mut budget = RECORD_BUDGET;
        let mut decoded = 0;
        let error = loop {
            match decode_histogram(&one, &mut budget) {
                Ok(_) => decoded += 1,
                Err(error) => break error,
            }
            assert!(decoded < 100_000, "the budget never ran out");
        };
        assert!(
            format!("{error}").contains("would take more than"),
            "{error}"
        );
        // Each of these histograms takes about 300 KiB: some hundreds fit.
        assert!((100..2000).contains(&decoded), "{decoded}");
    }

    #[test]
    fn messages_and_counts_no_run_writes_are_refused() {
        let caps = Caps::default();
        let mut second = Second::empty(&[]);
        assert!(check_second(&second, &caps).is_ok());
        second.errors.push((
            "GET".into(),
            "/".into(),
            "x".repeat(200_000_000 / 100_000),
            1,
        ));
        assert!(check_second(&second, &caps).is_err());
        let mut second = Second::empty(&[]);
        second.iterations = u64::MAX;
        assert!(check_second(&second, &caps).is_err());
        let mut second = Second::empty(&[]);
        second.checks.push(("c".into(), u64::MAX, 0));
        assert!(check_second(&second, &caps).is_err());
        assert!(check_counts("GET", "/", u64::MAX, 0, &[]).is_err());
    }

    #[test]
    fn impossible_counts_are_refused() {
        assert!(check_counts("GET", "/", 6000, 30_000, &[]).is_err());
        assert!(check_counts("GET", "/", 10, 0, &[(200, 11)]).is_err());
        assert!(check_counts("GET", "/", 10, 10, &[(500, 10)]).is_ok());
        let end = |duration_s: f64, users: u32| End {
            duration_s,
            users,
            stop_reason: None,
            interrupted_users: 0,
            exit_code: 0,
        };
        assert!(check_end(&end(-5.0, 1)).is_err());
        assert!(check_end(&end(f64::NAN, 1)).is_err());
        assert!(check_end(&end(10.0, u32::MAX)).is_err());
        assert!(check_end(&end(10.0, 2)).is_ok());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any bytes, and any damage to a real histogram, decode or are
        /// refused: never a panic, never past the budget.
        #[test]
        fn damaged_histograms_never_panic_nor_pass_the_budget(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            flips in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..8),
            deflate in proptest::prelude::any::<bool>(),
        ) {
            let mut budget = RECORD_BUDGET;
            let _ = decode_histogram(&text(&noise), &mut budget);
            let mut h = crate::stats::new_histogram();
            for v in [3u64, 900, 40_000, 7_000_000] {
                h.record(v).unwrap();
            }
            let mut bytes = encoded(&h, deflate);
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            let before = budget;
            if let Ok(back) = decode_histogram(&text(&bytes), &mut budget) {
                proptest::prop_assert!(budget < before);
                proptest::prop_assert!(back.len() < u64::MAX);
            }
        }
    }
}
