//! Addresses and host names as requests and settings carry them: IP allowlists (the
//! workspace's and a token's own) and the host a request was sent to. Authentication,
//! workspace settings, token changes and Trusted CI all read them the same way.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::AppError;

/// The host a request was sent to, lower-cased, without a port.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    if host.starts_with('[') {
        return host.split(']').next().map(|h| format!("{h}]")).unwrap_or(host);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host.clone(), |(h, _)| h.to_string())
}

/// A tenant's allowlist: CIDRs or single addresses, separated by commas or new lines.
pub fn parse_allowlist(text: &str) -> Result<Vec<IpNet>, AppError> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            entry.parse::<IpNet>().or_else(|_| entry.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
                AppError::invalid(format!("{entry:?} is not an IP address or CIDR range (like 203.0.113.0/24)."))
            })
        })
        .collect()
}

pub fn allowlist_admits(allowlist: &[IpNet], ip: Option<IpAddr>) -> bool {
    allowlist.is_empty() || ip.is_some_and(|ip| allowlist.iter().any(|net| net.contains(&ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_case_and_port() {
        assert_eq!(normalize_host("QA.Example.com:8443"), "qa.example.com");
        assert_eq!(normalize_host("qa.example.com"), "qa.example.com");
        assert_eq!(normalize_host("[::1]:3000"), "[::1]");
    }

    #[test]
    fn allowlists_parse_and_admit() {
        let list = parse_allowlist("10.0.0.0/8, 192.168.1.7\n2001:db8::/32").unwrap();
        assert_eq!(list.len(), 3);
        assert!(allowlist_admits(&list, Some("10.1.2.3".parse().unwrap())));
        assert!(allowlist_admits(&list, Some("192.168.1.7".parse().unwrap())));
        assert!(!allowlist_admits(&list, Some("192.168.1.8".parse().unwrap())));
        assert!(!allowlist_admits(&list, None));
        assert!(allowlist_admits(&[], None));
        assert!(parse_allowlist("10.0.0.0/33").is_err());
        assert!(parse_allowlist("nonsense").is_err());
    }
}
