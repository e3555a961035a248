//! Every `/api/v1` route, with the action it names written out by hand: a credential one
//! scope short gets 403 `insufficient_scope` naming the scope, a SIEM key gets 403
//! `restricted_endpoint` everywhere but the audit log, a CI-minted token never reaches an
//! admin route, and the scope the table names is enough. The gate lives in the domain
//! (`Actor::permit`), not in the handlers, so this is what breaks when a domain function
//! forgets to name its action.

use reqwest::StatusCode;
use serde_json::{json, Value};
use time::OffsetDateTime;

use app::{
    actor::RequestMeta,
    tokens::{server::lifecycle, Scope},
};

use crate::{
    helpers::{Api, TestApp},
    on_both_databases,
};

const JUNIT: &str = r#"<testsuite name="s"><testcase classname="c" name="passes"/></testsuite>"#;

/// A route, the scope its action needs, and a body that would succeed.
struct Route {
    method: &'static str,
    path: String,
    needs: Scope,
    body: Option<Value>,
}

fn route(method: &'static str, path: impl Into<String>, needs: Scope, body: Option<Value>) -> Route {
    Route { method, path: path.into(), needs, body }
}

async fn created(app: &TestApp, token: &str, path: &str, body: Value) -> String {
    let res = app.api("POST", path, Some(token), Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{path}: {}", res.body);
    res.body["data"]["id"].as_str().unwrap().to_string()
}

/// The report import takes the file as it is; every other route takes JSON.
async fn send(app: &TestApp, r: &Route, token: &str) -> Api {
    if !r.path.contains("/runs/import") {
        return app.api(r.method, &r.path, Some(token), r.body.clone()).await;
    }
    let res = reqwest::Client::new()
        .post(app.url(&format!("/api/v1{}", r.path)))
        .bearer_auth(token)
        .body(JUNIT)
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    Api { status, headers, body: res.json().await.unwrap_or(Value::Null) }
}

async fn every_route_names_its_action(app: TestApp) {
    use Scope::*;
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "ws admin", "scopes": ["admin"], "owner": "workspace"})).await.token;
    let write = app.token(&owner, json!({"name": "writer", "scopes": ["write"]})).await.token;
    let read = app.token(&owner, json!({"name": "reader", "scopes": ["read"]})).await.token;
    // A SIEM key carrying every scope is still only a SIEM key.
    let siem = app.token(&owner, json!({"name": "SIEM-LOG-ONLY collector", "scopes": ["admin"]})).await.token;
    for key in ["WEB", "GONE", "OTHER"] {
        created(&app, &admin, "/projects", json!({"key": key, "name": key})).await;
    }
    let case = created(&app, &admin, "/projects/WEB/cases", json!({"title": "signs in"})).await;
    let doomed_case = created(&app, &admin, "/projects/WEB/cases", json!({"title": "goes"})).await;
    let run = created(&app, &admin, "/projects/WEB/runs", json!({"name": "nightly"})).await;
    let doomed_run = created(&app, &admin, "/projects/WEB/runs", json!({"name": "goes"})).await;
    let target = app.token(&owner, json!({"name": "target", "scopes": ["read"]})).await.summary.id;
    let doomed_token = app.token(&owner, json!({"name": "doomed", "scopes": ["read"]})).await.summary.id;
    let policy = json!({"name": "ci", "issuer": "https://token.actions.githubusercontent.com",
        "conditions": {"repository": "acme/app"}, "projects": ["WEB"], "scopes": ["write"]});
    let trust = created(&app, &admin, "/trust-policies", policy.clone()).await;
    let doomed_trust = created(&app, &admin, "/trust-policies", policy.clone()).await;

    // A write token for another project, and another workspace's admin.
    let outsider =
        app.token(&owner, json!({"name": "other project", "scopes": ["write"], "projects": ["OTHER"]})).await.token;
    let globex_owner = app.bootstrap("Globex", "owner@globex.example").await;
    let globex =
        app.token(&globex_owner, json!({"name": "globex", "scopes": ["admin"], "owner": "workspace"})).await.token;
    let ours = [case.clone(), run.clone(), target.clone(), trust.clone()];
    let web = "/projects/WEB";
    let routes = vec![
        route("GET", "/projects", Read, None),
        route("GET", web, Read, None),
        route("GET", format!("{web}/cases"), Read, None),
        route("GET", format!("{web}/cases/{case}"), Read, None),
        route("GET", format!("{web}/runs"), Read, None),
        route("GET", format!("{web}/runs/{run}"), Read, None),
        route("GET", format!("{web}/runs/{run}/results"), Read, None),
        route("POST", "/projects", Write, Some(json!({"key": "NEW", "name": "New"}))),
        route("PATCH", web, Write, Some(json!({"name": "Web"}))),
        route("POST", format!("{web}/cases"), Write, Some(json!({"title": "another"}))),
        route("PATCH", format!("{web}/cases/{case}"), Write, Some(json!({"title": "signs in again"}))),
        route("POST", format!("{web}/runs"), Write, Some(json!({"name": "another"}))),
        route("PATCH", format!("{web}/runs/{run}"), Write, Some(json!({"name": "nightly 2"}))),
        route(
            "POST",
            format!("{web}/runs/{run}/results"),
            Write,
            Some(json!({"results": [{"title": "a", "status": "passed"}]})),
        ),
        route("POST", format!("{web}/runs/import?format=junit"), Write, None),
        route("POST", format!("{web}/runs/{run}/complete"), Write, None),
        route("DELETE", format!("{web}/cases/{doomed_case}"), Write, None),
        route("DELETE", format!("{web}/runs/{doomed_run}"), Write, None),
        route("DELETE", "/projects/GONE", Write, None),
        route("GET", "/tokens", Admin, None),
        route("POST", "/tokens", Admin, Some(json!({"name": "new", "scopes": ["read"]}))),
        route("GET", format!("/tokens/{target}"), Admin, None),
        route("PATCH", format!("/tokens/{target}"), Admin, Some(json!({"name": "renamed"}))),
        route("GET", format!("/tokens/{target}/usage"), Admin, None),
        route("GET", format!("/tokens/{target}/addresses"), Admin, None),
        route("POST", format!("/tokens/{target}/disable"), Admin, None),
        route("POST", format!("/tokens/{target}/enable"), Admin, None),
        route("POST", format!("/tokens/{target}/rotate"), Admin, Some(json!({}))),
        route("POST", format!("/tokens/{doomed_token}/revoke"), Admin, None),
        route("GET", "/audit-logs", Admin, None),
        route("GET", "/tenant", Admin, None),
        route("PATCH", "/tenant", Admin, Some(json!({"ip_allowlist": []}))),
        route("GET", "/trust-policies", Admin, None),
        route("POST", "/trust-policies", Admin, Some(policy)),
        route("GET", format!("/trust-policies/{trust}"), Admin, None),
        route("PATCH", format!("/trust-policies/{trust}"), Admin, Some(json!({"name": "ci 2"}))),
        route("POST", format!("/trust-policies/{trust}/disable"), Admin, None),
        route("POST", format!("/trust-policies/{trust}/enable"), Admin, None),
        route("DELETE", format!("/trust-policies/{doomed_trust}"), Admin, None),
    ];

    // A token Trusted CI minted for a job: write, project WEB only.
    let web_id = app.api("GET", web, Some(&admin), None).await.body["data"]["id"].as_str().unwrap().to_string();
    let ids = [web_id];
    let grant = lifecycle::CiGrant {
        tenant_id: &owner.tenant_id,
        policy_id: &trust,
        policy_name: "ci",
        scopes: &[Scope::Read, Scope::Write],
        project_ids: Some(&ids),
        expires_at: OffsetDateTime::now_utc().unix_timestamp() + 600,
        ip_allowlist: "",
        minted_for: "acme/app@refs/heads/main (run 1)",
    };
    let (_, ci) = lifecycle::mint_for_ci(&app.state, grant, &RequestMeta::default(), json!({})).await.unwrap();

    for r in &routes {
        let what = format!("{} {}", r.method, r.path);
        // One scope short: 403 naming the scope the action needs.
        let short = match r.needs {
            Read => None,
            Write => Some(&read),
            Admin => Some(&write),
        };
        if let Some(short) = short {
            let res = send(&app, r, short).await;
            assert_eq!((res.status, res.error_code()), (StatusCode::FORBIDDEN, "insufficient_scope"), "{what}");
            let challenge = res.headers["www-authenticate"].to_str().unwrap();
            assert!(challenge.contains(&format!("scope=\"{}\"", r.needs.as_str())), "{what}: {challenge}");
        }
        // A SIEM key reads the audit log and nothing else.
        let res = send(&app, r, &siem).await;
        if r.path == "/audit-logs" {
            assert_eq!(res.status, StatusCode::OK, "{what} by the SIEM key: {}", res.body);
        } else {
            assert_eq!((res.status, res.error_code()), (StatusCode::FORBIDDEN, "restricted_endpoint"), "{what}");
        }
        // Another project's token, and another workspace, find nothing of ours.
        if r.path.starts_with(web) && r.method != "DELETE" {
            let res = send(&app, r, &outsider).await;
            assert_eq!(res.status, StatusCode::NOT_FOUND, "{what} by another project's token: {}", res.body);
        }
        if (r.path.starts_with(web) || ours.iter().any(|id| r.path.contains(id.as_str()))) && r.method != "DELETE" {
            let res = send(&app, r, &globex).await;
            assert_eq!(res.status, StatusCode::NOT_FOUND, "{what} by another workspace: {}", res.body);
        }
        // The scope the table names is enough.
        let enough = match r.needs {
            Read => &read,
            Write => &write,
            Admin => &admin,
        };
        let res = send(&app, r, enough).await;
        assert!(res.status.is_success(), "{what} with {} scope: {} {}", r.needs.as_str(), res.status, res.body);
        // The CI-minted token: never an admin route; its own project's data, yes.
        if r.needs == Admin {
            let res = send(&app, r, &ci).await;
            assert_eq!((res.status, res.error_code()), (StatusCode::FORBIDDEN, "insufficient_scope"), "{what} by CI");
        } else if r.path.starts_with(web) && r.method != "DELETE" {
            let res = send(&app, r, &ci).await;
            // Past the gate: done, or a conflict with what the write token just made.
            let passed = res.status.is_success() || res.error_code() == "conflict";
            assert!(passed, "{what} by the CI token: {} {}", res.status, res.body);
        }
    }
}

on_both_databases!(every_route_names_its_action);
