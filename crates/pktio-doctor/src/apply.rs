//! `--apply`: the safe fixes (sysctls under `/proc/sys`, RPS masks, ring
//! sizes through `ETHTOOL_MSG_RINGS_SET`) of every warning and problem.
//! A dry run by default: it shows before → after. With `yes` it makes the
//! changes (root only) and [`render`] gives the exact commands that undo them.

use std::collections::BTreeMap;

use serde::Serialize;

use pktio_host::netlink::ethtool::Ethtool;

use super::finding::{read_trim, sysctl_command, Action, Finding, Level};
use super::sysctl::{normalise, path};

/// The changes to make: actions of findings at `warn` or worse, one per
/// target; for the same sysctl the largest value wins.
pub fn plan(findings: &[Finding]) -> Vec<Action> {
    let mut by_target: BTreeMap<String, Action> = BTreeMap::new();
    for f in findings.iter().filter(|f| f.level >= Level::Warn) {
        let Some(a) = &f.action else { continue };
        let key = match a {
            Action::Sysctl { key, .. } => format!("sysctl {key}"),
            Action::RpsCpus { ifname, queue, .. } => format!("rps {ifname} {queue}"),
            Action::Rings { ifname, .. } => format!("rings {ifname}"),
        };
        let keep_old = match (by_target.get(&key), a) {
            (Some(Action::Sysctl { value: old, .. }), Action::Sysctl { value: new, .. }) => {
                match (old.parse::<u64>(), new.parse::<u64>()) {
                    (Ok(o), Ok(n)) => o >= n,
                    _ => false,
                }
            }
            _ => false,
        };
        if !keep_old {
            by_target.insert(key, a.clone());
        }
    }
    by_target.into_values().collect()
}

/// One change, made or planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What.
    pub target: String,
    /// The value now (before the change).
    pub before: Option<String>,
    /// The value it gets.
    pub after: String,
    /// The command that sets it back.
    pub revert: Option<String>,
    /// Whether it was changed in this run.
    pub applied: bool,
    /// Why it could not be read or changed.
    pub error: Option<String>,
    /// Not attempted: the target is read-only here (a global sysctl seen
    /// from a network namespace). Not counted as a failure.
    pub skipped: bool,
}

/// Whether a sysctl file has no write permission at all (net.core.rmem_max
/// and friends are read-only outside the initial network namespace).
fn read_only(path: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o222 == 0)
}

fn rps_path(ifname: &str, queue: u32) -> String {
    format!("/sys/class/net/{ifname}/queues/rx-{queue}/rps_cpus")
}

/// Reads the current value and describes the change (no side effects).
pub fn describe(a: &Action, eth: Option<&mut Ethtool>) -> Change {
    match a {
        Action::Sysctl { key, value } => {
            let before = read_trim(&path(key)).map(|v| normalise(&v));
            let ro = before.is_ok() && read_only(&path(key));
            Change {
                target: key.clone(),
                revert: before.as_ref().ok().map(|b| sysctl_command(key, b)),
                error: if ro {
                    Some(
                        "read-only in this network namespace (set it from the initial namespace)"
                            .into(),
                    )
                } else {
                    before.as_ref().err().map(|e| e.to_string())
                },
                before: before.ok(),
                after: value.clone(),
                applied: false,
                skipped: ro,
            }
        }
        Action::RpsCpus {
            ifname,
            queue,
            mask,
        } => {
            let p = rps_path(ifname, *queue);
            let before = read_trim(&p);
            Change {
                target: p.clone(),
                revert: before.as_ref().ok().map(|b| format!("echo {b} > {p}")),
                error: before.as_ref().err().map(|e| e.to_string()),
                before: before.ok(),
                after: mask.clone(),
                applied: false,
                skipped: false,
            }
        }
        Action::Rings {
            ifname,
            ifindex,
            rx,
            tx,
        } => {
            let target = format!("{ifname} rings");
            let after = format!("rx {} tx {}", opt(*rx), opt(*tx));
            match eth.map(|e| e.rings(*ifindex)) {
                Some(Ok(r)) => Change {
                    target,
                    before: Some(format!("rx {} tx {}", opt(r.rx), opt(r.tx))),
                    after,
                    revert: Some(
                        Action::Rings {
                            ifname: ifname.clone(),
                            ifindex: *ifindex,
                            rx: r.rx.filter(|_| rx.is_some()),
                            tx: r.tx.filter(|_| tx.is_some()),
                        }
                        .command(),
                    ),
                    applied: false,
                    error: None,
                    skipped: false,
                },
                Some(Err(e)) => Change {
                    target,
                    before: None,
                    after,
                    revert: None,
                    applied: false,
                    error: Some(e.to_string()),
                    skipped: false,
                },
                None => Change {
                    target,
                    before: None,
                    after,
                    revert: None,
                    applied: false,
                    error: Some("ethtool netlink is not available".into()),
                    skipped: false,
                },
            }
        }
    }
}

fn opt(v: Option<u32>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// Whether a described change would do nothing.
fn no_op(c: &Change) -> bool {
    c.before.as_deref() == Some(c.after.as_str())
}

/// Makes one change.
fn perform(a: &Action, eth: Option<&mut Ethtool>) -> std::io::Result<()> {
    match a {
        Action::Sysctl { key, value } => std::fs::write(path(key), format!("{value}\n")),
        Action::RpsCpus {
            ifname,
            queue,
            mask,
        } => std::fs::write(rps_path(ifname, *queue), format!("{mask}\n")),
        Action::Rings {
            ifindex, rx, tx, ..
        } => match eth {
            Some(e) => e.set_rings(*ifindex, *rx, *tx).map_err(Into::into),
            None => Err(std::io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
        },
    }
}

/// What `--apply` did or would do; serialised, the `--apply --json` document.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// True unless the changes were asked to be made.
    pub dry_run: bool,
    /// One per target, in plan order.
    pub changes: Vec<Change>,
    /// A change that was to be made failed or could not be tried.
    #[serde(skip)]
    pub failed: bool,
}

/// Plans the fixes of `findings` and, with `yes`, makes them.
///
/// # Errors
/// `yes` without root: nothing is changed and the error says so.
pub fn run(findings: &[Finding], yes: bool) -> anyhow::Result<Outcome> {
    let actions = plan(findings);
    if yes && !rustix::process::geteuid().is_root() {
        anyhow::bail!(
            "--apply --yes changes kernel settings and needs root; nothing was changed (run it with sudo, or drop --yes for a dry run)"
        );
    }
    let mut eth = Ethtool::open().ok();
    let mut changes = Vec::new();
    let mut failed = false;
    for a in &actions {
        let mut c = describe(a, eth.as_mut());
        if no_op(&c) {
            continue;
        }
        if yes && c.error.is_none() {
            match perform(a, eth.as_mut()) {
                Ok(()) => c.applied = true,
                Err(e) => {
                    failed = true;
                    c.error = Some(e.to_string());
                }
            }
        } else if yes && !c.skipped {
            failed = true;
        }
        changes.push(c);
    }
    Ok(Outcome {
        dry_run: !yes,
        changes,
        failed,
    })
}

/// The human-readable `--apply` output.
pub fn render(changes: &[Change], yes: bool) -> String {
    let mut out = String::new();
    if changes.is_empty() {
        out.push_str("Nothing to apply: no warning or problem has a safe automatic fix.\n");
        return out;
    }
    let w = changes.iter().map(|c| c.target.len()).max().unwrap_or(0);
    out.push_str(if yes {
        "Changes:\n"
    } else {
        "Dry run: nothing was changed. These changes would be made (run again with --apply --yes as root):\n"
    });
    for c in changes {
        let before = c.before.as_deref().unwrap_or("?");
        let status = match (&c.error, c.applied, yes) {
            (Some(e), _, _) if c.skipped => format!("   skipped: {e}"),
            (Some(e), _, _) => format!("   FAILED: {e}"),
            (None, true, _) => "   done".into(),
            _ => String::new(),
        };
        out.push_str(&format!(
            "  {:<w$}  {before} → {}{status}\n",
            c.target, c.after
        ));
    }
    let reverts: Vec<&str> = changes
        .iter()
        .filter(|c| c.applied || (!yes && c.error.is_none()))
        .filter_map(|c| c.revert.as_deref())
        .collect();
    if !reverts.is_empty() {
        out.push_str(if yes {
            "To revert:\n"
        } else {
            "To revert afterwards:\n"
        });
        for r in reverts {
            out.push_str(&format!("  {r}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::finding::Area;
    use super::*;

    fn sysctl(level: Level, key: &str, value: &str) -> Finding {
        Finding::new(Area::Stack, level, key, "", "").action(Action::Sysctl {
            key: key.into(),
            value: value.into(),
        })
    }

    #[test]
    fn plan_takes_warnings_and_problems_only_and_dedupes() {
        let fs = vec![
            sysctl(Level::Note, "net.core.busy_read", "50"),
            sysctl(Level::Warn, "net.core.netdev_budget", "600"),
            sysctl(Level::Warn, "net.core.netdev_budget", "300"),
            sysctl(Level::Problem, "net.core.rmem_max", "16777216"),
            Finding::new(Area::Nic, Level::Warn, "x", "", "").fix("ethtool -L eth0 combined 8"),
        ];
        let p = plan(&fs);
        assert_eq!(
            p,
            vec![
                Action::Sysctl {
                    key: "net.core.netdev_budget".into(),
                    value: "600".into()
                },
                Action::Sysctl {
                    key: "net.core.rmem_max".into(),
                    value: "16777216".into()
                },
            ]
        );
    }

    #[test]
    fn describe_reads_the_current_value_and_the_revert() {
        // dev_weight is readable everywhere /proc/sys/net/core exists.
        let a = Action::Sysctl {
            key: "net.core.somaxconn".into(),
            value: "8192".into(),
        };
        let c = describe(&a, None);
        match &c.before {
            Some(b) => assert_eq!(
                c.revert.as_deref(),
                Some(format!("sysctl -w net.core.somaxconn={b}").as_str())
            ),
            None => assert!(c.error.is_some()),
        }
        let missing = describe(
            &Action::Sysctl {
                key: "net.core.no_such_knob".into(),
                value: "1".into(),
            },
            None,
        );
        assert!(missing.error.is_some() && missing.revert.is_none());
    }

    #[test]
    fn render_dry_run_and_applied() {
        let c = Change {
            target: "net.core.rmem_max".into(),
            before: Some("4194304".into()),
            after: "16777216".into(),
            revert: Some("sysctl -w net.core.rmem_max=4194304".into()),
            applied: false,
            error: None,
            skipped: false,
        };
        let dry = render(std::slice::from_ref(&c), false);
        assert!(dry.starts_with("Dry run: nothing was changed."));
        assert!(dry.contains("net.core.rmem_max  4194304 → 16777216\n"));
        assert!(dry.contains("To revert afterwards:\n  sysctl -w net.core.rmem_max=4194304\n"));
        let done = render(
            &[Change {
                applied: true,
                ..c.clone()
            }],
            true,
        );
        assert!(done.contains("→ 16777216   done"));
        assert!(done.contains("To revert:\n  sysctl -w net.core.rmem_max=4194304\n"));
        let failed = render(
            &[Change {
                error: Some("Permission denied".into()),
                ..c.clone()
            }],
            true,
        );
        assert!(failed.contains("FAILED: Permission denied"));
        assert!(!failed.contains("To revert"));
        let skipped = render(
            &[Change {
                error: Some("read-only here".into()),
                skipped: true,
                ..c
            }],
            false,
        );
        assert!(skipped.contains("skipped: read-only here"));
        assert!(!skipped.contains("To revert"));
        assert!(render(&[], false).starts_with("Nothing to apply"));
    }

    #[test]
    fn no_op_changes_are_skipped() {
        let c = Change {
            target: "t".into(),
            before: Some("1".into()),
            after: "1".into(),
            revert: None,
            applied: false,
            error: None,
            skipped: false,
        };
        assert!(no_op(&c));
    }
}
