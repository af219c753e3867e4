//! The STUN/TURN servers each member is handed in `joined`, with credentials of its own.
//!
//! Credentials follow the scheme coturn calls `use-auth-secret`: the username is
//! `<expiry-unix-time>:<member-id>` and the password `base64(HMAC-SHA1(secret, username))`,
//! so a TURN server that knows the secret checks them without being told of each member.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use free4chat_signal::{IceServer, MemberId};
use free4chat_turn::{LocalAddrs, TurnHandle};
use tracing::debug;

use crate::config::Config;

/// The relays a member may use: the integrated TURN server's listeners and any external ones.
#[derive(Debug, Clone)]
pub struct IceServers {
    integrated: Option<Integrated>,
    external: Vec<String>,
    external_secret: Option<Vec<u8>>,
    ttl: Duration,
}

#[derive(Debug, Clone)]
struct Integrated {
    secret: Vec<u8>,
    /// The host in the URLs; when unset, the host the browser reached us by.
    host: Option<String>,
    /// Where it listens: one URL per listener.
    listeners: LocalAddrs,
    /// The running server, told when a member leaves so that its credentials die with its
    /// membership.
    server: Option<Arc<TurnHandle>>,
}

impl IceServers {
    /// From the configuration; `turn` is the running integrated server's secret and the
    /// addresses it listens on, if there is one.
    pub fn new(config: &Config, turn: Option<(&[u8], LocalAddrs)>) -> IceServers {
        let integrated = turn.map(|(secret, listeners)| Integrated {
            secret: secret.to_vec(),
            host: config
                .turn
                .turn_host
                .clone()
                .or_else(|| config.media.public_ip.first().map(|ip| host_literal(*ip))),
            listeners,
            server: None,
        });
        IceServers {
            integrated,
            external: config.turn.external_turn.clone(),
            external_secret: config
                .turn
                .external_turn_secret
                .as_ref()
                .map(|s| s.as_bytes().to_vec()),
            ttl: config.turn.turn_ttl,
        }
    }

    /// Revokes each member's integrated TURN credentials, through `server`, when it leaves.
    pub fn revoking_with(mut self, server: Arc<TurnHandle>) -> IceServers {
        if let Some(i) = &mut self.integrated {
            i.server = Some(server);
        }
        self
    }

    /// A member has left: its credentials for the integrated TURN server stop working, and
    /// its allocations there are freed. (An external TURN server cannot be told.)
    pub fn member_left(&self, member: MemberId) {
        if let Some(server) = self.integrated.as_ref().and_then(|i| i.server.as_ref())
            && !server.revoke(&member.to_string(), SystemTime::now() + self.ttl)
        {
            debug!(%member, "TURN server busy: credentials left to expire");
        }
    }

    /// How often a member that stays gets fresh credentials: at half their lifetime, so that
    /// a renewal late by up to that much still comes before they expire. `None` when no
    /// credentials are issued.
    pub fn renew_every(&self) -> Option<Duration> {
        (self.integrated.is_some() || self.external_secret.is_some()).then_some(self.ttl / 2)
    }

    /// Fresh credentials for a member that stays in its room, and the integrated TURN server
    /// told that it stays: the allocations it made with older credentials are kept with them
    /// for as long as these last (browsers refresh an allocation with the credentials it was
    /// made with). New allocations need credentials not yet expired.
    pub fn renewed(
        &self,
        member: MemberId,
        request_host: Option<&str>,
        now: SystemTime,
    ) -> Vec<IceServer> {
        if let Some(server) = self.integrated.as_ref().and_then(|i| i.server.as_ref())
            && !server.renew(&member.to_string(), now + self.ttl)
        {
            debug!(%member, "TURN server busy: its allocations keep their old expiry");
        }
        self.for_member(member, request_host, now)
    }

    /// The list for one member. `request_host` is the host part of the HTTP `Host` header of
    /// the member's WebSocket request, already checked with [`host_from_header`].
    pub fn for_member(
        &self,
        member: MemberId,
        request_host: Option<&str>,
        now: SystemTime,
    ) -> Vec<IceServer> {
        let mut out = Vec::new();
        let name = member.to_string();
        if let Some(t) = &self.integrated
            && let Some(host) = t.host.as_deref().or(request_host)
        {
            let l = &t.listeners;
            let mut urls = Vec::new();
            if let Some(a) = l.udp {
                urls.push(format!("turn:{host}:{}?transport=udp", a.port()));
            }
            if let Some(a) = l.tcp {
                urls.push(format!("turn:{host}:{}?transport=tcp", a.port()));
            }
            if let Some(a) = l.tls {
                urls.push(format!("turns:{host}:{}?transport=tcp", a.port()));
            }
            let (username, credential) =
                free4chat_turn::credentials(&t.secret, &name, self.ttl, now);
            out.push(IceServer {
                urls,
                username: Some(username),
                credential: Some(credential),
            });
        }
        if !self.external.is_empty() {
            let (username, credential) = self
                .external_secret
                .as_ref()
                .map(|secret| free4chat_turn::credentials(secret, &name, self.ttl, now))
                .unzip();
            out.push(IceServer {
                urls: self.external.clone(),
                username,
                credential,
            });
        }
        out
    }
}

/// An IP address as it appears in a URL's host (IPv6 in brackets).
fn host_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// A DNS name, an IPv4 address or a bracketed IPv6 address: what may stand before the port in
/// a TURN URL.
pub fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.len() <= 63)
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The host part of an HTTP `Host` header, if it is a well-formed host (the header comes
/// from the client and is not trusted further than that).
pub fn host_from_header(header: &str) -> Option<String> {
    let host = if header.starts_with('[') {
        let end = header.find(']')?;
        let (host, rest) = header.split_at(end + 1);
        if !(rest.is_empty() || rest.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        host
    } else {
        match header.rsplit_once(':') {
            Some((host, port)) if is_port(port) => host,
            Some(_) => return None,
            None => header,
        }
    };
    valid_host(host).then(|| host.to_ascii_lowercase())
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A TURN, TURNS or STUN URL of printable ASCII without spaces.
pub fn valid_url(url: &str) -> bool {
    (url.starts_with("turn:") || url.starts_with("turns:") || url.starts_with("stun:"))
        && url.len() <= 512
        && url.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn hosts_from_headers_are_checked() {
        assert_eq!(
            host_from_header("Example.com:4000").as_deref(),
            Some("example.com")
        );
        assert_eq!(host_from_header("127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_from_header("[::1]:443").as_deref(), Some("[::1]"));
        for bad in [
            "",
            "a b",
            "x:y",
            "[::1",
            "[zz]:1",
            "evil.com/x",
            "a..b",
            "h:123456",
            "[::1]x",
        ] {
            assert_eq!(host_from_header(bad), None, "{bad}");
        }
    }

    #[test]
    fn each_member_gets_urls_for_every_listener_and_credentials_of_its_own() {
        let mut config = Config::default();
        // A day, for credentials computed independently once.
        config.turn.turn_ttl = Duration::from_secs(86_400);
        config.turn.external_turn = vec!["turns:relay.example:443?transport=tcp".into()];
        config.turn.external_turn_secret = Some("ext".into());
        let listeners = LocalAddrs {
            udp: Some("0.0.0.0:3478".parse().unwrap()),
            tcp: Some("0.0.0.0:3479".parse().unwrap()),
            tls: Some("0.0.0.0:5349".parse().unwrap()),
        };
        let ice = IceServers::new(&config, Some((b"s3cret", listeners)));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let list = ice.for_member(MemberId(7), Some("chat.example"), now);
        assert_eq!(list.len(), 2);
        assert_eq!(
            list[0].urls,
            [
                "turn:chat.example:3478?transport=udp",
                "turn:chat.example:3479?transport=tcp",
                "turns:chat.example:5349?transport=tcp"
            ]
        );
        assert_eq!(list[0].username.as_deref(), Some("1086400:7"));
        // base64(HMAC-SHA1("s3cret", "1086400:7")), as coturn computes it.
        assert_eq!(
            list[0].credential.as_deref(),
            Some("oBanELcscqIr+v9SUhOXC/OmjiE=")
        );
        assert_eq!(list[1].urls, ["turns:relay.example:443?transport=tcp"]);
        assert_ne!(list[1].credential, list[0].credential);
        assert_ne!(
            ice.for_member(MemberId(8), Some("chat.example"), now)[0].credential,
            list[0].credential
        );
        // With no host known, the integrated server cannot be named; the external one still is.
        assert_eq!(ice.for_member(MemberId(7), None, now).len(), 1);
        let none = IceServers::new(&Config::default(), None);
        assert!(none.for_member(MemberId(7), Some("x"), now).is_empty());
        // Credentials are renewed at half their lifetime, and never when none are issued.
        assert_eq!(ice.renew_every(), Some(Duration::from_secs(43_200)));
        assert_eq!(none.renew_every(), None);
        let later = now + Duration::from_secs(600);
        let renewed = ice.renewed(MemberId(7), Some("chat.example"), later);
        assert_eq!(renewed[0].username.as_deref(), Some("1087000:7"));
        assert_eq!(renewed[0].urls, list[0].urls);
    }
}
