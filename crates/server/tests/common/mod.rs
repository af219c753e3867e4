//! Shared helpers for the integration tests: a real server on loopback, real clients.

#![allow(dead_code)]

use std::time::Duration;

use free4chat::Server;
use free4chat::config::Config;
use free4chat_client::{Client, ClientConfig};

pub const WAIT: Duration = Duration::from_secs(10);

pub fn config() -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        public_ip: vec!["127.0.0.1".parse().unwrap()],
        media_port: 0,
        media_workers: 1,
        ..Config::default()
    }
}

pub async fn server() -> Server {
    init_log();
    Server::start(&config()).await.expect("server starts")
}

pub fn init_log() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

pub async fn join(server: &Server, room: &str, name: &str) -> Client {
    Client::join(ClientConfig::new(server.http_addr(), room, name))
        .await
        .expect("joins")
}

/// Waits until `client` has received at least `n` packets from `from`.
pub async fn hears(client: &Client, from: &Client, n: u64) -> bool {
    let id = from.id;
    client
        .wait_for(WAIT, |s| {
            s.received.get(&id).is_some_and(|r| r.packets >= n)
        })
        .await
}
