//! One thread, io_uring: registered files, multishot accept, multishot receive
//! into a provided-buffer ring, and receive bundles where the kernel has them.
//!
//! - The ring is set up with `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN`
//!   (6.1+; plain setup is the fallback), so completions are produced in this
//!   thread's `io_uring_enter(GETEVENTS)` and never concurrently with it.
//! - The listener sits in a sparse registered-file table (`IORING_REGISTER_FILES2`,
//!   5.19+); `IORING_OP_ACCEPT` multishot with `IORING_FILE_INDEX_ALLOC` puts each
//!   new connection straight into the table, so no fd is ever installed in the
//!   process and every receive uses a fixed file.
//! - Receives are `IORING_OP_RECV` multishot with `IOSQE_BUFFER_SELECT` from one
//!   provided-buffer ring (`IORING_REGISTER_PBUF_RING`, 5.19+), plus
//!   `IORING_RECVSEND_BUNDLE` (6.10+) when `IORING_FEAT_RECVSEND_BUNDLE` is set:
//!   one completion then carries several consecutive buffers.
//!
//! # Buffer-ring bookkeeping
//! The ring is the library's [`pktio::uring::BufRing`]; requests are queued
//! as [`PlainOp`]s, which point at no memory of ours. The kernel takes ring
//! entries strictly in order from its head. Buffer `i` starts in slot `i`,
//! and every consumed buffer is put back at the tail in
//! the order it was consumed, so slot `k` always holds buffer `k mod n`. The
//! engine keeps its own count of consumed entries (`head`); a completion's
//! first buffer id must equal `head mod n`, and a bundle of `m` buffers is
//! `head … head + m − 1`. A mismatch is reported as an error instead of
//! reading the wrong memory.

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use io_uring::types::{SubmitArgs, Timespec};
use io_uring::{cqueue, IoUring};
use pktio::uring::{push_plain, BufRing, PlainOp};

use super::RecvConfig;
use crate::tcp::conn::{ConnRx, End, RecvReport};
use crate::tcp::sys;
use crate::tcp::TcpError;

const BGID: u16 = 0x7c;
const UD_ACCEPT: u64 = 1 << 63;
const UD_CLOSE: u64 = 1 << 62;
const UD_CANCEL: u64 = 1 << 61;
const TICK: Duration = Duration::from_millis(100);

/// Builds a ring the way this kernel likes it, mapping "io_uring is off" to a clear error.
///
/// `io_uring_setup(2)` with SINGLE_ISSUER | DEFER_TASKRUN (6.1+), falling back
/// to a plain ring on EINVAL (older kernels).
///
/// # Errors
/// [`TcpError::UringUnavailable`] when `kernel.io_uring_disabled` forbids it
/// (EPERM) or the kernel lacks io_uring (ENOSYS).
pub fn new_ring(entries: u32, cq: u32) -> Result<IoUring, TcpError> {
    check_enabled()?;
    let r = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(cq)
        .build(entries);
    let r = match r {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            IoUring::builder().setup_cqsize(cq).build(entries)
        }
        r => r,
    };
    r.map_err(setup_error)
}

/// Fails early when `kernel.io_uring_disabled` is 2 (off for everyone).
pub fn check_enabled() -> Result<(), TcpError> {
    if sys::io_uring_disabled() == Some(2) {
        return Err(TcpError::UringUnavailable {
            reason: "kernel.io_uring_disabled = 2 switches io_uring off for every process; \
                     set it to 0 (or 1 plus kernel.io_uring_group) to use the uring engines, \
                     or pick --engine epoll"
                .into(),
        });
    }
    Ok(())
}

/// Maps an `io_uring_setup(2)` failure to a [`TcpError`].
pub fn setup_error(e: std::io::Error) -> TcpError {
    match e.raw_os_error() {
        Some(libc::EPERM) => TcpError::UringUnavailable {
            reason: format!(
                "io_uring_setup: {e}: kernel.io_uring_disabled is {} (1 allows only members of \
                 kernel.io_uring_group and CAP_SYS_ADMIN); or a seccomp policy forbids it. \
                 Pick --engine epoll, or allow io_uring",
                sys::io_uring_disabled().map_or("absent".into(), |v| v.to_string())
            ),
        },
        Some(libc::ENOSYS) => TcpError::UringUnavailable {
            reason: format!(
                "io_uring_setup: {e}: this kernel was built without io_uring or a seccomp \
                 policy hides it; pick --engine epoll"
            ),
        },
        _ => TcpError::sys("io_uring_setup", e),
    }
}

struct Slot {
    gen: u32,
    conn: Option<ConnRx>,
    last_rx: Instant,
}

/// Runs the io_uring receiver on the calling thread.
pub fn run(listener: TcpListener, cfg: &RecvConfig) -> Result<RecvReport, TcpError> {
    if !cfg.buffers.is_power_of_two() {
        return Err(TcpError::Config(format!(
            "--buffers must be a power of two up to 32768, not {}",
            cfg.buffers
        )));
    }
    let cpu0 = pktio_host::iface::thread_cpu_time();
    let buf_size = u32::try_from(cfg.buf_size)
        .map_err(|_| TcpError::Config(format!("--buf-size {} is too large", cfg.buf_size)))?;
    let mut bufs = BufRing::new(cfg.buffers, buf_size)
        .map_err(|e| TcpError::sys("mmap(provided buffers)", e.source))?;
    let mut ring = new_ring(256, 4096)?;
    let bundle = cfg.bundle && ring.params().is_feature_recvsend_bundle();
    // The group is unregistered when `bufs` drops, before its memory goes.
    bufs.register(&ring, BGID)
        .map_err(|e| TcpError::sys("io_uring_register(PBUF_RING)", e))?;
    bufs.publish();
    let table = u32::try_from(cfg.conns + 1)
        .map_err(|_| TcpError::Config("too many connections".into()))?;
    ring.submitter()
        .register_files_sparse(table)
        .map_err(|e| TcpError::sys("io_uring_register(FILES2 sparse)", e))?;
    ring.submitter()
        .register_files_update(0, &[listener.as_raw_fd()])
        .map_err(|e| TcpError::sys("io_uring_register(FILES_UPDATE)", e))?;

    let accept = || (PlainOp::AcceptMultiFixed { file: 0 }, UD_ACCEPT);
    let recv = |idx: u32, gen: u32| {
        let op = PlainOp::RecvMulti {
            file: idx,
            bgid: BGID,
            bundle,
        };
        (op, (u64::from(gen) << 32) | u64::from(idx))
    };

    let mut slots: Vec<Slot> = (0..table)
        .map(|_| Slot {
            gen: 0,
            conn: None,
            last_rx: Instant::now(),
        })
        .collect();
    let mut pending: Vec<(PlainOp, u64)> = vec![accept()];
    let mut done: Vec<ConnRx> = Vec::with_capacity(cfg.conns);
    let (mut accepted, mut open) = (0usize, 0usize);
    let mut accepting = true;
    let mut timed_out = false;
    let mut first: Option<Instant> = None;
    let mut last_end: Option<Instant> = None;
    let mut last_accept = Instant::now();
    let mut last_tick = Instant::now();
    let mut rearms = 0u64;
    let mut completions = 0u64;
    let mut buffers_used = 0u64;
    // Entries the kernel has consumed (our mirror of its head).
    let mut head: u16 = 0;
    let buf_len = bufs.buf_size() as usize;

    while accepting || open > 0 {
        {
            let mut sq = ring.submission();
            let mut pushed = 0;
            for &(op, ud) in &pending {
                if push_plain(&mut sq, op, ud).is_err() {
                    // The queue is 256 deep and we queue a few entries per completion;
                    // if it ever fills, the rest waits for the next round.
                    break;
                }
                pushed += 1;
            }
            pending.drain(..pushed);
        }
        let wait = if open > 0 {
            TICK
        } else {
            cfg.idle_timeout.min(TICK)
        };
        let ts = Timespec::new()
            .sec(wait.as_secs())
            .nsec(wait.subsec_nanos());
        match ring
            .submitter()
            .submit_with_args(1, &SubmitArgs::new().timespec(&ts))
        {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(e) => return Err(TcpError::sys("io_uring_enter", e)),
        }
        let now = Instant::now();
        let cqes: Vec<cqueue::Entry> = ring.completion().collect();
        completions += cqes.len() as u64;
        for cqe in cqes {
            let (ud, res, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
            if ud == UD_ACCEPT {
                if res >= 0 && !accepting {
                    // A connection beyond the ones asked for (or after giving up): close it.
                    pending.push((PlainOp::CloseFixed { file: res as u32 }, UD_CLOSE));
                } else if res >= 0 {
                    let idx = res as u32;
                    let s = slots.get_mut(idx as usize).ok_or_else(|| {
                        TcpError::Config(format!("accept gave slot {idx} outside the table"))
                    })?;
                    s.gen = s.gen.wrapping_add(1);
                    s.conn = Some(ConnRx::new(cfg.verify));
                    s.last_rx = now;
                    pending.push(recv(idx, s.gen));
                    accepted += 1;
                    open += 1;
                    first.get_or_insert(now);
                    last_accept = now;
                    if accepted == cfg.conns && accepting {
                        accepting = false;
                        pending.push((
                            PlainOp::Cancel {
                                user_data: UD_ACCEPT,
                            },
                            UD_CANCEL,
                        ));
                    }
                } else if accepting && res != -libc::ECANCELED {
                    return Err(TcpError::sys(
                        "io_uring accept",
                        std::io::Error::from_raw_os_error(-res),
                    ));
                }
                if accepting && !cqueue::more(flags) {
                    pending.push(accept());
                }
                continue;
            }
            if ud & (UD_CLOSE | UD_CANCEL) != 0 {
                continue;
            }
            let (idx, gen) = ((ud & 0xffff_ffff) as u32, (ud >> 32) as u32);
            // Buffers first: whatever happens to the connection, they go back to the ring.
            let mut chunks: Vec<(u16, usize)> = Vec::new();
            if let Some(bid) = cqueue::buffer_select(flags) {
                let n = if res > 0 {
                    (res as usize).div_ceil(buf_len)
                } else {
                    1
                };
                let mask = bufs.entries() - 1;
                if bid != head & mask {
                    return Err(TcpError::Config(format!(
                        "provided-buffer ring out of step: kernel used buffer {bid}, expected {}",
                        head & mask
                    )));
                }
                let mut left = res.max(0) as usize;
                for k in 0..n {
                    let b = bid.wrapping_add(k as u16) & mask;
                    let len = left.min(buf_len);
                    left -= len;
                    chunks.push((b, len));
                }
                head = head.wrapping_add(n as u16);
                buffers_used += n as u64;
            }
            let Some(s) = slots.get_mut(idx as usize) else {
                continue;
            };
            let live = s.gen == gen && s.conn.is_some();
            if live {
                if let Some(c) = s.conn.as_mut() {
                    for &(b, len) in &chunks {
                        // `b` is masked into the ring and `len` is at most a buffer.
                        c.feed(bufs.buffer(b, len as u32).unwrap_or_default());
                    }
                    if res > 0 {
                        s.last_rx = now;
                    } else if res == 0 {
                        c.finish(End::Eof);
                    } else if res == -libc::ENOBUFS {
                        // Ring ran dry: buffers are returned below; re-arm.
                    } else if res != -libc::ECANCELED {
                        c.fail(&std::io::Error::from_raw_os_error(-res));
                    }
                }
            }
            for &(b, _) in &chunks {
                // `b` is masked into the ring: always one of ours.
                let _ours = bufs.recycle(b);
            }
            if !live {
                continue;
            }
            let ended = s.conn.as_ref().is_some_and(|c| c.end != End::Open);
            if ended {
                if let Some(c) = s.conn.take() {
                    done.push(c);
                }
                open -= 1;
                last_end = Some(now);
                pending.push((PlainOp::CloseFixed { file: idx }, UD_CLOSE));
            } else if !cqueue::more(flags) {
                rearms += 1;
                pending.push(recv(idx, gen));
            }
        }
        bufs.publish();

        if now.duration_since(last_tick) >= TICK {
            last_tick = now;
            for (idx, s) in slots.iter_mut().enumerate() {
                if s.conn.is_some() && now.duration_since(s.last_rx) >= cfg.idle_timeout {
                    if let Some(mut c) = s.conn.take() {
                        c.finish(End::Stalled);
                        done.push(c);
                    }
                    let ud = (u64::from(s.gen) << 32) | idx as u64;
                    pending.push((PlainOp::Cancel { user_data: ud }, UD_CANCEL));
                    pending.push((PlainOp::CloseFixed { file: idx as u32 }, UD_CLOSE));
                    open -= 1;
                    timed_out = true;
                    last_end = Some(now);
                }
            }
            if accepting && now.duration_since(last_accept) >= cfg.idle_timeout {
                accepting = false;
                timed_out = true;
                pending.push((
                    PlainOp::Cancel {
                        user_data: UD_ACCEPT,
                    },
                    UD_CANCEL,
                ));
            }
        }
    }
    let cpu = pktio_host::iface::thread_cpu_time().saturating_sub(cpu0);
    // The kernel may still reference the buffer ring until the ring is gone.
    drop(ring);
    drop(bufs);
    let elapsed = match (first, last_end) {
        (Some(f), Some(l)) => l.saturating_duration_since(f),
        _ => Duration::ZERO,
    };
    let mut r = RecvReport::new("uring", cfg.conns, &done, elapsed, cpu, timed_out);
    r.details.extend([
        (
            "bundle".to_string(),
            if bundle { "yes" } else { "no" }.to_string(),
        ),
        ("buffer_size".to_string(), cfg.buf_size.to_string()),
        ("buffers".to_string(), cfg.buffers.to_string()),
        ("completions".to_string(), completions.to_string()),
        ("buffers_used".to_string(), buffers_used.to_string()),
        ("recv_rearms".to_string(), rearms.to_string()),
    ]);
    Ok(r)
}
