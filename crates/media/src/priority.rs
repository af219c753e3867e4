//! Real-time scheduling for media threads.
//!
//! A datagram waits in its socket until the worker thread is running. On a machine whose cores
//! are busy, the kernel's normal scheduler may leave a woken worker waiting for a millisecond
//! or more, even at a better nice value (measured: p99 time in the server 1.3–1.8 ms in rooms of
//! 10 with the cores shared, at nice 0 or −10; 0.4–0.5 ms under `SCHED_RR`). An operator may
//! therefore give the media threads a real-time priority. It is off by default: a real-time
//! thread that never blocks would hold its core against everything but the kernel's real-time
//! throttling (by default 5 % of each second is kept for other threads).

use std::io;

/// Puts the calling thread under `SCHED_RR` at `priority` (1–99). Needs `CAP_SYS_NICE` or an
/// `RLIMIT_RTPRIO` of at least `priority`; the error says when the system refuses.
pub fn set_realtime(priority: u8) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        if !(1..=99).contains(&priority) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "real-time priority must be 1 to 99",
            ));
        }
        let param = libc::sched_param {
            sched_priority: i32::from(priority),
        };
        // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 names the
        // calling thread, and the call changes nothing but its scheduling.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = priority;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "real-time priority is only supported on Linux",
        ))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// (policy, real-time priority) of the calling thread, from /proc.
    fn scheduling() -> (u32, u32) {
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

    #[test]
    fn a_thread_is_put_under_round_robin_at_its_priority_or_told_why_not() {
        std::thread::spawn(|| {
            assert_eq!(scheduling(), (libc::SCHED_OTHER as u32, 0));
            assert_eq!(
                set_realtime(0).unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
            match set_realtime(3) {
                Ok(()) => assert_eq!(scheduling(), (libc::SCHED_RR as u32, 3)),
                // Without the privilege, the system's refusal comes back as it is.
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
                    assert_eq!(scheduling(), (libc::SCHED_OTHER as u32, 0));
                }
            }
        })
        .join()
        .unwrap();
    }
}
