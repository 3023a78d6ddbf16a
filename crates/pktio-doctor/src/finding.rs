//! What every check returns: a [`Finding`] with a severity, one sentence on
//! what it means, and the exact command that fixes it.
//!
//! Field names are part of the `--json` output and stay stable.

use serde::Serialize;

/// How much a finding matters. Ordered: `Ok < Note < Warn < Problem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Nothing to do.
    Ok,
    /// Worth knowing; a trade-off rather than a fault.
    Note,
    /// Likely to cost packets or CPU; the fix is safe to apply.
    Warn,
    /// Breaks packet I/O (nothing arrives, or the setup cannot work).
    Problem,
}

impl Level {
    /// The word shown in the table.
    pub fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Note => "note",
            Level::Warn => "warn",
            Level::Problem => "PROBLEM",
        }
    }
}

/// The part of the host a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    /// One network interface: driver, queues, rings, offloads, XDP.
    Nic,
    /// The receive path in the kernel: softnet, budgets, backlog, qdisc, RPS.
    Stack,
    /// Hardware interrupts and their CPU affinity.
    Irq,
    /// Socket buffers, busy polling, locked memory, hugepages.
    Sockets,
    /// What the kernel can do: AF_XDP, io_uring, BPF JIT.
    Kernel,
    /// The `--why-no-packets` checklist.
    Why,
}

impl Area {
    /// The word shown in the table.
    pub fn word(self) -> &'static str {
        match self {
            Area::Nic => "nic",
            Area::Stack => "stack",
            Area::Irq => "irq",
            Area::Sockets => "sockets",
            Area::Kernel => "kernel",
            Area::Why => "why",
        }
    }
}

/// A change `--apply` knows how to make (and to undo).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Write `value` to `/proc/sys/<key with dots as slashes>`.
    Sysctl {
        /// Dotted name, e.g. `net.core.netdev_max_backlog`.
        key: String,
        /// The new value, as `sysctl -w` takes it.
        value: String,
    },
    /// Write a CPU mask to `/sys/class/net/IF/queues/rx-Q/rps_cpus`.
    RpsCpus {
        /// Interface name.
        ifname: String,
        /// Receive queue index.
        queue: u32,
        /// Hexadecimal CPU mask as the file takes it.
        mask: String,
    },
    /// Resize the NIC rings through ethtool netlink `ETHTOOL_MSG_RINGS_SET`.
    Rings {
        /// Interface name.
        ifname: String,
        /// Interface index.
        ifindex: u32,
        /// New RX ring size, if it changes.
        rx: Option<u32>,
        /// New TX ring size, if it changes.
        tx: Option<u32>,
    },
}

/// One thing the doctor found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable id of the check, kebab-case: the area, then the name without
    /// the interface (`nic-rx-ring`, `sockets-rmem-max`). With `interface`
    /// it is unique in one run; [`KNOWN_IDS`] lists them all.
    pub id: String,
    /// The interface a per-interface check is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Which part of the host.
    pub area: Area,
    /// Short name, e.g. `eth0 rx ring` or `netdev_max_backlog`.
    pub name: String,
    /// Severity.
    pub level: Level,
    /// What was read, in a few words.
    pub value: String,
    /// One sentence: what it means for packet rates.
    pub why: String,
    /// The exact command or sysctl that fixes it, if any.
    pub fix: Option<String>,
    /// What `--apply` would do, when the fix is safe to apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

impl Finding {
    /// A finding without a fix.
    pub fn new(
        area: Area,
        level: Level,
        name: impl Into<String>,
        value: impl Into<String>,
        why: impl Into<String>,
    ) -> Self {
        let name = name.into();
        Finding {
            id: id(area, &name),
            interface: None,
            area,
            name,
            level,
            value: value.into(),
            why: why.into(),
            fix: None,
            action: None,
        }
    }

    /// Marks a finding of `ifname`'s checks: its name starts with the
    /// interface, which the id leaves out.
    pub fn on_interface(&mut self, ifname: &str) {
        let rest = self
            .name
            .strip_prefix(ifname)
            .and_then(|r| r.strip_prefix(' '));
        if let Some(rest) = rest {
            self.id = id(self.area, rest);
        }
        self.interface = Some(ifname.to_string());
    }

    /// Adds the command that fixes it.
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// Adds the change `--apply` makes (and sets the fix text to match).
    pub fn action(mut self, action: Action) -> Self {
        if self.fix.is_none() {
            self.fix = Some(action.command());
        }
        self.action = Some(action);
        self
    }

    /// Something could not be read: says why (privilege, missing on this
    /// kernel) without failing the whole run.
    pub fn unreadable(area: Area, name: impl Into<String>, what: &str, err: &Unavailable) -> Self {
        if let Unavailable::Global(_) = err {
            return Finding::new(area, Level::Note, name, GLOBAL_VALUE, format!("{err}."));
        }
        let level = match err {
            Unavailable::Denied(_) => Level::Warn,
            _ => Level::Note,
        };
        let f = Finding::new(
            area,
            level,
            name,
            "unknown",
            format!("Could not read {what}: {err}."),
        );
        match err {
            Unavailable::Denied(_) => f.fix("run as root (or with CAP_NET_ADMIN) to read it"),
            _ => f,
        }
    }
}

/// Every finding id the checks can give, one a line, sorted: the snapshot
/// a new or renamed check must update (ids are part of the output contract,
/// `docs/JSON.md`).
pub const KNOWN_IDS: &str = include_str!("ids.txt");

/// `area-name` in kebab case: lower case, every run of other characters
/// than letters and digits one `-`, the area not repeated
/// (`eth0 IRQ NUMA` of the irq area, on eth0: `irq-numa`).
fn id(area: Area, name: &str) -> String {
    let mut out = String::from(area.word());
    let words = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase);
    for (i, word) in words.enumerate() {
        // `kernel` of the kernel area is `kernel`, not `kernel-kernel`.
        if i == 0 && word == out {
            continue;
        }
        out.push('-');
        out.push_str(&word);
    }
    out
}

impl Action {
    /// The command a person would type for this change.
    pub fn command(&self) -> String {
        match self {
            Action::Sysctl { key, value } => sysctl_command(key, value),
            Action::RpsCpus {
                ifname,
                queue,
                mask,
            } => format!("echo {mask} > /sys/class/net/{ifname}/queues/rx-{queue}/rps_cpus"),
            Action::Rings { ifname, rx, tx, .. } => {
                let mut s = format!("ethtool -G {ifname}");
                if let Some(rx) = rx {
                    s.push_str(&format!(" rx {rx}"));
                }
                if let Some(tx) = tx {
                    s.push_str(&format!(" tx {tx}"));
                }
                s
            }
        }
    }
}

/// `sysctl -w key=value`, quoting values with spaces (tcp_rmem).
pub fn sysctl_command(key: &str, value: &str) -> String {
    if value.contains(char::is_whitespace) {
        format!("sysctl -w {key}='{value}'")
    } else {
        format!("sysctl -w {key}={value}")
    }
}

/// Why a fact could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// EACCES / EPERM: needs privilege.
    Denied(String),
    /// ENOENT / EOPNOTSUPP / a missing netlink family: this kernel or driver
    /// does not have it.
    Missing(String),
    /// A global sysctl read from another network namespace, where the
    /// kernel does not show it.
    Global(String),
    /// Anything else.
    Other(String),
}

/// The value of a finding about a global sysctl that is not visible here;
/// [`merge_global`] folds them into one finding.
pub const GLOBAL_VALUE: &str = "not visible in this network namespace";

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::Denied(s) => write!(f, "permission denied ({s}); needs root"),
            Unavailable::Global(k) => write!(
                f,
                "{k} is a global setting, shown only in the initial network namespace"
            ),
            Unavailable::Missing(s) | Unavailable::Other(s) => f.write_str(s),
        }
    }
}

impl Unavailable {
    /// Classifies an I/O error from reading `what`.
    pub fn from_io(what: &str, e: &std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => Unavailable::Denied(what.to_string()),
            Some(libc::ENOENT) => Unavailable::Missing(format!("{what} does not exist")),
            Some(libc::EOPNOTSUPP) => {
                Unavailable::Missing(format!("{what}: not supported by this driver"))
            }
            Some(libc::ENODEV) => Unavailable::Missing(format!("{what}: no such device")),
            _ => Unavailable::Other(format!("{what}: {e}")),
        }
    }

    /// [`Unavailable::from_io`] for an error of the host layer: its errno
    /// decides, as for a plain system call.
    pub fn from_host(what: &str, e: pktio_host::HostError) -> Self {
        Self::from_io(what, &e.into())
    }
}

/// Folds the findings about global sysctls that this network namespace does
/// not show into one note (run in a child namespace, the doctor would
/// otherwise print one line per sysctl).
pub fn merge_global(findings: Vec<Finding>) -> Vec<Finding> {
    let (global, mut rest): (Vec<Finding>, Vec<Finding>) =
        findings.into_iter().partition(|f| f.value == GLOBAL_VALUE);
    if !global.is_empty() {
        let names: Vec<&str> = global.iter().map(|f| f.name.as_str()).collect();
        rest.push(Finding::new(
            Area::Stack,
            Level::Note,
            "global sysctls",
            names.join(", "),
            "This network namespace does not show the kernel's global network settings: run pktio doctor in the initial namespace to check them.",
        ));
    }
    rest
}

/// A fact, or why it could not be read.
pub type Got<T> = Result<T, Unavailable>;

/// Reads a text file, classifying the error.
pub fn read_text(path: &str) -> Got<String> {
    std::fs::read_to_string(path).map_err(|e| Unavailable::from_io(path, &e))
}

/// Reads a text file holding one value and trims it.
pub fn read_trim(path: &str) -> Got<String> {
    read_text(path).map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_by_severity() {
        assert!(Level::Problem > Level::Warn);
        assert!(Level::Warn > Level::Note);
        assert!(Level::Note > Level::Ok);
    }

    #[test]
    fn json_field_names_are_stable() {
        let f = Finding::new(Area::Stack, Level::Warn, "n", "v", "w").action(Action::Sysctl {
            key: "net.core.netdev_max_backlog".into(),
            value: "2000".into(),
        });
        let j = serde_json::to_value(&f).unwrap();
        assert_eq!(j["area"], "stack");
        assert_eq!(j["level"], "warn");
        assert_eq!(j["name"], "n");
        assert_eq!(j["value"], "v");
        assert_eq!(j["why"], "w");
        assert_eq!(j["fix"], "sysctl -w net.core.netdev_max_backlog=2000");
        assert_eq!(j["action"]["kind"], "sysctl");
        let plain = Finding::new(Area::Nic, Level::Ok, "n", "v", "w");
        let j = serde_json::to_value(&plain).unwrap();
        assert!(j["fix"].is_null());
        assert!(j.get("action").is_none());
    }

    #[test]
    fn commands_are_exact() {
        assert_eq!(
            sysctl_command("net.ipv4.tcp_rmem", "4096 131072 16777216"),
            "sysctl -w net.ipv4.tcp_rmem='4096 131072 16777216'"
        );
        let a = Action::Rings {
            ifname: "eth0".into(),
            ifindex: 2,
            rx: Some(4096),
            tx: None,
        };
        assert_eq!(a.command(), "ethtool -G eth0 rx 4096");
        let r = Action::RpsCpus {
            ifname: "eth0".into(),
            queue: 0,
            mask: "e".into(),
        };
        assert_eq!(
            r.command(),
            "echo e > /sys/class/net/eth0/queues/rx-0/rps_cpus"
        );
    }

    #[test]
    fn global_sysctls_merge_into_one_note() {
        let g = Unavailable::Global("net.core.netdev_budget".into());
        let fs = vec![
            Finding::unreadable(Area::Stack, "netdev_budget", "x", &g),
            Finding::new(Area::Nic, Level::Ok, "eth0 link", "up", "w"),
            Finding::unreadable(Area::Kernel, "BPF JIT", "x", &g),
        ];
        let m = merge_global(fs);
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].name, "global sysctls");
        assert_eq!(m[1].value, "netdev_budget, BPF JIT");
        assert_eq!(m[1].level, Level::Note);
    }

    #[test]
    fn io_errors_are_classified() {
        let e = std::io::Error::from_raw_os_error(libc::EACCES);
        assert!(matches!(
            Unavailable::from_io("x", &e),
            Unavailable::Denied(_)
        ));
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert!(matches!(
            Unavailable::from_io("x", &e),
            Unavailable::Missing(_)
        ));
        let f = Finding::unreadable(Area::Irq, "n", "the file", &Unavailable::Denied("p".into()));
        assert_eq!(f.level, Level::Warn);
        assert!(f.why.contains("needs root"));
    }

    #[test]
    fn ids_are_kebab_case_without_the_interface() {
        let mut f = Finding::new(Area::Nic, Level::Warn, "eth0 rx ring", "v", "w");
        assert_eq!(f.id, "nic-eth0-rx-ring");
        f.on_interface("eth0");
        assert_eq!(
            (f.id.as_str(), f.interface.as_deref()),
            ("nic-rx-ring", Some("eth0"))
        );
        let mut g = Finding::new(Area::Irq, Level::Ok, "vrx IRQ NUMA", "v", "w");
        g.on_interface("vrx");
        assert_eq!(g.id, "irq-numa");
        let k = Finding::new(Area::Kernel, Level::Ok, "kernel", "6.18", "w");
        assert_eq!(k.id, "kernel");
        let s = Finding::new(Area::Sockets, Level::Ok, "rmem/wmem_default", "v", "w");
        assert_eq!(s.id, "sockets-rmem-wmem-default");
        let j = serde_json::to_value(&g).unwrap();
        assert_eq!(
            (j["id"].as_str(), j["interface"].as_str()),
            (Some("irq-numa"), Some("vrx"))
        );
        assert!(serde_json::to_value(&k).unwrap().get("interface").is_none());
    }

    #[test]
    fn known_ids_are_sorted_unique_and_name_an_area() {
        let ids: Vec<&str> = KNOWN_IDS.lines().collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        let areas = ["nic", "stack", "irq", "sockets", "kernel", "why"];
        for id in &ids {
            let ok = id.split('-').all(|w| {
                !w.is_empty()
                    && w.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
            assert!(ok, "{id} is not kebab case");
            assert!(areas.contains(&id.split('-').next().unwrap_or("")), "{id}");
        }
    }
}
