//! `GET /metrics` in Prometheus text format, and the layer that counts requests.
//!
//! Labels are bounded sets (route templates, status codes, error codes, fixed outcomes):
//! never a token, a prefix, an id, an email or a raw path. What each series is for is in
//! the README ("Metrics"). The domain records its own series (authentication outcomes,
//! the verified-token cache, bcrypt) through the `metrics` facade; this module installs
//! the recorder once per process and renders it.

use std::{sync::OnceLock, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use app::state::AppState;

/// The route template a request matched (set inside the routers, read by `track`).
#[derive(Clone)]
pub struct RouteLabel(pub String);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the process-wide recorder (once; later calls reuse it).
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let seconds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_size".into()), &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
                })
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Histogram samples are kept raw until they are folded into their buckets: on
            // a scrape, or by this upkeep. Without it a server nobody scrapes grows by
            // every request it answers (about 19 bytes each), for ever.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                })
                .expect("a thread for the metrics upkeep");
            // Another recorder already installed (only in tests that embed the app
            // twice over): keep rendering ours, which then stays empty.
            let _ = ::metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("qahub_http_requests_total", "HTTP requests answered, by method, route template and status.");
    describe_histogram!("qahub_http_request_duration_seconds", Unit::Seconds, "Time to answer, by method and route.");
    describe_counter!("qahub_auth_total", "API token authentications, by outcome (ok or the error code).");
    describe_counter!("qahub_verified_cache_total", "Verified-token cache lookups, by result (hit or miss).");
    describe_gauge!("qahub_bcrypt_waiting", "bcrypt checks waiting for a permit (the bcrypt queue).");
    describe_histogram!("qahub_bcrypt_seconds", Unit::Seconds, "Time of one bcrypt check of a token secret.");
    describe_histogram!("qahub_token_lookup_batch_size", "Token lookups answered by one coalesced query.");
    describe_gauge!("qahub_db_pool_connections", "Database pool connections, by state (idle or busy).");
    describe_gauge!("qahub_db_pool_max_connections", "The database pool's size limit.");
}

/// The layer: counts every answer under the route it matched.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let coarse = coarse_route(req.uri().path());
    let mut response = next.run(req).await;
    let route = response.extensions_mut().remove::<RouteLabel>().map_or_else(|| coarse.to_owned(), |r| r.0);
    let seconds = started.elapsed().as_secs_f64();
    ::metrics::histogram!("qahub_http_request_duration_seconds", "method" => method.clone(), "route" => route.clone())
        .record(seconds);
    let status = response.status().as_u16().to_string();
    ::metrics::counter!("qahub_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}

/// Inside a router: hands the matched template to `track` (which runs outside routing).
pub async fn label_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteLabel(route));
    }
    response
}

/// A small fixed set for what no template names (pages, assets, unknown paths).
fn coarse_route(path: &str) -> &'static str {
    match path {
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/api/docs" | "/api/docs/redoc.standalone.js" => "/api/docs",
        _ if path.starts_with("/api/") => "api_unmatched",
        _ if path.starts_with("/_qh/") => "server_function",
        _ if path.starts_with("/pkg/") => "static",
        _ => "page",
    }
}

/// `GET /metrics`.
pub async fn render(State(state): State<AppState>) -> Response {
    let handle = install();
    let (size, idle) = (state.db.size(), u32::try_from(state.db.num_idle()).unwrap_or(u32::MAX));
    ::metrics::gauge!("qahub_db_pool_connections", "state" => "idle").set(f64::from(idle));
    ::metrics::gauge!("qahub_db_pool_connections", "state" => "busy").set(f64::from(size.saturating_sub(idle)));
    ::metrics::gauge!("qahub_db_pool_max_connections").set(f64::from(state.db.options().get_max_connections()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
}

#[cfg(test)]
mod tests {
    use super::coarse_route;

    #[test]
    fn unknown_paths_fall_into_a_few_buckets() {
        assert_eq!(coarse_route("/api/v1/nope/123"), "api_unmatched");
        assert_eq!(coarse_route("/settings/developer/api-tokens"), "page");
        assert_eq!(coarse_route("/_qh/create_token123"), "server_function");
        assert_eq!(coarse_route("/pkg/qahub.wasm"), "static");
    }
}
