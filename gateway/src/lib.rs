//! Echo's gateway: SIP signalling, calls, routes and trunks, HTTP and the
//! `echo-gateway` binary.
#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod routing;
pub mod sip;
