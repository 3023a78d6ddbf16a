//! [`AsyncBackend`]: any backend under tokio, through `AsyncFd`
//! (feature `tokio`).
//!
//! The backend's descriptor ([`AsFd`]: the AF_XDP or AF_PACKET socket, or
//! the io_uring backend's eventfd) is registered with tokio's reactor. The
//! async batch calls run the ordinary non-blocking batch call; when it finds
//! nothing they wait until the descriptor is readable and try again,
//! clearing tokio's readiness only after a try that found nothing, so no
//! wakeup is lost. The futures are cancel-safe: packets are only taken
//! after the wait, synchronously.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::{BackendError, BackendInfo, BackendStats, Forwarded, PacketIo};

/// Wraps a backend so its receive calls can be awaited. Transmitting stays
/// synchronous ([`get_mut`](Self::get_mut)): TX rings never block.
#[derive(Debug)]
pub struct AsyncBackend<B: PacketIo + AsFd> {
    fd: AsyncFd<Inner<B>>,
}

/// `AsyncFd` wants `AsRawFd`; this forwards the backend's `AsFd`.
#[derive(Debug)]
struct Inner<B>(B);

impl<B: AsFd> AsRawFd for Inner<B> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl<B: PacketIo + AsFd> AsyncBackend<B> {
    /// Registers `backend` with the current tokio runtime (`epoll_ctl`).
    ///
    /// # Errors
    /// Outside a tokio runtime, or if the descriptor cannot be registered.
    pub fn new(backend: B) -> io::Result<Self> {
        // `with_interest` is deprecated from tokio 1.53.3 on in favour of the
        // `unsafe` `register_with_interest`, whose contract (the descriptor
        // stays open and the same while registered) this type keeps as long
        // as the backend is not replaced through `get_mut`; it is kept so
        // that every tokio 1.38+ works.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(Inner(backend), Interest::READABLE)?;
        Ok(AsyncBackend { fd })
    }

    /// The backend.
    pub fn get_ref(&self) -> &B {
        &self.fd.get_ref().0
    }

    /// The backend, for synchronous calls (`tx_batch`, `flush`, `stats`).
    /// Do not replace it (`std::mem::replace`, `swap`): the runtime watches
    /// its descriptor; use [`into_inner`](Self::into_inner) and
    /// [`new`](Self::new) to change backends.
    pub fn get_mut(&mut self) -> &mut B {
        &mut self.fd.get_mut().0
    }

    /// Unregisters and returns the backend.
    pub fn into_inner(self) -> B {
        self.fd.into_inner().0
    }

    /// Waits until at least one packet is received, then behaves as
    /// [`PacketIo::rx_batch`]. Returns the number received (never 0).
    pub async fn rx_batch<F: FnMut(&mut [u8])>(
        &mut self,
        max: u32,
        mut f: F,
    ) -> Result<u32, BackendError> {
        // Try first: a backend may have packets (or, for io_uring, start
        // its receive) before its descriptor ever signals.
        let n = self.get_mut().rx_batch(max, &mut f)?;
        if n > 0 {
            return Ok(n);
        }
        loop {
            let mut guard = self.fd.readable_mut().await.map_err(io_error)?;
            let n = guard.get_inner_mut().0.rx_batch(max, &mut f)?;
            if n > 0 {
                return Ok(n);
            }
            guard.clear_ready();
        }
    }

    /// Waits until at least one packet is received, then behaves as
    /// [`PacketIo::forward_batch`].
    pub async fn forward_batch<F: FnMut(&mut [u8]) -> bool>(
        &mut self,
        max: u32,
        mut f: F,
    ) -> Result<Forwarded, BackendError> {
        let r = self.get_mut().forward_batch(max, &mut f)?;
        if r.rx > 0 {
            return Ok(r);
        }
        loop {
            let mut guard = self.fd.readable_mut().await.map_err(io_error)?;
            let r = guard.get_inner_mut().0.forward_batch(max, &mut f)?;
            if r.rx > 0 {
                return Ok(r);
            }
            guard.clear_ready();
        }
    }

    /// [`PacketIo::stats`].
    pub fn stats(&self) -> Result<BackendStats, BackendError> {
        self.get_ref().stats()
    }

    /// [`PacketIo::describe`].
    pub fn describe(&self) -> &BackendInfo {
        self.get_ref().describe()
    }
}

fn io_error(e: io::Error) -> BackendError {
    BackendError::Async(e)
}
