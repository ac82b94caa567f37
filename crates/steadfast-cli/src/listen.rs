//! Addresses as `serve --listen` and `proxy --listen/--to` take them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// `PORT` (on 127.0.0.1) or `HOST:PORT` with an IP address.
pub(crate) fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse().map_err(|_| {
        format!("{text:?} is not a port or an IP address with a port (try 9001 or 127.0.0.1:9001)")
    })
}

/// The first address `HOST:PORT` resolves to.
pub(crate) async fn resolve(target: &str) -> Result<SocketAddr, String> {
    let mut addrs = tokio::net::lookup_host(target)
        .await
        .map_err(|e| format!("cannot resolve {target:?} (expected HOST:PORT): {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{target:?} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_listens_on_loopback() {
        assert_eq!(
            parse_listen("9001"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 9001)))
        );
        assert_eq!(
            parse_listen("0.0.0.0:80"),
            Ok(SocketAddr::from(([0, 0, 0, 0], 80)))
        );
        assert!(parse_listen("localhost").is_err());
    }
}
