//! The I/O shell around one [`Sfu`]: a thread with its own single-threaded async runtime, the
//! UDP sockets media arrives on, and channels to the signalling layer.
//!
//! Everything that decides anything lives in the core; this file only moves bytes and time
//! between the sockets, the clock, the channels and the core.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::Instant;

use str0m::net::Transmit;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::udp;
use crate::{MediaCmd, MediaEvent, Residence, RoomId, Sfu, SfuConfig, SfuStats};

/// How many messages may wait for a worker before senders wait.
const CMD_QUEUE: usize = 4096;

/// One media socket: where to bind, and the address to offer in candidates if it differs
/// (a public address in front of a NAT).
#[derive(Debug, Clone, Copy)]
pub struct SocketSpec {
    pub bind: SocketAddr,
    pub advertise: Option<IpAddr>,
}

/// Messages to a worker.
#[derive(Debug)]
pub enum WorkerMsg {
    /// Route this room's media events to `events`.
    OpenRoom {
        room: RoomId,
        events: mpsc::Sender<MediaEvent>,
    },
    /// The room is gone; its members must have been removed first.
    CloseRoom {
        room: RoomId,
    },
    Cmd(MediaCmd),
    Stats(oneshot::Sender<WorkerStats>),
}

/// A worker's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    pub sfu: SfuStats,
    /// How long received datagrams stayed in the worker, until all they caused was sent.
    pub residence: Residence,
}

impl WorkerStats {
    /// Adds another worker's figures into these.
    pub fn merge(&mut self, o: &WorkerStats) {
        let (a, b) = (&mut self.sfu, &o.sfu);
        a.rooms += b.rooms;
        a.peers += b.peers;
        a.addrs += b.addrs;
        a.ufrags += b.ufrags;
        a.timers += b.timers;
        a.forwarded += b.forwarded;
        a.garbage += b.garbage;
        a.unknown += b.unknown;
        a.failed += b.failed;
        self.residence.merge(&o.residence);
    }
}

/// The signalling layer's handle on a worker thread.
pub struct WorkerHandle {
    tx: mpsc::Sender<WorkerMsg>,
    addrs: Vec<SocketAddr>,
    thread: Option<JoinHandle<()>>,
}

/// The worker thread has stopped.
#[derive(Debug, thiserror::Error)]
#[error("the media worker has stopped")]
pub struct WorkerGone;

impl WorkerHandle {
    /// Binds the sockets and starts the worker thread.
    pub fn spawn(index: usize, specs: &[SocketSpec]) -> io::Result<WorkerHandle> {
        let mut sockets = Vec::new();
        let mut addrs = Vec::new();
        for spec in specs {
            let socket = StdUdpSocket::bind(spec.bind)?;
            socket.set_nonblocking(true)?;
            udp::enlarge_buffers(&socket);
            let local = socket.local_addr()?;
            let advertised = SocketAddr::new(spec.advertise.unwrap_or(local.ip()), local.port());
            info!(worker = index, %local, %advertised, "media socket bound");
            sockets.push((socket, advertised));
            addrs.push(advertised);
        }
        let (tx, rx) = mpsc::channel(CMD_QUEUE);
        let thread = std::thread::Builder::new()
            .name(format!("media-{index}"))
            .spawn(move || run(sockets, rx))?;
        Ok(WorkerHandle {
            tx,
            addrs,
            thread: Some(thread),
        })
    }

    /// The addresses offered as host candidates.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub async fn send(&self, msg: WorkerMsg) -> Result<(), WorkerGone> {
        self.tx.send(msg).await.map_err(|_| WorkerGone)
    }

    pub async fn stats(&self) -> Result<WorkerStats, WorkerGone> {
        let (reply, rx) = oneshot::channel();
        self.send(WorkerMsg::Stats(reply)).await?;
        rx.await.map_err(|_| WorkerGone)
    }

    /// Stops the worker (dropping every media session) and waits for its thread.
    pub fn shutdown(mut self) {
        let thread = self.thread.take();
        drop(self);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

struct Shell {
    sfu: Sfu,
    sockets: Vec<(Rc<UdpSocket>, SocketAddr)>,
    rooms: HashMap<RoomId, mpsc::Sender<MediaEvent>>,
    sender: udp::Sender,
    /// Datagrams waiting to be sent, per socket (same order as `sockets`).
    outgoing: Vec<Vec<Transmit>>,
    /// The deadline the timer task sleeps until; it is woken only for an earlier one.
    armed: Rc<Cell<Instant>>,
    wake: Rc<Notify>,
    residence: Residence,
}

impl Shell {
    /// Sends what the core wants sent and hands its events to their rooms.
    fn flush(&mut self) {
        while let Some(t) = self.sfu.poll_transmit() {
            match self.sockets.iter().position(|(_, addr)| *addr == t.source) {
                Some(i) => self.outgoing[i].push(t),
                None => debug!(source = %t.source, "no socket for transmit"),
            }
        }
        for (i, (socket, _)) in self.sockets.iter().enumerate() {
            let batch = &mut self.outgoing[i];
            if batch.is_empty() {
                continue;
            }
            // UDP: what a full socket buffer refuses is dropped, as the network would.
            let sent = self.sender.send(socket.as_raw_fd(), batch);
            if sent < batch.len() {
                debug!(dropped = batch.len() - sent, "send buffer full");
            }
            batch.clear();
        }
        if self.sfu.next_timeout() < self.armed.get() {
            self.wake.notify_one();
        }
        while let Some((room, event)) = self.sfu.poll_event() {
            match self.rooms.get(&room) {
                Some(tx) => match tx.try_send(event) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(e)) => {
                        warn!(room, "room not keeping up, media event dropped: {e:?}");
                    }
                    // The room is closing; what it would have been told no longer matters.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                },
                None => debug!(room, "media event for a closed room: {event:?}"),
            }
        }
    }
}

fn run(sockets: Vec<(StdUdpSocket, SocketAddr)>, rx: mpsc::Receiver<WorkerMsg>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            warn!("media worker could not start its runtime: {e}");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let mut bound = Vec::new();
        for (socket, advertised) in sockets {
            match UdpSocket::from_std(socket) {
                Ok(s) => bound.push((Rc::new(s), advertised)),
                Err(e) => warn!(%advertised, "media socket unusable: {e}"),
            }
        }
        let config = SfuConfig::new(bound.iter().map(|(_, a)| *a).collect());
        let now = Instant::now();
        let wake = Rc::new(Notify::new());
        let armed = Rc::new(Cell::new(now));
        let shell = Rc::new(RefCell::new(Shell {
            sfu: Sfu::new(config, now),
            outgoing: bound.iter().map(|_| Vec::new()).collect(),
            sockets: bound.clone(),
            rooms: HashMap::new(),
            sender: udp::Sender::default(),
            armed: armed.clone(),
            wake: wake.clone(),
            residence: Residence::default(),
        }));

        for (socket, advertised) in bound {
            tokio::task::spawn_local(receive(socket, advertised, shell.clone()));
        }
        tokio::task::spawn_local(timer(shell.clone(), armed, wake));
        commands(rx, shell).await;
    });
}

async fn commands(mut rx: mpsc::Receiver<WorkerMsg>, shell: Rc<RefCell<Shell>>) {
    while let Some(msg) = rx.recv().await {
        let mut sh = shell.borrow_mut();
        match msg {
            WorkerMsg::OpenRoom { room, events } => {
                sh.rooms.insert(room, events);
            }
            WorkerMsg::CloseRoom { room } => {
                sh.rooms.remove(&room);
            }
            WorkerMsg::Cmd(cmd) => sh.sfu.handle_cmd(cmd, Instant::now()),
            WorkerMsg::Stats(reply) => {
                let _ = reply.send(WorkerStats {
                    sfu: sh.sfu.stats(),
                    residence: sh.residence,
                });
            }
        }
        sh.flush();
    }
}

async fn receive(socket: Rc<UdpSocket>, local: SocketAddr, shell: Rc<RefCell<Shell>>) {
    let mut receiver = udp::Receiver::default();
    let fd = socket.as_raw_fd();
    loop {
        if let Err(e) = socket.readable().await {
            warn!(%local, "socket unusable: {e}");
            return;
        }
        // Drain what is waiting, a batch per system call; `try_io` re-arms readiness once
        // the socket would block.
        loop {
            match socket.try_io(Interest::READABLE, || receiver.recv(fd)) {
                Ok(_) => {
                    let now = Instant::now();
                    let mut sh = shell.borrow_mut();
                    // Each datagram's consequences go out before the next is handled: its
                    // fan-out is still one batch, and it does not wait for the others'.
                    for (source, data) in receiver.datagrams() {
                        sh.sfu.handle_datagram(now, source, local, data);
                        sh.flush();
                        sh.residence.record(now.elapsed());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // ICMP errors surface here on some systems; they concern one remote only.
                Err(e) => debug!(%local, "receive error: {e}"),
            }
        }
    }
}

async fn timer(shell: Rc<RefCell<Shell>>, armed: Rc<Cell<Instant>>, wake: Rc<Notify>) {
    loop {
        let due = shell.borrow().sfu.next_timeout();
        armed.set(due);
        tokio::select! {
            _ = tokio::time::sleep_until(due.into()) => {
                let mut sh = shell.borrow_mut();
                sh.sfu.handle_timeout(Instant::now());
                sh.flush();
            }
            _ = wake.notified() => {}
        }
    }
}
