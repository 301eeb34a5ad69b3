//! Cost of recording one request event on the hot path (no global lock):
//! an existing (type, name), a failure, and one thread of several.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use horde::stats::{RequestEvent, Stats};

fn event(error: Option<&str>) -> RequestEvent<'_> {
    RequestEvent {
        request_type: "GET",
        name: "/item/[id]",
        duration: Duration::from_micros(1234),
        response_length: 512,
        error,
        messages_sent: 0,
        messages_received: 0,
        lag: None,
        status: Some(if error.is_some() { 500 } else { 200 }),
        tags: &[],
    }
}

fn record(c: &mut Criterion) {
    let stats = Stats::new(1000, 256);
    stats.record(&event(None));
    c.bench_function("record success", |b| {
        b.iter(|| stats.record(black_box(&event(None))))
    });
    c.bench_function("record failure", |b| {
        b.iter(|| stats.record(black_box(&event(Some("HTTP 500 Internal Server Error")))))
    });
    // Another thread records at the same time: each has its own shard.
    let busy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let other = {
        let (stats, busy) = (stats.clone(), busy.clone());
        std::thread::spawn(move || {
            while busy.load(std::sync::atomic::Ordering::Relaxed) {
                stats.record(&event(None));
            }
        })
    };
    c.bench_function("record success, another thread recording", |b| {
        b.iter(|| stats.record(black_box(&event(None))))
    });
    busy.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = other.join();
    // Drain now and then, as the monitor does once a second.
    let _ = stats.drain();
}

criterion_group!(benches, record);
criterion_main!(benches);
