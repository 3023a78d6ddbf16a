//! [`Lab`], its [`LabBuilder`] and its two [`Host`]s.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::addr::LabAddr;
use crate::error::{LabError, Result};
use crate::host::{set_gro_in, Host};
use crate::link::LinkInfo;
use crate::ns;
use pktio_host::netlink::route::{Route, VethEnd};

/// Process-wide lab counter: makes interface names and subnets unique.
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Prefix length of every lab subnet (one /24 per lab).
pub const LAB_PREFIX_LEN: u8 = 24;

/// Interface name of the gen end in a persistent lab.
pub const PERSISTENT_GEN_IFNAME: &str = "vgen";
/// Interface name of the rx end in a persistent lab.
pub const PERSISTENT_RX_IFNAME: &str = "vrx";

/// Which side of the lab a [`Host`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The traffic generator side (`198.18.<k>.1`, MAC `...:01`).
    Gen,
    /// The receiving side, where the tool under test usually runs
    /// (`198.18.<k>.2`, MAC `...:02`).
    Rx,
}

impl Role {
    /// `"gen"` or `"rx"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Gen => "gen",
            Role::Rx => "rx",
        }
    }

    fn host_octet(self) -> u8 {
        match self {
            Role::Gen => 1,
            Role::Rx => 2,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The MAC of a lab host: `02:00` followed by the four octets of its IPv4
/// address, e.g. `02:00:c6:12:05:01` for 198.18.5.1 (0xc6 = 198, 0x12 = 18).
/// Locally administered (bit 1 of the first byte), unicast.
pub(crate) fn mac_for(addr: LabAddr) -> [u8; 6] {
    let o = addr.octets();
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

/// Options for a [`Lab`]; start with [`Lab::builder`].
#[derive(Debug, Clone, Default)]
#[must_use = "call .build() to create the lab"]
pub struct LabBuilder {
    queues: Option<u32>,
    mtu: Option<u32>,
    gro: Option<bool>,
    persistent: Option<String>,
}

impl LabBuilder {
    /// Number of rx and tx queues of both veth ends (`IFLA_NUM_RX_QUEUES`,
    /// `IFLA_NUM_TX_QUEUES`, also in the peer's attributes). Default 1, so
    /// every frame lands in queue 0 (the kernel's default would be one per
    /// possible CPU, and an AF_XDP socket on queue 0 would then miss the
    /// frames hashed to the others). 1..=4096.
    pub fn queues(mut self, n: u32) -> Self {
        self.queues = Some(n);
        self
    }

    /// MTU of both veth ends (`IFLA_MTU` at creation). Default: the kernel's
    /// (1500). 68..=65535.
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// GRO on the rx end, set with `ioctl(SIOCETHTOOL, ETHTOOL_SGRO)` as
    /// `ethtool -K <if> gro on|off` does. Default: left as the kernel makes
    /// it (off on a new veth).
    ///
    /// Why it matters: GRO on a veth gives it a NAPI instance. Frames sent
    /// *into* a veth with `ndo_xdp_xmit` (`XDP_REDIRECT`/`XDP_TX` towards the
    /// peer, in-kernel generators) are only delivered when the receiving end
    /// has NAPI, i.e. an XDP program in native mode or GRO on; without
    /// either they vanish and no counter moves. Frames from ordinary sockets
    /// (the skb path) do not need it.
    pub fn gro(mut self, on: bool) -> Self {
        self.gro = Some(on);
        self
    }

    /// Make the namespaces persistent: bind-mounted at
    /// `/run/netns/<name>-gen` and `/run/netns/<name>-rx`, so `ip netns exec`
    /// and external tools can use them and [`Lab::open_persistent`] can open
    /// them again. The interfaces are then called `vgen` and `vrx` (the
    /// namespaces already make them unique), the subnet is 198.18.0.0/24
    /// (gen .1, rx .2) and the MACs `02:00:c6:12:00:01`/`:02`.
    ///
    /// The built lab owns them: dropping it removes them, unless
    /// [`Lab::keep`] (what `pktio lab up` does) or [`Lab::set_owned`] says
    /// otherwise. `name`: 1 to 32 of `[A-Za-z0-9_.-]`, not starting with
    /// `.` or `-`.
    pub fn persistent(mut self, name: impl Into<String>) -> Self {
        self.persistent = Some(name.into());
        self
    }

    /// Builds the lab: two network namespaces, a veth pair between them,
    /// addresses, static ARP entries, IPv6 off, everything up.
    ///
    /// Kernel calls: `unshare(CLONE_NEWNET)` on helper threads (and a bind
    /// mount for persistent labs), `RTM_NEWLINK` of kind `veth` with the peer
    /// created directly in the rx namespace (`IFLA_NET_NS_FD`), writes to
    /// `/proc/sys/net/ipv6/conf/<if>/disable_ipv6`, `RTM_SETLINK` (up),
    /// `RTM_NEWADDR`, `RTM_NEWNEIGH` (`NUD_PERMANENT`), and
    /// `ioctl(SIOCETHTOOL)` when [`gro`](Self::gro) was given. Needs Linux
    /// 4.9+ (`/proc/thread-self`), multi-queue veth needs 4.19+.
    ///
    /// # Errors
    /// [`LabError::InvalidConfig`] for bad options, [`LabError::AlreadyUp`]
    /// if a persistent lab of that name exists, [`LabError::Sys`] /
    /// [`LabError::Netlink`] when the kernel refuses (`EPERM`: not root).
    /// Whatever was created before the error is removed.
    pub fn build(self) -> Result<Lab> {
        if let Some(q) = self.queues {
            if !(1..=4096).contains(&q) {
                return Err(LabError::InvalidConfig(format!(
                    "queues must be 1..=4096, got {q}"
                )));
            }
        }
        if let Some(mtu) = self.mtu {
            if !(68..=65535).contains(&mtu) {
                return Err(LabError::InvalidConfig(format!(
                    "mtu must be 68..=65535 (veth limits), got {mtu}"
                )));
            }
        }
        match self.persistent.clone() {
            None => self.build_anonymous(),
            Some(name) => {
                validate_name(&name)?;
                self.build_persistent(&name)
            }
        }
    }

    fn build_anonymous(self) -> Result<Lab> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let pid = std::process::id();
        let tag = n % 100_000;
        let plan = Plan {
            gen_name: "gen".into(),
            rx_name: "rx".into(),
            gen_ifname: format!("pg{pid}x{tag}"),
            rx_ifname: format!("pr{pid}x{tag}"),
            slot: (n % 512) as u16,
        };
        let gen = ns::create("gen", None)?;
        let rx = ns::create("rx", None)?;
        // On error, dropping `gen`/`rx` closes the only references to the
        // namespaces: the kernel removes them and the veth with them.
        self.finish(plan, gen, rx, None)
    }

    fn build_persistent(self, name: &str) -> Result<Lab> {
        ns::prepare_run_dir()?;
        let gen_path = ns::run_path(&format!("{name}-gen"));
        let rx_path = ns::run_path(&format!("{name}-rx"));
        for p in [&gen_path, &rx_path] {
            if p.exists() {
                return Err(LabError::AlreadyUp {
                    name: name.to_string(),
                    path: p.display().to_string(),
                });
            }
        }
        let mut created: Vec<PathBuf> = Vec::new();
        let result = (|| {
            for p in [&gen_path, &rx_path] {
                // The mount point: an empty file, O_CREAT|O_EXCL as `ip netns add`.
                match OpenOptions::new().write(true).create_new(true).open(p) {
                    Ok(_) => created.push(p.clone()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        return Err(LabError::AlreadyUp {
                            name: name.to_string(),
                            path: p.display().to_string(),
                        })
                    }
                    Err(e) => return Err(LabError::sys(format!("creating {}", p.display()), e)),
                }
            }
            let plan = Plan {
                gen_name: format!("{name}-gen"),
                rx_name: format!("{name}-rx"),
                gen_ifname: PERSISTENT_GEN_IFNAME.into(),
                rx_ifname: PERSISTENT_RX_IFNAME.into(),
                slot: 0,
            };
            let gen = ns::create(&plan.gen_name, Some(&gen_path))?;
            let rx = ns::create(&plan.rx_name, Some(&rx_path))?;
            self.finish(plan, gen, rx, Some(name.to_string()))
        })();
        if result.is_err() {
            for p in created.iter().rev() {
                if let Err(e) = ns::remove_mount(p) {
                    eprintln!("pktio-lab: cleanup after a failed build: {e}");
                }
            }
        }
        result
    }

    /// Creates the veth between two fresh namespaces and configures it.
    fn finish(
        self,
        plan: Plan,
        gen: ns::NewNs,
        rx: ns::NewNs,
        persistent: Option<String>,
    ) -> Result<Lab> {
        let gen_addr = LabAddr::in_slot(plan.slot, Role::Gen.host_octet());
        let rx_addr = LabAddr::in_slot(plan.slot, Role::Rx.host_octet());
        let (gen_mac, rx_mac) = (mac_for(gen_addr), mac_for(rx_addr));
        let queues = Some(self.queues.unwrap_or(1));
        let gen_end = VethEnd {
            ifname: plan.gen_ifname.clone(),
            mac: gen_mac,
            mtu: self.mtu,
            queues,
        };
        let rx_end = VethEnd {
            ifname: plan.rx_ifname.clone(),
            mac: rx_mac,
            mtu: self.mtu,
            queues,
        };
        let ns::NewNs {
            fd: gen_fd,
            nl: mut gen_nl,
        } = gen;
        let ns::NewNs {
            fd: rx_fd,
            nl: mut rx_nl,
        } = rx;
        gen_nl.create_veth(&gen_end, &rx_end, rx_fd.as_fd())?;
        let gen_index = gen_nl.link_by_name(&plan.gen_ifname)?.header.index;
        let rx_index = rx_nl.link_by_name(&plan.rx_ifname)?.header.index;

        for (fd, ns_name, ifname) in [
            (&gen_fd, &plan.gen_name, &plan.gen_ifname),
            (&rx_fd, &plan.rx_name, &plan.rx_ifname),
        ] {
            let key = format!("net/ipv6/conf/{ifname}/disable_ipv6");
            ns::in_ns(fd.as_fd(), ns_name, || ns::write_sysctl(&key, "1"))??;
        }
        if let Some(on) = self.gro {
            set_gro_in(rx_fd.as_fd(), &plan.rx_name, &plan.rx_ifname, on)?;
        }

        let mut gen = Host {
            role: Role::Gen,
            name: plan.gen_name,
            ns: Arc::new(gen_fd),
            nl: Arc::new(Mutex::new(gen_nl)),
            ifname: plan.gen_ifname,
            ifindex: gen_index,
            mac: gen_mac,
            addr: gen_addr,
            prefix_len: LAB_PREFIX_LEN,
            peer_addr: rx_addr,
            peer_mac: rx_mac,
            peer_link: None,
        };
        let mut rx = Host {
            role: Role::Rx,
            name: plan.rx_name,
            ns: Arc::new(rx_fd),
            nl: Arc::new(Mutex::new(rx_nl)),
            ifname: plan.rx_ifname,
            ifindex: rx_index,
            mac: rx_mac,
            addr: rx_addr,
            prefix_len: LAB_PREFIX_LEN,
            peer_addr: gen_addr,
            peer_mac: gen_mac,
            peer_link: None,
        };
        gen.peer_link = Some((Arc::clone(&rx.nl), rx.ifindex));
        rx.peer_link = Some((Arc::clone(&gen.nl), gen.ifindex));
        // Up first: taking a link down flushes its neighbour entries, even
        // permanent ones, so they go in last.
        for h in [&gen, &rx] {
            h.nl().set_up(h.ifindex, true, &h.what())?;
        }
        gen.wait_oper_up()?;
        for h in [&gen, &rx] {
            h.nl()
                .add_addr(h.ifindex, h.addr.ip(), h.prefix_len, &h.what())?;
            h.install_neighbour()?;
        }
        Ok(Lab {
            gen,
            rx,
            persistent,
            owned: true,
            link_deleted: AtomicBool::new(false),
        })
    }
}

/// Names and subnet chosen for a lab before it is built.
struct Plan {
    gen_name: String,
    rx_name: String,
    gen_ifname: String,
    rx_ifname: String,
    slot: u16,
}

fn validate_name(name: &str) -> Result<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if name.is_empty()
        || name.len() > 32
        || !ok_chars
        || name.starts_with('.')
        || name.starts_with('-')
    {
        return Err(LabError::InvalidConfig(format!(
            "bad lab name `{name}`: use 1 to 32 of A-Z a-z 0-9 _ - . (not starting with . or -)"
        )));
    }
    Ok(())
}

/// A lab: two network namespaces, "gen" and "rx", joined by a veth pair.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::net::UdpSocket;
/// let lab = pktio_lab::Lab::new()?;
/// let rx = lab.rx().run(|| UdpSocket::bind(lab.rx().addr().socket_addr(9000)))?;
/// let tx = lab.gen().run(|| UdpSocket::bind(lab.gen().addr().socket_addr(0)))?;
/// tx.send_to(b"hi", lab.rx().addr().socket_addr(9000))?;
/// let mut buf = [0u8; 16];
/// let (n, _) = rx.recv_from(&mut buf)?;
/// assert_eq!(&buf[..n], b"hi");
/// # Ok(()) }
/// ```
///
/// Dropping the lab deletes the veth pair (`RTM_DELLINK`) and closes the
/// namespaces; a persistent lab that owns its namespaces also unmounts and
/// removes `/run/netns/<name>-{gen,rx}`. Teardown errors are printed to
/// stderr, never panic. Drop also runs when a test panics (unwinding); if the
/// process is killed, anonymous namespaces still vanish with it because only
/// this process holds them.
#[derive(Debug)]
pub struct Lab {
    gen: Host,
    rx: Host,
    persistent: Option<String>,
    owned: bool,
    link_deleted: AtomicBool,
}

impl Lab {
    /// A lab with default options: anonymous namespaces, one queue, MTU
    /// 1500. Same as `Lab::builder().build()`.
    ///
    /// # Errors
    /// See [`LabBuilder::build`].
    pub fn new() -> Result<Lab> {
        Lab::builder().build()
    }

    /// Options for a new lab.
    pub fn builder() -> LabBuilder {
        LabBuilder::default()
    }

    /// The generator side.
    pub fn gen(&self) -> &Host {
        &self.gen
    }

    /// The receiving side.
    pub fn rx(&self) -> &Host {
        &self.rx
    }

    /// The persistent lab's name, `None` for an anonymous lab.
    pub fn persistent_name(&self) -> Option<&str> {
        self.persistent.as_deref()
    }

    /// Whether dropping this lab tears it down. Always true for anonymous
    /// labs built here; for persistent labs: true when built, false when
    /// opened with [`Lab::open_persistent`].
    pub fn is_owned(&self) -> bool {
        self.owned
    }

    /// Sets whether dropping this lab removes it (veth, and for persistent
    /// labs the `/run/netns` mounts). An anonymous lab's namespaces vanish
    /// with its last fd whatever this says; only the explicit veth deletion
    /// is skipped.
    pub fn set_owned(&mut self, owned: bool) {
        self.owned = owned;
    }

    /// Drops this handle but leaves a persistent lab in place (what
    /// `pktio lab up` does). For an anonymous lab this is just a drop.
    pub fn keep(mut self) {
        self.owned = self.persistent.is_none();
    }

    /// Deletes the veth pair now (`RTM_DELLINK` on the gen end, which takes
    /// the rx end with it), while sockets bound to it may still be open: for
    /// "the interface vanished mid-run" tests. The namespaces stay until
    /// the lab is dropped.
    ///
    /// # Errors
    /// [`LabError::Netlink`] (`ENODEV` if it was already gone).
    pub fn delete_link(&self) -> Result<()> {
        self.gen
            .nl()
            .delete_link(self.gen.ifindex, &self.gen.what())?;
        self.link_deleted.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Opens the persistent lab `name` that a [`LabBuilder::persistent`]
    /// build (or `pktio lab up`) left at `/run/netns/<name>-gen` and
    /// `/run/netns/<name>-rx`. The handle does not own the lab: dropping it
    /// leaves the lab up (see [`Lab::set_owned`]).
    ///
    /// Reads interface names, indexes, MACs and addresses back from the
    /// namespaces (`RTM_GETLINK`, `RTM_GETADDR` dumps).
    ///
    /// # Errors
    /// [`LabError::NotUp`] if it does not exist, [`LabError::Broken`] if the
    /// namespaces lack the veth or its lab address, [`LabError::Sys`] for
    /// `EPERM` (not root).
    pub fn open_persistent(name: &str) -> Result<Lab> {
        validate_name(name)?;
        let open = |suffix: &str| -> Result<(String, OwnedFd)> {
            let ns_name = format!("{name}-{suffix}");
            let path = ns::run_path(&ns_name);
            match ns::open_path(&path) {
                Ok(fd) => Ok((ns_name, fd)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Err(LabError::NotUp {
                    name: name.to_string(),
                    path: path.display().to_string(),
                }),
                Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(LabError::Broken {
                    name: name.to_string(),
                    detail: e.to_string(),
                }),
                Err(e) => Err(LabError::sys(format!("opening {}", path.display()), e)),
            }
        };
        let (gen_name, gen_fd) = open("gen")?;
        let (rx_name, rx_fd) = open("rx")?;
        let gen = discover(name, gen_name, gen_fd, PERSISTENT_GEN_IFNAME)?;
        let rx = discover(name, rx_name, rx_fd, PERSISTENT_RX_IFNAME)?;
        let mk = |d: Discovered, role: Role, peer: &PeerView| Host {
            role,
            name: d.ns_name,
            ns: Arc::new(d.fd),
            nl: Arc::new(Mutex::new(d.nl)),
            ifname: d.ifname,
            ifindex: d.ifindex,
            mac: d.mac,
            addr: d.addr,
            prefix_len: d.prefix_len,
            peer_addr: peer.addr,
            peer_mac: peer.mac,
            peer_link: None,
        };
        let (gen_peer, rx_peer) = (gen.peer_view(), rx.peer_view());
        let mut gen = mk(gen, Role::Gen, &rx_peer);
        let mut rx = mk(rx, Role::Rx, &gen_peer);
        gen.peer_link = Some((Arc::clone(&rx.nl), rx.ifindex));
        rx.peer_link = Some((Arc::clone(&gen.nl), gen.ifindex));
        Ok(Lab {
            gen,
            rx,
            persistent: Some(name.to_string()),
            owned: false,
            link_deleted: AtomicBool::new(false),
        })
    }

    /// Removes the persistent lab `name`: deletes the veth pair
    /// (`RTM_DELLINK` in the gen namespace, so it goes even if some process
    /// still holds the namespaces), then `umount2(MNT_DETACH)` and `unlink`
    /// of `/run/netns/<name>-gen` and `/run/netns/<name>-rx`. Removes what
    /// it finds of a half-built lab too.
    ///
    /// # Errors
    /// [`LabError::NotUp`] if neither namespace file exists; otherwise the
    /// first error met (it still tries the rest).
    pub fn destroy_persistent(name: &str) -> Result<()> {
        validate_name(name)?;
        let gen_path = ns::run_path(&format!("{name}-gen"));
        let rx_path = ns::run_path(&format!("{name}-rx"));
        if !gen_path.exists() && !rx_path.exists() {
            return Err(LabError::NotUp {
                name: name.to_string(),
                path: gen_path.display().to_string(),
            });
        }
        let mut first_err = None;
        for path in [&gen_path, &rx_path] {
            if let Ok(fd) = ns::open_path(path) {
                let r = ns::in_ns(fd.as_fd(), "down", || -> Result<()> {
                    let mut nl = Route::new()?;
                    for l in nl.links()? {
                        let info = LinkInfo::from_message(&l);
                        if info.is_veth() {
                            match nl.delete_link(info.ifindex, &info.ifname) {
                                Ok(()) => {}
                                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {}
                                Err(e) => return Err(e.into()),
                            }
                        }
                    }
                    Ok(())
                });
                if let Err(e) = r.and_then(|r| r) {
                    first_err.get_or_insert(e);
                }
            }
        }
        for path in [&gen_path, &rx_path] {
            if let Err(e) = ns::remove_mount(path) {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// Names of the persistent labs under `/run/netns` (those with both a
    /// `<name>-gen` and a `<name>-rx` entry), sorted.
    ///
    /// # Errors
    /// [`LabError::Sys`] if `/run/netns` exists but cannot be read.
    pub fn list_persistent() -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(ns::NETNS_RUN_DIR) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(LabError::sys(format!("reading {}", ns::NETNS_RUN_DIR), e)),
        };
        let names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        let mut labs: Vec<String> = names
            .iter()
            .filter_map(|n| n.strip_suffix("-gen"))
            .filter(|base| names.iter().any(|n| *n == format!("{base}-rx")))
            .map(str::to_string)
            .collect();
        labs.sort();
        Ok(labs)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        if !self.link_deleted.load(Ordering::Relaxed) {
            let r = self
                .gen
                .nl()
                .delete_link(self.gen.ifindex, &self.gen.what());
            match r {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {}
                Err(e) => eprintln!("pktio-lab: teardown: {e}"),
            }
        }
        if let Some(name) = &self.persistent {
            for suffix in ["gen", "rx"] {
                let path = ns::run_path(&format!("{name}-{suffix}"));
                if let Err(e) = ns::remove_mount(&path) {
                    eprintln!("pktio-lab: teardown: {e}");
                }
            }
        }
    }
}

/// What [`Lab::open_persistent`] reads back from one namespace.
struct Discovered {
    ns_name: String,
    fd: OwnedFd,
    nl: Route,
    ifname: String,
    ifindex: u32,
    mac: [u8; 6],
    addr: LabAddr,
    prefix_len: u8,
}

struct PeerView {
    addr: LabAddr,
    mac: [u8; 6],
}

impl Discovered {
    fn peer_view(&self) -> PeerView {
        PeerView {
            addr: self.addr,
            mac: self.mac,
        }
    }
}

fn discover(lab: &str, ns_name: String, fd: OwnedFd, preferred: &str) -> Result<Discovered> {
    let broken = |detail: String| LabError::Broken {
        name: lab.to_string(),
        detail,
    };
    let mut nl = ns::in_ns(fd.as_fd(), &ns_name, Route::new)??;
    let links: Vec<LinkInfo> = nl.links()?.iter().map(LinkInfo::from_message).collect();
    let veths: Vec<&LinkInfo> = links.iter().filter(|l| l.is_veth()).collect();
    let link = veths
        .iter()
        .find(|l| l.ifname == preferred)
        .or_else(|| veths.first())
        .ok_or_else(|| broken(format!("no veth in namespace {ns_name}")))?;
    let mac = link
        .mac
        .ok_or_else(|| broken(format!("{} in {ns_name} has no MAC address", link.ifname)))?;
    let (ip, prefix_len) = nl
        .ipv4_addrs()?
        .into_iter()
        .find(|(idx, ip, _)| *idx == link.ifindex && LabAddr::in_range(*ip))
        .map(|(_, ip, p)| (ip, p))
        .ok_or_else(|| {
            broken(format!(
                "{} in {ns_name} has no address from 198.18.0.0/15",
                link.ifname
            ))
        })?;
    Ok(Discovered {
        ns_name,
        fd,
        nl,
        ifname: link.ifname.clone(),
        ifindex: link.ifindex,
        mac,
        addr: LabAddr::new(ip)?,
        prefix_len,
    })
}
