//! CPU time and resident memory of a process, from `/proc/<pid>`; how busy the whole machine
//! was, from `/proc/stat`.

use std::fs;

/// Linux reports CPU times in /proc in units of USER_HZ, which is 100 on every architecture
/// the kernel exposes to user space.
const USER_HZ: f64 = 100.0;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// CPU seconds spent in the process's own code since it started.
    pub user_s: f64,
    /// CPU seconds the kernel spent on its behalf (system calls: on loopback, sending a
    /// datagram includes delivering it into the receiver's socket).
    pub system_s: f64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
}

/// Reads the process's CPU and memory; `None` if it cannot be read (no such process).
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let (user_s, system_s) = parse_cpu(&stat)?;
    Some(ProcSample {
        user_s,
        system_s,
        rss_kib: parse_rss(&status)?,
    })
}

/// utime and stime (fields 14 and 15) of a `/proc/<pid>/stat` line, in seconds. The command
/// name (field 2) may contain spaces and parentheses, so fields are counted after its last `)`.
fn parse_cpu(stat: &str) -> Option<(f64, f64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name, field 3 (state) is index 0, so field N is index N - 3.
    let utime: f64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: f64 = fields.get(15 - 3)?.parse().ok()?;
    Some((utime / USER_HZ, stime / USER_HZ))
}

fn parse_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The machine's CPU time so far, all cores together, in USER_HZ ticks, by what it went to.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineSample {
    busy: u64,
    idle: u64,
    /// Time the host (hypervisor) ran something else while one of our vCPUs wanted to run.
    steal: u64,
}

/// Where the machine's CPU time went between two samples, in percent of all of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MachineShare {
    pub busy_pct: f64,
    pub idle_pct: f64,
    pub steal_pct: f64,
}

/// Reads the first line of `/proc/stat`; `None` if it cannot be read.
pub fn machine() -> Option<MachineSample> {
    parse_machine(&fs::read_to_string("/proc/stat").ok()?)
}

/// The `cpu` line: user nice system idle iowait irq softirq steal (guest time is already
/// counted in user). Older kernels without some of the later fields count them as 0.
fn parse_machine(stat: &str) -> Option<MachineSample> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let mut fields = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse::<u64>().ok());
    let mut next = || fields.next().unwrap_or(Some(0));
    let (user, nice, system, idle) = (next()?, next()?, next()?, next()?);
    let (iowait, irq, softirq, steal) = (next()?, next()?, next()?, next()?);
    Some(MachineSample {
        busy: user + nice + system + irq + softirq,
        idle: idle + iowait,
        steal,
    })
}

impl MachineSample {
    /// What the time between `self` and the `later` sample went to; `None` if none passed.
    pub fn share_until(&self, later: &MachineSample) -> Option<MachineShare> {
        let busy = later.busy.saturating_sub(self.busy) as f64;
        let idle = later.idle.saturating_sub(self.idle) as f64;
        let steal = later.steal.saturating_sub(self.steal) as f64;
        let all = busy + idle + steal;
        (all > 0.0).then(|| MachineShare {
            busy_pct: busy / all * 100.0,
            idle_pct: idle / all * 100.0,
            steal_pct: steal / all * 100.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_an_awkward_name() {
        let stat = "1234 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 1 0";
        assert_eq!(parse_cpu(stat), Some((2.5, 1.5)));
        assert_eq!(parse_rss("Name:\tx\nVmRSS:\t   2048 kB\n"), Some(2048));
        assert_eq!(parse_cpu("garbage"), None);
    }

    #[test]
    fn splits_the_machines_time_between_busy_idle_and_stolen() {
        let a = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n";
        let b = "cpu  160 0 70 850 50 10 10 20 30 0\ncpu0 1 2 3 4\n";
        let (a, b) = (parse_machine(a).unwrap(), parse_machine(b).unwrap());
        // 170 ticks passed: 100 busy (60 user, 20 system, 10 + 10 interrupts), 50 idle, 20
        // stolen; guest time (30) is already in user.
        let share = a.share_until(&b).unwrap();
        assert_eq!(share.busy_pct, 100.0 / 170.0 * 100.0);
        assert_eq!(share.idle_pct, 50.0 / 170.0 * 100.0);
        assert_eq!(share.steal_pct, 20.0 / 170.0 * 100.0);
        assert_eq!(a.share_until(&a), None);
        // A kernel that reports only the first four fields.
        assert_eq!(
            parse_machine("cpu 1 2 3 4\n"),
            Some(MachineSample {
                busy: 6,
                idle: 4,
                steal: 0
            })
        );
        assert_eq!(parse_machine("cpu 1 x 3 4\n"), None);
        assert_eq!(parse_machine("intr 5\n"), None);
        assert!(machine().is_some());
    }

    #[test]
    fn reads_our_own_process() {
        let s = sample(std::process::id()).expect("own /proc");
        assert!(s.rss_kib > 0);
    }
}
