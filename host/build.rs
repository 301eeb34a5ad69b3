//! Builds the guest components: the example scenario `horde demo` embeds,
//! and the others, which the binary's integration tests run; and lists the
//! WIT and SDK files `horde build` embeds (`$OUT_DIR/sdk_files.rs`).

use std::path::{Path, PathBuf};

fn main() {
    for input in guest_build::guest_inputs() {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    if let Err(message) = guest_build::build_guests(&[]) {
        panic!("{message}");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::copy(
        guest_build::guest_wasm_path("rust-http"),
        out.join("demo_scenario.wasm"),
    )
    .expect("copying the demo scenario");
    embed_sdk(&out);
    println!(
        "cargo:rustc-env=HORDE_COMPONENTIZE_PY={}",
        guest_build::COMPONENTIZE_PY
    );
}

/// The folders `horde build` needs, as the repository lays them out.
const SDK_FOLDERS: &[&str] = &["wit", "sdk/rust", "sdk/python", "sdk/js"];

/// Write `SDK_FILES: &[(&str, &[u8])]`: each file's path under the
/// repository and its bytes, skipping build products and installed tools.
fn embed_sdk(out: &Path) {
    let root = guest_build::repo_root();
    let mut files = Vec::new();
    for folder in SDK_FOLDERS {
        println!("cargo:rerun-if-changed={}", root.join(folder).display());
        collect(&root, &root.join(folder), &mut files);
    }
    files.sort();
    let mut source =
        String::from("/// The WIT and SDK files `horde build` extracts (path, bytes).\n");
    source.push_str("pub static SDK_FILES: &[(&str, &[u8])] = &[\n");
    for (relative, absolute) in &files {
        source.push_str(&format!(
            "    ({relative:?}, include_bytes!({:?})),\n",
            absolute.display().to_string()
        ));
    }
    source.push_str("];\n");
    std::fs::write(out.join("sdk_files.rs"), source).expect("writing sdk_files.rs");
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if matches!(name.as_str(), "node_modules" | "__pycache__" | "target")
            || name.starts_with('.')
        {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, files);
        } else if !name.ends_with(".pyc") {
            let relative = path.strip_prefix(root).expect("under the repository");
            files.push((relative.to_string_lossy().into_owned(), path));
        }
    }
}
