//! The dialogs the list opens: create, the one-time reveal, revoke, rotate, rename.

#[allow(unused_imports)]
use super::*;
use crate::components::DialogButton as GenericButton;

/// Opens one of the list's dialogs (`components::DialogButton` on the list's URL).
#[component]
pub(super) fn DialogButton(
    label: &'static str,
    #[prop(optional)] class: &'static str,
    fields: Vec<(&'static str, String)>,
    open: Dialog,
) -> impl IntoView {
    let dialog = actions().dialog;
    let on_open = Callback::new(move |()| dialog.set(Some(open.clone())));
    view! { <GenericButton label class action=LIST_URL fields on_open /> }
}

/// Closes the open dialog, back to the list.
#[component]
pub(super) fn CloseButton(label: &'static str) -> impl IntoView {
    let dialog = actions().dialog;
    let on_open = Callback::new(move |()| dialog.set(None));
    view! { <GenericButton label action=LIST_URL fields=Vec::new() on_open /> }
}

#[component]
pub(super) fn CreateDialog() -> impl IntoView {
    let TokenActions { issue, dialog, .. } = actions();
    let error = form_error(issue.value());
    let projects = Resource::new(|| (), |_| list_projects());
    let (read, write, admin) = (RwSignal::new(true), RwSignal::new(false), RwSignal::new(false));
    let specific = RwSignal::new(false);
    let expiration = RwSignal::new(ExpiryChoice::Days30.as_str().to_string());
    let chosen = move |choice: ExpiryChoice| ExpiryChoice::parse(&expiration.get()) == Some(choice);
    let filter = RwSignal::new(String::new());
    // Until the page is hydrated every field shows, so the form works as plain HTML.
    let js = RwSignal::new(false);
    Effect::new(move |_| js.set(true));
    let on_submit = move |ev: ev::SubmitEvent| {
        use leptos::form::FromFormData;
        ev.prevent_default();
        match IssueToken::from_event(&ev) {
            Ok(input) => {
                issue.dispatch(input);
            }
            Err(err) => leptos::logging::error!("create form: {err}"),
        }
    };
    view! {
        <Modal title="Create token".into() on_escape=Callback::new(move |_| dialog.set(None))>
            <form method="post" action=LIST_URL class="form" on:submit=on_submit>
                <input type="hidden" name="intent" value="create" />
                <label>
                    "Name" <input name="name" maxlength="100" required autocomplete="off" placeholder="CI pipeline" />
                    <span class="hint">"Up to 100 characters, so you can tell tokens apart."</span>
                </label>
                <fieldset>
                    <legend>"Scopes"</legend>
                    <p class="hint">"write includes read; admin includes write and read."</p>
                    <label class="check">
                        <input type="checkbox" name="scopes[]" value="read" prop:checked=read
                            on:change=move |ev| { let on = event_target_checked(&ev); read.set(on); if !on { write.set(false); admin.set(false); } } />
                        "read"
                    </label>
                    <label class="check">
                        <input type="checkbox" name="scopes[]" value="write" prop:checked=write
                            on:change=move |ev| { let on = event_target_checked(&ev); write.set(on); if on { read.set(true) } else { admin.set(false) } } />
                        "write"
                    </label>
                    <label class="check">
                        <input type="checkbox" name="scopes[]" value="admin" prop:checked=admin
                            on:change=move |ev| { let on = event_target_checked(&ev); admin.set(on); if on { read.set(true); write.set(true); } } />
                        "admin"
                    </label>
                </fieldset>
                <fieldset>
                    <legend>"Projects"</legend>
                    <label class="check">
                        <input type="radio" name="project_access" value="all" prop:checked=move || !specific.get() on:change=move |_| specific.set(false) />
                        "All projects"
                    </label>
                    <label class="check">
                        <input type="radio" name="project_access" value="specific" prop:checked=specific on:change=move |_| specific.set(true) />
                        "Specific projects"
                    </label>
                    <div class="picker" class:collapsed=move || js.get() && !specific.get()>
                        <label>
                            "Find a project" <input type="search" placeholder="Key or name" on:input=move |ev| filter.set(event_target_value(&ev).to_lowercase()) />
                        </label>
                        <Suspense>
                            {move || Suspend::new(async move {
                                let list = projects.await.unwrap_or_default();
                                if list.is_empty() {
                                    return view! { <p class="hint">"No projects yet."</p> }.into_any();
                                }
                                view! {
                                    <ul class="picker-list">
                                        {list.into_iter().map(|p| {
                                            let haystack = format!("{} {}", p.key, p.name).to_lowercase();
                                            view! {
                                                <li class:hidden=move || !haystack.contains(&filter.get())>
                                                    <label class="check">
                                                        <input type="checkbox" name="projects[]" value=p.key.clone() />
                                                        <code>{p.key.clone()}</code> " " {p.name.clone()}
                                                    </label>
                                                </li>
                                            }
                                        }).collect_view()}
                                    </ul>
                                }.into_any()
                            })}
                        </Suspense>
                    </div>
                </fieldset>
                <fieldset>
                    <legend>"Owner"</legend>
                    <label class="check">
                        <input type="radio" name="owner" value="user" checked />
                        "Owned by me"
                    </label>
                    <label class="check">
                        <input type="radio" name="owner" value="workspace" />
                        "Owned by the workspace"
                    </label>
                    <p class="hint">"A workspace (service) token keeps working if you are suspended or leave; one owned by you stops with you."</p>
                </fieldset>
                <label>
                    "Expiration"
                    <select name="expiration" on:change=move |ev| expiration.set(event_target_value(&ev))>
                        <option value=ExpiryChoice::Never.as_str()>"Never"</option>
                        <option value=ExpiryChoice::Days30.as_str() selected>"30 days"</option>
                        <option value=ExpiryChoice::Days90.as_str()>"90 days"</option>
                        <option value=ExpiryChoice::Custom.as_str()>"Custom date"</option>
                    </select>
                </label>
                <label class:collapsed=move || js.get() && !chosen(ExpiryChoice::Custom)>
                    "Expiry date" <input type="date" name="expires_on" />
                    <span class="hint">"The token works until the end of that day (UTC)."</span>
                </label>
                {move || chosen(ExpiryChoice::Never).then(|| view! {
                    <p class="warning" role="status">"A token that never expires keeps working if it leaks. Prefer an expiry and rotate it."</p>
                })}
                <label>
                    "IP allowlist"
                    <textarea name="ip_allowlist" rows="2" placeholder="203.0.113.0/24"></textarea>
                    <span class="hint">"Optional: the addresses or CIDR ranges (one per line) this token works from, such as your CI runners'. The workspace's allowlist applies too."</span>
                </label>
                <FormError message=error />
                <div class="buttons">
                    <button type="submit" class="primary">"Create"</button>
                </div>
            </form>
            <CloseButton label="Cancel" />
        </Modal>
    }
}

#[component]
pub(super) fn RevealDialog(created: CreatedToken) -> impl IntoView {
    let copied = RwSignal::new(false);
    let token = created.token.clone();
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let clipboard = window().navigator().clipboard();
            let _ = clipboard.write_text(&token);
            copied.set(true);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &token;
    };
    view! {
        <Modal title="Copy your new token".into()>
            <p>
                "Token " <strong>{created.summary.name.clone()}</strong> " is ready. "
                <strong>"It will not be shown again"</strong> ": copy it now and keep it in a secret store."
            </p>
            <label>
                "New token" <input class="mono token-value" readonly value=created.token.clone() on:focus=move |ev| {
                    #[cfg(feature = "hydrate")]
                    {
                        use leptos::wasm_bindgen::JsCast;
                        if let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
                            input.select();
                        }
                    }
                    #[cfg(not(feature = "hydrate"))]
                    let _ = ev;
                } />
            </label>
            <div class="buttons">
                <button type="button" on:click=copy>"Copy"</button>
                <span role="status" class="copied">{move || if copied.get() { "Copied to the clipboard." } else { "" }}</span>
            </div>
            // "Done" reloads the list: the secret leaves the page, the DOM and client state.
            <form method="get" action=LIST_URL>
                <button type="submit" class="primary">"Done"</button>
            </form>
        </Modal>
    }
}

#[component]
pub(super) fn RevokeDialog(
    id: String,
    tokens: Resource<Result<crate::tokens::TokenPage, crate::error::AppError>>,
) -> impl IntoView {
    let TokenActions { change, dialog, .. } = actions();
    let error = form_error(change.value());
    let label = token_label(tokens, id.clone());
    view! {
        <Modal title="Revoke token".into() on_escape=Callback::new(move |_| dialog.set(None))>
            <p>"Revoke " <strong>{label}</strong> "? Requests using it will fail at once. This cannot be undone."</p>
            <ActionForm action=change attr:class="form">
                <input type="hidden" name="id" value=id />
                <input type="hidden" name="action" value="revoke" />
                <FormError message=error />
                <button type="submit" class="danger">"Revoke token"</button>
            </ActionForm>
            <CloseButton label="Cancel" />
        </Modal>
    }
}

pub(super) fn token_label(
    tokens: Resource<Result<crate::tokens::TokenPage, crate::error::AppError>>,
    id: String,
) -> impl IntoView {
    view! {
        <Suspense>
            {move || {
                let id = id.clone();
                Suspend::new(async move {
                    tokens
                        .await
                        .ok()
                        .and_then(|p| p.tokens.into_iter().find(|t| t.id == id))
                        .map_or_else(|| "this token".to_string(), |t| format!("{} ({})", t.name, t.masked()))
                })
            }}
        </Suspense>
    }
}

#[component]
pub(super) fn RotateDialog(id: String) -> impl IntoView {
    let TokenActions { reissue, dialog, .. } = actions();
    let error = form_error(reissue.value());
    let on_submit = move |ev: ev::SubmitEvent| {
        use leptos::form::FromFormData;
        ev.prevent_default();
        if let Ok(input) = ReissueToken::from_event(&ev) {
            reissue.dispatch(input);
        }
    };
    let choices = [
        ("until_first_use", "Keep the old token until the new one is first used"),
        ("now", "Revoke the old token now"),
        ("1h", "Keep the old token for 1 hour"),
        ("24h", "Keep the old token for 24 hours"),
    ];
    view! {
        <Modal title="Rotate token".into() on_escape=Callback::new(move |_| dialog.set(None))>
            <p>"A new token with the same name, scopes, projects and expiry policy replaces this one."</p>
            <form method="post" action=LIST_URL class="form" on:submit=on_submit>
                <input type="hidden" name="intent" value="rotate" />
                <input type="hidden" name="id" value=id />
                <fieldset>
                    <legend>"The old token"</legend>
                    {choices.into_iter().enumerate().map(|(i, (value, text))| view! {
                        <label class="check"><input type="radio" name="old_token" value=value checked=i == 0 />{text}</label>
                    }).collect_view()}
                </fieldset>
                <FormError message=error />
                <button type="submit" class="primary">"Rotate token"</button>
            </form>
            <CloseButton label="Cancel" />
        </Modal>
    }
}

#[component]
pub(super) fn RenameDialog(
    id: String,
    tokens: Resource<Result<crate::tokens::TokenPage, crate::error::AppError>>,
) -> impl IntoView {
    let TokenActions { rename, dialog, .. } = actions();
    let error = form_error(rename.value());
    let label = token_label(tokens, id.clone());
    view! {
        <Modal title="Rename token".into() on_escape=Callback::new(move |_| dialog.set(None))>
            <p>"Renaming " {label} "."</p>
            <ActionForm action=rename attr:class="form">
                <input type="hidden" name="id" value=id />
                <label>"New name" <input name="name" maxlength="100" required /></label>
                <FormError message=error />
                <button type="submit" class="primary">"Save name"</button>
            </ActionForm>
            <CloseButton label="Cancel" />
        </Modal>
    }
}
