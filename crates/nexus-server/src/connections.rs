//! The cap on open client connections (`MAX_CONNECTIONS`), applied where connections are accepted,
//! before TLS or HTTP: a connection past the cap is closed at once, without a byte read or
//! written, so a flood of idle or slow connections costs a bounded number of sockets and tasks.
//! Slow clients are also timed out by `HEADER_READ_TIMEOUT_SECONDS` (see [`crate::server`]), so a
//! slowloris attacker cannot keep the slots for long.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// An acceptor that admits at most `max` connections at once; wraps the next acceptor (plain or
/// TLS goes on top of it).
#[derive(Clone)]
pub struct CappedAcceptor<A> {
    inner: A,
    slots: Arc<Semaphore>,
}

impl<A> CappedAcceptor<A> {
    pub fn new(inner: A, max: u64) -> Self {
        let max = usize::try_from(max)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Self {
            inner,
            slots: Arc::new(Semaphore::new(max)),
        }
    }
}

impl<A, I, S> Accept<I, S> for CappedAcceptor<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Counted<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        match self.slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let inner = self.inner.accept(stream, service);
                Box::pin(async move {
                    let (stream, service) = inner.await?;
                    Ok((
                        Counted {
                            inner: stream,
                            _slot: slot,
                        },
                        service,
                    ))
                })
            }
            // Dropping `stream` here closes the connection.
            Err(_) => Box::pin(std::future::ready(Err(io::Error::other(
                "MAX_CONNECTIONS reached: connection closed",
            )))),
        }
    }
}

/// A stream that holds one connection slot until it is dropped.
pub struct Counted<T> {
    inner: T,
    _slot: OwnedSemaphorePermit,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
