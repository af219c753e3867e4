//! Admission by client address: HTTP connections in total and per address, signalling
//! WebSockets per address, and joins per address. One host (an IPv4 address, or an IPv6 /64,
//! which one host commonly holds whole) can hold only its share, so it cannot shut others out.
//! Every refusal is counted for `/api/stats`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;

use crate::config::ProtectionSettings;
use crate::rate::TokenBucket;

/// The key per-address limits count under: an IPv4 address, or the /64 of an IPv6 address.
/// IPv4-mapped IPv6 addresses count as their IPv4 address.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut s = v6.segments();
                s[4..].fill(0);
                IpAddr::V6(Ipv6Addr::from(s))
            }
        },
    }
}

/// What was refused or cut off so far, and what is open now.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AdmissionStats {
    /// HTTP and WebSocket connections open now.
    pub http_connections: usize,
    /// Connections closed at once because the total was reached.
    pub refused_http_total: u64,
    /// Connections closed at once because their address had its share.
    pub refused_http_per_ip: u64,
    /// Connections closed for not sending a request's header in time (or, over HTTPS, not
    /// finishing the TLS handshake).
    pub header_timeouts: u64,
    /// Connections closed after nothing was read or written for the idle timeout.
    pub idle_timeouts: u64,
    /// Signalling WebSockets refused because their address had its share.
    pub refused_ws_per_ip: u64,
    /// Joins refused because their address joined too often.
    pub refused_joins: u64,
    /// Joins with a password refused because their address gave too many wrong ones.
    pub refused_passwords: u64,
    /// Signalling WebSockets refused for their `Origin`.
    pub refused_origin: u64,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Total,
    PerIp,
}

#[derive(Default)]
struct Counters {
    refused_http_total: AtomicU64,
    refused_http_per_ip: AtomicU64,
    header_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    refused_ws_per_ip: AtomicU64,
    refused_joins: AtomicU64,
    refused_passwords: AtomicU64,
    refused_origin: AtomicU64,
}

/// One address's share in use.
struct Entry {
    http: usize,
    ws: usize,
    joins: TokenBucket,
    /// Wrong room passwords given.
    guesses: TokenBucket,
}

struct State {
    http: usize,
    /// An entry per address with a connection open, or whose join allowance has not yet
    /// refilled; at most about twice `max_http` (see [`Admission::forget_idle`]).
    by_ip: HashMap<IpAddr, Entry>,
}

pub struct Admission {
    settings: ProtectionSettings,
    state: Mutex<State>,
    counters: Counters,
}

impl Admission {
    pub fn new(settings: &ProtectionSettings) -> Arc<Admission> {
        Arc::new(Admission {
            settings: settings.clone(),
            state: Mutex::new(State {
                http: 0,
                by_ip: HashMap::new(),
            }),
            counters: Counters::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn exempt(&self, key: IpAddr) -> bool {
        self.settings.exempt_ips.iter().any(|e| ip_key(*e) == key)
    }

    fn new_entry(&self) -> Entry {
        Entry {
            http: 0,
            ws: 0,
            joins: TokenBucket::new(
                self.settings.join_burst_per_ip.into(),
                self.settings.join_rate_per_ip,
            ),
            guesses: TokenBucket::new(
                self.settings.password_burst_per_ip.into(),
                self.settings.password_rate_per_ip,
            ),
        }
    }

    /// Whether `ip` gets the key removals count it by (none when it is exempt: a proxy's,
    /// which many clients share).
    pub fn removal_key(&self, ip: IpAddr) -> Option<IpAddr> {
        let key = ip_key(ip);
        (!self.exempt(key)).then_some(key)
    }

    /// Whether `ip` may try a room password now: it has wrong guesses left. Counted when not.
    pub fn may_guess(&self, ip: IpAddr) -> bool {
        let key = ip_key(ip);
        if self.exempt(key) {
            return true;
        }
        let state = self.lock();
        let allowed = state
            .by_ip
            .get(&key)
            .is_none_or(|e| e.guesses.has_token(Instant::now()));
        if !allowed {
            drop(state);
            self.counters
                .refused_passwords
                .fetch_add(1, Ordering::Relaxed);
        }
        allowed
    }

    /// `ip` gave a wrong room password: one guess fewer.
    pub fn guessed_wrong(&self, ip: IpAddr) {
        let key = ip_key(ip);
        if self.exempt(key) {
            return;
        }
        let mut state = self.lock();
        let entry = self.new_entry();
        state
            .by_ip
            .entry(key)
            .or_insert(entry)
            .guesses
            .take(Instant::now());
    }

    /// Admits an HTTP connection from `ip`, or says why not (and counts it).
    pub fn http(self: &Arc<Self>, ip: IpAddr) -> Result<HttpPermit, Refused> {
        let key = ip_key(ip);
        let exempt = self.exempt(key);
        let mut state = self.lock();
        if state.http >= self.settings.http_max_connections {
            drop(state);
            self.counters
                .refused_http_total
                .fetch_add(1, Ordering::Relaxed);
            return Err(Refused::Total);
        }
        let held = state.by_ip.get(&key).map_or(0, |e| e.http);
        if !exempt && held >= self.settings.http_max_connections_per_ip {
            drop(state);
            self.counters
                .refused_http_per_ip
                .fetch_add(1, Ordering::Relaxed);
            return Err(Refused::PerIp);
        }
        if !state.by_ip.contains_key(&key) {
            self.forget_idle(&mut state);
        }
        let entry = self.new_entry();
        state.by_ip.entry(key).or_insert(entry).http += 1;
        state.http += 1;
        Ok(HttpPermit {
            admission: self.clone(),
            key,
        })
    }

    /// Admits a signalling WebSocket from `ip` (already holding an HTTP permit), or counts
    /// the refusal.
    pub fn ws(self: &Arc<Self>, ip: IpAddr) -> Option<WsPermit> {
        let key = ip_key(ip);
        let exempt = self.exempt(key);
        let mut state = self.lock();
        let entry = self.new_entry();
        let entry = state.by_ip.entry(key).or_insert(entry);
        if !exempt && entry.ws >= self.settings.ws_max_connections_per_ip {
            drop(state);
            self.counters
                .refused_ws_per_ip
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        entry.ws += 1;
        Some(WsPermit {
            admission: self.clone(),
            key,
        })
    }

    /// Takes one join from `ip`'s allowance; false (counted) when it has none left.
    pub fn join(&self, ip: IpAddr) -> bool {
        let key = ip_key(ip);
        if self.exempt(key) {
            return true;
        }
        let mut state = self.lock();
        let entry = self.new_entry();
        let allowed = state
            .by_ip
            .entry(key)
            .or_insert(entry)
            .joins
            .take(Instant::now());
        if !allowed {
            drop(state);
            self.counters.refused_joins.fetch_add(1, Ordering::Relaxed);
        }
        allowed
    }

    pub fn count_origin_refused(&self) {
        self.counters.refused_origin.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_header_timeout(&self) {
        self.counters
            .header_timeouts
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_idle_timeout(&self) {
        self.counters.idle_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> AdmissionStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        AdmissionStats {
            http_connections: self.lock().http,
            refused_http_total: get(&c.refused_http_total),
            refused_http_per_ip: get(&c.refused_http_per_ip),
            header_timeouts: get(&c.header_timeouts),
            idle_timeouts: get(&c.idle_timeouts),
            refused_ws_per_ip: get(&c.refused_ws_per_ip),
            refused_joins: get(&c.refused_joins),
            refused_passwords: get(&c.refused_passwords),
            refused_origin: get(&c.refused_origin),
        }
    }

    /// Keeps the map bounded before it grows: entries with nothing open go once their join
    /// allowance has refilled, and all of them if the map is still larger than twice the
    /// connections there can be (an address that reconnects then starts afresh, which costs
    /// it at most one more burst of joins).
    fn forget_idle(&self, state: &mut State) {
        let bound = self.settings.http_max_connections.saturating_mul(2);
        if state.by_ip.len() < bound {
            return;
        }
        let now = Instant::now();
        state
            .by_ip
            .retain(|_, e| e.http > 0 || e.ws > 0 || !e.joins.full(now) || !e.guesses.full(now));
        if state.by_ip.len() >= bound {
            state.by_ip.retain(|_, e| e.http > 0 || e.ws > 0);
        }
    }

    fn release(&self, key: IpAddr, http: bool) {
        let mut state = self.lock();
        if http {
            state.http = state.http.saturating_sub(1);
        }
        let Some(entry) = state.by_ip.get_mut(&key) else {
            return;
        };
        if http {
            entry.http = entry.http.saturating_sub(1);
        } else {
            entry.ws = entry.ws.saturating_sub(1);
        }
        let now = Instant::now();
        if entry.http == 0 && entry.ws == 0 && entry.joins.full(now) && entry.guesses.full(now) {
            state.by_ip.remove(&key);
        }
    }
}

/// An admitted HTTP connection; dropping it frees its place.
pub struct HttpPermit {
    admission: Arc<Admission>,
    key: IpAddr,
}

impl Drop for HttpPermit {
    fn drop(&mut self) {
        self.admission.release(self.key, true);
    }
}

/// An admitted signalling WebSocket; dropping it frees its place.
pub struct WsPermit {
    admission: Arc<Admission>,
    key: IpAddr,
}

impl Drop for WsPermit {
    fn drop(&mut self) {
        self.admission.release(self.key, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(change: impl FnOnce(&mut ProtectionSettings)) -> Arc<Admission> {
        let mut s = ProtectionSettings::default();
        change(&mut s);
        Admission::new(&s)
    }

    #[test]
    fn an_ipv6_host_is_its_64_and_a_mapped_ipv4_address_is_itself() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(ip_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn each_address_gets_its_share_and_the_total_holds() {
        let adm = admission(|s| {
            s.http_max_connections = 5;
            s.http_max_connections_per_ip = 2;
        });
        let one: IpAddr = "127.0.0.2".parse().unwrap();
        let two: IpAddr = "127.0.0.3".parse().unwrap();
        let held: Vec<_> = (0..2).map(|_| adm.http(one).unwrap()).collect();
        assert_eq!(adm.http(one).err(), Some(Refused::PerIp));
        let more: Vec<_> = (0..2).map(|_| adm.http(two).unwrap()).collect();
        let last = adm.http("127.0.0.4".parse().unwrap()).unwrap();
        assert_eq!(
            adm.http("127.0.0.5".parse().unwrap()).err(),
            Some(Refused::Total)
        );
        drop(held);
        assert!(adm.http(one).is_ok());
        let stats = adm.stats();
        assert_eq!(
            (stats.refused_http_per_ip, stats.refused_http_total),
            (1, 1)
        );
        drop((more, last));
    }

    #[test]
    fn an_exempt_address_has_no_share_but_the_total() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let adm = admission(|s| {
            s.http_max_connections = 3;
            s.http_max_connections_per_ip = 1;
            s.ws_max_connections_per_ip = 1;
            s.join_burst_per_ip = 1;
            s.exempt_ips = vec![proxy];
        });
        let held: Vec<_> = (0..3).map(|_| adm.http(proxy).unwrap()).collect();
        assert_eq!(adm.http(proxy).err(), Some(Refused::Total));
        let ws: Vec<_> = (0..3).map(|_| adm.ws(proxy).unwrap()).collect();
        assert!((0..3).all(|_| adm.join(proxy)));
        drop((held, ws));
    }

    #[test]
    fn joins_are_limited_per_address_even_across_reconnects() {
        let adm = admission(|s| {
            s.join_burst_per_ip = 2;
            s.join_rate_per_ip = 0.001;
        });
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        let permit = adm.http(ip).unwrap();
        assert!(adm.join(ip) && adm.join(ip));
        assert!(!adm.join(ip));
        // Closing every connection does not refill the allowance.
        drop(permit);
        let _permit = adm.http(ip).unwrap();
        assert!(!adm.join(ip));
        assert!(adm.join("127.0.0.10".parse().unwrap()));
        assert_eq!(adm.stats().refused_joins, 2);
    }

    #[test]
    fn the_map_of_addresses_stays_bounded() {
        let adm = admission(|s| {
            s.http_max_connections = 4;
            s.join_rate_per_ip = 0.001;
        });
        for i in 0..1000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _p = adm.http(ip).unwrap();
            assert!(adm.join(ip));
        }
        assert!(adm.lock().by_ip.len() <= 8);
    }
}
