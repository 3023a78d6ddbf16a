//! `pktio bench` plumbing with tiny durations: the JSON schema, a
//! well-formed SVG, the zero-copy row with its reason on veth, ratios;
//! jumbo frames (multi-buffer AF_XDP and V3 measured, single-buffer AF_XDP
//! an unsupported row, the generator named).
//! No timed assertions: only that the numbers are there and consistent.

mod cli_support;

use std::process::Command;

use pktio_lab::require_root;

#[test]
fn bench_json_svg_and_unsupported_row() {
    require_root!();
    let dir = std::env::temp_dir().join(format!("pktio-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, svg) = (dir.join("b.json"), dir.join("b.svg"));
    let o = Command::new(env!("CARGO_BIN_EXE_pktio"))
        .args([
            "bench",
            "--runs",
            "2",
            "--seconds",
            "0.3",
            "--sizes",
            "64",
            "--modes",
            "rxdrop,txpush",
        ])
        .args(["--backends", "xdp-zc,xdp,v2", "--json"])
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");

    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    cli_support::schema::check(&v, "pktio.bench/1");
    let env = &v["environment"];
    assert!(
        env["kernel"].as_str().is_some_and(|k| !k.is_empty()),
        "{env}"
    );
    assert!(
        env["cores"]["generator"].is_array() && env["cores"]["measured"].is_array(),
        "{env}"
    );
    // What each AF_XDP row binds and attaches.
    let bound = env["extra"]
        .as_array()
        .unwrap()
        .iter()
        .find(|kv| kv[0] == "bound")
        .and_then(|kv| kv[1].as_str())
        .unwrap_or_else(|| panic!("no bound in {env}"));
    assert!(
        bound.contains("xdp-zc = zero-copy, driver attach")
            && bound.contains("xdp = copy, driver attach")
            && !bound.contains("v2"),
        "{bound}"
    );
    let cells = v["cells"].as_array().unwrap();
    let mpps = |mode: &str, backend: &str| {
        cells
            .iter()
            .find(|c| {
                c["metric"] == "Mpps"
                    && c["labels"]["mode"] == mode
                    && c["labels"]["backend"] == backend
                    && c["labels"]["size"] == "64"
            })
            .unwrap_or_else(|| panic!("no Mpps cell for {mode}/{backend}: {v}"))
    };
    for mode in ["rxdrop", "txpush"] {
        for backend in ["xdp", "v2"] {
            let c = mpps(mode, backend);
            let samples = c["samples"].as_array().unwrap();
            assert_eq!(samples.len(), 2, "two runs: {c}");
            let (min, med, max) = (
                c["min"].as_f64().unwrap(),
                c["median"].as_f64().unwrap(),
                c["max"].as_f64().unwrap(),
            );
            assert!(min <= med && med <= max && min > 0.0, "{c}");
        }
        // Zero-copy on veth: the row is there, without samples, with the reason.
        let zc = mpps(mode, "xdp-zc");
        assert!(zc["samples"].as_array().unwrap().is_empty(), "{zc}");
        let status = zc["labels"]["status"].as_str().unwrap_or("");
        assert!(
            status.starts_with("unsupported") && status.contains("veth"),
            "{zc}"
        );
    }
    // Where the CPU went on the other side: the generator's core, busy
    // with the generator and (veth) the receive side's kernel work. txpush
    // has no generator, so no such cell.
    let gen_cpu = |mode: &str, backend: &str| {
        cells.iter().find(|c| {
            c["metric"] == "gen CPU"
                && c["labels"]["mode"] == mode
                && c["labels"]["backend"] == backend
        })
    };
    for backend in ["xdp", "v2"] {
        let c = gen_cpu("rxdrop", backend).unwrap_or_else(|| panic!("no gen CPU cell: {v}"));
        assert_eq!(c["unit"], "%", "{c}");
        for x in c["samples"].as_array().unwrap() {
            let x = x.as_f64().unwrap();
            assert!(x > 0.0 && x <= 100.0, "{c}");
        }
        assert!(gen_cpu("txpush", backend).is_none(), "{v}");
        let si = cells
            .iter()
            .find(|c| {
                c["metric"] == "gen softirq"
                    && c["labels"]["mode"] == "rxdrop"
                    && c["labels"]["backend"] == backend
            })
            .unwrap_or_else(|| panic!("no gen softirq cell: {v}"));
        // Part of the busy time: softirq ≤ busy, run by run.
        for (s, b) in si["samples"]
            .as_array()
            .unwrap()
            .iter()
            .zip(c["samples"].as_array().unwrap())
        {
            assert!(
                s.as_f64().unwrap() <= b.as_f64().unwrap() + 1e-9,
                "{si} vs {c}"
            );
        }
    }
    // The ceiling row and the rxdrop share of it.
    assert!(
        cells
            .iter()
            .any(|c| c["labels"]["mode"] == "ceiling"
                && c["median"].as_f64().is_some_and(|m| m > 0.0)),
        "{v}"
    );
    let share = cells
        .iter()
        .find(|c| c["metric"] == "of ceiling" && c["labels"]["backend"] == "xdp")
        .unwrap();
    assert!(share["median"].as_f64().is_some_and(|p| p > 0.0), "{share}");
    // The ratio column printed for each row matches the medians.
    let (a, b) = (
        mpps("rxdrop", "xdp")["median"].as_f64().unwrap(),
        mpps("rxdrop", "v2")["median"].as_f64().unwrap(),
    );
    let want = format!("{:.2}", a / b);
    let line = text
        .lines()
        .find(|l| l.starts_with("rxdrop") && l.split_whitespace().nth(2) == Some("xdp"))
        .unwrap_or("");
    assert!(
        line.split_whitespace().any(|t| t == want),
        "ratio {want} in {line:?}\n{text}"
    );

    let svg_text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&svg_text).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert!(
        doc.descendants()
            .filter(|n| n.tag_name().name() == "rect")
            .count()
            >= 5,
        "bars drawn"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_jumbo_frames_multi_buffer_and_v3_measured_single_buffer_unsupported() {
    require_root!();
    let dir = std::env::temp_dir().join(format!("pktio-bench-jumbo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("j.json");
    let o = Command::new(env!("CARGO_BIN_EXE_pktio"))
        .args([
            "bench",
            "--runs",
            "1",
            "--seconds",
            "0.3",
            "--sizes",
            "9000",
        ])
        .args(["--backends", "xdp-mb,v3,xdp", "--modes", "rxdrop", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    cli_support::schema::check(&v, "pktio.bench/1");

    // The environment names the generator of the size and the MTU.
    let extra = v["environment"]["extra"].as_array().unwrap();
    let env = |key: &str| {
        extra
            .iter()
            .find(|kv| kv[0] == key)
            .and_then(|kv| kv[1].as_str())
            .unwrap_or_else(|| panic!("no {key} in {extra:?}"))
            .to_string()
    };
    let generator = env("generator");
    // Neither live frames (one page) nor AF_XDP (one 4 KiB chunk) make
    // 9000-byte frames: the ladder says so and takes the TX ring.
    assert!(
        generator.starts_with("9000 B: packet (AF_PACKET TX ring")
            && generator.contains("QDISC_BYPASS")
            && generator.contains("xsk refused: it makes frames of up to 3844 bytes"),
        "{generator}"
    );
    assert_eq!(env("mtu"), "9000");
    assert!(
        text.contains("generator=9000 B: packet (AF_PACKET TX ring"),
        "{text}"
    );

    let cells = v["cells"].as_array().unwrap();
    let cell = |mode: &str, backend: &str| {
        cells
            .iter()
            .find(|c| {
                c["metric"] == "Mpps"
                    && c["labels"]["mode"] == mode
                    && c["labels"]["backend"] == backend
                    && c["labels"]["size"] == "9000"
            })
            .unwrap_or_else(|| panic!("no Mpps cell for {mode}/{backend}: {v}"))
    };
    // The XDP_DROP ceiling works at 9000 B (a frags-aware program).
    assert!(
        cell("ceiling", "xdp-drop")["median"]
            .as_f64()
            .is_some_and(|m| m > 0.0),
        "{v}"
    );
    for backend in ["xdp-mb", "v3"] {
        let c = cell("rxdrop", backend);
        assert_eq!(c["samples"].as_array().unwrap().len(), 1, "{c}");
        assert!(c["median"].as_f64().is_some_and(|m| m > 0.0), "{c}");
        assert!(c["labels"]["status"].is_null(), "{c}");
    }
    // Single-buffer AF_XDP: a row with the reason, not a failure.
    let x = cell("rxdrop", "xdp");
    assert!(x["samples"].as_array().unwrap().is_empty(), "{x}");
    let status = x["labels"]["status"].as_str().unwrap_or("");
    assert!(
        status.starts_with("unsupported") && status.contains("multi-buffer"),
        "{x}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_bad_input() {
    for (args, want) in [
        (&["bench", "--sizes", "20"][..], "outside 64..=9000"),
        (&["bench", "--sizes", "64,9001"][..], "outside 64..=9000"),
        (
            &["bench", "--rate", "1e-300"][..],
            "frames per second from 1 to 1e9",
        ),
        (&["bench", "--generator", "fast"][..], "invalid value"),
        (&["bench", "--seconds", "0"][..], "--seconds"),
        (&["bench", "--cpu", "99"][..], "does not exist"),
        (&["bench", "--backends", "nosuch"][..], "invalid value"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_pktio"))
            .args(args)
            .output()
            .unwrap();
        let t = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && t.contains(want), "{args:?}: {t}");
    }
}
