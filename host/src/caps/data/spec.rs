//! The `--data NAME=FILE[;key=value...]` flag (and a scenario's `data`
//! default, which names a feed it expects without a file): parsed and
//! checked, each mistake explained with the fix.

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::load::Format;

/// How rows are handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// One cursor shared by every VU, in file order (Gatling's `queue`/`circular`).
    Sequential,
    /// A row drawn at random each time, repeatable with `--seed`.
    Random,
    /// File order shuffled once with `--seed`, then walked like `sequential`.
    Shuffle,
    /// Each row at most once in the whole run.
    Unique,
    /// VU k always gets row k (1-based VU ids, 0-based rows: VU 1 gets row 0).
    PerVu,
}

/// What happens when a feed runs out of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnEnd {
    /// Start again from the first row (not allowed with `unique`).
    Wrap,
    /// Stop the VU after its current task (its error is not counted).
    StopVu,
    /// Stop the whole run after the current tasks; results are written.
    StopTest,
    /// Fail the task: the call returns an error counted as an exception.
    Fail,
}

impl Strategy {
    fn parse(text: &str) -> Option<Strategy> {
        Some(match text {
            "sequential" => Strategy::Sequential,
            "random" => Strategy::Random,
            "shuffle" => Strategy::Shuffle,
            "unique" => Strategy::Unique,
            "per-vu" => Strategy::PerVu,
            _ => return None,
        })
    }

    /// The `on-end` a feed gets when none is given: `unique` stops the run
    /// (running on with reused rows would break what it promises), the
    /// others wrap.
    pub fn default_on_end(self) -> OnEnd {
        match self {
            Strategy::Unique => OnEnd::StopTest,
            _ => OnEnd::Wrap,
        }
    }
}

impl OnEnd {
    fn parse(text: &str) -> Option<OnEnd> {
        Some(match text {
            "wrap" => OnEnd::Wrap,
            "stop-vu" => OnEnd::StopVu,
            "stop-test" => OnEnd::StopTest,
            "fail" => OnEnd::Fail,
            _ => return None,
        })
    }
}

/// One `--data` flag (or a scenario's declaration, without `file`). Unset
/// options take the scenario's declaration, then the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedSpec {
    pub name: String,
    pub file: Option<PathBuf>,
    pub strategy: Option<Strategy>,
    pub on_end: Option<OnEnd>,
    pub format: Option<Format>,
    pub header: Option<bool>,
    pub delimiter: Option<u8>,
}

/// What the flag looks like, for error messages.
const SHAPE: &str = "--data NAME=FILE[;strategy=sequential|random|shuffle|unique|per-vu]\
                     [;on-end=wrap|stop-vu|stop-test|fail][;format=csv|tsv|jsonl|json]\
                     [;header=true|false][;delimiter=comma|semicolon|tab|pipe|CHAR]";

impl FeedSpec {
    /// Parse the operator's `NAME=FILE[;key=value...]`.
    pub fn parse_flag(text: &str) -> Result<FeedSpec> {
        let (head, options) = text.split_once(';').unwrap_or((text, ""));
        let Some((name, file)) = head.split_once('=') else {
            bail!(
                "--data {text:?} names no file: write it as {SHAPE}, e.g. --data users=users.csv"
            );
        };
        if file.is_empty() {
            bail!("--data {text:?} names no file after `{name}=`");
        }
        let mut spec = FeedSpec::named(name, "--data")?;
        spec.file = Some(PathBuf::from(file));
        if let Some((format, delimiter)) = Format::of_path(file.as_ref()) {
            spec.format = Some(format);
            spec.delimiter = delimiter;
        }
        spec.set_options(options, "--data")?;
        Ok(spec)
    }

    /// Parse a scenario's `data` default, `NAME[;key=value...]`: a feed it
    /// expects, never a file (only the operator grants files).
    pub fn parse_declaration(text: &str) -> Result<FeedSpec> {
        let (name, options) = text.split_once(';').unwrap_or((text, ""));
        if let Some((name, _)) = name.split_once('=') {
            bail!(
                "the scenario's default option data={text:?} names a file: a scenario may only \
                 name the feeds it expects (data=\"{name};strategy=unique\"); the operator grants \
                 the file with --data {name}=FILE"
            );
        }
        let mut spec = FeedSpec::named(name, "the scenario's data option")?;
        spec.set_options(options, "the scenario's data option")?;
        Ok(spec)
    }

    fn named(name: &str, flag: &str) -> Result<FeedSpec> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        if !valid {
            bail!(
                "{flag}: the feed name {name:?} must be 1 to 64 letters, digits, '_', '-' or '.' \
                 (the name the scenario reads it by, e.g. users)"
            );
        }
        Ok(FeedSpec {
            name: name.to_string(),
            ..FeedSpec::default()
        })
    }

    fn set_options(&mut self, options: &str, flag: &str) -> Result<()> {
        let mut seen = Vec::new();
        for option in options.split(';').filter(|o| !o.trim().is_empty()) {
            let Some((key, value)) = option.split_once('=') else {
                bail!("{flag} option {option:?} has no value: write key=value, as in {SHAPE}");
            };
            let (key, value) = (key.trim(), value.trim());
            let canonical = key.replace('_', "-");
            if seen.contains(&canonical) {
                bail!("{flag} {}: {key} is given twice", self.name);
            }
            seen.push(canonical);
            let bad =
                |what: &str| anyhow::anyhow!("{flag} {}: {key}={value:?} is not {what}", self.name);
            match key {
                "strategy" => {
                    self.strategy = Some(Strategy::parse(value).ok_or_else(|| {
                        bad("a strategy (sequential, random, shuffle, unique or per-vu)")
                    })?);
                }
                "on-end" | "on_end" => {
                    self.on_end = Some(OnEnd::parse(value).ok_or_else(|| {
                        bad("what to do at the end of the rows (wrap, stop-vu, stop-test or fail)")
                    })?);
                }
                "format" => {
                    let (format, delimiter) = Format::parse(value)
                        .ok_or_else(|| bad("a format (csv, tsv, jsonl or json)"))?;
                    self.format = Some(format);
                    if delimiter.is_some() {
                        self.delimiter = delimiter;
                    }
                }
                "header" => {
                    self.header = Some(match value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad("true or false")),
                    });
                }
                "delimiter" => {
                    self.delimiter = Some(match value {
                        "comma" | "," => b',',
                        "semicolon" => b';',
                        "tab" | "\\t" => b'\t',
                        "pipe" | "|" => b'|',
                        one if one.len() == 1 && one.is_ascii() => one.as_bytes()[0],
                        _ => {
                            return Err(bad(
                                "one ASCII character (or comma, semicolon, tab, pipe)",
                            ));
                        }
                    });
                }
                _ => bail!(
                    "{flag} {}: unknown option {key:?}; the options are strategy, \
                     on-end, format, header and delimiter ({SHAPE})",
                    self.name
                ),
            }
        }
        if self.strategy == Some(Strategy::Unique) && self.on_end == Some(OnEnd::Wrap) {
            bail!(
                "{flag} {}: strategy=unique hands out each row at most once, so it \
                 cannot wrap; use on-end=stop-test (the default), stop-vu or fail",
                self.name
            );
        }
        Ok(())
    }

    /// Fill the options this flag leaves unset from the scenario's
    /// declaration of the same feed.
    pub fn complete_from(&mut self, declared: &FeedSpec) {
        self.strategy = self.strategy.or(declared.strategy);
        self.on_end = self.on_end.or(declared.on_end);
        self.format = self.format.or(declared.format);
        self.header = self.header.or(declared.header);
        self.delimiter = self.delimiter.or(declared.delimiter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_with_their_options_and_explain_mistakes() {
        let spec =
            FeedSpec::parse_flag("users=data/users.tsv;strategy=unique;on-end=fail").unwrap();
        assert_eq!(spec.name, "users");
        assert_eq!(spec.file, Some(PathBuf::from("data/users.tsv")));
        assert_eq!(spec.strategy, Some(Strategy::Unique));
        assert_eq!(spec.on_end, Some(OnEnd::Fail));
        assert_eq!(spec.format, Some(Format::Csv));
        assert_eq!(spec.delimiter, Some(b'\t'));
        let error = |text: &str| FeedSpec::parse_flag(text).unwrap_err().to_string();
        assert!(error("users.csv").contains("names no file"));
        assert!(error("users=u.csv;strategy=circular").contains("sequential, random"));
        assert!(error("users=u.csv;strategy=unique;on-end=wrap").contains("cannot wrap"));
        assert!(error("us ers=u.csv").contains("must be 1 to 64"));
        assert!(error("users=u.csv;colour=red").contains("unknown option"));
    }

    #[test]
    fn a_scenario_names_feeds_but_never_files() {
        let declared = FeedSpec::parse_declaration("users;strategy=unique").unwrap();
        assert_eq!(declared.file, None);
        let error = FeedSpec::parse_declaration("users=/etc/passwd").unwrap_err();
        assert!(
            error.to_string().contains("only the operator")
                || error.to_string().contains("the operator grants")
        );
        let mut flag = FeedSpec::parse_flag("users=u.csv;on-end=fail").unwrap();
        flag.complete_from(&declared);
        assert_eq!(flag.strategy, Some(Strategy::Unique));
        assert_eq!(flag.on_end, Some(OnEnd::Fail));
    }
}
