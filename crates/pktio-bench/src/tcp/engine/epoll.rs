//! One thread, non-blocking sockets, edge-triggered `epoll(7)`.
//!
//! The listener and every connection are registered with `EPOLLET`; on each
//! readiness event the socket is read until `EAGAIN` (edge-triggered
//! readiness is only reported again after the socket was drained).

use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rustix::buffer::spare_capacity;
use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::event::Timespec;

use super::RecvConfig;
use crate::tcp::conn::{ConnRx, End, RecvReport};
use crate::tcp::TcpError;

const LISTENER: u64 = u64::MAX;
/// How often open connections are checked for the idle timeout.
const TICK: Duration = Duration::from_millis(100);

struct Open {
    stream: TcpStream,
    conn: ConnRx,
    last_rx: Instant,
}

/// Runs the epoll receiver on the calling thread.
pub fn run(listener: TcpListener, cfg: &RecvConfig) -> Result<RecvReport, TcpError> {
    let cpu0 = pktio_host::iface::thread_cpu_time();
    let ep = epoll::create(CreateFlags::CLOEXEC)
        .map_err(|e| TcpError::sys("epoll_create1", e.into()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| TcpError::sys("fcntl(O_NONBLOCK)", e))?;
    epoll::add(
        &ep,
        &listener,
        EventData::new_u64(LISTENER),
        EventFlags::IN | EventFlags::ET,
    )
    .map_err(|e| TcpError::sys("epoll_ctl(ADD)", e.into()))?;

    let mut slots: Vec<Option<Open>> = Vec::with_capacity(cfg.conns);
    let mut done: Vec<ConnRx> = Vec::with_capacity(cfg.conns);
    let mut buf = vec![0u8; cfg.buf_size];
    let mut events: Vec<Event> = Vec::with_capacity(256);
    let mut accepting = true;
    let mut timed_out = false;
    let mut first: Option<Instant> = None;
    let mut last_end: Option<Instant> = None;
    let mut last_accept = Instant::now();
    let mut last_tick = Instant::now();
    let mut open = 0usize;

    while accepting || open > 0 {
        events.clear();
        let wait = if open > 0 {
            TICK
        } else {
            cfg.idle_timeout.min(TICK)
        };
        let ts = Timespec {
            tv_sec: wait.as_secs() as i64,
            tv_nsec: i64::from(wait.subsec_nanos()),
        };
        match epoll::wait(&ep, spare_capacity(&mut events), Some(&ts)) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(TcpError::sys("epoll_wait", e.into())),
        }
        for ev in events.iter().copied() {
            let key = ev.data.u64();
            if key == LISTENER {
                // Drain the accept queue (edge-triggered).
                while accepting {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream
                                .set_nonblocking(true)
                                .map_err(|e| TcpError::sys("fcntl(O_NONBLOCK)", e))?;
                            let id = slots.len() as u64;
                            epoll::add(
                                &ep,
                                &stream,
                                EventData::new_u64(id),
                                EventFlags::IN | EventFlags::RDHUP | EventFlags::ET,
                            )
                            .map_err(|e| TcpError::sys("epoll_ctl(ADD)", e.into()))?;
                            let now = Instant::now();
                            first.get_or_insert(now);
                            last_accept = now;
                            slots.push(Some(Open {
                                stream,
                                conn: ConnRx::new(cfg.verify),
                                last_rx: now,
                            }));
                            open += 1;
                            // The connection may already hold data: its edge fired before
                            // it was registered, so read it now.
                            drain(
                                &mut slots,
                                id as usize,
                                &mut buf,
                                &mut open,
                                &mut done,
                                &mut last_end,
                            );
                            if slots.len() == cfg.conns {
                                accepting = false;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => return Err(TcpError::sys("accept", e)),
                    }
                }
            } else {
                drain(
                    &mut slots,
                    key as usize,
                    &mut buf,
                    &mut open,
                    &mut done,
                    &mut last_end,
                );
            }
        }
        let now = Instant::now();
        if now.duration_since(last_tick) >= TICK {
            last_tick = now;
            for slot in slots.iter_mut() {
                if slot
                    .as_ref()
                    .is_some_and(|o| now.duration_since(o.last_rx) >= cfg.idle_timeout)
                {
                    if let Some(mut o) = slot.take() {
                        o.conn.finish(End::Stalled);
                        done.push(o.conn);
                        open -= 1;
                        timed_out = true;
                        last_end = Some(now);
                    }
                }
            }
            if accepting && now.duration_since(last_accept) >= cfg.idle_timeout {
                accepting = false;
                timed_out = true;
            }
        }
    }
    let elapsed = match (first, last_end) {
        (Some(f), Some(l)) => l.saturating_duration_since(f),
        _ => Duration::ZERO,
    };
    let cpu = pktio_host::iface::thread_cpu_time().saturating_sub(cpu0);
    let mut r = RecvReport::new("epoll", cfg.conns, &done, elapsed, cpu, timed_out);
    r.details
        .push(("read_size".into(), cfg.buf_size.to_string()));
    Ok(r)
}

/// Reads connection `id` until `EAGAIN`, EOF or an error; an ended connection
/// is closed (which also removes it from the epoll set).
fn drain(
    slots: &mut [Option<Open>],
    id: usize,
    buf: &mut [u8],
    open: &mut usize,
    done: &mut Vec<ConnRx>,
    last_end: &mut Option<Instant>,
) {
    let Some(Some(o)) = slots.get_mut(id) else {
        return;
    };
    let mut got = false;
    loop {
        match o.stream.read(buf) {
            Ok(0) => {
                o.conn.finish(End::Eof);
                break;
            }
            Ok(n) => {
                got = true;
                o.conn.feed(&buf[..n]);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                o.conn.fail(&e);
                break;
            }
        }
    }
    let now = Instant::now();
    if got {
        o.last_rx = now;
    }
    if o.conn.end != End::Open {
        if let Some(o) = slots[id].take() {
            done.push(o.conn);
            *open -= 1;
            *last_end = Some(now);
        }
    }
}
