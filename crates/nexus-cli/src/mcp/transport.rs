//! stdin/stdout as the MCP transport, with a signal when the client closes stdin.
//!
//! The MCP stdio transport ends when the client closes the server's stdin; the client then waits a
//! little for the process to exit before killing it. The SDK drains in-flight requests for a few
//! seconds after end-of-input, and some requests only end when told to (a `subscriptions/listen`
//! that is never cancelled, a long-poll). [`EofSignal`] cancels a token the moment stdin reaches
//! its end, so those stop at once and the process exits promptly.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::sync::CancellationToken;

/// A reader that cancels `eof` when the inner reader reports end-of-input (or fails).
pub struct EofSignal<R> {
    inner: R,
    eof: CancellationToken,
}

impl<R> EofSignal<R> {
    pub fn new(inner: R, eof: CancellationToken) -> Self {
        Self { inner, eof }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for EofSignal<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                self.eof.cancel();
            }
            Poll::Ready(Err(_)) => self.eof.cancel(),
            _ => {}
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn end_of_input_cancels_the_token_data_does_not() {
        let eof = CancellationToken::new();
        let mut r = EofSignal::new(&b"{\"jsonrpc\":\"2.0\"}\n"[..], eof.clone());
        let mut buf = [0u8; 8];
        let n = r.read(&mut buf).await.unwrap();
        assert_eq!(n, 8);
        assert!(!eof.is_cancelled(), "data is not the end");
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await.unwrap();
        assert!(eof.is_cancelled(), "the end of input is");
    }
}
