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

/// The address `HOST:PORT` resolves to: its first IPv4 one if it has one
/// (`localhost` then means 127.0.0.1, where `serve` listens by default).
pub(crate) async fn resolve(target: &str) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(target)
        .await
        .map_err(|e| format!("cannot resolve {target:?} (expected HOST:PORT): {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
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

    #[tokio::test]
    async fn localhost_resolves_to_ipv4_first() {
        let addr = resolve("localhost:9001").await.expect("resolves");
        assert_eq!(addr, SocketAddr::from(([127, 0, 0, 1], 9001)));
        assert!(resolve("no port here").await.is_err());
    }
}
