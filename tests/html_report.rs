//! `--html`: the report opened in a real headless Chromium (Debian's, driven
//! through chromedriver by tests/browser/check_page.py): no console error,
//! no network request, every chart drawn, the embedded data equal to the
//! `--json` report, a dragged time range changing the table, sorting, and
//! hostile names shown as text.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use horde::demo::DemoTarget;
use horde_tests::{config, guests};
use serde_json::Value;

/// What the browser saw of the page at `url` (see check_page.py).
pub fn open_in_chromium(url: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/check_page.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg(url)
        .output()
        .expect("running python3 (`cargo xtask test` installs selenium and chromium)");
    assert!(
        output.status.success(),
        "check_page.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("check_page.py prints JSON")
}

/// The requests column of a table row (as the page shows it: "1,234").
fn count(row: &Value) -> u64 {
    row[2].as_str().unwrap().replace(',', "").parse().unwrap()
}

/// JSON values equal as numbers (the page's 0 is the file's 0.0).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn assert_clean_page(page: &Value) {
    assert_eq!(page["loaded"], true, "{page}");
    assert_eq!(page["console"], serde_json::json!([]), "console errors");
    for url in page["requests"].as_array().unwrap() {
        let url = url.as_str().unwrap();
        assert!(
            url.starts_with("file://") || url.starts_with("data:"),
            "the page fetched {url}"
        );
    }
    assert_eq!(page["pwned"], Value::Null, "script from a name ran");
    assert_eq!(
        page["controls_shown"], false,
        "a saved report has no live controls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_opens_offline_draws_every_chart_and_selects_ranges() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let json_path = dir.path().join("report.json");
    let mut run = config(guests::RUST_HTTP, &target.url(), dir.path());
    run.run_time = Some(Duration::from_secs(6));
    run.users = 4;
    run.spawn_rate = 10.0;
    run.json = Some(json_path.clone());
    run.outputs.html = Some(html.clone());
    run.thresholds
        .push(horde::thresholds::Threshold::parse("http_req_duration: p(95)<10000").unwrap());
    let outcome = horde::run(&run).await.unwrap();
    assert!(outcome.report_error.is_none(), "{:?}", outcome.report_error);

    let page = open_in_chromium(&format!("file://{}", html.display()));
    assert_clean_page(&page);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert!(
        same(&page["data"]["report"], &json),
        "the embedded report is the JSON report:\n{}\n{json}",
        page["data"]["report"]
    );
    for (chart, painted) in page["charts"].as_object().unwrap() {
        if chart != "chart-errors" {
            assert!(painted.as_u64().unwrap() > 0, "{chart} is blank");
        }
    }
    assert!(
        page["exit_code_text"]
            .as_str()
            .unwrap()
            .contains("exit code 0"),
        "{}",
        page["exit_code_text"]
    );
    let table = page["table"].as_array().unwrap();
    let total = table.last().unwrap();
    assert_eq!(total[1], "Aggregated");
    assert_eq!(count(total), json["total"]["count"].as_u64().unwrap());
    assert_eq!(table.len(), json["stats"].as_array().unwrap().len() + 1);
    // Statuses per name, as the JSON report counts them.
    let statuses = total.as_array().unwrap().last().unwrap().as_str().unwrap();
    let ok = json["total"]["status_codes"]["200"].as_u64().unwrap();
    assert!(ok > 0, "{}", json["total"]);
    assert!(statuses.starts_with("200: "), "{statuses}");

    // Dragging across the middle of a chart: the table covers that range.
    let label = page["range_label"].as_str().unwrap();
    assert!(label.starts_with("Time range"), "{label}");
    let ranged = page["range_table"].as_array().unwrap();
    let ranged_total = count(ranged.last().unwrap());
    assert!(
        ranged_total > 0 && ranged_total < count(total),
        "{ranged_total} of {}",
        count(total)
    );
    // Sorted by requests, most first; the total row stays last.
    let sorted = page["sorted_table"].as_array().unwrap();
    let counts: Vec<u64> = sorted[..sorted.len() - 1].iter().map(count).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    assert_eq!(sorted.last().unwrap()[1], "Aggregated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_shown_as_text() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let json_path = dir.path().join("report.json");
    let mut run = config(guests::TEST_HOSTILE, &target.url(), dir.path());
    run.vars.insert("mode".into(), "markup".into());
    // Every third VU is hostile.
    run.users = 3;
    run.spawn_rate = 100.0;
    run.iterations = Some(12);
    run.json = Some(json_path.clone());
    run.outputs.html = Some(html.clone());
    let outcome = horde::run(&run).await.unwrap();
    assert!(outcome.report_error.is_none(), "{:?}", outcome.report_error);
    let fake = outcome
        .report
        .stats
        .iter()
        .find(|s| s.name.starts_with("/fake"))
        .expect("the hostile name is recorded")
        .name
        .clone();
    assert!(fake.contains("</script>"), "{fake}");

    let page = open_in_chromium(&format!("file://{}", html.display()));
    assert_clean_page(&page);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert!(same(&page["data"]["report"], &json));
    let shown = page["table"]
        .as_array()
        .unwrap()
        .iter()
        .any(|row| row[1] == fake.as_str());
    assert!(shown, "the name is shown as it is: {}", page["table"]);
    assert!(page["charts"]["chart-errors"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_model_charts_corrected_percentiles() {
    let target = DemoTarget::start(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let mut run = config(guests::TEST_LOAD, &target.url(), dir.path());
    run.rate = Some(20.0);
    run.max_vus = 4;
    run.pre_vus = Some(4);
    run.run_time = Some(Duration::from_secs(3));
    run.outputs.html = Some(html.clone());
    let outcome = horde::run(&run).await.unwrap();
    assert!(outcome.report_error.is_none(), "{:?}", outcome.report_error);

    let page = open_in_chromium(&format!("file://{}", html.display()));
    assert_clean_page(&page);
    let series = &page["data"]["series"];
    assert!(series["corrected"]["p95"].is_array(), "{series}");
    assert!(series["slot_corrected"].is_array(), "{series}");
    assert!(page["charts"]["chart-latency"].as_u64().unwrap() > 0);
    assert!(page["charts"]["chart-name-latency"].as_u64().unwrap() > 0);
}
