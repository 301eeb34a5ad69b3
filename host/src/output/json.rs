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

/// Write the report of `outcome` to `path`.
pub fn write(path: &Path, outcome: &RunOutcome) -> Result<()> {
    let document = JsonReport {
        report: &outcome.report,
        base_url: outcome.base_url.as_deref(),
        stop_reason: outcome.stop_reason.as_deref(),
        interrupted_users: outcome.interrupted_users,
        replaced_instances: outcome.replaced_instances,
    };
    let text = serde_json::to_vec_pretty(&document).context("serializing the report")?;
    let temp = temp_path(path)?;
    let written = std::fs::write(&temp, text)
        .with_context(|| format!("writing the JSON report to {}", temp.display()))
        .and_then(|()| {
            std::fs::rename(&temp, path)
                .with_context(|| format!("moving the JSON report into {}", path.display()))
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
        .context("the --json path has no file name")?;
    Ok(dir.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    )))
}

/// Check, before the run, that a report can be written to `path`: its
/// folder exists and a file can be created there (and is removed at once).
pub fn check_writable(path: &Path) -> Result<()> {
    if path.is_dir() {
        bail!(
            "--json {} is a folder; give a file name, e.g. {}",
            path.display(),
            path.join("report.json").display()
        );
    }
    let temp = temp_path(path)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .with_context(|| {
            format!(
                "--json {}: cannot create a file there; check that the folder exists and is \
                 writable",
                path.display()
            )
        })?;
    let _ = std::fs::remove_file(&temp);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
