//! Who is calling: the client IP (believing `X-Forwarded-For` only from `TRUSTED_PROXIES`) and user agent.

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

/// The socket peer, unless it is a trusted proxy: then the right-most `X-Forwarded-For` address that is not
/// itself a trusted proxy (or the left-most when all are).
pub fn client_ip(request: &HttpRequest, settings: &Settings) -> Option<IpAddr> {
    let peer = request.peer_addr()?.ip();
    if !settings.is_trusted_proxy(peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = request
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|item| item.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|address| !settings.is_trusted_proxy(**address))
        .or_else(|| forwarded.first())
        .copied()
        .or(Some(peer))
}
