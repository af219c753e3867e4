//! Webhooks: real receivers on loopback that verify every signature, and dead ones that must
//! cost the rooms nothing.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::*;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

const SECRET: &str = "webhook test secret";

/// A receiver on loopback: checks each request's signature as docs/webhooks.md tells
/// receivers to, answers 500 to the first `fail_first` well-signed requests, and records the
/// events of the others.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    events: Arc<Mutex<Vec<Value>>>,
    requests: Arc<AtomicU32>,
    bad_signatures: Arc<AtomicU32>,
    fail_first: Arc<AtomicU32>,
}

impl Receiver {
    async fn start(fail_first: u32) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            addr: listener.local_addr().unwrap(),
            events: Arc::default(),
            requests: Arc::default(),
            bad_signatures: Arc::default(),
            fail_first: Arc::new(AtomicU32::new(fail_first)),
        };
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    async fn wait_for_events(&self, n: usize) -> Vec<Value> {
        let enough = || async { self.events.lock().unwrap().len() >= n };
        assert!(wait_until(enough).await, "{n} events: {:#?}", self.events());
        self.events()
    }
}

/// Whether `header` (`t=<unix>,v1=<hex>`) signs `body` with [`SECRET`], made in the last
/// five minutes.
fn verify(header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<u64>().ok(),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now.abs_diff(t) > 300 || v1.len() != 64 {
        return false;
    }
    let Ok(signature) = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&v1[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.requests.fetch_add(1, Ordering::SeqCst);
    let header = headers
        .get("x-free4chat-signature")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let mut tampered = body.to_vec();
    tampered.push(b' ');
    if !verify(header, &body) || verify(header, &tampered) {
        r.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::BAD_REQUEST;
    }
    if r.fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let event: Value = serde_json::from_slice(&body).expect("the body is JSON");
    assert_eq!(
        headers.get("x-free4chat-event").unwrap(),
        event["event"].as_str().unwrap()
    );
    assert_eq!(
        headers.get("x-free4chat-event-id").unwrap(),
        event["id"].as_str().unwrap()
    );
    assert_eq!(headers.get("content-type").unwrap(), "application/json");
    r.events.lock().unwrap().push(event);
    StatusCode::NO_CONTENT
}

fn config_for(urls: &[String]) -> free4chat::config::Config {
    config_with(|c| {
        c.webhooks.webhook = urls.to_vec();
        c.webhooks.webhook_secret = Some(SECRET.into());
    })
}

/// The webhook figures of `/api/stats`, one per receiver.
async fn webhook_stats(server: &free4chat::Server) -> Vec<Value> {
    let (_, body) = http_get(server, "/api/stats").await;
    let stats: Value = serde_json::from_str(&body).unwrap();
    stats["webhooks"]
        .as_array()
        .expect("a list of receivers")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_s_life_reaches_the_receiver_signed_in_order_with_its_members() {
    let receiver = Receiver::start(0).await;
    let server = server_with(config_for(&[receiver.url()])).await;
    let ann = join(&server, "hooked", "Ann").await;
    let ben = join(&server, "hooked", "Ben").await;
    assert!(hears(&ann, &ben, 10).await && hears(&ben, &ann, 10).await);
    let (ann_id, ben_id) = (ann.id.0, ben.id.0);
    ann.leave().await;
    ben.leave().await;

    let events = receiver.wait_for_events(6).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "room_started",
            "member_joined",
            "member_joined",
            "member_left",
            "member_left",
            "room_finished"
        ]
    );
    let member = |e: &Value| (e["member_id"].as_u64().unwrap(), e["member_name"].clone());
    assert_eq!(member(&events[1]), (ann_id, "Ann".into()));
    assert_eq!(member(&events[2]), (ben_id, "Ben".into()));
    assert_eq!(member(&events[3]), (ann_id, "Ann".into()));
    assert_eq!(member(&events[4]), (ben_id, "Ben".into()));
    let room_id = events[0]["room_id"].as_u64().unwrap();
    for e in &events {
        assert_eq!(e["room"], "hooked");
        assert_eq!(e["room_id"].as_u64(), Some(room_id));
        // No node outside cluster mode.
        assert!(e.get("node").is_none(), "{e}");
        assert!(e["id"].as_str().unwrap().starts_with("evt_"));
    }
    for e in [&events[0], &events[5]] {
        assert!(e.get("member_id").is_none() && e.get("member_name").is_none());
    }
    let mut ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "every event has its own id");
    let times: Vec<u64> = events
        .iter()
        .map(|e| e["timestamp_ms"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);
    assert_eq!(receiver.requests.load(Ordering::SeqCst), 6);

    let stats = webhook_stats(&server).await;
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0]["receiver"], format!("http://{}", receiver.addr));
    assert_eq!(stats[0]["delivered"], 6);
    assert_eq!(stats[0]["retries"], 0);
    assert_eq!(stats[0]["dropped_queue_full"], 0);
    assert_eq!(stats[0]["dropped_failed"], 0);
    let (_, metrics) = http_get(&server, "/metrics").await;
    assert!(
        metrics.contains("free4chat_webhook_events_total{outcome=\"delivered\"} 6\n"),
        "{metrics}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_receiver_fails_is_delivered_when_it_recovers_signed_with_the_secret_file() {
    // The room's first event fails twice; the retries then deliver it, and the next event
    // waits behind it, so the order holds.
    let receiver = Receiver::start(2).await;
    // The secret from a file this time, written as editors write it: with a final newline.
    let dir = std::env::temp_dir().join(format!("free4chat-webhooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let mut config = config_for(&[receiver.url()]);
    config.webhooks.webhook_secret = None;
    config.webhooks.webhook_secret_file = Some(file.clone());
    let server = server_with(config.clone()).await;
    let ann = join(&server, "retried", "Ann").await;

    let events = receiver.wait_for_events(2).await;
    assert_eq!(events[0]["event"], "room_started");
    assert_eq!(events[1]["event"], "member_joined");
    assert_eq!(events[1]["member_id"].as_u64(), Some(ann.id.0));
    assert_eq!(receiver.requests.load(Ordering::SeqCst), 4);
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);
    let stats = webhook_stats(&server).await;
    assert_eq!(stats[0]["retries"], 2);
    assert_eq!(stats[0]["delivered"], 2);
    assert_eq!(stats[0]["dropped_failed"], 0);
    ann.leave().await;
    server.shutdown().await;

    // An empty secret file is no secret: the server does not start.
    std::fs::write(&file, "\n").unwrap();
    let refused = free4chat::Server::start(&config).await;
    assert!(refused.is_err_and(|e| e.to_string().contains("webhook_secret_file")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_receivers_cost_the_room_nothing_and_their_drops_are_counted() {
    // Nothing listens on the first port: every attempt is refused. The second accepts
    // connections and never answers: every attempt waits for its timeout.
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            // Bounded by the test: a few connections at most.
            held.push(stream);
        }
    });
    let live = Receiver::start(0).await;
    let urls = [
        format!("http://{refused}/hook"),
        format!("http://{silent_addr}/hook"),
        live.url(),
    ];
    let mut config = config_for(&urls);
    // One event waits for each receiver while another is being tried.
    config.webhooks.webhook_queue = 1;
    config.webhooks.webhook_timeout = std::time::Duration::from_secs(2);
    let server = server_with(config).await;

    let ann = join(&server, "unhurried", "Ann").await;
    let ben = join(&server, "unhurried", "Ben").await;
    let cy = join(&server, "unhurried", "Cy").await;
    assert!(hears(&ann, &ben, 10).await && hears(&ben, &ann, 10).await);
    assert!(hears(&cy, &ann, 10).await && hears(&ann, &cy, 10).await);

    // Four events so far. Each dead receiver holds one in delivery (failing, then waiting to
    // try again) and one in its queue of one; the others found the queue full.
    let stats = webhook_stats(&server).await;
    for dead in &stats[..2] {
        assert!(dead["dropped_queue_full"].as_u64().unwrap() >= 1, "{dead}");
        assert_eq!(dead["delivered"], 0, "{dead}");
    }
    // The live receiver has its own queue: the room's first event reached it.
    let events = live.wait_for_events(1).await;
    assert_eq!(events[0]["event"], "room_started");
    assert_eq!(live.bad_signatures.load(Ordering::SeqCst), 0);
    let (_, metrics) = http_get(&server, "/metrics").await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("free4chat_webhook_events_total{outcome=\"dropped_queue_full\"}"))
        .expect("the drops are in the metrics");
    let dropped: f64 = line.rsplit_once(' ').unwrap().1.parse().unwrap();
    assert!(dropped >= 2.0, "{line}");

    for c in [ann, ben, cy] {
        c.leave().await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_each_event_names_the_node_its_room_runs_on() {
    let redis = common::redis::Redis::start();
    let receiver = Receiver::start(0).await;
    let mut config = config_for(&[receiver.url()]);
    config.cluster.redis = Some(redis.url());
    config.cluster.drain_timeout = std::time::Duration::from_secs(5);
    let server = server_with(config).await;
    let (_, health) = http_get(&server, "/api/health").await;
    let health: Value = serde_json::from_str(&health).unwrap();
    let node = health["node"].as_str().expect("a cluster node has an id");

    let ann = join(&server, "clustered", "Ann").await;
    ann.leave().await;
    let events = receiver.wait_for_events(4).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "room_started",
            "member_joined",
            "member_left",
            "room_finished"
        ]
    );
    for e in &events {
        assert_eq!(e["node"], node, "{e}");
    }
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);
    server.shutdown().await;
}
