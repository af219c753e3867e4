//! CPU time and resident memory of a process, from `/proc/<pid>`.

use std::fs;

/// Linux reports CPU times in /proc in units of USER_HZ, which is 100 on every architecture
/// the kernel exposes to user space.
const USER_HZ: f64 = 100.0;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// User + system CPU seconds since the process started.
    pub cpu_s: f64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
}

/// Reads the process's CPU and memory; `None` if it cannot be read (no such process).
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(ProcSample {
        cpu_s: parse_cpu(&stat)?,
        rss_kib: parse_rss(&status)?,
    })
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted after its last `)`.
fn parse_cpu(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name, field 3 (state) is index 0, so field N is index N - 3.
    let utime: f64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: f64 = fields.get(15 - 3)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

fn parse_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_an_awkward_name() {
        let stat = "1234 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 1 0";
        assert_eq!(parse_cpu(stat), Some(4.0));
        assert_eq!(parse_rss("Name:\tx\nVmRSS:\t   2048 kB\n"), Some(2048));
        assert_eq!(parse_cpu("garbage"), None);
    }

    #[test]
    fn reads_our_own_process() {
        let s = sample(std::process::id()).expect("own /proc");
        assert!(s.rss_kib > 0);
    }
}
