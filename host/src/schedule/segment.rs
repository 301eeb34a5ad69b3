//! Execution segments (k6's): the share `(a, b]` of a whole run's load that
//! one process runs, so that N processes started with `--segment 1/N` ...
//! `N/N` together run exactly the whole: user counts, stage targets, shared
//! iterations and VU pools split so that the parts add up (floor(b*x) -
//! floor(a*x) summed over the segments is x), rates split by the fraction,
//! VU ids stay unique across segments, and data rows split the same way.

use std::fmt;

use anyhow::{Result, bail};

/// A segment `(start, end]` of the unit interval, as a fraction pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    start: Fraction,
    end: Fraction,
}

/// A fraction `numerator / denominator` in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fraction {
    numerator: u64,
    denominator: u64,
}

impl Fraction {
    /// `numerator / denominator` in lowest terms (so equal fractions compare equal).
    fn new(numerator: u64, denominator: u64) -> Fraction {
        let divisor = gcd(numerator, denominator).max(1);
        Fraction {
            numerator: numerator / divisor,
            denominator: denominator / divisor,
        }
    }

    fn parse(text: &str) -> Option<Fraction> {
        let text = text.trim();
        let fraction = if let Some((n, d)) = text.split_once('/') {
            Fraction {
                numerator: n.trim().parse().ok()?,
                denominator: d.trim().parse().ok()?,
            }
        } else if let Some((whole, decimals)) = text.split_once('.') {
            // Decimals exactly: 0.25 is 25/100.
            if decimals.is_empty()
                || decimals.len() > 9
                || !decimals.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            let denominator = 10u64.pow(decimals.len() as u32);
            let whole: u64 = if whole.is_empty() {
                0
            } else {
                whole.parse().ok()?
            };
            Fraction {
                numerator: whole * denominator + decimals.parse::<u64>().ok()?,
                denominator,
            }
        } else {
            Fraction {
                numerator: text.parse().ok()?,
                denominator: 1,
            }
        };
        (fraction.denominator > 0
            && fraction.denominator <= 1_000_000_000
            && fraction.numerator <= fraction.denominator)
            .then(|| Fraction::new(fraction.numerator, fraction.denominator))
    }

    /// floor(self * x), exactly.
    fn of(self, x: u64) -> u64 {
        (u128::from(x) * u128::from(self.numerator) / u128::from(self.denominator)) as u64
    }

    fn less_than(self, other: Fraction) -> bool {
        u128::from(self.numerator) * u128::from(other.denominator)
            < u128::from(other.numerator) * u128::from(self.denominator)
    }
}

impl fmt::Display for Fraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.denominator == 1 {
            write!(f, "{}", self.numerator)
        } else {
            write!(f, "{}/{}", self.numerator, self.denominator)
        }
    }
}

impl Segment {
    /// The whole run (what a process without `--segment` runs).
    pub const WHOLE: Segment = Segment {
        start: Fraction {
            numerator: 0,
            denominator: 1,
        },
        end: Fraction {
            numerator: 1,
            denominator: 1,
        },
    };

    /// Parse `I/N` (the I-th of N equal segments, 1-based) or `a:b` with
    /// fractions or decimals (`0:1/4`, `1/4:1/2`, `0.5:1`), as k6's
    /// `--execution-segment`. I may be a sum, `K+1/N`, for orchestrators
    /// that number from 0 (`--segment $(JOB_COMPLETION_INDEX)+1/3` in a
    /// Kubernetes Indexed Job).
    pub fn parse(text: &str) -> Result<Segment> {
        let usage = "write --segment I/N (the I-th of N equal parts, e.g. 2/4) or START:END \
                     with fractions of the whole (e.g. 1/4:1/2 or 0.25:0.5)";
        if let Some((start, end)) = text.split_once(':') {
            let (Some(start), Some(end)) = (Fraction::parse(start), Fraction::parse(end)) else {
                bail!("--segment {text:?} is not START:END with fractions from 0 to 1; {usage}");
            };
            if !start.less_than(end) {
                bail!("--segment {text:?} must end after it starts; {usage}");
            }
            return Ok(Segment { start, end });
        }
        let number = |s: &str| s.trim().parse::<u64>().ok();
        let index = |s: &str| match s.split_once('+') {
            Some((a, b)) => number(a)?.checked_add(number(b)?),
            None => number(s),
        };
        let parsed = text
            .split_once('/')
            .and_then(|(i, n)| Some((index(i)?, number(n)?)));
        match parsed {
            Some((index, count)) if index >= 1 && index <= count && count <= 1_000_000 => {
                Ok(Segment {
                    start: Fraction::new(index - 1, count),
                    end: Fraction::new(index, count),
                })
            }
            _ => bail!("--segment {text:?} is not a segment; {usage}"),
        }
    }

    /// True when the two segments share a part of the run.
    pub fn overlaps(&self, other: &Segment) -> bool {
        self.start.less_than(other.end) && other.start.less_than(self.end)
    }

    /// Where the segment starts, as a number in 0..1.
    pub fn start_f64(&self) -> f64 {
        self.start.numerator as f64 / self.start.denominator as f64
    }

    /// True for the whole run.
    pub fn is_whole(&self) -> bool {
        self.start.numerator == 0 && self.end.numerator == self.end.denominator
    }

    /// The run-wide id of this segment's `local`-th VU (1-based). The
    /// segment owns the slots `floor(start*D) .. floor(end*D)` of every
    /// block of D ids, D being its denominator: `--segment 2/4` gets ids 2,
    /// 6, 10, ... Ids are unique across segments that share a denominator
    /// (the `I/N` form always does), however often VUs come and go.
    pub fn vu_id(&self, local: u32) -> u32 {
        let (denominator, first, last) = self.stripe();
        let slots = (last - first).max(1);
        let index = u64::from(local.max(1) - 1);
        let id = (index / slots) * denominator + first + index % slots + 1;
        u32::try_from(id).unwrap_or(u32::MAX)
    }

    /// (D, first, last): the segment owns the ids whose (id - 1) mod D is
    /// in first..last, D being the common denominator of its ends.
    fn stripe(&self) -> (u64, u64, u64) {
        let (a, b) = (self.start.denominator, self.end.denominator);
        let denominator = a / gcd(a, b) * b;
        // Both ends over the common denominator.
        let scale = |f: Fraction| f.numerator * (denominator / f.denominator);
        (denominator, scale(self.start), scale(self.end))
    }

    /// This segment's part of a count: floor(end*x) - floor(start*x), so
    /// the parts of all segments add up to `x` exactly.
    pub fn part(&self, x: u64) -> u64 {
        self.end.of(x) - self.start.of(x)
    }

    /// This segment's part of a VU count (as [`Segment::part`]).
    pub fn users(&self, users: u32) -> u32 {
        self.part(u64::from(users)) as u32
    }

    /// The first of this segment's share of `x` (0-based): its part is
    /// `offset(x) .. offset(x) + part(x)`. VU ids and data rows use it.
    pub fn offset(&self, x: u64) -> u64 {
        self.start.of(x)
    }

    /// This segment's share of a rate.
    pub fn rate(&self, rate: f64) -> f64 {
        let (s, e) = (self.start, self.end);
        let numerator = e.numerator * s.denominator - s.numerator * e.denominator;
        rate * numerator as f64 / (e.denominator * s.denominator) as f64
    }

    /// The segment's width, end - start (as exactly as a float allows: 90/s
    /// over 1/3 is 30/s).
    pub fn width(&self) -> f64 {
        let (s, e) = (self.start, self.end);
        let numerator = e.numerator * s.denominator - s.numerator * e.denominator;
        numerator as f64 / (e.denominator * s.denominator) as f64
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_every_segment_add_up_to_the_whole() {
        for n in 1..=7u64 {
            let segments: Vec<Segment> = (1..=n)
                .map(|i| Segment::parse(&format!("{i}/{n}")).unwrap())
                .collect();
            for x in [0, 1, 2, 3, 10, 999, 1000, 12_345] {
                let parts: u64 = segments.iter().map(|s| s.part(x)).sum();
                assert_eq!(parts, x, "{n} segments of {x}");
                // Consecutive, non-overlapping shares.
                let mut next = 0;
                for s in &segments {
                    assert_eq!(s.offset(x), next);
                    next += s.part(x);
                }
            }
        }
    }

    #[test]
    fn vu_ids_are_unique_across_segments_of_one_denominator() {
        let mut seen = std::collections::HashSet::new();
        for i in 1..=4 {
            let segment = Segment::parse(&format!("{i}/4")).unwrap();
            for local in 1..=50 {
                assert!(seen.insert(segment.vu_id(local)), "segment {i}, VU {local}");
            }
        }
        assert_eq!(seen.len(), 200);
        assert!(
            (1..=200).all(|id| seen.contains(&id)),
            "ids 1..200, no gaps"
        );
        assert_eq!(Segment::WHOLE.vu_id(7), 7);
        let half = Segment::parse("1/4:3/4").unwrap();
        assert_eq!(
            (1..=4).map(|l| half.vu_id(l)).collect::<Vec<_>>(),
            [2, 3, 6, 7]
        );
    }

    #[test]
    fn fractions_and_decimals_parse_and_mistakes_are_explained() {
        let s = Segment::parse("1/4:1/2").unwrap();
        assert_eq!(s, Segment::parse("0.25:0.5").unwrap());
        assert_eq!(s, Segment::parse("2/4").unwrap());
        assert_eq!(s.to_string(), "1/4:1/2");
        assert_eq!(s.part(1000), 250);
        assert!((s.rate(100.0) - 25.0).abs() < 1e-9);
        assert!(Segment::parse("0:1").unwrap().is_whole());
        assert_eq!(
            Segment::parse("1+1/4").unwrap(),
            s,
            "a 0-based index plus 1"
        );
        assert!(Segment::parse("3+1/3").is_err());
        for bad in ["0/4", "5/4", "1/2:1/4", "x", "0:1.5", "1/0:1"] {
            let error = Segment::parse(bad).unwrap_err().to_string();
            assert!(error.contains("--segment"), "{bad}: {error}");
        }
    }
}
