//! What a core is configured with. Everything that varies from run to run — addresses,
//! randomness, the DTLS certificate — comes in here, so a test can fix all of it.

use std::net::SocketAddr;
use std::time::Duration;

use str0m::config::DtlsCert;

#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The local UDP addresses media arrives at and leaves from; each is offered as a host
    /// candidate. A UDP datagram's `destination` must be one of them.
    pub candidates: Vec<SocketAddr>,
    /// The local addresses TCP connections are accepted on (RFC 6544); each is offered as a
    /// passive TCP host candidate, which ICE ranks below every UDP one. A TCP frame's
    /// `destination` must be one of them.
    pub tcp_candidates: Vec<SocketAddr>,
    /// A member whose media has not connected this long after their offer is dropped.
    pub connect_timeout: Duration,
    /// A member whose ICE stays disconnected this long is dropped.
    pub disconnect_grace: Duration,
    /// Audio slots per participant: each receives the room's loudest speakers on this many
    /// m-lines, negotiated once, instead of an m-line per track; 0 gives each audio track its
    /// own m-line.
    pub audio_slots: usize,
    /// The certificate every participant's DTLS presents: one per process, since making one
    /// per member costs a key generation per join for nothing.
    pub dtls_cert: DtlsCert,
    /// Seeds the generator of ICE credentials.
    pub seed: [u8; 32],
}

impl SfuConfig {
    pub fn new(candidates: Vec<SocketAddr>, dtls_cert: DtlsCert, seed: [u8; 32]) -> SfuConfig {
        SfuConfig {
            candidates,
            tcp_candidates: Vec::new(),
            connect_timeout: Duration::from_secs(30),
            disconnect_grace: Duration::from_secs(10),
            audio_slots: 0,
            dtls_cert,
            seed,
        }
    }
}

/// Makes the process's DTLS certificate, and installs str0m's crypto provider as the process
/// default (which building a session needs). The shell calls it once at start.
pub fn dtls_certificate() -> Option<DtlsCert> {
    let provider = str0m::crypto::from_feature_flags();
    let cert = provider.dtls_provider.generate_certificate();
    provider.install_process_default();
    cert
}
