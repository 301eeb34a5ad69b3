//! Horde's Rust SDK: write a virtual user as a plain struct with weighted tasks.
//!
//! ```ignore
//! use horde_sdk::prelude::*;
//!
//! #[derive(Default)]
//! struct Shop;
//!
//! impl Scenario for Shop {
//!     fn config() -> Config<Self> {
//!         Config::new().task(3, "index", Shop::index).wait(between(1.0, 3.0))
//!     }
//! }
//!
//! impl Shop {
//!     fn index(&mut self) -> TaskResult {
//!         http::get("/").send()?;
//!         Ok(())
//!     }
//! }
//!
//! horde_sdk::export_scenario!(Shop);
//! ```

#[doc(hidden)]
pub mod bindings;
pub mod control;
pub mod data;
pub mod group;
pub mod grpc;
pub mod http;
pub mod metrics;
mod scenario;
pub mod tags;
pub mod xmlrpc;

pub use scenario::{
    Config, Scenario, TaskError, TaskResult, WaitTime, between, constant, constant_pacing,
    constant_throughput, no_wait,
};
#[doc(hidden)]
pub use scenario::runtime;
/// JSON support, re-exported for scenarios.
pub use serde_json;

/// Everything a scenario usually needs.
pub mod prelude {
    pub use crate::control::{self, random_range};
    pub use crate::data;
    pub use crate::group::group;
    pub use crate::tags;
    pub use crate::grpc;
    pub use crate::http;
    pub use crate::metrics::{self, check};
    pub use crate::xmlrpc::{self, Value};
    pub use crate::{
        Config, Scenario, TaskError, TaskResult, between, constant, constant_pacing,
        constant_throughput, no_wait,
    };
    pub use serde_json::json;
}

/// Export a [`Scenario`] type as this component's `user` interface; or
/// several, as user classes mixed in one run (Locust's several `User`
/// classes): `export_scenario!(Shopper, Admin)`, each type's
/// [`Config::weight`] or [`Config::fixed_count`] giving its share of the
/// users, and `--user-class NAME` picking some.
#[macro_export]
macro_rules! export_scenario {
    ($scenario:ty $(,)?) => {
        struct __HordeExport;

        impl $crate::bindings::exports::horde::scenario::user::Guest for __HordeExport {
            fn configure() -> $crate::bindings::exports::horde::scenario::user::Config {
                $crate::runtime::configure::<$scenario>()
            }
            fn on_start() -> Result<(), String> {
                $crate::runtime::on_start::<$scenario>()
            }
            fn run_task(index: u32) -> Result<(), String> {
                $crate::runtime::run_task::<$scenario>(index)
            }
            fn on_stop() -> Result<(), String> {
                $crate::runtime::on_stop::<$scenario>()
            }
        }

        $crate::bindings::export!(__HordeExport with_types_in $crate::bindings);
    };
    ($($scenario:ty),+ $(,)?) => {
        struct __HordeExport;

        const __HORDE_CLASSES: &[$crate::runtime::Class] =
            &[$($crate::runtime::class::<$scenario>()),+];

        impl $crate::bindings::exports::horde::scenario::user::Guest for __HordeExport {
            fn configure() -> $crate::bindings::exports::horde::scenario::user::Config {
                $crate::runtime::configure_classes(__HORDE_CLASSES)
            }
            fn on_start() -> Result<(), String> {
                $crate::runtime::on_start_classes(__HORDE_CLASSES)
            }
            fn run_task(index: u32) -> Result<(), String> {
                $crate::runtime::run_task_classes(__HORDE_CLASSES, index)
            }
            fn on_stop() -> Result<(), String> {
                $crate::runtime::on_stop_classes(__HORDE_CLASSES)
            }
        }

        $crate::bindings::export!(__HordeExport with_types_in $crate::bindings);
    };
}
