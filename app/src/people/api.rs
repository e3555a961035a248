//! Server functions for sign-in and first-run setup; the bodies call `people::server`.

use leptos::prelude::*;

use crate::{error::AppError, people::CurrentUser};

/// Where people land after signing in.
pub const HOME: &str = "/settings/projects";

#[server(prefix = "/_qh", endpoint = "setup_needed")]
pub async fn setup_needed() -> Result<bool, AppError> {
    let state = crate::server_fn_ctx::state()?;
    crate::people::server::service::setup_needed(&state).await
}

#[server(prefix = "/_qh", endpoint = "setup")]
pub async fn setup(tenant: String, email: String, password: String) -> Result<(), AppError> {
    use crate::{
        people::server::{service, session},
        server_fn_ctx::{self as ctx, finish_form},
    };
    let result = async {
        let state = ctx::state()?;
        let input = service::NewOwner { tenant: &tenant, email: &email, password: &password };
        let user = service::setup(&state, input).await?;
        session::sign_in(&ctx::session().await?, &user).await
    }
    .await;
    finish_form(result, Some(HOME))
}

#[server(prefix = "/_qh", endpoint = "login")]
pub async fn login(email: String, password: String) -> Result<(), AppError> {
    use crate::{
        people::server::{service, session},
        server_fn_ctx::{self as ctx, finish_form},
    };
    let result = async {
        let state = ctx::state()?;
        let user = service::login(&state, &email, &password, &ctx::request_meta().await).await?;
        session::sign_in(&ctx::session().await?, &user).await
    }
    .await;
    finish_form(result, Some(HOME))
}

#[server(prefix = "/_qh", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use crate::server_fn_ctx::{self as ctx, finish_form};
    let result = async { crate::people::server::session::sign_out(&ctx::session().await?).await }.await;
    finish_form(result, Some("/login"))
}

/// The signed-in person, or `None`.
#[server(prefix = "/_qh", endpoint = "whoami")]
pub async fn whoami() -> Result<Option<CurrentUser>, AppError> {
    use crate::server_fn_ctx as ctx;
    let state = ctx::state()?;
    crate::people::server::session::current_user(&state, &ctx::session().await?).await
}

pub const MEMBERS_URL: &str = "/settings/members";

/// The people of the signed-in person's workspace.
#[server(prefix = "/_qh", endpoint = "members/list")]
pub async fn list_members() -> Result<Vec<crate::people::Member>, AppError> {
    use crate::actor::Actor;
    let (state, user) = crate::server_fn_ctx::require_user().await?;
    crate::people::server::service::members(&state, &Actor::User(user)).await
}

/// What suspending a person would stop: shown before the confirmation.
#[server(prefix = "/_qh", endpoint = "members/suspension")]
pub async fn suspension_preview(user_id: String) -> Result<crate::people::SuspensionPreview, AppError> {
    use crate::actor::Actor;
    let (state, user) = crate::server_fn_ctx::require_user().await?;
    crate::people::server::service::suspension_preview(&state, &Actor::User(user), &user_id).await
}

/// `action`: `suspend` or `reactivate`. Back to the Members page.
#[server(prefix = "/_qh", endpoint = "members/status")]
pub async fn set_member_status(user_id: String, action: String) -> Result<crate::people::Member, AppError> {
    use crate::{
        actor::Actor,
        server_fn_ctx::{self as ctx, finish_form},
    };
    let result = async {
        let (state, user) = ctx::require_user().await?;
        let suspend = match action.as_str() {
            "suspend" => true,
            "reactivate" => false,
            other => return Err(AppError::invalid(format!("Unknown action {other:?}."))),
        };
        let meta = ctx::request_meta().await;
        crate::people::server::service::set_member_suspended(&state, &Actor::User(user), &meta, &user_id, suspend).await
    }
    .await;
    finish_form(result, Some(MEMBERS_URL))
}
