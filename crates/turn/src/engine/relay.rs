//! Relaying: a client's data to our media sockets, and their datagrams back to the client.

use std::net::SocketAddr;
use std::time::Instant;

use stun_types::message::{Message, MessageClass, TransactionId};
use stun_types::prelude::*;
use turn_types::attribute::{Data, XorPeerAddress};
use turn_types::message::DATA;

use crate::framing::{channel_data, parse_channel_data};

use super::answer::build;
use super::{Engine, FiveTuple, Output, RelayId};

/// Largest payload relayed; keeps every message we write under STUN's 16-bit length.
const MAX_PAYLOAD: usize = 65_000;

impl Engine {
    /// Relays a payload from a client to a peer, if the peer is one of ours and permitted.
    fn relay_to_peer(&mut self, tuple: FiveTuple, peer: SocketAddr, data: &[u8], now: Instant) {
        let Some(a) = self.active(&tuple, now) else {
            return;
        };
        let relay = a.relay;
        let permitted = a.permitted(peer.ip(), now);
        match self.to_local.get(&peer) {
            Some(&to) if permitted => self.out.push_back(Output::ToPeer {
                relay,
                to,
                data: data.to_vec(),
            }),
            _ => self.stats.refused_peer += 1,
        }
    }

    pub(super) fn handle_send(&mut self, tuple: FiveTuple, msg: &Message, now: Instant) {
        let (Ok(peer), Ok(data)) = (msg.attribute::<XorPeerAddress>(), msg.attribute::<Data>())
        else {
            self.stats.malformed += 1;
            return;
        };
        let peer = peer.addr(msg.transaction_id());
        self.relay_to_peer(tuple, peer, data.data(), now);
    }

    pub(super) fn handle_channel_data(&mut self, tuple: FiveTuple, data: &[u8], now: Instant) {
        let Some((number, payload)) = parse_channel_data(data) else {
            self.stats.malformed += 1;
            return;
        };
        let Some(peer) = self
            .active(&tuple, now)
            .and_then(|a| a.channel_by_number(number, now))
            .map(|c| c.peer)
        else {
            return;
        };
        self.relay_to_peer(tuple, peer, payload, now);
    }

    /// A datagram arrived on a relay socket from `from`: relayed to the client only if `from`
    /// is one of our media sockets' local addresses and the client permitted its advertised
    /// address, which is what the client is told it came from.
    pub(crate) fn handle_peer(
        &mut self,
        relay: RelayId,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
    ) {
        let Some(&tuple) = self.relays.get(&relay) else {
            return;
        };
        let Some(a) = self.active(&tuple, now) else {
            return;
        };
        let peer = match self.to_advertised.get(&from) {
            Some(&peer) if a.permitted(peer.ip(), now) => peer,
            _ => {
                self.stats.refused_peer += 1;
                return;
            }
        };
        if data.len() > MAX_PAYLOAD {
            self.stats.malformed += 1;
            return;
        }
        let msg = match a.channel_by_peer(peer, now) {
            Some(c) => channel_data(c.number, data, tuple.is_stream()),
            None => {
                let tx = TransactionId::generate();
                build(MessageClass::Indication, DATA, tx, None, false, |w| {
                    w.add_attribute(&XorPeerAddress::new(peer, tx))?;
                    w.add_attribute(&Data::new(data))
                })
            }
        };
        self.send(tuple, msg);
    }
}
