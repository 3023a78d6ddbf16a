//! Sysctls read from `/proc/sys` (never by running `sysctl`), kept by dotted
//! name. Reading them all once keeps the checks pure; a fixture in
//! `sysctl -a` format stands in for a host in tests.

use std::collections::BTreeMap;

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

/// `/proc/sys/net/core/rmem_max` for `net.core.rmem_max`.
pub fn path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// Whether this thread is in the initial network namespace (compares
/// `/proc/thread-self/ns/net` with PID 1's; unknown counts as yes).
fn in_initial_netns() -> bool {
    match (
        std::fs::read_link("/proc/thread-self/ns/net"),
        std::fs::read_link("/proc/1/ns/net"),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => true,
    }
}

/// Values by dotted name; whitespace inside a value is normalised to one space.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sysctls {
    values: BTreeMap<String, Got<String>>,
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
        for k in KEYS {
            let v = read_trim(&path(k))
                .map(|s| normalise(&s))
                .map_err(|e| match e {
                    Unavailable::Missing(_) if k.starts_with("net.") && !in_initial_netns() => {
                        Unavailable::Global((*k).to_string())
                    }
                    other => other,
                });
            values.insert((*k).to_string(), v);
        }
        Sysctls { values }
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
        Sysctls { values }
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
    fn reading_this_host_never_panics() {
        let s = Sysctls::read();
        // Every key has an entry, readable or not.
        for k in KEYS {
            let _ = s.get(k);
        }
    }
}
