//! Real-time scheduling for media threads, and the governor that takes it back under load.
//!
//! A datagram waits in its socket until the worker thread is running. On a machine whose cores
//! are busy, the kernel's normal scheduler may leave a woken worker waiting for a millisecond
//! or more, even at a better nice value (measured: p99 time in the server 1.3–1.8 ms in rooms of
//! 10 with the cores shared, at nice 0 or −10; 0.4–0.6 ms under `SCHED_RR`). So the media
//! threads ask for `SCHED_RR` at a low real-time priority when they start, and run on at normal
//! priority if the system refuses (no `CAP_SYS_NICE`, no `RLIMIT_RTPRIO`).
//!
//! A real-time thread that never blocks would hold its core against every normal thread, the
//! signalling among them, but for the 5 % of each second the kernel's throttling keeps back. A
//! media worker blocks whenever its sockets are empty, so that only happens past capacity; the
//! [`Governor`] watches the thread's own CPU time and returns it to normal scheduling when it is
//! busy for most of a second, and to real-time priority after some calm seconds.

use std::io;
use std::time::Duration;

/// The real-time priority the media threads ask for unless configured otherwise: above every
/// normal thread, below the system's own real-time threads (which use 50 and up).
pub const DEFAULT_PRIORITY: u8 = 10;

/// How a media thread is to be scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Realtime {
    /// `SCHED_RR` priority, 1–99; 0 keeps normal scheduling.
    pub priority: u8,
    /// The operator asked for this priority: a refusal is logged as a warning rather than as
    /// information.
    pub asked: bool,
}

impl Default for Realtime {
    fn default() -> Realtime {
        Realtime {
            priority: DEFAULT_PRIORITY,
            asked: false,
        }
    }
}

/// How often the governor looks at a thread's CPU time.
pub const WINDOW: Duration = Duration::from_secs(1);
/// A real-time thread busy for more than this share of a window returns to normal scheduling.
const DEMOTE_ABOVE: f64 = 0.8;
/// A demoted thread is promoted again after [`CALM_WINDOWS`] windows in a row below this share.
const PROMOTE_BELOW: f64 = 0.5;
const CALM_WINDOWS: u32 = 5;

/// A change of scheduling the governor asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Back to normal scheduling: the thread is busy enough to starve others.
    Demote,
    /// Back to real-time priority: the load has been low for a while.
    Promote,
}

/// Decides, from how busy a real-time thread has been, when it should give up its priority and
/// when it may take it again. Sans-I/O: fed with CPU time per window, it only decides.
#[derive(Debug, Clone)]
pub struct Governor {
    realtime: bool,
    calm: u32,
}

impl Governor {
    /// A governor for a thread that runs at real-time priority now.
    pub fn new() -> Governor {
        Governor {
            realtime: true,
            calm: 0,
        }
    }

    /// Whether the thread runs at real-time priority, as far as the governor knows.
    pub fn is_realtime(&self) -> bool {
        self.realtime
    }

    /// The thread used `busy` of CPU time over the last `window`: whether to change its
    /// scheduling. Call [`Governor::applied`] once the change is made.
    pub fn observe(&mut self, busy: Duration, window: Duration) -> Option<Change> {
        if window.is_zero() {
            return None;
        }
        let share = busy.as_secs_f64() / window.as_secs_f64();
        if self.realtime {
            return (share > DEMOTE_ABOVE).then_some(Change::Demote);
        }
        if share < PROMOTE_BELOW {
            self.calm += 1;
        } else {
            self.calm = 0;
        }
        (self.calm >= CALM_WINDOWS).then_some(Change::Promote)
    }

    /// The change was made.
    pub fn applied(&mut self, change: Change) {
        self.realtime = change == Change::Promote;
        self.calm = 0;
    }
}

impl Default for Governor {
    fn default() -> Governor {
        Governor::new()
    }
}

/// Puts the calling thread under `SCHED_RR` at `priority` (1–99). Needs `CAP_SYS_NICE` or an
/// `RLIMIT_RTPRIO` of at least `priority`; the error says when the system refuses. Threads the
/// calling thread starts later begin at normal priority (`SCHED_RESET_ON_FORK`).
pub fn set_realtime(priority: u8) -> io::Result<()> {
    if !(1..=99).contains(&priority) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "real-time priority must be 1 to 99",
        ));
    }
    #[cfg(target_os = "linux")]
    {
        set_scheduler(
            libc::SCHED_RR | libc::SCHED_RESET_ON_FORK,
            i32::from(priority),
        )
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(unsupported())
    }
}

/// Puts the calling thread back under normal scheduling. Always allowed.
pub fn set_normal() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        set_scheduler(libc::SCHED_OTHER, 0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(unsupported())
    }
}

#[cfg(target_os = "linux")]
fn set_scheduler(policy: i32, priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 names the calling
    // thread, and the call changes nothing but its scheduling.
    let rc = unsafe { libc::sched_setscheduler(0, policy, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "real-time priority is only supported on Linux",
    )
}

/// The CPU time the calling thread has used (user and system).
pub fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec the call writes into; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u32::try_from(ts.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_busy_real_time_thread_is_demoted_and_promoted_after_calm_seconds() {
        let mut g = Governor::new();
        assert!(g.is_realtime());
        // Busy, but not past the limit: stays.
        assert_eq!(g.observe(ms(700), S), None);
        assert_eq!(g.observe(ms(800), S), None);
        // Past it.
        assert_eq!(g.observe(ms(850), S), Some(Change::Demote));
        g.applied(Change::Demote);
        assert!(!g.is_realtime());
        // Calm seconds must come in a row: a busy one starts the count again.
        for _ in 0..CALM_WINDOWS - 1 {
            assert_eq!(g.observe(ms(100), S), None);
        }
        assert_eq!(g.observe(ms(600), S), None);
        for _ in 0..CALM_WINDOWS - 1 {
            assert_eq!(g.observe(ms(400), S), None);
        }
        assert_eq!(g.observe(ms(400), S), Some(Change::Promote));
        // Not applied (the system refused): asked again next window.
        assert_eq!(g.observe(ms(10), S), Some(Change::Promote));
        g.applied(Change::Promote);
        assert!(g.is_realtime());
        assert_eq!(g.observe(ms(10), S), None);
    }

    #[test]
    fn the_share_is_of_the_window_as_it_was() {
        let mut g = Governor::new();
        // A late tick: 900 ms busy over 1.5 s is 60 %.
        assert_eq!(g.observe(ms(900), ms(1500)), None);
        assert_eq!(g.observe(ms(450), ms(500)), Some(Change::Demote));
        // No time passed: nothing to judge by.
        assert_eq!(g.observe(ms(5), Duration::ZERO), None);
    }

    /// Spins until this thread has used `cpu` more CPU time (at most 10 s of wall time).
    fn spin(cpu: Duration) -> Duration {
        let from = thread_cpu_time().unwrap();
        let start = std::time::Instant::now();
        while thread_cpu_time().unwrap() - from < cpu && start.elapsed() < Duration::from_secs(10) {
            std::hint::spin_loop();
        }
        start.elapsed()
    }

    #[test]
    fn thread_cpu_time_counts_this_thread_only() {
        let before = thread_cpu_time().unwrap();
        // Another thread's spinning does not count here.
        let other = std::thread::spawn(|| spin(ms(100))).join().unwrap();
        let idle = thread_cpu_time().unwrap() - before;
        assert!(other >= ms(100), "{other:?}");
        assert!(idle < ms(50), "{idle:?}");
        let wall = spin(ms(100));
        assert!(wall < Duration::from_secs(10), "{wall:?}");
        assert!(thread_cpu_time().unwrap() - before >= ms(100));
    }
}

/// (policy, real-time priority) of the calling thread, as the kernel shows it in /proc.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn thread_scheduling() -> (u32, u32) {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    (
        fields[41 - 3].parse().unwrap(),
        fields[40 - 3].parse().unwrap(),
    )
}

#[cfg(all(test, target_os = "linux"))]
mod linux_tests {
    use super::*;

    const NORMAL: (u32, u32) = (libc::SCHED_OTHER as u32, 0);

    #[test]
    fn a_thread_is_put_under_round_robin_and_back_or_told_why_not() {
        std::thread::spawn(|| {
            assert_eq!(thread_scheduling(), NORMAL);
            assert_eq!(
                set_realtime(0).unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
            match set_realtime(3) {
                Ok(()) => {
                    assert_eq!(thread_scheduling(), (libc::SCHED_RR as u32, 3));
                    // A thread it starts begins at normal priority.
                    let child = std::thread::spawn(thread_scheduling).join().unwrap();
                    assert_eq!(child, NORMAL);
                    set_normal().unwrap();
                    assert_eq!(thread_scheduling(), NORMAL);
                    set_realtime(4).unwrap();
                    assert_eq!(thread_scheduling(), (libc::SCHED_RR as u32, 4));
                }
                // Without the privilege, the system's refusal comes back as it is.
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
                    assert_eq!(thread_scheduling(), NORMAL);
                }
            }
        })
        .join()
        .unwrap();
    }
}
