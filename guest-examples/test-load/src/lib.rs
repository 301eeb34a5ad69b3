//! Test guest for the load models: each task sends `--var method=` (default
//! GET) to `--var path=` (default "/"; `{vu}` in it becomes the VU's id), waits `--var wait_ms=` (default
//! none), with `--var metrics=on` reports a counter, a gauge and a trend,
//! with `--var json=on` checks that the body it received is JSON, and with
//! `--var discard=on` discards the body (checking it came back empty). `--var options=rate=50/s;run-time=2s` carries default
//! run options in `configure`, as a scenario may.

use horde_sdk::prelude::*;

#[derive(Default)]
struct Load {
    settings: Option<Settings>,
}

struct Settings {
    method: String,
    path: String,
    with_metrics: bool,
    check_json: bool,
    discard: bool,
}

impl Scenario for Load {
    fn config() -> Config<Self> {
        let mut config = Config::new().task(1, "request", Load::request);
        config = match control::var("wait_ms").and_then(|ms| ms.parse::<f64>().ok()) {
            Some(ms) => config.wait(constant(ms / 1000.0)),
            None => config.wait(no_wait()),
        };
        if let Some(options) = control::var("options") {
            for pair in options.split(';').filter(|p| !p.is_empty()) {
                if let Some((flag, value)) = pair.split_once('=') {
                    config = config.option(flag, value);
                }
            }
        }
        config
    }
}

impl Load {
    fn request(&mut self) -> TaskResult {
        // Read the run variables once per instance: a task is then one host call
        // (plus three with `--var metrics=on`), which the wasm-boundary bench relies on.
        let settings = self.settings.get_or_insert_with(|| {
            let on = |name: &str| control::var(name).as_deref() == Some("on");
            Settings {
                method: control::var("method").unwrap_or_else(|| "GET".into()),
                path: control::var("path")
                    .unwrap_or_else(|| "/".into())
                    .replace("{vu}", &control::vu_id().to_string()),
                with_metrics: on("metrics"),
                check_json: on("json"),
                discard: on("discard"),
            }
        });
        let mut request = http::request(&settings.method, settings.path.as_str()).name("load");
        if settings.discard {
            request = request.discard_body();
        }
        let response = request.send()?;
        if settings.check_json {
            let parsed = response.json::<horde_sdk::serde_json::Value>().is_ok();
            metrics::check("body is JSON", parsed);
        }
        if settings.discard {
            metrics::check("discarded body is empty", response.bytes().is_empty());
        }
        if settings.with_metrics {
            metrics::counter("tasks_done", 1.0);
            metrics::gauge("last_vu", f64::from(control::vu_id()));
            metrics::trend("iteration_seen", control::iteration() as f64);
        }
        Ok(())
    }
}

horde_sdk::export_scenario!(Load);
