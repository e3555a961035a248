//! The `qahub` server: builds the whole application (pages, server functions, `/api/v1`,
//! health) so that `main`, the tests and the benchmarks start the very same thing.

pub mod api_v1;
pub mod assets;
pub mod backup;
pub mod cli;
pub mod config;
mod health;
pub mod limits;
pub mod metrics;
mod same_origin;
mod server_fn_status;
pub mod sessions;
mod token_forms;

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context;
use axum::{routing::get, Router};
use http::{header, HeaderName, Request};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    sensitive_headers::SetSensitiveHeadersLayer,
    trace::TraceLayer,
};

use app::{shell, state::AppState, App};

pub use config::Config;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Opens the database (running its migrations) and returns the app's state.
pub async fn build_state(config: &Config) -> anyhow::Result<AppState> {
    let db = app::db::connect(&config.database_url, 16).await.map_err(anyhow::Error::msg)?;
    let leptos_options = config.site.leptos_options(config.listen);
    AppState::new(leptos_options, db, config.settings.clone()).await.map_err(|e| anyhow::anyhow!("cannot start: {e}"))
}

/// The whole HTTP application for a given state.
pub fn build_router(state: AppState, sessions: sessions::Store, limits: limits::Limits, site: &assets::Site) -> Router {
    crate::metrics::install();
    let routes = generate_route_list(App);
    let leptos_options = (*state.leptos_options).clone();
    let secure = state.settings.secure_cookies;
    let router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(crate::metrics::render))
        .nest("/api/v1", api_v1::router(state.clone()))
        .route("/api/docs", get(api_v1::openapi::docs))
        .route("/api/docs/redoc.standalone.js", get(api_v1::openapi::redoc_js))
        .route(app::tokens::api::LIST_URL, axum::routing::post(token_forms::post))
        .nest("/pkg", site.pkg_router())
        .merge(site.top_level_router())
        .leptos_routes(&state, routes, move || shell(leptos_options.clone()));
    // A folder's other files (favicon, robots.txt) or the not-found page; an embedded
    // site's are routes above, and nothing is read from disk.
    let router = match site {
        assets::Site::Folder { .. } => router.fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell)),
        #[cfg(feature = "embed-site")]
        assets::Site::Embedded(_) => {
            let (context, options) = (state.clone(), (*state.leptos_options).clone());
            router.fallback(leptos_axum::render_app_to_stream_with_context(
                move || leptos::prelude::provide_context(context.clone()),
                move || shell(options.clone()),
            ))
        }
    };
    router
        .layer(axum::middleware::from_fn(server_fn_status::set_status))
        .layer(axum::middleware::from_fn(same_origin::refuse_cross_site))
        .layer(sessions::layer(sessions, secure))
        .layer(axum::middleware::from_fn_with_state(limits, limits::enforce))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::count_writers))
        .layer(axum::middleware::from_fn(assets::pages_not_stored))
        .layer(assets::compression())
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(SetSensitiveHeadersLayer::new([header::AUTHORIZATION, header::COOKIE, header::SET_COOKIE]))
        .with_state(state)
}

/// A built application bound to its port, ready to serve.
pub struct Application {
    /// Held while serving: no restore replaces the SQLite file meanwhile (`backup.rs`).
    _in_use: Option<backup::InUse>,
    listener: std::net::TcpListener,
    router: Router,
    state: AppState,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    limits: limits::Limits,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // Held before the database is opened (when its file exists), so a server never
        // starts on a file a restore is replacing. (An in-memory database is nobody's to restore.)
        let file = backup::sqlite_file(&config.database_url).ok().flatten();
        let early = file.as_ref().filter(|f| f.exists()).map(|f| backup::hold(f)).transpose()?;
        let state = build_state(&config).await?;
        let in_use = match early {
            Some(held) => Some(held),
            None => file.map(|f| backup::hold(&f)).transpose()?,
        };
        let store = sessions::Store::connect(&config.database_url).await.map_err(anyhow::Error::msg)?;
        store.spawn_cleanup();
        state.usage.clone().spawn_flusher(state.db.clone());
        app::testing::server::service::spawn_import_sweeper(state.clone());
        app::housekeeping::spawn(state.clone());
        app::tokens::server::lifecycle::spawn_leak_resumer(state.clone());
        let tls = match &config.tls {
            Some((cert, key)) => Some(tls_config(cert, key).await?),
            None => None,
        };
        let router = build_router(state.clone(), store, config.limits, &config.site);
        let listener = std::net::TcpListener::bind(config.listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        Ok(Self { _in_use: in_use, listener, router, state, tls, limits: config.limits })
    }

    /// `https` when serving TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let state = self.state.clone();
        let served = self.serve(shutdown).await;
        // Counts made since the last batch are written before the process ends.
        if let Err(e) = state.usage.flush(&state.db, app::db::now()).await {
            tracing::warn!(error = %e, "could not write token usage at shutdown");
        }
        served
    }

    async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let handle = axum_server::Handle::new();
        let on_signal = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            on_signal.graceful_shutdown(Some(Duration::from_secs(20)));
        });
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        let limits = self.limits;
        // Below the app's own limits: what hyper buffers, and how long headers may take.
        let configure = |builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>| {
            builder.http1().header_read_timeout(limits.header_read_timeout).max_buf_size(limits.max_buffer_bytes);
        };
        match self.tls {
            Some(tls) => {
                let mut server = axum_server::from_tcp_rustls(self.listener, tls)?.handle(handle);
                configure(server.http_builder());
                server.serve(service).await?;
            }
            None => {
                let mut server = axum_server::from_tcp(self.listener)?.handle(handle);
                configure(server.http_builder());
                server.serve(service).await?;
            }
        }
        Ok(())
    }
}

/// Reads the certificate chain and key, or says in one line what is wrong with them.
async fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<axum_server::tls_rustls::RustlsConfig> {
    // One crypto provider for the process (ring); a second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
        .await
        .with_context(|| format!("cannot use TLS certificate {} with key {}", cert.display(), key.display()))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down; finishing requests in flight");
    // Requests still running after this long are cut off.
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_secs(20)).await;
        std::process::exit(0);
    });
}
