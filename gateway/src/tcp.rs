//! SIP over TCP: one task per connection that frames messages by
//! Content-Length (RFC 3261 §18.3) and hands them to the SIP loop, and
//! writes what the loop sends back. A connection that sends something that
//! cannot be framed is closed; the others carry on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::debug;

use crate::driver::Inbound;
use crate::metrics::Metrics;
use crate::sip::message::frame_length;
use crate::sip::{Flow, Transport};

/// The largest SIP message Echo takes over TCP.
const MAX_MESSAGE: usize = 64 * 1024;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Accepts connections forever.
pub async fn accept_loop(
    listener: TcpListener,
    inbound: mpsc::Sender<Inbound>,
    metrics: Arc<Metrics>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(
                    stream,
                    peer,
                    inbound.clone(),
                    metrics.clone(),
                    None,
                ));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                debug!(error = %e, "tcp accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Opens a connection to `peer` for a request whose connection is gone,
/// sends `first`, then serves it like an accepted one.
pub fn connect_and_send(
    peer: SocketAddr,
    first: Vec<u8>,
    inbound: mpsc::Sender<Inbound>,
    metrics: Arc<Metrics>,
) {
    tokio::spawn(async move {
        match tokio::time::timeout(std::time::Duration::from_secs(5), TcpStream::connect(peer))
            .await
        {
            Ok(Ok(stream)) => connection(stream, peer, inbound, metrics, Some(first)).await,
            _ => debug!(%peer, "tcp connect failed"),
        }
    });
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    inbound: mpsc::Sender<Inbound>,
    metrics: Arc<Metrics>,
    first: Option<Vec<u8>>,
) {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    if inbound.send(Inbound::Connected { id, tx }).await.is_err() {
        return;
    }
    metrics.tcp_connections.inc();
    let (mut reader, mut writer) = stream.into_split();
    let write = tokio::spawn(async move {
        if let Some(bytes) = first {
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let flow = Flow::new(Transport::Tcp, peer, Some(id));
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16 * 1024];
    'read: loop {
        let n = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            // RFC 5626 keep-alives: bare CRLFs between messages.
            let skip = buf
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            buf.drain(..skip);
            match frame_length(&buf) {
                Ok(Some(len)) if len <= MAX_MESSAGE && looks_like_sip(&buf[..len]) => {
                    let bytes: Vec<u8> = buf.drain(..len).collect();
                    if inbound
                        .send(Inbound::Message { flow, bytes })
                        .await
                        .is_err()
                    {
                        break 'read;
                    }
                }
                Ok(None) if buf.len() <= MAX_MESSAGE => break,
                _ => {
                    debug!(%peer, "unframeable tcp input: closing");
                    metrics.sip_parse_failures.inc();
                    break 'read;
                }
            }
        }
    }
    write.abort();
    metrics.tcp_connections.dec();
    let _ = inbound.send(Inbound::Closed(id)).await;
}

/// Whether the start line is a SIP request or status line: anything else
/// on a stream means the peer is not speaking SIP, and the stream is closed.
fn looks_like_sip(message: &[u8]) -> bool {
    let line_end = message
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(message.len());
    let line = &message[..line_end];
    line.starts_with(b"SIP/2.0 ") || line.ends_with(b" SIP/2.0")
}

#[cfg(test)]
mod tests {
    use super::looks_like_sip;

    #[test]
    fn start_lines() {
        assert!(looks_like_sip(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n"));
        assert!(looks_like_sip(b"SIP/2.0 200 OK\r\n\r\n"));
        assert!(!looks_like_sip(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!looks_like_sip(b"\x00\x01garbage\r\n\r\n"));
    }
}
