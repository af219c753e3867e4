//! Members' connection quality from RTCP: the loss, jitter and round-trip time str0m reports
//! of each session reach the admin API's member listing, the `/metrics` histograms, and the
//! room's members as a `quality` level.

mod common;

use std::time::Duration;

use common::*;
use free4chat_client::{Client, ClientConfig};
use free4chat_signal::{MemberQuality, Quality};
use serde_json::Value;

const TOKEN: &str = "a-token-of-some-length";

async fn admin_rooms(server: &free4chat::Server) -> Value {
    let url = format!("http://{}/admin/api/rooms", server.admin_addr().unwrap());
    let resp = reqwest::Client::new()
        .get(url)
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    serde_json::from_str(&resp.text().await.unwrap()).unwrap()
}

/// The `connection` of member `id` in the admin listing.
fn connection(rooms: &Value, id: u64) -> Value {
    rooms["rooms"][0]["members"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["id"] == id)
        .map(|m| m["connection"].clone())
        .unwrap_or(Value::Null)
}

/// The value of the sample `series` in a scrape (0 if absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_losing_a_fifth_of_their_packets_is_reported_lossy_and_poor_and_the_others_clean()
{
    let server = server_with(config_with(|c| {
        c.admin.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        c.admin.admin_token = Some(TOKEN.into());
    }))
    .await;
    let ann = join(&server, "lobby", "Ann").await;
    // Ben's uplink loses every fifth RTP datagram on the way to the server.
    let mut lossy = ClientConfig::new(server.http_addr(), "lobby", "Ben");
    lossy.drop_every_nth_rtp = Some(5);
    let ben = Client::join(lossy).await.expect("joins");
    assert!(hears(&ann, &ben, 20).await && hears(&ben, &ann, 20).await);

    // The server's receiver reports count Ben's losses; Ann's stream arrives whole. Round
    // trips come from the members' receiver reports on what the server sends them.
    let (a, b) = (ann.id.0, ben.id.0);
    let reported = wait_until(|| {
        let server = &server;
        async move {
            let rooms = admin_rooms(server).await;
            let (ca, cb) = (connection(&rooms, a), connection(&rooms, b));
            ca["loss_in"].as_f64().is_some()
                && cb["loss_in"].as_f64().is_some_and(|l| l >= 0.1)
                && ca["rtt"].as_f64().is_some()
                && cb["rtt"].as_f64().is_some()
        }
    })
    .await;
    let rooms = admin_rooms(&server).await;
    assert!(reported, "loss and round trips reported: {rooms:#}");
    let (ca, cb) = (connection(&rooms, a), connection(&rooms, b));
    assert!(ca["loss_in"].as_f64().unwrap() < 0.05, "{ca}");
    let lost = cb["loss_in"].as_f64().unwrap();
    assert!((0.1..0.35).contains(&lost), "about a fifth lost: {cb}");
    for c in [&ca, &cb] {
        assert_eq!(c["connected"], true, "{c}");
        assert_eq!(c["path"], "udp", "{c}");
        assert!(c["bitrate_in"].as_u64().unwrap() > 0, "{c}");
        assert!(c["bitrate_out"].as_u64().unwrap() > 0, "{c}");
        let rtt = c["rtt"].as_f64().unwrap();
        assert!(
            (0.0..1000.0).contains(&rtt),
            "a loopback round trip, in ms: {c}"
        );
        assert!(c["jitter"].as_f64().is_some(), "{c}");
    }
    assert_eq!(cb["quality"], "poor", "{cb}");

    // The room tells its members: Ben's connection is poor.
    let ben_poor = |s: &free4chat_client::ClientState| {
        s.messages.iter().any(|m| {
            matches!(m, ServerMsg::Quality { members } if members.contains(&MemberQuality {
                id: ben.id,
                quality: Quality::Poor,
            }))
        })
    };
    assert!(
        ann.wait_for(WAIT, ben_poor).await,
        "Ann is told Ben's connection is poor"
    );

    // The histograms count both members, Ben's loss above 10 %, Ann's below 1 %.
    let (_, text) = http_get(&server, "/metrics").await;
    let loss = "free4chat_member_loss_ratio";
    assert_eq!(
        sample(&text, &format!("{loss}_count{{direction=\"in\"}}")),
        2.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("{loss}_bucket{{direction=\"in\",le=\"0.01\"}}")
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            &format!("{loss}_bucket{{direction=\"in\",le=\"0.1\"}}")
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "free4chat_member_rtt_seconds_count"),
        2.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "free4chat_member_jitter_seconds_count"),
        2.0,
        "{text}"
    );
    drop(ben);
    drop(ann);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_media_never_connects_is_shown_unconnected_to_the_others() {
    let server = server().await;
    let ann = join(&server, "lobby", "Ann").await;
    // Cid joins over signalling only: no offer, so no media ever connects.
    let mut cid = ws(&server).await;
    let ServerMsg::Joined { id: cid_id, .. } = ws_join(&mut cid, "lobby", "Cid").await else {
        panic!("joined");
    };
    let unconnected = |s: &free4chat_client::ClientState| {
        s.messages.iter().any(|m| {
            matches!(m, ServerMsg::Quality { members } if members.contains(&MemberQuality {
                id: cid_id,
                quality: Quality::Unconnected,
            }))
        })
    };
    assert!(
        ann.wait_for(Duration::from_secs(15), unconnected).await,
        "Ann is told Cid's media never connected"
    );
    drop(ann);
    server.shutdown().await;
}
