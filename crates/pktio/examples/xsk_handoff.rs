//! xsk_handoff: a privileged helper hands AF_XDP to an unprivileged worker.
//!
//! The helper (root, or `CAP_NET_RAW`, `CAP_BPF`, `CAP_NET_ADMIN`,
//! `CAP_CHOWN`) attaches pktio's steering program to IFNAME, pins its
//! XSKMAP under PIN_DIR (a directory it creates on a bpffs, owned by the
//! worker's uid), opens an AF_XDP socket, and sends it over a Unix socket
//! at SOCKET (owned by the worker's uid) to the first client whose uid is
//! WORKER_UID. It keeps the program attached until the worker disconnects,
//! then removes the pin and the socket file.
//!
//! The worker holds no capability: it receives the socket, registers its
//! UMEM on it (4 MiB, charged to its `RLIMIT_MEMLOCK`, whose usual default
//! is 8 MiB; the error says how to raise it), binds to IFNAME's queue,
//! puts itself into the pinned XSKMAP, and counts packets for SECONDS.
//!
//! ```text
//! # once: a bpffs (most distributions mount one at /sys/fs/bpf)
//! mount -t bpf bpf /sys/fs/bpf
//! # terminal 1, root:
//! cargo run -p pktio --example xsk_handoff -- \
//!     helper IFNAME QUEUE /run/pktio-xsk.sock /sys/fs/bpf/pktio-xsk WORKER_UID
//! # terminal 2, as WORKER_UID, no capability:
//! cargo run -p pktio --example xsk_handoff -- worker /run/pktio-xsk.sock 10
//! ```
//!
//! A helper killed by a signal leaves PIN_DIR and SOCKET behind (the
//! program itself detaches with the process): remove them before the next
//! run. Both run in the same network namespace (the socket belongs to the
//! helper's; the worker names the interface in its own when it binds).
//! `crates/pktio/tests/xdp_handoff.rs` runs the same exchange in a lab.

use std::error::Error;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use pktio::bpf::XskMap;
use pktio::xdp::handoff::{new_xdp_socket, recv_xdp_sockets, send_fds};
use pktio::xdp::{AttachMode, Frame, Umem, UmemConfig, XskProgram, XskSocket};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const USAGE: &str = "usage: xsk_handoff helper IFNAME QUEUE SOCKET PIN_DIR WORKER_UID\n       \
                     xsk_handoff worker SOCKET [SECONDS]";

fn main() {
    if let Err(e) = run() {
        // The whole chain, and the kernel's advice where there is some.
        let mut msg = format!("xsk_handoff: {e}");
        let mut cause = e.source();
        while let Some(c) = cause {
            msg.push_str(&format!(": {c}"));
            if let Some(hint) = c.downcast_ref::<pktio::SysError>().and_then(|s| s.hint()) {
                msg.push_str(&format!(" ({hint})"));
            }
            cause = c.source();
        }
        eprintln!("{msg}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("helper") if args.len() == 6 => helper(
            &args[1],
            args[2].parse()?,
            Path::new(&args[3]),
            Path::new(&args[4]),
            args[5].parse()?,
        ),
        Some("worker") if (2..=3).contains(&args.len()) => worker(
            Path::new(&args[1]),
            args.get(2).map_or(Ok(10), |s| s.parse())?,
        ),
        _ => Err(USAGE.into()),
    }
}

/// The privileged side.
fn helper(ifname: &str, queue: u32, socket: &Path, pin_dir: &Path, uid: u32) -> Result<()> {
    let ifindex = ifindex_of(ifname)?;
    let prog = XskProgram::attach(ifname, ifindex, AttachMode::Auto, queue + 1)?;
    eprintln!(
        "helper: steering program attached to {ifname} in {} mode",
        prog.mode()
    );

    // The pin, in a directory only the worker's uid (and root) can use.
    std::fs::create_dir(pin_dir).map_err(|e| {
        format!(
            "creating {}: {e} (it must be on a bpffs; a stale one from a killed helper can be \
             removed with `rm -r`)",
            pin_dir.display()
        )
    })?;
    let pin = pin_dir.join("xsks");
    let cleanup = Cleanup {
        paths: vec![socket.to_path_buf(), pin.clone(), pin_dir.to_path_buf()],
    };
    prog.pin_map(&pin)?;
    std::os::unix::fs::chown(pin_dir, Some(uid), None)?;
    std::os::unix::fs::chown(&pin, Some(uid), None)?;

    let listener = UnixListener::bind(socket)?;
    std::os::unix::fs::chown(socket, Some(uid), None)?;
    eprintln!("helper: waiting for uid {uid} on {}", socket.display());
    let stream = loop {
        let (stream, _) = listener.accept()?;
        match rustix::net::sockopt::socket_peercred(&stream) {
            Ok(cred) if cred.uid.as_raw() == uid => break stream,
            Ok(cred) => eprintln!(
                "helper: refusing a client of uid {} (expecting {uid})",
                cred.uid.as_raw()
            ),
            Err(e) => eprintln!("helper: refusing a client whose credentials are unknown: {e}"),
        }
    };

    let sock = new_xdp_socket()?;
    let msg = format!("{ifname}\n{queue}\n{}", pin.display());
    send_fds(&stream, msg.as_bytes(), &[sock.as_fd()])?;
    drop(sock); // the worker has its own descriptor now
    eprintln!("helper: socket handed over; steering until the worker disconnects");

    // The worker sends nothing more: end of stream means it is gone.
    let mut rest = Vec::new();
    let _ = (&stream).read_to_end(&mut rest);
    eprintln!("helper: worker gone; detaching");
    drop(prog);
    drop(cleanup);
    Ok(())
}

/// The unprivileged side.
fn worker(socket: &Path, secs: u64) -> Result<()> {
    let stream = UnixStream::connect(socket)?;
    let mut buf = [0u8; 4096];
    let (len, mut fds) = recv_xdp_sockets(&stream, &mut buf, 1)?;
    let text = std::str::from_utf8(&buf[..len])?;
    let mut parts = text.split('\n');
    let (Some(ifname), Some(queue), Some(pin)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("unexpected hand-off message {text:?}").into());
    };
    let queue: u32 = queue.parse()?;

    let cfg = UmemConfig {
        frame_count: 1024,
        ..UmemConfig::default()
    };
    let umem = Umem::with_socket(fds.remove(0), cfg)?;
    let map = XskMap::from_pinned(pin)?;
    let mut sock = XskSocket::builder(ifname)
        .queue(queue)
        .tx_size(0)
        .attach_mode(AttachMode::None)
        .xsk_map(&map)
        .prefill(u32::MAX)
        .build(&umem)?;
    eprintln!("worker: {}", sock.info());

    let end = Instant::now() + Duration::from_secs(secs);
    let mut total = 0u64;
    let mut held: Vec<Frame<'_>> = Vec::with_capacity(64);
    while Instant::now() < end {
        let parts = sock.parts();
        let (rx, fill) = (
            parts.rx.ok_or("no rx ring")?,
            parts.fill.ok_or("no fill ring")?,
        );
        held.extend(rx.receive(64));
        total += held.len() as u64;
        let n = held.len();
        fill.fill_from(&mut held);
        if n == 0 {
            sock.poll_rx(100)?;
        }
    }
    eprintln!("worker: {total} packets in {secs} s");
    Ok(())
}

/// The interface's index, `if_nametoindex`.
fn ifindex_of(ifname: &str) -> Result<u32> {
    let probe = rustix::net::socket(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::DGRAM,
        None,
    )?;
    Ok(rustix::net::netdevice::name_to_index(&probe, ifname)?)
}

/// Removes the socket file, the pin and its directory on the way out.
struct Cleanup {
    paths: Vec<std::path::PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.paths {
            let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir(p));
        }
    }
}
