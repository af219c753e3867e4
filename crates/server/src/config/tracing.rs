//! Traces over OTLP (`docs/operations.md`): where to send them, under which service name, and
//! how many to keep. The options and variables are OpenTelemetry's own (the SDK's standard
//! environment variables), so a deployment set up for other services needs nothing new. A
//! section of its own beside those of `sections.rs`, gathered into [`Config`] the same way.
//!
//! [`Config`]: super::Config

use clap::Args;
use serde::{Deserialize, Serialize};

/// OpenTelemetry traces: off unless an endpoint is set.
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct TracingSettings {
    /// Where to send traces over OTLP, e.g. http://127.0.0.1:4318 (the collector's base: the
    /// server posts to /v1/traces under it). Tracing is off when unset.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        value_name = "URL",
        help_heading = "Tracing"
    )]
    pub otel_exporter_otlp_endpoint: Option<String>,

    /// The OTLP transport: http/protobuf (the one this server speaks).
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        value_name = "PROTOCOL",
        default_value = "http/protobuf",
        help_heading = "Tracing"
    )]
    pub otel_exporter_otlp_protocol: String,

    /// The service name the traces carry.
    #[arg(
        long,
        env = "OTEL_SERVICE_NAME",
        value_name = "NAME",
        default_value = "free4chat",
        help_heading = "Tracing"
    )]
    pub otel_service_name: String,

    /// Which traces to keep: always_on, always_off, traceidratio, or parentbased_ before
    /// any of them.
    #[arg(
        long,
        env = "OTEL_TRACES_SAMPLER",
        value_name = "SAMPLER",
        default_value = "parentbased_always_on",
        help_heading = "Tracing"
    )]
    pub otel_traces_sampler: String,

    /// The sampler's argument: for traceidratio, the fraction of traces kept (0 to 1).
    #[arg(
        long,
        env = "OTEL_TRACES_SAMPLER_ARG",
        value_name = "ARG",
        help_heading = "Tracing"
    )]
    pub otel_traces_sampler_arg: Option<f64>,
}

impl Default for TracingSettings {
    fn default() -> TracingSettings {
        super::declared_defaults()
    }
}

/// The samplers `otel_traces_sampler` may name.
pub const SAMPLERS: [&str; 6] = [
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
];

impl TracingSettings {
    /// Refuses what the exporter could not do.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.otel_exporter_otlp_protocol != "http/protobuf" {
            return Err("otel_exporter_otlp_protocol: only http/protobuf is supported");
        }
        if !SAMPLERS.contains(&self.otel_traces_sampler.as_str()) {
            return Err(
                "otel_traces_sampler: one of always_on, always_off, traceidratio, \
                 parentbased_always_on, parentbased_always_off, parentbased_traceidratio",
            );
        }
        if self
            .otel_traces_sampler_arg
            .is_some_and(|r| !(0.0..=1.0).contains(&r))
        {
            return Err("otel_traces_sampler_arg: a fraction from 0 to 1");
        }
        if let Some(url) = &self.otel_exporter_otlp_endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err("otel_exporter_otlp_endpoint: an http:// or https:// URL");
        }
        Ok(())
    }
}
