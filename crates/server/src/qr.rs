//! A room's invitation as a QR code: an SVG of the room's own link, for a phone to scan from
//! the screen of someone in the room. Nothing but that link is ever encoded: the room's name,
//! checked as `join` checks it, and the host the request reached, checked to be a host name or
//! address (with a port), so the endpoint cannot be made to draw a code for anything else.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use free4chat_signal::validate_room_name;
use qrcode::QrCode;
use qrcode::render::svg;

/// The longest `Host` taken: a DNS name (253) with a port.
const MAX_HOST: usize = 260;

/// Whether `host` is a host name, IPv4 address or bracketed IPv6 address, with an optional
/// port: nothing that could carry a path, query, user or scheme into the link.
fn is_host(host: &str) -> bool {
    if host.is_empty() || host.len() > MAX_HOST {
        return false;
    }
    let (name, port) = if host.starts_with('[') {
        match host.find(']') {
            Some(i) => (
                &host[..=i],
                host[i + 1..]
                    .strip_prefix(':')
                    .map(Some)
                    .unwrap_or_else(|| (i + 1 != host.len()).then_some("")),
            ),
            None => return false,
        }
    } else {
        match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let name_ok = if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    port_ok && name_ok
}

/// The room's link as the person asking sees the server: `https` when this server speaks TLS
/// or the proxy in front of it says the page came over HTTPS.
pub fn room_link(tls: bool, headers: &HeaderMap, room: &str) -> Option<String> {
    validate_room_name(room).ok()?;
    let host = headers.get(HOST)?.to_str().ok()?;
    if !is_host(host) {
        return None;
    }
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let scheme = if tls || forwarded_https {
        "https"
    } else {
        "http"
    };
    Some(format!(
        "{scheme}://{}/room/{room}",
        host.to_ascii_lowercase()
    ))
}

/// The QR code of `link` as an SVG document, dark on light whatever the page's colours, with
/// the quiet zone scanners need.
pub fn svg_of(link: &str) -> Option<String> {
    let code = QrCode::new(link.as_bytes()).ok()?;
    Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .quiet_zone(true)
            .build(),
    )
}

/// `GET /room/<name>/qr.svg`.
pub async fn room_qr(tls: bool, Path(room): Path<String>, headers: HeaderMap) -> Response {
    let Some(svg) = room_link(tls, &headers, &room).and_then(|link| svg_of(&link)) else {
        return (StatusCode::BAD_REQUEST, "not a room's link").into_response();
    };
    let mut response = svg.into_response();
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    // An image, never a document that runs anything.
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    // It depends on the Host asked for.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("vary", HeaderValue::from_static("Host, X-Forwarded-Proto"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str, proto: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_str(host).unwrap());
        if let Some(p) = proto {
            h.insert("x-forwarded-proto", HeaderValue::from_str(p).unwrap());
        }
        h
    }

    #[test]
    fn the_link_is_the_rooms_own_on_the_host_asked_for() {
        let link = |host, proto, tls, room| room_link(tls, &headers(host, proto), room);
        assert_eq!(
            link("Chat.Example.org", None, false, "practice").as_deref(),
            Some("http://chat.example.org/room/practice")
        );
        assert_eq!(
            link("chat.example.org:8443", None, true, "a-b_c").as_deref(),
            Some("https://chat.example.org:8443/room/a-b_c")
        );
        assert_eq!(
            link("10.0.0.1:4000", Some("https"), false, "r").as_deref(),
            Some("https://10.0.0.1:4000/room/r")
        );
        assert_eq!(
            link("[::1]:4000", None, false, "r").as_deref(),
            Some("http://[::1]:4000/room/r")
        );
        assert_eq!(
            link("[::1]", None, false, "r").as_deref(),
            Some("http://[::1]/room/r")
        );
    }

    #[test]
    fn nothing_but_a_room_name_and_a_host_is_encoded() {
        let link = |host, room| room_link(false, &headers(host, None), room);
        let long = "a".repeat(65);
        for room in ["", "a/b", "a b", "é", "x?y=1", &long] {
            assert_eq!(link("localhost", room), None, "{room}");
        }
        for host in [
            "",
            "evil.example/path",
            "user@evil.example",
            "a..b",
            "host:port",
            "host:123456",
            "[zz]:1",
            "ho st",
            "x.example:80/",
            "::1",
        ] {
            assert_eq!(link(host, "r"), None, "{host}");
        }
    }

    #[test]
    fn the_code_is_an_svg_image() {
        let svg = svg_of("https://chat.example.org/room/practice").unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg") && svg.contains("#000000"));
        assert!(!svg.contains("<script"));
    }
}
