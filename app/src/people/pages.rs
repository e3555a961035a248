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
