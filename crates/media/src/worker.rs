//! A media worker: a thread with its own single-threaded async runtime, the UDP sockets and
//! TCP listeners media arrives on, one core, and channels to the signalling layer and to the
//! other workers.
//!
//! Everything that decides anything about media lives in the core (`free4chat-sfu`); the
//! worker's tasks only move bytes, time and commands between the sockets, the clock, the
//! channels and the core ([`crate::shell`]).

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use free4chat_sfu::{DtlsCert, MediaCmd, MediaEvent, RoomId, Sfu, SfuConfig};
use tokio::io::Interest;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Notify, mpsc};
use tracing::{debug, info, warn};

use crate::priority::{self, Change, Governor, Realtime};
use crate::shell::{Shell, ShellParts};
use crate::stats::{SchedulingStats, StatsBoard, WorkerStats};
use crate::tcp_conn::{self, TcpOptions};
use crate::udp;
use crate::wire::Relayed;

/// How many messages may wait for a worker before senders wait.
const CMD_QUEUE: usize = 4096;
/// How many relayed packets may wait for a worker; beyond, they are dropped, as a full socket
/// buffer drops datagrams.
const RELAY_QUEUE: usize = 4096;
/// `recvmmsg` batches one socket drains before letting the worker's other tasks run.
const BATCHES_PER_TURN: usize = 8;

/// One media socket: where to bind, and the address to offer in candidates if it differs
/// (a public address in front of a NAT).
#[derive(Debug, Clone, Copy)]
pub struct SocketSpec {
    pub bind: SocketAddr,
    pub advertise: Option<IpAddr>,
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Media over TCP beside each UDP socket, if wanted.
    pub tcp: Option<TcpOptions>,
    pub realtime: Realtime,
    /// A member whose media has not connected this long after their offer is dropped.
    pub connect_timeout: Duration,
    /// A member whose ICE stays disconnected this long is dropped.
    pub disconnect_grace: Duration,
    /// Audio slots per participant (0: an m-line per audio track).
    pub audio_slots: usize,
    /// The certificate every participant's DTLS presents (one per process).
    pub dtls_cert: DtlsCert,
}

/// Messages to a worker.
#[derive(Debug)]
pub enum WorkerMsg {
    /// Route this room's media events to `events`.
    OpenRoom {
        room: RoomId,
        events: mpsc::Sender<MediaEvent>,
    },
    /// Where to hand packets relayed to each worker, by index ([`link`]).
    Neighbours(Vec<mpsc::Sender<Relayed>>),
    /// A command for the core. [`MediaCmd::CloseRoom`] also stops routing the room's events.
    Cmd(MediaCmd),
}

/// The signalling layer's handle on a worker thread.
pub struct WorkerHandle {
    tx: mpsc::Sender<WorkerMsg>,
    relay: mpsc::Sender<Relayed>,
    addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
    board: Arc<StatsBoard>,
    thread: Option<JoinHandle<()>>,
}

/// The worker thread has stopped.
#[derive(Debug, thiserror::Error)]
#[error("the media worker has stopped")]
pub struct WorkerGone;

impl WorkerHandle {
    /// Binds the sockets (and, with TCP, a listener beside each) and starts the worker thread,
    /// at real-time priority if asked for and the system allows it, under a governor that
    /// gives it up while the worker is too busy ([`crate::priority`]).
    pub fn spawn(
        index: usize,
        specs: &[SocketSpec],
        options: WorkerOptions,
    ) -> io::Result<WorkerHandle> {
        let mut sockets = Vec::new();
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        let mut tcp_addrs = Vec::new();
        for spec in specs {
            let (socket, listener) = bind(spec.bind, options.tcp.is_some())?;
            socket.set_nonblocking(true)?;
            udp::enlarge_buffers(&socket);
            udp::stamp_arrivals(&socket);
            let local = socket.local_addr()?;
            let advertised = SocketAddr::new(spec.advertise.unwrap_or(local.ip()), local.port());
            info!(worker = index, %local, %advertised, "media socket bound");
            sockets.push((socket, advertised));
            addrs.push(advertised);
            if let Some(listener) = listener {
                listener.set_nonblocking(true)?;
                let local = listener.local_addr()?;
                let advertised =
                    SocketAddr::new(spec.advertise.unwrap_or(local.ip()), local.port());
                info!(worker = index, %local, %advertised, "media TCP listener bound");
                listeners.push((listener, advertised));
                tcp_addrs.push(advertised);
            }
        }
        let (tx, rx) = mpsc::channel(CMD_QUEUE);
        let (relay, relays) = mpsc::channel(RELAY_QUEUE);
        let board = Arc::new(StatsBoard::default());
        let worker = Worker {
            index,
            sockets,
            listeners,
            options,
            board: board.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("media-{index}"))
            .spawn(move || worker.run(rx, relays))?;
        Ok(WorkerHandle {
            tx,
            relay,
            addrs,
            tcp_addrs,
            board,
            thread: Some(thread),
        })
    }

    /// The addresses offered as UDP host candidates.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The addresses offered as passive TCP host candidates (none when TCP is off): the same
    /// as [`WorkerHandle::addrs`], port numbers included.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    pub async fn send(&self, msg: WorkerMsg) -> Result<(), WorkerGone> {
        self.tx.send(msg).await.map_err(|_| WorkerGone)
    }

    /// Where the worker publishes its figures.
    pub fn board(&self) -> Arc<StatsBoard> {
        self.board.clone()
    }

    /// The worker's figures, freshly published.
    pub async fn stats(&self) -> WorkerStats {
        self.board.fresh().await
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

/// Tells each worker where to relay to the others, so that a room may spread over them:
/// the packets its members publish in one worker reach its members in another.
pub fn link(workers: &[&WorkerHandle]) -> Result<(), WorkerGone> {
    let relays: Vec<mpsc::Sender<Relayed>> = workers.iter().map(|w| w.relay.clone()).collect();
    for w in workers {
        // Called before any room exists, so the command queue has room.
        w.tx.try_send(WorkerMsg::Neighbours(relays.clone()))
            .map_err(|_| WorkerGone)?;
    }
    Ok(())
}

/// Binds a UDP socket and, if asked, a TCP listener on the same address and port number.
/// With port 0, tries a few ports until both are free.
fn bind(addr: SocketAddr, tcp: bool) -> io::Result<(StdUdpSocket, Option<StdTcpListener>)> {
    let tries = if addr.port() == 0 { 16 } else { 1 };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let socket = StdUdpSocket::bind(addr)?;
        if !tcp {
            return Ok((socket, None));
        }
        let port = socket.local_addr()?.port();
        match StdTcpListener::bind(SocketAddr::new(addr.ip(), port)) {
            Ok(listener) => return Ok((socket, Some(listener))),
            Err(_) if attempt < tries => continue,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "media TCP port {}:{port}: {e} (media over TCP can be turned off)",
                        addr.ip()
                    ),
                ));
            }
        }
    }
}

/// What the worker thread starts with.
struct Worker {
    index: usize,
    sockets: Vec<(StdUdpSocket, SocketAddr)>,
    listeners: Vec<(StdTcpListener, SocketAddr)>,
    options: WorkerOptions,
    board: Arc<StatsBoard>,
}

impl Worker {
    /// The worker thread's body.
    fn run(self, rx: mpsc::Receiver<WorkerMsg>, relays: mpsc::Receiver<Relayed>) {
        let index = self.index;
        let realtime = self.take_priority();
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                warn!(
                    worker = index,
                    "media worker could not start its runtime: {e}"
                );
                return;
            }
        };
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, self.serve(realtime, rx, relays));
    }

    /// Asks for real-time priority if configured. Returns the priority granted, if any.
    fn take_priority(&self) -> Option<u8> {
        let (index, realtime) = (self.index, self.options.realtime);
        let priority = realtime.priority;
        if priority == 0 {
            return None;
        }
        match priority::set_realtime(priority) {
            Ok(()) => {
                info!(worker = index, priority, "real-time priority");
                Some(priority)
            }
            Err(e) if realtime.asked => {
                warn!(
                    worker = index,
                    "real-time priority {priority} refused, running at normal priority: {e}"
                );
                None
            }
            Err(e) => {
                info!(
                    worker = index,
                    "normal priority (real-time priority {priority} refused: {e})"
                );
                None
            }
        }
    }

    /// Makes the shell and runs the worker's tasks until the signalling layer lets go.
    async fn serve(
        self,
        realtime: Option<u8>,
        rx: mpsc::Receiver<WorkerMsg>,
        relays: mpsc::Receiver<Relayed>,
    ) {
        let mut bound = Vec::new();
        for (socket, advertised) in self.sockets {
            match UdpSocket::from_std(socket) {
                Ok(s) => bound.push((Rc::new(s), advertised)),
                Err(e) => warn!(%advertised, "media socket unusable: {e}"),
            }
        }
        let mut listening = Vec::new();
        for (listener, advertised) in self.listeners {
            match TcpListener::from_std(listener) {
                Ok(l) => listening.push((l, advertised)),
                Err(e) => warn!(%advertised, "media TCP listener unusable: {e}"),
            }
        }
        let options = self.options;
        let mut config = SfuConfig::new(
            bound.iter().map(|(_, a)| *a).collect(),
            options.dtls_cert,
            rand::random(),
        );
        config.tcp_candidates = listening.iter().map(|(_, a)| *a).collect();
        config.connect_timeout = options.connect_timeout;
        config.disconnect_grace = options.disconnect_grace;
        config.audio_slots = options.audio_slots;
        let now = Instant::now();
        let wake = Rc::new(Notify::new());
        let armed = Rc::new(Cell::new(now));
        let scheduling = Rc::new(Cell::new(SchedulingStats {
            realtime_workers: usize::from(realtime.is_some()),
            ..SchedulingStats::default()
        }));
        let shell = Rc::new(RefCell::new(Shell::new(ShellParts {
            sfu: Sfu::new(config, now),
            sockets: bound.clone(),
            tcp_options: options.tcp.unwrap_or_default(),
            armed: armed.clone(),
            wake: wake.clone(),
            scheduling: scheduling.clone(),
            board: self.board.clone(),
        })));
        shell.borrow().publish_stats();

        for (socket, advertised) in bound {
            tokio::task::spawn_local(receive(socket, advertised, shell.clone()));
        }
        for (listener, advertised) in listening {
            tokio::task::spawn_local(tcp_conn::accept(listener, advertised, shell.clone()));
        }
        tokio::task::spawn_local(timer(shell.clone(), armed, wake));
        tokio::task::spawn_local(relayed(relays, shell.clone()));
        tokio::task::spawn_local(publish_when_asked(self.board, shell.clone()));
        if let Some(priority) = realtime {
            let cpu = priority::thread_cpu_time;
            let index = self.index;
            tokio::task::spawn_local(govern(index, priority, priority::WINDOW, cpu, scheduling));
        }
        commands(rx, shell).await;
    }
}

async fn commands(mut rx: mpsc::Receiver<WorkerMsg>, shell: Rc<RefCell<Shell>>) {
    while let Some(msg) = rx.recv().await {
        let mut sh = shell.borrow_mut();
        match msg {
            WorkerMsg::OpenRoom { room, events } => {
                sh.rooms.insert(room, events);
            }
            WorkerMsg::Neighbours(neighbours) => sh.neighbours = neighbours,
            WorkerMsg::Cmd(cmd) => {
                if let MediaCmd::CloseRoom { room } = cmd {
                    sh.rooms.remove(&room);
                    sh.rooms.shrink_to_fit();
                }
                sh.sfu.handle_cmd(cmd, Instant::now());
            }
        }
        sh.send_all(None);
        // What commands change (members, rooms) is read at once by whoever waits for it.
        sh.publish_stats();
    }
}

/// Puts the worker's figures on its board whenever someone asks.
async fn publish_when_asked(board: Arc<StatsBoard>, shell: Rc<RefCell<Shell>>) {
    loop {
        board.asked().await;
        shell.borrow().publish_stats();
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
        // the socket would block. Past capacity the socket never empties: after a few batches
        // the other tasks of this worker (commands, timers, other sockets) get their turn.
        for batch in 0.. {
            if batch == BATCHES_PER_TURN {
                tokio::task::yield_now().await;
                break;
            }
            match socket.try_io(Interest::READABLE, || receiver.recv(fd)) {
                Ok(_) => shell
                    .borrow_mut()
                    .take_batch(Instant::now(), local, &receiver),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // ICMP errors surface here on some systems; they concern one remote only.
                Err(e) => debug!(%local, "receive error: {e}"),
            }
        }
    }
}

/// Packets and keyframe requests other workers relay to this one.
async fn relayed(mut rx: mpsc::Receiver<Relayed>, shell: Rc<RefCell<Shell>>) {
    let mut batch = Vec::with_capacity(udp::BATCH);
    while rx.recv_many(&mut batch, udp::BATCH).await > 0 {
        shell.borrow_mut().take_relayed(&mut batch);
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
                sh.send_all(None);
            }
            _ = wake.notified() => {}
        }
    }
}

/// Runs on the worker thread while it holds real-time priority: once a `window`, gives the
/// [`Governor`] the thread's CPU time (read by `cpu`) and makes the change it asks for,
/// reporting it in `stats`.
async fn govern(
    index: usize,
    priority: u8,
    window: Duration,
    mut cpu: impl FnMut() -> Option<Duration>,
    stats: Rc<Cell<SchedulingStats>>,
) {
    let mut governor = Governor::new();
    let mut ticks = tokio::time::interval(window);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    let (Some(mut used), mut at) = (cpu(), Instant::now()) else {
        warn!(
            worker = index,
            "no thread CPU clock: real-time priority is not governed"
        );
        return;
    };
    loop {
        ticks.tick().await;
        let (Some(now_used), now) = (cpu(), Instant::now()) else {
            return;
        };
        let change = governor.observe(now_used.saturating_sub(used), now - at);
        (used, at) = (now_used, now);
        let Some(change) = change else {
            continue;
        };
        let made = match change {
            Change::Demote => priority::set_normal(),
            Change::Promote => priority::set_realtime(priority),
        };
        if let Err(e) = made {
            debug!(worker = index, "scheduling change {change:?} refused: {e}");
            continue;
        }
        governor.applied(change);
        let mut s = stats.get();
        s.realtime_workers = usize::from(governor.is_realtime());
        match change {
            Change::Demote => {
                s.demotions += 1;
                warn!(
                    worker = index,
                    "media worker busy: normal priority until load falls"
                );
            }
            Change::Promote => {
                s.promotions += 1;
                info!(
                    worker = index,
                    priority, "media worker calm: real-time priority again"
                );
            }
        }
        stats.set(s);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The calling thread's scheduling policy.
    fn policy() -> i32 {
        priority::thread_scheduling().0 as i32
    }

    /// Waits (at most 10 s) until `f` holds.
    async fn until(f: impl Fn() -> bool) -> bool {
        for _ in 0..1000 {
            if f() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// Needs the privilege to take real-time priority: the test runner reports it as ignored
    /// without it, and `scripts/test`, which CI runs as root, runs it.
    #[test]
    #[ignore = "needs CAP_SYS_NICE (scripts/test runs it as root)"]
    fn a_busy_worker_thread_gives_up_real_time_priority_and_takes_it_back_when_calm() {
        std::thread::spawn(|| {
            priority::set_realtime(5).expect("real-time priority (CAP_SYS_NICE) for this test");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, async {
                // A thread CPU clock that runs at `share` of the wall clock.
                let share = Rc::new(Cell::new(0.9));
                let clock = {
                    let share = share.clone();
                    let (mut used, mut at) = (Duration::ZERO, Instant::now());
                    move || {
                        let now = Instant::now();
                        used += (now - at).mul_f64(share.get());
                        at = now;
                        Some(used)
                    }
                };
                let stats = Rc::new(Cell::new(SchedulingStats {
                    realtime_workers: 1,
                    ..SchedulingStats::default()
                }));
                let window = Duration::from_millis(20);
                tokio::task::spawn_local(govern(0, 5, window, clock, stats.clone()));
                // (CPU share, then: policy, workers at real-time priority, demotions and
                // promotions so far).
                let phases = [
                    (0.9, libc::SCHED_OTHER, 0, (1, 0)),
                    (0.1, libc::SCHED_RR, 1, (1, 1)),
                ];
                for (busy, then, realtime, changes) in phases {
                    share.set(busy);
                    let counted = || (stats.get().demotions, stats.get().promotions);
                    assert!(until(|| counted() == changes).await, "{:?}", stats.get());
                    assert_eq!(policy(), then);
                    assert_eq!(stats.get().realtime_workers, realtime);
                }
            });
        })
        .join()
        .unwrap();
    }
}
