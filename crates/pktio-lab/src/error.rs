//! [`LabError`]: everything that can go wrong while building, using or
//! removing a lab, with the operation named and advice on what to do.

use std::io;
use std::net::Ipv4Addr;

/// An error from the lab.
///
/// Every variant that wraps an OS error names the operation that failed
/// (`"creating veth pair pg123x1/pr123x1"`), and its `Display` ends with a
/// hint when the errno has a usual cause: `EPERM`/`EACCES` (not root),
/// `EEXIST` (name clash), `ENODEV` (the interface vanished), `EBUSY`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// An address outside 198.18.0.0/15 was given to [`LabAddr`](crate::LabAddr).
    #[error(
        "{0} is outside the lab's address range 198.18.0.0/15 (RFC 2544 benchmarking \
         addresses); the lab never sends anywhere else: use an address from 198.18.0.0 to \
         198.19.255.255"
    )]
    AddrOutsideLabRange(Ipv4Addr),

    /// A string that is not a dotted-quad IPv4 address was parsed as a
    /// [`LabAddr`](crate::LabAddr).
    #[error("`{0}` is not an IPv4 address (expected a dotted quad from 198.18.0.0/15)")]
    AddrParse(String),

    /// A netlink request was refused by the kernel.
    #[error("{op}: {source}{}{}", fmt_ext_ack(.ext_ack), hint_suffix(.source))]
    Netlink {
        /// What the lab was doing, e.g. `"creating veth pair pg1x1/pr1x1"`.
        op: String,
        /// The errno from the kernel's `NLMSG_ERROR` reply.
        source: io::Error,
        /// The kernel's extended-ack message (`NLMSGERR_ATTR_MSG`), if any.
        ext_ack: Option<String>,
    },

    /// A system call other than netlink failed (`unshare`, `setns`, `mount`,
    /// `open`, `ioctl`, writing procfs...).
    #[error("{op}: {source}{}", hint_suffix(.source))]
    Sys {
        /// What the lab was doing.
        op: String,
        /// The OS error.
        source: io::Error,
    },

    /// The kernel's netlink reply could not be understood.
    #[error("{op}: unexpected netlink reply: {detail}")]
    Protocol {
        /// What the lab was doing.
        op: String,
        /// What was wrong with the reply.
        detail: String,
    },

    /// A persistent lab of that name already exists.
    #[error(
        "lab `{name}` is already up ({path} exists); use it (`pktio lab status --name {name}`) \
         or remove it first (`pktio lab down --name {name}`)"
    )]
    AlreadyUp {
        /// The lab name.
        name: String,
        /// The namespace file that exists.
        path: String,
    },

    /// No persistent lab of that name exists.
    #[error("lab `{name}` is not up ({path} does not exist); start it with `pktio lab up --name {name}`")]
    NotUp {
        /// The lab name.
        name: String,
        /// The namespace file that is missing.
        path: String,
    },

    /// A namespace or interface of a persistent lab is not what the lab built.
    #[error("lab `{name}` is broken: {detail}; remove it with `pktio lab down --name {name}` and bring it up again")]
    Broken {
        /// The lab name.
        name: String,
        /// What is missing or wrong.
        detail: String,
    },

    /// A bad lab name or option value.
    #[error("{0}")]
    InvalidConfig(String),

    /// The running kernel lacks what was asked for (the message names the
    /// feature and the first kernel that has it).
    #[error("{0}")]
    Unsupported(String),

    /// Threaded NAPI was asked for on a veth end that has no NAPI instance:
    /// a veth gets one only while GRO is on or an XDP program is attached.
    #[error(
        "{ifname} in {ns} has no NAPI instance, so its receive work cannot run in a NAPI \
         thread: a veth gets one when GRO is switched on (`Host::set_gro(true)`, \
         `LabBuilder::gro(true)`) or an XDP program is attached to it; do one of those first, \
         then set the NAPI placement"
    )]
    NoNapi {
        /// The veth end.
        ifname: String,
        /// Its namespace.
        ns: String,
    },

    /// NAPI threads were to be pinned, but the veth end's NAPI is not
    /// threaded.
    #[error(
        "{ifname} in {ns} has no NAPI thread to pin: switch threaded NAPI on first \
         (`Host::set_napi_threaded(true)`, after GRO or an XDP program gave it a NAPI instance)"
    )]
    NapiNotThreaded {
        /// The veth end.
        ifname: String,
        /// Its namespace.
        ns: String,
    },
}

impl From<pktio_host::HostError> for LabError {
    /// The host layer's netlink and system-call errors, variant for variant.
    fn from(e: pktio_host::HostError) -> Self {
        use pktio_host::HostError as H;
        match e {
            H::Netlink {
                op,
                source,
                ext_ack,
            } => LabError::Netlink {
                op,
                source,
                ext_ack,
            },
            H::Sys { op, source } => LabError::Sys { op, source },
            H::Protocol { op, detail } => LabError::Protocol { op, detail },
            H::Unsupported(m) => LabError::Unsupported(m),
            other => LabError::Unsupported(other.to_string()),
        }
    }
}

impl LabError {
    pub(crate) fn sys(op: impl Into<String>, source: io::Error) -> Self {
        LabError::Sys {
            op: op.into(),
            source,
        }
    }

    /// The OS error number behind this error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            LabError::Netlink { source, .. } | LabError::Sys { source, .. } => {
                source.raw_os_error()
            }
            _ => None,
        }
    }

    /// Advice for the usual cause of this error, if there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            LabError::Netlink { source, .. } | LabError::Sys { source, .. } => hint(source),
            _ => None,
        }
    }
}

/// Advice for an errno met while building or using a lab.
fn hint(e: &io::Error) -> Option<&'static str> {
    match e.raw_os_error()? {
        libc::EPERM | libc::EACCES => Some(
            "building a lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN): run as root or with sudo",
        ),
        libc::EEXIST => {
            Some("name clash: an interface, address or namespace of that name already exists")
        }
        libc::ENODEV | libc::ENXIO => {
            Some("the interface is gone (deleted, or its namespace was removed)")
        }
        libc::EBUSY => Some("the device or mount point is busy (in use by another program)"),
        libc::EOPNOTSUPP => {
            Some("this kernel lacks the feature (veth, network namespaces or ethtool support)")
        }
        libc::ENOSYS => Some("this kernel lacks the system call"),
        _ => None,
    }
}

fn hint_suffix(e: &io::Error) -> String {
    hint(e).map(|h| format!(" (hint: {h})")).unwrap_or_default()
}

fn fmt_ext_ack(m: &Option<String>) -> String {
    m.as_ref()
        .map(|m| format!(" [kernel: {m}]"))
        .unwrap_or_default()
}

/// Result alias of this crate.
pub type Result<T, E = LabError> = std::result::Result<T, E>;
