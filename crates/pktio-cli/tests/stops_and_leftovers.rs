//! Prompt stops and nothing left behind:
//! - `pktio bench harness` ends within moments of Ctrl-C (SIGINT) in the
//!   middle of a long window, with the report of what it measured;
//! - a `bench --modes capture-tmpfs` run killed with SIGKILL leaves no
//!   capture child running, and its /dev/shm directory is removed by the
//!   next run, which keeps the directory of a live run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod cli_support;
use cli_support::{pktio, text};

/// Starts `pktio args` with its stderr lines sent to the returned channel
/// (and echoed, for the test's log).
fn start(args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = pktio()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("  | {l}");
            let _ = tx.send(l);
        }
    });
    (child, rx)
}

/// Waits for a stderr line containing `what`, up to `limit`.
fn wait_line(rx: &mpsc::Receiver<String>, what: &str, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(what) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// Sends `sig` to our own child, by its pid.
fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig} {}", child.id());
}

/// Waits up to `limit` for `child` to exit; kills it (our own child) if it
/// does not, and returns how long it took.
fn exit_within(child: &mut Child, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    let took = pktio_lab::wait::poll(limit, || child.try_wait().unwrap().map(|_| t.elapsed()));
    if took.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    took
}

#[test]
fn harness_stops_within_moments_of_ctrl_c_in_a_long_window() {
    pktio_lab::require_root!();
    // A 15 s warm-up and a 60 s window: before windows looked at the stop
    // flag, Ctrl-C took until their end.
    let (mut child, rx) = start(&["bench", "harness", "--runs", "1", "--seconds", "60"]);
    let started = wait_line(&rx, "generator harness", Duration::from_secs(60));
    if !started {
        let _ = child.kill();
        let _ = child.wait();
        panic!("bench harness did not start its first run");
    }
    // The run has begun (its 15 s warm-up follows its start line): the
    // signal lands in it.
    signal(&child, "-INT");
    let took = exit_within(&mut child, Duration::from_secs(20));
    let took = took.expect("bench harness still ran 20 s after SIGINT (killed)");
    eprintln!("bench harness stopped {took:?} after SIGINT");
    // The stop is seen within 50 ms; the rest is stopping the generator and
    // tearing down the lab.
    assert!(
        took < Duration::from_secs(3),
        "bench harness took {took:?} to stop"
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("interrupted"), "{}", text(&out));
}

#[test]
fn bench_stops_within_moments_of_ctrl_c_in_a_cell_and_prints_the_table() {
    pktio_lab::require_root!();
    // 12 s windows: before the bench's windows looked at the stop flag,
    // Ctrl-C waited for the cell's window to end.
    let (mut child, rx) = start(&[
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
    let in_cell = wait_line(&rx, "rxdrop    64 B", Duration::from_secs(120))
        && wait_line(&rx, " 1.0 s ", Duration::from_secs(60));
    if !in_cell {
        let _ = child.kill();
        let _ = child.wait();
        panic!("bench did not reach the rxdrop cell's window");
    }
    signal(&child, "-INT");
    let took = exit_within(&mut child, Duration::from_secs(20));
    let took = took.expect("bench still ran 20 s after SIGINT (killed)");
    eprintln!("bench stopped {took:?} after SIGINT");
    assert!(took < Duration::from_secs(3), "bench took {took:?} to stop");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The table of what was measured: the ceiling, and the note.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("interrupted") && stdout.contains("xdp-drop"),
        "{}",
        text(&out)
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
    let (mut child, _rx) = start(&args);
    let pid = child.id();
    // Wait until the capture child writes its pcap in the run's directory.
    let pcap = pktio_lab::wait::poll(Duration::from_secs(90), || {
        let found = run_dirs_of(pid)
            .into_iter()
            .map(|d| d.join("v3.pcap"))
            .find(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 0));
        match found {
            Some(f) => Some(Some(f)),
            // The run ended without one.
            None => child.try_wait().unwrap().map(|_| None),
        }
    });
    let Some(Some(pcap)) = pcap else {
        let _ = child.kill();
        let o = child.wait_with_output().unwrap();
        panic!("no pcap appeared in /dev/shm/pktio-{pid}-*: {}", text(&o));
    };
    let dir = pcap.parent().unwrap().to_path_buf();
    let _cleanup = Cleanup(dir.clone());
    assert!(
        !processes_mentioning(pcap.to_str().unwrap()).is_empty(),
        "no capture child writes {}",
        pcap.display()
    );
    // SIGKILL: no cleanup code of pktio runs.
    child.kill().unwrap();
    child.wait().unwrap();
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
