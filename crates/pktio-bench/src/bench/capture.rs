//! Capture tools run in the lab as the rows of `pktio bench`'s capture
//! modes: `pktio capture` over AF_XDP and TPACKET_V3 (this binary), and,
//! with `--peers`, tcpdump and netsniff-ng; each writes a pcap file to
//! /dev/null or, for capture-tmpfs, to a run directory of its own on tmpfs
//! (removed after the cell, and after a run that died, by the next one).

use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use pktio_lab::Lab;

use crate::bench::cell::{busy_pct, CellError, RunResult};
use crate::bench::lab::{join_generator, start_generator, GenPlan};
use crate::bench::peers::{collect_output, installed, process_cpu_ns, tail};
use crate::bench::window::{sleep_window, Stopped};
use crate::run::CpuTimes;

/// Where a capture tool writes its pcap file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureDest {
    /// `/dev/null`: the cost of capturing and formatting, no storage.
    Null,
    /// A file on tmpfs, in this run's directory under `/dev/shm` (see
    /// `RunDir`), removed after the cell; the run needs about
    /// `expected_bytes` free there.
    Tmpfs {
        /// What the file may grow to in one run.
        expected_bytes: u64,
    },
}

/// The tmpfs the capture files go to.
const TMPFS_DIR: &str = "/dev/shm";

impl CaptureDest {
    /// The file a tool writes to, after checking that it can: `Unsupported`
    /// when /dev/shm is not a tmpfs or has too little room. Directories left
    /// there by runs that died are removed first ([`remove_dead_runs`]).
    fn path(self, tool: CaptureTool) -> Result<CaptureFile, CellError> {
        match self {
            CaptureDest::Null => Ok(CaptureFile {
                path: "/dev/null".into(),
                _dir: None,
            }),
            CaptureDest::Tmpfs { expected_bytes } => {
                let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
                if fs_type_of(&mounts, TMPFS_DIR) != Some("tmpfs") {
                    return Err(CellError::Unsupported(format!(
                        "{TMPFS_DIR} is not a tmpfs (mount one there: mount -t tmpfs tmpfs {TMPFS_DIR})"
                    )));
                }
                let tmpfs = std::path::Path::new(TMPFS_DIR);
                for gone in remove_dead_runs(tmpfs) {
                    eprintln!(
                        "pktio: removed {} (left by a pktio run that died)",
                        gone.display()
                    );
                }
                let st = rustix::fs::statvfs(TMPFS_DIR)
                    .map_err(|e| CellError::Unsupported(format!("{TMPFS_DIR}: {e}")))?;
                let free = st.f_bavail.saturating_mul(st.f_frsize);
                if free < expected_bytes {
                    return Err(CellError::Unsupported(format!(
                        "a run can write ~{:.1} GB and {TMPFS_DIR} has {:.1} GB free (shorter --seconds, or a bigger tmpfs)",
                        expected_bytes as f64 / 1e9,
                        free as f64 / 1e9
                    )));
                }
                let dir = RunDir::create(tmpfs).map_err(|e| {
                    CellError::Failed(anyhow::anyhow!(
                        "cannot create this run's directory in {TMPFS_DIR}: {e}"
                    ))
                })?;
                Ok(CaptureFile {
                    path: dir.path().join(format!("{}.pcap", tool.name())),
                    _dir: Some(dir),
                })
            }
        }
    }
}

/// The file a capture tool writes, and the run directory it is in (removed
/// with everything in it when this is dropped, however the cell ends).
struct CaptureFile {
    path: std::path::PathBuf,
    _dir: Option<RunDir>,
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`, clock
/// ticks since boot): with the pid, it names one process for good, where a
/// pid alone is reused.
fn process_start_time(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the ")" of the command name start with field 3.
    let rest = s.rsplit_once(')')?.1;
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// The name prefix of run directories.
const RUN_DIR_PREFIX: &str = "pktio-";
/// The marker file in a run directory: `pktio <pid> <start time>`.
const RUN_DIR_OWNER: &str = "owner";

/// A directory of this run under `/dev/shm` for the files it writes there:
/// `pktio-<pid>-<start time>`, mode 0700, with an `owner` marker holding the
/// same pid and start time. Removed (with its contents) on drop; if the run
/// dies without dropping it (`SIGKILL`), the next run removes it
/// ([`remove_dead_runs`]), as the pid and start time no longer name a live
/// process.
struct RunDir(std::path::PathBuf);

impl RunDir {
    /// Creates this process's run directory in `parent`.
    fn create(parent: &std::path::Path) -> std::io::Result<RunDir> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        let pid = std::process::id();
        let start = process_start_time(pid)
            .ok_or_else(|| std::io::Error::other("cannot read /proc/self/stat"))?;
        let path = parent.join(format!("{RUN_DIR_PREFIX}{pid}-{start}"));
        let mkdir = || std::fs::DirBuilder::new().mode(0o700).create(&path);
        if let Err(e) = mkdir() {
            // Ours from an earlier cell of this run, not cleaned up: start
            // afresh. Anything else there (another user's, a symlink) is
            // not touched.
            let m = std::fs::symlink_metadata(&path).map_err(|_| e)?;
            if !(m.is_dir() && m.uid() == rustix::process::geteuid().as_raw()) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!(
                        "{} exists and is not this user's directory: remove it",
                        path.display()
                    ),
                ));
            }
            std::fs::remove_dir_all(&path)?;
            mkdir()?;
        }
        let dir = RunDir(path);
        std::fs::write(dir.0.join(RUN_DIR_OWNER), format!("pktio {pid} {start}\n"))?;
        Ok(dir)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The owner `(pid, start time)` a run directory's name gives:
/// `pktio-<pid>-<start>`.
fn run_dir_owner(name: &str) -> Option<(u32, u64)> {
    let (pid, start) = name.strip_prefix(RUN_DIR_PREFIX)?.split_once('-')?;
    Some((pid.parse().ok()?, start.parse().ok()?))
}

/// Removes from `parent` what pktio runs that died left there, and returns
/// what it removed:
/// - run directories ([`RunDir`]) of this user whose owner marker matches
///   their name and whose owner, pid *and* start time, is no longer running
///   (a reused pid does not keep a dead run's directory);
/// - capture files of earlier versions (`pktio-bench-<pid>-<tool>.pcap`)
///   of this user whose pid no process has.
///
/// Nothing of another user, no symlink, nothing of a live run is touched.
fn remove_dead_runs(parent: &std::path::Path) -> Vec<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    let alive = |pid: u32, start: u64| process_start_time(pid) == Some(start);
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(parent) else {
        return removed;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let Ok(m) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if m.uid() != me {
            continue;
        }
        if m.is_dir() {
            let Some((pid, start)) = run_dir_owner(&name) else {
                continue;
            };
            if alive(pid, start) {
                continue;
            }
            let marker = std::fs::read_to_string(path.join(RUN_DIR_OWNER)).ok();
            let gone = if marker.as_deref().map(str::trim) == Some(&format!("pktio {pid} {start}"))
            {
                std::fs::remove_dir_all(&path).is_ok()
            } else {
                // Died between mkdir and the marker: empty, or not ours.
                marker.is_none() && std::fs::remove_dir(&path).is_ok()
            };
            if gone {
                removed.push(path);
            }
        } else if m.is_file() {
            let Some(pid) = name
                .strip_prefix("pktio-bench-")
                .filter(|_| name.ends_with(".pcap"))
                .and_then(|r| r.split_once('-'))
                .and_then(|(pid, _)| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if !std::path::Path::new(&format!("/proc/{pid}")).exists()
                && std::fs::remove_file(&path).is_ok()
            {
                removed.push(path);
            }
        }
    }
    removed
}

/// The file system type of the mount at `dir` (the last one mounted there)
/// in a `/proc/self/mounts` text.
fn fs_type_of<'m>(mounts: &'m str, dir: &str) -> Option<&'m str> {
    mounts.lines().rev().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_, at, fs) = (f.next()?, f.next()?, f.next()?);
        (at == dir).then_some(fs)
    })
}

/// A capture tool the benchmark runs as a child process in the lab's rx
/// namespace, writing everything it captures to `/dev/null` or to tmpfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureTool {
    /// `pktio capture --steal --frames 32768` (the filter in the XDP
    /// program, AF_XDP, taking the packets; 128 MiB UMEM; `--spin` unless a
    /// NAPI thread shares the core).
    PktioXdp,
    /// `pktio capture --backend packet` (TPACKET_V3, classic BPF).
    PktioV3,
    /// `tcpdump -w /dev/null` (libpcap, TPACKET_V3).
    Tcpdump,
    /// `netsniff-ng --out /dev/null -S 64MiB` (TPACKET_V3).
    Netsniff,
}

impl CaptureTool {
    /// The row name.
    pub fn name(self) -> &'static str {
        match self {
            CaptureTool::PktioXdp => "xdp",
            CaptureTool::PktioV3 => "v3",
            CaptureTool::Tcpdump => "tcpdump",
            CaptureTool::Netsniff => "netsniff-ng",
        }
    }

    /// The installed peers among tcpdump and netsniff-ng; the missing ones
    /// go to `notes`.
    pub fn peers(notes: &mut Vec<String>) -> Vec<CaptureTool> {
        let mut v = Vec::new();
        for (t, bin, pkg) in [
            (CaptureTool::Tcpdump, "tcpdump", "tcpdump"),
            (CaptureTool::Netsniff, "netsniff-ng", "netsniff-ng"),
        ] {
            if installed(bin, pkg, notes) {
                v.push(t);
            }
        }
        v
    }
}

/// Spawns `cmd` on `cpu` (a child starts with the CPU affinity of the
/// thread that spawns it): this thread is pinned for the spawn, then given
/// its own affinity back. The spawn is on this thread, not on a helper
/// that ends, because the child's parent-death signal
/// ([`pktio_lab::die_with_parent`]) fires when the spawning thread exits.
fn spawn_pinned(cmd: &mut std::process::Command, cpu: usize) -> anyhow::Result<Child> {
    let saved = pktio_host::cpu::affinity(None).context("sched_getaffinity")?;
    crate::run::pin_to_cpu(cpu)?;
    let child = cmd.spawn();
    if let Err(e) = pktio_host::cpu::set_affinity(None, &saved) {
        eprintln!("pktio: warning: cannot restore this thread's CPU affinity: {e}");
    }
    Ok(child?)
}

/// The number in a line like "1234 packets captured" / "   1234  packets incoming".
fn count_before(out: &str, words: &str) -> Option<u64> {
    out.lines().rev().find_map(|l| {
        let l = l.trim_matches(|c: char| c == '\r' || c.is_whitespace());
        let rest = l.find(words)?;
        l[..rest].split_whitespace().last()?.parse().ok()
    })
}

/// Runs one capture cell: the tool on the rx end (pinned to `cpu`), the
/// lab's generator on the gen end. The rate is what the tool captured between
/// the moment it said it was ready and the moment it was asked to stop.
#[allow(clippy::too_many_arguments)]
pub fn measure_capture(
    lab: &Lab,
    gen: &GenPlan,
    tool: CaptureTool,
    dest: CaptureDest,
    size: u32,
    (cpu, gen_cpu): (usize, usize),
    rate: Option<f64>,
    warmup: f64,
    seconds: f64,
) -> Result<RunResult, CellError> {
    let rx = lab.rx();
    let stop = crate::run::stop_flag();
    let file = dest.path(tool)?;
    let napi = crate::bench::napi::threads_of(rx);
    let out_path = file.path.to_string_lossy().into_owned();
    // The tools that read through the stack need a NAPI instance on the veth
    // for the generator's XDP_TX frames; pktio's XDP program gives it one.
    let gro = tool != CaptureTool::PktioXdp;
    if gro {
        rx.set_gro(true)?;
    }
    let exe = std::env::current_exe().context("finding the pktio binary")?;
    let (program, args): (std::ffi::OsString, Vec<String>) = match tool {
        CaptureTool::PktioXdp | CaptureTool::PktioV3 => (
            exe.into_os_string(),
            vec![
                "capture".into(),
                "-i".into(),
                rx.ifname().into(),
                "-w".into(),
                out_path.clone(),
            ]
            .into_iter()
            .chain(
                // AF_XDP: a 128 MiB UMEM, whose 16384-entry RX ring rides
                // out the writer's stalls; spinning (no wake-up latency)
                // unless a NAPI thread shares the core, which it would starve.
                (tool == CaptureTool::PktioXdp)
                    .then(|| {
                        let spin = napi.is_empty().then(|| "--spin".into());
                        spin.into_iter().chain([
                            "--steal".into(),
                            "--frames".into(),
                            "32768".into(),
                        ])
                    })
                    .into_iter()
                    .flatten(),
            )
            .collect(),
        ),
        CaptureTool::Tcpdump => (
            "tcpdump".into(),
            vec![
                "-i".into(),
                rx.ifname().into(),
                // Stay root: Debian's tcpdump drops to user tcpdump, which
                // could not write into the run's 0700 directory, and the
                // change of user would clear its parent-death signal.
                "-Z".into(),
                "root".into(),
                "-n".into(),
                "-w".into(),
                out_path.clone(),
            ],
        ),
        CaptureTool::Netsniff => (
            "netsniff-ng".into(),
            vec![
                "--in".into(),
                rx.ifname().into(),
                "--out".into(),
                out_path.clone(),
                "-S".into(),
                "64MiB".into(),
            ],
        ),
    };
    let gen_stop = Arc::new(AtomicBool::new(false));
    let g = start_generator(lab, gen, size, gen_cpu, rate, gen_stop.clone())?;
    let progress = g.progress.clone();
    let result = (|| -> Result<RunResult, CellError> {
        sleep_window(warmup / 2.0, &stop)?;
        let mut cmd = rx.command(&program);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child =
            spawn_pinned(&mut cmd, cpu).with_context(|| format!("starting {}", tool.name()))?;
        let mut child = child;
        let (out, readers) = collect_output(&mut child);
        let pid = child.id();
        let (t_spawn, o_spawn, h_spawn) = (Instant::now(), progress.frames(), progress.held_back());
        // On Ctrl-C/SIGTERM the tool is stopped as after a full window, and
        // the cell gives no figure.
        let mut full = sleep_window(warmup / 2.0, &stop).is_ok();
        if let Ok(Some(st)) = child.try_wait() {
            for r in readers {
                let _ = r.join();
            }
            let o = out.lock().map(|s| s.clone()).unwrap_or_default();
            return Err(CellError::Failed(anyhow::anyhow!(
                "{} exited early ({st}):\n{}",
                tool.name(),
                tail(&o)
            )));
        }
        let (c0, s0, g0) = (
            process_cpu_ns(pid),
            crate::bench::napi::receive_work_ns(cpu, &napi),
            CpuTimes::now(gen_cpu),
        );
        full = full && sleep_window(seconds, &stop).is_ok();
        let (c1, s1, g1) = (
            process_cpu_ns(pid),
            crate::bench::napi::receive_work_ns(cpu, &napi),
            CpuTimes::now(gen_cpu),
        );
        // SIGINT: every tool prints its counters and closes its file.
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).context("child pid")?,
            rustix::process::Signal::INT,
        );
        let t1 = Instant::now();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end && !matches!(child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !matches!(child.try_wait(), Ok(Some(_))) {
            let _ = child.kill();
            let _ = child.wait();
        }
        for r in readers {
            let _ = r.join();
        }
        if !full {
            return Err(Stopped.into());
        }
        let o = out.lock().map(|s| s.clone()).unwrap_or_default();
        let captured = match tool {
            // netsniff-ng: "packets incoming" is its poll counter; what it
            // wrote is "packets passed filter".
            CaptureTool::Netsniff => count_before(&o, "packets passed filter"),
            _ => count_before(&o, "packets captured"),
        };
        // Each tool's count of what the kernel dropped for lack of ring room
        // (PACKET_STATISTICS / XDP_STATISTICS, as the tool reports it).
        let dropped = match tool {
            CaptureTool::Tcpdump => count_before(&o, "packets dropped by kernel"),
            CaptureTool::Netsniff => count_before(&o, "packets failed filter (out of space)"),
            CaptureTool::PktioXdp | CaptureTool::PktioV3 => {
                count_before(&o, "packets dropped by the socket")
            }
        };
        let Some(captured) = captured else {
            return Err(CellError::Failed(anyhow::anyhow!(
                "{} printed no packet count:\n{}",
                tool.name(),
                tail(&o)
            )));
        };
        // The tools print one total: the rate is over the whole life of the
        // child, start-up included (the same for every tool; a slow start
        // costs the tool that has it). The CPU cost is over the window.
        let life = t1.duration_since(t_spawn).as_secs_f64();
        let pps = captured as f64 / life;
        let offered = progress.frames().saturating_sub(o_spawn) as f64 / life;
        let cpu_ns = c1.saturating_sub(c0) + s1.saturating_sub(s0);
        let in_window = pps * seconds;
        Ok(RunResult {
            pps,
            offered_pps: Some(offered),
            held_back: progress.held_back() > h_spawn,
            gen_cpu_pct: busy_pct(g0, g1),
            drops_pct: dropped.map(|d| {
                if d + captured > 0 {
                    100.0 * d as f64 / (d + captured) as f64
                } else {
                    0.0
                }
            }),
            ns_per_packet: if in_window > 0.0 {
                cpu_ns as f64 / in_window
            } else {
                0.0
            },
            queue_pps: Vec::new(),
        })
    })();
    gen_stop.store(true, Ordering::SeqCst);
    let g = join_generator(g);
    if gro {
        rx.set_gro(false)?;
    }
    g?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory standing in for /dev/shm.
    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("pktio-{name}-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A run directory as a run of (pid, start) would leave it.
    fn left_by(parent: &std::path::Path, pid: u32, start: u64) -> std::path::PathBuf {
        let d = parent.join(format!("pktio-{pid}-{start}"));
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("owner"), format!("pktio {pid} {start}\n")).unwrap();
        std::fs::write(d.join("tcpdump.pcap"), [0u8; 4096]).unwrap();
        d
    }

    #[test]
    fn dead_runs_directories_go_and_live_ones_stay() {
        let parent = scratch("shm");
        let me = std::process::id();
        let my_start = process_start_time(me).unwrap();
        // A pid that no longer runs: a child we started and reaped.
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let dead = c.id();
        c.wait().unwrap();
        let dead_run = left_by(&parent, dead, 12345);
        // A live pid whose start time is not the owner's: the pid was reused.
        let reused = left_by(&parent, me, my_start + 1);
        // This very run: alive.
        let live = left_by(&parent, me, my_start);
        // An older version's capture file of a dead pid, and an unrelated file.
        let legacy = parent.join(format!("pktio-bench-{dead}-tcpdump.pcap"));
        std::fs::write(&legacy, b"x").unwrap();
        let other = parent.join("pktio-notes");
        std::fs::write(&other, b"x").unwrap();
        // A directory whose marker names someone else: not a run directory of ours.
        let forged = parent.join(format!("pktio-{dead}-7"));
        std::fs::create_dir(&forged).unwrap();
        std::fs::write(forged.join("owner"), "pktio 1 1\n").unwrap();

        let mut removed = remove_dead_runs(&parent);
        removed.sort();
        let mut want = vec![dead_run.clone(), reused.clone(), legacy.clone()];
        want.sort();
        assert_eq!(removed, want);
        for gone in [&dead_run, &reused, &legacy] {
            assert!(!gone.exists(), "{} is still there", gone.display());
        }
        for kept in [&live, &other, &forged] {
            assert!(kept.exists(), "{} was removed", kept.display());
        }
        std::fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn a_run_directory_is_private_marked_and_removed_on_drop() {
        use std::os::unix::fs::PermissionsExt;
        let parent = scratch("rundir");
        let dir = RunDir::create(&parent).unwrap();
        let path = dir.path().to_path_buf();
        let me = std::process::id();
        assert_eq!(
            run_dir_owner(&path.file_name().unwrap().to_string_lossy()),
            Some((me, process_start_time(me).unwrap()))
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::write(path.join("xdp.pcap"), b"x").unwrap();
        // Its owner is alive: the next run leaves it alone.
        assert!(remove_dead_runs(&parent).is_empty());
        drop(dir);
        assert!(!path.exists());
        std::fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn finds_the_file_system_of_a_mount_point() {
        let m = "proc /proc proc rw 0 0\nshm /dev/shm ext4 rw 0 0\ntmpfs /dev/shm tmpfs rw,size=1k 0 0\n/dev/vda / ext4 rw 0 0\n";
        // The last mount over a directory is the one in use.
        assert_eq!(fs_type_of(m, "/dev/shm"), Some("tmpfs"));
        assert_eq!(fs_type_of(m, "/"), Some("ext4"));
        assert_eq!(fs_type_of(m, "/dev"), None);
    }

    #[test]
    fn reads_each_tools_drop_count() {
        let tcpdump = "300002 packets captured\n300002 packets received by filter\n17 packets dropped by kernel\n";
        assert_eq!(count_before(tcpdump, "packets dropped by kernel"), Some(17));
        let netsniff = "\r      300006  packets passed filter\r\n\r           5  packets failed filter (out of space)\r\n\r      0.0000% packet droprate\r\n";
        assert_eq!(
            count_before(netsniff, "packets passed filter"),
            Some(300006)
        );
        assert_eq!(
            count_before(netsniff, "packets failed filter (out of space)"),
            Some(5)
        );
        let pktio = "300000 packets captured\n3 packets dropped by the socket (ring full, PACKET_STATISTICS)\n";
        assert_eq!(
            count_before(pktio, "packets dropped by the socket"),
            Some(3)
        );
    }
}
