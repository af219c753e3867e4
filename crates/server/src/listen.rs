//! The HTTP listener: our own accept loop around hyper, so that every connection is admitted
//! (in total and per address) before anything is read from it, must send each request's
//! header in time, and is closed when nothing moves on it. Connections refused are closed at
//! once, without a byte read: a host that opens thousands of idle connections holds only its
//! share, and the others (and `/api/health`) are still answered.
//!
//! HTTP/1.1 only, over TCP or TLS: the web client, the API and WebSocket upgrades need nothing
//! more, and HTTPS offers only `http/1.1` by ALPN.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::admission::{Admission, HttpPermit};

/// How long a stopping server lets its HTTP connections finish what they are answering.
const STOP_PATIENCE: Duration = Duration::from_secs(3);
/// A pause after a failed accept (out of file descriptors, say), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// What every connection is served with.
#[derive(Clone)]
pub struct Listening {
    pub app: Router,
    pub tls: Option<TlsAcceptor>,
    pub admission: Arc<Admission>,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Serves `listener` until `stop` turns true, then lets open connections finish (for a
/// moment) and returns.
pub async fn serve(
    listener: TcpListener,
    serving: Listening,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut logged_accept_error = false;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                logged_accept_error = false;
                // Refused: closed at once, nothing read (counted by the admission).
                let Ok(permit) = serving.admission.http(peer.ip()) else {
                    drop(stream);
                    continue;
                };
                let serving = serving.clone();
                tokio::spawn(connection(stream, peer, permit, serving, stop.clone()));
            }
            Err(e) => {
                if !logged_accept_error {
                    warn!("HTTP accept error: {e}");
                    logged_accept_error = true;
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
    drop(listener);
    // Connections still open are finishing their answers; upgraded ones (WebSockets) are
    // the sessions', which close on their own.
    let _ = tokio::time::timeout(STOP_PATIENCE, async {
        while serving.admission.stats().http_connections > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    Ok(())
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    permit: HttpPermit,
    serving: Listening,
    stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = Watched {
        inner: stream,
        activity: activity.clone(),
        _permit: permit,
    };
    match &serving.tls {
        None => http(io, peer, &serving, activity, stop).await,
        Some(acceptor) => {
            match tokio::time::timeout(serving.header_timeout, acceptor.accept(io)).await {
                Ok(Ok(tls)) => http(tls, peer, &serving, activity, stop).await,
                Ok(Err(e)) => debug!(%peer, "TLS handshake failed: {e}"),
                Err(_) => serving.admission.count_header_timeout(),
            }
        }
    }
}

/// Serves HTTP/1.1 on one connection until it ends, goes idle too long, or the server stops.
async fn http<I>(
    io: I,
    peer: SocketAddr,
    serving: &Listening,
    activity: Arc<Activity>,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    // Handlers learn the client's address as axum's `ConnectInfo`.
    let service = serving
        .app
        .clone()
        .map_request(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(serving.header_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .with_upgrades();
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result
                    && e.is_timeout()
                {
                    serving.admission.count_header_timeout();
                }
                return;
            }
            _ = activity.idle_for(serving.idle_timeout) => {
                serving.admission.count_idle_timeout();
                return;
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// When a connection last moved a byte.
struct Activity {
    start: Instant,
    /// Milliseconds from `start` to the last read or write that moved bytes.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// Returns once nothing has moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last.load(Ordering::Relaxed));
            let deadline = last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A connection's socket, noting when bytes move and holding its admission while it lives
/// (an upgraded WebSocket keeps it until it closes).
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    _permit: HttpPermit,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
