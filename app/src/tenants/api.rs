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
pub async fn update_workspace(ip_allowlist: String, ai_provider: String, ai_model: String) -> Result<(), AppError> {
    use crate::{server_fn_ctx as ctx, tenants::UpdateTenant};
    let result = async {
        let (state, user) = ctx::require_user().await?;
        let list =
            ip_allowlist.split(['\n', ',']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        let req = UpdateTenant {
            ip_allowlist: Some(list),
            hosts: None,
            ai_provider: Some(ai_provider),
            ai_model: Some(ai_model),
            token_rate_limit_per_minute: None,
        };
        crate::tenants::server::update(&state, &crate::actor::Actor::User(user), &ctx::request_meta().await, req)
            .await
            .map(|_| ())
    }
    .await;
    ctx::finish_form(result, Some(URL))
}
