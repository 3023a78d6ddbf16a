//! `pktio doctor` through the built binary on this host, read-only: the
//! JSON contract, `--watch` rates, and bad input (unknown interface, bad
//! numbers, conflicting flags) giving clear messages and non-zero exits.
//! Needs no privilege: what cannot be read becomes a finding. Also the
//! output contract: schema ids, stable finding ids, exit codes.

mod cli_support;

use std::collections::BTreeSet;
use std::process::{Command, Output};

use serde_json::Value;

fn pktio(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pktio"))
        .args(args)
        .output()
        .expect("the pktio binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn json_findings_have_the_stable_fields() {
    let out = pktio(&["doctor", "--json"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    cli_support::schema::check(&doc, "pktio.doctor/1");
    let findings = doc["findings"].as_array().expect("a findings array");
    assert!(!findings.is_empty());
    check_ids(findings);
    for f in findings {
        for key in ["id", "area", "name", "level", "value", "why", "fix"] {
            assert!(f.get(key).is_some(), "{key} missing in {f}");
        }
        assert!(
            ["ok", "note", "warn", "problem"].contains(&f["level"].as_str().unwrap()),
            "{f}"
        );
        assert!(
            ["nic", "stack", "irq", "sockets", "kernel"].contains(&f["area"].as_str().unwrap()),
            "{f}"
        );
        if let Some(a) = f.get("action") {
            assert!(a["kind"].is_string(), "{f}");
            assert!(
                f["fix"].is_string(),
                "an action always has its command: {f}"
            );
        }
    }
    // The host-wide checks are always there.
    for name in ["kernel", "AF_XDP sockets", "io_uring", "softnet", "memlock"] {
        assert!(findings.iter().any(|f| f["name"] == name), "no {name}");
    }
}

/// Every id is one of the known ids (the snapshot in pktio-doctor), and
/// an id with its interface names one finding.
fn check_ids(findings: &[Value]) {
    let known: BTreeSet<&str> = pktio_doctor::finding::KNOWN_IDS.lines().collect();
    let mut seen = BTreeSet::new();
    for f in findings {
        let id = f["id"].as_str().expect("an id");
        assert!(
            known.contains(id),
            "{id} is not in crates/pktio-doctor/src/ids.txt: {f}"
        );
        let key = (id.to_string(), f["interface"].as_str().map(str::to_string));
        assert!(seen.insert(key), "two findings with id {id}: {f}");
    }
}

#[test]
fn every_schema_id_is_documented() {
    use pktio_bench::report::schema;
    use pktio_doctor::report;
    let documented = cli_support::schema::ids();
    for id in [
        schema::BENCH,
        schema::LOOP,
        schema::LOOP_SECOND,
        schema::GEN,
        schema::GEN_SECOND,
        schema::SOAK,
        schema::CAPTURE,
        // `pktio capture --json-lines` (its constant lives in capture.rs).
        "pktio.capture-second/1",
        schema::TCP_RECV,
        schema::TCP_SEND,
        report::SCHEMA,
        report::WATCH_SCHEMA,
        report::APPLY_SCHEMA,
    ] {
        assert!(documented.contains(&id), "{id} is not in docs/JSON.md");
    }
    assert_eq!(documented.len(), 13, "{documented:?}");
}

/// `--fail-on LEVEL`: 1 exactly when a finding is at LEVEL or above,
/// `never`: 0; the JSON goes to a file with `--json FILE`, the table
/// stays on stdout.
#[test]
fn exit_status_follows_fail_on() {
    let dir = std::env::temp_dir().join(format!("pktio-doctor-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("d.json");
    let rank = |l: &str| {
        ["ok", "note", "warn", "problem"]
            .iter()
            .position(|x| *x == l)
    };
    for (fail_on, at) in [("note", 1), ("warn", 2), ("problem", 3), ("error", 3)] {
        let out = pktio(&[
            "doctor",
            "--fail-on",
            fail_on,
            "--json",
            file.to_str().unwrap(),
        ]);
        let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        cli_support::schema::check(&doc, "pktio.doctor/1");
        let hit = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| rank(f["level"].as_str().unwrap()) >= Some(at));
        assert_eq!(
            out.status.code(),
            Some(i32::from(hit)),
            "{fail_on}: {out:?}"
        );
        assert!(
            text(&out.stdout).starts_with("LEVEL    AREA     NAME"),
            "{out:?}"
        );
    }
    let out = pktio(&["doctor", "--fail-on", "never"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = pktio(&["doctor", "--fail-on", "sometimes"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // `--json -` is `--json`: the document on stdout, the table on stderr.
    let out = pktio(&["doctor", "--json", "-", "--fail-on", "never"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("only JSON on stdout");
    cli_support::schema::check(&doc, "pktio.doctor/1");
    assert!(
        text(&out.stderr).starts_with("LEVEL    AREA     NAME"),
        "{out:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_table_is_severity_first() {
    let out = pktio(&["doctor"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    let s = text(&out.stdout);
    assert!(s.starts_with("LEVEL    AREA     NAME"), "{s}");
    let rank = |w: &str| match w {
        "PROBLEM" => 0,
        "warn" => 1,
        "note" => 2,
        "ok" => 3,
        _ => 9,
    };
    let levels: Vec<u8> = s
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with(' '))
        .map(|l| rank(l.split_whitespace().next().unwrap_or("")))
        .collect();
    assert!(!levels.is_empty());
    assert!(
        levels.windows(2).all(|w| w[0] <= w[1]),
        "not sorted by severity:\n{s}"
    );
    assert!(
        s.contains(" problem") && s.contains(" ok"),
        "no summary line:\n{s}"
    );
}

#[test]
fn watch_prints_rates_then_stops() {
    let out = pktio(&[
        "doctor", "--watch", "0.2", "--count", "2", "--json", "-i", "lo",
    ]);
    assert!(out.status.success(), "{out:?}");
    let lines = cli_support::schema::check_lines(&text(&out.stdout), "pktio.doctor-watch/1");
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert!(l["rates"]["seconds"].as_f64().unwrap() > 0.0);
        assert!(!l["rates"]["cpus"].as_array().unwrap().is_empty());
        assert_eq!(l["rates"]["interfaces"][0]["ifname"], "lo");
        assert!(l["rates"]["interfaces"][0]["rx_pps"].as_f64().unwrap() >= 0.0);
    }
    let out = pktio(&["doctor", "--watch", "0.2", "--count", "1", "-i", "lo"]);
    let s = text(&out.stdout);
    assert!(s.contains("processed/s") && s.contains("rx pkt/s"), "{s}");
}

#[test]
fn unknown_interface_is_a_clear_error() {
    for args in [
        &["doctor", "-i", "pktio-nosuch0"][..],
        &[
            "doctor",
            "--why-no-packets",
            "-i",
            "pktio-nosuch0",
            "-q",
            "0",
        ][..],
        &["doctor", "--watch", "1", "-i", "pktio-nosuch0"][..],
    ] {
        let out = pktio(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            text(&out.stderr).contains("no interface named \"pktio-nosuch0\""),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn bad_input_gives_messages_not_panics() {
    let cases: &[(&[&str], i32, &str)] = &[
        (&["doctor", "--why-no-packets", "-i", "lo"], 2, "-q QUEUE"),
        (
            &["doctor", "--why-no-packets", "-q", "0"],
            2,
            "exactly one interface",
        ),
        (&["doctor", "--frame-size", "100"], 2, "--frame-size"),
        (&["doctor", "--headroom", "4000"], 2, "--headroom"),
        (&["doctor", "--watch", "0"], 2, "--watch"),
        (&["doctor", "--watch", "nan"], 2, "--watch"),
        (
            &[
                "doctor",
                "--why-no-packets",
                "-i",
                "lo",
                "-q",
                "0",
                "--sample=-1",
            ],
            2,
            "--sample",
        ),
        (
            &["doctor", "--apply", "--watch", "1"],
            2,
            "cannot be used with",
        ),
        (&["doctor", "--yes"], 2, "--apply"),
        (&["doctor", "-q", "1"], 2, "--why-no-packets"),
    ];
    for (args, code, msg) in cases {
        let out = pktio(args);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {out:?}");
        let err = text(&out.stderr);
        assert!(err.contains(msg), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
