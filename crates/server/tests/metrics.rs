//! `GET /metrics`: the Prometheus text format, with figures that follow what happened.

mod common;

use std::collections::HashMap;

use common::*;
use free4chat_signal::ClientMsg;

/// The samples of a scrape by series (name and labels, as written), checking that every line
/// is a comment or a sample with a number.
fn samples(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("a sample is `series value`");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("not a number: {line}")),
        };
        assert!(
            out.insert(series.to_owned(), value).is_none(),
            "{series} twice"
        );
    }
    out
}

async fn scrape(server: &free4chat::Server) -> HashMap<String, f64> {
    let (head, body) = http_get(server, "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    samples(&body)
}

fn get(m: &HashMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("no {series} in {:#?}", m.keys().collect::<Vec<_>>()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_members_their_media_and_their_messages_and_follow_them_out() {
    let server = server().await;
    let idle = scrape(&server).await;
    assert_eq!(get(&idle, "free4chat_rooms"), 0.0);
    assert_eq!(get(&idle, "free4chat_media_forwarded_packets_total"), 0.0);
    assert!(get(&idle, "process_resident_memory_bytes") > 0.0);
    assert!(get(&idle, "process_open_fds") > 0.0);

    let ann = join(&server, "metered", "Ann").await;
    let ben = join(&server, "metered", "Ben").await;
    assert!(hears(&ann, &ben, 20).await && hears(&ben, &ann, 20).await);
    // A message that is not one, on a connection of its own.
    let mut bad = ws(&server).await;
    send_text(&mut bad, "{\"type\":\"dance\"}").await;
    expect_error(&mut bad, ErrorCode::BadMessage).await;

    let m = scrape(&server).await;
    assert_eq!(get(&m, "free4chat_rooms"), 1.0);
    assert_eq!(get(&m, "free4chat_members"), 2.0);
    assert_eq!(get(&m, "free4chat_media_sessions"), 2.0);
    assert_eq!(get(&m, "free4chat_websocket_connections"), 3.0);
    // One room of two: in the first bucket.
    assert_eq!(get(&m, "free4chat_room_members_bucket{le=\"2\"}"), 1.0);
    assert_eq!(get(&m, "free4chat_room_members_count"), 1.0);
    assert_eq!(get(&m, "free4chat_room_members_sum"), 2.0);
    assert_eq!(get(&m, "free4chat_joins_total"), 2.0);
    assert_eq!(get(&m, "free4chat_join_seconds_count"), 2.0);
    assert_eq!(
        get(&m, "free4chat_websocket_messages_total{type=\"join\"}"),
        2.0
    );
    assert!(get(&m, "free4chat_websocket_messages_total{type=\"offer\"}") >= 2.0);
    assert_eq!(
        get(&m, "free4chat_websocket_messages_total{type=\"invalid\"}"),
        1.0
    );
    assert_eq!(
        get(&m, "free4chat_websocket_errors_total{code=\"bad_message\"}"),
        1.0
    );
    // What they heard of each other went through the server.
    let heard = (count(&ann, &ben) + count(&ben, &ann)) as f64;
    assert!(get(&m, "free4chat_media_forwarded_packets_total") >= heard);
    let datagrams_in = get(&m, "free4chat_media_datagrams_total{direction=\"in\"}");
    let datagrams_out = get(&m, "free4chat_media_datagrams_total{direction=\"out\"}");
    assert!(datagrams_in >= heard && datagrams_out >= heard);
    assert!(get(&m, "free4chat_media_bytes_total{direction=\"out\"}") >= 80.0 * heard);
    // Every datagram that arrived is in the residence histogram, and its buckets add up.
    let residence = get(&m, "free4chat_media_residence_seconds_count");
    assert!(residence >= heard);
    assert_eq!(
        get(&m, "free4chat_media_residence_seconds_bucket{le=\"+Inf\"}"),
        residence
    );
    assert!(get(&m, "free4chat_media_residence_seconds_sum") > 0.0);
    assert_eq!(
        get(
            &m,
            "free4chat_media_dropped_datagrams_total{cause=\"garbage\"}"
        ),
        0.0
    );
    assert!(get(&m, "process_cpu_seconds_total") > 0.0);

    ann.send(ClientMsg::Leave).await;
    ben.leave().await;
    let gone = || async {
        let m = scrape(&server).await;
        get(&m, "free4chat_members") == 0.0 && get(&m, "free4chat_leaves_total") == 2.0
    };
    assert!(wait_until(gone).await, "both leaves are counted");
    let m = scrape(&server).await;
    assert_eq!(get(&m, "free4chat_rooms"), 0.0);
    assert_eq!(get(&m, "free4chat_room_members_count"), 0.0);
    server.shutdown().await;
}
