//! txpush: send 64-byte UDP frames through AF_XDP as fast as possible.
//!
//! ```text
//! cargo run --release -p pktio --example txpush -- IFNAME [QUEUE] [SECONDS]
//! ```
//! In the lab: `pktio lab up`, then
//! `pktio lab exec gen -- target/release/examples/txpush <gen ifname>`.
//! Destination: the lab's rx address and MAC conventions (198.18.0.2).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use pktio::wire::UdpFrame;
use pktio::xdp::{Umem, UmemConfig, XskSocket};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let ifname = args
        .get(1)
        .ok_or("usage: txpush IFNAME [QUEUE] [SECONDS]")?;
    let queue: u32 = args.get(2).map_or(Ok(0), |s| s.parse())?;
    let secs: u64 = args.get(3).map_or(Ok(5), |s| s.parse())?;

    let umem = Umem::new(UmemConfig::default())?;
    let mut sock = XskSocket::builder(ifname)
        .queue(queue)
        .rx_size(0)
        .build(&umem)?;
    eprintln!("txpush: {}", sock.info());

    // Write the frame once into every frame of the UMEM; from then on frames
    // cycle TX ring -> completion ring -> TX ring without being rewritten.
    let spec = UdpFrame {
        src_mac: [0x02, 0, 0xc6, 0x12, 0, 1],
        dst_mac: [0x02, 0, 0xc6, 0x12, 0, 2],
        src_ip: Ipv4Addr::new(198, 18, 0, 1),
        dst_ip: Ipv4Addr::new(198, 18, 0, 2),
        src_port: 9,
        dst_port: 9,
    };
    let mut ready = Vec::with_capacity(umem.frame_count() as usize);
    while let Some(mut f) = umem.alloc() {
        let n = spec.emit(b"pktio", 60, f.buffer_mut())?;
        f.set_len(n as u32).map_err(|_| "frame too small")?;
        ready.push(f);
    }

    let (start, end) = (Instant::now(), Instant::now() + Duration::from_secs(secs));
    let mut sent = 0u64;
    while Instant::now() < end {
        let parts = sock.parts();
        let (tx, comp) = (
            parts.tx.ok_or("no tx ring")?,
            parts.completion.ok_or("no completion ring")?,
        );
        // A completed frame comes back with length 0; its bytes are intact.
        for mut f in comp.complete(256) {
            f.set_len(60).map_err(|_| "frame too small")?;
            ready.push(f);
        }
        let mut b = tx.reserve(64.min(ready.len() as u32));
        while let Some(f) = ready.pop() {
            if let Err(f) = b.push(f) {
                ready.push(f);
                break;
            }
        }
        sent += b.commit() as u64;
        sock.kick_tx()?;
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "txpush: {sent} frames in {secs:.2} s = {:.3} Mpps; {:?}",
        sent as f64 / secs / 1e6,
        sock.kicks()
    );
    Ok(())
}
