//! The token list: filters, the table, a row and its actions menu.

use super::dialogs::{CreateDialog, DialogButton, RenameDialog, RevealDialog, RevokeDialog, RotateDialog};
#[allow(unused_imports)]
use super::*;

#[component]
pub fn ApiTokensPage() -> impl IntoView {
    let query = crate::components::use_query_params();
    let get = move |k: &str| query.with_untracked(|q| q.get(k)).filter(|v| !v.is_empty());
    let dialog = RwSignal::new(Dialog::from_query(get));
    let (q, status, cursor) = (get("q"), get("status"), get("cursor"));

    let issue = ServerAction::<IssueToken>::new();
    let reissue = ServerAction::<ReissueToken>::new();
    let change = ServerAction::<ChangeTokenStatus>::new();
    let rename = ServerAction::<RenameToken>::new();
    let reduce = ServerAction::<ReduceTokenScope>::new();
    provide_context(TokenActions { dialog, issue, reissue, change, rename, reduce });

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
                    manager.then(|| view! { <DialogButton label="Create token" class="primary" fields=vec![("create", "1".to_string())] open=Dialog::Create /> })
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
                    Ok(page) => view! { <TokenTable page manager /> }.into_any(),
                    Err(err) => view! { <p role="alert">{err.message}</p> }.into_any(),
                }
            })}
        </Transition>
        {move || match dialog.get() {
            Some(Dialog::Create) if revealed().is_none() => view! { <CreateDialog /> }.into_any(),
            Some(Dialog::Revoke(id)) => view! { <RevokeDialog id tokens /> }.into_any(),
            Some(Dialog::Rotate(id)) if revealed().is_none() => view! { <RotateDialog id /> }.into_any(),
            Some(Dialog::Rename(id)) => view! { <RenameDialog id tokens /> }.into_any(),
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

#[component]
pub(super) fn Filters() -> impl IntoView {
    let query = crate::components::use_query_params();
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

#[component]
pub(super) fn TokenTable(page: crate::tokens::TokenPage, manager: bool) -> impl IntoView {
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
                    {page.tokens.into_iter().map(|t| view! { <TokenRow t now manager /> }).collect_view()}
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
pub(super) fn TokenRow(t: TokenSummary, now: time::OffsetDateTime, manager: bool) -> impl IntoView {
    let TokenActions { change, reduce, .. } = actions();
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
                        {live.then(|| view! { <DialogButton label="Rename" fields=open("rename") open=Dialog::Rename(id.clone()) /> })}
                        {(status != TokenStatus::Revoked).then(|| view! { <DialogButton label="Rotate" fields=open("rotate") open=Dialog::Rotate(id.clone()) /> })}
                        {live.then(|| view! { <DialogButton label="Revoke" class="danger" fields=open("revoke") open=Dialog::Revoke(id.clone()) /> })}
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
