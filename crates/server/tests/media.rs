//! Media end to end through the real server, with str0m clients over loopback UDP.

mod common;

use std::time::Duration;

use common::*;
use free4chat_signal::ServerMsg;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_is_forwarded_both_ways() {
    let server = server().await;
    let alice = join(&server, "practice", "Alice").await;
    let bob = join(&server, "practice", "Bob").await;
    assert!(hears(&bob, &alice, 25).await, "Bob hears Alice");
    assert!(hears(&alice, &bob, 25).await, "Alice hears Bob");
    // Nobody hears themselves.
    assert_eq!(alice.received_from(alice.id), 0);
    assert_eq!(bob.received_from(bob.id), 0);
    server.shutdown().await;
}
