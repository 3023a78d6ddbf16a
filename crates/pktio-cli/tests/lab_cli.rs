//! `pktio lab up | status | exec | down` through the built binary (needs
//! root; skips visibly otherwise).

use std::process::{Command, Output};

fn pktio(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pktio"))
        .args(args)
        .output()
        .expect("the pktio binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Removes the lab if the test fails half-way.
struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = pktio_lab::Lab::destroy_persistent(&self.0);
    }
}

#[test]
fn lab_up_status_exec_down() {
    pktio_lab::require_root!();
    let name = format!("cli{}", std::process::id());
    let _cleanup = Cleanup(name.clone());
    let n = name.as_str();

    let out = pktio(&["lab", "up", "--name", n, "--queues", "2", "--gro"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for want in [
        format!("lab `{n}` is up"),
        format!("namespace {n}-gen (/run/netns/{n}-gen)"),
        format!("namespace {n}-rx (/run/netns/{n}-rx)"),
        "interface vgen".into(),
        "interface vrx".into(),
        "198.18.0.1/24, mac 02:00:c6:12:00:01".into(),
        "198.18.0.2/24, mac 02:00:c6:12:00:02".into(),
        "2 rx / 2 tx queues".into(),
        format!("pktio lab down --name {n}"),
    ] {
        assert!(stdout.contains(&want), "missing {want:?} in:\n{stdout}");
    }
    assert!(std::path::Path::new(&format!("/run/netns/{n}-gen")).exists());

    let again = pktio(&["lab", "up", "--name", n]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("already up"), "{again:?}");

    let st = pktio(&["lab", "status", "--name", n]);
    assert_eq!(st.status.code(), Some(0), "{st:?}");
    let s = text(&st.stdout);
    assert!(s.contains("vrx  counters: rx 0 packets"), "{s}");
    assert!(s.contains("gro on"), "{s}");

    // exec: runs in the namespace, exit status passed through.
    let ex = pktio(&[
        "lab",
        "exec",
        "rx",
        "--name",
        n,
        "--",
        "sh",
        "-c",
        "cat /proc/net/dev; ls /sys/class/net; exit 7",
    ]);
    assert_eq!(ex.status.code(), Some(7), "{ex:?}");
    let e = text(&ex.stdout);
    assert!(e.contains("vrx") && !e.contains("vgen"), "{e}");
    let killed = pktio(&["lab", "exec", "gen", "--name", n, "sh", "-c", "kill -9 $$"]);
    assert_eq!(killed.status.code(), Some(128 + 9), "{killed:?}");
    let missing = pktio(&["lab", "exec", "gen", "--name", n, "--", "/nonexistent/tool"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("/nonexistent/tool"),
        "{missing:?}"
    );

    let down = pktio(&["lab", "down", "--name", n]);
    assert!(down.status.success(), "{down:?}");
    assert!(!std::path::Path::new(&format!("/run/netns/{n}-gen")).exists());
    assert!(!std::path::Path::new(&format!("/run/netns/{n}-rx")).exists());

    let st = pktio(&["lab", "status", "--name", n]);
    assert_eq!(st.status.code(), Some(3), "{st:?}");
    assert!(text(&st.stdout).contains("is not up"), "{st:?}");
    let down = pktio(&["lab", "down", "--name", n]);
    assert_eq!(down.status.code(), Some(1));
    assert!(text(&down.stderr).contains("not up"), "{down:?}");
    let ex = pktio(&["lab", "exec", "rx", "--name", n, "--", "true"]);
    assert_eq!(ex.status.code(), Some(1));
    assert!(text(&ex.stderr).contains("not up"), "{ex:?}");
}

#[test]
fn lab_rejects_bad_input() {
    // Argument errors come from clap before any privilege check.
    let q = pktio(&["lab", "up", "--queues", "0"]);
    assert_eq!(q.status.code(), Some(2), "{q:?}");
    let side = pktio(&["lab", "exec", "middle", "--", "true"]);
    assert_eq!(side.status.code(), Some(2), "{side:?}");
    let nocmd = pktio(&["lab", "exec", "rx"]);
    assert_eq!(nocmd.status.code(), Some(2), "{nocmd:?}");
    pktio_lab::require_root!();
    let bad = pktio(&["lab", "status", "--name", "a/b"]);
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    assert!(text(&bad.stderr).contains("bad lab name"), "{bad:?}");
}
