//! `horde build` as the README shows it, from a folder outside the
//! repository: a Python file, a JavaScript file and a Rust crate become
//! components that run against the demo target; a broken one fails with
//! the language's own error on top and exit code 2. A build sees only the
//! scenario (a file beside its folder, or a hidden one in it, is refused by
//! name), uses only the SDK built into the binary, and says what to do
//! when the scenario does what cannot work.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::horde;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `horde ARGS` in `dir` with the SDK built into the binary.
fn horde_in(dir: &Path, args: &[&str]) -> Output {
    horde_env(dir, args, &[])
}

/// `horde ARGS` in `dir` with the SDK built into the binary and `env` set.
fn horde_env(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let output = horde()
        .current_dir(dir)
        .envs(env.iter().copied())
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
/// demo target: requests made, none failed. Returns what the build said.
fn build_and_run(dir: &Path, command: &str, component: &str) -> String {
    documented(command);
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let built = horde_in(dir, &args);
    assert!(built.status.success(), "{command}");
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
    stderr(&built)
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

/// `horde build FILE` in `dir` fails with exit code 2; what it said.
fn build_fails(dir: &Path, file: &str) -> String {
    let failed = horde_in(dir, &["build", file]);
    assert_eq!(failed.status.code(), Some(2), "horde build {file} fails");
    let stem = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
    assert!(!dir.join(format!("{stem}.wasm")).exists());
    stderr(&failed)
}

/// `root/secret.txt` beside the scenario folder `root/shop`, which holds a
/// hidden `.ssh/id_rsa`; returns the (canonical) root and the folder.
fn folder_with_secrets(root: &Path) -> (PathBuf, PathBuf) {
    let root = root.canonicalize().unwrap();
    let shop = root.join("shop");
    std::fs::create_dir_all(shop.join(".ssh")).unwrap();
    std::fs::write(root.join("secret.txt"), "SECRET-BESIDE").unwrap();
    std::fs::write(shop.join(".ssh/id_rsa"), "SECRET-HIDDEN").unwrap();
    (root, shop)
}

#[test]
fn a_python_build_reads_only_the_scenario_and_lists_what_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let (root, shop) = folder_with_secrets(dir.path());
    // A file beside the folder, read at module level: refused by name.
    std::fs::write(
        shop.join("beside.py"),
        "import os\nfrom horde import HttpUser, task\n\
         KEY = open(os.path.join(os.path.dirname(__file__), '..', 'secret.txt')).read()\n",
    )
    .unwrap();
    let said = build_fails(&shop, "beside.py");
    let beside = format!(
        "{}/secret.txt is outside the scenario's folder",
        root.display()
    );
    assert!(said.contains(&beside), "{said}");
    assert!(
        said.contains("beside.py\", line 3"),
        "the traceback points at it: {said}"
    );
    // Anywhere else on the machine.
    std::fs::write(
        shop.join("machine.py"),
        "from horde import HttpUser\nopen('/etc/hostname').read()\n",
    )
    .unwrap();
    let said = build_fails(&shop, "machine.py");
    assert!(
        said.contains("/etc/hostname is outside the scenario's folder"),
        "{said}"
    );
    // A hidden file of its own folder (a scenario saved in a home folder).
    std::fs::write(
        shop.join("hidden.py"),
        "import pathlib\nfrom horde import HttpUser\n\
         KEY = (pathlib.Path(__file__).parent / '.ssh' / 'id_rsa').read_text()\n",
    )
    .unwrap();
    let said = build_fails(&shop, "hidden.py");
    let hidden = format!("{}/.ssh/id_rsa is a hidden file", shop.display());
    assert!(said.contains(&hidden), "{said}");
    // A scenario that reads its own files builds, and says which went in;
    // no secret is in the component, and the folder gets no bytecode.
    std::fs::write(shop.join("helpers.py"), "PATH = '/'\n").unwrap();
    std::fs::write(shop.join("paths.txt"), "/\n").unwrap();
    std::fs::write(
        shop.join("app.py"),
        "import os\nfrom helpers import PATH\nfrom horde import HttpUser, task\n\n\
         PATHS = open(os.path.join(os.path.dirname(__file__), 'paths.txt')).read().split()\n\n\
         class Shopper(HttpUser):\n    @task\n    def index(self):\n        \
         self.client.get(PATHS[0])\n",
    )
    .unwrap();
    let said = build_and_run(&shop, "horde build app.py", "app.wasm");
    assert!(
        said.contains("from app.py, helpers.py, paths.txt"),
        "{said}"
    );
    let component = std::fs::read(shop.join("app.wasm")).unwrap();
    for secret in [&b"SECRET-BESIDE"[..], b"SECRET-HIDDEN"] {
        assert!(!component.windows(secret.len()).any(|w| w == secret));
    }
    assert!(!shop.join("__pycache__").exists(), "no bytecode written");
}

#[test]
fn a_javascript_bundle_takes_files_only_from_the_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let (root, shop) = folder_with_secrets(dir.path());
    std::fs::write(
        shop.join("beside.js"),
        "import secret from '../secret.txt';\nexport default function () { console.log(secret); }\n",
    )
    .unwrap();
    let said = build_fails(&shop, "beside.js");
    let beside = format!(
        "{}/secret.txt is outside the scenario's folder",
        root.display()
    );
    assert!(said.contains(&beside), "{said}");
    assert!(
        said.contains("beside.js:1:"),
        "esbuild points at the import: {said}"
    );
    std::fs::write(
        shop.join(".ssh/key.js"),
        "export const key = 'SECRET-HIDDEN';\n",
    )
    .unwrap();
    std::fs::write(
        shop.join("hidden.js"),
        "import { key } from './.ssh/key.js';\nexport default function () { console.log(key); }\n",
    )
    .unwrap();
    let said = build_fails(&shop, "hidden.js");
    let hidden = format!("{}/.ssh/key.js is a hidden file", shop.display());
    assert!(said.contains(&hidden), "{said}");
    // The scenario's own modules and its node_modules are bundled, and listed.
    std::fs::write(shop.join("paths.js"), "export const INDEX = '/';\n").unwrap();
    let package = shop.join("node_modules/leftpad");
    std::fs::create_dir_all(&package).unwrap();
    std::fs::write(
        package.join("package.json"),
        r#"{"name": "leftpad", "type": "module", "main": "index.js"}"#,
    )
    .unwrap();
    std::fs::write(
        package.join("index.js"),
        "export default (s, n) => String(s).padStart(n);\n",
    )
    .unwrap();
    std::fs::write(
        shop.join("script.js"),
        "import http from 'horde/http';\nimport pad from 'leftpad';\n\
         import { INDEX } from './paths.js';\n\
         export default function () { http.get(pad(INDEX, 1)); }\n",
    )
    .unwrap();
    let said = build_and_run(&shop, "horde build script.js", "script.wasm");
    assert!(
        said.contains("from paths.js, script.js, leftpad (1 file from node_modules)"),
        "{said}"
    );
}

#[test]
fn a_planted_sdk_folder_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let env = [("XDG_CACHE_HOME", cache.as_path())];
    std::fs::write(
        dir.path().join("app.py"),
        "from horde import HttpUser, task\n\nclass Shopper(HttpUser):\n    @task\n    \
         def index(self):\n        self.client.get('/')\n",
    )
    .unwrap();
    assert!(
        horde_env(dir.path(), &["build", "app.py"], &env)
            .status
            .success()
    );
    let horde_cache = cache.join("horde");
    let sdk = std::fs::read_dir(&horde_cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("sdk-"))
        .expect("the SDK was extracted");
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&horde_cache), 0o700);
    assert_eq!(mode(&sdk), 0o700);
    // A modified copy linked in the SDK's place.
    let planted = dir.path().join("planted");
    std::fs::rename(&sdk, &planted).unwrap();
    let init = planted.join("sdk/python/horde/__init__.py");
    let mut text = std::fs::read_to_string(&init).unwrap();
    text.push_str("\nraise SystemExit('PLANTED SDK')\n");
    std::fs::write(&init, text).unwrap();
    std::os::unix::fs::symlink(&planted, &sdk).unwrap();
    let built = horde_env(dir.path(), &["build", "app.py"], &env);
    let said = stderr(&built);
    assert!(built.status.success(), "{said}");
    assert!(!said.contains("PLANTED"), "{said}");
    assert!(
        said.contains("differed from the SDK built into this binary"),
        "{said}"
    );
    let meta = std::fs::symlink_metadata(&sdk).unwrap();
    assert!(meta.is_dir() && !meta.file_type().is_symlink());
    assert!(
        std::fs::read_to_string(&init).unwrap().contains("PLANTED"),
        "left alone"
    );
}

#[test]
fn python_mistakes_get_messages_that_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path();
    // A compiled extension module: a known package, and any package that
    // ships `.so` files.
    std::fs::write(
        here.join("xml_user.py"),
        "from lxml import etree\nfrom horde import HttpUser\n",
    )
    .unwrap();
    let said = build_fails(here, "xml_user.py");
    assert!(said.contains("compiled extension"), "{said}");
    assert!(said.contains("xml.etree.ElementTree"), "{said}");
    std::fs::create_dir_all(here.join("fastthing")).unwrap();
    std::fs::write(here.join("fastthing/__init__.py"), "").unwrap();
    std::fs::write(
        here.join("fastthing/_speedups.cpython-312-x86_64-linux-gnu.so"),
        "\x7fELF",
    )
    .unwrap();
    std::fs::write(
        here.join("fast_user.py"),
        "from fastthing import _speedups\nfrom horde import HttpUser\n",
    )
    .unwrap();
    let said = build_fails(here, "fast_user.py");
    assert!(
        said.contains("fastthing._speedups is a compiled extension module"),
        "{said}"
    );
    // A network call at module level.
    std::fs::write(
        here.join("eager.py"),
        "import requests\nfrom horde import HttpUser\n\
         TOKEN = requests.get('http://127.0.0.1:9/token').text\n",
    )
    .unwrap();
    let said = build_fails(here, "eager.py");
    assert!(said.contains("network calls are not available"), "{said}");
    assert!(said.contains("on_start or a task"), "{said}");
    assert!(
        !said.contains("panicked") && !said.contains("trapping stub"),
        "{said}"
    );
    // A user class named `User`, as some Locust files name it, works.
    std::fs::write(
        here.join("app.py"),
        "from horde import HttpUser, task\n\nclass User(HttpUser):\n    @task\n    \
         def index(self):\n        self.client.get('/')\n",
    )
    .unwrap();
    build_and_run(here, "horde build app.py", "app.wasm");
}

#[test]
fn a_javascript_wait_of_the_wrong_shape_says_which_shapes_work() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("script.js"),
        "import http from 'horde/http';\nexport const options = { wait: { min: 1, max: 3 } };\n\
         export default function () { http.get('/'); }\n",
    )
    .unwrap();
    let said = build_fails(dir.path(), "script.js");
    assert!(
        said.contains("options.wait is {\"min\":1,\"max\":3}, which is not a wait time"),
        "{said}"
    );
    assert!(said.contains("wait: between(1, 3)"), "{said}");
    assert!(
        said.contains("thrown while the script's module level ran"),
        "{said}"
    );
    for noise in ["wasm trap", "never handled", "bundle.js:"] {
        assert!(!said.contains(noise), "no {noise}: {said}");
    }
}
