use reqwest::StatusCode;
use serde_json::Value;

use crate::{helpers::TestApp, on_both_databases};

async fn health_and_readiness(app: TestApp) {
    let client = app.client();
    for path in ["/healthz", "/readyz"] {
        let res = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert!(res.headers().contains_key("x-request-id"), "{path} has a request id");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
}

async fn unknown_api_routes_answer_the_contract_error(app: TestApp) {
    let res = app.client().get(app.url("/api/v1/nothing-here")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

on_both_databases!(health_and_readiness, unknown_api_routes_answer_the_contract_error);
