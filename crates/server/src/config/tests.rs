use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};
use free4chat_media::priority::Realtime;

use super::sections::cores;
use super::*;

/// `args` and a file's text over the defaults, checked (the environment is not read).
fn resolve(args: &[&str], file: &str) -> Result<Config, ConfigError> {
    let command = Config::command().mut_args(|arg| arg.env(None));
    let matches = command.try_get_matches_from(args)?;
    let config = Config::layered(&matches, Some((Path::new("test.toml"), file)))?;
    config.check()?;
    Ok(config)
}

fn args(args: &[&str]) -> Result<Config, ConfigError> {
    resolve(args, "")
}

#[test]
fn command_line_wins_over_file_and_defaults_fill_the_rest() {
    let c = resolve(
        &["free4chat", "--listen", "127.0.0.1:5000"],
        "listen = \"0.0.0.0:80\"\nmedia_port = 50000\n",
    )
    .unwrap();
    assert_eq!(c.general.listen, "127.0.0.1:5000".parse().unwrap());
    assert_eq!(c.media.media_port, 50000);
    assert_eq!(c.limits.max_room_members, 1000);
    assert_eq!(c.media.room_spread_at, 16);
    let c = resolve(
        &["free4chat", "--room-spread-at", "0"],
        "room_spread_at = 8\n",
    );
    assert_eq!(c.unwrap().media.room_spread_at, 0);
    let c = resolve(&["free4chat"], "room_spread_at = 8\n").unwrap();
    assert_eq!(c.media.room_spread_at, 8);
    // A list on the command line replaces the file's whole list.
    let c = resolve(
        &["free4chat", "--public-ip", "127.0.0.2"],
        "public_ip = [\"127.0.0.1\", \"::1\"]\n",
    )
    .unwrap();
    assert_eq!(c.media.public_ip, ["127.0.0.2".parse::<IpAddr>().unwrap()]);
}

#[test]
fn bad_files_and_values_are_refused_with_a_reason() {
    let err = resolve(&["free4chat"], "listne = \"x\"")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("test.toml") && err.contains("unknown field `listne`"),
        "{err}"
    );
    assert!(resolve(&["free4chat"], "media_port = 70000").is_err());
    // The file cannot name another file.
    let err = resolve(&["free4chat"], "config = \"/etc/other.toml\"");
    assert!(
        err.unwrap_err()
            .to_string()
            .contains("unknown field `config`")
    );
    assert!(args(&["free4chat", "--media-workers", "0"]).is_err());
    assert!(args(&["free4chat", "--public-ip", "1.2.3.4,5.6.7.8"]).is_err());
    assert!(args(&["free4chat", "--media-port", "65535", "--media-workers", "2"]).is_err());
    for bad in [
        ["--message-burst", "0"],
        ["--chat-rate", "0"],
        ["--message-rate", "NaN"],
        ["--max-refusals", "0"],
        ["--ping-interval", "0s"],
        ["--join-deadline", "2days"],
        ["--silence-limit", "-1s"],
        ["--close-linger", "soon"],
        ["--http-max-connections-per-ip", "0"],
        ["--join-rate-per-ip", "0"],
        ["--log-rate", "inf"],
        ["--http-header-timeout", "0s"],
        ["--media-deadline", "2days"],
        ["--allowed-origin", "evil.example"],
        ["--allowed-origin", "https://a.example/path"],
        ["--exempt-ip", "not-an-ip"],
        ["--turn-max-connections-per-ip", "0"],
    ] {
        let refused = args(&["free4chat", bad[0], bad[1]]);
        assert!(refused.is_err(), "{bad:?} was taken");
    }
}

#[test]
fn durations_are_written_as_people_write_them_and_bare_numbers_are_seconds() {
    let c = args(&["free4chat", "--turn-ttl", "3600"]).unwrap();
    assert_eq!(c.turn.turn_ttl, Duration::from_secs(3600));
    let c = args(&["free4chat", "--turn-ttl", "90m"]).unwrap();
    assert_eq!(c.turn.turn_ttl, Duration::from_secs(5400));
    let c = resolve(
        &["free4chat"],
        "turn_ttl = 86400
",
    )
    .unwrap();
    assert_eq!(c.turn.turn_ttl, Duration::from_secs(86_400));
    let c = resolve(&["free4chat"], "turn_ttl = \"1h 30m\"\n").unwrap();
    assert_eq!(c.turn.turn_ttl, Duration::from_secs(5400));
    let err = resolve(&["free4chat"], "turn_ttl = -5").unwrap_err();
    assert!(err.to_string().contains("negative"), "{err}");
    let err = resolve(&["free4chat"], "turn_ttl = \"5 parsecs\"").unwrap_err();
    assert!(err.to_string().contains("turn_ttl"), "{err}");
    let c = args(&["free4chat", "--join-deadline", "300ms"]).unwrap();
    assert_eq!(c.connections.join_deadline, Duration::from_millis(300));
    let c = resolve(
        &["free4chat"],
        "silence_limit = \"1m 30s\"\nmedia_tcp_idle_timeout = 2\n",
    )
    .unwrap();
    assert_eq!(c.connections.silence_limit, Duration::from_secs(90));
    assert_eq!(c.media.media_tcp_idle_timeout, Duration::from_secs(2));
}

#[test]
fn protection_settings_are_read_from_the_file_and_the_command_line() {
    let c = resolve(
        &["free4chat", "--allowed-origin", "https://a.example,*"],
        "exempt_ips = [\"10.0.0.1\"]\nmedia_deadline = 0\nhttp_header_timeout = \"5s\"\n",
    )
    .unwrap();
    let p = &c.protection;
    assert_eq!(p.allowed_origins, ["https://a.example", "*"]);
    assert_eq!(
        p.exempt_ips,
        ["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    // 0 turns the media deadline off.
    assert_eq!(p.media_deadline, Duration::ZERO);
    assert_eq!(p.http_header_timeout, Duration::from_secs(5));
}

#[test]
fn the_admin_listener_needs_one_token_long_enough() {
    let listen = ["free4chat", "--admin-listen", "127.0.0.1:9090"];
    assert!(args(&listen).is_err(), "no token");
    let token = |t: &'static str| [&listen[..], &["--admin-token", t]].concat();
    assert!(args(&token("short")).is_err());
    let c = args(&token("sixteen-chars-ok")).unwrap();
    assert_eq!(
        c.admin.admin_listen,
        Some("127.0.0.1:9090".parse().unwrap())
    );
    let both = [
        &token("sixteen-chars-ok")[..],
        &["--admin-token-file", "/t"],
    ]
    .concat();
    assert!(args(&both).is_err(), "a token and a file");
    assert!(args(&[&listen[..], &["--admin-token-file", "/t"]].concat()).is_ok());
}

#[test]
fn tls_and_turn_options_are_checked_together() {
    let c = args(&[
        "free4chat",
        "--tls-self-signed",
        "--turn-tls",
        "127.0.0.1:5349",
    ])
    .unwrap();
    assert_eq!(c.tls.source().unwrap(), Some(TlsSource::SelfSigned));
    assert!(c.turn.enabled());
    // TURN over TLS needs a certificate; cert and key go together.
    assert!(args(&["free4chat", "--turn-tls", "127.0.0.1:5349"]).is_err());
    assert!(args(&["free4chat", "--tls-cert", "/c.pem"]).is_err());
    assert!(
        args(&[
            "free4chat",
            "--tls-self-signed",
            "--tls-cert",
            "/c",
            "--tls-key",
            "/k"
        ])
        .is_err()
    );
    // External relays need their secret; URLs are checked.
    assert!(args(&["free4chat", "--external-turn", "turn:t.example:3478"]).is_err());
    assert!(
        args(&[
            "free4chat",
            "--external-turn",
            "http://x",
            "--external-turn-secret",
            "s"
        ])
        .is_err()
    );
    let c = args(&[
        "free4chat",
        "--external-turn",
        "turn:t.example:3478?transport=udp,turns:t.example:443?transport=tcp",
        "--external-turn-secret",
        "s",
    ])
    .unwrap();
    assert_eq!(c.turn.external_turn.len(), 2);
    assert!(args(&["free4chat", "--external-turn", "stun:t.example:3478"]).is_ok());
    assert!(args(&["free4chat", "--turn-host", "bad host"]).is_err());
    assert!(args(&["free4chat", "--turn-ttl", "5"]).is_err());
    let c = resolve(
        &["free4chat"],
        "turn_udp = \"0.0.0.0:3478\"\nturn_secret = \"x\"\n",
    )
    .unwrap();
    assert_eq!(c.turn.turn_udp, Some("0.0.0.0:3478".parse().unwrap()));
    let c = resolve(&["free4chat"], "tls_self_signed = true\n").unwrap();
    assert_eq!(c.tls.source().unwrap(), Some(TlsSource::SelfSigned));
}

#[test]
fn media_over_tcp_is_on_by_default_and_can_be_turned_off() {
    let c = args(&["free4chat"]).unwrap();
    assert!(c.media.media_tcp);
    assert_eq!(c.media.media_tcp_max_connections, 4096);
    assert!(
        !args(&["free4chat", "--media-tcp", "false"])
            .unwrap()
            .media
            .media_tcp
    );
    assert!(
        !args(&["free4chat", "--media-tcp", "off"])
            .unwrap()
            .media
            .media_tcp
    );
    let c = resolve(
        &["free4chat"],
        "media_tcp = false\nmedia_tcp_max_connections = 10\n",
    )
    .unwrap();
    assert!(!c.media.media_tcp);
    assert_eq!(c.media.media_tcp_max_connections, 10);
    assert!(args(&["free4chat", "--media-tcp-max-connections", "0"]).is_err());
}

#[test]
fn real_time_priority_is_tried_by_default_and_bounded() {
    let c = args(&["free4chat"]).unwrap();
    let tried = Realtime {
        priority: 10,
        asked: false,
    };
    assert_eq!(c.media.realtime(), tried);
    let c = resolve(&["free4chat"], "media_realtime_priority = 20\n").unwrap();
    let asked = Realtime {
        priority: 20,
        asked: true,
    };
    assert_eq!(c.media.realtime(), asked);
    // Asking for the default priority by name is asking too.
    let c = args(&["free4chat", "--media-realtime-priority", "10"]).unwrap();
    assert!(c.media.realtime().asked);
    let c = args(&["free4chat", "--media-realtime-priority", "0"]).unwrap();
    assert_eq!(c.media.realtime().priority, 0);
    assert!(args(&["free4chat", "--media-realtime-priority", "100"]).is_err());
    assert!(args(&["free4chat", "--media-realtime-priority", "300"]).is_err());
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let command = Config::command().mut_args(|arg| arg.env(None));
    let matches = command
        .try_get_matches_from(["free4chat", "--config", "/nonexistent/free4chat.toml"])
        .unwrap();
    let err = Config::from_matches(&matches).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/free4chat.toml"), "{err}");
}

#[test]
fn the_defaults_are_those_declared_on_the_options() {
    let d = Config::default();
    assert_eq!(d.general.listen, SocketAddr::from(([127, 0, 0, 1], 4000)));
    assert_eq!(
        (d.media.media_port, d.media.media_workers),
        (40000, cores())
    );
    assert_eq!((d.limits.message_burst, d.limits.message_rate), (40, 20.0));
    assert_eq!(
        (
            d.limits.chat_burst,
            d.limits.chat_rate,
            d.limits.max_refusals
        ),
        (10, 2.0, 50)
    );
    assert_eq!(
        [
            d.connections.join_deadline,
            d.connections.ping_interval,
            d.connections.silence_limit,
            d.connections.close_linger
        ],
        [30, 15, 45, 3].map(Duration::from_secs)
    );
    assert_eq!(
        [
            d.media.media_connect_timeout,
            d.media.media_disconnect_grace,
            d.media.media_tcp_first_frame_timeout,
            d.media.media_tcp_idle_timeout
        ],
        [30, 10, 10, 30].map(Duration::from_secs)
    );
    assert_eq!(d.turn.turn_ttl, Duration::from_secs(600));
    assert!(
        !d.media.media_realtime_asked
            && d.media.public_ip.is_empty()
            && d.turn.turn_secret.is_none()
    );
    d.check().unwrap();
    // An empty file and no arguments give the defaults.
    assert_eq!(resolve(&["free4chat"], "").unwrap(), d);
}

/// A value each option takes, to try it with: its default, else one by the kind of value.
fn sample(arg: &clap::Arg) -> Option<String> {
    if !arg.get_action().takes_values() {
        return None;
    }
    if let Some(default) = arg.get_default_values().first() {
        return Some(default.to_string_lossy().into_owned());
    }
    let kind = arg
        .get_value_names()
        .and_then(|v| v.first())
        .map(|v| v.as_str());
    let sample = match kind {
        Some("ADDR:PORT") => "127.0.0.1:9",
        Some("IP") => "127.0.0.1",
        Some("FILE") => "/etc/free4chat/sample.pem",
        Some("SECRET") => "sample secret",
        Some("HOST") => "chat.example",
        Some("URL") => "stun:stun.example:3478",
        Some("ORIGIN") => "https://chat.example",
        Some("ARG") => "0.25",
        _ => panic!("{:?}: give this kind of value a sample here", arg.get_id()),
    };
    Some(sample.to_owned())
}

/// The options of the command, less clap's own (--help, --version).
fn options() -> Vec<clap::Arg> {
    Config::command()
        .get_arguments()
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .cloned()
        .collect()
}

/// The configuration from one option on the command line, over the defaults.
fn with_option(arg: &clap::Arg, value: Option<&str>) -> Config {
    let long = format!("--{}", arg.get_long().unwrap());
    let argv: Vec<&str> = ["free4chat", long.as_str()]
        .into_iter()
        .chain(value)
        .collect();
    let command = Config::command().mut_args(|arg| arg.env(None));
    Config::from_arg_matches(&command.try_get_matches_from(&argv).unwrap()).unwrap()
}

/// A setting's value as the file would hold it (None: unset).
fn file_value(config: &Config, key: &str) -> Option<toml::Value> {
    toml::Table::try_from(config).unwrap().get(key).cloned()
}

/// The rows of README.md's tables: the options named in the first cell (`--name…`), each
/// with the code spans of the second cell (the environment variables).
fn readme_rows() -> Vec<(Vec<String>, Vec<String>)> {
    let readme = include_str!("../../../../README.md");
    let code_spans = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    readme
        .lines()
        .filter(|line| line.starts_with('|'))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').collect();
            let options: Vec<String> = code_spans(cells.get(1)?)
                .into_iter()
                .filter_map(|span| {
                    let name = span.strip_prefix("--")?;
                    Some(name.split(' ').next()?.to_owned())
                })
                .collect();
            let envs = code_spans(cells.get(2)?);
            (!options.is_empty()).then_some((options, envs))
        })
        .collect()
}

/// `--help`'s `[default: …]` for each option, by its long name.
fn help_defaults() -> std::collections::HashMap<String, Option<String>> {
    let help = Config::command()
        .mut_args(|arg| arg.env(None))
        .render_long_help()
        .to_string();
    let mut defaults = std::collections::HashMap::new();
    let mut current: Option<String> = None;
    for line in help.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("--")
            && line.len() - trimmed.len() >= 2
        {
            let name = rest.split([' ', '=', '<']).next().unwrap().to_owned();
            defaults.insert(name.clone(), None);
            current = Some(name);
        } else if let (Some(name), Some(rest)) = (&current, trimmed.strip_prefix("[default: ")) {
            defaults.insert(name.clone(), Some(rest.trim_end_matches(']').to_owned()));
        }
    }
    defaults
}

#[test]
fn every_option_has_a_readme_row_a_file_key_and_its_real_default_in_help() {
    let rows = readme_rows();
    let help = help_defaults();
    let defaults = Config::default();
    let options = options();
    assert!(options.len() > 20, "{} options found", options.len());
    for arg in &options {
        let id = arg.get_id().as_str();
        let long = arg.get_long().expect("every option has a long name");
        let env = arg.get_env().expect("every option has a variable");
        let env = env.to_string_lossy();

        // README.md has a row for it, with its variable.
        let row = rows
            .iter()
            .find(|(names, _)| names.iter().any(|n| n == long));
        let Some((_, envs)) = row else {
            panic!("README.md's options table has no row for --{long}")
        };
        assert!(
            envs.iter().any(|e| *e == env),
            "README.md's row for --{long} lacks {env}: {envs:?}"
        );

        // The help shows the real default, or none when there is none.
        let shown = help
            .get(long)
            .unwrap_or_else(|| panic!("--help lacks --{long}"));
        match shown {
            Some(shown) => assert_eq!(
                file_value(&with_option(arg, Some(shown)), id),
                file_value(&defaults, id),
                "--{long}: --help shows [default: {shown}]"
            ),
            None if arg.get_action().takes_values() => {
                let unset = file_value(&defaults, id);
                let empty = toml::Value::Array(Vec::new());
                assert!(
                    unset.is_none() || unset == Some(empty),
                    "--{long} has the default {unset:?} but --help shows none"
                );
            }
            None => assert_eq!(file_value(&defaults, id), Some(false.into()), "--{long}"),
        }

        // The file takes it under its name, meaning the same as on the command line.
        if id == "config" {
            continue;
        }
        let from_args = with_option(arg, sample(arg).as_deref());
        let value = file_value(&from_args, id)
            .unwrap_or_else(|| panic!("the file knows no key {id} for --{long}"));
        let text = toml::to_string(&toml::Table::from_iter([(id.to_owned(), value)])).unwrap();
        let matches = Config::command()
            .mut_args(|arg| arg.env(None))
            .try_get_matches_from(["free4chat"])
            .unwrap();
        let from_file = Config::layered(&matches, Some((Path::new("t.toml"), &text)))
            .unwrap_or_else(|e| panic!("the file refuses {text:?}: {e}"));
        assert_eq!(
            file_value(&from_file, id),
            file_value(&from_args, id),
            "{text:?} in the file and --{long} differ"
        );
    }
}

#[test]
fn a_bad_line_of_the_file_is_pointed_at_and_unknown_keys_are_listed_with_the_known() {
    // Each key is checked where it stands, and named with its line, however deep in a value
    // the mistake is.
    let file = "media_port = 4\nmax_rooms = \"ten\"\n";
    let err = resolve(&["free4chat"], file).unwrap_err().to_string();
    assert!(
        err.contains("line 2, column 13") && err.contains("usize"),
        "{err}"
    );
    let err = resolve(&["free4chat"], "public_ip = [\"127.0.0.1\", \"x\"]\n");
    let err = err.unwrap_err().to_string();
    assert!(err.contains("line 1, column 27"), "{err}");
    let err = resolve(&["free4chat"], "[media]\nmedia_port = 5\n");
    let err = err.unwrap_err().to_string();
    assert!(err.contains("unknown field `media`"), "{err}");
    // The known keys are every option's but --config's, in the order of --help.
    let known: Vec<String> = options()
        .iter()
        .map(|arg| format!("`{}`", arg.get_id()))
        .filter(|id| id != "`config`")
        .collect();
    assert!(
        err.contains(&format!("expected one of {}", known.join(", "))),
        "{err}"
    );
}

#[test]
fn cluster_mode_takes_a_redis_url_and_a_drain_timeout() {
    let c = args(&["free4chat"]).unwrap();
    assert_eq!(c.cluster.redis, None);
    assert_eq!(c.cluster.drain_timeout, Duration::from_secs(30));
    let c = args(&[
        "free4chat",
        "--redis",
        "rediss://:s3cret@redis.example:6380/1",
        "--drain-timeout",
        "10s",
    ])
    .unwrap();
    assert_eq!(
        c.cluster.redis.as_deref(),
        Some("rediss://:s3cret@redis.example:6380/1")
    );
    assert_eq!(c.cluster.drain_timeout, Duration::from_secs(10));
    let c = resolve(&["free4chat"], "redis = \"redis://127.0.0.1\"\n").unwrap();
    assert_eq!(c.cluster.redis.as_deref(), Some("redis://127.0.0.1"));
    for bad in ["127.0.0.1:6379", "http://redis.example", "redis://"] {
        let err = args(&["free4chat", "--redis", bad]).unwrap_err();
        assert!(err.to_string().contains("redis"), "{bad}: {err}");
    }
    assert!(args(&["free4chat", "--drain-timeout", "0s"]).is_err());
}

#[test]
fn webhooks_take_several_urls_and_must_be_signed() {
    let c = args(&["free4chat"]).unwrap();
    assert!(c.webhooks.webhook.is_empty());
    assert_eq!(c.webhooks.webhook_queue, 1000);
    assert_eq!(c.webhooks.webhook_timeout, Duration::from_secs(5));
    let c = args(&[
        "free4chat",
        "--webhook",
        "https://hooks.example/free4chat,http://10.0.0.2:8080/in",
        "--webhook",
        "https://other.example/",
        "--webhook-secret",
        "s3cret",
    ])
    .unwrap();
    assert_eq!(c.webhooks.webhook.len(), 3);
    let c = resolve(
        &["free4chat"],
        "webhook = [\"https://a.example/\", \"https://b.example/\"]\n\
         webhook_secret_file = \"/etc/free4chat/webhook.secret\"\n",
    )
    .unwrap();
    assert_eq!(c.webhooks.webhook.len(), 2);
    // Unsigned webhooks, two secrets, an empty one, and what is not an HTTP URL are refused.
    let refused = [
        vec!["--webhook", "https://a.example/"],
        vec![
            "--webhook",
            "https://a.example/",
            "--webhook-secret",
            "s",
            "--webhook-secret-file",
            "/s",
        ],
        vec!["--webhook", "https://a.example/", "--webhook-secret", ""],
        vec!["--webhook", "ftp://a.example/", "--webhook-secret", "s"],
        vec!["--webhook", "a.example", "--webhook-secret", "s"],
        vec!["--webhook-queue", "0"],
        vec!["--webhook-timeout", "0s"],
    ];
    for bad in refused {
        let argv: Vec<&str> = std::iter::once("free4chat").chain(bad.clone()).collect();
        assert!(args(&argv).is_err(), "{bad:?} accepted");
    }
}
