//! The session's own parts without a network: payloads, candidates, losses, offers.

use super::*;

#[test]
fn payloads_round_trip_and_strangers_are_not_ours() {
    let mut p = [0u8; PAYLOAD_LEN];
    p[..4].copy_from_slice(MAGIC);
    p[4..12].copy_from_slice(&7u64.to_be_bytes());
    p[12..16].copy_from_slice(&9u32.to_be_bytes());
    p[16..24].copy_from_slice(&11u64.to_be_bytes());
    assert_eq!(parse_payload(&p), Some((7, 9, 11)));
    assert_eq!(parse_payload(&p[..20]), None);
    assert_eq!(parse_payload(&[0u8; PAYLOAD_LEN]), None);
}

#[test]
fn tcp_mode_ignores_the_remotes_udp_candidates() {
    let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
               a=candidate:1 1 udp 2130706175 127.0.0.1 40000 typ host\r\n\
               a=candidate:2 1 tcp 1518280447 127.0.0.1 40000 typ host tcptype passive\r\n\
               a=candidate:3 1 UDP 2130706175 ::1 40000 typ host\r\n\
               a=end-of-candidates\r\n";
    assert_eq!(
        without_udp_candidates(sdp),
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
         a=candidate:2 1 tcp 1518280447 127.0.0.1 40000 typ host tcptype passive\r\n\
         a=end-of-candidates\r\n"
    );
}

#[test]
fn losses_are_counted_by_sequence() {
    let mut r = Received::default();
    for s in [0, 1, 3, 3, 5] {
        r.record(s);
    }
    assert_eq!(r.distinct, 4);
    assert_eq!(r.missing_between(0, 6), 2);
    assert_eq!(r.first(), Some(0));
    assert_eq!(Received::default().first(), None);
    let mut late = Received::default();
    for s in [70, 72] {
        late.record(s);
    }
    assert_eq!(late.first(), Some(70));
    assert_eq!(late.missing_between(0, 73) - late.missing_between(0, 70), 1);
    assert_eq!(late.missing_between(70, 73), 1);
    assert_eq!(late.missing_between(73, 70), 0);
}

async fn offered(video: Option<VideoOptions>) -> String {
    let opts = MediaOptions {
        video,
        ..MediaOptions::default()
    };
    let state = SharedState::default();
    let mut session = MediaSession::bind(opts, state).await.unwrap();
    session.offer(Direction::SendRecv).unwrap()
}

#[tokio::test]
async fn a_simulcast_camera_offers_one_sending_video_line_with_three_rids_low_to_high() {
    let sdp = offered(Some(VideoOptions::simulcast())).await;
    assert_eq!(sdp.matches("m=video").count(), 1, "{sdp}");
    assert!(sdp.contains("a=sendonly"), "{sdp}");
    assert!(sdp.contains("a=simulcast:send q;h;f"), "{sdp}");
    for rid in ["q", "h", "f"] {
        assert!(sdp.contains(&format!("a=rid:{rid} send")), "{sdp}");
    }
    assert!(sdp.contains("VP8/90000"), "{sdp}");
    // As Chrome offers it: rids alone; the audio keeps its SSRC.
    let video = &sdp[sdp.find("m=video").unwrap()..];
    assert!(!video.contains("a=ssrc"), "{sdp}");
    assert!(sdp.contains("a=ssrc:"), "{sdp}");
    // As Firefox does, with SSRCs for the three layers and their RTX.
    let mut firefox = VideoOptions::simulcast();
    firefox.rids_only = false;
    let sdp = offered(Some(firefox)).await;
    let video = &sdp[sdp.find("m=video").unwrap()..];
    assert_eq!(video.matches("a=ssrc-group:FID").count(), 3, "{sdp}");

    let single = offered(Some(VideoOptions::single(Layer::H))).await;
    assert_eq!(single.matches("m=video").count(), 1, "{single}");
    assert!(!single.contains("a=simulcast"), "{single}");
    assert!(!offered(None).await.contains("m=video"));
}
