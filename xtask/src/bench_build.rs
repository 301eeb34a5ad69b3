//! Bench sections for building scenarios: edit-to-first-request of a Python
//! and a JavaScript scenario (`horde build` of an edited script, then its
//! first `horde run -i 1`, with that run's peak RSS), and the compile
//! cache's size after building every example twice.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// What /usr/bin/time saw of one command.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub wall_s: f64,
    pub cpu_s: f64,
    pub max_rss_kib: u64,
}

/// Run `command` under `/usr/bin/time`; fails unless it exits 0. Returns
/// its usage and its stdout.
pub fn usage(command: &mut Command) -> Result<(Usage, String)> {
    time_command(command, true)
}

/// Run `command` under `/usr/bin/time` (failing on a non-zero exit when
/// `require_success`); its usage and its stdout.
pub fn time_command(command: &mut Command, require_success: bool) -> Result<(Usage, String)> {
    let time_file = std::env::temp_dir().join(format!(
        "horde-bench-usage-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let program = command.get_program().to_os_string();
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-o")
        .arg(&time_file)
        .args(["-f", "%e %U %S %M"])
        .arg(&program)
        .args(command.get_args())
        .envs(
            command
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_os_string(), v.to_os_string()))),
        )
        .stderr(Stdio::piped());
    if let Some(dir) = command.get_current_dir() {
        timed.current_dir(dir);
    }
    let output = timed
        .output()
        .with_context(|| format!("running {}", program.to_string_lossy()))?;
    let times = std::fs::read_to_string(&time_file).unwrap_or_default();
    let _ = std::fs::remove_file(&time_file);
    if require_success && !output.status.success() {
        bail!(
            "{} {:?} failed: {}",
            program.to_string_lossy(),
            command.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        );
    }
    let fields: Vec<f64> = times
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    let [wall_s, user, sys, rss] = fields[..] else {
        bail!(
            "/usr/bin/time wrote {times:?} for {}",
            program.to_string_lossy()
        );
    };
    Ok((
        Usage {
            wall_s,
            cpu_s: user + sys,
            max_rss_kib: rss as u64,
        },
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

/// `horde ARGS` in `dir` with the compile cache at `cache` (never pruned here).
fn horde(dir: &Path, cache: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(crate::bench::horde_bin());
    command
        .current_dir(dir)
        .env("HORDE_CACHE_DIR", cache)
        .env("HORDE_CACHE_MAX", "1TiB")
        .env_remove("HORDE_SDK_DIR")
        .args(args);
    command
}

/// The script of a Python or JS example and an edit that changes what it
/// does (so the rebuilt component differs, as a real edit's would).
fn script_and_edit(language: guest_build::ScriptLanguage) -> (&'static str, &'static str) {
    match language {
        guest_build::ScriptLanguage::Python => ("app.py", "\nEDITED = 1\n"),
        guest_build::ScriptLanguage::JavaScript => ("scenario.js", "\nglobalThis.edited = 1;\n"),
    }
}

/// Copy an example's folder to `to` (no build products).
fn copy_example(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)?.flatten() {
        let name = entry.file_name();
        if name == "__pycache__" || name == "node_modules" {
            continue;
        }
        if entry.path().is_dir() {
            copy_example(&entry.path(), &to.join(&name))?;
        } else {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}

/// One example's edit-to-first-request: build and first run never built
/// before, then after an edit.
fn edit_to_first_request(package: &str, base: &str, work: &Path) -> Result<Value> {
    let guest = guest_build::script_guests()
        .into_iter()
        .find(|g| g.package == package)
        .with_context(|| format!("no example {package}"))?;
    let (script, edit) = script_and_edit(guest.language);
    let dir = work.join(package);
    let cache = work.join(format!("{package}-cache"));
    copy_example(&guest.dir, &dir)?;
    let mut stages = Vec::new();
    for stage in ["first build", "after an edit"] {
        if stage == "after an edit" {
            let mut text = std::fs::read_to_string(dir.join(script))?;
            text.push_str(edit);
            std::fs::write(dir.join(script), text)?;
        }
        let (build, _) = usage(&mut horde(&dir, &cache, &["build", script, "-o", "s.wasm"]))?;
        let (run, _) = usage(
            horde(
                &dir,
                &cache,
                &["run", "s.wasm", "--host", base, "-i", "1", "-u", "1", "-q"],
            )
            .stdout(Stdio::null()),
        )?;
        stages.push(json!({
            "stage": stage,
            "build_s": build.wall_s,
            "first_run_s": run.wall_s,
            "first_run_cpu_s": run.cpu_s,
            "first_run_peak_rss_mib": run.max_rss_kib as f64 / 1024.0,
        }));
    }
    Ok(json!({ "scenario": package, "stages": stages }))
}

fn folder_size(dir: &Path) -> (u64, u64) {
    let mut totals = (0, 0);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                let (files, bytes) = folder_size(&path);
                totals.0 += files;
                totals.1 += bytes;
            } else if let Ok(metadata) = entry.metadata() {
                totals.0 += 1;
                totals.1 += metadata.len();
            }
        }
    }
    totals
}

/// Compile `component` into `cache` as a run would (compile_footprint).
fn compile_into(component: &Path, cache: &Path) -> Result<()> {
    let example = guest_build::repo_root().join("target/release/examples/compile_footprint");
    usage(
        Command::new(example)
            .arg(component)
            .arg(cache)
            .stdout(Stdio::null()),
    )
    .map(|_| ())
}

/// Build every example twice (the Python and JS ones with an edit in
/// between; a Rust rebuild is byte-identical) and compile each build into
/// one cache: its size, components and functions.
fn cache_after_every_example_twice(work: &Path) -> Result<Value> {
    let cache = work.join("all-cache");
    let mut components = 0;
    for package in guest_build::guest_packages() {
        let wasm = guest_build::guest_wasm_path(&package);
        for _ in 0..2 {
            compile_into(&wasm, &cache)?;
        }
        components += 1;
    }
    for guest in guest_build::script_guests() {
        eprintln!("xtask bench: building {} twice", guest.package);
        let (script, edit) = script_and_edit(guest.language);
        let dir = work.join(format!("twice-{}", guest.package));
        copy_example(&guest.dir, &dir)?;
        for build in 0..2 {
            if build == 1 {
                let mut text = std::fs::read_to_string(dir.join(script))?;
                text.push_str(edit);
                std::fs::write(dir.join(script), text)?;
            }
            let out = dir.join(format!("build{build}.wasm"));
            let out_text = out.to_string_lossy().into_owned();
            usage(&mut horde(
                &dir,
                &cache,
                &["build", script, "-o", &out_text],
            ))?;
            compile_into(&out, &cache)?;
        }
        components += 1;
    }
    let (component_files, component_bytes) = {
        let mut totals = (0, 0);
        for entry in std::fs::read_dir(&cache)?.flatten() {
            if entry.path().extension().is_some_and(|e| e == "cwasm") {
                totals.0 += 1;
                totals.1 += entry.metadata().map_or(0, |m| m.len());
            }
        }
        totals
    };
    let (function_packs, function_bytes) = folder_size(&cache.join("functions"));
    Ok(json!({
        "examples": components,
        "compiled_components": component_files,
        "component_mib": component_bytes as f64 / 1048576.0,
        "function_packs": function_packs,
        "function_mib": function_bytes as f64 / 1048576.0,
        "total_mib": (component_bytes + function_bytes) as f64 / 1048576.0,
    }))
}

/// The section's Markdown and raw figures.
pub struct Section {
    pub markdown: String,
    pub json: Value,
}

/// Both measurements against the bench's nginx at `base`.
pub fn section(base: &str) -> Result<Section> {
    let work = std::env::temp_dir().join(format!("horde-bench-build-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let mut edits = Vec::new();
    for package in ["python-http", "js-http"] {
        eprintln!("xtask bench: edit to first request, {package}");
        edits.push(edit_to_first_request(package, base, &work)?);
    }
    let cache = cache_after_every_example_twice(&work)?;
    let _ = std::fs::remove_dir_all(&work);
    let mut markdown = String::from(
        "\n## From an edit to the first request\n\n`horde build` of the example's script \
         (componentize-py, or esbuild + componentize-js), then `horde run -i 1` of the \
         component against the same nginx, each with its own compile cache: first never \
         built before, then after a one-line edit (the compile cache keeps each compiled \
         function, so the rebuilt interpreter is mostly loaded, not compiled). Wall times; \
         peak RSS of the run process (`/usr/bin/time`).\n\n\
         | scenario | stage | build | first run | edit to first request | first run peak RSS |\n\
         |---|---|---|---|---|---|\n",
    );
    for edit in &edits {
        for stage in edit["stages"].as_array().into_iter().flatten() {
            let number = |key: &str| stage[key].as_f64().unwrap_or(f64::NAN);
            let _ = writeln!(
                markdown,
                "| {} | {} | {:.1} s | {:.2} s | {:.1} s | {:.0} MiB |",
                edit["scenario"].as_str().unwrap_or_default(),
                stage["stage"].as_str().unwrap_or_default(),
                number("build_s"),
                number("first_run_s"),
                number("build_s") + number("first_run_s"),
                number("first_run_peak_rss_mib"),
            );
        }
    }
    let number = |key: &str| cache[key].as_f64().unwrap_or(f64::NAN);
    let _ = writeln!(
        markdown,
        "\nThe compile cache after building all {} examples twice (Python and JS ones with an \
         edit in between; a Rust rebuild is byte-identical) and compiling each build: **{:.0} \
         MiB**, of which {} compiled components {:.0} MiB and {} packs of compiled functions {:.0} MiB \
         (the cap, 1 GiB by default, evicts the least recently used beyond that).",
        cache["examples"],
        number("total_mib"),
        cache["compiled_components"],
        number("component_mib"),
        cache["function_packs"],
        number("function_mib"),
    );
    Ok(Section {
        markdown,
        json: json!({ "edit_to_first_request": edits, "cache_after_every_example_twice": cache }),
    })
}
