//! The TURN server end to end on loopback, with a tiny TURN client written here
//! (`client.rs`): what the test files share.
//!
//! Every test starts its own server on 127.0.0.1 (ports chosen by the system) with one "media"
//! socket as its only peer. That socket's advertised address is 127.0.0.3:<its port>: clients
//! name it, but nothing is ever sent there; the server sends to the local 127.0.0.1 address.
//! Relay addresses are advertised as 127.0.0.4 and bound on 127.0.0.1.

// Each test file uses only some of what is here.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use free4chat_turn::rustls::{self, pki_types};
use free4chat_turn::{Turn, TurnConfig, TurnHandle};
use stun_types::attribute::{Nonce, Realm};
use stun_types::message::Message;

#[path = "../../src/test_messages.rs"]
mod test_messages;
pub use test_messages::*;

mod client;
pub use client::*;

pub const SECRET: &[u8] = b"integration-test-secret";
pub const QUIET: Duration = Duration::from_millis(250);
pub const WAIT: Duration = Duration::from_secs(2);

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The server under test, and its one media socket.
pub struct Setup {
    pub turn: TurnHandle,
    pub media: UdpSocket,
    /// What clients name: 127.0.0.3 with the media socket's port.
    pub advertised: SocketAddr,
    roots: Option<Arc<rustls::ClientConfig>>,
}

pub fn setup(tweak: impl FnOnce(&mut TurnConfig)) -> Setup {
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let advertised = SocketAddr::new(ip("127.0.0.3"), media.local_addr().unwrap().port());
    let (server_tls, client_tls) = tls_configs();
    let mut config = TurnConfig::new(REALM, SECRET, ip("127.0.0.1"));
    config.relay_advertise = ip("127.0.0.4");
    config.udp = Some("127.0.0.1:0".parse().unwrap());
    config.tcp = Some("127.0.0.1:0".parse().unwrap());
    config.tls = Some(("127.0.0.1:0".parse().unwrap(), server_tls));
    config.peers = vec![(advertised, media.local_addr().unwrap())];
    tweak(&mut config);
    Setup {
        turn: Turn::start(config).unwrap(),
        media,
        advertised,
        roots: Some(client_tls),
    }
}

impl Setup {
    pub fn udp_client(&self) -> Client {
        Client::udp("127.0.0.1", self.turn.local_addrs().udp.unwrap())
    }

    pub fn tcp_client(&self) -> Client {
        let tcp = TcpStream::connect(self.turn.local_addrs().tcp.unwrap()).unwrap();
        Client::stream(tcp.try_clone().unwrap(), Box::new(tcp))
    }

    pub fn tls_client(&self) -> Client {
        let tcp = TcpStream::connect(self.turn.local_addrs().tls.unwrap()).unwrap();
        let name = pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(self.roots.clone().unwrap(), name).unwrap();
        Client::stream(
            tcp.try_clone().unwrap(),
            Box::new(rustls::StreamOwned::new(conn, tcp)),
        )
    }

    /// What the media socket receives next: payload and source.
    pub fn media_recv(&self) -> Option<(Vec<u8>, SocketAddr)> {
        self.media.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = [0u8; 2048];
        let (n, from) = self.media.recv_from(&mut buf).ok()?;
        Some((buf[..n].to_vec(), from))
    }

    /// Waits until the server's stats satisfy `ok`.
    pub fn wait_stats(&self, ok: impl Fn(&free4chat_turn::Stats) -> bool) -> free4chat_turn::Stats {
        let deadline = Instant::now() + WAIT;
        loop {
            let stats = self.turn.stats();
            if ok(&stats) || Instant::now() > deadline {
                return stats;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

pub fn tls_configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let der = cert.cert.der().clone();
    let key = pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

/// A 401 with our realm and a nonce: the nonce.
pub fn challenge(data: &[u8]) -> String {
    assert_eq!(code_of(data), 401);
    let msg = Message::from_bytes(data).unwrap();
    assert_eq!(msg.attribute::<Realm>().unwrap().realm(), REALM);
    msg.attribute::<Nonce>().unwrap().nonce().to_owned()
}

/// The relay's real address: the advertised port on the bind IP.
pub fn bound(relay: SocketAddr) -> SocketAddr {
    SocketAddr::new(ip("127.0.0.1"), relay.port())
}
