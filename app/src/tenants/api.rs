//! Server functions behind the workspace settings page; bodies call `tenants::server`.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{error::AppError, tenants::TenantSettings};

pub const URL: &str = "/settings/workspace";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceView {
    pub settings: TenantSettings,
    /// The address this request came from, so the page can warn before a lock-out.
    pub your_ip: Option<String>,
}

#[server(prefix = "/_qh", endpoint = "tenant/get")]
pub async fn get_workspace() -> Result<WorkspaceView, AppError> {
    let (state, user) = crate::server_fn_ctx::require_user().await?;
    let settings = crate::tenants::server::get(&state, &crate::actor::Actor::User(user)).await?;
    Ok(WorkspaceView { settings, your_ip: crate::server_fn_ctx::request_meta().await.ip })
}

#[server(prefix = "/_qh", endpoint = "tenant/update")]
pub async fn update_workspace(
    ip_allowlist: String,
    ai_provider: String,
    ai_model: String,
    /// Days, or empty for no maximum (unchanged is no change, so admins save the page too).
    #[server(default)]
    max_token_lifetime_days: String,
) -> Result<(), AppError> {
    use crate::{actor::Actor, server_fn_ctx as ctx, tenants::UpdateTenant};
    let result = async {
        let (state, user) = ctx::require_user().await?;
        let actor = Actor::User(user);
        let days = match max_token_lifetime_days.trim() {
            "" => None,
            text => Some(text.parse::<u32>().map_err(|_| {
                AppError::invalid("The maximum token lifetime is a number of days, or empty for no maximum.")
            })?),
        };
        let req = UpdateTenant {
            ip_allowlist: Some(crate::tokens::split_list(&ip_allowlist)),
            hosts: None,
            ai_provider: Some(ai_provider),
            ai_model: Some(ai_model),
            token_rate_limit_per_minute: None,
            max_token_lifetime_days: Some(days),
        };
        crate::tenants::server::update(&state, &actor, &ctx::request_meta().await, req).await.map(|_| ())
    }
    .await;
    ctx::finish_form(result, Some(URL))
}
