//! Tenant settings: the IP allowlist and the host names a tenant claims.

pub mod api;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Ai {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub quota_exhausted: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TenantSettings {
    pub id: String,
    pub name: String,
    pub status: String,
    /// CIDR ranges allowed to use the tenant's tokens; empty: any address.
    pub ip_allowlist: Vec<String>,
    /// Host names the tenant claims; other tenants' tokens are refused on them.
    pub hosts: Vec<String>,
    pub ai: Ai,
    /// Default requests per minute for the tenant's tokens (`None`: the server's default).
    pub token_rate_limit_per_minute: Option<u32>,
    /// The longest a token of the workspace may live, in days (`None`: no maximum).
    /// Creating or extending a token past it is refused.
    #[serde(default)]
    pub max_token_lifetime_days: Option<u32>,
}

/// `PATCH /api/v1/tenant`: fields left out stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UpdateTenant {
    #[serde(default)]
    pub ip_allowlist: Option<Vec<String>>,
    /// Refused (403 `forbidden`): host names are granted by the server's operator
    /// (`qahub tenant host add`), never through the API.
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
    /// An empty string clears it.
    #[serde(default)]
    pub ai_provider: Option<String>,
    #[serde(default)]
    pub ai_model: Option<String>,
    /// `null` falls back to the server's default.
    #[serde(default, with = "crate::tokens::double_option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<u32>))]
    pub token_rate_limit_per_minute: Option<Option<u32>>,
    /// Owners only (a token may only lower it): 1–3650 days, `null` for no maximum.
    #[serde(default, with = "crate::tokens::double_option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<u32>))]
    pub max_token_lifetime_days: Option<Option<u32>>,
}
