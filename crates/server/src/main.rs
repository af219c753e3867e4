use std::process::ExitCode;

use clap::CommandFactory;
use free4chat::Server;
use free4chat::config::Config;
use free4chat::log_limit::{self, LogLimit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> ExitCode {
    free4chat::memory::tune_allocator();
    // clap answers --help and --version, and refuses malformed options, itself.
    let matches = Config::command().get_matches();
    let config = match Config::from_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("free4chat: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_new(&config.general.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let limit = LogLimit::new(config.protection.log_burst, config.protection.log_rate);
    // Traces over OTLP, when configured: built before the runtime, which the exporter's
    // blocking HTTP client must not run inside.
    let (otel, telemetry) = match free4chat::telemetry::layer(&config.tracing) {
        Ok(Some((layer, telemetry))) => (Some(layer), Some(telemetry)),
        Ok(None) => (None, None),
        Err(e) => {
            eprintln!("free4chat: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter.and(limit)),
        )
        .with(otel)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("free4chat: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        let server = match Server::start(&config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("free4chat: cannot start: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("free4chat listening on {}", server.url());
        tokio::spawn(log_limit::report());
        wait_for_signal().await;
        server.shutdown().await;
        ExitCode::SUCCESS
    });
    drop(runtime);
    // What was still batched is sent before the process ends.
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    code
}

/// Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
