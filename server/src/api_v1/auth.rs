//! Token authentication for `/api/v1`: a layer that runs the domain's `authenticate` and
//! puts the principal in the request, and `ApiAuth`, the extractor handlers use.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequestParts, OriginalUri, Request, State},
    http::{header, request::Parts, HeaderValue},
    middleware::Next,
    response::{IntoResponse, Response},
};

use app::{
    actor::{client_ip, Actor, RequestMeta, TokenPrincipal},
    error::AppError,
    state::AppState,
    tokens::server::auth::{authenticate as authenticate_token, request_kind, Credentials},
};

use super::ApiError;

pub const EXPIRES_HEADER: &str = "qahub-token-expires-at";
/// On a token a rotation replaced: when it stops working (RFC 3339).
pub const RETIRES_HEADER: &str = "qahub-token-retires-at";
/// The least-privilege hint, in words, when the token's use fits a lower scope.
pub const HINT_HEADER: &str = "qahub-token-hint";

pub fn request_meta(parts: &Parts, state: &AppState) -> RequestMeta {
    RequestMeta::from_parts(parts, &state.settings.trusted_proxies)
}

pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let headers = &parts.headers;
    // Inside `nest("/api/v1")` the path has lost its prefix; rules speak of the full one.
    let path = parts.extensions.get::<OriginalUri>().map_or(parts.uri.path(), |u| u.0.path());
    let creds = Credentials {
        authorization: headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()),
        // HTTP/2 sends the host as `:authority`, which lands in the URI, not in `Host`.
        host: headers.get(header::HOST).and_then(|v| v.to_str().ok()).or(parts.uri.authority().map(|a| a.as_str())),
        client_ip: client_ip(peer, headers, &state.settings.trusted_proxies),
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()),
        method: parts.method.as_str(),
        path,
    };
    let principal = match authenticate_token(&state, creds).await {
        Ok(principal) => {
            ::metrics::counter!("qahub_auth_total", "outcome" => "ok").increment(1);
            principal
        }
        Err(err) => {
            ::metrics::counter!("qahub_auth_total", "outcome" => err.code.as_str()).increment(1);
            return ApiError(err).into_response();
        }
    };
    let rfc3339 = |at: time::OffsetDateTime| at.format(&time::format_description::well_known::Rfc3339).ok();
    let expires = principal.expires_at.and_then(rfc3339);
    let retires = principal.retire_at.and_then(rfc3339);
    let now = app::db::now();
    let hint = state.usage.hint(&state.db, &principal.token_id, &principal.scopes, principal.created_at, now).await.map(
        |scope| {
            let top = principal.top_scope().map_or("its", |s| s.as_str());
            format!(
                "token qh_{}_... used only {} in the last 30 days: its {top} scope could be reduced to {} (Settings, Developer, API Tokens)",
                principal.prefix,
                scope.as_str(),
                scope.as_str()
            )
        },
    );
    let (rate, mut response) = match state.guard.spend(&principal.token_id, principal.rate_limit) {
        Ok(rate) => {
            // The domain's `Actor::permit` marks what the request needed: that is its kind.
            let (token_id, needed) = (principal.token_id.clone(), principal.needed.clone());
            parts.extensions.insert(principal);
            let response = next.run(Request::from_parts(parts, body)).await;
            state.usage.count(&token_id, app::db::now(), request_kind(&needed));
            (rate, response)
        }
        Err((err, rate)) => (rate, ApiError(err).into_response()),
    };
    let headers = response.headers_mut();
    if let Some(value) = expires.and_then(|e| HeaderValue::from_str(&e).ok()) {
        headers.insert(EXPIRES_HEADER, value);
    }
    if let Some(value) = retires.and_then(|e| HeaderValue::from_str(&e).ok()) {
        headers.insert(RETIRES_HEADER, value);
    }
    if let Some(value) = hint.and_then(|h| HeaderValue::from_str(&h).ok()) {
        headers.insert(HINT_HEADER, value);
    }
    headers.insert("ratelimit-limit", HeaderValue::from(rate.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(rate.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(rate.reset));
    response
}

/// The authenticated token of this request, and where it came from.
pub struct ApiAuth {
    pub principal: TokenPrincipal,
    pub meta: RequestMeta,
}

impl ApiAuth {
    pub fn actor(&self) -> Actor {
        Actor::Token(Box::new(self.principal.clone()))
    }
}

impl FromRequestParts<AppState> for ApiAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = parts.extensions.get::<TokenPrincipal>().cloned().ok_or_else(|| {
            tracing::error!("ApiAuth used on a route without the authentication layer");
            ApiError(AppError::internal())
        })?;
        Ok(ApiAuth { principal, meta: request_meta(parts, state) })
    }
}
