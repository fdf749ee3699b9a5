//! Who is calling: the client IP (believing `X-Forwarded-For` only from `TRUSTED_PROXIES`) and user agent.
//!
//! The client IP is the socket peer, unless the peer is inside `TRUSTED_PROXIES`; then `X-Forwarded-For` is
//! walked from the right, each entry read with or without a port (`1.2.3.4:5678`, `[v6]:443`): the first address
//! that is not a trusted proxy is the client. An entry that does not parse ends the walk, and the client is then
//! the last trusted hop (as when every entry is a trusted proxy), so a forged left-hand entry never picks the
//! budget. The same IP is recorded on sessions.

use std::net::IpAddr;

use actix_web::{HttpRequest, http::header};

use crate::{config::Settings, services::ClientInfo};

pub fn client_info(request: &HttpRequest, settings: &Settings) -> ClientInfo {
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    ClientInfo {
        ip: client_ip(request, settings)
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
        user_agent,
    }
}

/// The socket peer, unless it is a trusted proxy: then `X-Forwarded-For` is walked from the right (the hop
/// nearest to us) past trusted proxies. The first entry that is not a trusted proxy is the client. An entry
/// that does not parse (`unknown`, garbage) ends the walk, since nothing left of it can be believed: the
/// client is then the last trusted hop, as when every entry is a trusted proxy.
pub fn client_ip(request: &HttpRequest, settings: &Settings) -> Option<IpAddr> {
    let peer = request.peer_addr()?.ip();
    if !settings.is_trusted_proxy(peer) {
        return Some(peer);
    }
    let entries: Vec<&str> = request
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        let Some(address) = parse_forwarded(entry) else {
            break;
        };
        client = address;
        if !settings.is_trusted_proxy(address) {
            break;
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` entry as proxies write them: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or
/// `[2001:db8::1]:443`.
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Some(rest) = entry.strip_prefix('[') {
        let (address, _) = rest.split_once(']')?;
        return address.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(address) = entry.parse::<IpAddr>() {
        return Some(address);
    }
    let (address, port) = entry.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    address.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The key of a client's IP budget: an IPv4 address, or the /64 an IPv6 address lies in (one client is
/// handed a whole /64 and could otherwise take a fresh budget per address).
pub fn budget_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(address) => {
            let prefix = u128::from(address) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_entries_parse_with_ports_and_brackets() {
        assert_eq!(parse_forwarded(" 203.0.113.7 "), Some("203.0.113.7".parse().unwrap()));
        assert_eq!(
            parse_forwarded("203.0.113.7:5678"),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(parse_forwarded("2001:db8::1"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(
            parse_forwarded("[2001:db8::1]:443"),
            Some("2001:db8::1".parse().unwrap())
        );
        for garbage in ["unknown", "", "203.0.113.7:port", "[2001:db8::1", "1.2.3.4.5"] {
            assert_eq!(parse_forwarded(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn ipv6_clients_share_a_budget_per_64() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(budget_key(one), budget_key(other));
        assert_ne!(budget_key(one), budget_key("2001:db8:1:3::1".parse().unwrap()));
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(budget_key(v4), v4);
        assert_eq!(budget_key("::ffff:203.0.113.7".parse().unwrap()), v4);
    }
}
