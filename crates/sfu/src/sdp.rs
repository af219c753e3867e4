//! Adjustments to the SDP we send that str0m's configuration cannot express.
//!
//! str0m 0.25 configures Opus either with RED (`enable_opus(true, true)`) or with custom format
//! parameters (`add_config`), not both. We want both: RED for loss resilience, and `usedtx=1`,
//! which asks the browser to stop sending during silence (discontinuous transmission). DTX only
//! changes what the browser sends; str0m receives DTX streams as they are. So we add `usedtx=1`
//! to the Opus format line of every SDP we send, offers and answers alike (a later offer without
//! it would switch DTX off again).

use str0m::change::SdpOffer;

/// Parses a client's offer, refusing one without any media section.
pub fn parse_offer(sdp: &str) -> Result<SdpOffer, String> {
    if !sdp.lines().any(|l| l.starts_with("m=")) {
        return Err("the offer has no media sections".into());
    }
    SdpOffer::from_sdp_string(sdp).map_err(|e| format!("the offer does not parse: {e}"))
}

/// Whether an SDP answer accepts any media section (a port other than 0).
pub fn has_active_media(answer: &str) -> bool {
    answer
        .lines()
        .filter_map(|l| l.strip_prefix("m="))
        .any(|m| m.split_whitespace().nth(1).is_some_and(|port| port != "0"))
}

/// Adds `usedtx=1` to every Opus `a=fmtp` line that lacks a `usedtx` parameter.
pub fn request_opus_dtx(sdp: &str) -> String {
    let opus_pts: Vec<&str> = sdp
        .lines()
        .filter_map(|l| l.strip_prefix("a=rtpmap:"))
        .filter_map(|rest| {
            let (pt, codec) = rest.split_once(' ')?;
            codec
                .to_ascii_lowercase()
                .starts_with("opus/48000")
                .then_some(pt)
        })
        .collect();
    let mut out = String::with_capacity(sdp.len() + 16 * opus_pts.len());
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        let is_opus_fmtp = body
            .strip_prefix("a=fmtp:")
            .and_then(|rest| rest.split_once(' '))
            .is_some_and(|(pt, params)| opus_pts.contains(&pt) && !params.contains("usedtx"));
        out.push_str(body);
        if is_opus_fmtp {
            out.push_str(";usedtx=1");
        }
        out.push_str(ending);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_dtx_to_opus_only_and_only_once() {
        let sdp = "v=0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 63 111\r\n\
            a=rtpmap:63 red/48000/2\r\n\
            a=fmtp:63 111/111\r\n\
            a=rtpmap:111 opus/48000/2\r\n\
            a=fmtp:111 minptime=10;useinbandfec=1\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
            a=rtpmap:96 VP8/90000\r\n\
            a=fmtp:96 x-google-start-bitrate=800\r\n";
        let out = request_opus_dtx(sdp);
        assert!(out.contains("a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1\r\n"));
        assert!(out.contains("a=fmtp:63 111/111\r\n"), "RED untouched");
        assert!(
            out.contains("a=fmtp:96 x-google-start-bitrate=800\r\n"),
            "video untouched"
        );
        assert_eq!(request_opus_dtx(&out), out, "idempotent");
        assert_eq!(out.len(), sdp.len() + ";usedtx=1".len());
    }

    #[test]
    fn leaves_an_explicit_choice_and_odd_input_alone() {
        let sdp = "a=rtpmap:111 opus/48000/2\na=fmtp:111 usedtx=0\n";
        assert_eq!(request_opus_dtx(sdp), sdp);
        for odd in [
            "",
            "a=fmtp:",
            "a=rtpmap:111",
            "a=fmtp:111",
            "\r\n\r\n",
            "a=rtpmap:1 opus/48000/2",
        ] {
            let _ = request_opus_dtx(odd);
        }
    }
}
