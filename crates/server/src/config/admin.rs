//! The admin API's listener and token (`docs/admin.md`). A section of its own beside those of
//! `sections.rs`, gathered into [`Config`] the same way.
//!
//! [`Config`]: super::Config

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use serde::{Deserialize, Serialize};

/// The admin API and console, on a listener of their own (`docs/admin.md`).
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct AdminSettings {
    /// Address of the admin API and console (off when unset). Keep it on loopback, or behind
    /// a firewall: it can close rooms and remove members. Needs --admin-token or
    /// --admin-token-file.
    #[arg(
        long,
        env = "FREE4CHAT_ADMIN_LISTEN",
        value_name = "ADDR:PORT",
        help_heading = "Admin"
    )]
    pub admin_listen: Option<SocketAddr>,

    /// The bearer token the admin API asks for (`Authorization: Bearer TOKEN`), at least 16
    /// characters.
    #[arg(
        long,
        env = "FREE4CHAT_ADMIN_TOKEN",
        value_name = "SECRET",
        hide_env_values = true,
        help_heading = "Admin"
    )]
    pub admin_token: Option<String>,

    /// A file holding the admin token (its first line), instead of --admin-token.
    #[arg(
        long,
        env = "FREE4CHAT_ADMIN_TOKEN_FILE",
        value_name = "FILE",
        help_heading = "Admin"
    )]
    pub admin_token_file: Option<PathBuf>,
}

impl Default for AdminSettings {
    fn default() -> AdminSettings {
        super::declared_defaults()
    }
}
