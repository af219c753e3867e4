//! Values that are each well-formed but make no sense, alone or together.

use std::time::Duration;

use super::{Config, ConfigError};

impl Config {
    /// Refuses values that are each well-formed but make no sense, alone or together.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.tracing.check().map_err(ConfigError::Invalid)?;
        if !(1..=256).contains(&self.media.media_workers) {
            return Err(ConfigError::Invalid("media_workers must be 1 to 256"));
        }
        if self.media.media_port != 0
            && usize::from(self.media.media_port) + self.media.media_workers - 1
                > usize::from(u16::MAX)
        {
            return Err(ConfigError::Invalid(
                "media_port + media_workers runs past port 65535",
            ));
        }
        if self.media.media_tcp_max_connections == 0 {
            return Err(ConfigError::Invalid(
                "media_tcp_max_connections must be at least 1",
            ));
        }
        if self.media.media_realtime_priority > 99 {
            return Err(ConfigError::Invalid(
                "media_realtime_priority must be 0 (off) to 99",
            ));
        }
        if self.limits.max_rooms == 0
            || self.limits.max_room_members == 0
            || self.limits.max_peers == 0
        {
            return Err(ConfigError::Invalid("limits must be at least 1"));
        }
        if self.limits.message_burst == 0
            || self.limits.chat_burst == 0
            || self.limits.max_refusals == 0
        {
            return Err(ConfigError::Invalid(
                "message_burst, chat_burst and max_refusals must be at least 1",
            ));
        }
        // NaN fails this too.
        let positive = |rate: f64| rate.is_finite() && rate > 0.0;
        if !positive(self.limits.message_rate) || !positive(self.limits.chat_rate) {
            return Err(ConfigError::Invalid(
                "message_rate and chat_rate must be more than 0 per second",
            ));
        }
        self.check_protection()?;
        // A deadline is added to the time of day; past a day none would be useful.
        let timings = [
            self.media.media_connect_timeout,
            self.media.media_disconnect_grace,
            self.media.media_tcp_first_frame_timeout,
            self.media.media_tcp_idle_timeout,
            self.connections.join_deadline,
            self.connections.ping_interval,
            self.connections.silence_limit,
            self.connections.close_linger,
            self.cluster.drain_timeout,
            self.protection.http_header_timeout,
            self.protection.http_idle_timeout,
            self.webhooks.webhook_timeout,
        ];
        if timings
            .iter()
            .any(|t| t.is_zero() || *t > Duration::from_secs(86_400))
        {
            return Err(ConfigError::Invalid(
                "timeouts, deadlines and intervals must be more than 0 and at most a day",
            ));
        }
        let mut families = self
            .media
            .public_ip
            .iter()
            .map(|ip| ip.is_ipv4())
            .collect::<Vec<_>>();
        families.sort();
        if families.windows(2).any(|w| w[0] == w[1]) {
            return Err(ConfigError::Invalid(
                "at most one public_ip per address family (IPv4, IPv6)",
            ));
        }
        self.check_turn()?;
        self.check_cluster()?;
        self.check_webhooks()?;
        self.check_admin()?;
        self.check_tokens()
    }

    fn check_tokens(&self) -> Result<(), ConfigError> {
        let t = &self.tokens;
        let keys = [
            t.token_secret.is_some(),
            t.token_secret_file.is_some(),
            t.token_public_key_file.is_some(),
        ];
        if keys.iter().filter(|k| **k).count() > 1 {
            return Err(ConfigError::Invalid(
                "give one of token_secret, token_secret_file and token_public_key_file",
            ));
        }
        if t.require_token && !keys.contains(&true) {
            return Err(ConfigError::Invalid(
                "require_token needs token_secret, token_secret_file or token_public_key_file",
            ));
        }
        if t.token_secret.as_ref().is_some_and(|s| s.trim().len() < 32) {
            return Err(ConfigError::Invalid(
                "token_secret must be at least 32 bytes",
            ));
        }
        Ok(())
    }

    fn check_admin(&self) -> Result<(), ConfigError> {
        let a = &self.admin;
        if a.admin_token.is_some() && a.admin_token_file.is_some() {
            return Err(ConfigError::Invalid(
                "give admin_token or admin_token_file, not both",
            ));
        }
        if a.admin_listen.is_some() && a.admin_token.is_none() && a.admin_token_file.is_none() {
            return Err(ConfigError::Invalid(
                "admin_listen needs admin_token or admin_token_file",
            ));
        }
        if a.admin_token.as_ref().is_some_and(|t| t.trim().len() < 16) {
            return Err(ConfigError::Invalid(
                "admin_token must be at least 16 characters",
            ));
        }
        Ok(())
    }

    fn check_protection(&self) -> Result<(), ConfigError> {
        let p = &self.protection;
        if [
            p.http_max_connections,
            p.http_max_connections_per_ip,
            p.ws_max_connections_per_ip,
        ]
        .contains(&0)
            || p.join_burst_per_ip == 0
            || p.password_burst_per_ip == 0
            || p.log_burst == 0
        {
            return Err(ConfigError::Invalid(
                "connection limits, join_burst_per_ip, password_burst_per_ip and log_burst must be at least 1",
            ));
        }
        let positive = |rate: f64| rate.is_finite() && rate > 0.0;
        if !positive(p.join_rate_per_ip)
            || !positive(p.password_rate_per_ip)
            || !positive(p.log_rate)
        {
            return Err(ConfigError::Invalid(
                "join_rate_per_ip, password_rate_per_ip and log_rate must be more than 0 per second",
            ));
        }
        if p.removal_ban > Duration::from_secs(7 * 86_400) {
            return Err(ConfigError::Invalid("removal_ban must be at most a week"));
        }
        if p.media_deadline > Duration::from_secs(86_400) {
            return Err(ConfigError::Invalid("media_deadline must be at most a day"));
        }
        if !p
            .allowed_origins
            .iter()
            .all(|o| crate::origin::valid_allowed(o))
        {
            return Err(ConfigError::Invalid(
                "allowed_origins must be `*` or origins like https://chat.example.com[:PORT]",
            ));
        }
        Ok(())
    }

    fn check_cluster(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.cluster.redis
            && crate::cluster::redis_url(url).is_err()
        {
            return Err(ConfigError::Invalid(
                "redis must be a redis:// or rediss:// URL with a host",
            ));
        }
        Ok(())
    }

    fn check_webhooks(&self) -> Result<(), ConfigError> {
        let w = &self.webhooks;
        if w.webhook.len() > crate::webhooks::MAX_RECEIVERS {
            return Err(ConfigError::Invalid("at most 16 webhook URLs"));
        }
        if w.webhook
            .iter()
            .any(|url| crate::webhooks::url(url).is_none())
        {
            return Err(ConfigError::Invalid(
                "webhook URLs must be http:// or https:// URLs with a host",
            ));
        }
        if w.webhook_secret.as_ref().is_some_and(|s| s.is_empty()) {
            return Err(ConfigError::Invalid("webhook_secret must not be empty"));
        }
        match (&w.webhook_secret, &w.webhook_secret_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(
                    "webhook_secret and webhook_secret_file exclude each other",
                ));
            }
            (None, None) if !w.webhook.is_empty() => {
                return Err(ConfigError::Invalid(
                    "webhooks are signed: give webhook_secret or webhook_secret_file",
                ));
            }
            _ => {}
        }
        if !(1..=1_000_000).contains(&w.webhook_queue) {
            return Err(ConfigError::Invalid("webhook_queue must be 1 to 1000000"));
        }
        Ok(())
    }

    fn check_turn(&self) -> Result<(), ConfigError> {
        let tls = self.tls.source()?;
        if self.turn.turn_tls.is_some() && tls.is_none() {
            return Err(ConfigError::Invalid(
                "turn_tls needs a certificate: tls_cert and tls_key, or tls_self_signed",
            ));
        }
        if [
            self.turn.turn_max_allocations,
            self.turn.turn_max_allocations_per_ip,
            self.turn.turn_max_connections,
            self.turn.turn_max_connections_per_ip,
        ]
        .contains(&0)
        {
            return Err(ConfigError::Invalid(
                "TURN allocation and connection limits must be at least 1",
            ));
        }
        if [&self.turn.turn_secret, &self.turn.external_turn_secret]
            .into_iter()
            .any(|s| s.as_ref().is_some_and(|s| s.is_empty()))
        {
            return Err(ConfigError::Invalid("a TURN secret must not be empty"));
        }
        if let Some(host) = &self.turn.turn_host
            && !crate::ice::valid_host(host)
        {
            return Err(ConfigError::Invalid(
                "turn_host must be a DNS name or an IP address",
            ));
        }
        if !(Duration::from_secs(10)..=Duration::from_secs(7 * 86_400))
            .contains(&self.turn.turn_ttl)
        {
            return Err(ConfigError::Invalid("turn_ttl must be 10 s to 7 days"));
        }
        let mut relays = false;
        for url in &self.turn.external_turn {
            if !crate::ice::valid_url(url) {
                return Err(ConfigError::Invalid(
                    "external_turn URLs must be turn:, turns: or stun: URLs of printable ASCII",
                ));
            }
            relays |= !url.starts_with("stun:");
        }
        if relays && self.turn.external_turn_secret.is_none() {
            return Err(ConfigError::Invalid(
                "external TURN URLs need external_turn_secret",
            ));
        }
        Ok(())
    }
}
