//! SIP (RFC 3261): messages, SDP, digest auth, transactions, dialogs, and
//! the sans-IO endpoint that ties them together. The socket loops that feed
//! the endpoint live in [`crate::driver`].

pub mod auth;
pub mod endpoint;
pub mod message;
pub mod sdp;
pub mod timer;
pub mod transaction;

use std::net::SocketAddr;

/// A transport protocol Echo listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams: Echo retransmits.
    Udp,
    /// A stream: reliable, framed by Content-Length.
    Tcp,
}

impl Transport {
    /// The name used in Via headers and `transport=` URI parameters.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// Identifies an accepted TCP connection within the driver.
pub type ConnectionId = u64;

/// Where a message came from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// The transport.
    pub transport: Transport,
    /// The peer's address.
    pub remote: SocketAddr,
    /// For TCP: the connection the message arrived on, to be reused.
    pub connection: Option<ConnectionId>,
}

impl Flow {
    /// A flow.
    pub fn new(transport: Transport, remote: SocketAddr, connection: Option<ConnectionId>) -> Self {
        Flow {
            transport,
            remote,
            connection,
        }
    }

    /// Whether the transport is reliable (no retransmissions).
    pub fn is_reliable(&self) -> bool {
        self.transport == Transport::Tcp
    }
}

/// Bytes for the driver to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub flow: Flow,
    /// The serialised message.
    pub data: Vec<u8>,
}

#[cfg(test)]
mod endpoint_tests;
