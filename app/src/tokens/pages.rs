//! `/settings/developer/api-tokens`: the list, the create dialog, the one-time reveal,
//! and the row actions. Every control is a plain HTML form underneath (so the page
//! works without JavaScript); with JavaScript the same forms become a dialog flow.

use leptos::{ev, html, prelude::*, web_sys};
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    components::{form_error, FormError},
    projects::api::list_projects,
    settings::use_current_user,
    tokens::{
        api::{
            list_tokens, load_token_detail, ChangeTokenStatus, IssueToken, ReduceTokenScope, ReissueToken, RenameToken,
            LIST_URL,
        },
        expires_soon, relative_time, CreatedToken, Scope, TokenOwner, TokenStatus, TokenSummary, TokenUsage,
        USAGE_DAYS,
    },
};

/// Set by the server when a plain form post (no JavaScript) created or rotated a token:
/// the page it renders shows the reveal dialog once.
#[derive(Clone, Debug)]
pub struct Revealed(pub CreatedToken);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Dialog {
    Create,
    Revoke(String),
    Rotate(String),
    Rename(String),
}

impl Dialog {
    fn from_query(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        if get("create").is_some() {
            return Some(Dialog::Create);
        }
        let id = get("id")?;
        match get("dialog")?.as_str() {
            "revoke" => Some(Dialog::Revoke(id)),
            "rotate" => Some(Dialog::Rotate(id)),
            "rename" => Some(Dialog::Rename(id)),
            _ => None,
        }
    }
}

fn date(t: time::OffsetDateTime) -> String {
    t.date().to_string()
}

/// `2026-11-23 14:05 UTC`
fn date_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute())
}

/// "Retiring — last used from 203.0.113.7 at 2026-11-23 14:05 UTC"
fn retiring_text(t: &TokenSummary) -> String {
    match (t.last_used_at, &t.last_used_ip) {
        (Some(at), Some(ip)) => format!("Retiring — last used from {ip} at {}", date_time(at)),
        (Some(at), None) => format!("Retiring — last used at {}", date_time(at)),
        (None, _) => "Retiring — never used".to_string(),
    }
}

fn owner_label(t: &TokenSummary) -> String {
    if let Some(job) = &t.minted_for {
        return format!("Workspace (Trusted CI), minted for {job}");
    }
    match t.owner {
        TokenOwner::Workspace => "Workspace".to_string(),
        TokenOwner::User => t.created_by.clone().unwrap_or_else(|| "(removed person)".to_string()),
    }
}

/// "Only read requests in 30 days" and the one-click "Reduce to read".
#[component]
fn LeastPrivilegeHint(t: TokenSummary, manager: bool, reduce: ServerAction<ReduceTokenScope>) -> impl IntoView {
    let Some(to) = t.suggested_scope else { return ().into_any() };
    let what = match to {
        Scope::Read => "Only read requests",
        _ => "No admin requests",
    };
    let label = format!("Reduce to {}", to.as_str());
    view! {
        <div class="hint least-privilege" role="note">
            {format!("{what} in {USAGE_DAYS} days.")}
            {manager.then(|| view! {
                <ActionForm action=reduce attr:class="inline-form">
                    <input type="hidden" name="id" value=t.id.clone() />
                    <input type="hidden" name="scope" value=to.as_str() />
                    <button type="submit" aria-label=format!("{label}: {}", t.name)>{label.clone()}</button>
                </ActionForm>
            })}
        </div>
    }
    .into_any()
}

#[component]
pub fn ApiTokensPage() -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &str| query.with_untracked(|q| q.get(k)).filter(|v| !v.is_empty());
    let dialog = RwSignal::new(Dialog::from_query(get));
    let (q, status, cursor) = (get("q"), get("status"), get("cursor"));

    let issue = ServerAction::<IssueToken>::new();
    let reissue = ServerAction::<ReissueToken>::new();
    let change = ServerAction::<ChangeTokenStatus>::new();
    let rename = ServerAction::<RenameToken>::new();
    let reduce = ServerAction::<ReduceTokenScope>::new();

    let tokens = Resource::new(
        move || {
            (
                change.version().get(),
                rename.version().get(),
                issue.version().get(),
                reissue.version().get(),
                reduce.version().get(),
            )
        },
        move |_| list_tokens(q.clone(), status.clone(), cursor.clone()),
    );
    let user = use_current_user();
    let from_server = use_context::<Revealed>().map(|r| r.0);
    let server_reveal = Resource::new(
        || (),
        move |_| {
            let token = from_server.clone();
            async move { token }
        },
    );
    // The secret lives only in these action values (or the one server render) until "Done".
    let revealed =
        move || issue.value().get().and_then(Result::ok).or_else(|| reissue.value().get().and_then(Result::ok));

    view! {
        <Title text="API Tokens" />
        <div class="page-head">
            <h1>"API Tokens"</h1>
            <Suspense>
                {move || Suspend::new(async move {
                    let manager = matches!(user.await, Ok(Some(u)) if u.role.can_manage());
                    manager.then(|| view! { <DialogButton label="Create token" class="primary" fields=vec![("create", "1".to_string())] dialog open=Dialog::Create /> })
                })}
            </Suspense>
        </div>
        <p class="lead">
            "Tokens let CI pipelines, scripts and dashboards call the QA Hub API with "
            <code>"Authorization: Bearer qh_…"</code> ". Give each one only the scopes and projects it needs."
        </p>
        <Filters />
        <Transition fallback=|| view! { <p>"Loading tokens…"</p> }>
            {move || Suspend::new(async move {
                let manager = matches!(user.await, Ok(Some(u)) if u.role.can_manage());
                match tokens.await {
                    Ok(page) => view! { <TokenTable page manager dialog change reduce /> }.into_any(),
                    Err(err) => view! { <p role="alert">{err.message}</p> }.into_any(),
                }
            })}
        </Transition>
        {move || match dialog.get() {
            Some(Dialog::Create) if revealed().is_none() => view! { <CreateDialog issue dialog /> }.into_any(),
            Some(Dialog::Revoke(id)) => view! { <RevokeDialog id change dialog tokens /> }.into_any(),
            Some(Dialog::Rotate(id)) if revealed().is_none() => view! { <RotateDialog id reissue dialog /> }.into_any(),
            Some(Dialog::Rename(id)) => view! { <RenameDialog id rename dialog tokens /> }.into_any(),
            _ => ().into_any(),
        }}
        {move || revealed().map(|created| view! { <RevealDialog created /> })}
        <Suspense>
            {move || Suspend::new(async move {
                server_reveal.await.map(|created| view! { <RevealDialog created /> })
            })}
        </Suspense>
    }
}

/// A button that opens a dialog: a GET form to `?…` without JavaScript, a signal with it.
#[component]
fn DialogButton(
    label: &'static str,
    #[prop(optional)] class: &'static str,
    fields: Vec<(&'static str, String)>,
    dialog: RwSignal<Option<Dialog>>,
    open: Dialog,
) -> impl IntoView {
    view! {
        <form method="get" action=LIST_URL class="inline-form">
            {fields.into_iter().map(|(name, value)| view! { <input type="hidden" name=name value=value /> }).collect_view()}
            <button
                type="submit"
                class=class
                on:click=move |ev: ev::MouseEvent| {
                    ev.prevent_default();
                    dialog.set(Some(open.clone()));
                }
            >
                {label}
            </button>
        </form>
    }
}

/// Closes a dialog: back to the list without JavaScript, a signal with it.
#[component]
fn CloseButton(label: &'static str, dialog: RwSignal<Option<Dialog>>) -> impl IntoView {
    view! {
        <form method="get" action=LIST_URL class="inline-form">
            <button
                type="submit"
                on:click=move |ev: ev::MouseEvent| {
                    ev.prevent_default();
                    dialog.set(None);
                }
            >
                {label}
            </button>
        </form>
    }
}

#[component]
fn Filters() -> impl IntoView {
    let query = use_query_map();
    let q = move || query.read().get("q").unwrap_or_default();
    let status = move || query.read().get("status").unwrap_or_default();
    view! {
        <form method="get" action=LIST_URL class="filters" role="search">
            <label>
                "Search" <input type="search" name="q" placeholder="Name or prefix" prop:value=q />
            </label>
            <label>
                "Status"
                <select name="status">
                    {std::iter::once("")
                        .chain(TokenStatus::ALL.map(TokenStatus::as_str))
                        .map(|value| {
                            let text = if value.is_empty() { "All".to_string() } else { capitalize(value) };
                            view! { <option value=value selected=move || status() == value>{text}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <button type="submit">"Filter"</button>
        </form>
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

fn status_label(status: TokenStatus) -> &'static str {
    match status {
        TokenStatus::Active => "Active",
        TokenStatus::Disabled => "Disabled",
        TokenStatus::Expired => "Expired",
        TokenStatus::Revoked => "Revoked",
    }
}

#[component]
fn TokenTable(
    page: crate::tokens::TokenPage,
    manager: bool,
    dialog: RwSignal<Option<Dialog>>,
    change: ServerAction<ChangeTokenStatus>,
    reduce: ServerAction<ReduceTokenScope>,
) -> impl IntoView {
    let now = page.now;
    let soon: Vec<String> =
        page.tokens.iter().filter(|t| expires_soon(t.expires_at, now)).map(|t| t.name.clone()).collect();
    if page.tokens.is_empty() {
        return view! { <p class="empty">"No tokens match."</p> }.into_any();
    }
    let next = page.next_cursor.clone();
    view! {
        {(!soon.is_empty()).then(|| view! {
            <p class="banner warning" role="status">
                "Expiring within 7 days: " {soon.join(", ")} ". Rotate them before they stop working."
            </p>
        })}
        <div class="table-wrap">
            <table class="data tokens">
                <thead>
                    <tr>
                        <th scope="col">"Token"</th>
                        <th scope="col">"Access"</th>
                        <th scope="col">"Last used · expires"</th>
                        <th scope="col">"Status"</th>
                        {manager.then(|| view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> })}
                    </tr>
                </thead>
                <tbody>
                    {page.tokens.into_iter().map(|t| view! { <TokenRow t now manager dialog change reduce /> }).collect_view()}
                </tbody>
            </table>
        </div>
        {next.map(|cursor| view! {
            <form method="get" action=LIST_URL class="pager">
                <input type="hidden" name="cursor" value=cursor />
                <button type="submit">"Next page"</button>
            </form>
        })}
    }
    .into_any()
}

#[component]
fn TokenRow(
    t: TokenSummary,
    now: time::OffsetDateTime,
    manager: bool,
    dialog: RwSignal<Option<Dialog>>,
    change: ServerAction<ChangeTokenStatus>,
    reduce: ServerAction<ReduceTokenScope>,
) -> impl IntoView {
    let soon = expires_soon(t.expires_at, now);
    let status = t.status;
    let id = t.id.clone();
    let actions = manager.then(|| {
        let toggle = match status {
            TokenStatus::Active => Some(("disable", "Disable")),
            TokenStatus::Disabled => Some(("enable", "Enable")),
            _ => None,
        };
        let live = matches!(status, TokenStatus::Active | TokenStatus::Disabled);
        let id_for = id.clone();
        let open = move |kind: &'static str| vec![("dialog", kind.to_string()), ("id", id_for.clone())];
        let name = t.name.clone();
        view! {
            <td class="actions">
                // A real disclosure: keyboard-operable, and it opens without JavaScript.
                <details class="row-menu">
                    <summary>"Actions" <span class="visually-hidden">{format!(" for {name}")}</span></summary>
                    <div class="menu">
                        {toggle.map(|(action, label)| {
                            let id = id.clone();
                            view! {
                                <ActionForm action=change attr:class="inline-form">
                                    <input type="hidden" name="id" value=id />
                                    <input type="hidden" name="action" value=action />
                                    <button type="submit">{label}</button>
                                </ActionForm>
                            }
                        })}
                        {live.then(|| view! { <DialogButton label="Rename" fields=open("rename") dialog open=Dialog::Rename(id.clone()) /> })}
                        {(status != TokenStatus::Revoked).then(|| view! { <DialogButton label="Rotate" fields=open("rotate") dialog open=Dialog::Rotate(id.clone()) /> })}
                        {live.then(|| view! { <DialogButton label="Revoke" class="danger" fields=open("revoke") dialog open=Dialog::Revoke(id.clone()) /> })}
                    </div>
                </details>
            </td>
        }
    });
    // Four columns and a menu: what does not fit a column is a secondary line of it.
    view! {
        <tr>
            <th scope="row">
                <a href=format!("{LIST_URL}/{}", t.id) rel="external">{t.name.clone()}</a>
                <div class="secondary">
                    <code>{t.masked()}</code> " · "
                    {match t.owner {
                        TokenOwner::Workspace => view! { <span class="badge owner-workspace">"Workspace"</span> }.into_any(),
                        TokenOwner::User => owner_label(&t).into_any(),
                    }}
                </div>
                {t.minted_for.clone().map(|job| view! { <div class="secondary minted">{format!("Minted for {job}")}</div> })}
            </th>
            <td>
                <span class="badges">
                    {t.scopes.iter().map(|s| view! { <span class=format!("badge scope-{}", s.as_str())>{s.as_str()}</span> }).collect_view()}
                </span>
                <LeastPrivilegeHint t=t.clone() manager reduce />
                <div class="secondary">{t.projects.as_ref().map_or_else(|| "All projects".to_string(), |p| p.join(", "))}</div>
            </td>
            <td>
                {if t.retiring() {
                    view! { <span class="retiring">{retiring_text(&t)}</span> }.into_any()
                } else {
                    match (t.last_used_at, t.last_used_ip.clone()) {
                        (Some(at), ip) => format!("{}{}", relative_time(at, now), ip.map(|ip| format!(" · {ip}")).unwrap_or_default()),
                        (None, _) => "Never used".to_string(),
                    }.into_any()
                }}
                <div class="secondary">
                    {t.expires_at.map_or_else(|| "Never expires".to_string(), |at| format!("Expires {}", date(at)))}
                    {soon.then(|| view! { " " <span class="badge warning">"Expires soon"</span> })}
                    {t.beyond_max_lifetime.then(|| view! { " " <span class="badge warning" title="It lives longer than the workspace's maximum token lifetime: rotate it or give it an earlier expiry.">"Beyond max lifetime"</span> })}
                </div>
            </td>
            <td><span class=format!("badge status-{}", status.as_str())>{status_label(status)}</span></td>
            {actions}
        </tr>
    }
}

/// The token page's actions for owners and admins: the same server function and the
/// same dialogs as the list (Rename, Rotate and Revoke open the list's dialog for this
/// token, with or without JavaScript).
#[component]
fn TokenPageActions(t: TokenSummary, change: ServerAction<ChangeTokenStatus>) -> impl IntoView {
    let status = t.status;
    let live = matches!(status, TokenStatus::Active | TokenStatus::Disabled);
    let toggle = match status {
        TokenStatus::Active => Some(("disable", "Disable")),
        TokenStatus::Disabled => Some(("enable", "Enable")),
        _ => None,
    };
    let id = t.id.clone();
    let dialog = move |kind: &'static str, label: &'static str, class: &'static str| {
        view! {
            <form method="get" action=LIST_URL class="inline-form">
                <input type="hidden" name="dialog" value=kind />
                <input type="hidden" name="id" value=id.clone() />
                <button type="submit" class=class>{label}</button>
            </form>
        }
    };
    view! {
        <section class="token-actions" aria-label="Token actions">
            {toggle.map(|(action, label)| view! {
                <ActionForm action=change attr:class="inline-form">
                    <input type="hidden" name="id" value=t.id.clone() />
                    <input type="hidden" name="action" value=action />
                    <button type="submit">{label}</button>
                </ActionForm>
            })}
            {live.then(|| dialog("rename", "Rename", ""))}
            {(status != TokenStatus::Revoked).then(|| dialog("rotate", "Rotate", ""))}
            {live.then(|| dialog("revoke", "Revoke", "danger"))}
        </section>
    }
}

/// A modal dialog: focus moves in when it opens and Tab stays inside. Escape closes
/// it only when `escape_closes`, so the reveal cannot be dismissed by accident.
#[component]
fn Modal(
    title: String,
    #[prop(optional)] escape_closes: Option<RwSignal<Option<Dialog>>>,
    children: Children,
) -> impl IntoView {
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
                if let Some(dialog) = escape_closes {
                    dialog.set(None);
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

#[component]
fn CreateDialog(issue: ServerAction<IssueToken>, dialog: RwSignal<Option<Dialog>>) -> impl IntoView {
    let error = form_error(issue.value());
    let projects = Resource::new(|| (), |_| list_projects());
    let (read, write, admin) = (RwSignal::new(true), RwSignal::new(false), RwSignal::new(false));
    let specific = RwSignal::new(false);
    let expiration = RwSignal::new("30d".to_string());
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
        <Modal title="Create token".into() escape_closes=dialog>
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
                        <option value="never">"Never"</option>
                        <option value="30d" selected>"30 days"</option>
                        <option value="90d">"90 days"</option>
                        <option value="custom">"Custom date"</option>
                    </select>
                </label>
                <label class:collapsed=move || js.get() && expiration.get() != "custom">
                    "Expiry date" <input type="date" name="expires_on" />
                    <span class="hint">"The token works until the end of that day (UTC)."</span>
                </label>
                {move || (expiration.get() == "never").then(|| view! {
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
            <CloseButton label="Cancel" dialog />
        </Modal>
    }
}

#[component]
fn RevealDialog(created: CreatedToken) -> impl IntoView {
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
fn RevokeDialog(
    id: String,
    change: ServerAction<ChangeTokenStatus>,
    dialog: RwSignal<Option<Dialog>>,
    tokens: Resource<Result<crate::tokens::TokenPage, crate::error::AppError>>,
) -> impl IntoView {
    let error = form_error(change.value());
    let label = token_label(tokens, id.clone());
    view! {
        <Modal title="Revoke token".into() escape_closes=dialog>
            <p>"Revoke " <strong>{label}</strong> "? Requests using it will fail at once. This cannot be undone."</p>
            <ActionForm action=change attr:class="form">
                <input type="hidden" name="id" value=id />
                <input type="hidden" name="action" value="revoke" />
                <FormError message=error />
                <button type="submit" class="danger">"Revoke token"</button>
            </ActionForm>
            <CloseButton label="Cancel" dialog />
        </Modal>
    }
}

fn token_label(
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
fn RotateDialog(id: String, reissue: ServerAction<ReissueToken>, dialog: RwSignal<Option<Dialog>>) -> impl IntoView {
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
        <Modal title="Rotate token".into() escape_closes=dialog>
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
            <CloseButton label="Cancel" dialog />
        </Modal>
    }
}

#[component]
fn RenameDialog(
    id: String,
    rename: ServerAction<RenameToken>,
    dialog: RwSignal<Option<Dialog>>,
    tokens: Resource<Result<crate::tokens::TokenPage, crate::error::AppError>>,
) -> impl IntoView {
    let error = form_error(rename.value());
    let label = token_label(tokens, id.clone());
    view! {
        <Modal title="Rename token".into() escape_closes=dialog>
            <p>"Renaming " {label} "."</p>
            <ActionForm action=rename attr:class="form">
                <input type="hidden" name="id" value=id />
                <label>"New name" <input name="name" maxlength="100" required /></label>
                <FormError message=error />
                <button type="submit" class="primary">"Save name"</button>
            </ActionForm>
            <CloseButton label="Cancel" dialog />
        </Modal>
    }
}

/// `/settings/developer/api-tokens/{id}`: one token's usage over 30 days, its recent
/// addresses, a least-privilege hint and, during a rotation, what is retiring.
#[component]
pub fn ApiTokenPage() -> impl IntoView {
    use leptos_router::hooks::use_params_map;
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let reduce = ServerAction::<ReduceTokenScope>::new();
    let change = ServerAction::<ChangeTokenStatus>::new();
    let detail = Resource::new(move || (id(), reduce.version().get()), |(id, _)| load_token_detail(id));
    let error = form_error(reduce.value());
    let user = use_current_user();
    view! {
        <Title text="API token" />
        <p><a href=LIST_URL>"← API Tokens"</a></p>
        <Transition fallback=|| view! { <p>"Loading the token…"</p> }>
            {move || Suspend::new(async move {
                let manager = matches!(user.await, Ok(Some(u)) if u.role.can_manage());
                match detail.await {
                    Ok(d) => {
                        let t = d.token.clone();
                        view! {
                            <div class="page-head">
                                <h1>{t.name.clone()}</h1>
                                <span class=format!("badge status-{}", t.status.as_str())>{status_label(t.status)}</span>
                            </div>
                            {t.retiring().then(|| view! {
                                <p class="banner warning retiring" role="status">
                                    {retiring_text(&t)} ". "
                                    {match (t.retire_at, t.retire_on_first_use, d.replaced_by_masked.clone()) {
                                        (Some(at), false, _) => format!("It stops working at {}.", date_time(at)),
                                        (at, _, new) => format!(
                                            "{} takes over at its first use.{}",
                                            new.unwrap_or_else(|| "Its replacement".to_string()),
                                            at.map(|at| format!(" It stops working at {} at the latest.", date_time(at)))
                                                .unwrap_or_default(),
                                        ),
                                    }}
                                </p>
                            })}
                            <dl class="facts">
                                <dt>"Token"</dt><dd><code>{t.masked()}</code></dd>
                                <dt>"Scopes"</dt><dd>{t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")}</dd>
                                <dt>"Projects"</dt><dd>{t.projects.as_ref().map_or_else(|| "All projects".to_string(), |p| p.join(", "))}</dd>
                                <dt>"Owner"</dt><dd>{owner_label(&t)}</dd>
                                <dt>"Created"</dt><dd>{date(t.created_at)} {t.created_by.clone().map(|by| format!(" by {by}"))}</dd>
                                <dt>"Expires"</dt><dd>{t.expires_at.map_or_else(|| "Never".to_string(), date)}</dd>
                                <dt>"IP allowlist"</dt><dd>{if t.ip_allowlist.is_empty() { "Any address (the workspace's list applies)".to_string() } else { t.ip_allowlist.join(", ") }}</dd>
                                <dt>"Last used"</dt><dd>{t.last_used_at.map_or_else(|| "Never".to_string(), |at| relative_time(at, d.now))}</dd>
                            </dl>
                            {manager.then(|| view! { <TokenPageActions t=t.clone() change /> })}
                            <LeastPrivilegeHint t=t.clone() manager reduce />
                            <FormError message=error />
                            <section aria-labelledby="usage-heading">
                                <h2 id="usage-heading">{format!("Requests, last {USAGE_DAYS} days")}</h2>
                                <UsageChart usage=d.usage.clone() />
                            </section>
                            <section aria-labelledby="addresses-heading">
                                <h2 id="addresses-heading">"Recent addresses"</h2>
                                {if d.addresses.is_empty() {
                                    view! { <p class="empty">"Not used yet."</p> }.into_any()
                                } else {
                                    view! {
                                        <table class="data addresses">
                                            <thead><tr>
                                                <th scope="col">"Address"</th>
                                                <th scope="col">"Last used"</th>
                                                <th scope="col">"First seen"</th>
                                            </tr></thead>
                                            <tbody>
                                                {d.addresses.iter().map(|a| view! {
                                                    <tr>
                                                        <th scope="row"><code>{a.ip.clone()}</code></th>
                                                        <td>{date_time(a.last_seen_at)}</td>
                                                        <td>{date_time(a.first_seen_at)}</td>
                                                    </tr>
                                                }).collect_view()}
                                            </tbody>
                                        </table>
                                    }.into_any()
                                }}
                            </section>
                        }.into_any()
                    }
                    Err(err) => view! { <h1>"API token"</h1> <p role="alert">{err.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Requests per day as stacked bars (read, write, admin), drawn as inline SVG.
#[component]
fn UsageChart(usage: TokenUsage) -> impl IntoView {
    const HEIGHT: f64 = 120.0;
    const BAR: f64 = 14.0;
    const STEP: f64 = 20.0;
    let max = usage.days.iter().map(|d| d.counts.total()).max().unwrap_or(0).max(1) as f64;
    let width = STEP * usage.days.len() as f64;
    let total = usage.total;
    let summary = format!(
        "Requests per day over the last {USAGE_DAYS} days: {} read, {} write, {} admin in all; the busiest day had {}.",
        total.read, total.write, total.admin, max as u64
    );
    let bars = usage
        .days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let x = i as f64 * STEP + (STEP - BAR) / 2.0;
            let c = day.counts;
            let mut top = HEIGHT;
            let segments = [("read", c.read), ("write", c.write), ("admin", c.admin)]
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(kind, n)| {
                    let h = (n as f64 / max * HEIGHT).max(1.0);
                    top -= h;
                    view! { <rect class=format!("bar-{kind}") x=x y=top width=BAR height=h /> }
                })
                .collect_view();
            let title = format!("{}: {} read, {} write, {} admin", day.date, c.read, c.write, c.admin);
            view! { <g class="day"><title>{title}</title>{segments}</g> }
        })
        .collect_view();
    let first = usage.days.first().map(|d| d.date.clone()).unwrap_or_default();
    let last = usage.days.last().map(|d| d.date.clone()).unwrap_or_default();
    view! {
        <figure class="usage-chart">
            <svg role="img" aria-label=summary.clone() viewBox=format!("0 0 {width} {}", HEIGHT + 16.0) preserveAspectRatio="none">
                <line class="axis" x1="0" y1=HEIGHT x2=width y2=HEIGHT />
                {bars}
                <text class="tick" x="0" y=HEIGHT + 14.0>{first}</text>
                <text class="tick end" x=width y=HEIGHT + 14.0 text-anchor="end">{last}</text>
            </svg>
            <figcaption>
                <span class="legend read">"read " {total.read}</span>
                <span class="legend write">"write " {total.write}</span>
                <span class="legend admin">"admin " {total.admin}</span>
            </figcaption>
        </figure>
    }
}
