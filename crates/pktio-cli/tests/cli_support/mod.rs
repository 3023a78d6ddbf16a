//! What the CLI test binaries share: the binary, an output's text for
//! failure messages, and reading a number out of a summary line. Each test
//! binary uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::process::Signal;

pub mod schema;

/// The `pktio` binary under test.
pub fn pktio() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pktio"))
}

/// Status, stdout and stderr of `o`, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The first number after `key` in `s`.
pub fn number_after(s: &str, key: &str) -> Option<u64> {
    let rest = &s[s.find(key)? + key.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .find(|t| !t.is_empty())?
        .parse()
        .ok()
}

/// Bound on waiting for a child to get somewhere or to end: a hang fails
/// the test instead of blocking the suite (not a timing assertion).
pub const LIMIT: Duration = Duration::from_secs(60);

/// A running child whose stderr (and stdout, when piped) are collected as
/// it prints them, so a test can wait for what it printed instead of
/// sleeping. Killed on drop if it still runs (a failed test leaves no child
/// behind, nor the lab namespaces it would keep alive).
pub struct Watched {
    /// The child.
    pub child: Child,
    what: String,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    /// The threads reading stderr and stdout; done once the child has
    /// exited and closed them.
    readers: Vec<JoinHandle<()>>,
}

/// How a child ended.
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The exit code (`None` when a signal ended the child).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Status, stdout and stderr, for assertion messages.
    pub fn text(&self) -> String {
        format!(
            "status {:?}\nstdout:\n{}\nstderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Appends what `pipe` gives, line by line, to the returned text, on a
/// thread that ends when the pipe closes.
fn collect(pipe: impl Read + Send + 'static) -> (Arc<Mutex<String>>, JoinHandle<()>) {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    let reader = std::thread::spawn(move || {
        let mut pipe = BufReader::new(pipe);
        let mut line = Vec::new();
        while matches!(pipe.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&line));
            line.clear();
        }
    });
    (text, reader)
}

impl Watched {
    /// Starts `cmd` with stdout and stderr piped and collected.
    pub fn start(cmd: Command) -> Watched {
        Watched::start_to(cmd, Stdio::piped())
    }

    /// Starts `cmd` with its stdout going to `stdout` (collected if piped).
    pub fn start_to(mut cmd: Command, stdout: Stdio) -> Watched {
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
        let (stderr, err_reader) = collect(child.stderr.take().expect("piped stderr"));
        let mut readers = vec![err_reader];
        let stdout = match child.stdout.take() {
            Some(out) => {
                let (text, out_reader) = collect(out);
                readers.push(out_reader);
                text
            }
            None => Arc::default(),
        };
        Watched {
            child,
            what,
            stderr,
            stdout,
            readers,
        }
    }

    /// What it printed on stderr so far.
    pub fn stderr_now(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// What it printed on stdout so far.
    pub fn stdout_now(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits until `cond` holds for the child (what it printed so far);
    /// panics naming `what` if the child ends first or [`LIMIT`] passes.
    pub fn wait_until(&mut self, what: &str, cond: impl Fn(&Watched) -> bool) {
        self.wait_until_within(LIMIT, what, cond);
    }

    /// [`Watched::wait_until`] with another bound than [`LIMIT`].
    pub fn wait_until_within(
        &mut self,
        limit: Duration,
        what: &str,
        cond: impl Fn(&Watched) -> bool,
    ) {
        let held = pktio_lab::wait::poll(limit, || {
            if cond(self) {
                return Some(true);
            }
            self.exited().then_some(false)
        });
        match held {
            Some(true) => {}
            Some(false) => panic!("{} ended before {what}: {}", self.what, self.stderr_now()),
            None => panic!("{}: no {what}: {}", self.what, self.stderr_now()),
        }
    }

    /// Waits until stderr contains `needle`; panics if the child ends first.
    pub fn wait_for(&mut self, needle: &str) {
        self.wait_until(&format!("{needle:?} on stderr"), |r| {
            r.stderr_now().contains(needle)
        });
    }

    /// Waits until the child catches SIGINT and SIGTERM (`SigCgt` in
    /// `/proc/<pid>/status`): from then on a signal stops it cleanly.
    pub fn wait_for_handlers(&mut self) {
        self.wait_until("SIGINT and SIGTERM handlers", |r| {
            let status = std::fs::read_to_string(format!("/proc/{}/status", r.child.id()))
                .unwrap_or_default();
            let caught = pktio_host::procfs::status_field(&status, "SigCgt")
                .and_then(|v| u64::from_str_radix(v, 16).ok())
                .unwrap_or(0);
            let want = (1u64 << (libc::SIGINT - 1)) | (1u64 << (libc::SIGTERM - 1));
            caught & want == want
        });
    }

    /// Sends `sig` to the child.
    pub fn signal(&self, sig: Signal) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, sig)
            .unwrap_or_else(|e| panic!("kill {}: {e}", self.what));
    }

    /// Waits up to `limit` for the child to exit: its status and the time
    /// it took, or `None` (after killing it) if it did not.
    pub fn exit_within(&mut self, limit: Duration) -> Option<(ExitStatus, Duration)> {
        let t0 = Instant::now();
        let status = pktio_lab::wait::poll(limit, || self.child.try_wait().unwrap());
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        status.map(|st| (st, t0.elapsed()))
    }

    /// Waits for the end (killing the child and failing if it takes more
    /// than [`LIMIT`]) and collects all it printed.
    pub fn finish(&mut self) -> Outcome {
        let Some((status, _)) = self.exit_within(LIMIT) else {
            panic!("{} did not end: {}", self.what, self.stderr_now());
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Outcome {
            status,
            stdout: self.stdout_now(),
            stderr: self.stderr_now(),
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Fails the test when `tool` cannot be run, naming the Debian `package`
/// that has it: a missing tool is not a reason to skip (CI installs the
/// ones it lacks, see `.ci/run`; the rest come with every Debian system).
pub fn require_tool(tool: &str, package: &str) {
    let ran = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(e) = ran {
        panic!("{tool} does not run ({e}): apt-get install {package}");
    }
}
