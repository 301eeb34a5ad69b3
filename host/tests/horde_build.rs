//! `horde build` as the README shows it, from a folder outside the
//! repository: a Python file, a JavaScript file and a Rust crate become
//! components that run against the demo target; a broken one fails with
//! the language's own error on top and exit code 2.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::horde;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `horde ARGS` in `dir` with the SDK built into the binary.
fn horde_in(dir: &Path, args: &[&str]) -> Output {
    let output = horde()
        .current_dir(dir)
        .env_remove("HORDE_SDK_DIR")
        // The test's crate keeps its build products where reruns find them.
        .env(
            "CARGO_TARGET_DIR",
            repo().join("target").join("horde-build-test"),
        )
        .args(args)
        .output()
        .unwrap();
    eprintln!(
        "horde {}: {}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The README shows this exact command.
fn documented(command: &str) {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.lines().any(|line| line.trim().starts_with(command)),
        "the README shows `{command}`"
    );
}

/// Build with the README's command, then run the component for 2 s on the
/// demo target: requests made, none failed.
fn build_and_run(dir: &Path, command: &str, component: &str) {
    documented(command);
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    assert!(horde_in(dir, &args).status.success(), "{command}");
    assert!(dir.join(component).is_file(), "{command} wrote {component}");
    let run = horde_in(
        dir,
        &[
            "demo", component, "-u", "2", "-t", "2s", "-q", "--json", "out.json",
        ],
    );
    assert_eq!(run.status.code(), Some(0), "{component} ran clean");
    let report = common::json(&dir.join("out.json"));
    let total = &report["total"];
    assert!(total["count"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(total["failures"].as_u64(), Some(0), "{report}");
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn python_builds_outside_the_repository_and_shows_the_traceback() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("guest-examples/python-http/app.py"),
        dir.path().join("app.py"),
    )
    .unwrap();
    build_and_run(
        dir.path(),
        "horde build app.py -o shopper.wasm",
        "shopper.wasm",
    );
    // An edit that keeps the file's size and modification time (a copy with
    // `cp -p`) is still built: no stale bytecode.
    let app = dir.path().join("app.py");
    let when = std::fs::metadata(&app).unwrap().modified().unwrap();
    let text = std::fs::read_to_string(&app).unwrap();
    assert!(text.contains("/item/[id]"));
    std::fs::write(&app, text.replace("/item/[id]", "/ITEM/[ID]")).unwrap();
    std::fs::File::options()
        .append(true)
        .open(&app)
        .unwrap()
        .set_modified(when)
        .unwrap();
    build_and_run(
        dir.path(),
        "horde build app.py -o shopper.wasm",
        "shopper.wasm",
    );
    let names = common::json(&dir.path().join("out.json")).to_string();
    assert!(
        names.contains("/ITEM/[ID]") && !names.contains("/item/[id]"),
        "{names}"
    );
    std::fs::write(
        dir.path().join("broken.py"),
        "from horde import HttpUser\nimport no_such_module\n",
    )
    .unwrap();
    let failed = horde_in(dir.path(), &["build", "broken.py"]);
    assert_eq!(failed.status.code(), Some(2));
    let said = stderr(&failed);
    assert!(said.starts_with("error: Traceback"), "{said}");
    let frame = format!("{}/broken.py\", line 2", dir.path().display());
    assert!(said.contains(&frame), "the frame names the file: {said}");
    assert!(said.contains("ModuleNotFoundError: No module named 'no_such_module'"));
    assert!(
        !said.contains("Stack backtrace") && !said.contains("bundle.py"),
        "{said}"
    );
    assert!(!dir.path().join("broken.wasm").exists());
}

#[test]
fn javascript_builds_outside_the_repository_and_points_at_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("guest-examples/js-http/scenario.js"),
        dir.path().join("script.js"),
    )
    .unwrap();
    build_and_run(dir.path(), "horde build script.js", "script.wasm");
    std::fs::write(
        dir.path().join("broken.js"),
        "import http from 'horde/http';\nexport default function () { http.get('/' ; }\n",
    )
    .unwrap();
    let failed = horde_in(dir.path(), &["build", "broken.js"]);
    assert_eq!(failed.status.code(), Some(2));
    let said = stderr(&failed);
    assert!(said.contains("broken.js:2:"), "{said}");
    assert!(said.contains("Expected \")\""), "{said}");
    assert!(
        !said.contains("failureErrorWithLog"),
        "no Node.js stack: {said}"
    );
}

#[test]
fn rust_crate_builds_outside_the_repository_with_the_embedded_sdk() {
    let dir = tempfile::tempdir().unwrap();
    let shop = dir.path().join("shopper");
    std::fs::create_dir_all(shop.join("src")).unwrap();
    std::fs::write(
        shop.join("Cargo.toml"),
        "[package]\nname = \"shopper\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nhorde-sdk = \"0.1\"\n",
    )
    .unwrap();
    let lib = "use horde_sdk::prelude::*;\n\n#[derive(Default)]\nstruct Shopper;\n\n\
        impl Scenario for Shopper {\n    fn config() -> Config<Self> {\n        \
        Config::new().task(1, \"index\", Shopper::index)\n    }\n}\n\n\
        impl Shopper {\n    fn index(&mut self) -> TaskResult {\n        \
        http::get(\"/\").send()?.ensure_status(200)?;\n        Ok(())\n    }\n}\n\n\
        horde_sdk::export_scenario!(Shopper);\n";
    std::fs::write(shop.join("src/lib.rs"), lib).unwrap();
    build_and_run(&shop, "horde build .", "shopper.wasm");
    std::fs::write(shop.join("src/lib.rs"), lib.replace("Ok(())", "Ok(1)")).unwrap();
    let failed = horde_in(&shop, &["build", "."]);
    assert_eq!(failed.status.code(), Some(2));
    let said = stderr(&failed);
    assert!(said.contains("error[E0308]"), "rustc's error: {said}");
    assert!(said.contains("cargo's errors are above"), "{said}");
}
