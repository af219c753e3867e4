//! Descriptions changed on their way in or out. Media through a relay: the remote's UDP
//! candidates replaced by the relay's address, so that everything the session sends goes to
//! the relay, which passes it on to the server (ICE-lite, it answers whichever address its
//! checks come from: the relay's). Simulcast offered as Chrome does: without `a=ssrc` lines.

use std::net::SocketAddr;

use str0m::media::Mid;

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

/// `sdp` without the `a=ssrc` and `a=ssrc-group` lines of the m-line whose mid is `mid`.
pub(super) fn without_ssrc_lines(sdp: &str, mid: Mid) -> String {
    let mut out = String::with_capacity(sdp.len());
    let mut section = String::new();
    let is_ours = |section: &str| {
        section
            .lines()
            .any(|l| l.strip_prefix("a=mid:") == Some(mid.as_ref()))
    };
    let flush = |section: &mut String, out: &mut String| {
        if is_ours(section) {
            for line in section.split_inclusive('\n') {
                if !line.starts_with("a=ssrc") {
                    out.push_str(line);
                }
            }
        } else {
            out.push_str(section);
        }
        section.clear();
    };
    for line in sdp.split_inclusive('\n') {
        if line.starts_with("m=") {
            flush(&mut section, &mut out);
        }
        section.push_str(line);
    }
    flush(&mut section, &mut out);
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

    #[test]
    fn ssrc_lines_go_from_one_m_line_only() {
        let sdp = "v=0\r\na=ssrc:9 cname:x\r\n\
                   m=audio 9 X 111\r\na=mid:0\r\na=ssrc:1 cname:x\r\n\
                   m=video 9 X 96\r\na=mid:1\r\na=rid:q send\r\na=ssrc:2 cname:x\r\n\
                   a=ssrc-group:FID 2 3\r\na=simulcast:send q\r\n";
        assert_eq!(
            without_ssrc_lines(sdp, Mid::from("1")),
            "v=0\r\na=ssrc:9 cname:x\r\n\
             m=audio 9 X 111\r\na=mid:0\r\na=ssrc:1 cname:x\r\n\
             m=video 9 X 96\r\na=mid:1\r\na=rid:q send\r\na=simulcast:send q\r\n"
        );
    }
}
