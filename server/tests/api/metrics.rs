//! `GET /metrics`: Prometheus text with requests by route template and status,
//! authentication outcomes, cache results, bcrypt and pool figures — and nothing that
//! identifies a token or a person.

use reqwest::StatusCode;
use serde_json::json;

use crate::{helpers::TestApp, on_both_databases};

async fn metrics_count_requests_and_outcomes_without_identifiers(app: TestApp) {
    let owner = app.bootstrap("Metrics Co", "metrics-owner@example.com").await;
    let created = app.token(&owner, json!({"name": "ci", "scopes": ["read"]})).await;
    let token = created.token.clone();
    for _ in 0..3 {
        assert_eq!(app.api("GET", "/me", Some(&token), None).await.status, StatusCode::OK);
    }
    // A forged secret on the real prefix, and a project by key (a templated route).
    let forged = app::tokens::server::format::generate(&token[3..11]).expose();
    assert_eq!(app.api("GET", "/me", Some(&forged), None).await.error_code(), "invalid_token");
    assert_eq!(app.api("GET", "/projects/NOPE", Some(&token), None).await.status, StatusCode::NOT_FOUND);

    let res = app.client().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    let has = |needle: &str| text.lines().any(|l| l.starts_with(needle));
    assert!(has(r#"qahub_http_requests_total{method="GET",route="/api/v1/me",status="200"}"#), "{text}");
    assert!(has(r#"qahub_http_requests_total{method="GET",route="/api/v1/me",status="401"}"#), "{text}");
    assert!(has(r#"qahub_http_requests_total{method="GET",route="/api/v1/projects/{key}",status="404"}"#), "{text}");
    assert!(has("qahub_http_request_duration_seconds_bucket{"), "{text}");
    assert!(has(r#"qahub_auth_total{outcome="ok"}"#), "{text}");
    assert!(has(r#"qahub_auth_total{outcome="invalid_token"}"#), "{text}");
    assert!(has(r#"qahub_verified_cache_total{result="hit"}"#), "{text}");
    assert!(has(r#"qahub_verified_cache_total{result="miss"}"#), "{text}");
    assert!(has("qahub_bcrypt_seconds_bucket{"), "{text}");
    assert!(has(r#"qahub_db_pool_connections{state="idle"}"#), "{text}");
    assert!(has("qahub_db_pool_max_connections"), "{text}");
    // The count goes up with traffic.
    let count = |text: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(r#"qahub_http_requests_total{method="GET",route="/api/v1/me",status="200"} "#))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    let before = count(&text);
    assert_eq!(app.api("GET", "/me", Some(&token), None).await.status, StatusCode::OK);
    let after = count(&app.client().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap());
    assert!(after >= before + 1.0, "{before} → {after}");

    for secret_ish in [&token[..], &token[3..11], &created.summary.id, "metrics-owner@example.com", "NOPE"] {
        assert!(!text.contains(secret_ish), "metrics mention {secret_ish:?}");
    }
}

on_both_databases!(metrics_count_requests_and_outcomes_without_identifiers);
