//! The process's file-descriptor budget. Signalling (HTTP and WebSockets), media over TCP and
//! the TURN server each stop at their own connection limit; as long as those limits add up to
//! less than the descriptors the process may open, none of them can run the others out of
//! descriptors, whoever fills its own. At start the soft limit is raised to the hard one, and
//! a configuration whose limits add up to more is warned about.

use tracing::warn;

use crate::config::Config;

/// Descriptors for everything that is not a client's connection: listeners, media and
/// relay-free sockets, the runtime, log files, Redis.
const RESERVE: u64 = 256;

/// The descriptors the configured limits may use at once.
pub fn budget(config: &Config) -> u64 {
    let tcp_media = if config.media.media_tcp {
        config.media.media_tcp_max_connections as u64 * config.media.media_workers as u64
    } else {
        0
    };
    // Each allocation holds a relay socket, and each TCP/TLS client a connection.
    let turn = if config.turn.enabled() {
        config.turn.turn_max_connections as u64 + config.turn.turn_max_allocations as u64
    } else {
        0
    };
    RESERVE + config.protection.http_max_connections as u64 + tcp_media + turn
}

/// Raises the soft limit on open files to the hard one, and warns if the configured limits
/// may still need more.
pub fn raise_and_check(config: &Config) {
    let Some(limit) = raise() else {
        return;
    };
    let need = budget(config);
    if need > limit {
        warn!(
            need,
            limit,
            "the connection limits (http_max_connections, media_tcp_max_connections per \
             worker, turn_max_connections + turn_max_allocations) add up to more file \
             descriptors than this process may open: raise LimitNOFILE (ulimit -n) or lower \
             them, or one kind of connection may starve the others"
        );
    }
}

#[cfg(unix)]
fn raise() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    // rlim_t is u64 on Linux but not on every Unix.
    #[allow(clippy::unnecessary_cast)]
    Some(lim.rlim_cur as u64)
}

#[cfg(not(unix))]
fn raise() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_each_kind_of_connection_once() {
        let mut config = Config::default();
        config.media.media_workers = 2;
        config.media.media_tcp_max_connections = 100;
        config.protection.http_max_connections = 1000;
        assert_eq!(budget(&config), RESERVE + 1000 + 200);
        config.turn.turn_udp = Some("127.0.0.1:3478".parse().unwrap());
        config.turn.turn_max_connections = 10;
        config.turn.turn_max_allocations = 20;
        assert_eq!(budget(&config), RESERVE + 1000 + 200 + 30);
    }
}
