//! STUN/TURN requests and response checks shared by the unit tests and the integration
//! tests (which include this file with `#[path]`).

use std::net::SocketAddr;
use stun_types::attribute::{ErrorCode, Nonce, Realm, Username};
use stun_types::message::{
    IntegrityAlgorithm, LongTermKeyCredentials, Message, MessageClass, MessageType,
    MessageWriteVec, Method, TransactionId,
};
use stun_types::prelude::*;

use turn_types::attribute::{Data, RequestedTransport, XorPeerAddress};
use turn_types::message::SEND;

/// The realm every test server uses.
pub const REALM: &str = "free4chat";

#[derive(Clone)]
pub struct Creds {
    pub user: String,
    pub pass: String,
    pub nonce: String,
}

/// REQUESTED-TRANSPORT: UDP.
pub fn udp_transport(w: &mut MessageWriteVec, _: TransactionId) {
    w.add_attribute(&RequestedTransport::new(RequestedTransport::UDP))
        .unwrap()
}

/// A request of `method` with `attrs`, signed with `creds` if given.
pub fn request(
    method: Method,
    creds: Option<&Creds>,
    attrs: impl FnOnce(&mut MessageWriteVec, TransactionId),
) -> Vec<u8> {
    let tx = TransactionId::generate();
    let mut w = Message::builder(
        MessageType::from_class_method(MessageClass::Request, method),
        tx,
        MessageWriteVec::new(),
    );
    attrs(&mut w, tx);
    if let Some(c) = creds {
        w.add_attribute(&Username::new(&c.user).unwrap()).unwrap();
        w.add_attribute(&Realm::new(REALM).unwrap()).unwrap();
        w.add_attribute(&Nonce::new(&c.nonce).unwrap()).unwrap();
        let key = LongTermKeyCredentials::new(c.user.clone(), c.pass.clone(), REALM.into());
        w.add_message_integrity(&key.into(), IntegrityAlgorithm::Sha1)
            .unwrap();
    }
    w.finish()
}

/// 0 for a success, else the error code; and the nonce of an error, if any.
pub fn error_of(data: &[u8]) -> (u16, Option<String>) {
    let msg = Message::from_bytes(data).unwrap();
    match msg.class() {
        MessageClass::Success => (0, None),
        MessageClass::Error => (
            msg.attribute::<ErrorCode>().unwrap().code(),
            msg.attribute::<Nonce>().ok().map(|n| n.nonce().to_owned()),
        ),
        other => panic!("not a response: {other:?}"),
    }
}

/// 0 for a success response, else its error code.
pub fn code_of(data: &[u8]) -> u16 {
    error_of(data).0
}

/// A Send indication of `payload` to `peer`.
pub fn send_indication(peer: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let tx = TransactionId::generate();
    let mut w = Message::builder(
        MessageType::from_class_method(MessageClass::Indication, SEND),
        tx,
        MessageWriteVec::new(),
    );
    w.add_attribute(&XorPeerAddress::new(peer, tx)).unwrap();
    w.add_attribute(&Data::new(payload)).unwrap();
    w.finish()
}
