//! [`HostError`]: what can go wrong when asking the kernel about the host,
//! with the operation named and, for netlink, the kernel's own message.

use std::io;

/// An error of a host query.
///
/// Every variant names the operation that failed (`"listing the NAPI
/// instances of veth0 (netdev napi-get)"`). Turn it into an [`io::Error`]
/// with `From` when only the errno matters: the OS error is kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// A netlink request was refused by the kernel (`NLMSG_ERROR`).
    #[error("{op}: {source}{}", fmt_ext_ack(.ext_ack))]
    Netlink {
        /// What was being done.
        op: String,
        /// The errno of the kernel's `NLMSG_ERROR` reply.
        source: io::Error,
        /// The kernel's extended-ack message (`NLMSGERR_ATTR_MSG`), if any.
        ext_ack: Option<String>,
    },

    /// A system call other than a netlink request failed (`socket`,
    /// `send`, `ioctl`, reading `/proc`...).
    #[error("{op}: {source}")]
    Sys {
        /// What was being done.
        op: String,
        /// The OS error.
        source: io::Error,
    },

    /// The kernel's netlink reply could not be understood.
    #[error("{op}: unexpected netlink reply: {detail}")]
    Protocol {
        /// What was being done.
        op: String,
        /// What was wrong with the reply.
        detail: String,
    },

    /// The running kernel lacks what was asked for (the message names the
    /// feature and the first kernel that has it).
    #[error("{0}")]
    Unsupported(String),
}

impl HostError {
    /// A failed system call.
    pub fn sys(op: impl Into<String>, source: io::Error) -> Self {
        HostError::Sys {
            op: op.into(),
            source,
        }
    }

    /// A reply that does not parse.
    pub fn protocol(op: impl Into<String>, detail: impl Into<String>) -> Self {
        HostError::Protocol {
            op: op.into(),
            detail: detail.into(),
        }
    }

    /// The OS error number behind this error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            HostError::Netlink { source, .. } | HostError::Sys { source, .. } => {
                source.raw_os_error()
            }
            _ => None,
        }
    }

    /// The kernel's extended-ack message, for a netlink refusal that had one.
    pub fn ext_ack(&self) -> Option<&str> {
        match self {
            HostError::Netlink { ext_ack, .. } => ext_ack.as_deref(),
            _ => None,
        }
    }

    /// Whether the kernel said it does not know the command or attribute:
    /// [`HostError::Unsupported`], `EOPNOTSUPP`, or `EINVAL` with "Unknown
    /// attribute type" (strict attribute validation).
    pub fn is_unknown_to_kernel(&self) -> bool {
        match self {
            HostError::Unsupported(_) => true,
            HostError::Netlink { .. } => {
                self.raw_os_error() == Some(libc::EOPNOTSUPP)
                    || (self.raw_os_error() == Some(libc::EINVAL)
                        && self
                            .ext_ack()
                            .is_some_and(|m| m.contains("Unknown attribute")))
            }
            _ => false,
        }
    }

    /// This error as [`HostError::Unsupported`] ("…: this kernel lacks
    /// `needs`") when [`is_unknown_to_kernel`](Self::is_unknown_to_kernel),
    /// else unchanged.
    pub fn unsupported_if_unknown(self, needs: &str) -> Self {
        if matches!(self, HostError::Netlink { .. }) && self.is_unknown_to_kernel() {
            HostError::Unsupported(format!("{self}: this kernel lacks {needs}"))
        } else {
            self
        }
    }
}

impl From<HostError> for io::Error {
    /// The OS error for [`HostError::Netlink`] and [`HostError::Sys`] (the
    /// errno survives, the operation's name goes into the message);
    /// `InvalidData` for a reply that does not parse; `Unsupported` for a
    /// kernel that lacks the feature.
    fn from(e: HostError) -> io::Error {
        let kind = match &e {
            HostError::Netlink { source, .. } | HostError::Sys { source, .. } => {
                match source.raw_os_error() {
                    Some(errno) => return io::Error::from_raw_os_error(errno),
                    None => source.kind(),
                }
            }
            HostError::Protocol { .. } => io::ErrorKind::InvalidData,
            HostError::Unsupported(_) => io::ErrorKind::Unsupported,
        };
        io::Error::new(kind, e.to_string())
    }
}

fn fmt_ext_ack(m: &Option<String>) -> String {
    m.as_ref()
        .map(|m| format!(" [kernel: {m}]"))
        .unwrap_or_default()
}

/// Result alias of this crate.
pub type Result<T, E = HostError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn nack(errno: i32, ext_ack: Option<&str>) -> HostError {
        HostError::Netlink {
            op: "x".into(),
            source: io::Error::from_raw_os_error(errno),
            ext_ack: ext_ack.map(str::to_string),
        }
    }

    #[test]
    fn unknown_attribute_becomes_unsupported() {
        let e = nack(libc::EINVAL, Some("Unknown attribute type"));
        assert!(matches!(
            e.unsupported_if_unknown("y"),
            HostError::Unsupported(_)
        ));
        let e = nack(libc::EINVAL, None).unsupported_if_unknown("y");
        assert!(matches!(e, HostError::Netlink { .. }));
        assert!(nack(libc::EOPNOTSUPP, None).is_unknown_to_kernel());
    }

    #[test]
    fn io_error_keeps_the_errno() {
        let e = nack(libc::ENODEV, Some("no such device"));
        assert!(e.to_string().contains("[kernel: no such device]"), "{e}");
        assert_eq!(io::Error::from(e).raw_os_error(), Some(libc::ENODEV));
        let p = io::Error::from(HostError::protocol("op", "short"));
        assert_eq!(p.kind(), io::ErrorKind::InvalidData);
    }
}
