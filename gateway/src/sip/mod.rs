//! SIP (RFC 3261): messages, SDP, digest auth, transactions, dialogs.
pub mod sdp;
