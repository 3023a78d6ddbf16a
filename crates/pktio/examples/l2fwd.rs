//! l2fwd: receive through AF_XDP, swap the MAC addresses, send back out of
//! the same socket. The received frame *is* the frame sent: its descriptor
//! moves from the RX ring to the TX ring, no byte is copied in user space.
//!
//! ```text
//! cargo run --release -p pktio --example l2fwd -- IFNAME [QUEUE] [SECONDS]
//! ```

use std::time::{Duration, Instant};

use pktio::wire::swap_macs;
use pktio::xdp::{Umem, UmemConfig, XskSocket};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let ifname = args.get(1).ok_or("usage: l2fwd IFNAME [QUEUE] [SECONDS]")?;
    let queue: u32 = args.get(2).map_or(Ok(0), |s| s.parse())?;
    let secs: u64 = args.get(3).map_or(Ok(10), |s| s.parse())?;

    let umem = Umem::new(UmemConfig::default())?;
    let mut sock = XskSocket::builder(ifname).queue(queue).build(&umem)?;
    eprintln!("l2fwd: {}", sock.info());
    sock.fill_from_pool(u32::MAX)?;

    let end = Instant::now() + Duration::from_secs(secs);
    let mut forwarded = 0u64;
    while Instant::now() < end {
        let p = sock.parts();
        let (rx, tx) = (p.rx.ok_or("no rx ring")?, p.tx.ok_or("no tx ring")?);
        let (fill, comp) = (p.fill.ok_or("no fill ring")?, p.completion.ok_or("no completion ring")?);
        // Frames the kernel has sent go back to the fill ring for receiving.
        comp.recycle_into(fill, 128);
        let mut out = tx.reserve(64);
        for mut frame in rx.receive(out.remaining()) {
            swap_macs(frame.data_mut());
            if let Err(empty) = out.push(frame) {
                drop(empty); // a zero-length frame: back to the free pool
            }
        }
        forwarded += out.commit() as u64;
        // Frames dropped to the pool above go back to the kernel too.
        fill.fill_from_pool(64);
        sock.kick_tx()?; // always in copy mode; on request in zero-copy mode
        sock.wake_rx()?;
    }
    eprintln!("l2fwd: {forwarded} frames forwarded; frames: {:?}", umem.accounting());
    Ok(())
}
