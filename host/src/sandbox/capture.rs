//! Size-capped capture of a guest's stdout and stderr.
//!
//! wasmtime-wasi's `MemoryOutputPipe` traps the guest once it is full, which
//! turns a chatty task into a failed one. [`CappedPipe`] instead keeps the
//! first `cap` bytes, counts the rest and tells the guest every write
//! succeeded.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// What a capped stream kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Captured {
    /// The first bytes written, up to the cap (lossily decoded as UTF-8).
    pub text: String,
    /// Bytes written past the cap and dropped.
    pub dropped_bytes: u64,
}

#[derive(Debug, Default)]
struct Buffer {
    kept: BytesMut,
    dropped: u64,
}

/// An output stream that keeps the first `cap` bytes and drops the rest.
/// Clones share one buffer.
#[derive(Debug, Clone)]
pub struct CappedPipe {
    cap: usize,
    buffer: Arc<Mutex<Buffer>>,
}

impl CappedPipe {
    /// A pipe keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            buffer: Arc::default(),
        }
    }

    fn push(&self, bytes: &[u8]) {
        // A poisoned lock only means another writer panicked mid-push; the
        // buffer is still a valid prefix, so keep using it.
        let mut buf = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        let room = self.cap.saturating_sub(buf.kept.len());
        let keep = room.min(bytes.len());
        buf.kept.extend_from_slice(&bytes[..keep]);
        buf.dropped += (bytes.len() - keep) as u64;
    }

    /// What was captured so far.
    pub fn captured(&self) -> Captured {
        let buf = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        Captured {
            text: String::from_utf8_lossy(&buf.kept).into_owned(),
            dropped_bytes: buf.dropped,
        }
    }
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready: past the cap, writes are counted and dropped.
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CappedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_bytes_and_counts_the_rest() {
        let pipe = CappedPipe::new(4);
        pipe.push(b"abc");
        pipe.push(b"defg");
        let got = pipe.captured();
        assert_eq!(got.text, "abcd");
        assert_eq!(got.dropped_bytes, 3);
    }
}
