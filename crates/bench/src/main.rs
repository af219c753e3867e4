//! `free4chat-bench`: drives R rooms × S speakers × L listeners of real WebRTC clients (str0m:
//! full ICE, DTLS, SRTP) against a server, and measures what the server does with them.
//!
//! Speakers send one 80-byte audio packet every 20 ms at speech level, carrying their id, a
//! sequence number and the send time, so every receiver measures loss and one-way latency
//! through the server exactly; with `--open-mics` listeners send too, at a background level.
//! On free4chat's audio slots, loss is counted against what the server forwarded to each
//! member ([`slot_loss`]). The server's CPU seconds and RSS are read from `/proc/<pid>`.
//!
//! Output: a human table, then, as the last line, one JSON object with every figure.

mod janus;
mod procstat;
mod slot_loss;
mod stats;
mod target;
mod video;
mod view;
mod window;

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use free4chat_client::{Layer, PACKET_INTERVAL, VideoOptions};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use free4chat_media::LatencyHistogram;

use crate::target::{Member, Role, Target};
use crate::window::{Accounting, Snapshot};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TargetKind {
    Free4chat,
    Janus,
}

/// Load generator for free4chat (and Janus, for comparison).
#[derive(Debug, Parser)]
#[command(name = "free4chat-bench", version, about)]
struct Args {
    /// Which server to drive.
    #[arg(long, value_enum, default_value = "free4chat")]
    target: TargetKind,
    /// free4chat: its HTTP address; repeated, the nodes of a cluster, over which each room's
    /// members are spread (member i of room r connects to node (r + i) mod N). Janus: the
    /// HTTP API URL (e.g. http://10.0.0.1:8088/janus).
    #[arg(long, default_value = "127.0.0.1:4000", num_args = 1)]
    server: Vec<String>,
    /// The server's process id, to read its CPU time and memory from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Rooms.
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Speakers per room (they publish at speech level and hear each other).
    #[arg(long, default_value_t = 2)]
    speakers: usize,
    /// Listeners per room (receive only, unless --open-mics).
    #[arg(long, default_value_t = 0)]
    listeners: usize,
    /// Listeners publish too, at the background level, as open microphones in a real lobby
    /// do (free4chat only: Janus would forward every one of them).
    #[arg(long)]
    open_mics: bool,
    /// The audio level speakers publish at, in dBov (0 loudest, -127 silence).
    #[arg(long, value_name = "DBOV", default_value_t = -20, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i8).range(-127..=0))]
    speech_level: i8,
    /// The audio level of the listeners' open microphones, in dBov.
    #[arg(long, value_name = "DBOV", default_value_t = -70, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i8).range(-127..=0))]
    background_level: i8,
    /// Members joining per second during the ramp.
    #[arg(long, default_value_t = 50.0)]
    ramp: f64,
    /// Seconds to wait after the ramp before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds to measure for.
    #[arg(long, default_value_t = 10.0)]
    hold: f64,
    /// Milliseconds between two packets of a publisher: 20, an Opus frame, unless a profiler
    /// that cannot keep up with a large room is to see it at all (free4chat only).
    #[arg(long, value_name = "MS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    packet_interval_ms: u64,
    /// Local IP for the clients' UDP sockets.
    #[arg(long, default_value = "127.0.0.1")]
    local_ip: IpAddr,
    /// A shell command run just before the measurement window opens (e.g. to start a
    /// profiler's collection).
    #[arg(long, value_name = "CMD")]
    at_hold_start: Option<String>,
    /// A shell command run just after the measurement window closes.
    #[arg(long, value_name = "CMD")]
    at_hold_end: Option<String>,
    /// Join-and-leave cycles of one speaker pair after the run, to show memory returns to its
    /// idle baseline (0: skip).
    #[arg(long, default_value_t = 0)]
    churn: usize,
    /// Speakers publish a synthetic VP8 camera too: one stream of 500 kbit/s at 30 frames a
    /// second.
    #[arg(long)]
    video: bool,
    /// With --video, the camera sends three simulcast layers (rids q, h, f: 150 kbit/s at
    /// 15 fps, 500 kbit/s and 1.5 Mbit/s at 30 fps).
    #[arg(long, requires = "video")]
    simulcast: bool,
    /// With --video, every member shows every camera in a tile of this size (e.g. 640x360):
    /// free4chat is told so (`video_view`) and sends the layer the tile asks for; Janus is
    /// asked for that layer (`substream`). Without it, both send the best layer.
    #[arg(long, value_name = "WxH", requires = "video")]
    tile: Option<view::Tile>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("free4chat-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(report) => {
            let title = format!(
                "{} · {} rooms × {} speakers × {} listeners",
                report["target"].as_str().unwrap_or("?"),
                report["rooms"],
                report["speakers"],
                report["listeners"]
            );
            stats::print_table(&title, &report);
            for n in report["nodes"].as_array().into_iter().flatten() {
                println!(
                    "node {} ({}): {} rooms, {} members, {} connections",
                    n["node"], n["server"], n["rooms"], n["members"], n["connections"]
                );
            }
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("free4chat-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn make_target(args: &Args) -> Result<Target, String> {
    Ok(match args.target {
        TargetKind::Free4chat => Target::Free4chat {
            http: args
                .server
                .iter()
                .map(|s| {
                    s.parse::<SocketAddr>()
                        .map_err(|e| format!("--server {s}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            run: format!("{:x}", std::process::id()),
            packet_interval: Duration::from_millis(args.packet_interval_ms),
            video: video_options(args),
            tile: args.tile,
        },
        TargetKind::Janus if args.packet_interval_ms != 20 => {
            return Err("--packet-interval-ms: Janus is driven at 20 ms only".into());
        }
        TargetKind::Janus => match &args.server[..] {
            [one] => {
                Target::Janus(janus::Janus::new(one).with_video(video_options(args), args.tile))
            }
            _ => return Err("Janus takes one --server".into()),
        },
    })
}

/// The camera speakers publish, if any.
fn video_options(args: &Args) -> Option<VideoOptions> {
    args.video.then(|| match args.simulcast {
        true => VideoOptions::simulcast(),
        false => VideoOptions::single(Layer::H),
    })
}

/// A JSON answer from a server, or none if it does not come within 10 s or is not JSON: a
/// server past capacity may answer late, and the run goes on without those figures.
async fn get_json(url: &str) -> Option<Value> {
    reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// What each node of a cluster holds (free4chat with several --server): its id, the rooms
/// and members it runs, and the WebSocket connections it holds (members relayed to rooms on
/// other nodes included).
async fn node_figures(target: &Target) -> Vec<Value> {
    let Target::Free4chat { http, .. } = target else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for addr in http {
        let health = get_json(&format!("http://{addr}/api/health")).await;
        out.push(match health {
            Some(h) => json!({
                "server": addr.to_string(),
                "node": h["node"],
                "rooms": h["rooms"],
                "members": h["peers"],
                "connections": h["connections"],
            }),
            None => json!({ "server": addr.to_string(), "unreachable": true }),
        });
    }
    out
}

async fn run(args: Args) -> Result<Value, String> {
    if args.open_mics && matches!(args.target, TargetKind::Janus) {
        return Err(
            "--open-mics: Janus forwards every microphone to everyone, so the two \
                    servers would not do the same work; drive Janus without it"
                .into(),
        );
    }
    let target = Arc::new(make_target(&args)?);
    // The idle baseline is taken after one room has come and gone, so it includes what any
    // first use allocates for good (buffers, runtime threads' stacks).
    if args.server_pid.is_some() {
        warm_up(&target, &args).await?;
    }
    let idle = args.server_pid.and_then(procstat::sample);

    // Ramp: speakers of each room first, then its listeners, at the configured rate.
    let per_room = args.speakers + args.listeners;
    let gap = Duration::from_secs_f64(1.0 / args.ramp.max(0.1));
    let mut tasks = Vec::new();
    let ramp_started = Instant::now();
    for room in 0..args.rooms {
        for index in 0..per_room {
            let (role, level) = if index < args.speakers {
                (Role::Speaker, Some(args.speech_level))
            } else {
                (
                    Role::Listener,
                    args.open_mics.then_some(args.background_level),
                )
            };
            let t = target.clone();
            let ip = args.local_ip;
            tasks.push(tokio::spawn(async move {
                t.join(room, index, role, level, ip).await
            }));
            tokio::time::sleep(gap).await;
        }
    }
    let mut members = Vec::new();
    let mut join_errors = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(m)) => members.push(m),
            Ok(Err(e)) => join_errors.push(e),
            Err(e) => join_errors.push(e.to_string()),
        }
    }
    if let Some(e) = join_errors.first() {
        return Err(format!("{} joins failed, first: {e}", join_errors.len()));
    }
    for room in 0..args.rooms {
        let start = members.iter().position(|m| m.room == room).unwrap_or(0);
        let end = members
            .iter()
            .rposition(|m| m.room == room)
            .map_or(0, |e| e + 1);
        target.room_complete(room, &mut members[start..end]).await?;
    }
    let ramp_s = ramp_started.elapsed().as_secs_f64();

    let accounting = Accounting::of(&members);
    let audio_slots = members.iter().find_map(|m| m.audio_slots);
    // Everyone who should receive something has received something (bounded wait): a speaker,
    // or without slots any open microphone.
    let open_mics_heard = accounting == Accounting::Tracks && args.open_mics;
    let expects_media = |m: &Member| {
        accounting.speakers_expected(m.role, args.speakers) > 0 || (open_mics_heard && per_room > 1)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let waiting = members
            .iter()
            .filter(|m| expects_media(m))
            .filter(|m| {
                free4chat_client::media::lock_state(&m.state)
                    .first_media
                    .is_none()
            })
            .count();
        if waiting == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut join_ms: Vec<u64> = Vec::new();
    let mut never_received = 0;
    for m in members.iter().filter(|m| expects_media(m)) {
        match free4chat_client::media::lock_state(&m.state).first_media {
            Some(t) => join_ms.push(t.saturating_duration_since(m.started).as_millis() as u64),
            None => never_received += 1,
        }
    }

    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    hook(args.at_hold_start.as_deref()).await?;
    let server_a = server_figures(&target).await;
    let a = Snapshot::take(&members, args.server_pid);
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    let b = Snapshot::take(&members, args.server_pid);
    let server_b = server_figures(&target).await;
    let nodes = node_figures(&target).await;
    hook(args.at_hold_end.as_deref()).await?;
    let window_s = b.at.duration_since(a.at).as_secs_f64();
    // Packets on their way when the window closed get time to arrive before those that never
    // did are counted.
    tokio::time::sleep(SETTLE).await;

    // What the speakers (and open microphones) sent in the window, what the server forwarded
    // of it to each member, what arrived and what was lost: see `window`.
    let mut counts = window::count(&members, &a, &b, accounting, args.speakers);
    let delivered = counts.delivered;
    let loss_pct = if counts.forwarded == 0 {
        0.0
    } else {
        counts.lost as f64 / counts.forwarded as f64 * 100.0
    };

    // Every packet the server had to send in the window, audio and video.
    let forwarded_all = counts.forwarded + a.video.forwarded_until(&b.video);
    let server = match (idle, a.proc, b.proc) {
        (Some(idle), Some(pa), Some(pb)) => {
            let (user, system) = (pb.user_s - pa.user_s, pb.system_s - pa.system_s);
            let cpu = user + system;
            let per_packet = |s: f64| {
                if delivered == 0 {
                    0.0
                } else {
                    s * 1e6 / delivered as f64
                }
            };
            let per_forwarded = |s: f64| s * 1e6 / forwarded_all.max(1) as f64;
            json!({
                "cpu_s": cpu,
                // Over every packet forwarded, audio and video.
                "us_per_forwarded_packet": per_forwarded(cpu),
                "user_us_per_forwarded_packet": per_forwarded(user),
                "system_us_per_forwarded_packet": per_forwarded(system),
                // CPU time per second of the window per member receiving video, ms.
                "cpu_ms_per_viewer_s": args.video.then(|| {
                    cpu * 1e3 / window_s / b.video.viewers.max(1) as f64
                }),
                "cpu_pct": cpu / window_s * 100.0,
                "us_per_packet": per_packet(cpu),
                // The server's own code, and the kernel's work for it (on loopback that
                // includes delivering each datagram to its receiver).
                "user_us_per_packet": per_packet(user),
                "system_us_per_packet": per_packet(system),
                "rss_idle_kib": idle.rss_kib,
                "rss_loaded_kib": pb.rss_kib,
                "rss_per_member_kib": pb.rss_kib.saturating_sub(idle.rss_kib) as f64
                    / members.len().max(1) as f64,
            })
        }
        _ => Value::Null,
    };

    // Figures from a machine that was saturated, or whose host ran other guests on its vCPUs
    // (steal), say more about the machine than about the server.
    let machine = match (a.machine, b.machine) {
        (Some(ma), Some(mb)) => ma.share_until(&mb).map_or(
            Value::Null,
            |m| json!({ "busy_pct": m.busy_pct, "idle_pct": m.idle_pct, "steal_pct": m.steal_pct }),
        ),
        _ => Value::Null,
    };

    let video = video::summary(&members, args.video);
    let video_window = args.video.then(|| a.video.window_json(&b.video, window_s));

    // Everyone leaves; then memory should return to where it was.
    let leaving = Arc::new(Semaphore::new(64));
    let mut leaves = Vec::new();
    for m in members {
        let permit = leaving.clone();
        leaves.push(tokio::spawn(async move {
            let _p = permit.acquire().await;
            m.leave().await;
        }));
    }
    for l in leaves {
        let _ = l.await;
    }
    let churn = churn(&target, &args).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = args.server_pid.and_then(procstat::sample);

    let mut report = json!({
        "target": target.name(),
        "rooms": args.rooms,
        "speakers": args.speakers,
        "listeners": args.listeners,
        "members": args.rooms * per_room,
        "ramp_s": ramp_s,
        "hold_s": window_s,
        "sent_pps": counts.sent_by_speakers as f64 / window_s,
        "forwarded_pps": counts.forwarded as f64 / window_s,
        "delivered_pps": delivered as f64 / window_s,
        "loss_pct": loss_pct,
        "lost_packets": counts.lost,
        "latency_us": stats::summary(&mut counts.latencies_us),
        "join_ms": stats::summary(&mut join_ms),
        "never_received": never_received,
        "every_member_heard_audio": never_received == 0,
        "open_mics": args.open_mics,
        "speech_level_dbov": args.speech_level,
        "background_level_dbov": args.open_mics.then_some(args.background_level),
        "open_mic_sent_pps": counts.sent_by_open_mics as f64 / window_s,
        "open_mic_packets_heard": counts.open_mic_packets_heard,
        "audio_slots": audio_slots,
        "accounting": accounting.name(),
        "speakers_heard": counts.hearing_json(),
        "members_hearing_fewer_speakers": counts.hearing_fewer,
        "lost_at_speaker_changes": counts.lost_at_changes,
        "slot_streams": counts.slots_json(),
        "unrecorded_packets": counts.unrecorded,
        "churn_cycles": churn,
        "video": video,
        "simulcast": args.simulcast,
        "video_window": video_window,
        "tile": args.tile.map(|t| t.to_string()),
        "tile_layer": args.tile.map(|t| t.layer().rid()),
        "server": server,
        "machine": machine,
        "nodes": nodes,
    });
    if let (Some(a), Some(b), Some(obj)) = (server_a, server_b, report["server"].as_object_mut()) {
        // Where packets were lost on the server's side: copies it did not make (what it
        // forwarded against what it had to), and its sockets' buffers.
        obj.insert(
            "forwarded_pps".into(),
            json!(b.forwarded.saturating_sub(a.forwarded) as f64 / window_s),
        );
        obj.insert(
            "udp_dropped".into(),
            json!({
                "receive": b.receive_dropped.saturating_sub(a.receive_dropped),
                "send": b.send_dropped.saturating_sub(a.send_dropped),
            }),
        );
        let histograms = [
            ("residence_us", (a.residence, b.residence)),
            ("send_delay_us", (a.send_delay, b.send_delay)),
        ];
        for (key, (earlier, later)) in histograms {
            let window = later.since(&earlier);
            obj.insert(
                key.into(),
                json!({
                    "datagrams": window.count(),
                    "p50_at_most": window.percentile_us(50.0),
                    "p99_at_most": window.percentile_us(99.0),
                    "max_since_start": later.max_us,
                }),
            );
        }
    }
    if let (Some(idle), Some(after), Some(obj)) = (idle, after, report["server"].as_object_mut()) {
        obj.insert("rss_after_kib".into(), json!(after.rss_kib));
        obj.insert(
            "rss_after_vs_idle_pct".into(),
            json!((after.rss_kib as f64 / idle.rss_kib as f64 - 1.0) * 100.0),
        );
    }
    Ok(report)
}

/// How long after the window closes its last packets may still arrive and count.
const SETTLE: Duration = Duration::from_secs(1);

/// What the server says of itself (free4chat only: `/api/stats`), cumulative since it started.
struct ServerFigures {
    residence: LatencyHistogram,
    send_delay: LatencyHistogram,
    /// Datagrams its sockets dropped: arriving to a full buffer, and not sent for one.
    receive_dropped: u64,
    send_dropped: u64,
    /// Media packets written to subscribers.
    forwarded: u64,
}

/// The server's time histograms and socket losses (free4chat only: `/api/stats`).
async fn server_figures(target: &Target) -> Option<ServerFigures> {
    // Of one server: a cluster's nodes are reported one by one (`node_figures`).
    let Target::Free4chat { http, .. } = target else {
        return None;
    };
    let [http] = &http[..] else {
        return None;
    };
    // A server past capacity may answer late: the figures are then missing from the report,
    // and the run goes on.
    let v = get_json(&format!("http://{http}/api/stats")).await?;
    let read = |h: &Value| {
        let mut r = LatencyHistogram::default();
        let buckets = h["buckets"].as_array()?;
        for (slot, b) in r.counts.iter_mut().zip(buckets) {
            *slot = b.as_u64()?;
        }
        r.max_us = h["max_us"].as_u64()?;
        Some(r)
    };
    Some(ServerFigures {
        residence: read(&v["media"]["residence"])?,
        send_delay: read(&v["media"]["send_delay"])?,
        receive_dropped: v["media"]["udp"]["receive_dropped"].as_u64()?,
        send_dropped: v["media"]["udp"]["send_dropped"].as_u64()?,
        forwarded: v["media"]["forwarded"].as_u64()?,
    })
}

/// Runs a hook command to completion.
async fn hook(cmd: Option<&str>) -> Result<(), String> {
    let Some(cmd) = cmd else { return Ok(()) };
    let status = tokio::process::Command::new("sh")
        .args(["-c", cmd])
        .status()
        .await
        .map_err(|e| format!("{cmd}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd}: {status}"))
    }
}

/// One pair of speakers joins, hears each other and leaves; then the server settles.
async fn warm_up(target: &Target, args: &Args) -> Result<(), String> {
    churn_cycles(target, args, args.rooms + 2, 1).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

/// Joins and leaves two speakers `args.churn` times, in a room of their own.
async fn churn(target: &Target, args: &Args) -> Result<usize, String> {
    churn_cycles(target, args, args.rooms + 1, args.churn).await
}

async fn churn_cycles(
    target: &Target,
    args: &Args,
    room: usize,
    cycles: usize,
) -> Result<usize, String> {
    for i in 0..cycles {
        let level = Some(args.speech_level);
        let a = target
            .join(room, 2 * i, Role::Speaker, level, args.local_ip)
            .await?;
        let b = target
            .join(room, 2 * i + 1, Role::Speaker, level, args.local_ip)
            .await?;
        // Each hears the other before leaving: the full media path was exercised.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline
            && [&a, &b].iter().any(|m| {
                free4chat_client::media::lock_state(&m.state)
                    .first_media
                    .is_none()
            })
        {
            tokio::time::sleep(PACKET_INTERVAL).await;
        }
        a.leave().await;
        b.leave().await;
    }
    Ok(cycles)
}
