//! Sysctls read from `/proc/sys` (never by running `sysctl`), kept by dotted
//! name. Reading them all once keeps the checks pure; a fixture in
//! `sysctl -a` format stands in for a host in tests.

use std::collections::{BTreeMap, BTreeSet};

use super::finding::{Action, Finding};

use super::finding::{read_trim, Got, Unavailable};

/// Every sysctl the checks look at.
pub const KEYS: &[&str] = &[
    "net.core.netdev_budget",
    "net.core.netdev_budget_usecs",
    "net.core.dev_weight",
    "net.core.netdev_max_backlog",
    "net.core.default_qdisc",
    "net.core.rps_sock_flow_entries",
    "net.core.rmem_max",
    "net.core.wmem_max",
    "net.core.rmem_default",
    "net.core.wmem_default",
    "net.core.busy_read",
    "net.core.busy_poll",
    "net.core.bpf_jit_enable",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_moderate_rcvbuf",
    "kernel.io_uring_disabled",
    "vm.nr_hugepages",
];

/// `/proc/sys/net/core/rmem_max` for `net.core.rmem_max`
/// ([`pktio_host::procfs::sysctl_path`], as text for the findings).
pub fn path(key: &str) -> String {
    pktio_host::procfs::sysctl_path(key)
        .to_string_lossy()
        .into_owned()
}

/// Whether this is a child network namespace: the kernel shows its global
/// `net.core` table (which always has `netdev_max_backlog`) only in the
/// initial one, while per-namespace entries such as `somaxconn` show
/// everywhere. (`/proc/1/ns/net` is not always readable to compare with.)
fn in_child_netns() -> bool {
    std::path::Path::new("/proc/sys/net/core/somaxconn").exists()
        && !std::path::Path::new("/proc/sys/net/core/netdev_max_backlog").exists()
}

fn is_read_only(path: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o222 == 0)
}

/// Drops the `--apply` action of findings whose sysctl is read-only here
/// (global settings seen from a child network namespace) and says where the
/// fix works instead.
pub fn demote_read_only(findings: Vec<Finding>, s: &Sysctls) -> Vec<Finding> {
    findings
        .into_iter()
        .map(|mut f| {
            if let Some(Action::Sysctl { key, .. }) = &f.action {
                if !s.writable(key) {
                    f.action = None;
                    if let Some(fix) = &mut f.fix {
                        fix.push_str(
                            "   (read-only in this network namespace: run it in the initial one)",
                        );
                    }
                }
            }
            f
        })
        .collect()
}

/// Values by dotted name; whitespace inside a value is normalised to one space.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sysctls {
    values: BTreeMap<String, Got<String>>,
    read_only: BTreeSet<String>,
}

/// Collapses tabs and runs of spaces (`tcp_rmem` is tab-separated).
pub fn normalise(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Sysctls {
    /// Reads every key in [`KEYS`] from `/proc/sys` in the caller's network
    /// namespace.
    pub fn read() -> Sysctls {
        let mut values = BTreeMap::new();
        let mut read_only = BTreeSet::new();
        for k in KEYS {
            let v = read_trim(&path(k))
                .map(|s| normalise(&s))
                .map_err(|e| match e {
                    Unavailable::Missing(_) if k.starts_with("net.") && in_child_netns() => {
                        Unavailable::Global((*k).to_string())
                    }
                    other => other,
                });
            if v.is_ok() && is_read_only(&path(k)) {
                read_only.insert((*k).to_string());
            }
            values.insert((*k).to_string(), v);
        }
        Sysctls { values, read_only }
    }

    /// Parses `sysctl -a` style text (host fixtures in tests) (`key = value`); keys not listed are missing.
    #[cfg(test)]
    pub fn parse(text: &str) -> Sysctls {
        let mut values = BTreeMap::new();
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                values.insert(k.trim().to_string(), Ok(normalise(v)));
            }
        }
        for k in KEYS {
            values
                .entry((*k).to_string())
                .or_insert_with(|| Err(Unavailable::Missing(format!("{k} does not exist"))));
        }
        Sysctls {
            values,
            read_only: BTreeSet::new(),
        }
    }

    /// Marks `key` read-only (as a child network namespace shows
    /// `net.core.rmem_max`), for tests.
    #[cfg(test)]
    pub fn set_read_only(&mut self, key: &str) {
        self.read_only.insert(key.to_string());
    }

    /// Whether `key` can be written here.
    pub fn writable(&self, key: &str) -> bool {
        !self.read_only.contains(key)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Got<String> {
        self.values
            .get(key)
            .cloned()
            .unwrap_or_else(|| Err(Unavailable::Missing(format!("{key} was not read"))))
    }

    /// The value of `key` as a number.
    pub fn num(&self, key: &str) -> Got<u64> {
        let v = self.get(key)?;
        v.parse()
            .map_err(|_| Unavailable::Other(format!("{key} = {v} is not a number")))
    }

    /// The three numbers of `tcp_rmem`/`tcp_wmem` (min, default, max).
    pub fn triple(&self, key: &str) -> Got<[u64; 3]> {
        let v = self.get(key)?;
        let n: Vec<u64> = v
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        match n.as_slice() {
            [a, b, c] => Ok([*a, *b, *c]),
            _ => Err(Unavailable::Other(format!(
                "{key} = {v}: expected three numbers"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sysctl_a_format() {
        let s = Sysctls::parse(include_str!("fixtures/sysctl_bad.txt"));
        assert_eq!(s.num("net.core.netdev_budget"), Ok(150));
        assert_eq!(
            s.get("net.ipv4.tcp_rmem").as_deref(),
            Ok("4096 87380 174760")
        );
        assert_eq!(s.triple("net.ipv4.tcp_rmem"), Ok([4096, 87380, 174760]));
        assert_eq!(s.get("net.core.default_qdisc").as_deref(), Ok("pfifo_fast"));
        assert!(s.get("net.core.nonexistent").is_err());
    }

    #[test]
    fn missing_keys_are_reported_missing() {
        let s = Sysctls::parse("net.core.dev_weight = 64\n");
        assert!(matches!(
            s.get("net.core.rmem_max"),
            Err(Unavailable::Missing(_))
        ));
        assert_eq!(path("net.core.rmem_max"), "/proc/sys/net/core/rmem_max");
    }

    #[test]
    fn read_only_sysctls_lose_their_action() {
        use super::super::finding::{Area, Level};
        let mut s = Sysctls::parse("net.core.rmem_max = 4194304\n");
        let f = || {
            vec![
                Finding::new(Area::Sockets, Level::Warn, "rmem_max", "4 MiB", "w").action(
                    Action::Sysctl {
                        key: "net.core.rmem_max".into(),
                        value: "16777216".into(),
                    },
                ),
            ]
        };
        assert!(demote_read_only(f(), &s)[0].action.is_some());
        s.set_read_only("net.core.rmem_max");
        let d = demote_read_only(f(), &s);
        assert!(d[0].action.is_none());
        assert!(d[0]
            .fix
            .as_deref()
            .unwrap()
            .starts_with("sysctl -w net.core.rmem_max=16777216   (read-only"));
    }

    #[test]
    fn reading_this_host_never_panics() {
        let s = Sysctls::read();
        // Every key has an entry, readable or not.
        for k in KEYS {
            let _ = s.get(k);
        }
    }
}
