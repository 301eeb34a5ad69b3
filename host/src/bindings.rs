//! The one `bindgen!` site: host-side types and traits for wit/scenario.wit.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "horde:scenario/scenario",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use exports::horde::scenario::user;
pub use horde::scenario::{control, http, metrics};
