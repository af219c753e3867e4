//! Video in cluster mode, against a real Redis of the test's own: a viewer who reached another
//! node than the room's is sent the camera (media goes straight to the room's node), and its
//! tile sizes, relayed to the room over the bus, choose its layer and pause the layers nobody
//! watches at the publisher.

mod common;

use common::redis::{Redis, node};
use common::video::*;
use common::*;
use free4chat_client::{Layer, VideoOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_viewer_on_another_node_sees_the_camera_and_its_tile_size_chooses_the_layer() {
    let redis = Redis::start();
    let a = node(&redis).await;
    let b = node(&redis).await;
    let ann = camera(&a, "faces", VideoOptions::simulcast()).await;
    let ben = join(&b, "faces", "Ben").await;

    let full = sees(&ben, ann.id, |v| v.current_layer() == Some(Layer::F)).await;
    assert_eq!(full.switches_without_keyframe, 0, "{full:?}");
    let track = camera_track(&ben, ann.id);

    // Ben's small tile reaches the room through the relay: the lowest layer for him, and Ann,
    // on the room's node, is told that nobody watches the others.
    show(&ben, ann.id, &track, 320, 180).await;
    let low = sees(&ben, ann.id, |v| {
        v.current_layer() == Some(Layer::Q) && v.frames_of(Layer::Q) >= 15
    })
    .await;
    assert_eq!(low.switches_without_keyframe, 0, "{low:?}");
    assert!(
        told_layers(&ann, &track, |active| active == ["q"]).await,
        "Ann told to send q alone"
    );
    a.shutdown().await;
    b.shutdown().await;
}
