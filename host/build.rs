//! Builds the guest components: the example scenario `horde demo` embeds,
//! and the others, which the binary's integration tests run.

fn main() {
    for input in guest_build::guest_inputs() {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    if let Err(message) = guest_build::build_guests(&[]) {
        panic!("{message}");
    }
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::copy(
        guest_build::guest_wasm_path("rust-http"),
        out.join("demo_scenario.wasm"),
    )
    .expect("copying the demo scenario");
}
