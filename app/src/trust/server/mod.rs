//! Server side of Trusted CI: policies (rules, SQL), the issuers' keys and the exchange.

pub mod creator;
pub mod exchange;
pub mod issuers;
pub mod service;
pub mod store;

/// The hub's URL: `QAHUB_PUBLIC_URL`, else the scheme and `host` a request came to. What
/// a new trust policy expects as the ID token's audience unless told otherwise.
pub fn hub_url(settings: &crate::state::Settings, host: Option<&str>) -> String {
    if let Some(url) = &settings.public_url {
        return url.clone();
    }
    let scheme = if settings.secure_cookies { "https" } else { "http" };
    format!("{scheme}://{}", host.unwrap_or("localhost"))
}
