//! Server functions behind the API Tokens page. Their bodies call the same
//! `tokens::server::service` functions as `/api/v1/tokens`, with the same types.

use leptos::prelude::*;

use crate::{
    error::AppError,
    tokens::{CreatedToken, RetireOld, Scope, TokenDetail, TokenPage, TokenSummary},
};

pub const LIST_URL: &str = "/settings/developer/api-tokens";
pub const PAGE_SIZE: i64 = 25;

#[server(prefix = "/_qh", endpoint = "tokens/list")]
pub async fn list_tokens(
    q: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
) -> Result<TokenPage, AppError> {
    use crate::{
        actor::Actor,
        tokens::{server::service, TokenStatus},
    };
    let (state, user) = crate::server_fn_ctx::require_user().await?;
    let status = match status.as_deref().map(str::trim) {
        None | Some("") | Some("all") => None,
        Some(s) => Some(
            serde_json::from_value::<TokenStatus>(serde_json::Value::String(s.to_string()))
                .map_err(|_| AppError::invalid(format!("Unknown status {s:?}.")))?,
        ),
    };
    let query = service::ListQuery { search: q, status, cursor, limit: Some(PAGE_SIZE) };
    let page = service::list(&state, &Actor::User(user), query).await?;
    Ok(TokenPage { tokens: page.data, next_cursor: page.next_cursor, now: crate::db::timestamp(crate::db::now()) })
}

/// The create dialog, with JavaScript. (Without it the form posts to the page itself,
/// which renders the reveal dialog: see the server's `token_forms`.)
// One argument per form field: the names are the form's (and the no-JS post's).
#[allow(clippy::too_many_arguments)]
#[server(prefix = "/_qh", endpoint = "tokens/issue")]
pub async fn issue_token(
    name: String,
    #[server(default)] scopes: Vec<Scope>,
    #[server(default)] project_access: String,
    #[server(default)] projects: Vec<String>,
    #[server(default)] expiration: String,
    #[server(default)] expires_on: String,
    #[server(default)] owner: String,
    #[server(default)] ip_allowlist: String,
) -> Result<CreatedToken, AppError> {
    use crate::{actor::Actor, server_fn_ctx as ctx, tokens::CreateTokenForm};
    let (state, user) = ctx::require_user().await?;
    let form = CreateTokenForm { name, scopes, project_access, projects, expiration, expires_on, owner, ip_allowlist };
    let meta = ctx::request_meta().await;
    ctx::secret_bearing();
    crate::tokens::server::lifecycle::create(&state, &Actor::User(user), &meta, form.into_request()?).await
}

#[server(prefix = "/_qh", endpoint = "tokens/reissue")]
pub async fn reissue_token(id: String, #[server(default)] old_token: RetireOld) -> Result<CreatedToken, AppError> {
    use crate::{actor::Actor, server_fn_ctx as ctx, tokens::RotateToken};
    let (state, user) = ctx::require_user().await?;
    let meta = ctx::request_meta().await;
    ctx::secret_bearing();
    crate::tokens::server::lifecycle::rotate(&state, &Actor::User(user), &meta, &id, RotateToken { old_token }).await
}

/// Disable, enable or revoke.
#[server(prefix = "/_qh", endpoint = "tokens/status")]
pub async fn change_token_status(id: String, action: String) -> Result<TokenSummary, AppError> {
    use crate::{
        actor::Actor,
        server_fn_ctx::{self as ctx, finish_form},
        tokens::server::lifecycle::{self, Transition},
    };
    let result = async {
        let (state, user) = ctx::require_user().await?;
        let transition = match action.as_str() {
            "disable" => Transition::Disable,
            "enable" => Transition::Enable,
            "revoke" => Transition::Revoke,
            other => return Err(AppError::invalid(format!("Unknown action {other:?}."))),
        };
        lifecycle::set_status(&state, &Actor::User(user), &ctx::request_meta().await, &id, transition).await
    }
    .await;
    finish_form(result, Some(LIST_URL))
}

#[server(prefix = "/_qh", endpoint = "tokens/rename")]
pub async fn rename_token(id: String, name: String) -> Result<TokenSummary, AppError> {
    use crate::{
        actor::Actor,
        server_fn_ctx::{self as ctx, finish_form},
        tokens::{server::lifecycle, UpdateToken},
    };
    let result = async {
        let (state, user) = ctx::require_user().await?;
        let change = UpdateToken { name: Some(name), ..Default::default() };
        lifecycle::update(&state, &Actor::User(user), &ctx::request_meta().await, &id, change).await
    }
    .await;
    finish_form(result, Some(LIST_URL))
}

/// The detail view of one token: usage, addresses, rotation.
#[server(prefix = "/_qh", endpoint = "tokens/detail")]
pub async fn load_token_detail(id: String) -> Result<TokenDetail, AppError> {
    use crate::actor::Actor;
    let (state, user) = crate::server_fn_ctx::require_user().await?;
    crate::tokens::server::service::detail(&state, &Actor::User(user), &id).await
}

/// "Reduce to read" / "Reduce to write": the least-privilege hint's one click.
#[server(prefix = "/_qh", endpoint = "tokens/reduce")]
pub async fn reduce_token_scope(id: String, scope: Scope) -> Result<TokenSummary, AppError> {
    use crate::{
        actor::Actor,
        server_fn_ctx::{self as ctx, finish_form},
        tokens::server::lifecycle,
    };
    let result = async {
        let (state, user) = ctx::require_user().await?;
        lifecycle::reduce_scope(&state, &Actor::User(user), &ctx::request_meta().await, &id, scope).await
    }
    .await;
    // A plain form goes back where it came from: the list or the token's own page.
    finish_form(result, None)
}
