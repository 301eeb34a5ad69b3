//! The one `bindgen!` site: host-side types and traits for wit/scenario.wit.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "horde:scenario/scenario",
    imports: { default: async | trappable },
    exports: { default: async },
    additional_derives: [PartialEq],
    with: {
        "horde:scenario/grpc.server-stream": crate::caps::grpc::ServerStream,
        "horde:scenario/grpc.client-stream": crate::caps::grpc::ClientStream,
        "horde:scenario/grpc.bidi-stream": crate::caps::grpc::BidiStream,
    },
});

pub use self::exports::horde::scenario::user;
pub use self::horde::scenario::{control, data, group, grpc, http, metrics, tags, xmlrpc};
