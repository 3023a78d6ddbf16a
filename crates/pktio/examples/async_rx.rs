//! async_rx: receive with any backend under tokio and print the count
//! every second.
//!
//! ```text
//! cargo run --release -p pktio --features tokio --example async_rx -- IFNAME [BACKEND] [SECONDS]
//! ```
//! BACKEND is auto (default), xdp, xdp-skb, v3, v2 or uring. In the lab:
//! `pktio lab up`, then run it in the rx namespace while traffic flows.

use std::time::Duration;

use pktio::backend::{AsyncBackend, Backend, BackendConfig, BackendKind, Direction, PacketIo};
use tokio::time::{interval_at, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: async_rx IFNAME [auto|xdp|xdp-skb|v3|v2|uring] [SECONDS]";
    let ifname = args.get(1).ok_or(usage)?;
    let kind: BackendKind = args.get(2).map_or(Ok(BackendKind::Auto), |s| s.parse())?;
    let secs: u64 = args.get(3).map_or(Ok(10), |s| s.parse())?;

    let mut cfg = BackendConfig::new(ifname);
    cfg.direction = Direction::Rx;
    let backend = Backend::open(kind, &cfg).map_err(|e| match e.hint() {
        Some(h) => format!("{e} (hint: {h})"),
        None => e.to_string(),
    })?;
    eprintln!("async_rx: {}", backend.describe());
    for (step, why) in &backend.describe().skipped {
        eprintln!("  skipped {step}: {why}");
    }
    let mut b = AsyncBackend::new(backend)?;

    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut tick = interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let (mut total, mut bytes) = (0u64, 0u64);
    loop {
        tokio::select! {
            r = b.rx_batch(64, |pkt| bytes += pkt.len() as u64) => total += r? as u64,
            _ = tick.tick() => {
                let s = b.stats()?;
                eprintln!("{total} packets, {bytes} bytes, {} dropped by the kernel", s.kernel_drops);
            }
            _ = tokio::time::sleep_until(end) => break,
        }
    }
    eprintln!("async_rx: {total} packets in {secs} s");
    Ok(())
}
