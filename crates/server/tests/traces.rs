//! Traces over OTLP: the binary, pointed at a small OTLP/HTTP receiver on loopback, exports a
//! span for the room and, inside it, one per member's session with its steps; its log lines
//! carry the trace's id.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use free4chat_client::{Client, ClientConfig};
use free4chat_signal::ClientMsg;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use common::exit_status;

const BIN: &str = env!("CARGO_BIN_EXE_free4chat");

type Received = Arc<Mutex<Vec<Span>>>;

/// An OTLP/HTTP receiver: every span posted to /v1/traces, decoded with the official
/// definitions.
async fn receiver() -> (String, Received) {
    let spans: Received = Arc::default();
    async fn traces(State(spans): State<Received>, body: Bytes) -> Vec<u8> {
        let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace request");
        let mut all = spans.lock().unwrap();
        for resource in request.resource_spans {
            for scope in resource.scope_spans {
                all.extend(scope.spans);
            }
        }
        ExportTraceServiceResponse::default().encode_to_vec()
    }
    let app = axum::Router::new()
        .route("/v1/traces", post(traces))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), spans)
}

fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.clone()?;
    Some(match value.value? {
        any_value::Value::StringValue(s) => s,
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

fn events(span: &Span) -> Vec<String> {
    span.events.iter().map(|e| e.name.clone()).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_and_its_members_sessions_are_exported_as_nested_spans_with_their_steps() {
    let (endpoint, spans) = receiver().await;
    let log = std::env::temp_dir().join(format!("f4c-traces-{}.log", std::process::id()));
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--media-port",
            "0",
            "--public-ip",
            "127.0.0.1",
        ])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_SERVICE_NAME", "free4chat-under-test")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .rsplit("http://")
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let ann = Client::join(ClientConfig::new(addr, "traced", "Ann"))
        .await
        .unwrap();
    let ben = Client::join(ClientConfig::new(addr, "traced", "Ben"))
        .await
        .unwrap();
    let (ann_id, ben_id) = (ann.id.0, ben.id.0);
    let heard = |from: u64| {
        move |s: &free4chat_client::ClientState| {
            s.received.get(&from).is_some_and(|r| r.packets >= 10)
        }
    };
    assert!(ann.wait_for(Duration::from_secs(10), heard(ben_id)).await);
    assert!(ben.wait_for(Duration::from_secs(10), heard(ann_id)).await);
    ann.send(ClientMsg::Mute { muted: true }).await;
    ann.send(ClientMsg::Rename {
        name: "Annie".into(),
    })
    .await;
    ben.leave().await;
    ann.leave().await;
    // The room ends with its last member; then the server stops, sending what is batched.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let exited = exit_status(child).await;
    assert!(exited.is_some_and(|s| s.success()), "{exited:?}");

    let spans = spans.lock().unwrap().clone();
    let room = spans.iter().find(|s| s.name == "room").unwrap_or_else(|| {
        panic!(
            "a room span among {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        )
    });
    assert_eq!(attr(&room.attributes, "room").as_deref(), Some("traced"));
    assert!(room.parent_span_id.is_empty(), "the room's span is a root");
    assert!(room.end_time_unix_nano > room.start_time_unix_nano);
    let member = |id: u64| {
        spans
            .iter()
            .find(|s| s.name == "member" && attr(&s.attributes, "member") == Some(id.to_string()))
            .unwrap_or_else(|| panic!("a span for member {id}"))
    };
    let (a, b) = (member(ann_id), member(ben_id));
    for m in [a, b] {
        assert_eq!(
            m.parent_span_id, room.span_id,
            "a member's span is inside the room's"
        );
        assert_eq!(m.trace_id, room.trace_id);
        assert!(m.start_time_unix_nano >= room.start_time_unix_nano);
        assert!(m.end_time_unix_nano <= room.end_time_unix_nano);
    }
    let steps = events(a);
    for step in [
        "joined",
        "negotiation: client offer",
        "negotiation: server answer",
        "ice and dtls connected",
        "first media",
        "mute",
        "rename",
        "left",
    ] {
        assert!(
            steps.iter().any(|s| s == step),
            "Ann's span lacks {step:?}: {steps:?}"
        );
    }
    let left = a.events.iter().find(|e| e.name == "left").unwrap();
    assert_eq!(attr(&left.attributes, "reason").as_deref(), Some("left"));
    let renamed = a.events.iter().find(|e| e.name == "rename").unwrap();
    assert_eq!(attr(&renamed.attributes, "value").as_deref(), Some("Annie"));
    assert!(events(b).iter().any(|s| s == "left"));

    // The log's lines in the room carry the trace's id.
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let trace_id = hex(&room.trace_id);
    assert!(
        text.lines()
            .any(|l| l.contains("member joined") && l.contains(&trace_id)),
        "no log line of the room with trace id {trace_id}:\n{text}"
    );
}
