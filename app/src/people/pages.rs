//! The sign-in and first-run pages. Plain forms underneath, so they work without JS.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;

use crate::{
    components::{form_error, FormError},
    people::api::{setup_needed, Login, Setup},
};

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let error = form_error(login.value());
    let needs_setup = Resource::new(|| (), |_| setup_needed());
    view! {
        <Title text="Sign in" />
        <main class="auth">
            <Suspense>
                {move || Suspend::new(async move {
                    matches!(needs_setup.await, Ok(true)).then(|| view! { <Redirect path="/setup" /> })
                })}
            </Suspense>
            <h1>"Sign in to QA Hub"</h1>
            <ActionForm action=login attr:class="card form">
                <label>
                    "Email" <input type="email" name="email" autocomplete="username" required />
                </label>
                <label>
                    "Password"
                    <input type="password" name="password" autocomplete="current-password" required />
                </label>
                <FormError message=error />
                <button type="submit" class="primary">
                    "Sign in"
                </button>
            </ActionForm>
        </main>
    }
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let setup = ServerAction::<Setup>::new();
    let error = form_error(setup.value());
    let needs_setup = Resource::new(|| (), |_| setup_needed());
    view! {
        <Title text="Set up" />
        <main class="auth">
            <h1>"Set up QA Hub"</h1>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    if matches!(needs_setup.await, Ok(true)) {
                        view! {
                            <p>"Create your workspace and its owner account. This page is only offered once."</p>
                            <ActionForm action=setup attr:class="card form">
                                <label>
                                    "Workspace name" <input name="tenant" maxlength="100" autocomplete="organization" required />
                                </label>
                                <label>
                                    "Email" <input type="email" name="email" autocomplete="username" required />
                                </label>
                                <label>
                                    "Password"
                                    <input type="password" name="password" minlength="8" autocomplete="new-password" required />
                                    <span class="hint">"At least 8 characters."</span>
                                </label>
                                <FormError message=error />
                                <button type="submit" class="primary">
                                    "Create workspace"
                                </button>
                            </ActionForm>
                        }
                            .into_any()
                    } else {
                        view! {
                            <p role="status">"QA Hub is already set up."</p>
                            <p>
                                <a href="/login">"Sign in"</a>
                            </p>
                        }
                            .into_any()
                    }
                })}
            </Suspense>
        </main>
    }
}

/// `/settings/members`: the people of the workspace; owners and admins suspend and
/// reactivate them. "Suspend" first shows which API tokens would stop.
#[component]
pub fn MembersPage() -> impl IntoView {
    use crate::{
        people::api::{list_members, SetMemberStatus, MEMBERS_URL},
        settings::use_current_user,
    };
    let change = ServerAction::<SetMemberStatus>::new();
    let error = form_error(change.value());
    let members = Resource::new(move || change.version().get(), |_| list_members());
    let user = use_current_user();
    view! {
        <Title text="Members" />
        <h1>"Members"</h1>
        <p class="lead">"A suspended person cannot sign in, and the API tokens they own stop working. Workspace tokens they created keep working."</p>
        <FormError message=error />
        <Transition fallback=|| view! { <p>"Loading members…"</p> }>
            {move || Suspend::new(async move {
                let me = user.await.ok().flatten();
                let manager = me.as_ref().is_some_and(|u| u.role.can_manage());
                let my_id = me.map(|u| u.user_id).unwrap_or_default();
                match members.await {
                    Ok(list) => view! {
                        <div class="table-wrap">
                            <table class="data members">
                                <thead>
                                    <tr>
                                        <th scope="col">"Email"</th>
                                        <th scope="col">"Role"</th>
                                        <th scope="col">"Status"</th>
                                        {manager.then(|| view! { <th scope="col">"Actions"</th> })}
                                    </tr>
                                </thead>
                                <tbody>
                                    {list.into_iter().map(|m| {
                                        let action = (manager && m.user_id != my_id).then(|| {
                                            if m.suspended {
                                                view! {
                                                    <td class="actions">
                                                        <ActionForm action=change attr:class="inline-form">
                                                            <input type="hidden" name="user_id" value=m.user_id.clone() />
                                                            <input type="hidden" name="action" value="reactivate" />
                                                            <button type="submit">"Reactivate"</button>
                                                        </ActionForm>
                                                    </td>
                                                }.into_any()
                                            } else {
                                                view! {
                                                    <td class="actions">
                                                        <a class="button" rel="external" href=format!("{MEMBERS_URL}/{}/suspend", m.user_id)
                                                            aria-label=format!("Suspend {}", m.email)>"Suspend"</a>
                                                    </td>
                                                }.into_any()
                                            }
                                        });
                                        view! {
                                            <tr>
                                                <th scope="row">{m.email.clone()}</th>
                                                <td>{m.role.as_str()}</td>
                                                <td>{if m.suspended {
                                                    view! { <span class="badge status-revoked">"Suspended"</span> }
                                                } else {
                                                    view! { <span class="badge status-active">"Active"</span> }
                                                }}</td>
                                                {action}
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                    Err(err) => view! { <p role="alert">{err.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// `/settings/members/{id}/suspend`: what suspending this person stops, then "Suspend".
#[component]
pub fn SuspendMemberPage() -> impl IntoView {
    use leptos_router::hooks::use_params_map;

    use crate::{
        people::api::{suspension_preview, SetMemberStatus, MEMBERS_URL},
        tokens::api::LIST_URL,
    };
    let params = use_params_map();
    let user_id = move || params.read().get("id").unwrap_or_default();
    let change = ServerAction::<SetMemberStatus>::new();
    let error = form_error(change.value());
    let preview = Resource::new(user_id, suspension_preview);
    view! {
        <Title text="Suspend a member" />
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match preview.await {
                    Ok(p) => {
                        let email = p.member.email.clone();
                        view! {
                            <h1>"Suspend " {email.clone()} "?"</h1>
                            <section aria-labelledby="stopping-heading" class="card">
                                <h2 id="stopping-heading">"API tokens that will stop working"</h2>
                                {if p.stopping.is_empty() {
                                    view! { <p>"None: " {email.clone()} " owns no working API tokens in this workspace."</p> }.into_any()
                                } else {
                                    view! {
                                        <ul class="stopping">
                                            {p.stopping.iter().map(|t| view! {
                                                <li>
                                                    <a href=format!("{LIST_URL}/{}", t.id) rel="external">{t.name.clone()}</a> " "
                                                    <code>{t.masked()}</code> " · "
                                                    {t.last_used_at.map_or_else(|| "never used".to_string(), |at| format!("last used {}", at.date()))}
                                                </li>
                                            }).collect_view()}
                                        </ul>
                                    }.into_any()
                                }}
                                {(p.surviving > 0).then(|| view! {
                                    <p class="hint">{format!("{} workspace token(s) they created keep working.", p.surviving)}</p>
                                })}
                            </section>
                            {match p.refusal.clone() {
                                Some(why) => view! { <p class="banner warning" role="status">{why}</p> }.into_any(),
                                None => view! {
                                    <ActionForm action=change attr:class="form">
                                        <input type="hidden" name="user_id" value=p.member.user_id.clone() />
                                        <input type="hidden" name="action" value="suspend" />
                                        <FormError message=error />
                                        <button type="submit" class="danger">"Suspend " {email.clone()}</button>
                                    </ActionForm>
                                }.into_any(),
                            }}
                            <p><a href=MEMBERS_URL rel="external">"Back to members"</a></p>
                        }.into_any()
                    }
                    Err(err) => view! { <h1>"Suspend a member"</h1> <p role="alert">{err.message}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}
