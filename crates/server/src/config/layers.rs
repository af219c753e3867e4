//! The layers: the command line and the environment (clap), over the file, over the
//! declared defaults.

use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use super::{Config, ConfigError, file};

impl Config {
    /// Reads `args` (the program name first) and this process's environment, then the file
    /// they name, and checks the result.
    pub fn from_args<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Config::command().try_get_matches_from(args)?;
        Config::from_matches(&matches)
    }

    /// Completes what clap read from the command line and environment with the file it names,
    /// and checks the result.
    pub fn from_matches(matches: &ArgMatches) -> Result<Config, ConfigError> {
        let config = match matches.get_one::<PathBuf>("config") {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                Config::layered(matches, Some((path, &text)))?
            }
            None => Config::layered(matches, None)?,
        };
        config.check()?;
        Ok(config)
    }

    /// The command line and environment over the file's text over the defaults, unchecked.
    pub(super) fn layered(
        matches: &ArgMatches,
        file: Option<(&Path, &str)>,
    ) -> Result<Config, ConfigError> {
        let mut from_args = Config::from_arg_matches(matches)?;
        let given_by_args = |id: &str| {
            matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        let Some((path, text)) = file else {
            from_args.media.media_realtime_asked = given_by_args("media_realtime_priority");
            return Ok(from_args);
        };
        let parse_error = |source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        };
        let combine_error = |e: &dyn std::fmt::Display| ConfigError::Combine {
            path: path.to_owned(),
            message: e.to_string(),
        };
        // Checked key by key first: that refuses unknown keys and wrong types, naming the
        // line. Then the keys the file sets replace what clap took from the defaults.
        file::check(text).map_err(parse_error)?;
        let in_file: toml::Table = toml::from_str(text).map_err(parse_error)?;
        let mut merged = toml::Table::try_from(&from_args).map_err(|e| combine_error(&e))?;
        for (key, value) in &in_file {
            if !given_by_args(key) {
                merged.insert(key.clone(), value.clone());
            }
        }
        let mut merged: Config = merged.try_into().map_err(|e| combine_error(&e))?;
        merged.config = from_args.config;
        merged.media.media_realtime_asked = given_by_args("media_realtime_priority")
            || in_file.contains_key("media_realtime_priority");
        Ok(merged)
    }
}
