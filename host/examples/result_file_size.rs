//! How large a result file (`--out`) grows: 50 request names, 600 seconds
//! (a 10-minute run), 1,000 requests a second in all with log-normal
//! latencies (median 2 ms, a long tail), 1% failures; each second written
//! as `horde run --out` writes it. Prints the size; used for the numbers in
//! the README and the closing notes.
//!
//!     cargo run --release --example result_file_size

use std::time::Duration;

use horde::output::result_file::{Record, Second};
use horde::stats::{RequestEvent, Stats};

fn main() {
    let stats = Stats::new(1000, 256);
    let names: Vec<String> = (0..50).map(|i| format!("/api/endpoint/{i}")).collect();
    let mut rng = fastrand::Rng::with_seed(1);
    let mut bytes = 0usize;
    let seconds = 600;
    for _ in 0..seconds {
        for _ in 0..1000 {
            // Box-Muller: a normal draw, then e^(0.8 z) around 2 ms.
            let z = (-2.0 * (1.0 - rng.f64()).ln()).sqrt()
                * (2.0 * std::f64::consts::PI * rng.f64()).cos();
            let micros = (2000.0 * (0.8 * z).exp()) as u64;
            let failed = rng.u8(..100) == 0;
            stats.record(&RequestEvent {
                request_type: "GET",
                name: &names[rng.usize(..names.len())],
                duration: Duration::from_micros(micros.max(1)),
                response_length: 512,
                error: failed.then_some("HTTP 500"),
                messages_sent: 0,
                messages_received: 0,
                lag: None,
                status: Some(if failed { 500 } else { 200 }),
                tags: &[],
            });
        }
        let line = serde_json::to_vec(&Record::Second(Second::of(&stats.tick(64)))).unwrap();
        bytes += line.len() + 1;
    }
    println!(
        "{seconds} s x {} names: {:.1} MB ({:.0} bytes a name-second)",
        names.len(),
        bytes as f64 / 1e6,
        bytes as f64 / (seconds * names.len()) as f64
    );
}
