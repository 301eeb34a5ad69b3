//! The one `bindgen!` site: host-side types and traits for wit/scenario.wit.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "horde:scenario/scenario",
    imports: { default: async | trappable },
    exports: { default: async },
    additional_derives: [PartialEq],
});

pub use self::exports::horde::scenario::user;
pub use self::horde::scenario::{control, http, metrics, xmlrpc};
