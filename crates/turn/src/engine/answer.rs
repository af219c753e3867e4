//! Answering requests: writing STUN responses, errors and challenges to a client.

use std::time::Instant;

use stun_types::attribute::{ErrorCode, Nonce, Realm};
use stun_types::message::{
    IntegrityAlgorithm, IntegrityKey, Message, MessageClass, MessageType, MessageWriteVec, Method,
    StunWriteError, TransactionId,
};
use stun_types::prelude::*;

use super::{Engine, FiveTuple, Output};

/// What a request needs to be answered.
#[derive(Clone, Copy)]
pub(super) struct Req {
    pub(super) method: Method,
    pub(super) tx: TransactionId,
    pub(super) fingerprint: bool,
}

/// Builds a message; `None` if it cannot be written (never for what the engine writes).
pub(super) fn build(
    class: MessageClass,
    method: Method,
    tx: TransactionId,
    key: Option<&IntegrityKey>,
    fingerprint: bool,
    attrs: impl FnOnce(&mut MessageWriteVec) -> Result<(), StunWriteError>,
) -> Option<Vec<u8>> {
    let mut w = Message::builder(
        MessageType::from_class_method(class, method),
        tx,
        MessageWriteVec::with_capacity(128),
    );
    attrs(&mut w).ok()?;
    if let Some(key) = key {
        w.add_message_integrity_with_key(key, IntegrityAlgorithm::Sha1)
            .ok()?;
    }
    if fingerprint {
        w.add_fingerprint().ok()?;
    }
    Some(w.finish())
}

impl Engine {
    pub(super) fn send(&mut self, tuple: FiveTuple, data: Option<Vec<u8>>) {
        if let Some(data) = data {
            self.out.push_back(Output::ToClient { tuple, data });
        }
    }

    /// Answers `req` with a success response that carries no attribute.
    pub(super) fn succeed(&mut self, tuple: FiveTuple, req: Req, key: Option<&IntegrityKey>) {
        let msg = build(
            MessageClass::Success,
            req.method,
            req.tx,
            key,
            req.fingerprint,
            |_| Ok(()),
        );
        self.send(tuple, msg);
    }

    pub(super) fn error(
        &mut self,
        tuple: FiveTuple,
        req: Req,
        code: u16,
        key: Option<&IntegrityKey>,
    ) {
        let msg = build(
            MessageClass::Error,
            req.method,
            req.tx,
            key,
            req.fingerprint,
            |w| w.add_attribute(&ErrorCode::builder(code).build()?),
        );
        self.send(tuple, msg);
    }

    /// 401 or 438 with our realm and a fresh nonce.
    pub(super) fn challenge(&mut self, tuple: FiveTuple, req: Req, code: u16, now: Instant) {
        let nonce = self.nonces.issue(tuple.client.ip(), self.secs(now));
        let realm = &self.cfg.realm;
        let msg = build(
            MessageClass::Error,
            req.method,
            req.tx,
            None,
            req.fingerprint,
            |w| {
                w.add_attribute(&ErrorCode::builder(code).build()?)?;
                w.add_attribute(&Realm::new(realm)?)?;
                w.add_attribute(&Nonce::new(&nonce)?)
            },
        );
        self.send(tuple, msg);
    }
}
