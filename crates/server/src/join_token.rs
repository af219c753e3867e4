//! Join tokens: an application that embeds the rooms signs a JWT naming the room, the
//! member's nickname and role, and a member who brings one joins as it says
//! (`docs/embedding.md`).
//!
//! Only the one algorithm the key is for is accepted (HS256 for a secret, EdDSA for an Ed25519
//! public key), so a token cannot choose how it is checked. The signature is checked before
//! anything the token says is read: a token not signed with our key is `token_invalid`,
//! whatever it claims, and only a signed one can be told apart as expired. Times are checked
//! here, against the clock the caller passes, so that tests can move it.

use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use free4chat_signal::{ErrorCode, validate_nickname, validate_room_name};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::config::TokenSettings;

/// How far the signer's clock may be from ours: a token is taken this long before its `nbf`
/// and after its `exp`.
pub const LEEWAY_SECS: u64 = 30;

/// The longest token taken, in bytes: far more than a token of these claims needs, and short
/// enough that checking one costs nothing.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// The shortest HS256 secret taken, in bytes (RFC 7518 §3.2: at least the hash's size).
pub const MIN_SECRET_BYTES: usize = 32;

/// What a member may do in its room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    #[default]
    Member,
    Moderator,
}

/// The claims of a join token. Other claims (`iat`, `iss`, `sub`, `jti`, …) are allowed and
/// ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub room: String,
    pub name: String,
    #[serde(default)]
    pub role: Role,
    /// Expiry, Unix seconds: required.
    pub exp: u64,
    /// Not before, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// What a valid token grants: its room, and the member's nickname (checked as a `join`'s) and
/// role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub room: String,
    pub name: String,
    pub moderator: bool,
}

/// Why a token was refused: a stable code and a message that tells nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRefusal {
    pub code: ErrorCode,
    pub message: &'static str,
}

const INVALID: TokenRefusal = TokenRefusal {
    code: ErrorCode::TokenInvalid,
    message: "the token is not valid",
};

const EXPIRED: TokenRefusal = TokenRefusal {
    code: ErrorCode::TokenExpired,
    message: "the token is outside its validity period",
};

/// The server's join token key, if it has one, and whether every join needs a token.
pub struct JoinTokens {
    key: Option<(DecodingKey, Validation)>,
    required: bool,
}

impl JoinTokens {
    /// No key: tokens are refused as invalid, and none is needed.
    pub fn none() -> JoinTokens {
        JoinTokens {
            key: None,
            required: false,
        }
    }

    /// From the settings, reading a secret or public key file.
    pub fn from_settings(settings: &TokenSettings) -> io::Result<JoinTokens> {
        let key = if let Some(secret) = &settings.token_secret {
            Some(hs256(secret.trim().as_bytes())?)
        } else if let Some(path) = &settings.token_secret_file {
            let text = read(path, "token secret file")?;
            Some(hs256(
                text.lines().next().unwrap_or_default().trim().as_bytes(),
            )?)
        } else if let Some(path) = &settings.token_public_key_file {
            let pem = read(path, "token public key file")?;
            let key = DecodingKey::from_ed_pem(pem.as_bytes()).map_err(|e| {
                io::Error::other(format!(
                    "token public key file {}: not an Ed25519 public key in PEM: {e}",
                    path.display()
                ))
            })?;
            Some((key, validation(Algorithm::EdDSA)))
        } else {
            None
        };
        if settings.require_token && key.is_none() {
            return Err(io::Error::other("require_token needs a token key"));
        }
        Ok(JoinTokens {
            key,
            required: settings.require_token,
        })
    }

    /// Whether a join without a token is refused.
    pub fn required(&self) -> bool {
        self.required
    }

    /// Checks `token` at `now`: signed with our key by the one algorithm it is for, within
    /// its validity period (with [`LEEWAY_SECS`]), naming a valid room and nickname.
    pub fn check(&self, token: &str, now: SystemTime) -> Result<Grant, TokenRefusal> {
        let Some((key, validation)) = &self.key else {
            return Err(INVALID);
        };
        if token.len() > MAX_TOKEN_BYTES {
            return Err(INVALID);
        }
        // The signature is checked first; what a token says is read only once it is ours.
        let claims = jsonwebtoken::decode::<Claims>(token, key, validation)
            .map_err(|_| INVALID)?
            .claims;
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if claims.exp.saturating_add(LEEWAY_SECS) < now
            || claims
                .nbf
                .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS))
        {
            return Err(EXPIRED);
        }
        validate_room_name(&claims.room).map_err(|_| INVALID)?;
        let name = validate_nickname(&claims.name).map_err(|_| INVALID)?;
        Ok(Grant {
            room: claims.room,
            name,
            moderator: claims.role == Role::Moderator,
        })
    }
}

fn hs256(secret: &[u8]) -> io::Result<(DecodingKey, Validation)> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(io::Error::other(format!(
            "the token secret must be at least {MIN_SECRET_BYTES} bytes"
        )));
    }
    let key = DecodingKey::from_secret(secret)
        .map_err(|e| io::Error::other(format!("token secret: {e}")))?;
    Ok((key, validation(Algorithm::HS256)))
}

/// Only `alg`, and no time checks of the library's: those are done in [`JoinTokens::check`]
/// against the caller's clock. `exp` is still required, by [`Claims`].
fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    v.leeway = 0;
    v
}

fn read(path: &Path, what: &str) -> io::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{what} {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jsonwebtoken::{EncodingKey, Header};

    use super::*;

    const SECRET: &str = "an-application-secret-of-32-bytes-or-more";
    const T0: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn claims() -> Claims {
        Claims {
            room: "standup".into(),
            name: "Ann".into(),
            role: Role::Member,
            exp: T0 + 600,
            nbf: None,
        }
    }

    fn sign(claims: &Claims, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    fn tokens() -> JoinTokens {
        JoinTokens::from_settings(&TokenSettings {
            token_secret: Some(SECRET.into()),
            ..TokenSettings::default()
        })
        .unwrap()
    }

    #[test]
    fn a_signed_token_grants_its_room_name_and_role() {
        let t = tokens();
        let grant = t.check(&sign(&claims(), SECRET), at(T0)).unwrap();
        assert_eq!(
            grant,
            Grant {
                room: "standup".into(),
                name: "Ann".into(),
                moderator: false
            }
        );
        let moderator = Claims {
            role: Role::Moderator,
            ..claims()
        };
        assert!(
            t.check(&sign(&moderator, SECRET), at(T0))
                .unwrap()
                .moderator
        );
    }

    #[test]
    fn expiry_and_not_before_hold_with_a_small_leeway() {
        let t = tokens();
        let token = sign(&claims(), SECRET);
        assert!(t.check(&token, at(T0 + 600 + LEEWAY_SECS)).is_ok());
        assert_eq!(
            t.check(&token, at(T0 + 600 + LEEWAY_SECS + 1)),
            Err(EXPIRED)
        );
        let later = sign(
            &Claims {
                nbf: Some(T0 + 100),
                ..claims()
            },
            SECRET,
        );
        assert_eq!(
            t.check(&later, at(T0 + 100 - LEEWAY_SECS - 1)),
            Err(EXPIRED)
        );
        assert!(t.check(&later, at(T0 + 100 - LEEWAY_SECS)).is_ok());
    }

    #[test]
    fn tokens_not_signed_with_our_key_are_invalid_whatever_they_claim() {
        let t = tokens();
        let expired = Claims { exp: 1, ..claims() };
        // Another key: invalid, and not said to be expired.
        let other = "another-secret-of-thirty-two-bytes-long";
        assert_eq!(t.check(&sign(&claims(), other), at(T0)), Err(INVALID));
        assert_eq!(t.check(&sign(&expired, other), at(T0)), Err(INVALID));
        // Unsigned ("alg": "none") and tampered tokens.
        let token = sign(&claims(), SECRET);
        let mut parts: Vec<&str> = token.split('.').collect();
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
        parts[0] = none;
        assert_eq!(t.check(&parts.join("."), at(T0)), Err(INVALID));
        let unsigned = format!("{none}.{}.", token.split('.').nth(1).unwrap());
        assert_eq!(t.check(&unsigned, at(T0)), Err(INVALID));
        for junk in [
            "",
            ".",
            "..",
            "a.b.c",
            "x",
            &"a".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert_eq!(t.check(junk, at(T0)), Err(INVALID), "{junk}");
        }
        // No key at all: every token is invalid.
        assert_eq!(JoinTokens::none().check(&token, at(T0)), Err(INVALID));
    }

    #[test]
    fn a_signed_token_naming_a_bad_room_name_or_role_is_invalid() {
        let t = tokens();
        for bad in [
            Claims {
                room: "no spaces".into(),
                ..claims()
            },
            Claims {
                name: String::new(),
                ..claims()
            },
            Claims {
                name: "x".repeat(33),
                ..claims()
            },
        ] {
            assert_eq!(
                t.check(&sign(&bad, SECRET), at(T0)),
                Err(INVALID),
                "{bad:?}"
            );
        }
        let header = Header::new(Algorithm::HS256);
        let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
        for body in [
            serde_json::json!({"room": "r", "name": "n", "role": "admin", "exp": T0 + 60}),
            serde_json::json!({"room": "r", "name": "n"}),
            serde_json::json!({"room": "r", "name": "n", "exp": "soon"}),
        ] {
            let token = jsonwebtoken::encode(&header, &body, &key).unwrap();
            assert_eq!(t.check(&token, at(T0)), Err(INVALID), "{body}");
        }
    }

    #[test]
    fn an_ed25519_public_key_checks_eddsa_tokens_and_no_other_algorithm() {
        // An Ed25519 key pair (RFC 8410's example key).
        let private = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
        let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        let dir = std::env::temp_dir().join(format!("f4c-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("public.pem");
        std::fs::write(&path, public).unwrap();
        let t = JoinTokens::from_settings(&TokenSettings {
            token_public_key_file: Some(path),
            require_token: true,
            ..TokenSettings::default()
        })
        .unwrap();
        assert!(t.required());
        let key = EncodingKey::from_ed_pem(private.as_bytes()).unwrap();
        let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims(), &key).unwrap();
        assert_eq!(t.check(&token, at(T0)).unwrap().name, "Ann");
        // An HS256 token keyed with the public key's text (the classic confusion) is refused.
        let hs = sign(&claims(), public);
        assert_eq!(t.check(&hs, at(T0)), Err(INVALID));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn short_secrets_and_a_requirement_without_a_key_are_refused_at_start() {
        let short = TokenSettings {
            token_secret: Some("short".into()),
            ..TokenSettings::default()
        };
        assert!(JoinTokens::from_settings(&short).is_err());
        let keyless = TokenSettings {
            require_token: true,
            ..TokenSettings::default()
        };
        assert!(JoinTokens::from_settings(&keyless).is_err());
        let off = JoinTokens::from_settings(&TokenSettings::default()).unwrap();
        assert!(!off.required());
    }
}
