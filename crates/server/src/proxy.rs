//! The client's address, for sign-in throttling and the log: the TCP peer's, or — only
//! when that peer is a proxy the operator named (`serve --trusted-proxy CIDR`) — the
//! address that proxy saw, from `X-Forwarded-For`.
//!
//! `X-Forwarded-For` is a list to which every proxy appends the address it was called
//! from, so only its right end can be believed. Walking it from the right, each address in
//! a trusted range is one of the operator's proxies; the first one that is not is the
//! client. What lies further left was written by the client and is ignored. Without
//! trusted proxies (the default) the header is ignored altogether: anyone can send it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;

/// A range of addresses: `10.0.0.0/8`, `fd00::/8`, or one address (`192.0.2.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CidrError(String);

impl Cidr {
    /// Whether `addr` (an IPv4-mapped IPv6 address counts as IPv4) is in the range.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(a)) => mask_v4(a, self.prefix) == net,
            (IpAddr::V6(net), IpAddr::V6(a)) => mask_v6(a, self.prefix) == net,
            _ => false,
        }
    }
}

fn mask_v4(a: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    Ipv4Addr::from(u32::from(a) & mask)
}

fn mask_v6(a: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    Ipv6Addr::from(u128::from(a) & mask)
}

fn mask(a: IpAddr, prefix: u8) -> IpAddr {
    match a {
        IpAddr::V4(v4) => IpAddr::V4(mask_v4(v4, prefix)),
        IpAddr::V6(v6) => IpAddr::V6(mask_v6(v6, prefix)),
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| {
            CidrError(format!(
                "'{s}' is not an address range: write it as 10.0.0.0/8, fd00::/8 or one address"
            ))
        })?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => {
                    return Err(CidrError(format!(
                        "'{s}': the prefix length after '/' must be a number from 0 to {max}"
                    )));
                }
            },
        };
        let masked = mask(network, prefix);
        if masked != network {
            return Err(CidrError(format!(
                "'{s}' has bits set after its first {prefix}: did you mean {masked}/{prefix}?"
            )));
        }
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`[::1]:80`, `1.2.3.4:80`).
fn hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|a| a.to_canonical())
}

/// The client's address: the TCP `peer`, unless the peer is in a `trusted` range; then the
/// right-most `X-Forwarded-For` address that is not (the trusted proxies' own addresses
/// when all are, or the last trusted one when the next entry is not an address).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |a: IpAddr| trusted.iter().any(|c| c.contains(a));
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    // A value that is not text stands for one entry that is not an address.
    let entries: Vec<Option<&str>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(text) => text.split(',').map(Some).collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect();
    for entry in entries.iter().rev() {
        let Some(addr) = entry.and_then(hop) else {
            return client;
        };
        client = addr;
        if !is_trusted(addr) {
            break;
        }
    }
    client
}

/// What sign-in throttling counts an address as: IPv4 addresses one by one, IPv6 ones by
/// their /64 (one site's network: anyone holding one holds all of it).
pub fn throttle_key(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("{}/64", mask_v6(a, 64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn ranges_parse_and_contain() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.1.2.3")));
        assert!(net.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped counts");
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(!net.contains(ip("::1")));
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(one.to_string(), "192.0.2.7/32");
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        let e = "10.0.0.1/8".parse::<Cidr>().unwrap_err().to_string();
        assert!(e.contains("did you mean 10.0.0.0/8"), "{e}");
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("proxy.local".parse::<Cidr>().is_err());
        assert!("::/129".parse::<Cidr>().is_err());
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let spoofed = xff(&["203.0.113.5"]);
        // Not from a trusted proxy: the header is ignored, whatever it says.
        assert_eq!(
            client_ip(ip("198.51.100.1"), &spoofed, &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &spoofed, &[]),
            ip("10.0.0.2"),
            "no trusted proxies: never read"
        );
        // Through the proxy: the address it saw.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &spoofed, &trusted),
            ip("203.0.113.5")
        );
        // A client's own X-Forwarded-For is left of what the proxy appended: ignored.
        let forged = xff(&["1.1.1.1, 2.2.2.2", "203.0.113.5"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &forged, &trusted),
            ip("203.0.113.5")
        );
        // Two proxies of ours in a row, one with a port.
        let chain = xff(&["1.1.1.1, 203.0.113.5, 10.9.9.9:8080"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &chain, &trusted),
            ip("203.0.113.5")
        );
        // Garbage where an address should be: the last trusted hop.
        let junk = xff(&["203.0.113.5, not-an-address, 10.9.9.9"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &junk, &trusted), ip("10.9.9.9"));
        // Everything trusted, or no header: the proxy itself.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &xff(&["10.3.3.3"]), &trusted),
            ip("10.3.3.3")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
        // IPv6 clients, bracketed with a port or not.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &xff(&["[2001:db8::7]:4711"]), &trusted),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn ipv6_addresses_throttle_by_their_64() {
        assert_eq!(throttle_key(ip("203.0.113.5")), "203.0.113.5");
        assert_eq!(throttle_key(ip("::ffff:203.0.113.5")), "203.0.113.5");
        assert_eq!(
            throttle_key(ip("2001:db8:1:2:aaaa::1")),
            throttle_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            throttle_key(ip("2001:db8:1:2::1")),
            throttle_key(ip("2001:db8:1:3::1"))
        );
    }
}
