//! The one place the guest bindings are generated, from the repository's `wit/`.

wit_bindgen::generate!({
    path: "../../wit",
    world: "horde:scenario/scenario",
    pub_export_macro: true,
    default_bindings_module: "horde_sdk::bindings",
});
