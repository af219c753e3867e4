//! The TURN server end to end on loopback, with a tiny TURN client written here.
//!
//! Every test starts its own server on 127.0.0.1 (ports chosen by the system) with one "media"
//! socket as its only peer. That socket's advertised address is 127.0.0.3:<its port>: clients
//! name it, but nothing is ever sent there; the server sends to the local 127.0.0.1 address.
//! Relay addresses are advertised as 127.0.0.4 and bound on 127.0.0.1.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use free4chat_turn::rustls::{self, pki_types};
use free4chat_turn::{Turn, TurnConfig, TurnHandle, credentials};
use stun_types::attribute::{Nonce, Realm, XorMappedAddress};
use stun_types::message::{LongTermKeyCredentials, Message, MessageClass};
use stun_types::prelude::*;
use turn_types::attribute::{ChannelNumber, Data, Lifetime, XorPeerAddress, XorRelayedAddress};
use turn_types::message::{ALLOCATE, CHANNEL_BIND, CREATE_PERMISSION, DATA, REFRESH};

#[path = "../src/test_messages.rs"]
mod test_messages;
use test_messages::*;

const SECRET: &[u8] = b"integration-test-secret";
const QUIET: Duration = Duration::from_millis(250);
const WAIT: Duration = Duration::from_secs(2);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

// ---------------------------------------------------------------------------------------
// The server under test, and its one media socket.

struct Setup {
    turn: TurnHandle,
    media: UdpSocket,
    /// What clients name: 127.0.0.3 with the media socket's port.
    advertised: SocketAddr,
    roots: Option<Arc<rustls::ClientConfig>>,
}

fn setup(tweak: impl FnOnce(&mut TurnConfig)) -> Setup {
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
    fn udp_client(&self) -> Client {
        Client::udp("127.0.0.1", self.turn.local_addrs().udp.unwrap())
    }

    fn tcp_client(&self) -> Client {
        let tcp = TcpStream::connect(self.turn.local_addrs().tcp.unwrap()).unwrap();
        Client::stream(tcp.try_clone().unwrap(), Box::new(tcp))
    }

    fn tls_client(&self) -> Client {
        let tcp = TcpStream::connect(self.turn.local_addrs().tls.unwrap()).unwrap();
        let name = pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(self.roots.clone().unwrap(), name).unwrap();
        Client::stream(
            tcp.try_clone().unwrap(),
            Box::new(rustls::StreamOwned::new(conn, tcp)),
        )
    }

    /// What the media socket receives next: payload and source.
    fn media_recv(&self) -> Option<(Vec<u8>, SocketAddr)> {
        self.media.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = [0u8; 2048];
        let (n, from) = self.media.recv_from(&mut buf).ok()?;
        Some((buf[..n].to_vec(), from))
    }

    /// Waits until the server's stats satisfy `ok`.
    fn wait_stats(&self, ok: impl Fn(&free4chat_turn::Stats) -> bool) -> free4chat_turn::Stats {
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

fn tls_configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
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

// ---------------------------------------------------------------------------------------
// A tiny TURN client.

trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

enum Link {
    Udp(UdpSocket),
    Stream {
        tcp: TcpStream,
        io: Box<dyn Io>,
        buf: Vec<u8>,
    },
}

struct Client {
    link: Link,
}

fn fresh_creds(nonce: &str) -> Creds {
    let (user, pass) = credentials(
        SECRET,
        "peer-7",
        Duration::from_secs(600),
        SystemTime::now(),
    );
    Creds {
        user,
        pass,
        nonce: nonce.to_owned(),
    }
}

/// A stream frame's length from its first 4 bytes: STUN or padded ChannelData.
fn frame_len(head: &[u8]) -> usize {
    let len = u16::from_be_bytes([head[2], head[3]]) as usize;
    if head[0] >> 6 == 0 {
        20 + len
    } else {
        4 + len.div_ceil(4) * 4
    }
}

impl Client {
    fn udp(local_ip: &str, server: SocketAddr) -> Self {
        let s = UdpSocket::bind((ip(local_ip), 0)).unwrap();
        s.connect(server).unwrap();
        Client { link: Link::Udp(s) }
    }

    fn stream(tcp: TcpStream, io: Box<dyn Io>) -> Self {
        Client {
            link: Link::Stream {
                tcp,
                io,
                buf: Vec::new(),
            },
        }
    }

    fn is_stream(&self) -> bool {
        matches!(self.link, Link::Stream { .. })
    }

    fn send(&mut self, data: &[u8]) {
        match &mut self.link {
            Link::Udp(s) => {
                s.send(data).unwrap();
            }
            Link::Stream { io, .. } => {
                io.write_all(data).unwrap();
                io.flush().unwrap();
            }
        }
    }

    /// The next datagram or frame within `wait`; `Err` when a stream ends.
    fn recv_for(&mut self, wait: Duration) -> io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + wait;
        match &mut self.link {
            Link::Udp(s) => {
                s.set_read_timeout(Some(wait)).unwrap();
                let mut buf = vec![0u8; 65_536];
                match s.recv(&mut buf) {
                    Ok(n) => Ok(Some(buf[..n].to_vec())),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            }
            Link::Stream { tcp, io, buf } => loop {
                if buf.len() >= 4 && buf.len() >= frame_len(buf) {
                    let rest = buf.split_off(frame_len(buf));
                    return Ok(Some(std::mem::replace(buf, rest)));
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(None);
                }
                tcp.set_read_timeout(Some(left)).unwrap();
                let mut chunk = [0u8; 4096];
                match io.read(&mut chunk) {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => return Err(e),
                }
            },
        }
    }

    fn recv(&mut self) -> Option<Vec<u8>> {
        self.recv_for(WAIT).unwrap()
    }

    /// Nothing arrives for a while.
    fn silent(&mut self) -> bool {
        matches!(self.recv_for(QUIET), Ok(None))
    }

    /// The server closes the connection within `wait`.
    fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if self.recv_for(Duration::from_millis(50)).is_err() {
                return true;
            }
        }
        false
    }

    /// Sends a request and returns its response.
    fn request(&mut self, req: Vec<u8>) -> Vec<u8> {
        let tx = Message::from_bytes(&req).unwrap().transaction_id();
        self.send(&req);
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(data) = self.recv()
                && let Ok(msg) = Message::from_bytes(&data)
                && msg.transaction_id() == tx
            {
                return data;
            }
        }
        panic!("no response");
    }

    /// Allocate without credentials (401 with realm and nonce), then with them.
    fn allocate(&mut self) -> (Creds, SocketAddr) {
        let reply = self.request(request(ALLOCATE, None, udp_transport));
        let nonce = challenge(&reply);
        let creds = fresh_creds(&nonce);
        let reply = self.request(request(ALLOCATE, Some(&creds), udp_transport));
        let msg = Message::from_bytes(&reply).unwrap();
        assert_eq!(msg.class(), MessageClass::Success, "{msg}");
        let relay = msg
            .attribute::<XorRelayedAddress>()
            .unwrap()
            .addr(msg.transaction_id());
        (creds, relay)
    }

    fn create_permission(&mut self, creds: &Creds, peer: SocketAddr) -> u16 {
        code_of(
            &self.request(request(CREATE_PERMISSION, Some(creds), |w, tx| {
                w.add_attribute(&XorPeerAddress::new(peer, tx)).unwrap()
            })),
        )
    }

    fn channel_bind(&mut self, creds: &Creds, number: u16, peer: SocketAddr) -> u16 {
        code_of(&self.request(request(CHANNEL_BIND, Some(creds), |w, tx| {
            w.add_attribute(&ChannelNumber::new(number)).unwrap();
            w.add_attribute(&XorPeerAddress::new(peer, tx)).unwrap()
        })))
    }

    fn send_indication(&mut self, peer: SocketAddr, payload: &[u8]) {
        self.send(&send_indication(peer, payload));
    }

    fn channel_data(&mut self, number: u16, payload: &[u8]) {
        let mut m = number.to_be_bytes().to_vec();
        m.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        m.extend_from_slice(payload);
        if self.is_stream() {
            m.resize(4 + payload.len().div_ceil(4) * 4, 0);
        }
        self.send(&m);
    }

    /// The next Data indication: (peer, payload).
    fn data_indication(&mut self) -> (SocketAddr, Vec<u8>) {
        let data = self.recv().expect("a Data indication");
        let msg = Message::from_bytes(&data).unwrap();
        assert_eq!(msg.get_type().method(), DATA);
        assert_eq!(msg.class(), MessageClass::Indication);
        let peer = msg
            .attribute::<XorPeerAddress>()
            .unwrap()
            .addr(msg.transaction_id());
        (peer, msg.attribute::<Data>().unwrap().data().to_vec())
    }

    /// The next ChannelData: (number, payload), checking stream padding.
    fn channel_message(&mut self) -> (u16, Vec<u8>) {
        let data = self.recv().expect("a ChannelData message");
        let number = u16::from_be_bytes([data[0], data[1]]);
        let len = u16::from_be_bytes([data[2], data[3]]) as usize;
        if self.is_stream() {
            assert_eq!(data.len() % 4, 0, "padded on streams");
        }
        (number, data[4..4 + len].to_vec())
    }
}

/// A 401 with our realm and a nonce: the nonce.
fn challenge(data: &[u8]) -> String {
    assert_eq!(code_of(data), 401);
    let msg = Message::from_bytes(data).unwrap();
    assert_eq!(msg.attribute::<Realm>().unwrap().realm(), REALM);
    msg.attribute::<Nonce>().unwrap().nonce().to_owned()
}

/// The relay's real address: the advertised port on the bind IP.
fn bound(relay: SocketAddr) -> SocketAddr {
    SocketAddr::new(ip("127.0.0.1"), relay.port())
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn allocate_needs_valid_unexpired_credentials() {
    let s = setup(|_| {});
    let mut c = s.udp_client();
    let nonce = challenge(&c.request(request(ALLOCATE, None, udp_transport)));

    let mut wrong = fresh_creds(&nonce);
    wrong.pass = "not-the-password".into();
    challenge(&c.request(request(ALLOCATE, Some(&wrong), udp_transport)));

    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let (user, pass) = credentials(SECRET, "peer-7", Duration::from_secs(60), hour_ago);
    let expired = Creds {
        user,
        pass,
        nonce: nonce.clone(),
    };
    challenge(&c.request(request(ALLOCATE, Some(&expired), udp_transport)));

    let mut other_secret = fresh_creds(&nonce);
    other_secret.pass = credentials(
        b"other",
        "peer-7",
        Duration::from_secs(600),
        SystemTime::now(),
    )
    .1;
    challenge(&c.request(request(ALLOCATE, Some(&other_secret), udp_transport)));
    assert_eq!(s.turn.stats().allocations, 0);
    assert_eq!(s.turn.stats().refused_auth, 3);

    let good = fresh_creds(&nonce);
    let reply = c.request(request(ALLOCATE, Some(&good), udp_transport));
    let msg = Message::from_bytes(&reply).unwrap();
    assert_eq!(msg.class(), MessageClass::Success);
    let key = LongTermKeyCredentials::new(good.user.clone(), good.pass.clone(), REALM.into());
    msg.validate_integrity(&key.into())
        .expect("a signed response");
    let tx = msg.transaction_id();
    let relay = msg.attribute::<XorRelayedAddress>().unwrap().addr(tx);
    assert_eq!(relay.ip(), ip("127.0.0.4"), "the advertised relay IP");
    assert_ne!(relay.port(), 0);
    assert_eq!(msg.attribute::<Lifetime>().unwrap().seconds(), 600);
    let Link::Udp(sock) = &c.link else {
        unreachable!()
    };
    assert_eq!(
        msg.attribute::<XorMappedAddress>().unwrap().addr(tx),
        sock.local_addr().unwrap()
    );
    assert_eq!(s.turn.stats().allocations, 1);
}

#[test]
fn permissions_only_for_our_media_address() {
    let s = setup(|_| {});
    let mut c = s.udp_client();
    let (creds, _) = c.allocate();
    let media_port = s.advertised.port();
    let elsewhere = SocketAddr::new(ip("127.0.0.2"), media_port);
    let other_port = SocketAddr::new(s.advertised.ip(), media_port.wrapping_add(1));
    let local = s.media.local_addr().unwrap();
    assert_eq!(c.create_permission(&creds, elsewhere), 403);
    assert_eq!(c.create_permission(&creds, other_port), 403);
    assert_eq!(
        c.create_permission(&creds, local),
        403,
        "only advertised addresses"
    );
    assert_eq!(c.channel_bind(&creds, 0x4000, elsewhere), 403);
    assert_eq!(c.channel_bind(&creds, 0x4000, other_port), 403);
    assert_eq!(s.turn.stats().refused_peer, 5);
    assert_eq!(c.create_permission(&creds, s.advertised), 0);
    assert_eq!(c.channel_bind(&creds, 0x4000, s.advertised), 0);
}

#[test]
fn relays_through_send_and_data_indications() {
    let s = setup(|_| {});
    let mut c = s.udp_client();
    let (creds, relay) = c.allocate();
    assert_eq!(c.create_permission(&creds, s.advertised), 0);

    c.send_indication(s.advertised, b"to the media server");
    let (payload, from) = s.media_recv().unwrap();
    assert_eq!(payload, b"to the media server");
    assert_eq!(from, bound(relay), "sent from the relay socket");

    s.media.send_to(b"to the browser", from).unwrap();
    let (peer, payload) = c.data_indication();
    assert_eq!(peer, s.advertised, "reported as the advertised address");
    assert_eq!(payload, b"to the browser");

    // A Send indication to anything else goes nowhere, not even to a live socket.
    let bystander = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.send_indication(bystander.local_addr().unwrap(), b"escape");
    bystander.set_read_timeout(Some(QUIET)).unwrap();
    assert!(bystander.recv_from(&mut [0; 64]).is_err());

    // A foreign sender's datagram to the relay socket is not delivered.
    bystander.send_to(b"intruder", from).unwrap();
    assert!(c.silent());
    s.media.send_to(b"again", from).unwrap();
    assert_eq!(c.data_indication().1, b"again");
    assert_eq!(s.turn.stats().refused_peer, 2);
}

#[test]
fn relays_through_channels() {
    let s = setup(|_| {});
    let mut c = s.udp_client();
    let (creds, relay) = c.allocate();
    assert_eq!(c.channel_bind(&creds, 0x4001, s.advertised), 0);
    c.channel_data(0x4001, b"over a channel");
    let (payload, from) = s.media_recv().unwrap();
    assert_eq!(payload, b"over a channel");
    assert_eq!(from, bound(relay));
    s.media.send_to(b"back", from).unwrap();
    assert_eq!(c.channel_message(), (0x4001, b"back".to_vec()));
    // An unbound channel goes nowhere.
    c.channel_data(0x4002, b"unbound");
    s.media.set_read_timeout(Some(QUIET)).unwrap();
    assert!(s.media.recv_from(&mut [0; 64]).is_err());
}

#[test]
fn allocations_per_client_ip_are_bounded() {
    let s = setup(|c| c.max_allocations_per_ip = 2);
    let server = s.turn.local_addrs().udp.unwrap();
    let mut clients: Vec<Client> = (0..3).map(|_| Client::udp("127.0.0.1", server)).collect();
    clients[0].allocate();
    clients[1].allocate();
    let nonce = challenge(&clients[2].request(request(ALLOCATE, None, udp_transport)));
    let reply = clients[2].request(request(ALLOCATE, Some(&fresh_creds(&nonce)), udp_transport));
    assert_eq!(code_of(&reply), 486);
    // Another IP still gets one.
    Client::udp("127.0.0.5", server).allocate();
    assert_eq!(s.turn.stats().allocations, 3);
    assert_eq!(s.turn.stats().refused_quota, 1);
}

#[test]
fn allocations_in_total_are_bounded() {
    let s = setup(|c| c.max_allocations = 2);
    let server = s.turn.local_addrs().udp.unwrap();
    Client::udp("127.0.0.1", server).allocate();
    Client::udp("127.0.0.5", server).allocate();
    let mut third = Client::udp("127.0.0.6", server);
    let nonce = challenge(&third.request(request(ALLOCATE, None, udp_transport)));
    let reply = third.request(request(ALLOCATE, Some(&fresh_creds(&nonce)), udp_transport));
    assert_eq!(code_of(&reply), 508);
    assert_eq!(s.turn.stats().allocations, 2);
}

#[test]
fn refresh_with_lifetime_zero_frees_the_allocation() {
    let s = setup(|_| {});
    let mut c = s.udp_client();
    let (creds, relay) = c.allocate();
    assert_eq!(s.turn.stats().allocations, 1);
    // The relay port is taken while the allocation lives.
    assert!(UdpSocket::bind(bound(relay)).is_err());
    let reply = c.request(request(REFRESH, Some(&creds), |w, _| {
        w.add_attribute(&Lifetime::new(0)).unwrap()
    }));
    assert_eq!(code_of(&reply), 0);
    let msg = Message::from_bytes(&reply).unwrap();
    assert_eq!(msg.attribute::<Lifetime>().unwrap().seconds(), 0);
    assert_eq!(s.wait_stats(|st| st.allocations == 0).allocations, 0);
    // The relay socket is closed: its port can be bound again.
    let deadline = Instant::now() + WAIT;
    while UdpSocket::bind(bound(relay)).is_err() {
        assert!(Instant::now() < deadline, "relay socket still open");
        std::thread::sleep(Duration::from_millis(10));
    }
    // And the allocation is gone for the client too.
    let reply = c.request(request(REFRESH, Some(&creds), |_, _| {}));
    assert_eq!(code_of(&reply), 437);
}

/// Allocation, permission, Send/Data indications and channels over one stream client.
fn main_path(s: &Setup, mut c: Client) {
    let (creds, relay) = c.allocate();
    assert_eq!(s.turn.stats().connections, 1);
    assert_eq!(
        c.create_permission(&creds, SocketAddr::new(ip("127.0.0.2"), 9)),
        403
    );
    assert_eq!(c.create_permission(&creds, s.advertised), 0);
    c.send_indication(s.advertised, b"indication");
    let (payload, from) = s.media_recv().unwrap();
    assert_eq!(
        (payload.as_slice(), from),
        (&b"indication"[..], bound(relay))
    );
    s.media.send_to(b"data", from).unwrap();
    assert_eq!(c.data_indication(), (s.advertised, b"data".to_vec()));

    assert_eq!(c.channel_bind(&creds, 0x4ABC, s.advertised), 0);
    c.channel_data(0x4ABC, b"odd-sized"); // 9 bytes: padded on the stream
    assert_eq!(s.media_recv().unwrap().0, b"odd-sized");
    s.media.send_to(b"reply", from).unwrap();
    assert_eq!(c.channel_message(), (0x4ABC, b"reply".to_vec()));

    // Closing the connection frees its allocation.
    drop(c);
    let stats = s.wait_stats(|st| st.allocations == 0 && st.connections == 0);
    assert_eq!((stats.allocations, stats.connections), (0, 0));
}

#[test]
fn main_path_over_tcp() {
    let s = setup(|_| {});
    main_path(&s, s.tcp_client());
}

#[test]
fn main_path_over_tls() {
    let s = setup(|_| {});
    main_path(&s, s.tls_client());
}

#[test]
fn idle_and_excess_connections_are_closed() {
    let s = setup(|c| {
        c.max_connections = 1;
        c.auth_timeout = Duration::from_millis(300);
    });
    let mut idle = s.tcp_client();
    assert_eq!(s.wait_stats(|st| st.connections == 1).connections, 1);
    let mut excess = s.tcp_client();
    assert!(excess.closed_within(WAIT), "over max_connections");
    assert!(
        idle.closed_within(WAIT),
        "no allocation within auth_timeout"
    );
    assert_eq!(s.wait_stats(|st| st.connections == 0).connections, 0);
    // A TLS connection that never even starts its handshake is closed too.
    let raw = TcpStream::connect(s.turn.local_addrs().tls.unwrap()).unwrap();
    let mut no_handshake = Client::stream(raw.try_clone().unwrap(), Box::new(raw));
    assert!(no_handshake.closed_within(WAIT));
    assert!(s.turn.stats().refused_quota >= 1);
}

#[test]
fn garbage_does_not_disturb_a_working_allocation() {
    let s = setup(|_| {});
    let mut c = s.udp_client();
    let (creds, relay) = c.allocate();
    assert_eq!(c.channel_bind(&creds, 0x4000, s.advertised), 0);
    let mut tcp_worker = s.tcp_client();
    let (tcp_creds, _) = tcp_worker.allocate();
    assert_eq!(tcp_worker.channel_bind(&tcp_creds, 0x4000, s.advertised), 0);

    let valid = request(REFRESH, Some(&creds), |w, _| {
        w.add_attribute(&Lifetime::new(0)).unwrap()
    });
    let mut junk: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xFF; 100],
        valid[..10].to_vec(),              // truncated header
        valid[..valid.len() - 4].to_vec(), // truncated MESSAGE-INTEGRITY
        [&valid[..2], &[0x03u8, 0xE8][..], &valid[4..20]].concat(), // claims 1000 bytes
        vec![0x40, 0x00, 0x10, 0x00, 1, 2, 3], // ChannelData claiming 4096 bytes
        vec![0x4F, 0xFF, 0x00, 0x01, 9],   // unbound channel
        vec![0; 60_000],
    ];
    let mut flipped = valid.clone();
    let at = flipped.len() - 1;
    flipped[at] ^= 1; // a bad MAC on a Refresh that would delete the allocation
    junk.push(flipped);
    let mut seed = 0x1234_5678u32;
    for _ in 0..50 {
        let len = (seed % 200) as usize;
        let bytes = (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 24) as u8
            })
            .collect();
        junk.push(bytes);
    }

    // Over UDP, from the allocation's own 5-tuple and from another.
    let mut stranger = s.udp_client();
    for j in &junk {
        c.send(j);
        stranger.send(j);
    }
    // Over TCP: garbage ends those connections, truncated frames wait forever.
    for j in junk.iter().filter(|j| !j.is_empty()) {
        let mut t = s.tcp_client();
        t.send(j);
    }
    let mut truncated = s.tcp_client();
    truncated.send(&valid[..30]);

    // Both allocations are intact and relay.
    while c.recv_for(QUIET).unwrap().is_some() {} // the answers to the junk
    c.channel_data(0x4000, b"still here");
    let (payload, from) = s.media_recv().unwrap();
    assert_eq!(
        (payload.as_slice(), from),
        (&b"still here"[..], bound(relay))
    );
    s.media.send_to(b"and back", from).unwrap();
    assert_eq!(c.channel_message(), (0x4000, b"and back".to_vec()));
    tcp_worker.channel_data(0x4000, b"tcp too");
    let (payload, tcp_from) = s.media_recv().unwrap();
    assert_eq!(payload, b"tcp too");
    s.media.send_to(b"tcp back", tcp_from).unwrap();
    assert_eq!(tcp_worker.channel_message(), (0x4000, b"tcp back".to_vec()));
    let stats = s.turn.stats();
    assert_eq!(stats.allocations, 2);
    assert!(stats.malformed > 0);
}

#[test]
fn shutdown_frees_everything() {
    let s = setup(|_| {});
    let mut c = s.udp_client();
    let (_, relay) = c.allocate();
    let addrs = s.turn.local_addrs();
    s.turn.shutdown();
    UdpSocket::bind(bound(relay)).expect("relay port free");
    UdpSocket::bind(addrs.udp.unwrap()).expect("UDP listener closed");
    std::net::TcpListener::bind(addrs.tcp.unwrap()).expect("TCP listener closed");
}

#[test]
fn start_refuses_unusable_configs() {
    let base = TurnConfig::new(REALM, SECRET, ip("127.0.0.1"));
    let mut cases = vec![base.clone()]; // no listener
    let mut c = base.clone();
    c.udp = Some("127.0.0.1:0".parse().unwrap());
    let mut empty_secret = c.clone();
    empty_secret.secret.clear();
    let mut empty_realm = c.clone();
    empty_realm.realm.clear();
    let mut unspecified = c.clone();
    unspecified.relay_advertise = ip("0.0.0.0");
    let mut mixed = c.clone();
    mixed.relay_advertise = ip("::1");
    cases.extend([empty_secret, empty_realm, unspecified, mixed]);
    for config in cases {
        let err = Turn::start(config).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
    assert!(!format!("{c:?}").contains(&format!("{:?}", SECRET)));
    assert!(Turn::start(c).is_ok());
}

/// The server crate starts and stops it from async code: neither may block forever or panic.
#[test]
fn starts_and_stops_inside_a_tokio_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = setup(|_| {});
        let mut c = s.udp_client();
        c.allocate();
        s.turn.shutdown();
    });
}
