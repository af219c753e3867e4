//! Janus's URLs and replies, checked without a Janus.

use super::*;

#[test]
fn urls_are_completed() {
    assert_eq!(
        Janus::new("10.0.0.1:8088").url,
        "http://10.0.0.1:8088/janus"
    );
    assert_eq!(
        Janus::new("http://10.0.0.1:8088/janus/").url,
        "http://10.0.0.1:8088/janus"
    );
    assert_eq!(Janus::new("http://h:1/x").url, "http://h:1/x");
}

#[test]
fn replies_are_checked_not_trusted() {
    let err = check_reply(json!({"janus": "error", "error": {"code": 458, "reason": "gone"}}));
    assert_eq!(err.map_err(|e| e.code).err(), Some(Some(458)));
    assert!(check_reply(json!({"janus": "error"})).is_err());
    assert!(plugin_data(&json!({"janus": "event"})).is_err());
    let exists = json!({"plugindata": {"data": {"error_code": 427, "error": "exists"}}});
    assert_eq!(
        plugin_data(&exists).map_err(|e| e.code).err(),
        Some(Some(427))
    );
    assert_eq!(
        publisher_ids(&json!({"publishers": [{"id": 3}, {"id": "x"}, {}]})),
        vec![3]
    );
    assert!(publisher_ids(&json!({"publishers": 5})).is_empty());
    assert!(sdp_of(&json!({"type": "offer"}), "offer").is_err());
    assert!(sdp_of(&json!({"type": "answer", "sdp": "v=0"}), "offer").is_err());
    assert_eq!(
        sdp_of(&json!({"type": "offer", "sdp": "v=0"}), "offer").ok(),
        Some("v=0")
    );
}

#[test]
fn a_subscription_asks_for_the_tiles_layer_on_every_feed() {
    use super::subscription::stream_request;
    assert_eq!(stream_request(7, None), json!({"feed": 7}));
    assert_eq!(
        stream_request(7, Some(1)),
        json!({"feed": 7, "substream": 1})
    );
    let tile: Tile = "320x180".parse().unwrap();
    let janus = Janus::new("h:1").with_video(None, Some(tile));
    assert_eq!(janus.substream, Some(0));
}
