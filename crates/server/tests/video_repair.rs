//! Video packets lost on a link are asked for again (NACK) and resent (RTX), both on the way
//! from a publisher to the server and on the way from the server to a viewer: a lossy relay
//! drops a share of each datagram way, and the viewer's frames must still arrive whole.

mod common;

use common::video::*;
use common::*;
use free4chat_client::relay::{RelayConfig, WayStats};
use free4chat_client::{Client, ClientConfig, Layer, VideoLog, VideoOptions};

/// The share of RTP and RTCP datagrams the relay drops: far more than a decent link loses, so
/// that a few hundred frames meet a few dozen losses.
const LOSS: f64 = 0.05;

/// Frames the viewer waits for: ten seconds of a 30 fps layer, about 600 packets.
const FRAMES: u64 = 300;

/// What the run showed, for the assertions' messages.
fn report(way: &WayStats, log: &VideoLog) -> String {
    format!(
        "relay dropped {} of {} datagrams; the viewer saw {} frames, {} packets lost in {} \
         gaps, {} decode breaks",
        way.loss_drops,
        way.datagrams,
        log.frames,
        log.lost_packets,
        log.seq_gaps,
        log.decode_breaks
    )
}

/// Of what the relay dropped, the viewer must have been missing almost none: a resend is
/// dropped too one time in twenty, and one asked for again after the frame was given up would
/// still count. Without resending, every video packet dropped is a lost packet (about 90 % of
/// the drops: the rest are audio and reports).
fn assert_repaired(way: &WayStats, log: &VideoLog) {
    let text = report(way, log);
    assert!(way.loss_drops >= 10, "too little loss to tell: {text}");
    assert!(
        log.lost_packets * 5 <= way.loss_drops,
        "lost video was not resent: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_lost_on_the_way_to_a_viewer_is_resent_and_its_frames_arrive_whole() {
    let server = server().await;
    let alice = camera(&server, "lossy-down", VideoOptions::single(Layer::H)).await;
    let config = RelayConfig {
        down_loss: LOSS,
        ..RelayConfig::default()
    };
    let relay = relay(&server, config).await;
    let mut config = ClientConfig::new(server.http_addr(), "lossy-down", "Bob");
    config.media_via = Some(relay.addr());
    let bob = Client::join(config).await.expect("joins");

    let log = sees(&bob, alice.id, |v| v.frames >= FRAMES).await;
    let down = relay.stats().down;
    eprintln!("{}", report(&down, &log));
    assert_repaired(&down, &log);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_lost_on_the_way_from_the_publisher_is_asked_for_again_and_reaches_a_viewer_whole() {
    let server = server().await;
    let config = RelayConfig {
        up_loss: LOSS,
        ..RelayConfig::default()
    };
    let relay = relay(&server, config).await;
    let alice = camera_with(&server, "lossy-up", VideoOptions::single(Layer::H), |c| {
        c.media_via = Some(relay.addr())
    })
    .await;
    let bob = Client::join(ClientConfig::new(server.http_addr(), "lossy-up", "Bob"))
        .await
        .expect("joins");

    let log = sees(&bob, alice.id, |v| v.frames >= FRAMES).await;
    let up = relay.stats().up;
    eprintln!("{}", report(&up, &log));
    assert_repaired(&up, &log);
    server.shutdown().await;
}
