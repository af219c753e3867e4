//! TCP mode (ICE-TCP, RFC 6544): the session's TCP connections, framed per RFC 4571, and
//! the remote's UDP candidates left out.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// What the TCP connections report to the session.
pub(super) enum TcpIn {
    /// A connection was established.
    Connected,
    /// One de-framed datagram from a remote.
    Frame(SocketAddr, Vec<u8>),
    /// The connection to a remote ended (or never opened).
    Closed(SocketAddr),
}

/// The session's TCP connections, by remote address, each run by its own task: opened when
/// ICE first sends to a remote TCP candidate, RFC 4571 framing both ways.
pub(super) struct TcpLinks {
    links: HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>,
    tasks: HashMap<SocketAddr, AbortHandle>,
    incoming_tx: mpsc::UnboundedSender<TcpIn>,
    pub(super) incoming: mpsc::UnboundedReceiver<TcpIn>,
}

impl TcpLinks {
    pub(super) fn new() -> TcpLinks {
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        TcpLinks {
            links: HashMap::new(),
            tasks: HashMap::new(),
            incoming_tx,
            incoming,
        }
    }

    /// Sends one datagram to `remote`, connecting first if there is no connection yet (what
    /// is sent meanwhile waits for the connection).
    pub(super) fn send(&mut self, remote: SocketAddr, datagram: &[u8]) {
        let Ok(len) = u16::try_from(datagram.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(2 + datagram.len());
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(datagram);
        let link = self.links.entry(remote).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(tcp_link(remote, rx, self.incoming_tx.clone()));
            self.tasks.insert(remote, task.abort_handle());
            tx
        });
        let _ = link.send(framed);
    }

    pub(super) fn closed(&mut self, remote: SocketAddr) {
        self.links.remove(&remote);
        self.tasks.remove(&remote);
        tracing::debug!(%remote, "client TCP connection closed");
    }
}

impl Drop for TcpLinks {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.abort();
        }
    }
}

/// One TCP connection: connects, then writes what `out` gives it and reads frames until either
/// side ends.
async fn tcp_link(
    remote: SocketAddr,
    mut out: mpsc::UnboundedReceiver<Vec<u8>>,
    incoming: mpsc::UnboundedSender<TcpIn>,
) {
    let result: io::Result<()> = async {
        let stream = TcpStream::connect(remote).await?;
        stream.set_nodelay(true)?;
        let _ = incoming.send(TcpIn::Connected);
        let (mut read, mut write) = stream.into_split();
        let writer = async {
            while let Some(framed) = out.recv().await {
                write.write_all(&framed).await?;
            }
            Ok::<(), io::Error>(())
        };
        let reader = async {
            let mut buf = vec![0u8; usize::from(u16::MAX)];
            loop {
                let len = usize::from(read.read_u16().await?);
                read.read_exact(&mut buf[..len]).await?;
                if incoming
                    .send(TcpIn::Frame(remote, buf[..len].to_vec()))
                    .is_err()
                {
                    return Ok(());
                }
            }
        };
        tokio::select! {
            r = writer => r,
            r = reader => r,
        }
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(%remote, "client TCP connection: {e}");
    }
    let _ = incoming.send(TcpIn::Closed(remote));
}

/// `sdp` without its UDP `a=candidate` lines.
pub(super) fn without_udp_candidates(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let udp = line.strip_prefix("a=candidate:").is_some_and(|c| {
            c.split_whitespace()
                .nth(2)
                .is_some_and(|t| t.eq_ignore_ascii_case("udp"))
        });
        if !udp {
            out.push_str(line);
        }
    }
    out
}
