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
