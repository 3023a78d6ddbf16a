//! What the CLI test binaries share: the binary, an output's text for
//! failure messages, and reading a number out of a summary line. Each test
//! binary uses a part of it.
#![allow(dead_code)]

use std::process::{Command, Output};

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

/// A child whose stderr lines arrive on a channel as it prints them, so a
/// test can wait for a line instead of sleeping.
pub struct Watched {
    /// The child (stdout piped, read at the end by [`Watched::finish`]).
    pub child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every stderr line seen so far.
    pub seen: Vec<String>,
}

impl Watched {
    /// Starts `cmd` with stdout and stderr piped.
    pub fn start(mut cmd: Command) -> Watched {
        use std::io::BufRead;
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start pktio");
        let err = child.stderr.take().expect("piped stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Watched {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits up to `limit` for a stderr line containing `needle`; kills the
    /// child and panics with what it printed if none comes.
    pub fn wait_for(&mut self, needle: &str, limit: std::time::Duration) {
        let end = std::time::Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(needle);
                    self.seen.push(l);
                    if hit {
                        return;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "no stderr line with {needle:?} within {limit:?}; stderr:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    /// Sends `sig` to the child.
    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, sig).expect("signal pktio");
    }

    /// Waits up to `limit` for the child to exit: its status and the time
    /// it took, or `None` (after killing it) if it did not.
    pub fn exit_within(
        &mut self,
        limit: std::time::Duration,
    ) -> Option<(std::process::ExitStatus, std::time::Duration)> {
        let t0 = std::time::Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some((st, t0.elapsed()));
            }
            if t0.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// The rest of stderr after exit, joined with what was seen.
    pub fn stderr(&mut self) -> String {
        while let Ok(l) = self.lines.recv_timeout(std::time::Duration::from_secs(2)) {
            self.seen.push(l);
        }
        self.seen.join("\n")
    }
}

/// Fails the test when `tool` cannot be run, naming the Debian `package`
/// that has it: a missing tool is not a reason to skip (CI installs the
/// ones it lacks, see `.ci/run`; the rest come with every Debian system).
pub fn require_tool(tool: &str, package: &str) {
    let ran = Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if let Err(e) = ran {
        panic!("{tool} does not run ({e}): apt-get install {package}");
    }
}
