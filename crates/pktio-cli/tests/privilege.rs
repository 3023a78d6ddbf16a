//! Least privilege: recipe 2 of `docs/CAPABILITIES.md` (file capabilities
//! for the members of one group), run as written there on a copy of the
//! binary with a throw-away group, keeps every other user out and gives
//! the members exactly the capabilities it names.
//!
//! Needs root (skipped visibly without the capabilities), and `setcap`
//! (libcap2-bin), `setpriv` (util-linux) and `groupadd`/`groupdel`
//! (passwd): without one of those it fails, naming the package.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

mod cli_support;
use cli_support::{require_tool, text};

const DOC: &str = include_str!("../../../docs/CAPABILITIES.md");

/// The marker above the recipe's code block in the document.
const MARKER: &str = "<!-- recipe: run by crates/pktio-cli/tests/privilege.rs";

/// The recipe's commands: the lines of the `sh` block after [`MARKER`],
/// without the first (which sets `PKTIO` and `GROUP`, given here instead)
/// and without `usermod` (the test runs as `nobody` with the group given
/// by `setpriv`, not as a user added to it).
fn recipe() -> Vec<String> {
    let at = DOC
        .find(MARKER)
        .expect("docs/CAPABILITIES.md has no recipe marker");
    let block = DOC[at..]
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("no ```sh block after the recipe marker");
    let lines: Vec<&str> = block.lines().collect();
    assert!(
        lines[0].starts_with("PKTIO=") && lines[0].contains("GROUP="),
        "the recipe's first line sets PKTIO and GROUP: {}",
        lines[0]
    );
    lines[1..]
        .iter()
        .filter(|l| !l.contains("usermod"))
        .map(|l| l.to_string())
        .collect()
}

/// The capabilities the recipe's `setcap` grants, as `CapEff` bits.
fn recipe_caps(recipe: &[String]) -> u64 {
    let line = recipe
        .iter()
        .find(|l| l.contains("setcap "))
        .expect("the recipe runs setcap");
    let spec = line
        .split_whitespace()
        .find(|w| w.starts_with("cap_"))
        .expect("setcap names capabilities");
    let (names, flags) = spec.split_once(['+', '=']).expect("cap_x,...+ep");
    assert!(
        flags.contains('e') && flags.contains('p'),
        "setcap {spec}: effective and permitted"
    );
    names
        .split(',')
        .map(|n| match n {
            "cap_net_admin" => 1u64 << 12,
            "cap_net_raw" => 1 << 13,
            "cap_ipc_lock" => 1 << 14,
            "cap_sys_admin" => 1 << 21,
            "cap_perfmon" => 1 << 38,
            "cap_bpf" => 1 << 39,
            other => panic!("the recipe grants {other}: add its bit here"),
        })
        .fold(0, |a, b| a | b)
}

/// The group and the directory the test makes, removed on drop (also when
/// the test fails).
struct Made {
    group: String,
    dir: PathBuf,
}

impl Drop for Made {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = Command::new("groupdel")
            .arg(&self.group)
            .stderr(Stdio::null())
            .status();
    }
}

/// The gid of `group`, from `getent group`.
fn gid_of(group: &str) -> u32 {
    let o = Command::new("getent")
        .args(["group", group])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&o.stdout).into_owned();
    line.split(':')
        .nth(2)
        .and_then(|g| g.trim().parse().ok())
        .unwrap_or_else(|| panic!("no gid for group {group}: {line:?}"))
}

/// `setpriv` arguments running a command as `nobody`, with `groups` as its
/// only supplementary groups (none: `--clear-groups`), through a shell as
/// a user would: setpriv itself keeps root's capabilities until its own
/// `execve` (to apply its capability options), which would let it execute
/// what `nobody` may not; the shell it starts has none left.
fn as_nobody(groups: Option<u32>) -> Vec<String> {
    let mut v = vec!["--reuid=65534".into(), "--regid=65534".into()];
    v.push(match groups {
        Some(g) => format!("--groups={g}"),
        None => "--clear-groups".into(),
    });
    v.extend(["--", "sh", "-c", "exec \"$0\" \"$@\""].map(String::from));
    v
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap()
}

/// The `CapEff` of process `pid`, once it runs `exe` (setpriv execs it).
fn cap_eff_once_running(child: &mut Child, exe: &Path) -> Option<u64> {
    let pid = child.id();
    let running = pktio_lab::wait::poll(Duration::from_secs(10), || {
        if child.try_wait().ok().flatten().is_some() {
            return Some(false);
        }
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|e| e == exe)
            .then_some(true)
    });
    if running != Some(true) {
        return None;
    }
    pktio_host::caps::of_process(pid).ok().map(|set| set.0)
}

#[test]
fn the_group_recipe_keeps_others_out_and_gives_members_exactly_its_capabilities() {
    pktio_lab::require_root!();
    for (tool, package) in [
        ("setcap", "libcap2-bin"),
        ("setpriv", "util-linux"),
        ("groupadd", "passwd"),
        ("groupdel", "passwd"),
    ] {
        require_tool(tool, package);
    }
    let recipe = recipe();
    let want_caps = recipe_caps(&recipe);
    let pid = std::process::id();
    let made = Made {
        group: format!("pktio-t{pid}"),
        dir: std::env::temp_dir().join(format!("pktio-privilege-{pid}")),
    };
    let _ = std::fs::remove_dir_all(&made.dir);
    // Traversable by everyone, so that only the binary's own mode decides.
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&made.dir)
        .unwrap();
    std::fs::set_permissions(&made.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = made.dir.join("pktio");
    std::fs::copy(env!("CARGO_BIN_EXE_pktio"), &exe).unwrap();

    // The recipe, as written, with `sudo` a no-op (the test is root).
    let script = format!("sudo() {{ \"$@\"; }}\n{}\n", recipe.join("\n"));
    let o = run(Command::new("sh")
        .args(["-ec", &script])
        .env("PKTIO", &exe)
        .env("GROUP", &made.group));
    assert!(o.status.success(), "the recipe failed: {}", text(&o));
    let mode = std::fs::metadata(&exe).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o750, "mode after the recipe: {mode:o}");
    let gid = gid_of(&made.group);

    // Outside the group: the kernel refuses execve (EACCES).
    let o = run(Command::new("setpriv")
        .args(as_nobody(None))
        .arg(&exe)
        .arg("--version"));
    assert!(!o.status.success(), "nobody ran it: {}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Permission denied"), "{}", text(&o));
    eprintln!("outside the group: {} ({})", err.trim(), o.status);
    assert!(o.stdout.is_empty(), "{}", text(&o));

    // In the group: it runs.
    let o = run(Command::new("setpriv")
        .args(as_nobody(Some(gid)))
        .arg(&exe)
        .arg("--version"));
    assert!(
        o.status.success(),
        "a member could not run it: {}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("pktio"),
        "{}",
        text(&o)
    );

    // With exactly the recipe's capabilities: a member's running pktio
    // (`doctor --watch`, which needs none and runs until stopped).
    let mut child = Command::new("setpriv")
        .args(as_nobody(Some(gid)))
        .arg(&exe)
        .args(["doctor", "--watch", "0.5", "-i", "lo"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let caps = cap_eff_once_running(&mut child, &exe);
    // Our own child, by its pid.
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let caps = caps.unwrap_or_else(|| panic!("pktio did not run: {}", text(&out)));
    assert_eq!(
        caps, want_caps,
        "CapEff {caps:016x}, the recipe grants {want_caps:016x}"
    );
}
