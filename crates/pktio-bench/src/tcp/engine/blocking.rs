//! The baseline: one thread per connection, blocking `read(2)`.

use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};

use super::RecvConfig;
use crate::tcp::conn::{ConnRx, End, RecvReport};
use crate::tcp::TcpError;

struct Done {
    conn: ConnRx,
    ended: Instant,
    cpu: Duration,
}

/// Accepts on this thread, reads each connection on its own thread.
pub fn run(listener: TcpListener, cfg: &RecvConfig) -> Result<RecvReport, TcpError> {
    let cpu0 = pktio_host::iface::thread_cpu_time();
    let mut workers = Vec::with_capacity(cfg.conns);
    let mut first: Option<Instant> = None;
    let mut timed_out = false;
    while workers.len() < cfg.conns {
        if !wait_readable(&listener, cfg.idle_timeout)? {
            timed_out = true;
            break;
        }
        let (stream, _) = listener.accept().map_err(|e| TcpError::sys("accept", e))?;
        first.get_or_insert_with(Instant::now);
        let c = cfg.clone();
        let h = thread::Builder::new()
            .name(format!("rx-conn-{}", workers.len()))
            .spawn(move || read_conn(stream, &c))
            .map_err(|e| TcpError::sys("pthread_create", e))?;
        workers.push(h);
    }
    let mut conns = Vec::with_capacity(workers.len());
    let mut cpu = pktio_host::iface::thread_cpu_time().saturating_sub(cpu0);
    let mut last = first;
    for h in workers {
        let d = h
            .join()
            .map_err(|_| TcpError::Panicked("a connection thread"))?;
        cpu += d.cpu;
        last = Some(last.map_or(d.ended, |l| l.max(d.ended)));
        timed_out |= d.conn.end == End::Stalled;
        conns.push(d.conn);
    }
    let elapsed = match (first, last) {
        (Some(f), Some(l)) => l.saturating_duration_since(f),
        _ => Duration::ZERO,
    };
    let mut r = RecvReport::new("blocking", cfg.conns, &conns, elapsed, cpu, timed_out);
    r.details
        .push(("read_size".into(), cfg.buf_size.to_string()));
    Ok(r)
}

fn read_conn(mut s: TcpStream, cfg: &RecvConfig) -> Done {
    let cpu0 = pktio_host::iface::thread_cpu_time();
    let mut c = ConnRx::new(cfg.verify);
    let mut buf = vec![0u8; cfg.buf_size];
    if let Err(e) = s.set_read_timeout(Some(cfg.idle_timeout.max(Duration::from_millis(1)))) {
        c.fail(&e);
    }
    while c.end == End::Open {
        match s.read(&mut buf) {
            Ok(0) => c.finish(End::Eof),
            Ok(n) => c.feed(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                c.finish(End::Stalled)
            }
            Err(e) => c.fail(&e),
        }
    }
    Done {
        conn: c,
        ended: Instant::now(),
        cpu: pktio_host::iface::thread_cpu_time().saturating_sub(cpu0),
    }
}

/// Waits until `fd` is readable: `poll(2)`; false on timeout.
pub(super) fn wait_readable(fd: &impl AsFd, timeout: Duration) -> Result<bool, TcpError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ts = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(TcpError::sys("poll", e.into())),
        }
    }
}
