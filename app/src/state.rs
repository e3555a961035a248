//! The state every request sees: axum passes it to handlers and Leptos provides it to
//! server functions as context. Built once by `server::Application::build`.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sha2::{Digest, Sha256};

use crate::{
    db::Db,
    error::AppError,
    tokens::server::{
        guard::{Budgets, Guard, GuardSettings},
        lookup::Lookups,
        usage::Usage,
    },
};

/// Runtime knobs, from the command line or the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// bcrypt cost for passwords and token secrets (at least 10 outside tests).
    pub bcrypt_cost: u32,
    /// Sign-in attempts allowed per minute, per client address and per email.
    pub login_attempts_per_minute: u32,
    /// Mark session cookies `Secure` (serve behind HTTPS).
    pub secure_cookies: bool,
    /// Proxies whose `X-Forwarded-For` is believed when deciding the client address.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Verified-token cache, attempt limits and per-token request limits.
    pub guard: GuardSettings,
    /// The hub's own URL (`QAHUB_PUBLIC_URL`): the audience trust policies expect by
    /// default. Without it, the address the request came to.
    pub public_url: Option<String>,
    /// Trusted CI: how long an issuer's discovery document or keys may take, and the
    /// least time between two fetches of one issuer's keys.
    pub oidc_fetch_timeout: std::time::Duration,
    pub oidc_min_refetch: std::time::Duration,
    /// `QAHUB_OIDC_INSECURE_LOOPBACK`: trust policies may name an issuer on this machine
    /// (`localhost`, `127.0.0.1`, `[::1]`), also over plain `http://`. Tests and local
    /// development only; a production hub never needs it.
    pub oidc_insecure_loopback: bool,
    /// The largest report body an import accepts, in bytes (`QAHUB_MAX_IMPORT_BYTES`).
    pub import_max_bytes: usize,
    /// The most results one import may hold (`QAHUB_MAX_IMPORT_RESULTS`).
    pub import_max_results: usize,
    /// An unfinished import on another server instance with no sign of life for this
    /// long is abandoned (that instance died): a retry with its key takes it over.
    pub import_abandoned_after: std::time::Duration,
    /// Audit log entries older than this many days are deleted (`QAHUB_AUDIT_RETENTION_DAYS`);
    /// `None`: kept for ever.
    pub audit_retention_days: Option<u32>,
    /// A title search in a project with at most this many cases reads them; a bigger
    /// project's goes through the title index (tests set 0 to exercise the index).
    pub search_scan_cases: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bcrypt_cost: 10,
            login_attempts_per_minute: 10,
            secure_cookies: false,
            trusted_proxies: Vec::new(),
            guard: GuardSettings::default(),
            public_url: None,
            oidc_fetch_timeout: std::time::Duration::from_secs(5),
            oidc_min_refetch: std::time::Duration::from_secs(60),
            oidc_insecure_loopback: false,
            import_max_bytes: 64 * 1024 * 1024,
            import_max_results: 1_000_000,
            import_abandoned_after: std::time::Duration::from_secs(30),
            audit_retention_days: None,
            search_scan_cases: 20_000,
        }
    }
}

/// Counts sign-in attempts per key ("ip:…", "email:…"); refusals carry a retry time.
/// Keys are kept as SHA-256 digests in a bounded budget, so whatever a client types as
/// an email costs 32 bytes and is forgotten in time.
pub struct AttemptLimiter {
    budgets: Budgets<[u8; 32]>,
}

impl AttemptLimiter {
    pub fn per_minute(n: u32) -> Self {
        Self { budgets: Budgets::per_minute(n, 100_000) }
    }

    pub fn check(&self, key: String) -> Result<(), AppError> {
        self.budgets.check(Sha256::digest(key.as_bytes()).into())
    }
}

/// Token lookups that may run at once where they are coalesced (PostgreSQL: the lookup
/// pool's own connections).
const LOOKUP_QUERIES: usize = 2;

/// What every request shares. Cloned for every request, layer and extractor, so it is
/// one `Arc`: a clone is one atomic increment, whatever the state holds.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub leptos_options: Arc<LeptosOptions>,
    pub db: Db,
    pub settings: Arc<Settings>,
    pub login_limiter: Arc<AttemptLimiter>,
    /// A bcrypt hash of nothing anyone knows, checked when an email is unknown so that
    /// the answer takes as long as for a known one.
    pub dummy_hash: Arc<str>,
    pub guard: Arc<Guard>,
    /// Bounds concurrent bcrypt checks of token secrets.
    pub bcrypt_permits: Arc<tokio::sync::Semaphore>,
    /// When each expired token last had its use after expiry audited (at most hourly).
    pub expired_use_logged: Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
    /// Token rows for authentication, read per request, in shared queries under load.
    pub lookups: Lookups,
    /// Requests per token and day not yet written (`tokens::server::usage`).
    pub usage: Arc<Usage>,
    /// OIDC issuers' keys, cached (`trust::server::issuers`).
    pub issuers: Arc<crate::trust::server::issuers::Issuers>,
    /// This server process, as the imports it runs name it (a random id per start).
    pub instance_id: String,
    /// The imports this process is writing now (by import id).
    pub live_imports: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Writers in flight besides imports, which an import on SQLite lets go first.
    pub writers: Arc<crate::db::Writers>,
    /// The connections imports write through on PostgreSQL, opened at the first import.
    import_writer: std::sync::OnceLock<Option<crate::testing::server::postgres_batches::PostgresBatches>>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        (*state.leptos_options).clone()
    }
}

impl FromRef<AppState> for Db {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}

impl AppState {
    pub async fn new(leptos_options: LeptosOptions, db: Db, settings: Settings) -> Result<Self, AppError> {
        let dummy_hash = crate::people::server::password::hash(
            crate::people::server::password::random_password(),
            settings.bcrypt_cost,
        )
        .await?;
        let issuers = Arc::new(crate::trust::server::issuers::Issuers::new(
            settings.oidc_fetch_timeout,
            settings.oidc_min_refetch,
            settings.oidc_insecure_loopback,
        ));
        Ok(Self(Arc::new(Shared {
            leptos_options: Arc::new(leptos_options),
            lookups: Lookups::start(db.clone(), LOOKUP_QUERIES),
            db,
            login_limiter: Arc::new(AttemptLimiter::per_minute(settings.login_attempts_per_minute)),
            guard: Arc::new(Guard::new(settings.guard.clone())),
            settings: Arc::new(settings),
            dummy_hash: dummy_hash.into(),
            bcrypt_permits: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            expired_use_logged: Arc::default(),
            usage: Arc::default(),
            issuers,
            instance_id: crate::db::new_id(),
            live_imports: Default::default(),
            writers: Arc::default(),
            import_writer: std::sync::OnceLock::new(),
        })))
    }

    /// The connections imports share on PostgreSQL (none on SQLite).
    pub fn import_writer(&self) -> Option<crate::testing::server::postgres_batches::PostgresBatches> {
        self.import_writer
            .get_or_init(|| {
                crate::testing::server::postgres_batches::PostgresBatches::open(
                    self.db.connect_options().database_url.as_ref(),
                )
            })
            .clone()
    }
}
