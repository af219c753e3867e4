//! Attacks on the HTTP listener by one host (or a few), reproduced on loopback from other
//! 127.0.0.x addresses, while real members join from 127.0.0.1: idle connections by the
//! hundred, and requests sent a byte at a time.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn idle_connections_from_one_host_get_only_its_share_while_health_and_members_get_in() {
    let server = server_with(config_with(|c| {
        c.protection.http_max_connections_per_ip = 20;
        // The connections let in stay open for the whole test unless something is sent.
        c.protection.http_header_timeout = Duration::from_secs(60);
    }))
    .await;
    let attacker = ip("127.0.0.2");
    let mut held = Vec::new();
    for _ in 0..300 {
        // The kernel completes each handshake before the server decides.
        if let Ok(s) = connect_from(attacker, server.http_addr()).await {
            held.push(s);
        }
    }
    assert_eq!(held.len(), 300);
    let refused = |s: serde_json::Value| s["admission"]["refused_http_per_ip"].as_u64();
    assert!(
        wait_until(|| async { refused(stats(&server).await) == Some(280) }).await,
        "{:?}",
        stats(&server).await
    );

    // Meanwhile the others are served: the health check, and members who hear each other.
    let (status, body) = get_from(&server, ip("127.0.0.1"), "/api/health")
        .await
        .expect("health answers");
    assert_eq!(status, 200, "{body}");
    let alice = join(&server, "busy", "Alice").await;
    let bob = join(&server, "busy", "Bob").await;
    assert!(hears(&bob, &alice, 10).await);
    assert!(hears(&alice, &bob, 10).await);

    // Of the attacker's connections, its share is answered; the rest were closed unread.
    let mut answered = 0;
    let mut closed = 0;
    for stream in held {
        match get_on(stream, "/api/health").await {
            Some((200, _)) => answered += 1,
            _ => closed += 1,
        }
    }
    assert_eq!((answered, closed), (20, 280));
    server.shutdown().await;
}

#[tokio::test]
async fn the_total_holds_across_hosts_and_frees_as_they_leave() {
    let server = server_with(config_with(|c| {
        c.protection.http_max_connections = 30;
        c.protection.http_max_connections_per_ip = 10;
        c.protection.http_header_timeout = Duration::from_secs(60);
    }))
    .await;
    let mut held = Vec::new();
    for host in 2..=6 {
        for _ in 0..20 {
            if let Ok(s) = connect_from(ip(&format!("127.0.0.{host}")), server.http_addr()).await {
                held.push(s);
            }
        }
    }
    assert_eq!(held.len(), 100);
    // Three hosts' shares fill the total: the rest of theirs, everything of the next two, and
    // now anyone else's, is closed at once, unread.
    assert_eq!(
        get_from(&server, ip("127.0.0.1"), "/api/health").await,
        None
    );
    drop(held);
    // As they leave, others are served again.
    assert!(
        wait_until(|| async {
            get_from(&server, ip("127.0.0.1"), "/api/health")
                .await
                .is_some()
        })
        .await
    );
    let s = stats(&server).await;
    let a = &s["admission"];
    // Hosts 2 and 3 were refused their 10 more each for their share; once host 4 had its
    // share the total was reached: its 10 more, the next two hosts' 40, and our request.
    assert_eq!(a["refused_http_per_ip"], 20, "{s}");
    assert_eq!(a["refused_http_total"], 51, "{s}");
    let _member = join(&server, "after", "Alice").await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_sent_a_byte_at_a_time_is_cut_off_and_so_is_an_idle_kept_alive_connection() {
    let server = server_with(config_with(|c| {
        c.protection.http_header_timeout = Duration::from_millis(500);
    }))
    .await;
    let mut slow = connect_from(ip("127.0.0.2"), server.http_addr())
        .await
        .unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let mut cut_off = false;
    for _ in 0..200 {
        // A header line, a byte at a time, that never ends.
        if slow.write_all(b"X").await.is_err() {
            cut_off = true;
            break;
        }
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_millis(100), slow.read(&mut buf)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            cut_off = true;
            break;
        }
    }
    assert!(cut_off, "the trickled request was never cut off");

    // A connection that got its answer and then sends nothing is closed too.
    let mut kept = connect_from(ip("127.0.0.3"), server.http_addr())
        .await
        .unwrap();
    kept.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, kept.read_to_end(&mut answer)).await;
    assert!(matches!(read, Ok(Ok(_))), "the connection was not closed");
    assert!(answer.starts_with(b"HTTP/1.1 200"));

    let timeouts = stats(&server).await["admission"]["header_timeouts"].as_u64();
    assert!(timeouts >= Some(2), "{timeouts:?}");
    let _member = join(&server, "r", "Alice").await;
    server.shutdown().await;
}

/// Accepts any certificate: the server's is self-signed, made at its start.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// GET `path` over HTTPS from 127.0.0.1: the status and body.
async fn https_get(server: &free4chat::Server, path: &str) -> Option<(u16, String)> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let tcp = connect_from(ip("127.0.0.1"), server.http_addr())
        .await
        .ok()?;
    let name = ServerName::try_from("localhost").ok()?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let mut tls = connector.connect(name, tcp).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    // The server may end TLS without close_notify once it has answered.
    let _ = tokio::time::timeout(WAIT, tls.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text.split_once("\r\n\r\n")?.1.to_owned()))
}

#[tokio::test]
async fn over_https_a_handshake_never_begun_is_cut_off_and_requests_are_answered() {
    let server = server_with(config_with(|c| {
        c.tls.tls_self_signed = true;
        c.protection.http_header_timeout = Duration::from_millis(500);
    }))
    .await;
    let mut silent = connect_from(ip("127.0.0.2"), server.http_addr())
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(WAIT, silent.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
    let (status, body) = https_get(&server, "/api/stats").await.expect("an answer");
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["admission"]["header_timeouts"], 1, "{stats}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_asks_and_never_reads_is_cut_off_by_the_idle_timeout() {
    let server = server_with(config_with(|c| {
        c.protection.http_header_timeout = Duration::from_secs(60);
        c.protection.http_idle_timeout = Duration::from_millis(500);
    }))
    .await;
    // A small receive window, and requests pipelined by the thousand, never reading an
    // answer: the server's writes stall, and nothing moves on the connection.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut greedy = socket.connect(server.http_addr()).await.unwrap();
    let request = b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(2000);
    // The server stops reading too once its answers back up; what it never takes stays here.
    let _ = tokio::time::timeout(WAIT, greedy.write_all(&request)).await;
    let cut_off = || async { stats(&server).await["admission"]["idle_timeouts"] == 1 };
    assert!(wait_until(cut_off).await, "{}", stats(&server).await);
    let _member = join(&server, "r", "Alice").await;
    drop(greedy);
    server.shutdown().await;
}
