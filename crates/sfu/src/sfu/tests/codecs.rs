//! Cameras in H264, VP9 and AV1: forwarded whole, in the viewer's payload type, switching layers at
//! the first packet of a keyframe with sequence numbers, timestamps (and VP9 picture ids)
//! continuous; and a viewer
//! whose session does not take the publisher's codec is sent none of it.

use std::time::Duration;

use str0m::format::Codec;

use super::frames::FrameSeen;
use super::harness::{Harness, RtpSeen};
use super::simulcast::through_the_layers;
use crate::MediaEvent;

/// The H264, VP9 or AV1 packets viewer `id` received, from the `from`th on.
fn pictures(h: &mut Harness, id: u64, from: usize) -> Vec<(RtpSeen, FrameSeen)> {
    let seen: Vec<(RtpSeen, FrameSeen)> = h
        .client(id)
        .rtp
        .iter()
        .filter_map(|p| Some((*p, p.frame?)))
        .collect();
    seen.get(from..).unwrap_or_default().to_vec()
}

/// The payload type viewer `id`'s session gives `codec`.
fn pt_of(h: &mut Harness, id: u64, codec: Codec) -> Vec<u8> {
    h.client(id)
        .rtc
        .codec_config()
        .iter()
        .filter(|p| p.spec().codec == codec)
        .map(|p| *p.pt())
        .collect()
}

/// Member 1 publishes in `codec`, member 2 views; the viewer goes through every layer. Each
/// picture of a layer arrives whole, each change of layer at a keyframe's first packet, on one
/// SSRC with sequence numbers one after another and time moving on (and VP9 picture ids
/// one after another).
fn whole_pictures_across_switches(codec: Codec) {
    let mut h = Harness::new();
    h.join_simulcast_in(1, 1, codec);
    h.join_rtp_listener(1, 2);
    h.run(Duration::from_secs(1));
    let from = pictures(&mut h, 2, 0).len();
    assert!(from > 40, "the full layer flows: {from}");
    through_the_layers(&mut h);
    let all = pictures(&mut h, 2, 0);
    // The stream starts at a keyframe's first packet, too.
    assert!(all[0].1.keyframe && all[0].1.part == 0, "{:?}", all[0]);
    let got = &all[from..];
    let mut visited: Vec<u8> = got.iter().map(|(_, f)| f.layer).collect();
    visited.dedup();
    assert_eq!(visited, [2, 0, 1, 2, 0], "every switch happened");
    let pts = pt_of(&mut h, 2, codec);
    assert!(all.iter().all(|(p, _)| p.ssrc == all[0].0.ssrc), "one SSRC");
    assert!(all.iter().all(|(p, _)| pts.contains(&p.pt)), "{pts:?}");
    for pair in all.windows(2) {
        let ((a, fa), (b, fb)) = (pair[0], pair[1]);
        assert_eq!(b.seq, a.seq + 1, "{a:?} {b:?}");
        let same_picture = (fa.layer, fa.frame) == (fb.layer, fb.frame);
        if same_picture {
            assert_eq!(fb.part, fa.part + 1, "{fa:?} {fb:?}");
            assert_eq!(b.timestamp, a.timestamp, "{a:?} {b:?}");
            assert_eq!((fb.picture_id, fb.tl0), (fa.picture_id, fa.tl0));
        } else {
            // VP9's picture numbering goes on one by one, whatever the layer.
            if let (Some(pa), Some(pb)) = (fa.picture_id, fb.picture_id) {
                assert_eq!(pb, (pa + 1) % 0x8000, "{fa:?} {fb:?}");
                assert_eq!(fb.tl0, fa.tl0.map(|t| t.wrapping_add(1)), "{fa:?} {fb:?}");
            }
            // A switch may cut the old layer's picture short: the new layer's keyframe came
            // first (the decoder drops the unfinished picture, whose end never comes).
            if fb.layer == fa.layer {
                assert_eq!(
                    fa.part + 1,
                    fa.parts,
                    "the last picture was whole: {fa:?} {fb:?}"
                );
            }
            assert_eq!(fb.part, 0, "a picture from its start: {fa:?} {fb:?}");
            assert!(
                b.timestamp.wrapping_sub(a.timestamp) as i32 > 0,
                "{a:?} {b:?}"
            );
        }
        if fb.layer != fa.layer {
            assert!(fb.keyframe, "a switch at a keyframe: {fa:?} {fb:?}");
        }
    }
}

#[test]
fn an_h264_camera_arrives_in_whole_pictures_and_switches_at_a_keyframes_parameter_sets() {
    whole_pictures_across_switches(Codec::H264);
}

#[test]
fn a_vp9_camera_arrives_in_whole_pictures_switches_at_a_keyframes_first_packet_and_numbers_pictures_on()
 {
    whole_pictures_across_switches(Codec::Vp9);
}

#[test]
fn an_av1_camera_arrives_in_whole_pictures_and_switches_at_a_new_coded_video_sequence() {
    whole_pictures_across_switches(Codec::Av1);
}

#[test]
fn a_viewer_whose_session_lacks_the_publishers_codec_is_sent_none_of_it() {
    let mut h = Harness::new();
    h.join_simulcast_in(1, 1, Codec::H264);
    h.join_rtp_listener_with(1, 2, &[Codec::Vp8]);
    h.join_rtp_listener(1, 3);
    h.run(Duration::from_secs(2));
    // The track was offered to both; the viewer with H264 sees it.
    assert!(pictures(&mut h, 3, 0).len() > 40);
    let c = h.client(2);
    assert_eq!(c.video_mids.len(), 1, "the track's m-line was negotiated");
    let mid = c.video_mids[0];
    let on_it = c.rtp.iter().filter(|p| p.mid == mid).count();
    assert_eq!(on_it, 0, "nothing in a codec it did not accept");
    let failed = h
        .events
        .iter()
        .any(|e| matches!(e, MediaEvent::Failed { .. } | MediaEvent::Error { .. }));
    assert!(!failed);
}
