//! Server functions behind Settings → Developer → Trusted CI; bodies call `trust::server`.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{error::AppError, projects::Project, trust::TrustPolicy};

pub const URL: &str = "/settings/developer/trusted-ci";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrustPage {
    pub policies: Vec<TrustPolicy>,
    pub projects: Vec<Project>,
    /// What a new policy expects as `aud` unless told otherwise.
    pub default_audience: String,
}

#[server(prefix = "/_qh", endpoint = "trust/list")]
pub async fn load_trust_page() -> Result<TrustPage, AppError> {
    use crate::{actor::Actor, server_fn_ctx as ctx};
    let (state, user) = ctx::require_user().await?;
    let actor = Actor::User(user);
    let policies = crate::trust::server::service::list(&state, &actor).await?;
    let projects = crate::projects::server::service::list(&state, &actor).await?;
    Ok(TrustPage { policies, projects, default_audience: ctx::hub_url() })
}

/// The create form, with or without JavaScript. `issuer` is a preset's URL or
/// `custom`, then `custom_issuer` holds it.
#[allow(clippy::too_many_arguments)] // one argument per form field
#[server(prefix = "/_qh", endpoint = "trust/create")]
pub async fn create_trust_policy(
    name: String,
    issuer: String,
    #[server(default)] custom_issuer: String,
    #[server(default)] audience: String,
    #[server(default)] conditions: String,
    #[server(default)] project_access: String,
    #[server(default)] projects: Vec<String>,
    #[server(default)] scope: String,
    #[server(default)] token_lifetime_minutes: String,
) -> Result<TrustPolicy, AppError> {
    use crate::{actor::Actor, server_fn_ctx as ctx, tokens::Scope, trust::NewTrustPolicy};
    let result = async {
        let (state, user) = ctx::require_user().await?;
        let projects = match project_access.as_str() {
            "all" => None,
            _ if projects.is_empty() => return Err(AppError::invalid("Pick at least one project.")),
            _ => Some(projects),
        };
        let scope = match scope.as_str() {
            "read" => Scope::Read,
            "" | "write" => Scope::Write,
            other => return Err(AppError::invalid(format!("Unknown scope {other:?}: read or write."))),
        };
        let minutes = match token_lifetime_minutes.trim() {
            "" => None,
            text => Some(text.parse().map_err(|_| AppError::invalid("The lifetime is a number of minutes, 1 to 15."))?),
        };
        let req = NewTrustPolicy {
            name,
            issuer: if issuer == "custom" { custom_issuer } else { issuer },
            audience: Some(audience.trim().to_string()).filter(|a| !a.is_empty()),
            conditions: crate::trust::parse_conditions(&conditions)?,
            projects,
            scopes: vec![scope],
            token_lifetime_minutes: minutes,
        };
        let meta = ctx::request_meta().await;
        crate::trust::server::service::create(&state, &Actor::User(user), &meta, req, &ctx::hub_url()).await
    }
    .await;
    ctx::finish_form(result, Some(URL))
}

/// `action`: `disable`, `enable` or `delete`.
#[server(prefix = "/_qh", endpoint = "trust/change")]
pub async fn change_trust_policy(id: String, action: String) -> Result<(), AppError> {
    use crate::{actor::Actor, server_fn_ctx as ctx, trust::server::service, trust::PolicyStatus};
    let result = async {
        let (state, user) = ctx::require_user().await?;
        let (actor, meta) = (Actor::User(user), ctx::request_meta().await);
        match action.as_str() {
            "disable" => service::set_status(&state, &actor, &meta, &id, PolicyStatus::Disabled).await.map(drop),
            "enable" => service::set_status(&state, &actor, &meta, &id, PolicyStatus::Active).await.map(drop),
            "delete" => service::delete(&state, &actor, &meta, &id).await,
            other => Err(AppError::invalid(format!("Unknown action {other:?}."))),
        }
    }
    .await;
    ctx::finish_form(result, Some(URL))
}
