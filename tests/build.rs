//! Builds every guest in guest-examples/ (Rust, Python, JavaScript) into
//! constants for the tests, and fails the build when a guest is not used
//! by any test.

use std::fmt::Write;

fn main() {
    for input in guest_build::guest_inputs() {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    // Cargo's value now, not the one compiled in: another checkout sharing
    // the target dir may have compiled this script.
    let tests_dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let mut test_sources = String::new();
    for entry in std::fs::read_dir(tests_dir)
        .expect("reading tests/")
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "rs")
            && path
                .file_name()
                .is_some_and(|n| n != "build.rs" && n != "lib.rs")
        {
            println!("cargo:rerun-if-changed={}", path.display());
            test_sources.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
    let paths = guest_build::build_guests(&[]).unwrap_or_else(|message| panic!("{message}"));
    let mut constants = String::new();
    let mut untested = Vec::new();
    for (package, path) in guest_build::guest_packages().iter().zip(paths) {
        let constant = package.replace('-', "_").to_uppercase();
        if !test_sources.contains(&format!("guests::{constant}")) {
            untested.push(format!("{package} (guests::{constant})"));
        }
        writeln!(
            constants,
            "/// {package}, built for wasm32-wasip2.\npub const {constant}: &str = {:?};",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    let scripts = guest_build::build_script_guests().unwrap_or_else(|message| panic!("{message}"));
    for (guest, path) in scripts {
        for input in guest.inputs() {
            println!("cargo:rerun-if-changed={}", input.display());
        }
        let constant = guest.package.replace('-', "_").to_uppercase();
        if !test_sources.contains(&format!("guests::{constant}")) {
            untested.push(format!("{} (guests::{constant})", guest.package));
        }
        writeln!(
            constants,
            "/// {}, built by componentize-py or componentize-js.\npub const {constant}: &str = {:?};",
            guest.package,
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    if !untested.is_empty() {
        panic!(
            "every guest needs a test; no test uses: {}",
            untested.join(", ")
        );
    }
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("guests.rs"), constants).expect("writing guests.rs");
}
