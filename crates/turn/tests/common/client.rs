//! A tiny TURN client, over UDP, TCP or TLS.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

use free4chat_turn::credentials;
use stun_types::message::{Message, MessageClass};
use stun_types::prelude::*;
use turn_types::attribute::{ChannelNumber, Data, XorPeerAddress, XorRelayedAddress};
use turn_types::message::{ALLOCATE, CHANNEL_BIND, CREATE_PERMISSION, DATA};

use super::*;

pub trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

pub enum Link {
    Udp(UdpSocket),
    Stream {
        tcp: TcpStream,
        io: Box<dyn Io>,
        buf: Vec<u8>,
    },
}

pub struct Client {
    pub link: Link,
}

pub fn fresh_creds(nonce: &str) -> Creds {
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
pub fn frame_len(head: &[u8]) -> usize {
    let len = u16::from_be_bytes([head[2], head[3]]) as usize;
    if head[0] >> 6 == 0 {
        20 + len
    } else {
        4 + len.div_ceil(4) * 4
    }
}

impl Client {
    pub fn udp(local_ip: &str, server: SocketAddr) -> Self {
        let s = UdpSocket::bind((ip(local_ip), 0)).unwrap();
        s.connect(server).unwrap();
        Client { link: Link::Udp(s) }
    }

    pub fn stream(tcp: TcpStream, io: Box<dyn Io>) -> Self {
        Client {
            link: Link::Stream {
                tcp,
                io,
                buf: Vec::new(),
            },
        }
    }

    pub fn is_stream(&self) -> bool {
        matches!(self.link, Link::Stream { .. })
    }

    pub fn send(&mut self, data: &[u8]) {
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
    pub fn recv_for(&mut self, wait: Duration) -> io::Result<Option<Vec<u8>>> {
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

    pub fn recv(&mut self) -> Option<Vec<u8>> {
        self.recv_for(WAIT).unwrap()
    }

    /// Nothing arrives for a while.
    pub fn silent(&mut self) -> bool {
        matches!(self.recv_for(QUIET), Ok(None))
    }

    /// The server closes the connection within `wait`.
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if self.recv_for(Duration::from_millis(50)).is_err() {
                return true;
            }
        }
        false
    }

    /// Sends a request and returns its response.
    pub fn request(&mut self, req: Vec<u8>) -> Vec<u8> {
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
    pub fn allocate(&mut self) -> (Creds, SocketAddr) {
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

    pub fn create_permission(&mut self, creds: &Creds, peer: SocketAddr) -> u16 {
        code_of(
            &self.request(request(CREATE_PERMISSION, Some(creds), |w, tx| {
                w.add_attribute(&XorPeerAddress::new(peer, tx)).unwrap()
            })),
        )
    }

    pub fn channel_bind(&mut self, creds: &Creds, number: u16, peer: SocketAddr) -> u16 {
        code_of(&self.request(request(CHANNEL_BIND, Some(creds), |w, tx| {
            w.add_attribute(&ChannelNumber::new(number)).unwrap();
            w.add_attribute(&XorPeerAddress::new(peer, tx)).unwrap()
        })))
    }

    pub fn send_indication(&mut self, peer: SocketAddr, payload: &[u8]) {
        self.send(&send_indication(peer, payload));
    }

    pub fn channel_data(&mut self, number: u16, payload: &[u8]) {
        let mut m = number.to_be_bytes().to_vec();
        m.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        m.extend_from_slice(payload);
        if self.is_stream() {
            m.resize(4 + payload.len().div_ceil(4) * 4, 0);
        }
        self.send(&m);
    }

    /// The next Data indication: (peer, payload).
    pub fn data_indication(&mut self) -> (SocketAddr, Vec<u8>) {
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
    pub fn channel_message(&mut self) -> (u16, Vec<u8>) {
        let data = self.recv().expect("a ChannelData message");
        let number = u16::from_be_bytes([data[0], data[1]]);
        let len = u16::from_be_bytes([data[2], data[3]]) as usize;
        if self.is_stream() {
            assert_eq!(data.len() % 4, 0, "padded on streams");
        }
        (number, data[4..4 + len].to_vec())
    }
}
