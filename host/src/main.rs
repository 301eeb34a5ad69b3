//! The `horde` binary: parse arguments, run, print the summary, map the
//! outcome to an exit code (0 passed, 1 failures without thresholds, 2 bad
//! input, 3 the run broke, 99 thresholds failed).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use horde::cli::{Cli, Command, DemoArgs, RunConfig};
use horde::{BadInput, Judgement, RunOutcome};

/// Exit code for bad input: flags, files, unreachable target.
const EXIT_BAD_INPUT: u8 = 2;
/// Exit code when the run itself broke (e.g. the report could not be written).
const EXIT_ERROR: u8 = 3;

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if let Command::Build(args) = &cli.command {
        return match horde::build::build(&args.source, args.out.as_deref()) {
            Ok(built) => {
                eprintln!("{built}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(EXIT_BAD_INPUT)
            }
        };
    }
    // `horde run app.py`, `horde demo app.py`: build the source first, into a
    // folder removed after the run.
    let mut built_in = None;
    let scenario = match &mut cli.command {
        Command::Run(args) => Some(&mut args.scenario),
        Command::Demo(args) => args.scenario.as_mut(),
        _ => None,
    };
    if let Some(scenario) = scenario.filter(|s| horde::build::is_source(s)) {
        match build_for_run(scenario) {
            Ok((folder, component)) => {
                *scenario = component;
                built_in = Some(folder);
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        }
    }
    let code = run_command(cli);
    if let Some(folder) = built_in {
        let _ = std::fs::remove_dir_all(folder);
    }
    code
}

/// Build a source given to `horde run` into a temporary folder: (the
/// folder, the component in it, named after the source).
fn build_for_run(
    source: &std::path::Path,
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let folder = std::env::temp_dir().join(format!("horde-build-{}", std::process::id()));
    std::fs::create_dir_all(&folder)?;
    let name = source
        .file_stem()
        .or_else(|| source.file_name())
        .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
    let out = folder.join(format!("{name}.wasm"));
    eprintln!("building {}", source.display());
    match horde::build::build(source, Some(&out)) {
        Ok(built) => {
            eprintln!("{built}");
            Ok((folder, built.component))
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(&folder);
            Err(error)
        }
    }
}

fn run_command(cli: Cli) -> ExitCode {
    if let Command::Cache { action } = cli.command {
        return match cache(action) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                // A mistyped HORDE_CACHE_MAX is bad input; failing to read
                // or clear the folder is not.
                let bad =
                    std::env::var("HORDE_CACHE_MAX").is_ok() && horde::cache::max_bytes().is_err();
                ExitCode::from(if bad { EXIT_BAD_INPUT } else { EXIT_ERROR })
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => {
                let config = RunConfig::from_args(&args)
                    .map_err(|e| anyhow::anyhow!(BadInput(format!("{e:#}"))))?;
                horde::run(&config).await
            }
            Command::Demo(args) => demo(*args).await,
            Command::Merge(args) => args
                .request()
                .map_err(|e| anyhow::anyhow!(BadInput(format!("{e:#}"))))
                .and_then(|request| horde::merge::merge(&request)),
            Command::Aggregate(args) => match args.request() {
                Ok(request) => horde::aggregate::aggregate(request).await,
                Err(e) => Err(anyhow::anyhow!(BadInput(format!("{e:#}")))),
            },
            Command::Cache { .. } | Command::Build(_) => {
                unreachable!("handled before the runtime starts")
            }
        }
    });
    match result {
        Ok(outcome) => {
            println!("{}", horde::output::summary::render(&outcome.report));
            if let Some(reason) = &outcome.stop_reason {
                eprintln!("run ended: {}", horde::output::printable(reason));
            }
            if let Some(partial) = &outcome.partial {
                eprintln!(
                    "warning: the merged results are not the whole run: {}",
                    horde::output::printable(partial)
                );
            }
            if outcome.interrupted_users > 0 {
                eprintln!(
                    "{} users were cut mid-task when --stop-timeout ran out",
                    outcome.interrupted_users
                );
            }
            if outcome.nothing_completed() {
                eprintln!(
                    "no request was recorded and users had to be cut: the target accepted and \
                     never answered, or the scenario hung; the run does not pass"
                );
            }
            if let Some(error) = &outcome.report_error {
                eprintln!("error: the results above could not be saved: {error}");
            } else if outcome.judgement() == Judgement::BadInput {
                eprintln!(
                    "error: {}",
                    horde::output::printable(outcome.misuse.as_deref().unwrap_or_default())
                );
            }
            // A person at a terminal keeps the page to look at; a script
            // (CI, a benchmark) goes on.
            if let Some(web) = &outcome.web
                && std::io::stdin().is_terminal()
            {
                eprintln!(
                    "the web UI stays up at {} with the final results; press Ctrl-C to exit",
                    web.url
                );
                runtime.block_on(horde::wait_for_signal());
            }
            ExitCode::from(outcome.exit_code())
        }
        Err(error) => {
            let bad = error.downcast_ref::<BadInput>().is_some();
            eprintln!("error: {}", horde::output::printable(&format!("{error:#}")));
            ExitCode::from(if bad { EXIT_BAD_INPUT } else { EXIT_ERROR })
        }
    }
}

async fn demo(args: DemoArgs) -> anyhow::Result<RunOutcome> {
    let mut raw = horde::cli::RunArgs {
        scenario: args.scenario.clone().unwrap_or_else(|| "demo".into()),
        host: None,
        users: Some(args.users.clone()),
        spawn_rate: Some(args.spawn_rate.clone()),
        run_time: Some(args.run_time.clone()),
        iterations: None,
        rate: None,
        stages: None,
        max_vus: None,
        pre_vus: None,
        max_queue_time: None,
        thresholds: args.thresholds.clone(),
        allow_hosts: Vec::new(),
        vars: args.vars.clone(),
        data: args.data.clone(),
        seed: args.seed,
        breakdown: args.breakdown.clone(),
        user_class: args.user_class.clone(),
        segment: args.segment.clone(),
        start_at: None,
        outputs: args.outputs.clone(),
        max_vu_memory: None,
        max_response_body: None,
        max_grpc_receive_size: None,
        max_task_cpu: None,
        timeout: None,
        stop_timeout: None,
        insecure: false,
        http2_prior_knowledge: false,
        proto: None,
        proto_paths: Vec::new(),
        no_cache: false,
        cache_max: None,
        quiet: args.quiet,
    };
    let target = horde::demo::DemoTarget::start(true).await?;
    raw.host = Some(target.url());
    let mut config = match &args.scenario {
        Some(_) => RunConfig::from_args(&raw),
        None => RunConfig::for_embedded(
            &raw,
            "demo scenario (guest-examples/rust-http)",
            horde::demo::DEMO_SCENARIO,
        ),
    }
    .map_err(|e| anyhow::anyhow!(BadInput(format!("{e:#}"))))?;
    config.quiet = args.quiet;
    eprintln!(
        "demo target listening on {}; running {} for {}",
        target.url(),
        args.scenario
            .as_ref()
            .map_or("the example scenario".to_string(), |p| p
                .display()
                .to_string()),
        args.run_time
    );
    horde::run(&config).await
}

/// Show or clear the compiled-component cache.
fn cache(action: Option<horde::cli::CacheAction>) -> anyhow::Result<String> {
    let dir = horde::engine::default_cache_dir()
        .ok_or_else(|| anyhow::anyhow!("no cache folder: set HORDE_CACHE_DIR"))?;
    let max = horde::cache::max_bytes()?;
    let size = |bytes: u64| bytesize::ByteSize(bytes).display().iec().to_string();
    match action.unwrap_or(horde::cli::CacheAction::Show) {
        horde::cli::CacheAction::Show => {
            let entries = horde::cache::entries(&dir)?;
            let (components, component_bytes, functions, function_bytes) =
                horde::cache::totals(&entries);
            let plural = if components == 1 { "" } else { "s" };
            let packs = if functions == 1 { "" } else { "s" };
            let trust = match horde::cache::check_private(&dir) {
                Ok(()) => String::new(),
                Err(warning) => format!("\nwarning: {warning}"),
            };
            Ok(format!(
                "compile cache: {}\n{components} compiled component{plural} ({}) and \
                 {functions} pack{packs} of compiled functions ({}): {} of a {} cap (set HORDE_CACHE_MAX to \
                 change it, HORDE_CACHE_DIR to move it; `horde cache clear` empties it)",
                dir.display(),
                size(component_bytes),
                size(function_bytes),
                size(component_bytes + function_bytes),
                size(max)
            ) + &trust)
        }
        horde::cli::CacheAction::Clear => {
            let (removed, freed) = horde::cache::clear(&dir)?;
            Ok(format!(
                "removed {removed} files (compiled components and function packs, {}) from {}",
                size(freed),
                dir.display()
            ))
        }
    }
}
