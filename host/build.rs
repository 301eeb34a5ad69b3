//! Builds the example scenario that `horde demo` embeds.

fn main() {
    for input in guest_build::guest_inputs() {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    match guest_build::build_guests(&["rust-http"]) {
        Ok(paths) => {
            let out =
                std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
            std::fs::copy(&paths[0], out.join("demo_scenario.wasm"))
                .expect("copying the demo scenario");
        }
        Err(message) => panic!("{message}"),
    }
}
