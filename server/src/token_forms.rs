//! The API Tokens page without JavaScript. Creating and rotating a token must show the
//! secret once, so those forms post to the page itself: this handler calls the domain
//! and renders the page with the new token in context (never stored, not even in the
//! session). Failures go back to the dialog with `?error=`. With JavaScript the same
//! forms go through the `issue_token` / `reissue_token` server functions instead.

use axum::{
    body::Body,
    extract::{Request, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use leptos::prelude::provide_context;
use serde::Deserialize;
use tower_sessions::Session;

use app::{
    actor::Actor,
    error::AppError,
    people::server::session,
    shell,
    state::AppState,
    tokens::{api::LIST_URL, pages::Revealed, server::lifecycle, CreateTokenForm, RetireOld, RotateToken},
};

#[derive(Deserialize)]
struct Intent {
    #[serde(default)]
    intent: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    old_token: RetireOld,
}

const MAX_FORM: usize = 64 * 1024;

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    serde_qs::Config::new(5, false)
        .deserialize_bytes(bytes)
        .map_err(|e| AppError::invalid(format!("The form could not be read: {e}")))
}

fn back_with_error(to: String, err: &AppError) -> Response {
    let message: String = form_urlencoded::byte_serialize(err.message.as_bytes()).collect();
    Redirect::to(&format!("{to}&error={message}")).into_response()
}

pub async fn post(State(state): State<AppState>, session: Session, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.").into_response();
    };
    let user = match session::current_user(&state, &session).await {
        Ok(Some(user)) => user,
        Ok(None) => return Redirect::to("/login").into_response(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let meta = crate::api_v1::auth::request_meta(&parts, &state);
    let actor = Actor::User(user);
    let intent: Intent = match decode(&bytes) {
        Ok(intent) => intent,
        Err(err) => return back_with_error(format!("{LIST_URL}?create=1"), &err),
    };
    let (result, back) = match intent.intent.as_str() {
        "rotate" => {
            let back = format!(
                "{LIST_URL}?dialog=rotate&id={}",
                form_urlencoded::byte_serialize(intent.id.as_bytes()).collect::<String>()
            );
            let req = RotateToken { old_token: intent.old_token };
            (lifecycle::rotate(&state, &actor, &meta, &intent.id, req).await, back)
        }
        _ => {
            let result = match decode::<CreateTokenForm>(&bytes).and_then(CreateTokenForm::into_request) {
                Ok(req) => lifecycle::create(&state, &actor, &meta, req).await,
                Err(err) => Err(err),
            };
            (result, format!("{LIST_URL}?create=1"))
        }
    };
    let created = match result {
        Ok(created) => created,
        Err(err) => return back_with_error(back, &err),
    };

    let options = (*state.leptos_options).clone();
    let render = leptos_axum::render_app_async_with_context(
        move || {
            provide_context(state.clone());
            provide_context(Revealed(created.clone()));
        },
        move || shell(options.clone()),
    );
    let mut response = render(Request::from_parts(parts, Body::empty())).await.into_response();
    // The page holds a secret: no cache may keep it, nothing may compress it.
    crate::assets::secret_bearing(response.headers_mut());
    response
}
