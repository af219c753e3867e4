//! Configuration: command line, then environment, then a TOML file, then defaults.
//!
//! Every setting is declared once, as a field of one of [`Config`]'s sections
//! (`sections.rs`): its clap attributes give the option, its environment variable and its
//! default (the one place defaults live; `--help` shows them), and serde reads the same field
//! from the TOML file under the field's name. clap resolves the command line over the
//! environment over the defaults and tells, through [`ArgMatches::value_source`], which values
//! it took from neither of the first two: those the file may set (`layers.rs`). The file is
//! checked key by key before it is merged (`file.rs`), and the result as a whole
//! (`check.rs`).
//!
//! [`ArgMatches::value_source`]: clap::ArgMatches::value_source

use std::path::PathBuf;

use clap::{Args, FromArgMatches, Parser};
use serde::{Deserialize, Serialize};

pub mod admin;
mod check;
mod duration;
mod file;
mod layers;
pub mod protection;
pub mod sections;
#[cfg(test)]
mod tests;
pub mod tokens;
pub mod tracing;

pub use admin::AdminSettings;
pub use protection::ProtectionSettings;
pub use sections::{
    ClusterSettings, ConnectionSettings, GeneralSettings, LimitSettings, MediaSettings,
    TlsSettings, TurnSettings, WebhookSettings,
};
pub use tokens::TokenSettings;
pub use tracing::TracingSettings;

/// free4chat: voice chat rooms in the browser, from one binary.
///
/// Every option can also be set in the environment (the variable named beside it) or in a
/// TOML file given with --config (the same names in snake_case, e.g. `media_port = 40000`).
/// The command line wins over the environment, which wins over the file. Durations are
/// written like `30s`, `500ms` or `2m`; a bare number is seconds.
// The sections are flattened on both sides: one option or file key per field, none named
// after its section. serde cannot refuse unknown keys through flattened structs, so the file
// is checked against the sections' keys before it is read (`file.rs`).
#[derive(Debug, Clone, PartialEq, Parser, Serialize, Deserialize)]
#[command(name = "free4chat", version, about, long_about)]
pub struct Config {
    /// TOML configuration file.
    // Not a key of the file itself: a file naming another file would be refused as unknown.
    #[arg(long, env = "FREE4CHAT_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    #[serde(flatten)]
    pub general: GeneralSettings,

    #[command(flatten)]
    #[serde(flatten)]
    pub media: MediaSettings,

    #[command(flatten)]
    #[serde(flatten)]
    pub limits: LimitSettings,

    #[command(flatten)]
    #[serde(flatten)]
    pub connections: ConnectionSettings,

    #[command(flatten)]
    #[serde(flatten)]
    pub protection: ProtectionSettings,

    #[command(flatten)]
    #[serde(flatten)]
    pub tls: TlsSettings,

    #[command(flatten)]
    #[serde(flatten)]
    pub turn: TurnSettings,

    #[command(flatten)]
    #[serde(flatten)]
    pub cluster: ClusterSettings,

    #[command(flatten)]
    #[serde(flatten)]
    pub webhooks: WebhookSettings,

    #[command(flatten)]
    #[serde(flatten)]
    pub admin: AdminSettings,

    #[command(flatten)]
    #[serde(flatten)]
    pub tokens: TokenSettings,

    #[command(flatten)]
    #[serde(flatten)]
    pub tracing: TracingSettings,
}

impl Default for Config {
    /// The defaults declared on the options: the command line read with no arguments and no
    /// environment.
    fn default() -> Config {
        declared_defaults()
    }
}

/// The options of `S` read from an empty command line with no environment: their declared
/// defaults.
fn declared_defaults<S: Args + FromArgMatches>() -> S {
    let command = S::augment_args(clap::Command::new("free4chat")).mut_args(|arg| arg.env(None));
    // Only the declared defaults are parsed here, and a unit test parses them all, so a
    // failure is a mistake in this module, never in anyone's input.
    let matches = command
        .try_get_matches_from(["free4chat"])
        .expect("the declared defaults parse");
    S::from_arg_matches(&matches).expect("the declared defaults make a configuration")
}

/// Where HTTPS gets its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Args(#[from] clap::Error),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("cannot combine {path} with the command line and environment: {message}")]
    Combine { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(&'static str),
}
