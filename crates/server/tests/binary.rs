//! The `free4chat` binary itself: options, health check, clean exit on SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::{ServerMsg, exit_status, next_matching, ws_join};
use free4chat_signal::ByeReason;

const BIN: &str = env!("CARGO_BIN_EXE_free4chat");

#[test]
fn help_documents_every_option() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--config",
        "--listen",
        "--public-ip",
        "--media-port",
        "--media-workers",
        "--max-rooms",
        "--max-room-members",
        "--max-peers",
        "--log",
        "FREE4CHAT_LISTEN",
        "--join-deadline",
        "FREE4CHAT_MEDIA_TCP_IDLE_TIMEOUT",
    ] {
        assert!(help.contains(option), "--help lacks {option}:\n{help}");
    }
    // Each default is shown beside its option.
    for default in [
        "[default: 127.0.0.1:4000]",
        "[default: 30s]",
        "[default: 10m]",
    ] {
        assert!(help.contains(default), "--help lacks {default}:\n{help}");
    }
}

#[test]
fn bad_configuration_is_a_clear_error_not_a_panic() {
    let dir = std::env::temp_dir().join(format!("f4c-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "listen = 12\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && !err.contains("panicked"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_health_and_the_client_then_exits_zero_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("f4c-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("free4chat.toml");
    // Options from a file, one overridden from the environment. The member below reads
    // nothing after the server's bye, so the server's wait for its close is kept short.
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:1\"\nmedia_port = 0\npublic_ip = [\"127.0.0.1\"]\n\
         media_realtime_priority = 0\nclose_linger = \"300ms\"\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .env("FREE4CHAT_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{line}");

    let health = http_get(&addr, "/api/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let json: serde_json::Value =
        serde_json::from_str(health.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["rooms"], 0);
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));

    let page = http_get(&addr, "/room/practice?name=Alice");
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("<html"),
        "{page}"
    );
    assert!(page.to_lowercase().contains("content-security-policy"));
    assert!(http_get(&addr, "/app.js").contains("javascript"));
    assert!(http_get(&addr, "/no-such-file.js").starts_with("HTTP/1.1 404"));
    // An unknown address is answered with the app's page, which says it was not found.
    let missing = http_get(&addr, "/no/such/page");
    assert!(
        missing.starts_with("HTTP/1.1 404") && missing.contains("id=\"not-found\""),
        "{missing}"
    );

    // A member is told the server is going away; the process exits 0.
    let url = format!("ws://{addr}/ws");
    let mut ws = tokio_tungstenite::connect_async(url).await.unwrap().0;
    ws_join(&mut ws, "sig", "Alice").await;
    let health = http_get(&addr, "/api/health");
    assert!(
        health.contains("\"peers\":1") && health.contains("\"rooms\":1"),
        "{health}"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let bye = next_matching(&mut ws, |m| matches!(m, ServerMsg::Bye { .. })).await;
    assert_eq!(
        bye,
        Some(ServerMsg::Bye {
            reason: ByeReason::ServerShutdown
        })
    );
    let status = exit_status(child).await;
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

/// Starts the binary with `GLIBC_TUNABLES` as given, waits until it listens and returns the
/// environment its process runs with.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn environment_of_server(tunables: Option<&str>) -> Vec<String> {
    let mut cmd = Command::new(BIN);
    cmd.args(["--listen", "127.0.0.1:0", "--media-port", "0"])
        .args(["--public-ip", "127.0.0.1", "--log", "warn"])
        .args(["--media-realtime-priority", "0"])
        .env_remove("GLIBC_TUNABLES")
        .env_remove("FREE4CHAT_ALLOCATOR_TUNED")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(t) = tunables {
        cmd.env("GLIBC_TUNABLES", t);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening on"), "{line}");
    let environ = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    environ
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn the_server_runs_without_the_allocators_thread_caches_unless_told_otherwise() {
    // glibc rewrites the variable as it reads it and may keep only its first setting in the
    // process's environment (all are applied), so what it then holds is checked by its start;
    // how our settings join the operator's is the unit test's.
    let tunables = |env: &[String]| {
        env.iter()
            .find_map(|v| v.strip_prefix("GLIBC_TUNABLES=").map(str::to_owned))
            .unwrap_or_default()
    };
    let started_again = |env: &[String]| env.iter().any(|v| v == "FREE4CHAT_ALLOCATOR_TUNED=1");
    // Same process id, started again with the settings in force.
    let env = environment_of_server(None);
    assert!(started_again(&env));
    assert!(
        tunables(&env).starts_with("glibc.malloc.tcache_count=0"),
        "{env:?}"
    );
    // The operator's other settings are kept...
    let env = environment_of_server(Some("glibc.malloc.arena_max=2"));
    assert!(started_again(&env));
    assert!(
        tunables(&env).starts_with("glibc.malloc.arena_max=2"),
        "{env:?}"
    );
    // ...and their own choice of thread cache wins: not started again.
    let env = environment_of_server(Some("glibc.malloc.tcache_count=7"));
    assert!(!started_again(&env));
    assert_eq!(tunables(&env), "glibc.malloc.tcache_count=7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_offers_in_a_loop_write_only_the_logs_burst_and_the_rest_is_counted() {
    let log = std::env::temp_dir().join(format!("f4c-log-{}.txt", std::process::id()));
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--media-port", "0"])
        .args(["--public-ip", "127.0.0.1", "--media-realtime-priority", "0"])
        .args(["--log-burst", "3", "--log-rate", "0.001"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_owned();
    let url = format!("ws://{addr}/ws");
    let mut ws = tokio_tungstenite::connect_async(url).await.unwrap().0;
    ws_join(&mut ws, "noisy", "Mallory").await;
    // An m-line without a=mid: the media library warns of it, once per offer.
    let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
               m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=sendrecv\r\n\
               a=rtpmap:111 opus/48000/2\r\n";
    let offer = serde_json::json!({"type": "offer", "sdp": sdp}).to_string();
    for _ in 0..30 {
        common::send_text(&mut ws, &offer).await;
        let refused = next_matching(&mut ws, |m| matches!(m, ServerMsg::Error { .. })).await;
        assert!(
            matches!(
                refused,
                Some(ServerMsg::Error {
                    code: common::ErrorCode::InvalidSdp,
                    ..
                })
            ),
            "{refused:?}"
        );
    }
    let stats = http_get(&addr, "/api/stats");
    let json: serde_json::Value =
        serde_json::from_str(stats.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let written = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let warned = written.matches("missing a=mid").count();
    assert_eq!(warned, 3, "{written}");
    assert!(json["log_suppressed"].as_u64() >= Some(27), "{json}");
}
