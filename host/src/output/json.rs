//! The JSON report, written atomically (temporary file, then rename; a
//! failed write leaves nothing behind), and the check before a run that its
//! destination can be written.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::RunOutcome;
use crate::stats::Report;

/// The JSON document: the report plus how the run ended.
#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    report: &'a Report,
    /// The base URL relative request paths were resolved under (`--host`).
    base_url: Option<&'a str>,
    stop_reason: Option<&'a str>,
    /// VUs cut mid-task when the stop timeout ran out.
    interrupted_users: u32,
    /// VU instances replaced after a trap or broken limit.
    replaced_instances: u64,
}

/// The JSON document of `outcome` (the HTML report embeds the same).
pub fn document(outcome: &RunOutcome) -> serde_json::Value {
    document_of(
        &outcome.report,
        outcome.base_url.as_deref(),
        outcome.stop_reason.as_deref(),
        outcome.interrupted_users,
        outcome.replaced_instances,
    )
}

/// The JSON document of a report and how the run ended (so far, for the
/// live page).
pub fn document_of(
    report: &Report,
    base_url: Option<&str>,
    stop_reason: Option<&str>,
    interrupted_users: u32,
    replaced_instances: u64,
) -> serde_json::Value {
    let document = JsonReport {
        report,
        base_url,
        stop_reason,
        interrupted_users,
        replaced_instances,
    };
    serde_json::to_value(&document).unwrap_or_default()
}

/// Write the report of `outcome` to `path`.
pub fn write(path: &Path, outcome: &RunOutcome) -> Result<()> {
    let text = serde_json::to_vec_pretty(&document(outcome)).context("serializing the report")?;
    write_atomically(path, &text, "the JSON report")
}

/// Write `bytes` to `path` through a temporary file beside it, renamed into
/// place: a failed write leaves nothing behind. `what` names the file in
/// errors.
pub fn write_atomically(path: &Path, bytes: &[u8], what: &str) -> Result<()> {
    refuse_special(path, what)?;
    let temp = temp_path(path)?;
    let written = std::fs::write(&temp, bytes)
        .with_context(|| format!("writing {what} to {}", temp.display()))
        .and_then(|()| {
            std::fs::rename(&temp, path)
                .with_context(|| format!("moving {what} into {}", path.display()))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// The temporary file a report to `path` is first written to, beside it.
fn temp_path(path: &Path) -> Result<PathBuf> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    Ok(dir.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    )))
}

/// Check, before the run, that a report can be written to `path`: its
/// folder exists and a file can be created there (and is removed at once).
pub fn check_writable(path: &Path) -> Result<()> {
    check_file_writable(path, "--json", "report.json")
}

/// [`check_writable`] for the file of `flag`; `example` is a file name the
/// error suggests when `path` is a folder.
pub fn check_file_writable(path: &Path, flag: &str, example: &str) -> Result<()> {
    refuse_special(path, flag)?;
    if path.is_dir() {
        bail!(
            "{flag} {} is a folder; give a file name, e.g. {}",
            path.display(),
            path.join(example).display()
        );
    }
    let temp = temp_path(path)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .with_context(|| {
            format!(
                "{flag} {}: cannot create a file there; check that the folder exists and is \
                 writable",
                path.display()
            )
        })?;
    let _ = std::fs::remove_file(&temp);
    Ok(())
}

/// A report replaces its file by renaming a new one over it: a pipe or a
/// device there (`/dev/null`, `/dev/full`) would be replaced, not written
/// to. Refuse them; `what` names the flag or file in the error.
fn refuse_special(path: &Path, what: &str) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() && !meta.is_dir() => bail!(
            "{what} {}: not a regular file (a pipe or a device); give a file name, e.g. \
             report.json",
            path.display()
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_and_devices_are_never_replaced() {
        assert!(check_file_writable(Path::new("/dev/null"), "--json", "r.json").is_err());
        assert!(write_atomically(Path::new("/dev/null"), b"{}", "the JSON report").is_err());
        assert!(
            Path::new("/dev/null")
                .metadata()
                .is_ok_and(|m| !m.is_file())
        );
    }

    #[test]
    fn an_unwritable_destination_is_refused_before_the_run() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_writable(&dir.path().join("r.json")).is_ok());
        let err = check_writable(&dir.path().join("no-such-dir/r.json")).unwrap_err();
        assert!(format!("{err:#}").contains("folder exists"), "{err:#}");
        assert!(check_writable(dir.path()).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
