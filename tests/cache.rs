//! The compiled-component cache: `--cache-max` keeps it under its cap
//! across runs of different scenarios, the last compiled one kept.

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
            "{guest}: the newest stays, older ones go"
        );
    }
    // Without a cap both fit.
    let mut run = config(guests::RUST_HTTP, &target.url(), cache.path());
    run.iterations = Some(1);
    run.cache_max = Some(1 << 30);
    horde::run(&run).await.unwrap();
    assert_eq!(horde::cache::entries(cache.path()).unwrap().len(), 2);
}
