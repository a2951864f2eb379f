//! What the baseline servers of the benchmark share: where they listen.
//!
//! The binaries here exist only to be measured beside `api`; the real
//! service's code is in `crates/api`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Context;

/// The address a baseline listens on, read as the api reads it: `PORT`
/// (default 8000) and `BIND_ADDRESS` (default 127.0.0.1).
///
/// # Errors
///
/// Fails when either variable does not parse.
pub fn listen_address() -> anyhow::Result<SocketAddr> {
    let port = match std::env::var("PORT") {
        Ok(port) => port.parse().context("PORT is not a port number")?,
        Err(_) => 8000,
    };
    let ip = match std::env::var("BIND_ADDRESS") {
        Ok(ip) => ip.parse().context("BIND_ADDRESS is not an IP address")?,
        Err(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    Ok(SocketAddr::new(ip, port))
}
