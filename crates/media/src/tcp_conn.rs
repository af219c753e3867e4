//! A worker's TCP connections (ICE-TCP, RFC 6544): accepting them within bounds, reading and
//! de-framing what they carry (RFC 4571, see `tcp.rs`), handing each frame to the core, and
//! closing them on silence, on a first frame that is not a participant's STUN request, or when
//! their participant is gone.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedReadHalf;
use tokio::task::AbortHandle;
use tracing::debug;

use crate::shell::Shell;
use crate::tcp::{Deframer, Frame, WriteQueue};

/// Media over TCP (ICE-TCP): each worker listens on the same addresses and port numbers as
/// its UDP sockets and offers a passive TCP host candidate beside each UDP one.
#[derive(Debug, Clone, Copy)]
pub struct TcpOptions {
    /// The most connections a worker holds at once; further ones are closed at once.
    pub max_connections: usize,
    /// A connection must open with a STUN binding request for a member within this time of
    /// being accepted.
    pub first_frame_timeout: Duration,
    /// An open connection without a whole frame for this long is closed: ICE consent lapses
    /// after 30 s anyway, and browsers check a backup pair at least every 25 s.
    pub idle_timeout: Duration,
    /// Bytes that may wait to be written to one connection; beyond, frames are dropped, as a
    /// full UDP socket buffer drops datagrams.
    pub write_queue_bytes: usize,
}

impl Default for TcpOptions {
    fn default() -> TcpOptions {
        TcpOptions {
            max_connections: 4096,
            first_frame_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            write_queue_bytes: 64 * 1024,
        }
    }
}

/// One TCP connection, as the shell keeps it.
pub struct TcpConn {
    /// Tells this connection from a later one from the same remote address.
    pub id: u64,
    /// Opened by a STUN binding request a participant accepted: only then does it carry media.
    pub admitted: bool,
    pub queue: WriteQueue,
    reader: AbortHandle,
    writer: AbortHandle,
}

impl TcpConn {
    pub fn abort(&self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// Accepts TCP connections on one listener; `local` is its advertised address.
pub async fn accept(listener: TcpListener, local: SocketAddr, shell: Rc<RefCell<Shell>>) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, or a connection that died in the backlog: pause
                // rather than spin.
                debug!(%local, "accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let mut sh = shell.borrow_mut();
        if sh.tcp.len() >= sh.tcp_options.max_connections && !sh.evict_oldest_unadmitted() {
            // Full of connections that carry media: dropping the stream closes it.
            sh.tcp_stats.refused += 1;
            debug!(%remote, "TCP connection refused");
            continue;
        }
        if sh.tcp.contains_key(&remote) {
            sh.tcp_stats.refused += 1;
            debug!(%remote, "TCP connection refused: one from that address is open");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let id = sh.next_conn;
        sh.next_conn += 1;
        let options = sh.tcp_options;
        let (queue, write) = WriteQueue::new(write, options.write_queue_bytes);
        // Neither task runs before this one yields, so the entry is in place when they do.
        let writer = tokio::task::spawn_local(write);
        let reader = tokio::task::spawn_local(read_frames(
            read,
            (remote, id),
            local,
            options,
            shell.clone(),
        ));
        let conn = TcpConn {
            id,
            admitted: false,
            queue,
            reader: reader.abort_handle(),
            writer: writer.abort_handle(),
        };
        sh.tcp.insert(remote, conn);
        sh.publish_stats();
    }
}

/// Why a connection's reader stopped.
enum Ended {
    Closed,
    Idle,
    Rejected,
    /// The shell closed the connection (its participant is gone) while the reader was busy.
    Dropped,
}

/// Reads one connection: de-frames what arrives and hands each frame to the core, the first
/// one as the connection's credentials.
async fn read_frames(
    mut read: OwnedReadHalf,
    (remote, id): (SocketAddr, u64),
    local: SocketAddr,
    options: TcpOptions,
    shell: Rc<RefCell<Shell>>,
) {
    let mut deframer = Deframer::default();
    let mut admitted = false;
    // Deadlines count whole frames, not bytes: a trickle of bytes keeps nothing open.
    let opened = tokio::time::Instant::now();
    let mut last_frame = opened;
    let ended = loop {
        let deadline = if admitted {
            last_frame + options.idle_timeout
        } else {
            opened + options.first_frame_timeout
        };
        let n = match tokio::time::timeout_at(deadline, read.read(deframer.space())).await {
            Err(_) => break Ended::Idle,
            Ok(Ok(0)) => break Ended::Closed,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                debug!(%remote, "TCP read: {e}");
                break Ended::Closed;
            }
        };
        deframer.filled(n);
        let now = Instant::now();
        let mut sh = shell.borrow_mut();
        let mut verdict = None;
        while let Some(frame) = deframer.next_frame() {
            let data = match frame {
                Frame::Data(data) => {
                    last_frame = now.into();
                    data
                }
                Frame::Oversized(_) if admitted => {
                    sh.tcp_stats.oversized += 1;
                    continue;
                }
                Frame::Oversized(_) => {
                    sh.tcp_stats.oversized += 1;
                    verdict = Some(Ended::Rejected);
                    break;
                }
            };
            if admitted {
                sh.take_frame(now, remote, local, data);
            } else if sh.take_first_frame(now, (remote, id), local, data) {
                admitted = true;
            } else {
                verdict = Some(Ended::Rejected);
            }
            if sh.tcp.get(&remote).is_none_or(|c| c.id != id) {
                verdict = Some(Ended::Dropped);
            }
            if verdict.is_some() {
                break;
            }
        }
        if let Some(v) = verdict {
            break v;
        }
    };
    let mut sh = shell.borrow_mut();
    match ended {
        Ended::Dropped => return,
        Ended::Idle => sh.tcp_stats.idle += 1,
        Ended::Rejected => sh.tcp_stats.rejected += 1,
        Ended::Closed => {}
    }
    if sh.tcp.get(&remote).is_none_or(|c| c.id != id) {
        return;
    }
    if let Some(conn) = sh.tcp.remove(&remote) {
        conn.writer.abort();
    }
    debug!(%remote, admitted, "TCP connection closed");
    if admitted {
        sh.sfu.tcp_closed(remote);
        sh.send_all(None);
    }
    sh.publish_stats();
}
