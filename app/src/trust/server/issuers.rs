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
    pub fn new(timeout: Duration, min_refetch: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("qahub/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with rustls");
        Issuers { client, min_refetch, by_issuer: Mutex::default() }
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
        let (body, _) = self.get(&format!("{issuer}/.well-known/openid-configuration"), DISCOVERY_MAX).await?;
        let doc: Discovery = serde_json::from_slice(&body).map_err(|e| format!("bad discovery document: {e}"))?;
        if doc.issuer.trim_end_matches('/') != issuer {
            return Err(format!("the discovery document names another issuer ({:?})", doc.issuer));
        }
        crate::trust::normalize_issuer(&doc.jwks_uri).map_err(|_| "jwks_uri is not https".to_string())?;
        let (body, headers) = self.get(&doc.jwks_uri, JWKS_MAX).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
