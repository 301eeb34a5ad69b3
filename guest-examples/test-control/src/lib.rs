//! Test guest: each task sleeps 5 ms, reports a custom "fake" event with
//! `metrics.record`, and checks that invalid events are refused. `--var
//! stop=user` stops every VU after 3 tasks; `--var stop=test` makes VU 1 end
//! the run at its 2nd task.

use horde_sdk::prelude::*;

#[derive(Default)]
struct Control;

impl Scenario for Control {
    fn config() -> Config<Self> {
        Config::new().task(1, "step", Control::step)
    }

    fn on_start(&mut self) -> TaskResult {
        control::log(&format!("VU {} starting", control::vu_id()));
        Ok(())
    }
}

impl Control {
    fn step(&mut self) -> TaskResult {
        control::sleep_ms(5);
        metrics::record("fake", "step", 5.0, 10, None)?;
        let refused = metrics::record("fake", "step", f64::NAN, 0, None).is_err()
            && metrics::record("fake", "step", -1.0, 0, None).is_err()
            && metrics::record("fake", "", 1.0, 0, None).is_err();
        check("invalid events are refused", refused);
        check("iteration counts up from 1", control::iteration() >= 1);
        match control::var("stop").as_deref() {
            Some("user") if control::iteration() >= 3 => control::stop_user(),
            Some("test") if control::vu_id() == 1 && control::iteration() == 2 => {
                control::stop_test("enough")
            }
            _ => {}
        }
        Ok(())
    }
}

horde_sdk::export_scenario!(Control);
