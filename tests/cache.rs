//! The compile cache: `--cache-max` keeps it under its cap across runs of
//! different scenarios, the last compiled component kept; compiled functions
//! are shared between components; a compiled component is run only for the
//! component it was compiled from.

use horde::demo::DemoTarget;
use horde_tests::{config, guests};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_max_keeps_only_what_fits() {
    let target = DemoTarget::start(false).await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    for (guest, expected) in [(guests::RUST_HTTP, 1), (guests::TEST_LOAD, 1)] {
        let mut run = config(guest, &target.url(), cache.path());
        run.iterations = Some(1);
        run.cache_max = Some(1);
        horde::run(&run).await.unwrap();
        let entries = horde::cache::entries(cache.path()).unwrap();
        assert_eq!(
            entries.len(),
            expected,
            "{guest}: the newest component stays, older ones and every function go"
        );
        assert_eq!(horde::cache::totals(&entries).0, 1);
    }
    // Without a cap both fit.
    let mut run = config(guests::RUST_HTTP, &target.url(), cache.path());
    run.iterations = Some(1);
    run.cache_max = Some(1 << 30);
    horde::run(&run).await.unwrap();
    let (components, _, functions, _) =
        horde::cache::totals(&horde::cache::entries(cache.path()).unwrap());
    assert_eq!(components, 2);
    assert!(functions > 0, "the compile kept its functions");
}

/// The compiled components in the cache at `dir`.
fn compiled(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    horde::cache::entries(dir)
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compiled_component_planted_for_another_is_not_run() {
    let target = DemoTarget::start(false).await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let run_once = |guest: &str| {
        let mut run = config(guest, &target.url(), cache.path());
        run.iterations = Some(1);
        run
    };
    horde::run(&run_once(guests::TEST_LOAD)).await.unwrap();
    let probe = compiled(cache.path());
    assert_eq!(probe.len(), 1);
    horde::run(&run_once(guests::RUST_HTTP)).await.unwrap();
    let other: Vec<_> = compiled(cache.path())
        .into_iter()
        .filter(|p| *p != probe[0])
        .collect();
    assert_eq!(other.len(), 1);
    // Another component's compiled file, intact, under test-load's name.
    std::fs::copy(&other[0], &probe[0]).unwrap();
    let outcome = horde::run(&run_once(guests::TEST_LOAD)).await.unwrap();
    assert_eq!(
        outcome.compile_source,
        horde::engine::CompileSource::Compiled
    );
    let names: Vec<&str> = outcome
        .report
        .stats
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["load"], "test-load's own code ran");
    // Its entry is its own again.
    let outcome = horde::run(&run_once(guests::TEST_LOAD)).await.unwrap();
    assert_eq!(outcome.compile_source, horde::engine::CompileSource::Cached);
}
