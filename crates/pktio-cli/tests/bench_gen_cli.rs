//! `pktio bench gen` (pktio's generator engines beside xdp-trafficgen) and
//! the xdp-tools peers of `pktio bench --peers`, with tiny durations and
//! stand-in tools: one that cannot run (as Debian's xdp-tools 1.3.1 on this
//! kernel) and one that runs until stopped. No timed assertions.

mod cli_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pktio_lab::require_root;

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A scratch directory of this test, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("pktio-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }

    /// An executable shell script `name` with `body`.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn json_of(path: &Path) -> serde_json::Value {
    let v = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    cli_support::schema::check(&v, "pktio.bench/1");
    v
}

fn cell<'v>(v: &'v serde_json::Value, key: &str, row: &str, metric: &str) -> &'v serde_json::Value {
    v["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["labels"][key] == row && c["metric"] == metric)
        .unwrap_or_else(|| panic!("no {metric} cell for {row}: {v}"))
}

fn samples(c: &serde_json::Value) -> Vec<f64> {
    c["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `pktio bench gen` briefly with a stand-in xdp-trafficgen that
/// cannot run; with `refuse`, as on a host that refuses live frames.
fn gen_bench(dir: &Scratch, refuse: bool) -> (serde_json::Value, String) {
    let tool = dir.script(
        "xdp-trafficgen",
        "echo 'libbpf: stand-in failure' >&2\necho 'Error probing kernel support: No such process' >&2\nexit 1",
    );
    let json = dir.0.join(format!("out-{refuse}.json"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pktio"));
    if refuse {
        pktio_lab::seccomp::refuse_prog_test_run(&mut cmd);
    }
    let o = cmd
        .args(["bench", "gen", "--runs", "2", "--seconds", "0.3", "--json"])
        .arg(&json)
        .env("XDP_TRAFFICGEN", &tool)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    (json_of(&json), t)
}

/// Every row that ran delivered frames, with a CPU share and a cost.
fn rows_delivered(v: &serde_json::Value, rows: &[&str]) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|g| {
            let mpps = samples(cell(v, "generator", g, "at the sink"));
            assert_eq!(mpps.len(), 2, "{g}: {v}");
            assert!(mpps.iter().all(|&x| x > 0.0), "{g} delivered nothing: {v}");
            for x in samples(cell(v, "generator", g, "CPU busy")) {
                assert!(x > 0.0 && x <= 100.0, "{g}: CPU busy {x} %");
            }
            for x in samples(cell(v, "generator", g, "CPU per frame")) {
                assert!(x > 0.0, "{g}: {x} ns/frame");
            }
            mpps
        })
        .collect()
}

#[test]
fn gen_bench_puts_pktio_beside_the_trafficgen_call_and_names_a_tool_that_cannot_run() {
    require_root!();
    let dir = Scratch::new("genbench");
    let (v, t) = gen_bench(&dir, false);
    let notes = v["notes"].to_string();
    let socket_rows = ["pktio xsk", "pktio packet", "pktio raw"];
    rows_delivered(&v, &socket_rows);
    if notes.contains("pktio live refused") {
        // This kernel refuses live frames: the reference call cannot run.
        assert!(notes.contains("xdp-trafficgen call: not run"), "{notes}");
        return;
    }
    let rates = rows_delivered(&v, &["pktio live", "xdp-trafficgen call"]);
    // The tool's failure is a note with its own last words, not an error.
    assert!(
        notes.contains("xdp-trafficgen (") && notes.contains("unusable"),
        "{notes}"
    );
    assert!(notes.contains("No such process"), "{notes}");
    assert!(
        !v["cells"].to_string().contains("\"xdp-trafficgen\""),
        "a tool that cannot run has no row: {v}"
    );
    // The ratio note is the median of the run-by-run ratios.
    let ratios: Vec<f64> = rates[0].iter().zip(&rates[1]).map(|(p, t)| p / t).collect();
    let want = format!("pktio live / xdp-trafficgen call: {:.2}×", median(ratios));
    assert!(t.contains(&want), "expected {want:?} in\n{t}");
}

#[test]
fn gen_bench_on_a_host_refusing_live_frames_compares_the_engines_that_run() {
    require_root!();
    let dir = Scratch::new("genbench-refused");
    let (v, _) = gen_bench(&dir, true);
    rows_delivered(&v, &["pktio xsk", "pktio packet", "pktio raw"]);
    let notes = v["notes"].to_string();
    assert!(
        notes.contains("pktio live refused") && notes.contains("EPERM"),
        "{notes}"
    );
    assert!(notes.contains("xdp-trafficgen call: not run"), "{notes}");
    assert!(
        notes.contains("xdp-trafficgen: not run (it needs live frames"),
        "{notes}"
    );
    let cells = v["cells"].to_string();
    assert!(
        !cells.contains("\"pktio live\"") && !cells.contains("xdp-trafficgen call"),
        "refused engines have no rows: {v}"
    );
}

#[test]
fn an_xdp_bench_that_runs_is_stopped_by_its_pid_and_gets_a_ceiling_row() {
    require_root!();
    let dir = Scratch::new("xdpbench");
    let (pidfile, stopped) = (dir.0.join("pid"), dir.0.join("stopped"));
    // Runs until SIGINT, like xdp-bench; says that it was stopped.
    let tool = dir.script(
        "xdp-bench",
        &format!(
            "echo $$ > {pid}\ntrap 'echo \"$*\" > {stopped}; exit 0' INT\nwhile :; do sleep 0.05; done",
            pid = pidfile.display(),
            stopped = stopped.display()
        ),
    );
    let json = dir.0.join("out.json");
    let o = Command::new(env!("CARGO_BIN_EXE_pktio"))
        .args([
            "bench",
            "--modes",
            "rxdrop",
            "--backends",
            "v2",
            "--sizes",
            "64",
            "--runs",
            "1",
            "--seconds",
            "0.3",
            "--peers",
            "--json",
        ])
        .arg(&json)
        .env("XDP_BENCH", &tool)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let v = json_of(&json);
    let row = v["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["labels"]["mode"] == "ceiling" && c["labels"]["backend"] == "xdp-bench")
        .unwrap_or_else(|| panic!("no xdp-bench ceiling row: {v}"));
    assert_eq!(samples(row).len(), 1, "{row}");
    // It was asked to drop on the receiving veth in native mode, and stopped.
    let args = std::fs::read_to_string(&stopped).expect("the tool was not stopped with SIGINT");
    let args: Vec<&str> = args.split_whitespace().collect();
    assert_eq!(args[..3], ["drop", "-m", "native"], "{args:?}");
    assert_eq!(args.len(), 4, "and the receiving interface: {args:?}");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "the stand-in xdp-bench (pid {pid}) is still running"
    );
    // Our own ceiling is still there, and the one the shares are taken from.
    assert!(
        samples(cell(&v, "backend", "xdp-drop", "Mpps"))[0] > 0.0,
        "{v}"
    );
}

/// Two submitters share the work of `pktio gen --engine live`: a count is
/// still exact, and flows still take turns call by call. At 10,000 frames
/// per second a call carries 1,000 frames, so 3,000 frames are three calls,
/// one per flow, split between the submitters.
#[test]
fn gen_sends_exactly_the_count_with_flows_taking_turns() {
    require_root!();
    let lab = pktio_lab::Lab::builder().gro(true).build().unwrap();
    let (gen, rx) = (lab.gen(), lab.rx());
    let sock = rx
        .run(|| std::net::UdpSocket::bind(rx.addr().socket_addr(9)))
        .unwrap();
    // Room for every datagram (SO_RCVBUFFORCE: root ignores rmem_max).
    let bytes: libc::c_int = 32 << 20;
    // SAFETY: a valid socket fd and a pointer to an int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    let mac = |m: [u8; 6]| pktio_lab::fmt_mac(&m);
    let o = gen
        .command(env!("CARGO_BIN_EXE_pktio"))
        .args(["gen", "-i", gen.ifname(), "-n", "3000", "--rate", "10000"])
        .args(["--flows", "3", "--size", "64"])
        .args(["--src-mac", &mac(gen.mac()), "--dst-mac", &mac(rx.mac())])
        .args(["--src-ip", &gen.addr().ip().to_string()])
        .args(["--dst-ip", &rx.addr().ip().to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("gen: 3000 frames"),
        "it reports what it sent: {}",
        text(&o)
    );
    sock.set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    let mut by_port = std::collections::BTreeMap::new();
    let mut buf = [0u8; 2048];
    while let Ok((_, from)) = sock.recv_from(&mut buf) {
        *by_port.entry(from.port()).or_insert(0u32) += 1;
    }
    assert_eq!(
        by_port.into_iter().collect::<Vec<_>>(),
        [(9, 1000), (10, 1000), (11, 1000)],
        "3000 datagrams, 1000 from each flow's source port"
    );
}

#[test]
fn gen_bench_bad_input_is_an_error_not_a_panic() {
    for (args, says) in [
        (&["--runs", "0"][..], "--runs must be at least 1"),
        (
            &["--seconds", "0"][..],
            "--seconds must be between 0 and 600",
        ),
        (&["--size", "2000"][..], "outside 64..=1518"),
        (&["--gen-cpu", "4096"][..], "CPU 4096 does not exist"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_pktio"))
            .args(["bench", "gen"])
            .args(args)
            .output()
            .unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {t}");
        assert!(t.contains(says), "{args:?}: expected {says:?} in {t}");
        assert!(!t.contains("panicked"), "{t}");
    }
}
