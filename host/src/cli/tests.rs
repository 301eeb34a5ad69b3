//! Tests of the command line: flags validated into a run configuration, and
//! the scenario's options merged under the operator's.

use super::*;

fn args(extra: &[&str]) -> Result<RunConfig> {
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_str().unwrap().to_string();
    let mut argv = vec!["horde", "run", path.as_str()];
    argv.extend_from_slice(extra);
    let Command::Run(raw) = Cli::try_parse_from(argv).unwrap().command else {
        unreachable!()
    };
    RunConfig::from_args(&raw)
}

fn scenario(options: &[(&str, &str)]) -> Vec<(String, String)> {
    options
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_scenario_may_lower_a_limit_but_never_raise_one() {
    let mut config = args(&["--max-task-cpu", "2s"]).unwrap();
    let notes = config
        .apply_scenario_defaults(&scenario(&[
            ("max-vu-memory", "1GiB"),
            ("stop-timeout", "1h"),
            ("timeout", "1s"),
            ("max-task-cpu", "1h"),
            ("users", "3"),
        ]))
        .unwrap();
    assert_eq!(config.limits.max_vu_memory, 128 << 20);
    assert_eq!(config.stop_timeout, Duration::from_secs(5));
    assert_eq!(config.limits.request_timeout, Duration::from_secs(1));
    assert_eq!(
        config.limits.max_task_cpu,
        Duration::from_secs(2),
        "the flag wins"
    );
    assert_eq!(config.users, 3);
    assert!(notes[0].contains("--max-vu-memory 1GiB"), "{notes:?}");
    assert!(notes[1].starts_with("ignored"), "{notes:?}");
    assert!(
        notes
            .iter()
            .any(|n| n == "timeout=1s (set by the scenario)")
    );
    for key in OPERATOR_LIMITS {
        assert!(config.limit_value(key).is_some(), "{key}");
    }
}

#[test]
fn the_operators_load_model_replaces_the_scenarios() {
    let mut config = args(&["-u", "2"]).unwrap();
    let notes = config
        .apply_scenario_defaults(&scenario(&[
            ("stages", "1s:4294967295"),
            ("rate", "1e12/s"),
        ]))
        .unwrap();
    assert_eq!(
        config.load_model(),
        LoadModel::Closed {
            users: 2,
            spawn_rate: 1.0
        }
    );
    assert!(notes.iter().all(|n| n.contains("--users")), "{notes:?}");
}

#[test]
fn a_scenario_cannot_start_an_unbounded_number_of_vus() {
    let mut config = args(&[]).unwrap();
    let err = config
        .apply_scenario_defaults(&scenario(&[("stages", "1s:20000")]))
        .unwrap_err();
    assert!(format!("{err}").contains("--stages"), "{err}");
    let err = args(&["--stages", "1s:4294967295"]).unwrap_err();
    assert!(format!("{err}").contains("at most 1000000"), "{err}");
    let err = args(&["--rate", "1e12/s", "-t", "1s"]).unwrap_err();
    assert!(format!("{err}").contains("largest arrival rate"), "{err}");
}

#[test]
fn valid_flags_are_converted() {
    let config = args(&[
        "--host",
        "http://127.0.0.1:9",
        "-u",
        "10",
        "-r",
        "2.5",
        "-t",
        "1m30s",
        "--var",
        "a=b=c",
        "--max-vu-memory",
        "64MiB",
        "--allow-host",
        "*.svc:443",
    ])
    .unwrap();
    assert_eq!(config.users, 10);
    assert_eq!(config.spawn_rate, 2.5);
    assert_eq!(config.run_time, Some(Duration::from_secs(90)));
    assert_eq!(config.vars["a"], "b=c");
    assert_eq!(config.limits.max_vu_memory, 64 << 20);
    assert_eq!(
        args(&["-t", "45"]).unwrap().run_time,
        Some(Duration::from_secs(45))
    );
}

#[test]
fn invalid_flags_say_what_is_expected() {
    for (flags, expected) in [
        (&["-u", "0"][..], "--users must be at least 1"),
        (&["-u", "ten"][..], "--users expects a whole number"),
        (&["-r", "-1"][..], "--spawn-rate expects"),
        (&["-t", "soon"][..], "--run-time expects a duration"),
        (
            &["--host", "127.0.0.1:80"][..],
            "write it as http://127.0.0.1:80",
        ),
        (&["--host", "ftp://x"][..], "only http and https"),
        (&["--host", "http//x"][..], "not a valid URL"),
        (&["--var", "novalue"][..], "--var expects key=value"),
        (
            &["--max-vu-memory", "lots"][..],
            "--max-vu-memory expects a size",
        ),
        (&["--max-vu-memory", "1KiB"][..], "too small"),
        (&["--allow-host", "a:b"][..], "invalid --allow-host"),
    ] {
        let err = format!("{:#}", args(flags).unwrap_err());
        assert!(err.contains(expected), "{flags:?}: {err}");
    }
}

#[test]
fn data_segment_breakdown_and_cache_flags_are_validated() {
    let config = args(&[
        "--data",
        "users=u.csv;strategy=unique",
        "--seed",
        "7",
        "--segment",
        "2/4",
        "--breakdown",
        "flow",
        "--cache-max",
        "500MiB",
        "--start-at",
        "2026-12-01T10:00:00Z",
    ])
    .unwrap();
    assert_eq!(config.feeds[0].name, "users");
    assert_eq!(config.seed, Some(7));
    assert_eq!(config.segment.to_string(), "1/4:1/2");
    assert_eq!(config.breakdown, ["flow"]);
    assert_eq!(config.cache_max, Some(500 * 1024 * 1024));
    assert!(config.start_at.is_some());
    for (flag, value, says) in [
        ("--data", "users", "names no file"),
        ("--segment", "0/4", "--segment"),
        ("--breakdown", " ", "--breakdown"),
        ("--cache-max", "lots", "--cache-max"),
        ("--start-at", "soon", "--start-at"),
    ] {
        let error = args(&[flag, value]).unwrap_err().to_string();
        assert!(error.contains(says), "{flag} {value}: {error}");
    }
}

#[test]
fn a_segment_splits_the_load_model() {
    let mut config = args(&["-u", "10", "-r", "4", "-i", "1000", "--segment", "1/3"]).unwrap();
    config.apply_segment();
    assert_eq!((config.users, config.iterations), (3, Some(333)));
    // Its users are the run's users 1-3 when classes are dealt out.
    assert_eq!(config.class_slot_offset(), 0);
    assert!((config.spawn_rate - 4.0 / 3.0).abs() < 1e-9);
    let mut config = args(&[
        "--rate",
        "90/s",
        "-t",
        "10s",
        "--max-vus",
        "10",
        "--segment",
        "3/3",
    ])
    .unwrap();
    config.apply_segment();
    assert_eq!(config.rate, Some(30.0));
    assert_eq!(config.max_vus, 4, "10 VUs: 3, 3 and 4");
    assert_eq!(
        config.class_slot_offset(),
        6,
        "the last third's users are 7-10"
    );
}
