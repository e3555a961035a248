//! What keeps token authentication fast and flood-proof while every status is still read
//! from the database: a cache of verified secrets (a hit skips bcrypt), a short cache of
//! rejected ones, limits on bcrypt attempts per prefix and per client address, and the
//! per-token request limits behind the `RateLimit-*` headers.

use std::{net::IpAddr, num::NonZeroU32, sync::Arc, time::Duration};

use governor::{
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::{keyed::DefaultKeyedStateStore, InMemoryState, NotKeyed},
    Quota, RateLimiter,
};
use moka::future::Cache;
use sha2::{Digest, Sha256};

use crate::error::AppError;

/// SHA-256 of the presented token: the cache key, never the token itself.
pub type TokenKey = [u8; 32];

pub fn key_of(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

/// A secret bcrypt accepted, for the token row and hash it was checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub token_id: String,
    pub secret_hash: String,
}

#[derive(Clone, Debug)]
pub struct GuardSettings {
    /// Cache verified secrets (off only to measure bcrypt-every-time).
    pub cache: bool,
    pub cache_capacity: u64,
    pub cache_ttl: Duration,
    pub rejected_ttl: Duration,
    /// bcrypt checks allowed per minute per token prefix and per client address.
    pub attempts_per_prefix: u32,
    pub attempts_per_ip: u32,
    /// Requests per minute per token when neither the token nor its tenant sets one.
    pub default_rate_limit: u32,
}

impl Default for GuardSettings {
    fn default() -> Self {
        Self {
            cache: true,
            cache_capacity: 100_000,
            cache_ttl: Duration::from_secs(600),
            rejected_ttl: Duration::from_secs(30),
            attempts_per_prefix: 30,
            attempts_per_ip: 120,
            default_rate_limit: 1200,
        }
    }
}

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;
type TokenLimiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// The outcome of a per-token limit check, for the `RateLimit-*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateState {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the budget is whole again (or until a retry may pass).
    pub reset: u64,
}

pub struct Guard {
    pub settings: GuardSettings,
    verified: Cache<TokenKey, Verified>,
    rejected: Cache<TokenKey, ()>,
    by_prefix: Keyed<String>,
    by_ip: Keyed<IpAddr>,
    per_token: moka::sync::Cache<String, Arc<(u32, TokenLimiter)>>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).expect("at least one"))
}

/// One clock for every refusal: making one runs `cpuid`, which a virtual machine traps,
/// and a flood of refusals must stay cheap.
static CLOCK: std::sync::LazyLock<DefaultClock> = std::sync::LazyLock::new(DefaultClock::default);

/// 429 `rate_limited` with the seconds until `not_until` (at least one).
pub fn retry_after(not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>) -> AppError {
    let wait = not_until.wait_time_from(CLOCK.now());
    AppError::rate_limited(wait.as_secs().max(1))
}

impl Guard {
    pub fn new(settings: GuardSettings) -> Self {
        Self {
            verified: Cache::builder().max_capacity(settings.cache_capacity).time_to_live(settings.cache_ttl).build(),
            rejected: Cache::builder()
                .max_capacity(settings.cache_capacity)
                .time_to_live(settings.rejected_ttl)
                .build(),
            by_prefix: RateLimiter::keyed(per_minute(settings.attempts_per_prefix)),
            by_ip: RateLimiter::keyed(per_minute(settings.attempts_per_ip)),
            per_token: moka::sync::Cache::builder().max_capacity(settings.cache_capacity).build(),
            settings,
        }
    }

    /// What bcrypt verified for this key before, if anything. The caller still compares
    /// it with the row it reads, so a changed row is a miss.
    pub async fn lookup(&self, key: &TokenKey) -> Option<Verified> {
        if !self.settings.cache {
            return None;
        }
        let found = self.verified.get(key).await;
        let result = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!("qahub_verified_cache_total", "result" => result).increment(1);
        found
    }

    pub async fn recently_rejected(&self, key: &TokenKey) -> bool {
        self.rejected.contains_key(key)
    }

    pub async fn reject(&self, key: TokenKey) {
        self.rejected.insert(key, ()).await;
    }

    /// Counts one bcrypt attempt for the prefix and the client address; 429 past the limit.
    pub fn attempt(&self, prefix: &str, ip: Option<IpAddr>) -> Result<(), AppError> {
        self.by_prefix.check_key(&prefix.to_string()).map_err(retry_after)?;
        if let Some(ip) = ip {
            self.by_ip.check_key(&ip).map_err(retry_after)?;
        }
        Ok(())
    }

    /// Runs `verify` once for concurrent misses on one key, and caches success.
    pub async fn verify_once<F>(&self, key: TokenKey, verify: F) -> Result<Verified, AppError>
    where
        F: std::future::Future<Output = Result<Verified, AppError>>,
    {
        if !self.settings.cache {
            return verify.await;
        }
        self.verified.try_get_with(key, verify).await.map_err(|e| (*e).clone())
    }

    /// Spends one request of the token's budget of `limit` per minute.
    pub fn spend(&self, token_id: &str, limit: u32) -> Result<RateState, (AppError, RateState)> {
        let entry = self.per_token.get(token_id).filter(|e| e.0 == limit).unwrap_or_else(|| {
            let fresh = Arc::new((
                limit,
                RateLimiter::direct(per_minute(limit)).with_middleware::<StateInformationMiddleware>(),
            ));
            self.per_token.insert(token_id.to_string(), fresh.clone());
            fresh
        });
        let per_cell = 60.0 / f64::from(limit.max(1));
        match entry.1.check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let reset = (f64::from(limit - remaining.min(limit)) * per_cell).ceil() as u64;
                Ok(RateState { limit, remaining, reset })
            }
            Err(not_until) => {
                let err = retry_after(not_until);
                let reset = err.retry_after.unwrap_or(1);
                Err((err, RateState { limit, remaining: 0, reset }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(cache: bool) -> Guard {
        Guard::new(GuardSettings { cache, attempts_per_prefix: 3, attempts_per_ip: 5, ..Default::default() })
    }

    #[tokio::test]
    async fn concurrent_misses_verify_once() {
        let g = Arc::new(guard(true));
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let key = key_of("qh_x");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (g, calls) = (g.clone(), calls.clone());
                tokio::spawn(async move {
                    g.verify_once(key, async {
                        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(Verified { token_id: "t".into(), secret_hash: "h".into() })
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().is_ok());
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(g.lookup(&key).await, Some(Verified { token_id: "t".into(), secret_hash: "h".into() }));
        assert_eq!(guard(false).lookup(&key).await, None, "no cache, no hits");
    }

    #[tokio::test]
    async fn failures_are_not_cached_as_successes() {
        let g = guard(true);
        let key = key_of("qh_y");
        let err = g.verify_once(key, async { Err(AppError::internal()) }).await;
        assert!(err.is_err());
        assert_eq!(g.lookup(&key).await, None);
    }

    #[test]
    fn attempts_are_limited_per_prefix_and_address() {
        let g = guard(true);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            g.attempt("aaaaaaaa", Some(ip)).unwrap();
        }
        let err = g.attempt("aaaaaaaa", Some(ip)).unwrap_err();
        assert_eq!(err.code, crate::error::ErrorCode::RateLimited);
        assert!(err.retry_after.unwrap() >= 1);
        // Another prefix from the same address still has room, until the address has
        // spent its five (a refused attempt spends none).
        g.attempt("bbbbbbbb", Some(ip)).unwrap();
        g.attempt("cccccccc", Some(ip)).unwrap();
        g.attempt("dddddddd", Some(ip)).unwrap_err();
    }

    #[test]
    fn per_token_budgets_count_down_and_refuse() {
        let g = guard(true);
        let first = g.spend("t1", 2).unwrap();
        assert_eq!((first.limit, first.remaining), (2, 1));
        g.spend("t1", 2).unwrap();
        let (err, state) = g.spend("t1", 2).unwrap_err();
        assert_eq!(err.code, crate::error::ErrorCode::RateLimited);
        assert_eq!(state.remaining, 0);
        // A new limit takes effect at once.
        assert!(g.spend("t1", 100).is_ok());
    }
}
