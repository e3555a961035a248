//! What server functions need from the request they serve: the app state, the session,
//! the client address, and answers that also work for plain HTML form posts (no JS).

use http::{header, request::Parts};
use leptos::prelude::*;
use tower_sessions::Session;

use crate::{
    error::AppError,
    people::{server::session, CurrentUser},
    state::AppState,
};

/// `Cache-Control` of a response that carries a secret: no cache keeps it and nothing
/// compresses it (a secret compressed beside attacker-chosen text leaks through the
/// compressed length: BREACH). The server's compression layer honours `no-transform`.
pub const SECRET_BEARING: http::HeaderValue = http::HeaderValue::from_static("no-store, no-transform");

/// Marks this server function's answer as carrying a secret.
pub fn secret_bearing() {
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.insert_header(header::CACHE_CONTROL, SECRET_BEARING);
    }
}

pub fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| {
        tracing::error!("AppState missing from the server function context");
        AppError::internal()
    })
}

pub async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>().await.map_err(|e| {
        tracing::error!(error = %e, "no session layer");
        AppError::internal()
    })
}

/// Address and user agent, for the audit log.
pub async fn request_meta() -> crate::actor::RequestMeta {
    let trusted = use_context::<AppState>().map(|s| s.settings.trusted_proxies.clone()).unwrap_or_default();
    use_context::<Parts>().map(|parts| crate::actor::RequestMeta::from_parts(&parts, &trusted)).unwrap_or_default()
}

/// The hub's URL as this request reached it: the default audience of a trust policy.
pub fn hub_url() -> String {
    let parts = use_context::<Parts>();
    let host = parts.as_ref().and_then(|p| p.headers.get(header::HOST)).and_then(|h| h.to_str().ok());
    match use_context::<AppState>() {
        Some(state) => crate::trust::server::hub_url(&state.settings, host),
        None => crate::trust::server::hub_url(&Default::default(), host),
    }
}

/// The signed-in person, or 401.
pub async fn require_user() -> Result<(AppState, CurrentUser), AppError> {
    let state = state()?;
    let session = session().await?;
    let user = session::current_user(&state, &session).await?.ok_or_else(AppError::unauthenticated)?;
    Ok((state, user))
}

/// A plain form post (JavaScript off) asks for HTML; a hydrated page asks for data.
fn plain_form_referer() -> Option<String> {
    let parts = use_context::<Parts>()?;
    let accepts_html =
        parts.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    if !accepts_html {
        return None;
    }
    let referer = parts.headers.get(header::REFERER)?.to_str().ok()?;
    Some(same_origin_path(referer))
}

/// The path of a Referer, so a redirect never leaves this site.
fn same_origin_path(referer: &str) -> String {
    let after_scheme = referer.split_once("://").map_or(referer, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    let path = path.split(['?', '#']).next().unwrap_or("/");
    if path.starts_with('/') && !path.starts_with("//") {
        path.to_string()
    } else {
        "/".to_string()
    }
}

/// Finishes a form's server function. With JavaScript the page gets the result (and a
/// real HTTP status on error); without it the browser is sent to `success_to` (or back
/// to the form) on success, and back to the form with `?error=` on failure.
pub fn finish_form<T>(result: Result<T, AppError>, success_to: Option<&str>) -> Result<T, AppError> {
    match (&result, plain_form_referer()) {
        (Ok(_), Some(back)) => leptos_axum::redirect(success_to.unwrap_or(&back)),
        (Ok(_), None) => {
            if let Some(to) = success_to {
                leptos_axum::redirect(to);
            }
        }
        (Err(err), Some(back)) => {
            let message: String = form_urlencoded::byte_serialize(err.message.as_bytes()).collect();
            leptos_axum::redirect(&format!("{back}?error={message}"));
        }
        // The status of an error answer is set by the server's `server_fn_status` layer.
        (Err(_), None) => {}
    }
    result
}

#[cfg(test)]
mod tests {
    use super::same_origin_path;

    #[test]
    fn referer_paths_stay_on_this_site() {
        assert_eq!(same_origin_path("http://127.0.0.1:3000/login?error=x"), "/login");
        assert_eq!(same_origin_path("https://evil.example//evil.example/x"), "/");
        assert_eq!(same_origin_path("http://h"), "/");
        assert_eq!(same_origin_path("/settings/projects#top"), "/settings/projects");
    }
}
