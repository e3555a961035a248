#![recursion_limit = "256"]
//! QA Hub's app crate: the pages, the server functions behind them and the domain they
//! share with the `/api/v1` handlers. Everything under an `ssr` gate stays off the wasm.

pub mod audit;
pub mod components;
pub mod error;
pub mod people;
pub mod projects;
pub mod settings;
pub mod tenants;
pub mod testing;
pub mod tokens;
pub mod trust;

#[cfg(feature = "ssr")]
pub mod actor;
#[cfg(feature = "ssr")]
pub mod addresses;
#[cfg(feature = "ssr")]
pub mod credentials;
#[cfg(feature = "ssr")]
pub mod db;
#[cfg(feature = "ssr")]
pub mod housekeeping;
#[cfg(feature = "ssr")]
pub mod policy;
#[cfg(feature = "ssr")]
pub mod server_fn_ctx;
#[cfg(feature = "ssr")]
pub mod state;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::{
    components::{ParentRoute, Redirect, Route, Router, Routes},
    path, SsrMode,
};

use crate::{
    audit::pages::AuditLogPage,
    people::{
        api::{setup_needed, whoami, HOME},
        pages::{LoginPage, MembersPage, SetupPage, SuspendMemberPage},
    },
    projects::pages::ProjectsPage,
    settings::SettingsShell,
    tenants::pages::WorkspacePage,
    testing::pages::{ProjectRunsPage, ProjectsOverviewPage, RunPage},
    tokens::pages::{ApiTokenPage, ApiTokensPage},
    trust::pages::TrustedCiPage,
};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <HydrationScripts options=options.clone() />
                // /pkg/qahub.<hash>.css when cargo-leptos hashed the build's files.
                <HashedStylesheet options id="leptos" />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser, after hydration: the marker tells tests (and
    // people reading the DOM) that the wasm bundle took over the server's HTML.
    Effect::new(|_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    // Async SSR: pages wait for their data, so redirects are real 302s and every page
    // is complete HTML for browsers without JavaScript.
    view! {
        <Title formatter=|title: String| if title.is_empty() { "QA Hub".to_string() } else { format!("{title} · QA Hub") } />
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/") view=Home ssr=SsrMode::Async />
                <Route path=path!("/setup") view=SetupPage ssr=SsrMode::Async />
                <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async />
                <ParentRoute path=path!("/projects") view=SettingsShell ssr=SsrMode::Async>
                    <Route path=path!("") view=ProjectsOverviewPage ssr=SsrMode::Async />
                    <Route path=path!(":key") view=ProjectRunsPage ssr=SsrMode::Async />
                    <Route path=path!(":key/runs/:id") view=RunPage ssr=SsrMode::Async />
                </ParentRoute>
                <ParentRoute path=path!("/settings") view=SettingsShell ssr=SsrMode::Async>
                    <Route path=path!("") view=|| view! { <Redirect path=HOME /> } ssr=SsrMode::Async />
                    <Route path=path!("projects") view=ProjectsPage ssr=SsrMode::Async />
                    <Route path=path!("developer/api-tokens") view=ApiTokensPage ssr=SsrMode::Async />
                    <Route path=path!("developer/api-tokens/:id") view=ApiTokenPage ssr=SsrMode::Async />
                    <Route path=path!("developer/trusted-ci") view=TrustedCiPage ssr=SsrMode::Async />
                    <Route path=path!("members") view=MembersPage ssr=SsrMode::Async />
                    <Route path=path!("members/:id/suspend") view=SuspendMemberPage ssr=SsrMode::Async />
                    <Route path=path!("audit-log") view=AuditLogPage ssr=SsrMode::Async />
                    <Route path=path!("workspace") view=WorkspacePage ssr=SsrMode::Async />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// `/` sends people where they belong: first-run setup, sign-in, or their settings.
#[component]
fn Home() -> impl IntoView {
    let target = Resource::new(
        || (),
        |_| async {
            if setup_needed().await.unwrap_or(false) {
                "/setup".to_string()
            } else if matches!(whoami().await, Ok(Some(_))) {
                HOME.to_string()
            } else {
                "/login".to_string()
            }
        },
    );
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                let to = target.await;
                view! { <Redirect path=to /> }
            })}
        </Suspense>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found" />
        <main class="auth">
            <h1>"Page not found"</h1>
            <p>
                <a href="/">"Go to QA Hub"</a>
            </p>
        </main>
    }
}
