//! Media through a relay: the remote's UDP candidates replaced by the relay's address, so that
//! everything the session sends goes to the relay, which passes it on to the server. The
//! server, ICE-lite, answers whichever address its checks come from: the relay's.

use std::net::SocketAddr;

/// `sdp` with each m-line's first UDP `a=candidate` line's address and port replaced by `to`,
/// and its other UDP candidates left out (they would all be the relay, once rewritten).
pub(super) fn udp_candidates_to(sdp: &str, to: SocketAddr) -> String {
    let mut out = String::with_capacity(sdp.len());
    let mut done = false;
    for line in sdp.split_inclusive('\n') {
        let Some(candidate) = line.strip_prefix("a=candidate:") else {
            done &= !line.starts_with("m=");
            out.push_str(line);
            continue;
        };
        let body = candidate.trim_end_matches(['\r', '\n']);
        let mut fields: Vec<&str> = body.split(' ').collect();
        let udp = fields.get(2).is_some_and(|t| t.eq_ignore_ascii_case("udp"));
        if !udp || fields.len() < 6 {
            out.push_str(line);
            continue;
        }
        if done {
            continue;
        }
        done = true;
        let (ip, port) = (to.ip().to_string(), to.port().to_string());
        fields[4] = &ip;
        fields[5] = &port;
        out.push_str("a=candidate:");
        out.push_str(&fields.join(" "));
        out.push_str(&line[line.len() - (candidate.len() - body.len())..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_udp_candidate_becomes_the_relay_and_the_rest_stay_as_they_were() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
                   a=candidate:1 1 udp 2130706175 127.0.0.1 40000 typ host\r\n\
                   a=candidate:2 1 tcp 1518280447 127.0.0.1 40000 typ host tcptype passive\r\n\
                   a=candidate:3 1 UDP 2130706175 ::1 40000 typ host\r\n\
                   a=candidate:4 1 udp\r\n\
                   a=end-of-candidates\r\n";
        let relay: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        assert_eq!(
            udp_candidates_to(sdp, relay),
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
             a=candidate:1 1 udp 2130706175 127.0.0.1 5555 typ host\r\n\
             a=candidate:2 1 tcp 1518280447 127.0.0.1 40000 typ host tcptype passive\r\n\
             a=candidate:4 1 udp\r\n\
             a=end-of-candidates\r\n"
        );
        // Without line ends, and with none to rewrite.
        assert_eq!(
            udp_candidates_to("a=candidate:1 1 udp 1 10.0.0.1 9 typ host", relay),
            "a=candidate:1 1 udp 1 127.0.0.1 5555 typ host"
        );
        assert_eq!(udp_candidates_to("v=0\n", relay), "v=0\n");
    }
}
