//! Echo's gateway: SIP signalling, calls, routes and trunks, HTTP and the
//! `echo-gateway` binary.
//!
//! The protocol logic is sans-IO ([`sip::endpoint::SipEndpoint`]); the
//! tokio code around it is thin:
//!
//! ```text
//! UDP socket ─┐                                   ┌─▶ UDP / TCP writers
//! TCP framer ─┼─▶ driver: handle_message(now, …) ─┼─▶ call tasks (RTP, apps)
//! timers     ─┘   handle_timeout(now)             └─  poll_transmit / poll_event / poll_timeout
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod audit_log;
pub mod call;
pub mod caller;
pub mod config;
pub mod console;
pub mod driver;
pub mod http;
pub mod inference;
pub mod metrics;
pub mod routing;
pub mod scheduling;
pub mod server;
pub mod sip;
pub mod tcp;
pub mod voice;
