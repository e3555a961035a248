//! What keeps token authentication fast and flood-proof while every status is still read
//! from the database: a cache of verified secrets (a hit skips bcrypt), a short cache of
//! rejected ones, limits on bcrypt attempts per prefix *from one address* and per client
//! address (so a guesser spends their own budget, never the holder's), the leak reports'
//! own budget and bcrypt permit, and the per-token request limits behind the `RateLimit-*`
//! headers. Every keyed budget is bounded in memory.

use std::{hash::Hash, net::IpAddr, num::NonZeroU32, sync::Arc, time::Duration};

use governor::{
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::{InMemoryState, NotKeyed},
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
    /// Leak reports accepted per minute per client address.
    pub leak_reports_per_ip: u32,
    /// Keys each keyed budget remembers at most (the least recently used go first).
    pub budget_keys: u64,
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
            leak_reports_per_ip: 10,
            budget_keys: 100_000,
        }
    }
}

type Direct = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;
type TokenLimiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// The outcome of a per-token limit check, for the `RateLimit-*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateState {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the budget is whole again (or until a retry may pass).
    pub reset: u64,
}

/// A per-minute budget per key that forgets keys idle for two minutes and holds at most
/// `capacity` of them, so a flood of new keys (forged prefixes, invented emails) costs a
/// bounded amount of memory. An evicted key starts again with a full budget; the per-address
/// budget bounds how fast one client can mint new keys.
pub struct Budgets<K: Hash + Eq + Send + Sync + 'static> {
    quota: Quota,
    keys: moka::sync::Cache<K, Arc<Direct>>,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Budgets<K> {
    pub fn per_minute(n: u32, capacity: u64) -> Self {
        Self {
            quota: per_minute(n),
            keys: moka::sync::Cache::builder().max_capacity(capacity).time_to_idle(Duration::from_secs(120)).build(),
        }
    }

    /// Spends one unit of `key`'s budget; 429 `rate_limited` with a retry time past it.
    pub fn check(&self, key: K) -> Result<(), AppError> {
        let limiter = self.keys.get_with(key, || Arc::new(RateLimiter::direct(self.quota)));
        limiter.check().map_err(retry_after)
    }

    /// Keys remembered now (after pending evictions).
    pub fn len(&self) -> u64 {
        self.keys.run_pending_tasks();
        self.keys.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Leak reports being checked, or waiting to be, at once. Each waits for the ones before
/// it (up to 20 bcrypt checks each, one at a time): 16 keep the last one's wait to about
/// 20 s at cost 10, well inside the request timeout.
pub const LEAK_QUEUE: usize = 16;

pub struct Guard {
    pub settings: GuardSettings,
    verified: Cache<TokenKey, Verified>,
    rejected: Cache<TokenKey, ()>,
    /// bcrypt attempts per (prefix, client address): a guesser never spends the holder's.
    by_prefix: Budgets<(String, Option<IpAddr>)>,
    by_ip: Budgets<IpAddr>,
    leaks_by_ip: Budgets<Option<IpAddr>>,
    /// Leak reports verify on their own permit, never on authentication's.
    leak_permit: tokio::sync::Semaphore,
    /// Reports being checked or waiting to be, at most `LEAK_QUEUE`.
    leak_queue: Arc<tokio::sync::Semaphore>,
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
            by_prefix: Budgets::per_minute(settings.attempts_per_prefix, settings.budget_keys),
            by_ip: Budgets::per_minute(settings.attempts_per_ip, settings.budget_keys),
            leaks_by_ip: Budgets::per_minute(settings.leak_reports_per_ip, settings.budget_keys),
            leak_permit: tokio::sync::Semaphore::new(1),
            leak_queue: Arc::new(tokio::sync::Semaphore::new(LEAK_QUEUE)),
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

    /// Counts one bcrypt attempt for the prefix from this address, and for the address;
    /// 429 past either limit.
    pub fn attempt(&self, prefix: &str, ip: Option<IpAddr>) -> Result<(), AppError> {
        self.by_prefix.check((prefix.to_string(), ip))?;
        // An unknown address (a forwarded-for entry that is no address) shares one budget:
        // it never escapes the limit.
        self.by_ip.check(ip.unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)))
    }

    /// Drops what bcrypt verified for this key (the row changed under it).
    pub async fn forget(&self, key: &TokenKey) {
        self.verified.invalidate(key).await;
    }

    /// One leak report from this address; 429 past its budget.
    pub fn leak_report(&self, ip: Option<IpAddr>) -> Result<(), AppError> {
        self.leaks_by_ip.check(ip)
    }

    /// A place among the reports being checked; 429 when it is full.
    pub fn leak_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, AppError> {
        self.leak_queue.clone().try_acquire_owned().map_err(|_| AppError::rate_limited(5))
    }

    /// A leak report's bcrypt check, one at a time on its own permit: leak reports queue
    /// behind each other, never in front of authentication.
    pub async fn verify_leak(&self, secret: String, hash: String) -> bool {
        let Ok(_permit) = self.leak_permit.acquire().await else { return false };
        crate::people::server::password::verify(secret, hash).await
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
        // The guessed prefix still has its whole budget from another address: the holder's.
        let holder: IpAddr = "198.51.100.2".parse().unwrap();
        g.attempt("aaaaaaaa", Some(holder)).unwrap();
    }

    #[test]
    fn budgets_forget_keys_past_their_capacity() {
        let budgets: Budgets<String> = Budgets::per_minute(1, 100);
        for i in 0..5_000 {
            budgets.check(format!("forged{i}")).unwrap();
        }
        assert!(budgets.len() <= 100, "{} keys remembered", budgets.len());
        budgets.check("again".into()).unwrap();
        assert!(budgets.check("again".into()).is_err(), "a remembered key keeps its budget");
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
