//! rxdrop: receive through AF_XDP and drop, printing the rate every second.
//!
//! ```text
//! cargo run --release -p pktio --example rxdrop -- IFNAME [QUEUE] [SECONDS]
//! ```
//! The XDP steering program is attached for you (driver mode, or skb mode
//! where the driver has no native XDP); it detaches when the program exits.

use std::time::{Duration, Instant};

use pktio::xdp::{Frame, Umem, UmemConfig, XskSocket};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let ifname = args.get(1).ok_or("usage: rxdrop IFNAME [QUEUE] [SECONDS]")?;
    let queue: u32 = args.get(2).map_or(Ok(0), |s| s.parse())?;
    let secs: u64 = args.get(3).map_or(Ok(10), |s| s.parse())?;

    let umem = Umem::new(UmemConfig::default())?;
    let mut sock = XskSocket::builder(ifname).queue(queue).tx_size(0).build(&umem)?;
    eprintln!("rxdrop: {}", sock.info());

    // Every frame starts in the fill ring, ready for the kernel.
    sock.fill_from_pool(u32::MAX)?;
    let mut held: Vec<Frame<'_>> = Vec::with_capacity(64);
    let (end, mut last) = (Instant::now() + Duration::from_secs(secs), Instant::now());
    let (mut total, mut since) = (0u64, 0u64);
    while Instant::now() < end {
        let parts = sock.parts();
        let (rx, fill) = (parts.rx.ok_or("no rx ring")?, parts.fill.ok_or("no fill ring")?);
        // Take a batch; each packet is a Frame we own until we give it back.
        held.extend(rx.receive(64));
        let n = held.len() as u64;
        // "Drop" = hand the frames straight back to the kernel.
        fill.fill_from(&mut held);
        if n == 0 {
            sock.wake_rx()?; // a syscall only if the kernel asked for one
        }
        total += n;
        since += n;
        if last.elapsed() >= Duration::from_secs(1) {
            let s = sock.statistics()?;
            eprintln!(
                "{:.3} Mpps  (rx_ring_full {}, fill_ring_empty {})",
                since as f64 / last.elapsed().as_secs_f64() / 1e6,
                s.rx_ring_full,
                s.rx_fill_ring_empty_descs
            );
            (since, last) = (0, Instant::now());
        }
    }
    eprintln!("rxdrop: {total} packets; frames: {:?}", umem.accounting());
    Ok(())
}
