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
    // The bounds per address refused nobody, and count the connections open.
    assert!(get(&m, "free4chat_http_connections") >= 3.0);
    assert_eq!(get(&m, "free4chat_refusals_total{cause=\"origin\"}"), 0.0);
    assert_eq!(
        get(&m, "free4chat_media_deadline_dropped_members_total"),
        0.0
    );

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

/// A scrape read by the Prometheus project's own parser (Python's `prometheus_client`, the
/// Debian package `python3-prometheus-client`, which `scripts/test` installs): every sample by
/// series, as `name{label="value",…}` with the labels sorted.
fn parsed_by_prometheus(text: &str) -> HashMap<String, f64> {
    use std::io::Write;
    const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out[s.name + ("{" + labels + "}" if labels else "")] = s.value
print(json.dumps(out))
"#;
    // Debian's Python, where the package installs the parser.
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the scrape (is python3-prometheus-client installed?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_own_parser_reads_the_scrape_during_a_call_and_after_it() {
    let server = server().await;
    let ann = join(&server, "parsed", "Ann").await;
    let ben = join(&server, "parsed", "Ben").await;
    assert!(hears(&ann, &ben, 20).await && hears(&ben, &ann, 20).await);
    let (_, text) = http_get(&server, "/metrics").await;
    let during = parsed_by_prometheus(&text);
    assert_eq!(during["free4chat_members"], 2.0);
    assert_eq!(during["free4chat_rooms"], 1.0);
    assert_eq!(
        during["free4chat_websocket_messages_total{type=\"join\"}"],
        2.0
    );
    assert!(during["free4chat_media_forwarded_packets_total"] >= 40.0);
    assert_eq!(during["free4chat_room_members_bucket{le=\"2\"}"], 1.0);
    assert!(during["process_resident_memory_bytes"] > 0.0);
    ann.leave().await;
    ben.leave().await;
    let empty = || async {
        let (_, text) = http_get(&server, "/metrics").await;
        parsed_by_prometheus(&text)["free4chat_members"] == 0.0
    };
    assert!(wait_until(empty).await, "members 0 after the call");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_the_grafana_dashboard_asks_for_is_one_the_server_writes() {
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/grafana/free4chat.json")).unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(exprs.len() >= 10);
    // A server with the integrated TURN server, as the dashboard shows it, and a call.
    let server = server_with(config_with(|c| {
        c.turn.turn_udp = Some("127.0.0.1:0".parse().unwrap());
    }))
    .await;
    let ann = join(&server, "dashboard", "Ann").await;
    let ben = join(&server, "dashboard", "Ben").await;
    assert!(hears(&ann, &ben, 5).await);
    let (_, text) = http_get(&server, "/metrics").await;
    let written: std::collections::HashSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    // A family with no series yet (no error sent so far) is declared all the same.
    let declared: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    for expr in &exprs {
        let names = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("free4chat_") || w.starts_with("process_"));
        for name in names {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .fold(name, |n, suffix| n.strip_suffix(suffix).unwrap_or(n));
            assert!(
                written.contains(name) || declared.contains(name) || declared.contains(base),
                "{name} (in {expr}) is not written"
            );
        }
    }
    server.shutdown().await;
}
