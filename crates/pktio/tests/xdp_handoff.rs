//! Handing AF_XDP to an unprivileged worker, between two processes in a lab.
//!
//! The test process is the privileged helper: it attaches the steering
//! program on the lab's rx end, pins its XSKMAP on a private bpffs (chowned
//! to the worker's uid), opens an AF_XDP socket, and starts itself again as
//! the worker (in the rx namespace, `--exact` this test, with an environment
//! variable saying so). The worker drops to uid/gid 65534 with no
//! capability, receives a socket per queue over a Unix socket pair
//! (`SCM_RIGHTS`),
//! registers its UMEM on the first, opens the pinned map, binds one socket
//! per queue (the second through `XskSocketBuilder::socket`), puts them into
//! the map and sends every test frame it receives back to the helper,
//! which checks that exactly the frames it sent from the gen end arrived,
//! byte for byte.
//!
//! The lab, the program and the bpffs go away on drop, also on failure; the
//! worker dies with the test (`PR_SET_PDEATHSIG` is cleared by its setuid,
//! so the helper kills it on any failure path: see `Worker`). Needs root;
//! skips visibly otherwise.

#[path = "common/bpffs.rs"]
mod bpffs;
mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{frame_index, is_test_frame, test_frames, RawSocket, TEST_PORT};
use pktio::bpf::XskMap;
use pktio::xdp::handoff::{new_xdp_socket, recv_xdp_sockets, send_fds};
use pktio::xdp::{AttachMode, Frame, Umem, UmemConfig, XskProgram, XskSocket};
use pktio_host::caps::Cap;
use pktio_lab::skip::skip_unless;
use pktio_lab::Lab;

const TEST: &str = "fd_handoff_to_an_unprivileged_worker";
/// Set in the worker's environment: the inherited Unix socket's fd.
const WORKER_FD: &str = "PKTIO_HANDOFF_WORKER_FD";
/// Set in the worker's environment: how many frames to wait for.
const WORKER_FRAMES: &str = "PKTIO_HANDOFF_WORKER_FRAMES";
/// `nobody`.
const NOBODY: u32 = 65534;
const FRAMES: usize = 64;
/// Queues of the lab, one socket each.
const QUEUES: u32 = 2;

/// The helper's side needs all of these; the worker none.
const NEEDS: &[Cap] = &[
    Cap::BPF,
    Cap::NET_ADMIN,
    Cap::NET_RAW,
    Cap::SYS_ADMIN,
    Cap::SETUID,
    Cap::SETGID,
];
/// What the worker must not hold.
const PRIVILEGES: &[Cap] = &[
    Cap::BPF,
    Cap::NET_ADMIN,
    Cap::NET_RAW,
    Cap::SYS_ADMIN,
    Cap::IPC_LOCK,
];

#[test]
fn fd_handoff_to_an_unprivileged_worker() {
    if let Some(fd) = std::env::var_os(WORKER_FD) {
        let fd: RawFd = fd.to_str().and_then(|s| s.parse().ok()).expect("an fd");
        let n: usize = std::env::var(WORKER_FRAMES).unwrap().parse().unwrap();
        return worker(fd, n);
    }
    skip_unless!(
        NEEDS,
        "a lab, an XDP program, a bpffs mount and a setuid worker"
    );
    helper();
}

/// The worker process, killed if the helper fails before it is done
/// (its death signal went with its setuid).
struct Worker(Option<Child>);

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn helper() {
    let lab = Lab::builder().queues(QUEUES).build().expect("lab");
    let fs = bpffs::Bpffs::mount("handoff");
    let pin = fs.path().join("xsks");
    let rx = lab.rx();
    let (ifname, ifindex) = (rx.ifname().to_string(), rx.ifindex());
    // The privileged part, in the rx namespace: program, pinned map, a
    // socket per queue.
    let (prog, socks) = rx.run(|| {
        let prog = XskProgram::attach(&ifname, ifindex, AttachMode::Auto, QUEUES).unwrap();
        prog.pin_map(&pin).unwrap();
        std::os::unix::fs::chown(&pin, Some(NOBODY), Some(NOBODY)).unwrap();
        let socks: Vec<_> = (0..QUEUES).map(|_| new_xdp_socket().unwrap()).collect();
        (prog, socks)
    });

    let (helper_end, worker_end) = UnixStream::pair().unwrap();
    // The worker inherits its end at the same number.
    rustix::io::fcntl_setfd(&worker_end, rustix::io::FdFlags::empty()).unwrap();
    let mut cmd = rx.command(std::env::current_exe().unwrap());
    cmd.args(["--exact", TEST, "--nocapture", "--test-threads", "1"])
        .env(WORKER_FD, worker_end.as_raw_fd().to_string())
        .env(WORKER_FRAMES, FRAMES.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut worker = Worker(Some(cmd.spawn().expect("spawn the worker")));
    drop(worker_end);

    // Hand over the sockets, with where to bind and which map to join.
    let msg = format!("{ifname}\n{QUEUES}\n{}", pin.display());
    let fds: Vec<_> = socks.iter().map(|s| s.as_fd()).collect();
    send_fds(&helper_end, msg.as_bytes(), &fds).unwrap();
    drop(socks);

    // A guard against a hung worker, not a timing assertion.
    let mut stream = helper_end;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut ready = [0u8; 1];
    if stream.read_exact(&mut ready).is_err() || ready != *b"R" {
        let out = worker.0.take().unwrap().wait_with_output().unwrap();
        panic!(
            "the worker did not get ready ({:?}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let sent = test_frames(&lab, FRAMES, TEST_PORT);
    let raw = lab.gen().run(|| RawSocket::open(lab.gen().ifindex()));
    for (i, f) in sent.iter().enumerate() {
        raw.send(f);
        if i % 32 == 31 {
            // Pacing so the veth ring (256) never overflows.
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    let mut got = Vec::new();
    for _ in 0..FRAMES {
        let mut len = [0u8; 4];
        stream
            .read_exact(&mut len)
            .expect("a frame from the worker");
        let mut f = vec![0u8; u32::from_be_bytes(len) as usize];
        stream.read_exact(&mut f).expect("a frame from the worker");
        got.push(f);
    }
    let out = worker.0.take().unwrap().wait_with_output().unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "worker: {:?}\n{text}", out.status);
    assert!(text.contains("WORKER: unprivileged"), "{text}");
    println!("the worker's output:\n{text}");

    let mut seen = HashSet::new();
    for g in &got {
        let i = frame_index(g).expect("a test frame carries its index") as usize;
        assert!(seen.insert(i), "frame {i} received twice");
        assert_eq!(g, &sent[i], "frame {i} arrived with different content");
    }
    assert_eq!(seen.len(), FRAMES);
    // The helper's program steered into the worker's socket.
    assert!(prog.link().info().unwrap().ifindex.is_some());
    drop(prog);
    std::fs::remove_file(&pin).unwrap();
}

/// Drops to `nobody` with no capability (`setgroups`, `setgid`, `setuid`:
/// glibc applies them to every thread of the process).
fn drop_privileges() {
    // SAFETY: setgroups with a count of 0 reads no list; setgid/setuid take
    // plain integers. All three are process-wide in glibc.
    let rc = unsafe {
        (
            libc::setgroups(0, std::ptr::null()),
            libc::setgid(NOBODY),
            libc::setuid(NOBODY),
        )
    };
    assert_eq!(rc, (0, 0, 0), "dropping privileges");
}

fn worker(fd: RawFd, want: usize) {
    drop_privileges();
    let caps = pktio_host::caps::effective().unwrap();
    assert_eq!(caps.missing(PRIVILEGES), PRIVILEGES, "{caps:?}");
    // Proof that the socket could not be made here.
    assert!(new_xdp_socket().is_err(), "an unprivileged AF_XDP socket");
    println!("WORKER: unprivileged (uid {NOBODY}, no capability)");

    // SAFETY: the helper made this descriptor inheritable for us and
    // passed its number; nothing else in this process owns it.
    let mut stream = unsafe { UnixStream::from_raw_fd(fd) };
    let mut buf = [0u8; 512];
    let (len, fds) = recv_xdp_sockets(&stream, &mut buf, QUEUES as usize).unwrap();
    let text = std::str::from_utf8(&buf[..len]).unwrap();
    let mut parts = text.split('\n');
    let (ifname, queues, pin) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse::<u32>().unwrap(),
        parts.next().unwrap(),
    );
    assert_eq!(queues, QUEUES);
    let mut fds = fds.into_iter();
    let cfg = UmemConfig {
        frame_count: 512,
        ..UmemConfig::default()
    };
    // The first socket carries the UMEM; the second binds to it.
    let umem = Umem::with_socket(fds.next().unwrap(), cfg).unwrap();
    let map = XskMap::from_pinned(pin).unwrap();
    let builder = |queue: u32| {
        XskSocket::builder(ifname)
            .queue(queue)
            .attach_mode(AttachMode::None)
            .xsk_map(&map)
            .prefill(128)
    };
    let second = fds.next().unwrap();
    // A given socket cannot be the UMEM's first: that one is the UMEM's own.
    let refused = builder(0)
        .socket(second.try_clone().unwrap())
        .build(&umem)
        .unwrap_err();
    assert!(
        refused.to_string().contains("UMEM's first socket"),
        "{refused}"
    );
    let mut socks = vec![builder(0).build(&umem).unwrap()];
    socks.push(builder(1).socket(second).build(&umem).unwrap());
    for s in &socks {
        println!("WORKER: {}", s.info());
    }
    stream.write_all(b"R").unwrap();

    // A guard against lost frames, not a timing assertion: the helper
    // checks what arrived.
    let end = Instant::now() + Duration::from_secs(20);
    let mut got = 0;
    let mut back: Vec<Frame<'_>> = Vec::new();
    while got < want && Instant::now() < end {
        let mut idle = true;
        for sock in socks.iter_mut() {
            let p = sock.parts();
            let (rx, fill) = (p.rx.unwrap(), p.fill.unwrap());
            for f in rx.receive(64) {
                if is_test_frame(f.data(), TEST_PORT) {
                    let len = (f.data().len() as u32).to_be_bytes();
                    stream.write_all(&len).unwrap();
                    stream.write_all(f.data()).unwrap();
                    got += 1;
                }
                back.push(f);
            }
            idle &= back.is_empty();
            fill.fill_from(&mut back);
        }
        if idle {
            socks[0].poll_rx(5).unwrap();
        }
    }
    drop(back);
    println!("WORKER: received {got} of {want}");
}
