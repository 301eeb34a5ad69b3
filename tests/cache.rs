//! The compile cache: `--cache-max` keeps it under its cap across runs of
//! different scenarios, the last compiled component kept; compiled functions
//! are shared between components.

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
