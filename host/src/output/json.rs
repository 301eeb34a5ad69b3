//! The JSON report, written atomically (temporary file, then rename).

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::stats::Report;

/// The JSON document: the report plus how the run ended.
#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    report: &'a Report,
    stop_reason: Option<&'a str>,
    /// VUs cut mid-task when the stop timeout ran out.
    interrupted_users: u32,
    /// VU instances replaced after a trap or broken limit.
    replaced_instances: u64,
}

/// Write `report` to `path`.
pub fn write(
    path: &Path,
    report: &Report,
    stop_reason: Option<&str>,
    interrupted_users: u32,
    replaced_instances: u64,
) -> Result<()> {
    let document = JsonReport {
        report,
        stop_reason,
        interrupted_users,
        replaced_instances,
    };
    let text = serde_json::to_vec_pretty(&document).context("serializing the report")?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .context("the --json path has no file name")?;
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&temp, text).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, path)
        .with_context(|| format!("moving the report into {}", path.display()))?;
    Ok(())
}
