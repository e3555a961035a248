//! Typed configuration for `qahub serve`, from flags or the environment.

use std::{net::SocketAddr, path::PathBuf};

use app::{state::Settings, tokens::server::guard::GuardSettings};
use clap::Args;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://qahub.db?mode=rwc";

#[derive(Clone, Debug, Args)]
pub struct DatabaseArgs {
    /// SQLite file (sqlite://FILE, created if missing) or PostgreSQL (postgres://…) when
    /// several instances share one database.
    #[arg(long, env = "QAHUB_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,
}

#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "QAHUB_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Folder with the built site (wasm, js, css): what `cargo leptos build` writes.
    /// Unset: the site built into the binary (`embed-site`), else `target/site`.
    #[arg(long, env = "LEPTOS_SITE_ROOT")]
    pub site_root: Option<PathBuf>,

    /// Start even when the files the pages reference are missing (API-only use, tests).
    #[arg(long, env = "QAHUB_SKIP_SITE_CHECK", hide = true)]
    pub skip_site_check: bool,

    /// bcrypt cost for passwords and token secrets (10 is about 60 ms here; 4 for tests).
    #[arg(long, env = "QAHUB_BCRYPT_COST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,

    /// Sign-in attempts allowed per minute per client address and per email.
    #[arg(long, env = "QAHUB_LOGIN_ATTEMPTS_PER_MINUTE", default_value_t = 10)]
    pub login_attempts_per_minute: u32,

    /// Mark session cookies Secure: set this when QA Hub is served over HTTPS.
    #[arg(long, env = "QAHUB_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,

    /// Comma-separated proxy addresses or CIDRs whose X-Forwarded-For is trusted.
    #[arg(long, env = "QAHUB_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Requests per minute per API token, unless the token or its tenant sets its own.
    #[arg(long, env = "QAHUB_TOKEN_RATE_LIMIT", default_value_t = 1200)]
    pub token_rate_limit: u32,

    /// bcrypt checks allowed per minute per token prefix (wrong-secret floods get 429).
    #[arg(long, env = "QAHUB_AUTH_ATTEMPTS_PER_PREFIX", default_value_t = 30)]
    pub auth_attempts_per_prefix: u32,

    /// bcrypt checks allowed per minute per client address.
    #[arg(long, env = "QAHUB_AUTH_ATTEMPTS_PER_IP", default_value_t = 120)]
    pub auth_attempts_per_ip: u32,

    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key. Cookies become Secure.
    #[arg(long, env = "QAHUB_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "QAHUB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Seconds a request may take, body upload included, before a 408 `request_timeout`.
    #[arg(long, env = "QAHUB_REQUEST_TIMEOUT", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: u64,

    /// The hub's own URL, like https://qa.example.com: the audience trust policies
    /// expect by default (else the address a request came to).
    #[arg(long, env = "QAHUB_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Let trust policies name an OIDC issuer on this machine (localhost, 127.0.0.1,
    /// [::1]), also over plain http://: for tests and local development only.
    #[arg(long, env = "QAHUB_OIDC_INSECURE_LOOPBACK", default_value_t = false)]
    pub oidc_insecure_loopback: bool,

    /// The largest report an import accepts, in bytes (past it: 413 payload_too_large).
    #[arg(long, env = "QAHUB_MAX_IMPORT_BYTES", default_value_t = 64 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..=1024 * 1024 * 1024))]
    pub max_import_bytes: u64,

    /// The most test results one import may hold (past it: 413 payload_too_large).
    #[arg(long, env = "QAHUB_MAX_IMPORT_RESULTS", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_import_results: u64,

    /// Seconds without a sign of life after which another instance's unfinished import
    /// counts as abandoned (a retry with its Idempotency-Key then takes it over). At
    /// least 2: imports show a sign of life every quarter of it, at a second's precision.
    #[arg(long, env = "QAHUB_IMPORT_ABANDONED_AFTER", default_value_t = 30, hide = true, value_parser = clap::value_parser!(u64).range(2..=86_400))]
    pub import_abandoned_after: u64,

    /// Days an audit log entry is kept, 1 to 36 500; unset: for ever.
    #[arg(long, env = "QAHUB_AUDIT_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub audit_retention_days: Option<u32>,

    /// Check every token with bcrypt (no verified-token cache): for benchmarks only.
    #[arg(long, env = "QAHUB_NO_VERIFIED_CACHE", hide = true)]
    pub no_verified_cache: bool,
}

/// Everything `Application::build` needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub listen: SocketAddr,
    /// Where the pages' files come from.
    pub site: crate::assets::Site,
    pub settings: Settings,
    /// Certificate chain and key files: serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub limits: crate::limits::Limits,
}

impl Config {
    /// Plain HTTP with default limits: what operator commands and tests start from.
    pub fn plain(database_url: String, listen: SocketAddr, settings: Settings) -> Self {
        Self {
            database_url,
            listen,
            site: crate::assets::Site::choose(Some("target/site".into())),
            settings,
            tls: None,
            limits: crate::limits::Limits::default(),
        }
    }

    pub fn new(db: DatabaseArgs, serve: ServeArgs) -> Self {
        Self {
            database_url: db.database_url,
            listen: serve.listen,
            site: crate::assets::Site::choose(serve.site_root),
            settings: Settings {
                bcrypt_cost: serve.bcrypt_cost,
                login_attempts_per_minute: serve.login_attempts_per_minute,
                // Cookies that travel over HTTPS only, when this server speaks HTTPS itself.
                secure_cookies: serve.secure_cookies || serve.tls_cert.is_some(),
                trusted_proxies: serve.trusted_proxies,
                guard: GuardSettings {
                    cache: !serve.no_verified_cache,
                    attempts_per_prefix: serve.auth_attempts_per_prefix,
                    attempts_per_ip: serve.auth_attempts_per_ip,
                    default_rate_limit: serve.token_rate_limit,
                    ..GuardSettings::default()
                },
                public_url: serve.public_url.map(|u| u.trim_end_matches('/').to_string()),
                oidc_insecure_loopback: serve.oidc_insecure_loopback,
                import_max_bytes: serve.max_import_bytes as usize,
                import_max_results: serve.max_import_results as usize,
                import_abandoned_after: std::time::Duration::from_secs(serve.import_abandoned_after),
                audit_retention_days: serve.audit_retention_days,
                ..Settings::default()
            },
            tls: serve.tls_cert.zip(serve.tls_key),
            limits: crate::limits::Limits {
                request_timeout: std::time::Duration::from_secs(serve.request_timeout),
                ..Default::default()
            },
        }
    }
}
