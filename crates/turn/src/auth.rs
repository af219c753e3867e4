//! Credentials and nonces: everything the server needs to authenticate a request without
//! keeping any state about a client before it has authenticated.
//!
//! - Credentials follow coturn's `use-auth-secret` scheme: the username is
//!   `"<expiry-unix-time>:<peer-id>"` and the password is `base64(HMAC-SHA1(secret, username))`,
//!   so the server recomputes the password of any username from the shared secret.
//! - Nonces are `<issue time, 16 hex digits><HMAC-SHA1(server key, issue time, client IP),
//!   truncated to 16 bytes, hex>`. The server key is random per process, so a nonce is checked
//!   with no table, and one issued to another client IP or by an earlier process is refused.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// How long a nonce stays valid; after that a request carrying it gets 438 Stale Nonce.
pub(crate) const NONCE_LIFETIME: Duration = Duration::from_secs(600);

/// Length of a nonce: 16 hex digits of time and 32 of MAC.
const NONCE_LEN: usize = 16 + 32;

/// Issues time-limited TURN credentials for one peer (coturn's `use-auth-secret` scheme).
///
/// Returns `(username, password)`: the username is `"<expiry>:<peer>"`, where expiry is
/// `now + ttl` in Unix seconds, and the password is `base64(HMAC-SHA1(secret, username))`.
/// The server accepts them until the expiry, for new allocations and for every later request
/// on an allocation (so `ttl` must cover the longest call: a Refresh after expiry fails).
pub fn credentials(secret: &[u8], peer: &str, ttl: Duration, now: SystemTime) -> (String, String) {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let username = format!("{}:{peer}", now.saturating_add(ttl.as_secs()));
    let password = password(secret, &username);
    (username, password)
}

/// The password of `username` under `secret`.
pub(crate) fn password(secret: &[u8], username: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha1(secret, &[username.as_bytes()]))
}

/// The expiry (Unix seconds) a username carries: the digits before the first `:`, or the whole
/// username when it has no `:`. `None` when there are no such digits.
pub(crate) fn username_expiry(username: &str) -> Option<u64> {
    let stamp = username.split(':').next().unwrap_or_default();
    if stamp.is_empty() || stamp.len() > 20 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stamp.parse().ok()
}

fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let mut mac = match HmacSha1::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(_) => unreachable!("HMAC accepts every key length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// What a nonce check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceCheck {
    Valid,
    /// Too old, from the future, from another client or process, or not one of ours.
    Stale,
}

/// Makes and checks stateless nonces.
pub(crate) struct Nonces {
    key: [u8; 32],
}

impl Nonces {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, issued: u64, client: IpAddr) -> [u8; 20] {
        let ip = match client {
            IpAddr::V4(ip) => ip.to_ipv6_mapped().octets(),
            IpAddr::V6(ip) => ip.octets(),
        };
        hmac_sha1(&self.key, &[&issued.to_be_bytes(), &ip])
    }

    /// A nonce for `client`, issued at `now` (seconds on the server's own clock).
    pub(crate) fn issue(&self, client: IpAddr, now: u64) -> String {
        let mac = self.mac(now, client);
        let mut nonce = format!("{now:016x}");
        for b in &mac[..16] {
            nonce.push_str(&format!("{b:02x}"));
        }
        nonce
    }

    /// Checks a nonce presented by `client` at `now`.
    pub(crate) fn check(&self, nonce: &str, client: IpAddr, now: u64) -> NonceCheck {
        if nonce.len() != NONCE_LEN || !nonce.is_ascii() {
            return NonceCheck::Stale;
        }
        let (stamp, mac_hex) = nonce.split_at(16);
        let Ok(issued) = u64::from_str_radix(stamp, 16) else {
            return NonceCheck::Stale;
        };
        let mut presented = [0u8; 16];
        for (i, byte) in presented.iter_mut().enumerate() {
            match u8::from_str_radix(&mac_hex[2 * i..2 * i + 2], 16) {
                Ok(b) => *byte = b,
                Err(_) => return NonceCheck::Stale,
            }
        }
        let expected = self.mac(issued, client);
        // Constant-time comparison of the truncated MAC.
        let diff = expected[..16]
            .iter()
            .zip(presented.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 || issued > now || now - issued >= NONCE_LIFETIME.as_secs() {
            return NonceCheck::Stale;
        }
        NonceCheck::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_matches_the_coturn_scheme() {
        // Computed independently: base64(HMAC-SHA1("north-wind", "1700000000:alice")).
        assert_eq!(
            password(b"north-wind", "1700000000:alice"),
            "Oko4dt8u/EbTRjRUJWQDFm/zTCc="
        );
        let now = UNIX_EPOCH + Duration::from_secs(1_699_999_000);
        let (user, pass) = credentials(b"north-wind", "alice", Duration::from_secs(1000), now);
        assert_eq!(user, "1700000000:alice");
        assert_eq!(pass, "Oko4dt8u/EbTRjRUJWQDFm/zTCc=");
    }

    #[test]
    fn expiry_is_read_from_the_username() {
        assert_eq!(username_expiry("1700000000:alice"), Some(1_700_000_000));
        assert_eq!(username_expiry("1700000000:a:b"), Some(1_700_000_000));
        assert_eq!(username_expiry("1700000000"), Some(1_700_000_000));
        assert_eq!(username_expiry("alice:1700000000"), None);
        assert_eq!(username_expiry(":alice"), None);
        assert_eq!(username_expiry(""), None);
        assert_eq!(username_expiry("-5:x"), None);
        assert_eq!(username_expiry("+5:x"), None);
        assert_eq!(username_expiry("99999999999999999999999:x"), None);
    }

    #[test]
    fn nonces_are_bound_to_time_client_and_key() {
        let nonces = Nonces::new([7; 32]);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let nonce = nonces.issue(ip, 1000);
        assert_eq!(nonce.len(), NONCE_LEN);
        assert_eq!(nonces.check(&nonce, ip, 1000), NonceCheck::Valid);
        assert_eq!(nonces.check(&nonce, ip, 1599), NonceCheck::Valid);
        assert_eq!(nonces.check(&nonce, ip, 1600), NonceCheck::Stale);
        assert_eq!(nonces.check(&nonce, ip, 999), NonceCheck::Stale);
        assert_eq!(nonces.check(&nonce, other, 1000), NonceCheck::Stale);
        assert_eq!(
            Nonces::new([8; 32]).check(&nonce, ip, 1000),
            NonceCheck::Stale
        );
        // A forged time with the old MAC fails.
        let forged = format!("{:016x}{}", 1500u64, &nonce[16..]);
        assert_eq!(nonces.check(&forged, ip, 1500), NonceCheck::Stale);
        for junk in ["", "x", "é", &"é".repeat(24), &"z".repeat(48)] {
            assert_eq!(nonces.check(junk, ip, 1000), NonceCheck::Stale);
        }
    }
}
