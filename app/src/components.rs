//! Small pieces the pages share: form and page errors, the modal, and the button that
//! opens or closes a dialog with or without JavaScript.

use leptos::{ev, html, prelude::*, web_sys};

use crate::error::AppError;

/// The URL's query string, each value decoded once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(search: &str) -> Self {
        Query(form_urlencoded::parse(search.trim_start_matches('?').as_bytes()).into_owned().collect())
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }
}

/// The current URL's query, reactive. Used instead of `leptos_router`'s query map, which
/// percent-decodes each value a second time (`?q=99%2542` would read "99B", not "99%42").
pub fn use_query_params() -> Memo<Query> {
    let url = leptos_router::hooks::use_url();
    Memo::new(move |_| url.with(|u| Query::parse(u.search())))
}

/// The message to show under a form: the last submission's error with JavaScript, or
/// the `?error=` the server put in the URL after a plain form post.
pub fn form_error<T, S>(value: S) -> impl Fn() -> Option<String> + Copy + Send + Sync + 'static
where
    T: 'static,
    S: Get<Value = Option<Result<T, AppError>>> + Copy + Send + Sync + 'static,
{
    let query = use_query_params();
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

/// A modal dialog: focus moves in when it opens and Tab stays inside. Escape runs
/// `on_escape` only when given, so a dialog like the token reveal cannot be dismissed by
/// accident.
#[component]
pub fn Modal(title: String, #[prop(optional)] on_escape: Option<Callback<()>>, children: Children) -> impl IntoView {
    let node = NodeRef::<html::Div>::new();
    let label = title.clone();
    Effect::new(move |_| {
        if let Some(el) = node.get() {
            if let Some(first) = focusables(&el).into_iter().next() {
                let _ = first.focus();
            }
        }
    });
    let on_keydown = move |ev: ev::KeyboardEvent| {
        let Some(el) = node.get() else { return };
        match ev.key().as_str() {
            "Escape" => {
                ev.prevent_default();
                if let Some(close) = on_escape {
                    close.run(());
                }
            }
            "Tab" => {
                let items = focusables(&el);
                let (Some(first), Some(last)) = (items.first(), items.last()) else { return };
                let active = document().active_element();
                let at = |e: &web_sys::HtmlElement| {
                    active.as_ref().is_some_and(|a| a == AsRef::<web_sys::Element>::as_ref(e))
                };
                if ev.shift_key() && at(first) {
                    ev.prevent_default();
                    let _ = last.focus();
                } else if !ev.shift_key() && at(last) {
                    ev.prevent_default();
                    let _ = first.focus();
                }
            }
            _ => {}
        }
    };
    view! {
        <div class="backdrop">
            <div class="modal" role="dialog" aria-modal="true" aria-label=label node_ref=node on:keydown=on_keydown>
                <h2>{title}</h2>
                {children()}
            </div>
        </div>
    }
}

fn focusables(el: &web_sys::HtmlDivElement) -> Vec<web_sys::HtmlElement> {
    use leptos::wasm_bindgen::JsCast;
    let Ok(list) = el.query_selector_all("button, input:not([type=hidden]), select, textarea, a[href]") else {
        return Vec::new();
    };
    (0..list.length()).filter_map(|i| list.item(i)?.dyn_into::<web_sys::HtmlElement>().ok()).collect()
}

/// A button that opens or closes a dialog. Without JavaScript it is a GET form to
/// `action` with `fields` in the query, from which the page renders the dialog (no fields:
/// the page without it); with JavaScript `on_open` runs instead of the navigation.
#[component]
pub fn DialogButton(
    label: &'static str,
    #[prop(optional)] class: &'static str,
    action: &'static str,
    fields: Vec<(&'static str, String)>,
    on_open: Callback<()>,
) -> impl IntoView {
    view! {
        <form method="get" action=action class="inline-form">
            {fields.into_iter().map(|(name, value)| view! { <input type="hidden" name=name value=value /> }).collect_view()}
            <button
                type="submit"
                class=class
                on:click=move |ev: ev::MouseEvent| {
                    ev.prevent_default();
                    on_open.run(());
                }
            >
                {label}
            </button>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::Query;

    #[test]
    fn a_query_is_decoded_once() {
        let q = Query::parse("?q=99%2542&name=a+b%20c&q=second&empty=");
        assert_eq!(q.get("q").as_deref(), Some("99%42"), "%25 is a literal %, never decoded again");
        assert_eq!(q.get("name").as_deref(), Some("a b c"));
        assert_eq!(q.get("empty").as_deref(), Some(""));
        assert_eq!(q.get("missing"), None);
    }
}
