//! The served OpenAPI document and the routes agree, and the reference page is self-contained.

use reqwest::StatusCode;
use serde_json::Value;

use crate::{helpers::TestApp, on_both_databases};

/// Every `METHOD /api/v1/path` that `server/src/api_v1/mod.rs` routes: each `.route("…",
/// get(…).post(…)…)` call's path and the method routers chained in its second argument.
fn router_operations() -> Vec<String> {
    let source = include_str!("../../src/api_v1/mod.rs");
    let mut out = Vec::new();
    for call in source.split(".route(").skip(1) {
        let call = call.trim_start();
        let Some(rest) = call.strip_prefix('"') else { continue };
        let (path, rest) = rest.split_once('"').unwrap();
        // The call's arguments end where its parentheses balance.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(rest.len(), |(at, _)| at);
        let args = &rest[..end];
        for method in ["get", "post", "patch", "delete", "put"] {
            let at_start = args.trim_start_matches([',', ' ', '\n']).starts_with(&format!("{method}("));
            if at_start || args.contains(&format!(".{method}(")) {
                out.push(format!("{} /api/v1{path}", method.to_uppercase()));
            }
        }
    }
    out
}

async fn every_documented_operation_is_served_and_every_route_documented(app: TestApp) {
    let client = reqwest::Client::new();
    let doc: Value = client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
            // Called without a token, a documented operation is refused for that reason,
            // never "no such endpoint" or "method not allowed".
            let url = app.url(&path.replace("{key}", "BD").replace("{id}", "x"));
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = client
                .request(method.clone(), url)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            if path == "/api/v1/leaked-tokens" || path == "/api/v1/oidc/token" {
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{method} {path}: {body}");
            } else {
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (StatusCode::UNAUTHORIZED, Some("missing_token")),
                    "{method} {path}"
                );
            }
            // Every documented answer is the contract's error shape or a documented body.
            for (code, response) in item[method.as_str().to_lowercase()]["responses"].as_object().unwrap() {
                assert!(code.len() == 3, "{path}: {code}");
                assert!(response["description"].is_string());
            }
        }
    }
    documented.sort();
    // The routes as the router declares them (read from its source, never written out
    // again here), less the document itself.
    let mut served: Vec<String> =
        router_operations().into_iter().filter(|op| op != "GET /api/v1/openapi.json").collect();
    assert!(served.len() > 40, "the router's routes were read: {served:?}");
    served.sort();
    assert_eq!(documented, served, "the document lists exactly the API's operations");

    // The project's API guide lists exactly the documented operations.
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md")).unwrap();
    let section = guide.split("\n## Operations\n").nth(1).expect("docs/api.md has ## Operations");
    let section = section.split("\n## ").next().unwrap();
    let mut listed: Vec<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .filter(|op| op.contains(" /api/v1/"))
        .collect();
    listed.sort();
    assert_eq!(listed, documented, "docs/api.md's Operations table and the OpenAPI document");

    // The error codes the document promises are the ones the server uses.
    let codes: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for code in [
        "missing_token",
        "malformed_token",
        "invalid_token",
        "revoked_token",
        "expired_token",
        "disabled_token",
        "insufficient_scope",
        "tenant_suspended",
        "user_suspended",
        "ip_not_allowed",
        "restricted_endpoint",
        "not_found",
        "rate_limited",
    ] {
        assert!(codes.contains(&code), "{code} missing from the document");
    }
}

async fn the_reference_page_needs_no_cdn(app: TestApp) {
    let client = reqwest::Client::new();
    let page = client.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("spec-url=\"/api/v1/openapi.json\""));
    assert!(html.contains("src=\"/api/docs/redoc.standalone.js\""));
    assert!(!html.contains("https://") && !html.contains("http://"), "no outside asset: {html}");
    let js = client.get(app.url("/api/docs/redoc.standalone.js")).send().await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.headers()["content-type"].to_str().unwrap().starts_with("application/javascript"));
    assert!(js.bytes().await.unwrap().len() > 500_000);
}

on_both_databases!(every_documented_operation_is_served_and_every_route_documented, the_reference_page_needs_no_cdn);
