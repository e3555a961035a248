//! The signed-in part of the app: the settings shell (navigation, sign-out) and the
//! pages that hang off it.

use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect, A};

use crate::{
    error::AppError,
    people::{
        api::{whoami, Logout},
        CurrentUser,
    },
};

type UserResource = Resource<Result<Option<CurrentUser>, AppError>>;

/// The shell's signed-in person, for the pages inside it.
pub fn use_current_user() -> UserResource {
    expect_context::<UserResource>()
}

#[component]
pub fn SettingsShell() -> impl IntoView {
    let user: UserResource = Resource::new(|| (), |_| whoami());
    provide_context(user);
    let logout = ServerAction::<Logout>::new();
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match user.await {
                    Ok(Some(user)) => {
                        view! {
                            <div class="layout">
                                <header class="topbar">
                                    <a class="brand" href="/">"QA Hub"</a>
                                    <span class="who">{user.email} " · " {user.tenant_name} " · " {user.role.as_str()}</span>
                                    <ActionForm action=logout attr:class="logout">
                                        <button type="submit">"Sign out"</button>
                                    </ActionForm>
                                </header>
                                <nav class="sidebar" aria-label="Settings">
                                    <A href="/projects">"Test runs"</A>
                                    <p class="nav-group">"Settings"</p>
                                    <A href="/settings/projects">"Projects"</A>
                                    <A href="/settings/workspace">"Workspace"</A>
                                    <A href="/settings/members">"Members"</A>
                                    <p class="nav-group">"Developer"</p>
                                    <A href="/settings/developer/api-tokens">"API Tokens"</A>
                                    <A href="/settings/developer/trusted-ci">"Trusted CI"</A>
                                    <A href="/settings/audit-log">"Audit log"</A>
                                </nav>
                                <main class="content">
                                    <Outlet />
                                </main>
                            </div>
                        }
                            .into_any()
                    }
                    Ok(None) => view! { <Redirect path="/login" /> }.into_any(),
                    Err(err) => view! { <p role="alert">{err.message}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}
