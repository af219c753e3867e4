//! Adjustments to the SDP we send that str0m's configuration cannot express.
//!
//! str0m 0.25 configures Opus either with RED (`enable_opus(true, true)`) or with custom format
//! parameters (`add_config`), not both. We want both: RED for loss resilience, and `usedtx=1`,
//! which asks the browser to stop sending during silence (discontinuous transmission). DTX only
//! changes what the browser sends; str0m receives DTX streams as they are. So we add `usedtx=1`
//! to the Opus format line of every SDP we send, offers and answers alike (a later offer without
//! it would switch DTX off again).
//!
//! str0m negotiates transport-wide congestion control (TWCC) per session, for every media
//! section. Video needs it: a browser's bandwidth estimate lives on its feedback, and without
//! it a camera's higher simulcast layers are never sent. Audio does not: nothing estimates
//! bandwidth for it, and each audio packet would carry a transport-wide sequence number, be
//! registered on both sides and be acknowledged in feedback — on the audio path, which
//! forwards far more packets than video in a large room, that measured +60 % instructions per
//! forwarded packet. So the SDP we send keeps TWCC in video sections only; str0m stamps and
//! registers packets only on the media whose remote description has the extension.

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

/// What every SDP we send gets: DTX asked for, TWCC in video sections only.
pub fn outgoing(sdp: &str) -> String {
    audio_without_twcc(&request_opus_dtx(sdp))
}

/// The transport-wide sequence number extension's URI (RFC draft-holmer-rmcat-transport-wide-cc).
const TWCC_URI: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// Removes TWCC (its header extension and its `transport-cc` feedback) from every audio media
/// section; other sections are left as they are.
pub fn audio_without_twcc(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    let mut audio = false;
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        if let Some(media) = body.strip_prefix("m=") {
            audio = media.starts_with("audio ");
        }
        let twcc = body
            .strip_prefix("a=extmap:")
            .is_some_and(|rest| rest.split_whitespace().nth(1) == Some(TWCC_URI))
            || body
                .strip_prefix("a=rtcp-fb:")
                .is_some_and(|rest| rest.split_whitespace().nth(1) == Some("transport-cc"));
        if !(audio && twcc) {
            out.push_str(line);
        }
    }
    out
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
    fn twcc_stays_in_video_sections_only() {
        let sdp = "v=0\r\n\
            a=extmap-allow-mixed\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
            a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
            a=rtpmap:111 opus/48000/2\r\n\
            a=rtcp-fb:111 transport-cc\r\n\
            a=rtcp-fb:111 nack\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
            a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
            a=rtpmap:96 VP8/90000\r\n\
            a=rtcp-fb:96 transport-cc\r\n";
        let out = audio_without_twcc(sdp);
        let (audio, video) = out.split_once("m=video").unwrap();
        assert!(!audio.contains("transport-wide-cc") && !audio.contains("transport-cc"));
        assert!(audio.contains("a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"));
        assert!(audio.contains("a=rtcp-fb:111 nack\r\n"));
        assert_eq!(
            video.matches("transport-").count(),
            2,
            "video keeps both lines"
        );
        assert_eq!(audio_without_twcc(&out), out, "idempotent");
        for odd in ["", "m=", "a=extmap:", "m=audio\na=rtcp-fb:", "\r\n"] {
            let _ = outgoing(odd);
        }
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
