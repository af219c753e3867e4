//! Which pages may open the signalling WebSocket: those served from one of this server's own
//! host names, and those the operator allows. Browsers send `Origin` on every WebSocket
//! request and a page cannot forge it, so a page on another site cannot make its visitors'
//! browsers join rooms (cross-site WebSocket hijacking). Programs other than browsers send no
//! `Origin` and are allowed: they could forge any header anyway.

use crate::config::Config;
use crate::ice::host_from_header;

/// The origins allowed besides the server's own host names.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    any: bool,
    /// Allowed origins, lower-cased, as `scheme://host[:port]`.
    allowed: Vec<String>,
    /// Host names the server is known by besides the one a request names in `Host`.
    own_hosts: Vec<String>,
}

/// Whether `origin` is a usable entry of the allow-list: `*`, or `http(s)://host[:port]`.
pub fn valid_allowed(origin: &str) -> bool {
    origin == "*" || split(origin.trim_end_matches('/')).is_some()
}

/// The scheme and the host (lower-cased, without its port) of an origin, if well formed.
fn split(origin: &str) -> Option<(&str, String)> {
    let (scheme, authority) = origin.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    Some((scheme, host_from_header(authority)?))
}

impl OriginPolicy {
    pub fn new(config: &Config) -> OriginPolicy {
        let list = &config.protection.allowed_origins;
        let mut own_hosts: Vec<String> = config
            .media
            .public_ip
            .iter()
            .map(|ip| match ip {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                ip => ip.to_string(),
            })
            .collect();
        own_hosts.extend(config.turn.turn_host.iter().map(|h| h.to_ascii_lowercase()));
        OriginPolicy {
            any: list.iter().any(|o| o == "*"),
            allowed: list
                .iter()
                .filter(|o| *o != "*")
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            own_hosts,
        }
    }

    /// Whether a WebSocket request with this `Origin` header, reaching us as `host` (the
    /// checked host of its `Host` header), may go on.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        if self.any {
            return true;
        }
        let origin = origin.to_ascii_lowercase();
        if self.allowed.contains(&origin) {
            return true;
        }
        // A page served by us: its host is the one the request names, or one we are known by.
        // Ports are not compared: behind a proxy, Host often loses the port the page showed.
        let Some((_, origin_host)) = split(&origin) else {
            return false;
        };
        host.is_some_and(|h| h == origin_host) || self.own_hosts.contains(&origin_host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(list: &[&str]) -> OriginPolicy {
        let mut config = Config::default();
        config.protection.allowed_origins = list.iter().map(|s| s.to_string()).collect();
        config.turn.turn_host = Some("Chat.Example.org".into());
        OriginPolicy::new(&config)
    }

    #[test]
    fn pages_of_our_own_host_names_and_requests_without_origin_are_allowed() {
        let p = policy(&[]);
        assert!(p.allows(None, Some("localhost")));
        assert!(p.allows(Some("http://localhost:4000"), Some("localhost")));
        assert!(p.allows(Some("https://LOCALHOST"), Some("localhost")));
        assert!(p.allows(Some("https://chat.example.org"), Some("10.0.0.1")));
        assert!(p.allows(Some("http://[::1]:4000"), Some("[::1]")));
    }

    #[test]
    fn other_pages_are_refused_unless_listed() {
        let p = policy(&["https://embed.example.com", "http://127.0.0.1:8080/"]);
        assert!(!p.allows(Some("https://evil.example"), Some("localhost")));
        assert!(!p.allows(Some("null"), Some("localhost")));
        assert!(!p.allows(Some("https://localhost.evil.example"), Some("localhost")));
        assert!(!p.allows(Some("https://evil.example"), None));
        assert!(p.allows(Some("https://embed.example.com"), Some("localhost")));
        assert!(p.allows(Some("http://127.0.0.1:8080"), Some("localhost")));
        assert!(!p.allows(Some("http://127.0.0.1:8081"), Some("localhost")));
        assert!(policy(&["*"]).allows(Some("https://evil.example"), None));
    }

    #[test]
    fn only_star_and_http_origins_may_be_listed() {
        assert!(valid_allowed("*"));
        assert!(valid_allowed("https://a.example:8443"));
        assert!(!valid_allowed("a.example"));
        assert!(!valid_allowed("ftp://a.example"));
        assert!(!valid_allowed("https://a.example/path"));
    }
}
