//! `/settings/audit-log`: newest first, filtered by action, paginated. Plain GET forms.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::audit::{api::list_audit, Party};

const URL: &str = "/settings/audit-log";

fn party(p: &Party) -> String {
    p.label.clone().or_else(|| p.id.clone()).unwrap_or_else(|| p.kind.clone())
}

#[component]
pub fn AuditLogPage() -> impl IntoView {
    let query = crate::components::use_query_params();
    let action = query.with_untracked(|q| q.get("action")).unwrap_or_default();
    let before = query.with_untracked(|q| q.get("before"));
    let selected = action.clone();
    let page = Resource::new(|| (), move |_| list_audit(Some(action.clone()), before.clone()));
    view! {
        <Title text="Audit log" />
        <h1>"Audit log"</h1>
        <p class="lead">"Sign-ins, token events and settings changes, with who did them and from where."</p>
        <form method="get" action=URL class="filters">
            <label>
                "Action"
                <select name="action">
                    <option value="">"All actions"</option>
                    {crate::audit::AuditAction::ALL
                        .iter()
                        .map(|a| {
                            let a = a.as_str();
                            view! { <option value=a selected=selected == a>{a}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <button type="submit">"Filter"</button>
        </form>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(page) if page.entries.is_empty() => view! { <p class="empty">"Nothing recorded yet."</p> }.into_any(),
                    Ok(page) => {
                        let filter = query.with_untracked(|q| q.get("action")).unwrap_or_default();
                        view! {
                            <div class="table-wrap">
                                <table class="data">
                                    <thead>
                                        <tr>
                                            <th scope="col">"Time (UTC)"</th>
                                            <th scope="col">"Actor"</th>
                                            <th scope="col">"Action"</th>
                                            <th scope="col">"Target"</th>
                                            <th scope="col">"IP"</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {page.entries.into_iter().map(|e| view! {
                                            <tr>
                                                <td>{format!("{} {:02}:{:02}:{:02}", e.created_at.date(), e.created_at.hour(), e.created_at.minute(), e.created_at.second())}</td>
                                                <td>{party(&e.actor)}</td>
                                                <td><code>{e.action.clone()}</code></td>
                                                <td>{e.target.as_ref().map(party).unwrap_or_default()}</td>
                                                <td>{e.ip.clone().unwrap_or_default()}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            {page.next_before.map(|before| view! {
                                <form method="get" action=URL class="pager">
                                    <input type="hidden" name="action" value=filter.clone() />
                                    <input type="hidden" name="before" value=before />
                                    <button type="submit">"Older entries"</button>
                                </form>
                            })}
                        }.into_any()
                    }
                    Err(err) => view! { <p role="alert">{err.message}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}
