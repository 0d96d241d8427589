//! Probe kinds that speak a protocol, one file each.

pub mod sip;
pub mod smtp;
pub mod tls;
