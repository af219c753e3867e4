//! Join tokens for applications that embed free4chat (`docs/embedding.md`): the key their
//! tokens are checked with, and whether a join needs one. A section of its own beside those
//! of `sections.rs`, gathered into [`Config`] the same way.
//!
//! [`Config`]: super::Config

use std::path::PathBuf;

use clap::Args;
use serde::{Deserialize, Serialize};

/// Join tokens signed by an application that embeds the rooms (`docs/embedding.md`).
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenSettings {
    /// The shared secret join tokens are signed with (HS256), at least 32 bytes.
    #[arg(
        long,
        env = "FREE4CHAT_TOKEN_SECRET",
        value_name = "SECRET",
        hide_env_values = true,
        help_heading = "Join tokens"
    )]
    pub token_secret: Option<String>,

    /// A file holding the join tokens' secret (its first line), instead of --token-secret.
    #[arg(
        long,
        env = "FREE4CHAT_TOKEN_SECRET_FILE",
        value_name = "FILE",
        help_heading = "Join tokens"
    )]
    pub token_secret_file: Option<PathBuf>,

    /// A PEM file holding the Ed25519 public key join tokens are signed for (EdDSA), instead
    /// of a secret.
    #[arg(
        long,
        env = "FREE4CHAT_TOKEN_PUBLIC_KEY_FILE",
        value_name = "FILE",
        help_heading = "Join tokens"
    )]
    pub token_public_key_file: Option<PathBuf>,

    /// Accept only joins that bring a valid token (a key is then needed).
    #[arg(
        long,
        env = "FREE4CHAT_REQUIRE_TOKEN",
        value_name = "BOOL",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
        help_heading = "Join tokens"
    )]
    pub require_token: bool,
}

impl Default for TokenSettings {
    fn default() -> TokenSettings {
        super::declared_defaults()
    }
}
