//! Long-term credentials: who a request is from, or a challenge with a fresh nonce.

use std::time::Instant;

use stun_types::attribute::{ErrorCode, MessageIntegrity, Nonce, Realm, Username};
use stun_types::message::{IntegrityAlgorithm, IntegrityKey, LongTermKeyCredentials, Message};
use stun_types::prelude::*;

use crate::auth::{self, NonceCheck};

use super::answer::Req;
use super::{Engine, FiveTuple};

/// A request that passed authentication.
pub(super) struct Authed {
    pub(super) username: String,
    pub(super) key: IntegrityKey,
}

impl Engine {
    /// Long-term credentials (RFC 8489 §9.2.4) with the password derived from the secret.
    /// Answers and returns `None` when the request does not pass.
    pub(super) fn authenticate(
        &mut self,
        tuple: FiveTuple,
        msg: &Message,
        req: Req,
        now: Instant,
    ) -> Option<Authed> {
        if !msg.has_attribute(MessageIntegrity::TYPE) {
            self.challenge(tuple, req, ErrorCode::UNAUTHORIZED, now);
            return None;
        }
        let (Ok(username), Ok(realm), Ok(nonce)) = (
            msg.attribute::<Username>(),
            msg.attribute::<Realm>(),
            msg.attribute::<Nonce>(),
        ) else {
            self.stats.malformed += 1;
            self.error(tuple, req, ErrorCode::BAD_REQUEST, None);
            return None;
        };
        if self
            .nonces
            .check(nonce.nonce(), tuple.client.ip(), self.secs(now))
            == NonceCheck::Stale
        {
            self.stats.refused_auth += 1;
            self.challenge(tuple, req, ErrorCode::STALE_NONCE, now);
            return None;
        }
        let username = username.username();
        let unexpired = auth::username_expiry(username).is_some_and(|e| e >= self.unix(now));
        let fresh = (unexpired || self.renewed_for(username, &tuple, now))
            && !self.is_revoked(username, now);
        if realm.realm() != self.cfg.realm || !fresh {
            self.stats.refused_auth += 1;
            self.challenge(tuple, req, ErrorCode::UNAUTHORIZED, now);
            return None;
        }
        let password = auth::password(&self.cfg.secret, username);
        let key =
            LongTermKeyCredentials::new(username.to_owned(), password, self.cfg.realm.clone())
                .make_key(IntegrityAlgorithm::Sha1);
        if msg.validate_integrity_with_key(&key).is_err() {
            self.stats.refused_auth += 1;
            self.challenge(tuple, req, ErrorCode::UNAUTHORIZED, now);
            return None;
        }
        Some(Authed {
            username: username.to_owned(),
            key,
        })
    }
}
