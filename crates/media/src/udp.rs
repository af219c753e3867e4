//! Batched UDP I/O: many datagrams per system call (`sendmmsg`, `recvmmsg`).
//!
//! An SFU turns one incoming packet into one outgoing packet per listener, each to a different
//! address, so GSO (one destination per batch) does not apply; `sendmmsg` sends them all with
//! one system call instead of one each.

use std::io::{IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use free4chat_sfu::Transmit;
use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg, setsockopt,
    sockopt,
};
use nix::sys::time::TimeSpec;

/// The most datagrams one system call carries.
pub const BATCH: usize = 64;
/// The largest datagram we receive. Anything larger is not WebRTC.
pub const MAX_DATAGRAM: usize = 2048;
/// Socket buffer size we ask for, so a burst of fan-out fits.
const SOCKET_BUFFER: usize = 4 << 20;

/// Asks the kernel for larger socket buffers; it may grant less.
pub fn enlarge_buffers(socket: &impl AsFd) {
    let fd = socket.as_fd();
    let _ = setsockopt(&fd, sockopt::SndBuf, &SOCKET_BUFFER);
    let _ = setsockopt(&fd, sockopt::RcvBuf, &SOCKET_BUFFER);
}

/// Asks the kernel to stamp each received datagram with the time it arrived, so that the time
/// it waited in the socket counts in what we measure ([`Receiver::datagrams`]). Ask before the
/// first receive: the kernel shrinks each reused header's control space to what it last used
/// (none, without stamps), and the stamps would then not fit.
pub fn stamp_arrivals(socket: &impl AsFd) -> bool {
    setsockopt(&socket.as_fd(), sockopt::ReceiveTimestampns, &true).is_ok()
}

/// How many datagrams the kernel has dropped at this socket since it was opened, because its
/// receive buffer was full (`SO_MEMINFO`); `None` where the system does not say.
pub fn dropped(socket: &impl AsRawFd) -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        let mut info = [0u32; SK_MEMINFO_VARS];
        let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
        // SAFETY: `info` and `len` are valid for writes and outlive the call; `len` tells the
        // kernel how much of `info` it may fill, and it writes back how much it did.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_MEMINFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let drops = libc::SK_MEMINFO_DROPS as usize;
        (rc == 0 && len as usize > drops * std::mem::size_of::<u32>()).then(|| info[drops])
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = socket;
        None
    }
}

/// The figures `SO_MEMINFO` gives (`SK_MEMINFO_VARS` in the kernel's headers).
#[cfg(target_os = "linux")]
const SK_MEMINFO_VARS: usize = 9;

/// Reusable state for sending batches.
pub struct Sender {
    headers: MultiHeaders<SockaddrStorage>,
    addrs: Vec<Option<SockaddrStorage>>,
}

impl Default for Sender {
    fn default() -> Sender {
        Sender {
            headers: MultiHeaders::preallocate(BATCH, None),
            addrs: Vec::with_capacity(BATCH),
        }
    }
}

impl Sender {
    /// Sends each datagram once, `BATCH` per system call. Returns how many were handed to the
    /// kernel; the rest were dropped (a full socket buffer, as a network would).
    pub fn send(&mut self, fd: RawFd, datagrams: &[Transmit]) -> usize {
        let mut sent = 0;
        for chunk in datagrams.chunks(BATCH) {
            self.addrs.clear();
            self.addrs.extend(
                chunk
                    .iter()
                    .map(|d| Some(SockaddrStorage::from(d.destination))),
            );
            // On the stack: no allocation per batch.
            let mut slices = [[IoSlice::new(&[])]; BATCH];
            for (slot, d) in slices.iter_mut().zip(chunk) {
                *slot = [IoSlice::new(&d.contents)];
            }
            let slices = &slices[..chunk.len()];
            let mut offset = 0;
            // A partial send leaves the rest for one more try; then they are dropped.
            for _ in 0..2 {
                let result = sendmmsg(
                    fd,
                    &mut self.headers,
                    &slices[offset..],
                    &self.addrs[offset..],
                    [],
                    MsgFlags::MSG_DONTWAIT,
                );
                match result {
                    Ok(r) => offset += r.count(),
                    Err(Errno::EINTR) => continue,
                    Err(_) => break,
                }
                if offset == chunk.len() {
                    break;
                }
            }
            sent += offset;
        }
        sent
    }
}

/// Reusable buffers for receiving batches.
pub struct Receiver {
    headers: MultiHeaders<SockaddrStorage>,
    bufs: Box<[[u8; MAX_DATAGRAM]; BATCH]>,
    /// (length, source, arrival) of each datagram of the last batch.
    meta: Vec<(usize, SocketAddr, Option<SystemTime>)>,
}

impl Default for Receiver {
    fn default() -> Receiver {
        Receiver {
            headers: MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(TimeSpec))),
            bufs: Box::new([[0u8; MAX_DATAGRAM]; BATCH]),
            meta: Vec::with_capacity(BATCH),
        }
    }
}

impl Receiver {
    /// Reads what is waiting, up to `BATCH` datagrams, without blocking.
    pub fn recv(&mut self, fd: RawFd) -> std::io::Result<usize> {
        self.meta.clear();
        // On the stack: no allocation per batch.
        let mut slices = self.bufs.each_mut().map(|b| [IoSliceMut::new(b)]);
        let results = recvmmsg(
            fd,
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(std::io::Error::from)?;
        for r in results {
            let source = r.address.as_ref().and_then(to_socket_addr);
            // Truncated datagrams (larger than our buffer) are not ours to parse.
            if r.flags.contains(MsgFlags::MSG_TRUNC) {
                continue;
            }
            let arrival = r.cmsgs().ok().and_then(|mut cmsgs| {
                cmsgs.find_map(|c| match c {
                    ControlMessageOwned::ScmTimestampns(t) => to_system_time(t),
                    _ => None,
                })
            });
            if let Some(source) = source {
                self.meta.push((r.bytes, source, arrival));
            }
        }
        Ok(self.meta.len())
    }

    /// The datagrams of the last batch, with the time each reached the socket where the
    /// kernel stamps them ([`stamp_arrivals`]).
    pub fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, &[u8], Option<SystemTime>)> {
        (0..self.meta.len()).filter_map(|i| self.datagram(i))
    }

    /// The `i`-th datagram of the last batch: its source, contents and arrival stamp.
    pub fn datagram(&self, i: usize) -> Option<(SocketAddr, &[u8], Option<SystemTime>)> {
        let (len, source, arrival) = *self.meta.get(i)?;
        let buf = self.bufs.get(i)?;
        Some((source, buf.get(..len)?, arrival))
    }
}

fn to_system_time(t: TimeSpec) -> Option<SystemTime> {
    let secs = u64::try_from(t.tv_sec()).ok()?;
    let nanos = u32::try_from(t.tv_nsec()).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

fn to_socket_addr(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    s.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_goes_out_and_comes_back_in_order() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        enlarge_buffers(&rx);
        let to = rx.local_addr().unwrap();
        let payloads: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 10 + i as usize]).collect();
        let datagrams: Vec<Transmit> = payloads
            .iter()
            .map(|p| Transmit {
                proto: str0m::net::Protocol::Udp,
                source: tx.local_addr().unwrap(),
                destination: to,
                contents: p.clone().into(),
            })
            .collect();
        assert_eq!(Sender::default().send(tx.as_raw_fd(), &datagrams), 100);

        let mut receiver = Receiver::default();
        let mut got = Vec::new();
        for _ in 0..10 {
            if receiver.recv(rx.as_raw_fd()).is_ok() {
                got.extend(receiver.datagrams().map(|(from, d, _)| (from, d.to_vec())));
            }
            if got.len() == 100 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(got.len(), 100);
        assert!(
            got.iter()
                .all(|(from, _)| *from == tx.local_addr().unwrap())
        );
        assert_eq!(
            got.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(),
            payloads
        );
    }

    #[test]
    fn arrivals_are_stamped_by_the_kernel_when_asked() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let mut receiver = Receiver::default();

        let arrivals = |receiver: &mut Receiver| {
            for _ in 0..100 {
                if receiver.recv(rx.as_raw_fd()).is_ok() {
                    return receiver
                        .datagrams()
                        .map(|(_, _, at)| at)
                        .collect::<Vec<_>>();
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            panic!("nothing arrived");
        };
        tx.send_to(b"unstamped", to).unwrap();
        assert_eq!(arrivals(&mut receiver), vec![None]);

        // A fresh receiver: the kernel shrinks each header's control space to what it used.
        let mut receiver = Receiver::default();
        assert!(stamp_arrivals(&rx));
        // The kernel switches stamping on for the whole system a moment later (when no other
        // socket had it on); until then it stamps datagrams as they are read. Wait for a
        // datagram stamped well before it was read (2 s at most).
        for _ in 0..20 {
            tx.send_to(b"probe", to).unwrap();
            let sent = SystemTime::now();
            std::thread::sleep(std::time::Duration::from_millis(100));
            if arrivals(&mut receiver)[0].is_some_and(|at| at <= sent) {
                break;
            }
        }
        let before = SystemTime::now();
        tx.send_to(b"stamped", to).unwrap();
        let sent = SystemTime::now();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let read_from = SystemTime::now();
        let got = arrivals(&mut receiver);
        let at = got[0].unwrap();
        // Stamped on arrival (on loopback, while the sender's call ran), not when read at
        // least 300 ms later; the margins only allow for the kernel deferring its receive work.
        assert!(at >= before - Duration::from_millis(1), "{at:?} {before:?}");
        assert!(at <= sent + Duration::from_millis(150), "{at:?} {sent:?}");
        assert!(read_from.duration_since(at).unwrap() >= Duration::from_millis(150));
    }

    #[test]
    fn datagrams_dropped_at_a_full_socket_are_counted() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        // The smallest buffer the kernel allows holds a few of these, not 200.
        setsockopt(&rx.as_fd(), sockopt::RcvBuf, &1024).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        assert_eq!(dropped(&rx), Some(0));
        for _ in 0..200 {
            tx.send_to(&[2; 1000], to).unwrap();
        }
        let mut receiver = Receiver::default();
        let mut read = 0;
        while let Ok(n) = receiver.recv(rx.as_raw_fd()) {
            read += n;
        }
        assert!(read < 200, "{read}");
        // Every datagram sent was read or counted as dropped.
        assert_eq!(read + dropped(&rx).unwrap() as usize, 200);
    }

    #[test]
    fn an_empty_socket_would_block() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let err = Receiver::default().recv(rx.as_raw_fd()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    }
}
