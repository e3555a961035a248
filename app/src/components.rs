//! Small pieces the pages share.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::error::AppError;

/// The message to show under a form: the last submission's error with JavaScript, or
/// the `?error=` the server put in the URL after a plain form post.
pub fn form_error<T, S>(value: S) -> impl Fn() -> Option<String> + Copy + Send + Sync + 'static
where
    T: 'static,
    S: Get<Value = Option<Result<T, AppError>>> + Copy + Send + Sync + 'static,
{
    let query = use_query_map();
    move || match value.get() {
        Some(Err(err)) => Some(err.message),
        Some(Ok(_)) => None,
        None => query.read().get("error"),
    }
}

/// A page that could not load its data: the error's message, and during server
/// rendering the error's HTTP status (a run of another workspace is a real 404).
#[component]
pub fn PageError(err: AppError) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(status) = http::StatusCode::from_u16(err.status()) {
            options.set_status(status);
        }
    }
    view! { <p role="alert">{err.message}</p> }
}

/// An alert line that is only in the page when there is something to say.
#[component]
pub fn FormError(message: impl Fn() -> Option<String> + Send + Sync + 'static) -> impl IntoView {
    move || message().map(|m| view! { <p class="form-error" role="alert">{m}</p> })
}
