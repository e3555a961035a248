//! OIDC issuers' signing keys: the discovery document (`/.well-known/openid-configuration`)
//! names the JWKS, which is cached as long as its `Cache-Control: max-age` says (one
//! minute to a day; five minutes without one). An unknown `kid` fetches again — at most
//! once per `min_refetch` per issuer, so a stream of made-up `kid`s costs the issuer one
//! request a minute. Each issuer has its own lock, so a slow or huge issuer only delays
//! exchanges for itself; fetches have a timeout and a size limit.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde::Deserialize;
use url::{Host, Url};

use crate::error::AppError;

const DISCOVERY_MAX: usize = 64 * 1024;
const JWKS_MAX: usize = 256 * 1024;
const MAX_AGE_DEFAULT: Duration = Duration::from_secs(300);
const MAX_AGE_RANGE: (Duration, Duration) = (Duration::from_secs(60), Duration::from_secs(86_400));

#[derive(Default)]
struct Cached {
    keys: Option<JwkSet>,
    fresh_until: Option<Instant>,
    last_fetch: Option<Instant>,
}

pub struct Issuers {
    client: reqwest::Client,
    min_refetch: Duration,
    insecure_loopback: bool,
    by_issuer: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Cached>>>>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// `max-age` of a `Cache-Control` header, within the range above.
fn max_age(headers: &reqwest::header::HeaderMap) -> Duration {
    let age = headers
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').find_map(|d| d.trim().strip_prefix("max-age=")?.parse::<u64>().ok()))
        .map_or(MAX_AGE_DEFAULT, Duration::from_secs);
    age.clamp(MAX_AGE_RANGE.0, MAX_AGE_RANGE.1)
}

impl Issuers {
    /// `insecure_loopback`: `QAHUB_OIDC_INSECURE_LOOPBACK` (see [`check_issuer`]).
    pub fn new(timeout: Duration, min_refetch: Duration, insecure_loopback: bool) -> Self {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(Screened { insecure_loopback }))
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("qahub/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with rustls");
        Issuers { client, min_refetch, insecure_loopback, by_issuer: Mutex::default() }
    }

    /// The key `kid` of `issuer` (its only key when the token names none), fetching the
    /// keys when the cache is stale or does not have it and the last fetch is old enough.
    pub async fn key(&self, issuer: &str, kid: Option<&str>) -> Result<Option<Jwk>, String> {
        let cached = {
            let mut map = self.by_issuer.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() > 1000 {
                map.clear(); // issuers come from policies; this bounds a misuse, not real use
            }
            map.entry(issuer.to_string()).or_default().clone()
        };
        let mut cached = cached.lock().await;
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => Some(set.keys[0].clone()),
            None => None,
        };
        let now = Instant::now();
        let stale = cached.fresh_until.is_none_or(|at| now >= at);
        let missing = cached.keys.as_ref().and_then(find).is_none();
        let may_fetch = cached.last_fetch.is_none_or(|at| now.duration_since(at) >= self.min_refetch);
        if (stale || missing) && may_fetch {
            cached.last_fetch = Some(now);
            match self.fetch(issuer).await {
                Ok((keys, age)) => {
                    cached.keys = Some(keys);
                    cached.fresh_until = Some(now + age);
                }
                // Keys fetched before still verify while the issuer is unreachable.
                Err(e) if cached.keys.is_none() => return Err(e),
                Err(e) => {
                    tracing::warn!(issuer, error = %e, "could not refresh an issuer's keys; using the cached ones")
                }
            }
        }
        Ok(cached.keys.as_ref().and_then(find))
    }

    async fn fetch(&self, issuer: &str) -> Result<(JwkSet, Duration), String> {
        // Checked again here: a policy saved before these rules may name anything.
        let parsed = check_issuer(issuer, self.insecure_loopback).map_err(|e| e.message)?;
        let (body, _) =
            self.get(&format!("{}/.well-known/openid-configuration", issuer_text(&parsed)), DISCOVERY_MAX).await?;
        let doc: Discovery = serde_json::from_slice(&body).map_err(|e| format!("bad discovery document: {e}"))?;
        if doc.issuer.trim_end_matches('/') != issuer {
            return Err(format!("the discovery document names another issuer ({:?})", doc.issuer));
        }
        let jwks_uri = check_jwks_uri(&parsed, &doc.jwks_uri)?;
        let (body, headers) = self.get(jwks_uri.as_str(), JWKS_MAX).await?;
        let keys: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("bad JWKS: {e}"))?;
        Ok((keys, max_age(&headers)))
    }

    /// A GET whose body may not pass `max` bytes.
    async fn get(&self, url: &str, max: usize) -> Result<(Vec<u8>, reqwest::header::HeaderMap), String> {
        let mut res = self.client.get(url).send().await.map_err(|e| format!("cannot fetch {url}: {e}"))?;
        if !res.status().is_success() {
            return Err(format!("{url} answered {}", res.status()));
        }
        if res.content_length().is_some_and(|n| n > max as u64) {
            return Err(format!("{url} is larger than {max} bytes"));
        }
        let headers = res.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| format!("cannot read {url}: {e}"))? {
            body.extend_from_slice(&chunk);
            if body.len() > max {
                return Err(format!("{url} is larger than {max} bytes"));
            }
        }
        Ok((body, headers))
    }
}

/// Whether the hub may connect to `ip` for an issuer: never a link-local (cloud
/// metadata), unspecified, multicast or broadcast address; loopback only with the opt-in.
fn may_connect(ip: std::net::IpAddr, insecure_loopback: bool) -> bool {
    let ip = ip.to_canonical();
    let host = match ip {
        std::net::IpAddr::V4(v4) => Host::Ipv4(v4),
        std::net::IpAddr::V6(v6) => Host::Ipv6(v6),
    };
    !is_forbidden_address(&host) && (insecure_loopback || !ip.is_loopback())
}

/// The issuers' DNS: a name is checked again where it resolves, so a domain pointing at
/// 169.254.169.254 or 127.0.0.1 reaches nothing (an IP written in the URL is checked by
/// [`check_issuer`]).
struct Screened {
    insecure_loopback: bool,
}

impl reqwest::dns::Resolve for Screened {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let insecure_loopback = self.insecure_loopback;
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let allowed: Vec<std::net::SocketAddr> =
                found.filter(|addr| may_connect(addr.ip(), insecure_loopback)).collect();
            if allowed.is_empty() {
                return Err(format!("{} resolves only to addresses the hub never fetches from", name.as_str()).into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether `host` is this machine: `localhost` (and names under it), 127.0.0.0/8 or `::1`.
fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// Addresses no issuer lives at: link-local (cloud metadata at 169.254.169.254),
/// unspecified, multicast and broadcast.
fn is_forbidden_address(host: &Host<&str>) -> bool {
    let v4 =
        |ip: std::net::Ipv4Addr| ip.is_link_local() || ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast();
    match host {
        Host::Domain(_) => false,
        Host::Ipv4(ip) => v4(*ip),
        Host::Ipv6(ip) => {
            ip.to_ipv4_mapped().is_some_and(v4)
                || ip.is_unspecified()
                || ip.is_multicast()
                || (ip.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// An issuer a policy may name, parsed as a URL and never compared as a string:
/// `https://` with a host and no user info, query or fragment, written exactly as the URL
/// parser writes it (so no `..`, percent-encoding or backslash tricks); never a
/// link-local, unspecified or multicast address. A loopback issuer (`localhost`,
/// `127.0.0.1`, `[::1]`, over `http://` or `https://`) only when the server runs with
/// `QAHUB_OIDC_INSECURE_LOOPBACK=true` (`insecure_loopback`): tests and local development.
/// Returns the issuer without a trailing slash, as ID tokens write `iss`.
pub fn check_issuer(input: &str, insecure_loopback: bool) -> Result<Url, AppError> {
    let refuse = |why: &str| {
        AppError::invalid(format!(
            "The issuer {why}: name an https:// URL like https://token.actions.githubusercontent.com."
        ))
    };
    let written = input.trim().trim_end_matches('/');
    if written.len() > 300 {
        return Err(refuse("is longer than 300 characters"));
    }
    if written.contains(['%', '\\', '@', ' ']) || written.chars().any(char::is_control) {
        return Err(refuse("contains %, \\, @, spaces or control characters"));
    }
    let url = Url::parse(written).map_err(|_| refuse("is not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("has user info (user@host)"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("has a query or fragment"));
    }
    let host = url.host().ok_or_else(|| refuse("has no host"))?;
    if is_forbidden_address(&host) {
        return Err(refuse("is a link-local, unspecified or multicast address"));
    }
    let loopback = is_loopback(&host);
    match url.scheme() {
        "https" if !loopback => {}
        "https" | "http" if loopback && insecure_loopback => {}
        "https" | "http" if loopback => return Err(refuse(
            "is on this machine (loopback), allowed only when the server runs with QAHUB_OIDC_INSECURE_LOOPBACK=true",
        )),
        "http" => return Err(refuse("uses plain http://")),
        _ => return Err(refuse("is not an https:// URL")),
    }
    let canonical = url.as_str().trim_end_matches('/');
    if canonical != written {
        return Err(AppError::invalid(format!("Write the issuer as {canonical}, the form ID tokens carry in iss.")));
    }
    Ok(url)
}

/// An issuer URL as ID tokens write it in `iss`: no trailing slash.
pub fn issuer_text(url: &Url) -> &str {
    url.as_str().trim_end_matches('/')
}

/// The discovery document's `jwks_uri`: a URL on the issuer's own scheme, host and
/// port, with no user info, so an issuer cannot point the hub anywhere else.
pub fn check_jwks_uri(issuer: &Url, jwks_uri: &str) -> Result<Url, String> {
    let url = Url::parse(jwks_uri.trim()).map_err(|_| "jwks_uri is not a URL".to_string())?;
    let same_origin = url.scheme() == issuer.scheme()
        && url.host() == issuer.host()
        && url.port_or_known_default() == issuer.port_or_known_default();
    if !same_origin || !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(format!("jwks_uri is not on the issuer's host ({})", issuer_text(issuer)));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_parsed_urls() {
        let ok = |s: &str, loopback: bool| check_issuer(s, loopback).map(|u| issuer_text(&u).to_string());
        assert_eq!(ok("https://gitlab.example.com/", false).unwrap(), "https://gitlab.example.com");
        assert_eq!(
            ok("https://token.actions.githubusercontent.com", false).unwrap(),
            "https://token.actions.githubusercontent.com"
        );
        assert_eq!(ok("https://git.example.com:8443/gitlab", false).unwrap(), "https://git.example.com:8443/gitlab");
        assert_eq!(ok("http://127.0.0.1:8080", true).unwrap(), "http://127.0.0.1:8080");
        assert!(ok("http://127.0.0.1:8080", false).is_err(), "loopback needs the opt-in");
        assert!(ok("https://localhost", false).is_err(), "loopback needs the opt-in, https too");
        assert!(ok("https://localhost./x", false).is_err(), "a trailing dot is still localhost");
        assert!(ok("https://evil.localhost", false).is_err(), "names under localhost are loopback");
        for bad in [
            "http://gitlab.example.com",
            "https://",
            "ftp://x",
            "http://localhost:1@127.0.0.1:9000",
            "http://127.0.0.1:@169.254.169.254",
            "https://user@gitlab.example.com",
            "https://169.254.169.254",
            "https://[fe80::1]",
            "https://0.0.0.0",
            "https://gitlab.example.com/?x=1",
            "https://gitlab.example.com/#x",
            "https://gitlab.example.com/a/../b",
            "https://gitlab.example.com/%61",
            "https://GitLab.example.com",
            "https://gitlab.example.com\\@evil.example",
            "https://[::ffff:169.254.169.254]",
            "not a url",
        ] {
            assert!(ok(bad, true).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn resolved_addresses_are_screened() {
        for (ip, loopback, ok) in [
            ("203.0.113.7", false, true),
            ("10.1.2.3", false, true),
            ("127.0.0.1", false, false),
            ("127.0.0.1", true, true),
            ("::1", false, false),
            ("169.254.169.254", true, false),
            ("::ffff:169.254.169.254", true, false),
            ("fe80::1", true, false),
            ("0.0.0.0", true, false),
            ("224.0.0.1", true, false),
        ] {
            assert_eq!(may_connect(ip.parse().unwrap(), loopback), ok, "{ip} (loopback allowed: {loopback})");
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_forbidden_address_is_never_fetched() {
        use reqwest::dns::Resolve;
        let screened = Screened { insecure_loopback: false };
        let refused = screened.resolve("localhost".parse().unwrap()).await;
        assert!(refused.is_err(), "localhost resolves to loopback only");
        let allowed = Screened { insecure_loopback: true }.resolve("localhost".parse().unwrap()).await;
        assert!(allowed.is_ok_and(|mut a| a.next().is_some()));
    }

    #[test]
    fn jwks_uris_stay_on_the_issuers_host() {
        let issuer = check_issuer("https://gitlab.example.com", false).unwrap();
        assert!(check_jwks_uri(&issuer, "https://gitlab.example.com/oauth/discovery/keys").is_ok());
        for bad in [
            "http://gitlab.example.com/keys",
            "https://gitlab.example.com:444/keys",
            "https://evil.example/keys",
            "https://gitlab.example.com@169.254.169.254/keys",
            "https://x@gitlab.example.com/keys",
            "/keys",
        ] {
            assert!(check_jwks_uri(&issuer, bad).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn cache_lifetimes_follow_cache_control_within_bounds() {
        let with = |v: &str| {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(reqwest::header::CACHE_CONTROL, v.parse().unwrap());
            max_age(&h)
        };
        assert_eq!(with("public, max-age=3600"), Duration::from_secs(3600));
        assert_eq!(with("max-age=1"), Duration::from_secs(60));
        assert_eq!(with("max-age=99999999"), Duration::from_secs(86_400));
        assert_eq!(max_age(&reqwest::header::HeaderMap::new()), MAX_AGE_DEFAULT);
    }
}
