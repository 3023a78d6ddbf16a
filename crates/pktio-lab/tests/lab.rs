//! Privileged tests of the lab: they build real namespaces and veth pairs,
//! and skip (printing `SKIPPED ...`) without root.

use std::io::ErrorKind;
use std::net::UdpSocket;
use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::time::Duration;

use pktio_lab::{list_links, Lab, LabAddr, LinkInfo};

/// A receive timeout, so a lost datagram fails the test instead of hanging
/// it (not a timing assertion: nothing measures how long it took).
const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// Ethernet + IPv4 + UDP headers.
const UDP_OVERHEAD: u64 = 14 + 20 + 8;

fn udp_pair(lab: &Lab, port: u16) -> (UdpSocket, UdpSocket) {
    let rx = lab
        .rx()
        .run(|| UdpSocket::bind(lab.rx().addr().socket_addr(port)))
        .unwrap();
    rx.set_read_timeout(Some(RECV_TIMEOUT)).unwrap();
    let tx = lab
        .gen()
        .run(|| UdpSocket::bind(lab.gen().addr().socket_addr(0)))
        .unwrap();
    (tx, rx)
}

fn exchange(lab: &Lab, tx: &UdpSocket, rx: &UdpSocket, port: u16, payload: &[u8]) {
    tx.send_to(payload, lab.rx().addr().socket_addr(port))
        .unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = rx.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], payload);
    assert_eq!(from.ip(), std::net::IpAddr::from(lab.gen().addr()));
}

fn names(links: &[LinkInfo]) -> Vec<String> {
    let mut v: Vec<String> = links.iter().map(|l| l.ifname.clone()).collect();
    v.sort();
    v
}

#[test]
fn udp_datagram_crosses_and_counters_move() {
    pktio_lab::require_root!();
    let lab = Lab::new().unwrap();
    let (gen, rx) = (lab.gen(), lab.rx());
    assert_eq!(gen.name(), "gen");
    assert_eq!(rx.name(), "rx");
    assert_ne!(gen.addr(), rx.addr());
    assert_eq!(gen.prefix_len(), 24);
    assert_eq!(gen.peer_addr(), rx.addr());
    assert_eq!(rx.peer_mac(), gen.mac());
    // Documented MAC scheme: 02:00 + the IPv4 address.
    assert_eq!(gen.mac()[..2], [0x02, 0x00]);
    assert_eq!(gen.mac()[2..], gen.addr().octets());
    assert_eq!(rx.mac()[2..], rx.addr().octets());

    let (tx_sock, rx_sock) = udp_pair(&lab, 9000);
    let g0 = gen.stats();
    let r0 = rx.stats();
    let payload = b"pktio lab says hello";
    exchange(&lab, &tx_sock, &rx_sock, 9000, payload);
    let g = gen.stats().since(&g0);
    let r = rx.stats().since(&r0);
    // Exactly one frame each way: static ARP and no IPv6 mean no other
    // traffic on the wire.
    let frame = UDP_OVERHEAD + payload.len() as u64;
    assert_eq!((g.tx_packets, g.tx_bytes), (1, frame), "gen {g:?}");
    assert_eq!((r.rx_packets, r.rx_bytes), (1, frame), "rx {r:?}");
    assert_eq!((g.rx_packets, r.tx_packets), (0, 0));
    assert_eq!(r.rx_dropped + r.rx_errors + g.tx_dropped + g.tx_errors, 0);
}

#[test]
fn lab_is_configured_as_documented() {
    pktio_lab::require_root!();
    let lab = Lab::new().unwrap();
    for (h, peer) in [(lab.gen(), lab.rx()), (lab.rx(), lab.gen())] {
        let info = h.link_info().unwrap();
        assert!(info.is_veth());
        assert!(info.up && info.lower_up, "{info:?}");
        assert_eq!(info.ifname, h.ifname());
        assert_eq!(info.mac, Some(h.mac()));
        assert_eq!((info.rx_queues, info.tx_queues), (1, 1));
        assert!(h.ifname().len() <= 15);
        // lo is up too, and the veth is the only other link.
        let links = h.links().unwrap();
        assert_eq!(names(&links), {
            let mut v = vec!["lo".to_string(), h.ifname().to_string()];
            v.sort();
            v
        });
        assert!(links.iter().any(|l| l.ifname == "lo" && l.up));
        // Static ARP entry for the peer.
        let neigh = h.permanent_neighbours().unwrap();
        assert_eq!(neigh, vec![(peer.addr().ip(), peer.mac().to_vec())]);
        // IPv6 off on the veth, read from inside the namespace.
        let path = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", h.ifname());
        let v = h.run(|| std::fs::read_to_string(&path));
        match v {
            Ok(v) => assert_eq!(v.trim(), "1"),
            Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound), // kernel without IPv6
        }
    }
    // Nothing in our own (root) namespace.
    let here = OwnedFd::from(std::fs::File::open("/proc/thread-self/ns/net").unwrap());
    let root_links = names(&list_links(here.as_fd_ref()).unwrap());
    assert!(!root_links
        .iter()
        .any(|n| n == lab.gen().ifname() || n == lab.rx().ifname()));
}

/// `OwnedFd::as_fd` without importing the trait in every test.
trait AsFdRef {
    fn as_fd_ref(&self) -> std::os::fd::BorrowedFd<'_>;
}
impl AsFdRef for OwnedFd {
    fn as_fd_ref(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
}

#[test]
fn parallel_labs_do_not_clash_and_vanish_on_drop() {
    pktio_lab::require_root!();
    let results: Vec<(String, String, LabAddr, OwnedFd, OwnedFd)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3u16)
            .map(|i| {
                s.spawn(move || {
                    let lab = Lab::new().unwrap();
                    let port = 9100 + i;
                    let (tx, rx) = udp_pair(&lab, port);
                    exchange(&lab, &tx, &rx, port, format!("lab {i}").as_bytes());
                    let keep_gen = lab.gen().netns_fd().try_clone_to_owned().unwrap();
                    let keep_rx = lab.rx().netns_fd().try_clone_to_owned().unwrap();
                    (
                        lab.gen().ifname().to_string(),
                        lab.rx().ifname().to_string(),
                        lab.rx().addr(),
                        keep_gen,
                        keep_rx,
                    )
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ifnames: Vec<&String> = results.iter().flat_map(|r| [&r.0, &r.1]).collect();
    ifnames.sort();
    ifnames.dedup();
    assert_eq!(ifnames.len(), 6, "interface names clash: {ifnames:?}");
    let mut addrs: Vec<LabAddr> = results.iter().map(|r| r.2).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 3, "labs share a subnet");
    // Every lab is dropped: the namespaces we kept alive only hold `lo`.
    for (_, _, _, gen_ns, rx_ns) in &results {
        assert_eq!(names(&list_links(gen_ns.as_fd_ref()).unwrap()), ["lo"]);
        assert_eq!(names(&list_links(rx_ns.as_fd_ref()).unwrap()), ["lo"]);
    }
}

#[test]
fn panicking_test_still_tears_down() {
    pktio_lab::require_root!();
    let kept: Mutex<Option<(OwnedFd, OwnedFd)>> = Mutex::new(None);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = Lab::new().unwrap();
        *kept.lock().unwrap() = Some((
            lab.gen().netns_fd().try_clone_to_owned().unwrap(),
            lab.rx().netns_fd().try_clone_to_owned().unwrap(),
        ));
        assert_eq!(lab.gen().links().unwrap().len(), 2);
        panic!("deliberate panic with a lab in scope");
    }));
    assert!(r.is_err());
    let (gen_ns, rx_ns) = kept.lock().unwrap().take().unwrap();
    assert_eq!(names(&list_links(gen_ns.as_fd_ref()).unwrap()), ["lo"]);
    assert_eq!(names(&list_links(rx_ns.as_fd_ref()).unwrap()), ["lo"]);
}

#[test]
fn two_queues_on_both_ends() {
    pktio_lab::require_root!();
    let lab = Lab::builder().queues(2).build().unwrap();
    for h in [lab.gen(), lab.rx()] {
        let info = h.link_info().unwrap();
        assert_eq!((info.rx_queues, info.tx_queues), (2, 2), "{}", h.ifname());
    }
    // sysfs as a child process in the namespace sees it (fresh /sys).
    let out = lab
        .rx()
        .command("ls")
        .arg(format!("/sys/class/net/{}/queues", lab.rx().ifname()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listing = String::from_utf8_lossy(&out.stdout);
    let mut q: Vec<&str> = listing.split_whitespace().collect();
    q.sort();
    assert_eq!(q, ["rx-0", "rx-1", "tx-0", "tx-1"]);
}

#[test]
fn builder_options_mtu_and_gro() {
    pktio_lab::require_root!();
    let lab = Lab::builder().mtu(9000).gro(true).build().unwrap();
    assert_eq!(lab.gen().link_info().unwrap().mtu, 9000);
    assert_eq!(lab.rx().link_info().unwrap().mtu, 9000);
    assert!(lab.rx().gro().unwrap());
    assert!(!lab.gen().gro().unwrap());
    lab.rx().set_gro(false).unwrap();
    assert!(!lab.rx().gro().unwrap());
    lab.gen().set_mtu(1280).unwrap();
    assert_eq!(lab.gen().link_info().unwrap().mtu, 1280);

    for bad in [
        Lab::builder().queues(0).build(),
        Lab::builder().mtu(20).build(),
    ] {
        assert!(matches!(bad, Err(pktio_lab::LabError::InvalidConfig(_))));
    }
}

#[test]
fn link_down_and_up_keeps_the_lab_working() {
    pktio_lab::require_root!();
    let lab = Lab::new().unwrap();
    let (tx, rx) = udp_pair(&lab, 9200);
    lab.rx().link_up(false).unwrap();
    assert!(!lab.rx().link_info().unwrap().up);
    assert!(!lab.gen().link_info().unwrap().lower_up);
    lab.rx().link_up(true).unwrap();
    assert_eq!(lab.rx().permanent_neighbours().unwrap().len(), 1);
    exchange(&lab, &tx, &rx, 9200, b"after down/up");
}

#[test]
fn delete_link_while_sockets_are_open() {
    pktio_lab::require_root!();
    let lab = Lab::new().unwrap();
    let (tx, rx) = udp_pair(&lab, 9300);
    exchange(&lab, &tx, &rx, 9300, b"before");
    lab.delete_link().unwrap();
    let err = lab.rx().try_stats().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc_enodev()), "{err}");
    assert!(err.to_string().contains("gone"), "{err}");
    assert!(tx
        .send_to(b"after", lab.rx().addr().socket_addr(9300))
        .is_err());
    assert_eq!(names(&lab.gen().links().unwrap()), ["lo"]);
    assert_eq!(names(&lab.rx().links().unwrap()), ["lo"]);
    // Drop after delete_link is quiet and fine.
}

fn libc_enodev() -> i32 {
    19
}

#[test]
fn spawn_enter_and_command_run_in_the_namespace() {
    pktio_lab::require_root!();
    let lab = Lab::new().unwrap();
    let rx_addr = lab.rx().addr().socket_addr(9400);

    // spawn: a receiver thread living in rx.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let h = lab.rx().spawn(move || {
        let s = UdpSocket::bind(rx_addr).unwrap();
        s.set_read_timeout(Some(RECV_TIMEOUT)).unwrap();
        ready_tx.send(()).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = s.recv_from(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    ready_rx.recv().unwrap();

    // enter: this thread moves into gen and back.
    let ns_id = || std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    let before = ns_id();
    {
        let _g = lab.gen().enter().unwrap();
        assert_ne!(ns_id(), before);
        let s = UdpSocket::bind(lab.gen().addr().socket_addr(0)).unwrap();
        s.send_to(b"from enter", rx_addr).unwrap();
    }
    assert_eq!(ns_id(), before);
    assert_eq!(h.join().unwrap(), b"from enter");

    // command: a child process sees only gen's interfaces.
    let out = lab
        .gen()
        .command("cat")
        .arg("/proc/net/dev")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let dev = String::from_utf8_lossy(&out.stdout);
    assert!(dev.contains(lab.gen().ifname()), "{dev}");
    assert!(!dev.contains(lab.rx().ifname()), "{dev}");
    let status = lab
        .rx()
        .command("sh")
        .args(["-c", "exit 7"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(7));
}

fn unique_name(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{tag}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[test]
fn persistent_up_open_destroy_round_trip() {
    pktio_lab::require_root!();
    let name = unique_name("p");
    let gen_path = format!("/run/netns/{name}-gen");
    let rx_path = format!("/run/netns/{name}-rx");

    let lab = Lab::builder().persistent(&name).queues(2).build().unwrap();
    assert_eq!(lab.persistent_name(), Some(name.as_str()));
    assert_eq!(lab.gen().name(), format!("{name}-gen"));
    assert_eq!((lab.gen().ifname(), lab.rx().ifname()), ("vgen", "vrx"));
    assert_eq!(lab.gen().addr().to_string(), "198.18.0.1");
    assert_eq!(lab.rx().addr().to_string(), "198.18.0.2");
    assert!(std::path::Path::new(&gen_path).exists());
    assert!(Lab::list_persistent().unwrap().contains(&name));
    // A second lab of the same name is refused.
    let again = Lab::builder().persistent(&name).build();
    assert!(
        matches!(again, Err(pktio_lab::LabError::AlreadyUp { .. })),
        "{again:?}"
    );
    lab.keep();
    assert!(std::path::Path::new(&rx_path).exists());

    // Re-open: same configuration read back, traffic flows.
    {
        let lab = Lab::open_persistent(&name).unwrap();
        assert!(!lab.is_owned());
        assert_eq!((lab.gen().ifname(), lab.rx().ifname()), ("vgen", "vrx"));
        assert_eq!(lab.gen().addr().to_string(), "198.18.0.1");
        assert_eq!(lab.rx().peer_addr(), lab.gen().addr());
        assert_eq!(lab.gen().mac(), [2, 0, 198, 18, 0, 1]);
        assert_eq!(lab.rx().link_info().unwrap().rx_queues, 2);
        let (tx, rx) = udp_pair(&lab, 9500);
        exchange(&lab, &tx, &rx, 9500, b"persistent");
    }
    // Dropping the opened handle left it in place.
    assert!(std::path::Path::new(&gen_path).exists());

    Lab::destroy_persistent(&name).unwrap();
    assert!(!std::path::Path::new(&gen_path).exists());
    assert!(!std::path::Path::new(&rx_path).exists());
    assert!(!Lab::list_persistent().unwrap().contains(&name));
    assert!(matches!(
        Lab::open_persistent(&name),
        Err(pktio_lab::LabError::NotUp { .. })
    ));
    assert!(matches!(
        Lab::destroy_persistent(&name),
        Err(pktio_lab::LabError::NotUp { .. })
    ));
}

#[test]
fn owned_persistent_lab_is_removed_on_drop() {
    pktio_lab::require_root!();
    let name = unique_name("o");
    let kept;
    {
        let lab = Lab::builder().persistent(&name).build().unwrap();
        assert!(lab.is_owned());
        kept = lab.gen().netns_fd().try_clone_to_owned().unwrap();
    }
    assert!(!std::path::Path::new(&format!("/run/netns/{name}-gen")).exists());
    assert!(!std::path::Path::new(&format!("/run/netns/{name}-rx")).exists());
    assert_eq!(names(&list_links(kept.as_fd_ref()).unwrap()), ["lo"]);
}

#[test]
fn bad_persistent_names_are_refused() {
    // No root needed: validation comes first.
    for bad in ["", "a/b", "-x", ".x", "x y", &"n".repeat(33)] {
        assert!(
            matches!(
                Lab::open_persistent(bad),
                Err(pktio_lab::LabError::InvalidConfig(_))
            ),
            "{bad:?}"
        );
    }
}

/// Environment variable that turns `child_holds_a_lab` on.
const KILL_CHILD_ENV: &str = "PKTIO_LAB_KILL_CHILD";

/// The child half of `killed_process_leaves_nothing_behind`: builds a lab,
/// prints its namespace inodes and waits to be killed.
#[test]
#[ignore = "runs only as the child of killed_process_leaves_nothing_behind"]
fn child_holds_a_lab() {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    if std::env::var_os(KILL_CHILD_ENV).is_none() {
        return;
    }
    let lab = Lab::new().unwrap();
    let ino = |h: &pktio_lab::Host| {
        std::fs::File::from(h.netns_fd().try_clone_to_owned().unwrap())
            .metadata()
            .unwrap()
            .ino()
    };
    println!("READY {} {}", ino(lab.gen()), ino(lab.rx()));
    std::io::stdout().flush().unwrap();
    // Bounded: the parent kills us long before.
    for _ in 0..600 {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether any process has a thread in, or an fd on, network namespace
/// `ino`, or it is bind-mounted somewhere.
fn netns_referenced(ino: u64) -> bool {
    let tag = format!("net:[{ino}]");
    let is_it =
        |p: std::path::PathBuf| std::fs::read_link(p).is_ok_and(|l| l.as_os_str() == tag.as_str());
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return true;
    };
    for p in procs.flatten() {
        if !p
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        for sub in ["task", "fd"] {
            let Ok(entries) = std::fs::read_dir(p.path().join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                let path = if sub == "task" {
                    e.path().join("ns/net")
                } else {
                    e.path()
                };
                if is_it(path) {
                    return true;
                }
            }
        }
    }
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| m.contains(&tag))
}

#[test]
fn killed_process_leaves_nothing_behind() {
    use std::io::BufRead;
    pktio_lab::require_root!();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holds_a_lab",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL_CHILD_ENV, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Kill the child on every path, also if an assertion below fails.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = KillOnDrop(child);
    let mut inodes = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // libtest may print "test child_holds_a_lab ... " first on the line.
        if let Some((_, rest)) = line.split_once("READY ") {
            let v: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
            inodes = Some((v[0], v[1]));
            break;
        }
    }
    let (gen, rx) = inodes.expect("the child printed READY");
    assert!(
        netns_referenced(gen) && netns_referenced(rx),
        "the scan finds live namespaces"
    );
    child.0.kill().unwrap(); // SIGKILL: no destructor runs
    child.0.wait().unwrap();
    assert!(!netns_referenced(gen), "gen namespace survived its process");
    assert!(!netns_referenced(rx), "rx namespace survived its process");
}

/// The CPUs this test may run on (its own affinity).
fn allowed_cpus() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim();
    let mut cpus = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap()),
            None => cpus.push(part.parse().unwrap()),
        }
    }
    cpus
}

/// Whether thread `pid` still exists with name `name` (a pid may be reused).
fn thread_alive(pid: u32, name: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == name)
}

/// Waits up to 5 s for a stopped kernel thread to be reaped.
fn wait_thread_gone(pid: u32, name: &str) {
    let what = format!("the end of {name} (pid {pid})");
    pktio_lab::wait::until(Duration::from_secs(5), &what, || !thread_alive(pid, name));
}

/// `voluntary_ctxt_switches` of a thread: grows each time it sleeps, so a
/// NAPI thread that polled frames shows it.
fn voluntary_switches(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn threaded_napi_on_pin_off_and_teardown() {
    pktio_lab::require_root!();
    let lab = Lab::new().unwrap();
    let rx = lab.rx();

    // No NAPI yet (no GRO, no XDP): a clear error, not a panic.
    assert!(rx.napi_threads().unwrap().is_empty());
    let e = rx.set_napi_threaded(true).unwrap_err();
    assert!(matches!(e, pktio_lab::LabError::NoNapi { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(rx.ifname()) && msg.contains("set_gro(true)"),
        "{msg}"
    );
    assert!(matches!(
        rx.pin_napi_threads(0),
        Err(pktio_lab::LabError::NoNapi { .. })
    ));
    // Off without NAPI has nothing to undo.
    rx.set_napi_threaded(false).unwrap();

    // GRO gives the veth a NAPI instance; threaded gives it a kthread.
    rx.set_gro(true).unwrap();
    let e = rx.pin_napi_threads(0).unwrap_err();
    assert!(
        matches!(e, pktio_lab::LabError::NapiNotThreaded { .. }),
        "{e:?}"
    );
    rx.set_napi_threaded(true).unwrap();
    let threads = rx.napi_threads().unwrap();
    assert_eq!(threads.len(), 1, "{threads:?}");
    let t = &threads[0];
    assert_eq!(t.name, format!("napi/{}-{}", rx.ifname(), t.napi_id));
    assert!(thread_alive(t.pid, &t.name));
    // Only the end that was asked.
    assert!(lab.gen().napi_threads().unwrap().is_empty());
    // Switching on twice is harmless and keeps the thread.
    rx.set_napi_threaded(true).unwrap();
    assert_eq!(rx.napi_threads().unwrap()[0].pid, t.pid);

    let cpu = *allowed_cpus().last().unwrap();
    let pinned = rx.pin_napi_threads(cpu).unwrap();
    assert_eq!(pinned.len(), 1);
    assert_eq!(pinned[0].pid, t.pid);
    assert_eq!(pinned[0].cpus, [cpu]);
    assert_eq!(rx.napi_threads().unwrap()[0].cpus, [cpu]);
    assert!(matches!(
        rx.pin_napi_threads(usize::MAX),
        Err(pktio_lab::LabError::InvalidConfig(_))
    ));
    eprintln!("rx NAPI thread: {}", pinned[0]);

    // Frames still arrive, and the thread is what polled them. Socket
    // frames reach the peer's NAPI only if the sender has TSO off (see
    // `Host::set_tso`).
    assert!(lab.gen().tso().unwrap());
    lab.gen().set_tso(false).unwrap();
    assert!(!lab.gen().tso().unwrap());
    let (tx_sock, rx_sock) = udp_pair(&lab, 9600);
    let before = voluntary_switches(t.pid);
    for i in 0..20u8 {
        exchange(&lab, &tx_sock, &rx_sock, 9600, &[i; 32]);
    }
    assert!(
        voluntary_switches(t.pid) > before,
        "the NAPI thread never ran"
    );

    // Off: the thread goes away, traffic keeps flowing (softirq).
    rx.set_napi_threaded(false).unwrap();
    assert!(rx.napi_threads().unwrap().is_empty());
    wait_thread_gone(t.pid, &t.name);
    exchange(&lab, &tx_sock, &rx_sock, 9600, b"softirq again");

    // On again, then teardown removes the thread with the device.
    rx.set_napi_threaded(true).unwrap();
    let t = rx.napi_threads().unwrap().remove(0);
    assert!(thread_alive(t.pid, &t.name));
    drop(lab);
    wait_thread_gone(t.pid, &t.name);
}

#[test]
fn napi_placement_in_parallel_labs_with_equal_ifnames() {
    pktio_lab::require_root!();
    // Two persistent labs: both receiving ends are called `vrx`, so their
    // NAPI threads are both `napi/vrx-<id>`.
    let labs: Vec<Lab> = (0..2)
        .map(|_| {
            Lab::builder()
                .persistent(unique_name("n"))
                .gro(true)
                .build()
                .unwrap()
        })
        .collect();
    let cpus = allowed_cpus();
    let want = [cpus[0], *cpus.last().unwrap()];
    let mut got = Vec::new();
    for (lab, &cpu) in labs.iter().zip(&want) {
        assert_eq!(lab.rx().ifname(), "vrx");
        let placement: pktio_lab::NapiPlacement = format!("thread:{cpu}").parse().unwrap();
        let threads = lab.rx().set_napi_placement(placement).unwrap();
        assert_eq!(threads.len(), 1);
        assert_eq!(threads[0].cpus, [cpu]);
        assert_eq!(threads[0].name, format!("napi/vrx-{}", threads[0].napi_id));
        got.push(threads[0].clone());
    }
    assert_ne!(got[0].pid, got[1].pid);
    assert_ne!(got[0].napi_id, got[1].napi_id);
    // Each lab sees its own thread only, with its own pinning.
    for (lab, t) in labs.iter().zip(&got) {
        assert_eq!(lab.rx().napi_threads().unwrap(), std::slice::from_ref(t));
    }

    // Back to softirq in the first lab leaves the second one alone.
    let none = labs[0]
        .rx()
        .set_napi_placement(pktio_lab::NapiPlacement::Softirq)
        .unwrap();
    assert!(none.is_empty());
    wait_thread_gone(got[0].pid, &got[0].name);
    assert_eq!(labs[1].rx().napi_threads().unwrap(), [got[1].clone()]);
    // Unpinned threaded placement reports the thread too.
    let threads = labs[0]
        .rx()
        .set_napi_placement(pktio_lab::NapiPlacement::Thread { cpu: None })
        .unwrap();
    assert_eq!(threads.len(), 1);
    drop(labs);
    wait_thread_gone(got[1].pid, &got[1].name);
    wait_thread_gone(threads[0].pid, &threads[0].name);
}
