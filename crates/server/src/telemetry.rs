//! Traces over OTLP: a span per room from its start to its end, and inside it a span per
//! member's session (joined, negotiation, media connected, first media, left and why), with
//! events for mute, rename, removal and reconnection (`rooms/trace.rs` makes them).
//!
//! The spans are `tracing` spans; when an endpoint is configured, `tracing-opentelemetry`
//! turns those of the rooms into OpenTelemetry spans, batched and posted over OTLP/HTTP by the
//! SDK's own thread. Nothing runs on the media threads: they make no spans, and the room's
//! and member's spans live in the room's task. Off (no endpoint), no layer is installed and
//! the spans only give the log lines their room and member.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{TraceContextExt, TracerProvider};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::registry::LookupSpan;

use crate::config::TracingSettings;

/// The target of the room's and member's spans and events, the only ones exported.
pub const TARGET: &str = "free4chat::trace";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported: only then are the spans' ids worth reading for the log.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The exporter's side, to flush and stop when the server stops.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Sends what is still batched and stops the export thread. Call outside the runtime.
    pub fn shutdown(self) {
        let _ = self.provider.shutdown();
    }
}

fn sampler(s: &TracingSettings) -> Sampler {
    let ratio = s.otel_traces_sampler_arg.unwrap_or(1.0);
    let root = |name: &str| match name {
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatioBased(ratio),
        _ => Sampler::AlwaysOn,
    };
    match s.otel_traces_sampler.strip_prefix("parentbased_") {
        Some(name) => Sampler::ParentBased(Box::new(root(name))),
        None => root(&s.otel_traces_sampler),
    }
}

/// The layer that exports the rooms' spans, if an endpoint is configured. Must be called
/// outside an async runtime (the exporter's HTTP client has its own).
pub fn layer<S>(s: &TracingSettings) -> Result<Option<(impl Layer<S>, Telemetry)>, String>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(base) = &s.otel_exporter_otlp_endpoint else {
        return Ok(None);
    };
    // As the SDK does with OTEL_EXPORTER_OTLP_ENDPOINT: the signal's path under the base.
    let endpoint = format!("{}/v1/traces", base.trim_end_matches('/'));
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    let resource = Resource::builder()
        .with_service_name(s.otel_service_name.clone())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler(s))
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("free4chat");
    // The spans are at info, their steps at debug (see `rooms::trace`).
    let only_rooms = Targets::new().with_target(TARGET, LevelFilter::DEBUG);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_filter(only_rooms);
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Some((layer, Telemetry { provider })))
}

/// Records the span's trace and span ids in its `trace_id` and `span_id` fields, so that the
/// log lines inside it carry them; nothing when traces are off.
pub fn record_ids(span: &tracing::Span) {
    if !enabled() || span.is_none() {
        return;
    }
    let cx = span.context();
    let otel = cx.span();
    let ids = otel.span_context();
    if ids.is_valid() {
        span.record("trace_id", tracing::field::display(ids.trace_id()));
        span.record("span_id", tracing::field::display(ids.span_id()));
    }
}
