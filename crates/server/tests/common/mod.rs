//! Shared helpers for the integration tests: a real server on loopback, real clients.

#![allow(dead_code)]

use std::time::Duration;

pub mod redis;
pub mod video;

use free4chat::Server;
use free4chat::config::Config;
use free4chat_client::{Client, ClientConfig};

pub const WAIT: Duration = Duration::from_secs(10);

/// A server on loopback with one media worker. Its media threads run at normal priority: many
/// servers share this machine's cores with other work during the tests, and a test that wants
/// real-time priority says so. A closing connection waits half a second, not three, for the
/// client's close: the tests' hand-driven clients mostly stop reading before the server stops,
/// and every connection open then would hold up its shutdown.
pub fn config() -> Config {
    let mut config = Config::default();
    config.general.listen = "127.0.0.1:0".parse().unwrap();
    config.media.public_ip = vec!["127.0.0.1".parse().unwrap()];
    config.media.media_port = 0;
    config.media.media_workers = 1;
    config.media.media_realtime_priority = 0;
    config.connections.close_linger = Duration::from_millis(500);
    config
}

/// [`config`], changed by `change`.
pub fn config_with(change: impl FnOnce(&mut Config)) -> Config {
    let mut config = config();
    change(&mut config);
    config
}

pub async fn server() -> Server {
    server_with(config()).await
}

pub async fn server_with(config: Config) -> Server {
    init_log();
    Server::start(&config).await.expect("server starts")
}

/// Polls `f` every 50 ms until it holds, for at most 10 s.
pub async fn wait_until<F, Fut>(f: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

pub fn init_log() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

pub async fn join(server: &Server, room: &str, name: &str) -> Client {
    Client::join(ClientConfig::new(server.http_addr(), room, name))
        .await
        .expect("joins")
}

/// Waits until `client` has received at least `n` packets from `from`.
pub async fn hears(client: &Client, from: &Client, n: u64) -> bool {
    let id = from.id;
    client
        .wait_for(WAIT, |s| {
            s.received.get(&id.0).is_some_and(|r| r.packets >= n)
        })
        .await
}

/// Packets `to` has received from `from` so far.
pub fn count(to: &Client, from: &Client) -> u64 {
    to.received_from(from.id)
}

/// The sequence number after the last one `to` has received from `from`.
pub fn seq_end(to: &Client, from: &Client) -> u32 {
    to.with_state(|s| s.received.get(&from.id.0).map_or(0, |r| r.seq_end))
}

/// The first sequence number `to` received from `from` (0 if none yet).
pub fn first_seq(to: &Client, from: &Client) -> u32 {
    to.with_state(|s| {
        s.received
            .get(&from.id.0)
            .and_then(|r| r.first())
            .unwrap_or(0)
    })
}

/// Sequence numbers from `from`, from `start` up to the last one `to` received, that never
/// arrived; and that last one, +1. (Before a subscription opens, a sender's first packets go
/// to nobody: counting starts once both hear each other.)
pub fn missing_since(to: &Client, from: &Client, start: u32) -> (u64, u32) {
    to.with_state(|s| {
        let r = &s.received[&from.id.0];
        (r.missing_between(start, r.seq_end), r.seq_end)
    })
}

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A bare WebSocket to the server, for speaking the protocol by hand.
pub async fn ws(server: &Server) -> Ws {
    let url = format!("ws://{}/ws", server.http_addr());
    tokio_tungstenite::connect_async(url).await.expect("ws").0
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
}

/// The next protocol message, skipping pings; None when the connection ended.
pub async fn next(ws: &mut Ws) -> Option<ServerMsg> {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next()).await.ok()??;
        match frame.ok()? {
            Message::Text(t) => return serde_json::from_str(t.as_str()).ok(),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// The next message that matches, skipping others.
pub async fn next_matching(ws: &mut Ws, f: impl Fn(&ServerMsg) -> bool) -> Option<ServerMsg> {
    loop {
        let m = next(ws).await?;
        if f(&m) {
            return Some(m);
        }
    }
}

pub async fn expect_error(ws: &mut Ws, code: ErrorCode) {
    match next(ws).await {
        Some(ServerMsg::Error { code: c, .. }) if c == code => {}
        other => panic!("expected error {code:?}, got {other:?}"),
    }
}

/// Asserts that `answer` (as `next` read it) is the error `code`.
#[track_caller]
pub fn assert_error(answer: &Option<ServerMsg>, code: ErrorCode) {
    assert!(
        matches!(answer, Some(ServerMsg::Error { code: c, .. }) if *c == code),
        "expected error {code:?}, got {answer:?}"
    );
}

/// Waits up to 10 s for a server process to exit, off the runtime's threads; kills it and
/// returns None if it does not.
pub async fn exit_status(mut child: std::process::Child) -> Option<std::process::ExitStatus> {
    tokio::task::spawn_blocking(move || {
        for _ in 0..100 {
            if let Some(s) = child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        None
    })
    .await
    .unwrap()
}

/// Joins by hand; returns the `joined` message.
pub async fn ws_join(ws: &mut Ws, room: &str, name: &str) -> ServerMsg {
    let join = serde_json::json!({"type":"join","v":1,"room":room,"name":name});
    send_text(ws, &join.to_string()).await;
    match next(ws).await {
        Some(m @ ServerMsg::Joined { .. }) => m,
        other => panic!("expected joined, got {other:?}"),
    }
}

pub use free4chat_signal::{ErrorCode, ServerMsg};

/// A plain HTTP GET of `path`: the response's head (status line and headers) and its body.
pub async fn http_get(server: &Server, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(server.http_addr())
        .await
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A TCP connection to `to` from `from` (one of loopback's many addresses: 127.0.0.x), as a
/// host other than the tests' own would make it.
pub async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// A bare WebSocket to the server from `from`, with an `Origin` header if given; None if the
/// handshake fails.
pub async fn ws_from(server: &Server, from: IpAddr, origin: Option<&str>) -> Option<Ws> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let stream = connect_from(from, server.http_addr()).await.ok()?;
    let mut request = format!("ws://{}/ws", server.http_addr())
        .into_client_request()
        .unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(request, stream))
        .await
        .ok()?
        .ok()?;
    Some(ws)
}

/// Sends one GET on `stream` and reads the answer to its end: the status and the body, or
/// None if the connection was closed without one.
pub async fn get_on(mut stream: TcpStream, path: &str) -> Option<(u16, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

/// GET `path` from `from`: the status and body, or None if the server did not answer.
pub async fn get_from(server: &Server, from: IpAddr, path: &str) -> Option<(u16, String)> {
    let stream = connect_from(from, server.http_addr()).await.ok()?;
    get_on(stream, path).await
}

/// `/api/stats`, asked from 127.0.0.1.
pub async fn stats(server: &Server) -> serde_json::Value {
    let (status, body) = get_from(server, ip("127.0.0.1"), "/api/stats")
        .await
        .expect("stats answer");
    assert_eq!(status, 200);
    serde_json::from_str(&body).expect("stats are JSON")
}

use free4chat_client::relay::{Relay, RelayConfig};

/// A rate-limited relay in front of the server's (first) media address: a client whose
/// `media_via` is its address sends all its media through it (see `free4chat_client::relay`).
pub async fn relay(server: &Server, config: RelayConfig) -> Relay {
    Relay::start(server.media_addrs()[0], config)
        .await
        .expect("relay starts")
}
