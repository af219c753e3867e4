//! The Janus WebRTC server (VideoRoom plugin, HTTP API) as a load target.

use std::net::IpAddr;

use crate::target::{Member, Role};

/// A Janus server reached at its HTTP API.
pub struct Janus {
    pub url: String,
}

/// One member's Janus sessions and media.
pub struct JanusMember;

impl JanusMember {
    pub async fn leave(self) {}
}

impl Janus {
    pub fn new(url: &str) -> Janus {
        Janus {
            url: url.to_owned(),
        }
    }

    pub async fn join(
        &self,
        _room: usize,
        _index: usize,
        _role: Role,
        _local_ip: IpAddr,
    ) -> Result<Member, String> {
        Err(format!(
            "the Janus target at {} is not available yet",
            self.url
        ))
    }

    pub async fn room_complete(&self, _room: usize, _members: &mut [Member]) -> Result<(), String> {
        Ok(())
    }
}
