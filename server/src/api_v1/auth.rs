//! Token authentication for `/api/v1`: a layer that runs the domain's `authenticate` and
//! puts the principal in the request, and `ApiAuth`, the extractor handlers use.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts, OriginalUri, Request, State},
    http::{header, request::Parts, HeaderMap, HeaderValue},
    middleware::Next,
    response::{IntoResponse, Response},
};
use ipnet::IpNet;

use app::{
    actor::{Actor, RequestMeta},
    error::AppError,
    state::AppState,
    tokens::server::auth::{authenticate as authenticate_token, Credentials, TokenPrincipal},
};

use super::ApiError;

pub const EXPIRES_HEADER: &str = "qahub-token-expires-at";

/// The client's address: the peer, or — only when the peer is a trusted proxy — the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.iter().any(|net| net.contains(&peer)) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    Some(forwarded.into_iter().rev().find(|ip| !trusted.iter().any(|net| net.contains(ip))).unwrap_or(peer))
}

pub fn request_meta(parts: &Parts, state: &AppState) -> RequestMeta {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    RequestMeta {
        ip: client_ip(peer, &parts.headers, &state.settings.trusted_proxies).map(|ip| ip.to_string()),
        user_agent: parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
    }
}

pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let headers = &parts.headers;
    // Inside `nest("/api/v1")` the path has lost its prefix; rules speak of the full one.
    let path = parts.extensions.get::<OriginalUri>().map_or(parts.uri.path(), |u| u.0.path());
    let creds = Credentials {
        authorization: headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()),
        host: headers.get(header::HOST).and_then(|v| v.to_str().ok()),
        client_ip: client_ip(peer, headers, &state.settings.trusted_proxies),
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()),
        method: parts.method.as_str(),
        path,
    };
    let principal = match authenticate_token(&state, creds).await {
        Ok(principal) => principal,
        Err(err) => return ApiError(err).into_response(),
    };
    let expires = principal.expires_at.and_then(|at| at.format(&time::format_description::well_known::Rfc3339).ok());
    parts.extensions.insert(principal);
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Some(value) = expires.and_then(|e| HeaderValue::from_str(&e).ok()) {
        response.headers_mut().insert(EXPIRES_HEADER, value);
    }
    response
}

/// The authenticated token of this request, and where it came from.
pub struct ApiAuth {
    pub principal: TokenPrincipal,
    pub meta: RequestMeta,
}

impl ApiAuth {
    pub fn actor(&self) -> Actor {
        Actor::Token(self.principal.clone())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_only_behind_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "198.51.100.7, 10.0.0.2".parse().unwrap());
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(Some(proxy), &headers, &trusted), Some("198.51.100.7".parse().unwrap()));
        assert_eq!(client_ip(Some(stranger), &headers, &trusted), Some(stranger), "spoofed header ignored");
        assert_eq!(client_ip(Some(proxy), &headers, &[]), Some(proxy));
        assert_eq!(client_ip(Some(proxy), &HeaderMap::new(), &trusted), Some(proxy));
    }
}
