//! Test guest: VUs whose id is a multiple of 3 misbehave as `--var mode=`
//! says (spin, alloc, trap); the others GET "/" like a well-behaved user.

use horde_sdk::prelude::*;

#[derive(Default)]
struct Hostile {
    hoard: Vec<Vec<u8>>,
}

impl Scenario for Hostile {
    fn config() -> Config<Self> {
        Config::new().task(1, "work", Hostile::work).wait(constant(0.01))
    }
}

impl Hostile {
    fn work(&mut self) -> TaskResult {
        if control::vu_id() % 3 != 0 {
            http::get("/").send()?;
            return Ok(());
        }
        match control::var("mode").as_deref() {
            Some("spin") => {
                let mut x: u64 = control::iteration();
                loop {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            Some("alloc") => loop {
                let mut block = vec![0u8; 1 << 20];
                block[0] = 1;
                self.hoard.push(block);
            },
            Some("trap") => {
                let items: Vec<u32> = std::hint::black_box(Vec::new());
                // Out of bounds on purpose: a guest panic is a trap.
                let _ = std::hint::black_box(items[5]);
                Ok(())
            }
            other => Err(TaskError(format!("unknown mode {other:?}"))),
        }
    }
}

horde_sdk::export_scenario!(Hostile);
