//! CI-grade uploads: idempotent imports, run-key shards merged into one run, receipts,
//! per-token IP allowlists and the workspace's maximum token lifetime — each tried by
//! the narrower credential too.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    helpers::{Api, TestApp},
    on_both_databases,
};

const JUNIT: &[u8] = include_bytes!("../fixtures/pytest-junit.xml");

async fn import(app: &TestApp, token: &str, query: &str, key: Option<&str>, body: &[u8]) -> Api {
    import_into(app, token, "WEB", query, key, body).await
}

async fn import_into(app: &TestApp, token: &str, project: &str, query: &str, key: Option<&str>, body: &[u8]) -> Api {
    let mut req = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/projects/{project}/runs/import?format=junit{query}")))
        .bearer_auth(token)
        .body(body.to_vec());
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    Api { status, headers, body: res.json().await.unwrap_or(Value::Null) }
}

/// A JUnit file with `passed` passing and `failed` failing tests, named after `shard`.
fn shard_report(shard: &str, passed: usize, failed: usize) -> Vec<u8> {
    let mut xml = format!("<testsuite name=\"{shard}\">");
    for i in 0..passed {
        xml.push_str(&format!("<testcase classname=\"{shard}\" name=\"ok {i}\" time=\"0.01\"/>"));
    }
    for i in 0..failed {
        xml.push_str(&format!("<testcase classname=\"{shard}\" name=\"bad {i}\"><failure message=\"no\"/></testcase>"));
    }
    xml.push_str("</testsuite>");
    xml.into_bytes()
}

async fn setup(app: &TestApp) -> (app::people::CurrentUser, String) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    let res = app.api("POST", "/projects", Some(&admin), Some(json!({"key": "WEB", "name": "Website"}))).await;
    assert_eq!(res.status, StatusCode::CREATED);
    (owner, admin)
}

async fn run_count(app: &TestApp, token: &str) -> usize {
    app.api("GET", "/projects/WEB/runs", Some(token), None).await.body["data"].as_array().unwrap().len()
}

async fn the_same_import_twice_with_one_key_makes_one_run(app: TestApp) {
    let (_, admin) = setup(&app).await;
    let first = import(&app, &admin, "", Some("ci-build-41"), JUNIT).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(first.headers.get("idempotent-replayed").is_none());
    assert_eq!(
        first.body["receipt"],
        json!({"tests_read": 5, "accepted": {"total": 5, "passed": 2, "failed": 1, "skipped": 1, "error": 1}}),
        "a JUnit <error> stays an error"
    );
    let again = import(&app, &admin, "", Some("ci-build-41"), JUNIT).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body["data"]["id"], first.body["data"]["id"]);
    assert_eq!(again.body["receipt"], first.body["receipt"]);
    assert_eq!(run_count(&app, &admin).await, 1, "the replay stored nothing");

    // Same key, another body (or another query): a conflict, nothing stored.
    let other = import(&app, &admin, "", Some("ci-build-41"), &shard_report("x", 1, 0)).await;
    assert_eq!((other.status, other.error_code()), (StatusCode::CONFLICT, "conflict"), "{}", other.body);
    let renamed = import(&app, &admin, "&name=other", Some("ci-build-41"), JUNIT).await;
    assert_eq!(renamed.status, StatusCode::CONFLICT);
    assert_eq!(run_count(&app, &admin).await, 1);

    // Without a key, or with a new one: a new run.
    assert_eq!(import(&app, &admin, "", None, JUNIT).await.status, StatusCode::CREATED);
    assert_eq!(import(&app, &admin, "", Some("ci-build-42"), JUNIT).await.status, StatusCode::CREATED);
    assert_eq!(run_count(&app, &admin).await, 3);

    // Keys are per tenant: another workspace's same key is its own.
    let other_owner = app.bootstrap("Globex", "owner@globex.example").await;
    let theirs = app.token(&other_owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    app.api("POST", "/projects", Some(&theirs), Some(json!({"key": "WEB", "name": "Web"}))).await;
    let res = import(&app, &theirs, "", Some("ci-build-41"), JUNIT).await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert!(res.headers.get("idempotent-replayed").is_none());
    assert_ne!(res.body["data"]["id"], first.body["data"]["id"]);

    // A key expires after 24 hours: then it makes a new run.
    sqlx::query("UPDATE import_keys SET created_at = created_at - 90000").execute(&app.state.db).await.unwrap();
    let later = import(&app, &admin, "", Some("ci-build-41"), JUNIT).await;
    assert_eq!(later.status, StatusCode::CREATED, "{}", later.body);
    assert!(later.headers.get("idempotent-replayed").is_none());
    assert!(later.body["data"]["id"].is_string());
    assert_ne!(later.body["data"]["id"], first.body["data"]["id"]);
    assert_eq!(run_count(&app, &admin).await, 4, "a new run");

    // Bad keys are a clear 422.
    for bad in ["x".repeat(129), "tab\there".into()] {
        let res = import(&app, &admin, "", Some(&bad), JUNIT).await;
        assert_eq!((res.status, res.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), "{bad:?}");
    }
    let res = import(&app, &admin, &format!("&run_key={}", "k".repeat(129)), None, JUNIT).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Keys belong to one project: a token of project WEB uploads with the docs' example key;
/// project API's upload with the same key is its own import, not a 409 for 24 hours.
async fn idempotency_keys_belong_to_one_project(app: TestApp) {
    let (owner, admin) = setup(&app).await;
    app.api("POST", "/projects", Some(&admin), Some(json!({"key": "API", "name": "API"}))).await;
    let web = app.token(&owner, json!({"name": "web ci", "scopes": ["write"], "projects": ["WEB"]})).await.token;
    let api = app.token(&owner, json!({"name": "api ci", "scopes": ["write"], "projects": ["API"]})).await.token;
    let first = import_into(&app, &web, "WEB", "", Some("build-4242-e2e"), JUNIT).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let theirs = import_into(&app, &api, "API", "", Some("build-4242-e2e"), JUNIT).await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.body);
    assert!(theirs.headers.get("idempotent-replayed").is_none(), "not WEB's run");
    assert_eq!(theirs.body["data"]["project"], "API");
    // Each project's repeat answers its own run.
    let again = import_into(&app, &api, "API", "", Some("build-4242-e2e"), JUNIT).await;
    assert_eq!(
        (again.headers["idempotent-replayed"].to_str().unwrap(), &again.body["data"]["id"]),
        ("true", &theirs.body["data"]["id"])
    );
    let again = import_into(&app, &web, "WEB", "", Some("build-4242-e2e"), JUNIT).await;
    assert_eq!(
        (again.headers["idempotent-replayed"].to_str().unwrap(), &again.body["data"]["id"]),
        ("true", &first.body["data"]["id"])
    );
}

/// The body and results limits (both configurable) answer 413 naming the limit, and store nothing.
async fn import_limits(kind: crate::helpers::Kind) {
    let settings =
        app::state::Settings { import_max_bytes: 8192, import_max_results: 10, ..crate::helpers::test_settings() };
    let Some(app) = crate::helpers::spawn_app_with(kind, settings).await else { return };
    let (_, admin) = setup(&app).await;
    let res = import(&app, &admin, "", None, &shard_report("s", 11, 0)).await;
    assert_eq!((res.status, res.error_code()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"), "{}", res.body);
    let message = res.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("10 test results") && message.contains("QAHUB_MAX_IMPORT_RESULTS"), "{message}");
    assert_eq!(import(&app, &admin, "", None, &shard_report("s", 10, 0)).await.status, StatusCode::CREATED, "ten fit");
    let big = shard_report(&"n".repeat(9000), 1, 0);
    let res = import(&app, &admin, "", None, &big).await;
    assert_eq!((res.status, res.error_code()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"), "{}", res.body);
    let message = res.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("8192 bytes") && message.contains("QAHUB_MAX_IMPORT_BYTES"), "{message}");
    assert_eq!(run_count(&app, &admin).await, 1, "only the import that fit is stored");
}

#[tokio::test]
async fn import_limits_sqlite() {
    import_limits(crate::helpers::Kind::Sqlite).await;
}

#[tokio::test]
async fn import_limits_postgres() {
    import_limits(crate::helpers::Kind::Postgres).await;
}

async fn parallel_shards_make_one_run_until_completed(app: TestApp) {
    let (owner, admin) = setup(&app).await;
    let writer = app.token(&owner, json!({"name": "ci", "scopes": ["write"], "projects": ["WEB"]})).await.token;
    let upload = |name: &'static str, passed, failed| {
        let body = shard_report(name, passed, failed);
        let (app, writer) = (&app, &writer);
        async move { import(app, writer, "&run_key=pipeline-7", Some(&format!("shard-{name}")), &body).await }
    };
    // Three shards at once, as three CI jobs would send them.
    let (a, b, c) = tokio::join!(upload("a", 30, 0), upload("b", 25, 2), upload("c", 40, 1));
    let answers = [a, b, c];
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
            a.body["data"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "every shard joined one run");
    let id = ids.into_iter().next().unwrap();
    let run = app.api("GET", &format!("/projects/WEB/runs/{id}"), Some(&writer), None).await.body["data"].clone();
    assert_eq!(run["counts"], json!({"total": 98, "passed": 95, "failed": 3, "skipped": 0, "error": 0}));
    assert_eq!((run["shards"].as_u64(), run["status"].as_str()), (Some(3), Some("open")));
    assert_eq!(run["run_key"], "pipeline-7");
    let results = app.api("GET", &format!("/projects/WEB/runs/{id}/results?limit=200"), Some(&writer), None).await;
    assert_eq!(results.body["data"].as_array().unwrap().len(), 98, "no result lost or numbered twice");

    // A shard's retry replays; the run stays as it was.
    let retry = import(&app, &writer, "&run_key=pipeline-7", Some("shard-a"), &shard_report("a", 30, 0)).await;
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    assert_eq!(retry.body["data"]["counts"]["total"], 98);

    // The run is found by its key, and completed: failed, since a shard failed.
    let found = app.api("GET", "/projects/WEB/runs?run_key=pipeline-7", Some(&writer), None).await;
    assert_eq!(found.body["data"][0]["id"], id.as_str());
    let reader = app.token(&owner, json!({"name": "dash", "scopes": ["read"]})).await.token;
    let path = format!("/projects/WEB/runs/{id}/complete");
    assert_eq!(app.api("POST", &path, Some(&reader), None).await.error_code(), "insufficient_scope");
    let done = app.api("POST", &path, Some(&writer), None).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["data"]["status"], "failed");
    assert_eq!(app.api("POST", &path, Some(&writer), None).await.body["data"]["status"], "failed", "again: as it is");

    // After completion another shard is refused; a new key makes a new run.
    let late = import(&app, &writer, "&run_key=pipeline-7", Some("shard-d"), &shard_report("d", 1, 0)).await;
    assert_eq!((late.status, late.error_code()), (StatusCode::CONFLICT, "conflict"), "{}", late.body);
    let next = import(&app, &writer, "&run_key=pipeline-8", None, &shard_report("d", 1, 0)).await;
    assert_eq!(next.status, StatusCode::CREATED);
    assert_ne!(next.body["data"]["id"], id.as_str());

    // Another project's token, or another tenant, cannot complete it.
    app.api("POST", "/projects", Some(&admin), Some(json!({"key": "API", "name": "API"}))).await;
    let api_only = app.token(&owner, json!({"name": "api", "scopes": ["write"], "projects": ["API"]})).await.token;
    assert_eq!(app.api("POST", &path, Some(&api_only), None).await.status, StatusCode::NOT_FOUND);
    let other = app.bootstrap("Globex", "owner@globex.example").await;
    let theirs = app.token(&other, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    assert_eq!(app.api("POST", &path, Some(&theirs), None).await.status, StatusCode::NOT_FOUND);
}

async fn per_token_ip_allowlists_refuse_and_only_narrow(app: TestApp) {
    let (owner, admin) = setup(&app).await;
    // The test client comes from 127.0.0.1.
    let elsewhere = app
        .api(
            "POST",
            "/tokens",
            Some(&admin),
            Some(json!({"name": "far", "scopes": ["read"], "ip_allowlist": ["10.0.0.0/8"]})),
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::CREATED, "{}", elsewhere.body);
    assert_eq!(elsewhere.body["data"]["ip_allowlist"], json!(["10.0.0.0/8"]));
    let far = elsewhere.body["data"]["token"].as_str().unwrap().to_string();
    let res = app.api("GET", "/me", Some(&far), None).await;
    assert_eq!((res.status, res.error_code()), (StatusCode::FORBIDDEN, "ip_not_allowed"));

    let here = app
        .api(
            "POST",
            "/tokens",
            Some(&admin),
            Some(json!({"name": "local", "scopes": ["admin"], "ip_allowlist": ["127.0.0.0/8", "10.0.0.0/8"]})),
        )
        .await;
    let local = here.body["data"]["token"].as_str().unwrap().to_string();
    let local_id = here.body["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(app.api("GET", "/me", Some(&local), None).await.status, StatusCode::OK);

    // The workspace's list still applies: both must pass.
    let owner_client = app.login("owner@example.com").await;
    let (status, body) = app
        .call(
            &owner_client,
            "tenant/update",
            &[("ip_allowlist", "127.0.0.1"), ("ai_provider", ""), ("ai_model", ""), ("max_token_lifetime_days", "")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.api("GET", "/me", Some(&local), None).await.status, StatusCode::OK);
    assert_eq!(app.api("GET", "/me", Some(&far), None).await.error_code(), "ip_not_allowed");
    app.call(
        &owner_client,
        "tenant/update",
        &[("ip_allowlist", ""), ("ai_provider", ""), ("ai_model", ""), ("max_token_lifetime_days", "")],
    )
    .await;

    // A limited admin token gives only addresses within its own list ...
    let wider = json!({"name": "w", "scopes": ["read"], "ip_allowlist": ["0.0.0.0/0"]});
    assert_eq!(app.api("POST", "/tokens", Some(&local), Some(wider)).await.status, StatusCode::FORBIDDEN);
    let anywhere = json!({"name": "w", "scopes": ["read"]});
    assert_eq!(app.api("POST", "/tokens", Some(&local), Some(anywhere)).await.status, StatusCode::FORBIDDEN);
    let inside = json!({"name": "n", "scopes": ["read"], "ip_allowlist": ["127.0.0.1"]});
    let narrow = app.api("POST", "/tokens", Some(&local), Some(inside)).await;
    assert_eq!(narrow.status, StatusCode::CREATED, "{}", narrow.body);
    assert_eq!(narrow.body["data"]["ip_allowlist"], json!(["127.0.0.1/32"]));

    // ... and narrows a token's list, never widens it — not even an unlimited admin token.
    let path = format!("/tokens/{local_id}");
    let narrowed = app.api("PATCH", &path, Some(&admin), Some(json!({"ip_allowlist": ["127.0.0.0/8"]}))).await;
    assert_eq!(narrowed.status, StatusCode::OK, "{}", narrowed.body);
    assert_eq!(narrowed.body["data"]["ip_allowlist"], json!(["127.0.0.0/8"]));
    let widened = app.api("PATCH", &path, Some(&admin), Some(json!({"ip_allowlist": []}))).await;
    assert_eq!(widened.status, StatusCode::FORBIDDEN, "{}", widened.body);
    let widened =
        app.api("PATCH", &path, Some(&local), Some(json!({"ip_allowlist": ["127.0.0.0/8", "10.0.0.0/8"]}))).await;
    assert_eq!(widened.status, StatusCode::FORBIDDEN);
    // People who manage the workspace widen it (the domain function the pages call).
    let actor = app::actor::Actor::User(owner);
    let change = app::tokens::UpdateToken { ip_allowlist: Some(vec![]), ..Default::default() };
    let meta = app::actor::RequestMeta::default();
    let summary = app::tokens::server::lifecycle::update(&app.state, &actor, &meta, &local_id, change).await.unwrap();
    assert!(summary.ip_allowlist.is_empty());

    // Garbage is a 422, not a 500.
    let bad = json!({"name": "b", "scopes": ["read"], "ip_allowlist": ["10.0.0.0/33"]});
    let res = app.api("POST", "/tokens", Some(&admin), Some(bad)).await;
    assert_eq!((res.status, res.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"));
}

async fn the_workspace_maximum_token_lifetime_caps_tokens(app: TestApp) {
    let (owner, admin) = setup(&app).await;
    let old = app.api("POST", "/tokens", Some(&admin), Some(json!({"name": "forever", "scopes": ["read"]}))).await;
    let old_id = old.body["data"]["id"].as_str().unwrap().to_string();

    // An admin person may not set it; the owner may, on the page's server function.
    app.add_user("Acme", "admin@example.com", app::people::Role::Admin).await;
    let admin_person = app.login("admin@example.com").await;
    let form = |days: &'static str| {
        [("ip_allowlist", ""), ("ai_provider", ""), ("ai_model", ""), ("max_token_lifetime_days", days)]
    };
    let (status, body) = app.call(&admin_person, "tenant/update", &form("30")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // An admin saving the page without touching the field is fine.
    let (status, _) = app.call(&admin_person, "tenant/update", &form("")).await;
    assert_eq!(status, StatusCode::OK);
    let owner_client = app.login("owner@example.com").await;
    let (status, body) = app.call(&owner_client, "tenant/update", &form("90")).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A token may lower it, never raise or remove it.
    let res = app.api("PATCH", "/tenant", Some(&admin), Some(json!({"max_token_lifetime_days": 30}))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["data"]["max_token_lifetime_days"], 30);
    for raise in [json!(60), Value::Null] {
        let res = app.api("PATCH", "/tenant", Some(&admin), Some(json!({"max_token_lifetime_days": raise}))).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{raise}: {}", res.body);
    }
    let res = app.api("PATCH", "/tenant", Some(&admin), Some(json!({"max_token_lifetime_days": 0}))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Creating past it is 422 naming the maximum, on both doors.
    for expires in ["90d", "never"] {
        let req = json!({"name": "long", "scopes": ["read"], "expires_in": expires});
        let res = app.api("POST", "/tokens", Some(&admin), Some(req)).await;
        assert_eq!((res.status, res.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), "{expires}");
        assert!(res.body["error"]["message"].as_str().unwrap().contains("30 days"), "{}", res.body);
    }
    let (status, body) = app
        .call(&owner_client, "tokens/issue", &[("name", "page"), ("scopes[]", "read"), ("expiration", "never")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let ok = app
        .api("POST", "/tokens", Some(&admin), Some(json!({"name": "ok", "scopes": ["read"], "expires_in": "30d"})))
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let ok_id = ok.body["data"]["id"].as_str().unwrap();
    // Extending past it is refused too; renaming a token already past it is not.
    let res = app.api("PATCH", &format!("/tokens/{ok_id}"), Some(&admin), Some(json!({"expires_in": "90d"}))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let res = app.api("PATCH", &format!("/tokens/{old_id}"), Some(&admin), Some(json!({"name": "renamed"}))).await;
    assert_eq!(res.status, StatusCode::OK);

    // Tokens already past it are flagged in the list; a rotation cuts the new one to it.
    let list = app.api("GET", "/tokens", Some(&admin), None).await;
    let mut flagged: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["beyond_max_lifetime"] == true)
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    flagged.sort();
    assert_eq!(flagged, ["admin", "renamed"], "the never-expiring tokens made before the maximum");
    let rotated = app.api("POST", &format!("/tokens/{old_id}/rotate"), Some(&admin), Some(json!({}))).await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.body);
    let expires = rotated.body["data"]["expires_at"].as_str().expect("the rotation gave it an expiry");
    let expires = time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(expires <= time::OffsetDateTime::now_utc() + time::Duration::days(30));
    drop(owner);
}

on_both_databases!(
    the_same_import_twice_with_one_key_makes_one_run,
    idempotency_keys_belong_to_one_project,
    parallel_shards_make_one_run_until_completed,
    per_token_ip_allowlists_refuse_and_only_narrow,
    the_workspace_maximum_token_lifetime_caps_tokens,
);
