//! Prompt stops and nothing left behind:
//! - `pktio bench harness` ends within moments of Ctrl-C (SIGINT) in the
//!   middle of a long window, with the report of what it measured;
//! - a `bench --modes capture-tmpfs` run killed with SIGKILL leaves no
//!   capture child running, and its /dev/shm directory is removed by the
//!   next run, which keeps the directory of a live run.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod cli_support;
use cli_support::{pktio, text, Outcome, Watched};
use rustix::process::Signal;

/// Held by each test while its pktio bench runs: every bench run removes
/// the /dev/shm directories of dead runs and says so, so a run of another
/// test could take the removal the last test here checks for.
static ONE_BENCH_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_bench_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_BENCH_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `pktio args`, watched.
fn start(args: &[&str]) -> Watched {
    let mut c = pktio();
    c.args(args);
    Watched::start(c)
}

/// Sends SIGINT to `run` once `ready` holds and checks it stops within
/// 3 s, exiting 0; returns what it printed.
fn interrupt_once(run: &mut Watched, ready: &str, cond: impl Fn(&str) -> bool) -> Outcome {
    run.wait_until_within(Duration::from_secs(120), ready, |r| cond(&r.stderr_now()));
    run.signal(Signal::INT);
    let (_, took) = run
        .exit_within(Duration::from_secs(20))
        .expect("still running 20 s after SIGINT (killed)");
    eprintln!("stopped {took:?} after SIGINT");
    // The stop is seen within 50 ms; the rest is stopping the generator and
    // tearing down the lab.
    assert!(took < Duration::from_secs(3), "took {took:?} to stop");
    let o = run.finish();
    assert_eq!(o.code(), Some(0), "{}", o.text());
    o
}

#[test]
fn harness_stops_within_moments_of_ctrl_c_in_a_long_window() {
    pktio_lab::require_root!();
    let _one = one_bench_at_a_time();
    // A 15 s warm-up and a 60 s window: before windows looked at the stop
    // flag, Ctrl-C took until their end.
    let mut run = start(&["bench", "harness", "--runs", "1", "--seconds", "60"]);
    // The run has begun (its 15 s warm-up follows its start line): the
    // signal lands in it.
    let o = interrupt_once(&mut run, "the first run", |e| {
        e.contains("generator harness")
    });
    assert!(o.stdout.contains("interrupted"), "{}", o.text());
}

#[test]
fn bench_stops_within_moments_of_ctrl_c_in_a_cell_and_prints_the_table() {
    pktio_lab::require_root!();
    let _one = one_bench_at_a_time();
    // 12 s windows: before the bench's windows looked at the stop flag,
    // Ctrl-C waited for the cell's window to end.
    let mut run = start(&[
        "bench",
        "--runs",
        "1",
        "--seconds",
        "12",
        "--sizes",
        "64",
        "--modes",
        "rxdrop",
        "--backends",
        "xdp",
    ]);
    // Into the rxdrop cell's window: its first per-second rate line.
    let o = interrupt_once(&mut run, "the rxdrop cell's window", |e| {
        e.find("rxdrop    64 B")
            .is_some_and(|cell| e[cell..].contains(" 1.0 s "))
    });
    // The table of what was measured: the ceiling, and the note.
    assert!(
        o.stdout.contains("interrupted") && o.stdout.contains("xdp-drop"),
        "{}",
        o.text()
    );
}

/// The start time of process `pid` (field 22 of /proc/PID/stat).
fn start_time(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = s.rsplit_once(')').unwrap().1;
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// The run directories of process `pid` in /dev/shm.
fn run_dirs_of(pid: u32) -> Vec<PathBuf> {
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("pktio-{pid}-")))
        })
        .collect()
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

/// Removes a directory the test made, even if the test fails.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_killed_capture_tmpfs_run_leaves_nothing_the_next_run_keeps() {
    pktio_lab::require_root!();
    let _one = one_bench_at_a_time();
    let capture = |seconds: &str| {
        vec![
            "bench".to_string(),
            "--modes".into(),
            "capture-tmpfs".into(),
            "--backends".into(),
            "v3".into(),
            "--sizes".into(),
            "64".into(),
            "--runs".into(),
            "1".into(),
            "--seconds".into(),
            seconds.into(),
        ]
    };
    // Long enough a window to be killed in (after a ceiling of the same length).
    let args = capture("8");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run = start(&args);
    let pid = run.child.id();
    // Wait until the capture child writes its pcap in the run's directory.
    let pcap = pktio_lab::wait::poll(Duration::from_secs(90), || {
        let found = run_dirs_of(pid)
            .into_iter()
            .map(|d| d.join("v3.pcap"))
            .find(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 0));
        match found {
            Some(f) => Some(Some(f)),
            // The run ended without one.
            None => run.exited().then_some(None),
        }
    });
    let Some(Some(pcap)) = pcap else {
        run.signal(Signal::KILL);
        let o = run.finish();
        panic!("no pcap appeared in /dev/shm/pktio-{pid}-*: {}", o.text());
    };
    let dir = pcap.parent().unwrap().to_path_buf();
    let _cleanup = Cleanup(dir.clone());
    assert!(
        !processes_mentioning(pcap.to_str().unwrap()).is_empty(),
        "no capture child writes {}",
        pcap.display()
    );
    // SIGKILL: no cleanup code of pktio runs.
    run.child.kill().unwrap();
    run.child.wait().unwrap();
    // The capture child dies with it (parent-death signal).
    let mut left = Vec::new();
    let _ = pktio_lab::wait::poll(Duration::from_secs(5), || {
        left = processes_mentioning(pcap.to_str().unwrap());
        left.is_empty().then_some(())
    });
    assert!(
        left.is_empty(),
        "capture children {left:?} outlived the SIGKILLed pktio"
    );
    assert!(dir.exists(), "{} vanished by itself", dir.display());
    // A live run's directory (this test's, as pktio would name it) is kept.
    let me = std::process::id();
    let live = Path::new("/dev/shm").join(format!("pktio-{me}-{}", start_time(me)));
    std::fs::create_dir(&live).unwrap();
    let _live_cleanup = Cleanup(live.clone());
    std::fs::write(
        live.join("owner"),
        format!("pktio {me} {}\n", start_time(me)),
    )
    .unwrap();

    // The next run removes the dead run's directory and says so.
    let args = capture("0.3");
    let o = pktio().args(&args).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(!dir.exists(), "{} is still there", dir.display());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("removed {}", dir.display())),
        "{}",
        text(&o)
    );
    assert!(
        live.exists(),
        "the live run's {} was removed",
        live.display()
    );
}
