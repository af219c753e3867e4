//! The file's keys and values, checked before they are merged.
//!
//! serde cannot refuse unknown keys through the flattened sections of [`Config`], and reads
//! flattened values only after the whole file, where an error can no longer name its line.
//! So each key of the file is looked up among the sections' options (the field names are the
//! option ids), and its value is read at once by the section that holds it: an unknown key or
//! a wrong value is refused where it stands in the file, as one struct reading it would.
//!
//! [`Config`]: super::Config

use std::fmt;

use clap::Args;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor};

use super::admin::AdminSettings;
use super::protection::ProtectionSettings;
use super::sections::{
    ClusterSettings, ConnectionSettings, GeneralSettings, LimitSettings, MediaSettings,
    TlsSettings, TurnSettings, WebhookSettings,
};
use super::tokens::TokenSettings;
use super::tracing::TracingSettings;

/// Refuses the first unknown key or wrong value of the file's `text`, or its bad syntax.
pub(super) fn check(text: &str) -> Result<(), toml::de::Error> {
    toml::from_str::<CheckedFile>(text).map(drop)
}

/// A section of the configuration, as the file sees it: the keys it holds, and a way to read
/// one of them.
#[derive(Clone, Copy)]
enum Section {
    General,
    Media,
    Limits,
    Connections,
    Protection,
    Tls,
    Turn,
    Cluster,
    Webhooks,
    Admin,
    Tokens,
    Tracing,
}

impl Section {
    const ALL: [Section; 12] = [
        Section::General,
        Section::Media,
        Section::Limits,
        Section::Connections,
        Section::Protection,
        Section::Tls,
        Section::Turn,
        Section::Cluster,
        Section::Webhooks,
        Section::Admin,
        Section::Tokens,
        Section::Tracing,
    ];

    /// The file's keys this section holds, in the order of its fields.
    fn keys(self) -> Vec<String> {
        fn ids<S: Args>() -> Vec<String> {
            S::augment_args(clap::Command::new("free4chat"))
                .get_arguments()
                .map(|arg| arg.get_id().to_string())
                .collect()
        }
        match self {
            Section::General => ids::<GeneralSettings>(),
            Section::Media => ids::<MediaSettings>(),
            Section::Limits => ids::<LimitSettings>(),
            Section::Connections => ids::<ConnectionSettings>(),
            Section::Protection => ids::<ProtectionSettings>(),
            Section::Tls => ids::<TlsSettings>(),
            Section::Turn => ids::<TurnSettings>(),
            Section::Cluster => ids::<ClusterSettings>(),
            Section::Webhooks => ids::<WebhookSettings>(),
            Section::Admin => ids::<AdminSettings>(),
            Section::Tokens => ids::<TokenSettings>(),
            Section::Tracing => ids::<TracingSettings>(),
        }
    }

    /// Reads `key`'s value from `value` as this section's field of that name.
    fn read<'de, D: Deserializer<'de>>(self, key: String, value: D) -> Result<(), D::Error> {
        let entry = OneEntry {
            key: Some(key),
            value: Some(value),
        };
        match self {
            Section::General => GeneralSettings::deserialize(entry).map(drop),
            Section::Media => MediaSettings::deserialize(entry).map(drop),
            Section::Limits => LimitSettings::deserialize(entry).map(drop),
            Section::Connections => ConnectionSettings::deserialize(entry).map(drop),
            Section::Protection => ProtectionSettings::deserialize(entry).map(drop),
            Section::Tls => TlsSettings::deserialize(entry).map(drop),
            Section::Turn => TurnSettings::deserialize(entry).map(drop),
            Section::Cluster => ClusterSettings::deserialize(entry).map(drop),
            Section::Webhooks => WebhookSettings::deserialize(entry).map(drop),
            Section::Admin => AdminSettings::deserialize(entry).map(drop),
            Section::Tokens => TokenSettings::deserialize(entry).map(drop),
            Section::Tracing => TracingSettings::deserialize(entry).map(drop),
        }
    }

    /// The section holding `key`.
    fn of(key: &str) -> Option<Section> {
        Section::ALL
            .into_iter()
            .find(|section| section.keys().iter().any(|k| k == key))
    }
}

/// The file, read only to be checked.
struct CheckedFile;

impl<'de> Deserialize<'de> for CheckedFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CheckedFile, D::Error> {
        deserializer.deserialize_map(CheckedFile)
    }
}

impl<'de> Visitor<'de> for CheckedFile {
    type Value = CheckedFile;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a table of settings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CheckedFile, A::Error> {
        while let Some((key, section)) = map.next_key_seed(KnownKey)? {
            map.next_value_seed(SettingValue { key, section })?;
        }
        Ok(CheckedFile)
    }
}

/// A key of the file, refused unless a section holds it. Refused while it is read, so that
/// the error points at the key.
struct KnownKey;

impl<'de> DeserializeSeed<'de> for KnownKey {
    type Value = (String, Section);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let key = String::deserialize(deserializer)?;
        match Section::of(&key) {
            Some(section) => Ok((key, section)),
            None => {
                // serde's own words for an unknown field, for the keys of every section.
                let known: Vec<String> = Section::ALL
                    .into_iter()
                    .flat_map(Section::keys)
                    .map(|k| format!("`{k}`"))
                    .collect();
                Err(de::Error::custom(format_args!(
                    "unknown field `{key}`, expected one of {}",
                    known.join(", ")
                )))
            }
        }
    }
}

/// A key's value, read by its section.
struct SettingValue {
    key: String,
    section: Section,
}

impl<'de> DeserializeSeed<'de> for SettingValue {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.section.read(self.key, deserializer)
    }
}

/// One key and its value still to be read, as a map: what a section reads the setting from.
struct OneEntry<D> {
    key: Option<String>,
    value: Option<D>,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for OneEntry<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        visitor.visit_map(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de, D: Deserializer<'de>> MapAccess<'de> for OneEntry<D> {
    type Error = D::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, D::Error> {
        self.key
            .take()
            .map(|key| seed.deserialize(key.into_deserializer()))
            .transpose()
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, D::Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(value),
            None => Err(de::Error::custom("a value asked for twice")),
        }
    }
}
