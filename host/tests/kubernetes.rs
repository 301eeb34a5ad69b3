//! deploy/kubernetes/horde.yaml, filled in as its README says: valid
//! against the Kubernetes API's schemas (the `kubernetes-validate` package,
//! strict), and its containers' arguments are ones this `horde` accepts:
//! the Indexed Job's completion indexes 0..N give segments 1/N..N/N that
//! cover the run once, reporting to the aggregator the Service names.

use std::path::PathBuf;
use std::process::Command;

fn manifest() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/horde.yaml");
    let digest = "0123456789abcdef".repeat(4);
    std::fs::read_to_string(path)
        .unwrap()
        .replace(
            "${HORDE_IMAGE}",
            &format!("registry.example.com/horde@sha256:{digest}"),
        )
        .replace(
            "${SCENARIO_IMAGE}",
            &format!("registry.example.com/shop@sha256:{digest}"),
        )
        .replace("${TARGET}", "http://shop.default:8080")
        .replace("${START_AT}", "2026-12-01T10:00:00Z")
}

/// The manifest's documents as JSON (PyYAML, which kubernetes-validate uses).
fn documents(path: &std::path::Path) -> Vec<serde_json::Value> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(path)
        .output()
        .expect("python3 with PyYAML (installed with kubernetes-validate by cargo xtask test)");
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

fn args_of(job: &serde_json::Value) -> Vec<String> {
    job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().expect("every argument is a string").to_string())
        .collect()
}

#[test]
fn the_manifests_validate_and_their_arguments_are_horde_s() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("horde.yaml");
    std::fs::write(&path, manifest()).unwrap();
    let output = Command::new("python3")
        .args(["-m", "kubernetes_validate", "--strict", "--quiet"])
        .arg(&path)
        .output()
        .expect("kubernetes-validate is installed by cargo xtask test");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let docs = documents(&path);
    let named = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind}/{name}"))
            .clone()
    };
    let service = named("Service", "horde-aggregator");
    let aggregator = named("Job", "horde-aggregator");
    let segments = named("Job", "horde-segments");
    let n = segments["spec"]["completions"].as_u64().unwrap();
    assert_eq!(segments["spec"]["completionMode"], "Indexed");
    assert_eq!(segments["spec"]["parallelism"].as_u64(), Some(n));

    // The aggregator expects as many segments as the Job runs.
    let mut agg = vec!["horde".to_string()];
    agg.extend(args_of(&aggregator));
    let expect = agg.iter().position(|a| a == "--expect").unwrap();
    assert_eq!(agg[expect + 1], n.to_string());
    let listen = agg.iter().position(|a| a == "--listen").unwrap();
    let port = agg[listen + 1].rsplit(':').next().unwrap().to_string();
    assert_eq!(service["spec"]["ports"][0]["port"].to_string(), port);

    // Each completion index's arguments parse as `horde run` does, into
    // segments that cover the run once.
    // The scenario image holds /scenario/scenario.wasm; here, a file of ours.
    let scenario = dir.path().join("scenario.wasm");
    std::fs::write(&scenario, b"\0asm").unwrap();
    // The Secrets: the segment token in HORDE_TOKEN, the CA in /tls/ca.crt.
    let ca = dir.path().join("ca.crt");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["horde-aggregator".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(&ca, cert.pem()).unwrap();
    // SAFETY: this file's one test sets it before any thread reads it.
    unsafe { std::env::set_var("HORDE_TOKEN", "a-token-from-the-horde-token-secret") };
    let mut covered = Vec::new();
    for index in 0..n {
        let mut argv = vec!["horde".to_string()];
        argv.extend(args_of(&segments).into_iter().map(|a| {
            a.replace("$(SEGMENT_INDEX)", &index.to_string())
                .replace("/scenario/scenario.wasm", &scenario.display().to_string())
                .replace("/tls/ca.crt", &ca.display().to_string())
        }));
        let raw = horde::cli::parse_run_args(&argv).unwrap();
        let config = horde::cli::RunConfig::from_args(&raw).unwrap();
        assert_eq!(
            config.segment.to_string(),
            horde::schedule::segment::Segment::parse(&format!("{}/{n}", index + 1))
                .unwrap()
                .to_string()
        );
        let url = &config.outputs.report_to.as_ref().unwrap().url;
        assert_eq!(
            url.host_str(),
            service["metadata"]["name"].as_str(),
            "segments report to the Service"
        );
        assert_eq!(url.port().map(|p| p.to_string()), Some(port.clone()));
        assert_eq!(url.scheme(), "https", "segments report over TLS");
        assert!(config.start_at.is_some());
        covered.push(config.segment);
    }
    for (i, a) in covered.iter().enumerate() {
        for b in &covered[i + 1..] {
            assert!(!a.overlaps(b), "{a} and {b}");
        }
    }
    let width: f64 = covered.iter().map(|s| s.width()).sum();
    assert!((width - 1.0).abs() < 1e-9, "the segments cover the run");
    // The aggregator serves TLS with the certificate its Secret holds.
    for flag in ["--tls-cert", "--tls-key"] {
        assert!(agg.iter().any(|a| a == flag), "{agg:?}");
    }
    // Both read the segment token from the Secret, never from the manifest.
    for job in [&aggregator, &segments] {
        let env = job["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap();
        let token = env.iter().find(|e| e["name"] == "HORDE_TOKEN").unwrap();
        assert_eq!(token["valueFrom"]["secretKeyRef"]["name"], "horde-token");
    }
    // The segment's index comes from the completion index annotation.
    let env = &segments["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(
        env[0]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );
}
