//! A child started through [`pktio_lab::die_with_parent`] or
//! [`pktio_lab::Host::command`] does not outlive its parent, even when the
//! parent is killed with `SIGKILL` (no cleanup code of its own runs).
//!
//! The parent is this test binary, run again with `PKTIO_LAB_TEST_PARENT`
//! set: it starts `sleep 1000`, prints the sleeper's pid and waits to be
//! killed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const PARENT: &str = "PKTIO_LAB_TEST_PARENT";

/// In the re-run test binary: start the sleeper the way `how` says, print
/// its pid, then wait for the SIGKILL.
fn be_the_parent(how: &str) {
    let mut lab = None;
    let mut cmd = match how {
        "helper" => {
            let mut c = Command::new("sleep");
            pktio_lab::die_with_parent(&mut c);
            c
        }
        _ => lab
            .insert(pktio_lab::Lab::new().unwrap())
            .rx()
            .command("sleep"),
    };
    // Not on our stdout: the test reads that pipe until the pid comes.
    let mut child = cmd
        .arg("1000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    println!("sleeper {}", child.id());
    // Killed with SIGKILL while waiting here.
    let _ = child.wait();
    unreachable!("sleep 1000 ended before its parent was killed");
}

/// Whether `pid` is a live `sleep` (not gone, not a zombie).
fn sleeper_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
    stat.contains("(sleep)") && state != Some(Some('Z'))
}

/// Runs this test again as the parent, kills it with SIGKILL once the
/// sleeper runs, and checks the sleeper is gone within 5 s.
fn sleeper_dies_with_its_parent(test: &str, how: &str) {
    if std::env::var_os(PARENT).is_some() {
        return be_the_parent(how);
    }
    let mut parent = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(PARENT, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = BufReader::new(parent.stdout.take().unwrap());
    let sleeper: Option<u32> = out
        .lines()
        .map_while(Result::ok)
        // libtest's "test NAME ... " has no newline yet: the pid follows it.
        .find_map(|l| {
            l.split_once("sleeper ")
                .and_then(|(_, p)| p.trim().parse().ok())
        });
    // Our own child, by its pid.
    let _ = parent.kill();
    let _ = parent.wait();
    let sleeper = sleeper.expect("the parent printed no sleeper pid");
    assert!(sleeper > 0);
    let gone = pktio_lab::wait::poll(Duration::from_secs(5), || {
        (!sleeper_alive(sleeper)).then_some(())
    });
    let alive = gone.is_none();
    if alive {
        // Our grandchild, by its pid: leave nothing behind.
        let _ = Command::new("kill")
            .args(["-KILL", &sleeper.to_string()])
            .status();
    }
    assert!(
        !alive,
        "sleep (pid {sleeper}) outlived its SIGKILLed parent by 5 s ({how})"
    );
}

#[test]
fn a_plain_command_dies_with_its_killed_parent() {
    sleeper_dies_with_its_parent("a_plain_command_dies_with_its_killed_parent", "helper");
}

#[test]
fn a_lab_command_dies_with_its_killed_parent() {
    pktio_lab::require_root!();
    sleeper_dies_with_its_parent("a_lab_command_dies_with_its_killed_parent", "lab");
}
