//! The token engine over HTTP: the error table, scopes, project restriction, tenant
//! isolation, the lifecycle, rotation, leaks, the audit log — on both databases.

use app::{
    people::{server::service as people, Role},
    tokens::server::format,
};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app_with, test_settings, Kind, TestApp},
    on_both_databases,
};

async fn project(app: &TestApp, token: &str, key: &str) {
    let res =
        app.api("POST", "/projects", Some(token), Some(json!({ "key": key, "name": format!("Project {key}") }))).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
}

fn assert_error(res: &crate::helpers::Api, status: StatusCode, code: &str) {
    assert_eq!((res.status, res.error_code()), (status, code), "{}", res.body);
    assert!(res.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(res.headers[header::WWW_AUTHENTICATE], "Bearer realm=\"qahub\"");
    }
}

async fn the_error_table(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    let read = app.token(&owner, json!({"name": "reader", "scopes": ["read"]})).await;

    // 401 missing_token: no header, or a scheme we do not know.
    assert_error(&app.api_with("GET", "/me", None, None, &[]).await, StatusCode::UNAUTHORIZED, "missing_token");
    assert_error(
        &app.api_with("GET", "/me", Some("Basic dXNlcjpwYXNz"), None, &[]).await,
        StatusCode::UNAUTHORIZED,
        "missing_token",
    );
    // Schemes are case-insensitive, and the legacy ApiKey scheme works.
    for scheme in ["bearer", "BEARER", "ApiKey", "apikey"] {
        let res = app.api_with("GET", "/me", Some(&format!("{scheme} {admin}")), None, &[]).await;
        assert_eq!(res.status, StatusCode::OK, "{scheme}");
    }

    // 401 malformed_token: wrong shape, or a checksum that does not add up.
    assert_error(&app.api("GET", "/me", Some("qh_short"), None).await, StatusCode::UNAUTHORIZED, "malformed_token");
    let mut typo = admin.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    assert_error(&app.api("GET", "/me", Some(&typo), None).await, StatusCode::UNAUTHORIZED, "malformed_token");

    // 401 invalid_token: a well-formed token nobody issued, or the right prefix with another secret.
    let stranger = format::generate("zzzzzzzz").expose();
    assert_error(&app.api("GET", "/me", Some(&stranger), None).await, StatusCode::UNAUTHORIZED, "invalid_token");
    let forged = format::generate(&read.summary.prefix).expose();
    assert_error(&app.api("GET", "/me", Some(&forged), None).await, StatusCode::UNAUTHORIZED, "invalid_token");

    // 403 insufficient_scope names the scope needed.
    let res = app.api("POST", "/projects", Some(&read.token), Some(json!({"key": "BD", "name": "B"}))).await;
    assert_error(&res, StatusCode::FORBIDDEN, "insufficient_scope");
    assert_eq!(res.headers[header::WWW_AUTHENTICATE], "Bearer error=\"insufficient_scope\", scope=\"write\"");

    // 401 disabled / expired / revoked.
    let id = &read.summary.id;
    let res = app.api("POST", &format!("/tokens/{id}/disable"), Some(&admin), None).await;
    assert_eq!((res.status, res.body["data"]["status"].as_str()), (StatusCode::OK, Some("disabled")));
    assert_error(&app.api("GET", "/me", Some(&read.token), None).await, StatusCode::UNAUTHORIZED, "disabled_token");
    app.api("POST", &format!("/tokens/{id}/enable"), Some(&admin), None).await;
    app.sql("UPDATE api_tokens SET expires_at = $1 WHERE id = $2", id, 1).await;
    assert_error(&app.api("GET", "/me", Some(&read.token), None).await, StatusCode::UNAUTHORIZED, "expired_token");
    assert_error(&app.api("GET", "/me", Some(&read.token), None).await, StatusCode::UNAUTHORIZED, "expired_token");
    let actions = app.audit_actions(&owner.tenant_id).await;
    assert_eq!(actions.iter().filter(|a| *a == "token.used_after_expiry").count(), 1, "audited once, not per request");
    app.sql("UPDATE api_tokens SET expires_at = $1 WHERE id = $2", id, 4_000_000_000).await;
    app.api("POST", &format!("/tokens/{id}/revoke"), Some(&admin), None).await;
    assert_error(&app.api("GET", "/me", Some(&read.token), None).await, StatusCode::UNAUTHORIZED, "revoked_token");

    // 403 restricted_endpoint: a SIEM key reads the audit log and nothing else.
    let siem = app.token(&owner, json!({"name": "SIEM-LOG-ONLY splunk", "scopes": ["read"]})).await.token;
    assert_eq!(app.api("GET", "/audit-logs", Some(&siem), None).await.status, StatusCode::OK);
    assert_error(&app.api("GET", "/me", Some(&siem), None).await, StatusCode::FORBIDDEN, "restricted_endpoint");
    assert_error(&app.api("GET", "/projects", Some(&siem), None).await, StatusCode::FORBIDDEN, "restricted_endpoint");

    // 404 not_found, with the contract's body.
    assert_error(&app.api("GET", "/projects/NOPE", Some(&admin), None).await, StatusCode::NOT_FOUND, "not_found");

    // 403 user_suspended, then tenant_suspended (suspension comes before scope checks).
    people::suspend_account(&app.state, "owner@example.com", true).await.unwrap();
    assert_error(&app.api("GET", "/me", Some(&admin), None).await, StatusCode::FORBIDDEN, "user_suspended");
    people::suspend_account(&app.state, "owner@example.com", false).await.unwrap();
    people::set_tenant_status(&app.state, "Acme", true).await.unwrap();
    assert_error(&app.api("GET", "/me", Some(&admin), None).await, StatusCode::FORBIDDEN, "tenant_suspended");
    people::set_tenant_status(&app.state, "Acme", false).await.unwrap();
    assert_eq!(
        app.api("GET", "/me", Some(&admin), None).await.status,
        StatusCode::OK,
        "takes effect on the next request"
    );
}

async fn a_host_claimed_by_another_tenant_refuses_foreign_tokens(app: TestApp) {
    let a = app.bootstrap("Acme", "a@example.com").await;
    let b = app.bootstrap("Globex", "b@example.com").await;
    let a_token = app.token(&a, json!({"name": "a", "scopes": ["admin"]})).await.token;
    let b_token = app.token(&b, json!({"name": "b", "scopes": ["admin"]})).await.token;
    // Only the operator grants a host (`qahub tenant host add`).
    app::tenants::server::set_host(&app.state, "Globex", "QA.Globex.example", true).await.unwrap();
    let res = app.api("GET", "/tenant", Some(&b_token), None).await;
    assert_eq!(res.body["data"]["hosts"], json!(["qa.globex.example"]));
    let on_b_host = [("host", "qa.globex.example:443")];
    let res = app.api_with("GET", "/me", Some(&format!("Bearer {a_token}")), None, &on_b_host).await;
    assert_error(&res, StatusCode::UNAUTHORIZED, "invalid_token");
    let res = app.api_with("GET", "/me", Some(&format!("Bearer {b_token}")), None, &on_b_host).await;
    assert_eq!(res.status, StatusCode::OK);
    // A host is granted once, and never through the API.
    let err = app::tenants::server::set_host(&app.state, "Acme", "qa.globex.example", true).await.unwrap_err();
    assert_eq!(err.code, app::error::ErrorCode::Conflict);
    let res = app.api("PATCH", "/tenant", Some(&a_token), Some(json!({"hosts": ["qa.acme.example"]}))).await;
    assert_error(&res, StatusCode::FORBIDDEN, "forbidden");
}

async fn the_scope_matrix(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    project(&app, &admin, "BD").await;
    let tokens = [
        ("read", app.token(&owner, json!({"name": "r", "scopes": ["read"]})).await.token),
        ("write", app.token(&owner, json!({"name": "w", "scopes": ["write"]})).await.token),
        ("admin", admin.clone()),
    ];
    for (i, (scope, token)) in tokens.iter().enumerate() {
        let level = i + 1; // read 1, write 2, admin 3
        let expect = |needed: usize, ok: StatusCode| if level >= needed { ok } else { StatusCode::FORBIDDEN };
        let key = format!("P{i}");
        let cases = [
            ("GET", "/projects".to_string(), None, expect(1, StatusCode::OK)),
            ("GET", "/projects/BD".to_string(), None, expect(1, StatusCode::OK)),
            ("POST", "/projects".to_string(), Some(json!({"key": key, "name": "n"})), expect(2, StatusCode::CREATED)),
            (
                "PATCH",
                "/projects/BD".to_string(),
                Some(json!({"name": format!("by {scope}")})),
                expect(2, StatusCode::OK),
            ),
            (
                "DELETE",
                format!("/projects/{key}"),
                None,
                if level >= 2 { StatusCode::NO_CONTENT } else { StatusCode::FORBIDDEN },
            ),
            ("GET", "/tokens".to_string(), None, expect(3, StatusCode::OK)),
            (
                "POST",
                "/tokens".to_string(),
                Some(json!({"name": "x", "scopes": ["read"]})),
                expect(3, StatusCode::CREATED),
            ),
            ("GET", "/audit-logs".to_string(), None, expect(3, StatusCode::OK)),
            ("GET", "/tenant".to_string(), None, expect(3, StatusCode::OK)),
        ];
        for (method, path, body, want) in cases {
            let res = app.api(method, &path, Some(token), body).await;
            assert_eq!(res.status, want, "{scope} token: {method} {path}: {}", res.body);
            if want == StatusCode::FORBIDDEN {
                assert_eq!(res.error_code(), "insufficient_scope");
            }
        }
    }
}

async fn project_tokens_see_only_their_projects(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    project(&app, &admin, "AA").await;
    project(&app, &admin, "BB").await;
    let scoped = app.token(&owner, json!({"name": "ci", "scopes": ["admin"], "projects": ["aa"]})).await;
    assert_eq!(scoped.summary.projects, Some(vec!["AA".to_string()]));
    let t = &scoped.token;

    let list = app.api("GET", "/projects", Some(t), None).await;
    let keys: Vec<&str> = list.body["data"].as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["AA"]);
    assert_eq!(app.api("GET", "/projects/AA", Some(t), None).await.status, StatusCode::OK);
    let hidden = app.api("GET", "/projects/BB", Some(t), None).await;
    let missing = app.api("GET", "/projects/ZZ", Some(t), None).await;
    assert_error(&hidden, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(hidden.body, missing.body, "a hidden project looks exactly like a missing one");
    assert_error(
        &app.api("PATCH", "/projects/BB", Some(t), Some(json!({"name": "x"}))).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(&app.api("DELETE", "/projects/BB", Some(t), None).await, StatusCode::NOT_FOUND, "not_found");
    let res = app.api("POST", "/projects", Some(t), Some(json!({"key": "CC", "name": "C"}))).await;
    assert_error(&res, StatusCode::FORBIDDEN, "project_restricted");

    // It cannot mint a token wider than itself.
    let res =
        app.api("POST", "/tokens", Some(t), Some(json!({"name": "wide", "scopes": ["read"], "projects": null}))).await;
    assert_error(&res, StatusCode::FORBIDDEN, "project_restricted");
    let res = app
        .api("POST", "/tokens", Some(t), Some(json!({"name": "other", "scopes": ["read"], "projects": ["BB"]})))
        .await;
    assert_error(&res, StatusCode::FORBIDDEN, "project_restricted");
    let res = app
        .api("POST", "/tokens", Some(t), Some(json!({"name": "narrow", "scopes": ["read"], "projects": ["AA"]})))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    // It sees only tokens confined to its projects.
    let list = app.api("GET", "/tokens", Some(t), None).await;
    let mut names: Vec<&str> =
        list.body["data"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["ci", "narrow"]);
}

async fn tenants_are_isolated(app: TestApp) {
    let a = app.bootstrap("Acme", "a@example.com").await;
    let b = app.bootstrap("Globex", "b@example.com").await;
    let a_token = app.token(&a, json!({"name": "a", "scopes": ["admin"]})).await.token;
    let b_created = app.token(&b, json!({"name": "b", "scopes": ["admin"]})).await;
    project(&app, &b_created.token, "GX").await;

    let me = app.api("GET", "/me", Some(&a_token), None).await;
    assert_eq!(me.body["tenant"]["name"], "Acme");
    assert_eq!(app.api("GET", "/projects", Some(&a_token), None).await.body["data"], json!([]));
    assert_error(&app.api("GET", "/projects/GX", Some(&a_token), None).await, StatusCode::NOT_FOUND, "not_found");
    let b_id = &b_created.summary.id;
    for (method, path) in [("GET", format!("/tokens/{b_id}")), ("POST", format!("/tokens/{b_id}/revoke"))] {
        assert_error(&app.api(method, &path, Some(&a_token), None).await, StatusCode::NOT_FOUND, "not_found");
    }
    let list = app.api("GET", "/tokens", Some(&a_token), None).await;
    assert!(list.body["data"].as_array().unwrap().iter().all(|t| t["name"] != "b"));
    assert_eq!(app.api("GET", "/me", Some(&b_created.token), None).await.status, StatusCode::OK, "B's token untouched");
}

async fn the_token_lifecycle(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    project(&app, &admin, "BD").await;

    // Create: 201, the full token once, the summary, the expiry header.
    let res = app
        .api(
            "POST",
            "/tokens",
            Some(&admin),
            Some(json!({"name": " CI ", "scopes": ["write"], "projects": ["BD"], "expires_in": "30d"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let created = &res.body["data"];
    let token = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(format::parse(&token).is_some());
    assert_eq!(created["name"], "CI");
    assert_eq!(created["scopes"], json!(["read", "write"]));
    assert_eq!(created["projects"], json!(["BD"]));
    assert_eq!(created["status"], "active");
    assert_eq!(created["created_by"], "owner@example.com");
    assert_eq!(created["prefix"].as_str().unwrap(), &token[3..11]);

    let me = app.api("GET", "/me", Some(&token), None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["token"]["expires_at"], created["expires_at"]);
    assert_eq!(me.headers["qahub-token-expires-at"].to_str().unwrap(), created["expires_at"].as_str().unwrap());
    assert_eq!(me.body["scopes"], json!(["read", "write"]));
    assert_eq!(me.body["tenant"]["status"], "ACTIVE");
    assert!(me.body["ai"].is_object());
    assert!(app.api("GET", "/me", Some(&admin), None).await.headers.get("qahub-token-expires-at").is_none());

    // The secret is nowhere in what the API shows afterwards.
    let shown = app.api("GET", &format!("/tokens/{id}"), Some(&admin), None).await;
    assert!(!shown.body.to_string().contains(&token[12..]));
    assert!(shown.body["data"].get("token").is_none());

    // Rename and widen are audited with before and after.
    let res = app.api("PATCH", &format!("/tokens/{id}"), Some(&admin), Some(json!({"name": "CI main"}))).await;
    assert_eq!(res.body["data"]["name"], "CI main");
    let res = app
        .api("PATCH", &format!("/tokens/{id}"), Some(&admin), Some(json!({"projects": null, "scopes": ["read"]})))
        .await;
    assert_eq!(
        (res.body["data"]["projects"].clone(), res.body["data"]["scopes"].clone()),
        (Value::Null, json!(["read"]))
    );
    let res = app.api("POST", "/projects", Some(&token), Some(json!({"key": "NEW", "name": "n"}))).await;
    assert_error(&res, StatusCode::FORBIDDEN, "insufficient_scope");

    // Disable, enable, revoke; revoked is final.
    let path = |action: &str| format!("/tokens/{id}/{action}");
    assert_eq!(app.api("POST", &path("disable"), Some(&admin), None).await.body["data"]["status"], "disabled");
    assert_error(&app.api("GET", "/me", Some(&token), None).await, StatusCode::UNAUTHORIZED, "disabled_token");
    assert_eq!(app.api("POST", &path("enable"), Some(&admin), None).await.body["data"]["status"], "active");
    assert_eq!(app.api("GET", "/me", Some(&token), None).await.status, StatusCode::OK);
    assert_eq!(app.api("POST", &path("revoke"), Some(&admin), None).await.body["data"]["status"], "revoked");
    assert_error(&app.api("GET", "/me", Some(&token), None).await, StatusCode::UNAUTHORIZED, "revoked_token");
    assert_error(&app.api("POST", &path("enable"), Some(&admin), None).await, StatusCode::CONFLICT, "conflict");
    assert_error(
        &app.api("PATCH", &format!("/tokens/{id}"), Some(&admin), Some(json!({"name": "x"}))).await,
        StatusCode::CONFLICT,
        "conflict",
    );

    let actions = app.audit_actions(&owner.tenant_id).await;
    for expected in
        ["token.created", "token.renamed", "token.updated", "token.disabled", "token.enabled", "token.revoked"]
    {
        assert!(actions.iter().any(|a| a == expected), "{expected} missing from {actions:?}");
    }

    // Bad input gets clear 4xx answers.
    for (body, code) in [
        (json!({"name": "", "scopes": ["read"]}), "invalid_request"),
        (json!({"name": "x", "scopes": []}), "invalid_request"),
        (json!({"name": "x", "scopes": ["root"]}), "invalid_request"),
        (json!({"name": "x", "scopes": ["read"], "projects": []}), "invalid_request"),
        (json!({"name": "x", "scopes": ["read"], "projects": ["NOPE"]}), "invalid_request"),
        (json!({"name": "x", "scopes": ["read"], "expires_in": "7d"}), "invalid_request"),
        (json!({"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}), "invalid_request"),
        (
            json!({"name": "x", "scopes": ["read"], "expires_in": "30d", "expires_at": "2099-01-01T00:00:00Z"}),
            "invalid_request",
        ),
    ] {
        let res = app.api("POST", "/tokens", Some(&admin), Some(body.clone())).await;
        assert_error(&res, StatusCode::UNPROCESSABLE_ENTITY, code);
    }
    let res = app
        .api_with("POST", "/tokens", Some(&format!("Bearer {admin}")), None, &[("content-type", "application/json")])
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let res = app
        .api(
            "POST",
            "/tokens",
            Some(&admin),
            Some(json!({"name": "x", "scopes": ["read"], "expires_at": "2099-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(res.body["data"]["expires_at"], "2099-01-01T00:00:00Z");
}

async fn nobody_mints_more_than_they_have(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin_user = app.add_user("Acme", "admin@example.com", Role::Admin).await;
    let member = app.add_user("Acme", "member@example.com", Role::Member).await;

    // Members cannot create tokens at all.
    let req: app::tokens::CreateToken = serde_json::from_value(json!({"name": "m", "scopes": ["read"]})).unwrap();
    let err =
        app::tokens::server::lifecycle::create(&app.state, &app::actor::Actor::User(member), &Default::default(), req)
            .await
            .unwrap_err();
    assert_eq!(err.code, app::error::ErrorCode::Forbidden);

    // A 30-day admin token cannot mint a never-expiring one.
    let short = app.token(&owner, json!({"name": "short", "scopes": ["admin"], "expires_in": "30d"})).await.token;
    let res = app
        .api(
            "POST",
            "/tokens",
            Some(&short),
            Some(json!({"name": "forever", "scopes": ["read"], "expires_in": "never"})),
        )
        .await;
    assert_error(&res, StatusCode::FORBIDDEN, "insufficient_scope");
    let res = app
        .api(
            "POST",
            "/tokens",
            Some(&short),
            Some(json!({"name": "shorter", "scopes": ["admin"], "expires_in": "30d"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);

    // An admin's token loses its power to manage tokens when the admin becomes a member.
    let admins = app.token(&admin_user, json!({"name": "a", "scopes": ["admin"]})).await.token;
    assert_eq!(app.api("GET", "/tokens", Some(&admins), None).await.status, StatusCode::OK);
    sqlx::query("UPDATE memberships SET role = 'member' WHERE user_id = $1")
        .bind(&admin_user.user_id)
        .execute(&app.state.db)
        .await
        .unwrap();
    let res = app.api("POST", "/tokens", Some(&admins), Some(json!({"name": "x", "scopes": ["read"]}))).await;
    assert_error(&res, StatusCode::FORBIDDEN, "forbidden");
}

async fn rotation_keeps_the_old_token_until_the_new_one_is_used(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    let old = app.token(&owner, json!({"name": "CI", "scopes": ["write"], "expires_in": "90d"})).await;

    let res = app.api("POST", &format!("/tokens/{}/rotate", old.summary.id), Some(&admin), None).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let new = res.body["data"]["token"].as_str().unwrap().to_string();
    assert_eq!(res.body["data"]["name"], "CI");
    assert_eq!(res.body["data"]["scopes"], json!(["read", "write"]));
    assert!(res.body["data"]["expires_at"].is_string());
    assert_ne!(new, old.token);

    assert_eq!(
        app.api("GET", "/me", Some(&old.token), None).await.status,
        StatusCode::OK,
        "old works until the new is used"
    );
    assert_eq!(app.api("GET", "/me", Some(&old.token), None).await.status, StatusCode::OK);
    assert_eq!(app.api("GET", "/me", Some(&new), None).await.status, StatusCode::OK);
    assert_error(&app.api("GET", "/me", Some(&old.token), None).await, StatusCode::UNAUTHORIZED, "revoked_token");
    assert_eq!(app.api("GET", "/me", Some(&new), None).await.status, StatusCode::OK);
    let actions = app.audit_actions(&owner.tenant_id).await;
    assert_eq!(actions.iter().filter(|a| *a == "token.rotated").count(), 1);
    assert_eq!(actions.iter().filter(|a| *a == "token.revoked").count(), 1, "{actions:?}");

    // "now": the old one stops at once.
    let other = app.token(&owner, json!({"name": "nightly", "scopes": ["read"]})).await;
    let res = app
        .api("POST", &format!("/tokens/{}/rotate", other.summary.id), Some(&admin), Some(json!({"old_token": "now"})))
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_error(&app.api("GET", "/me", Some(&other.token), None).await, StatusCode::UNAUTHORIZED, "revoked_token");

    // "1h": both work inside the window, even after the new one is used; then the old is revoked once.
    let third = app.token(&owner, json!({"name": "deploy", "scopes": ["read"]})).await;
    let res = app
        .api("POST", &format!("/tokens/{}/rotate", third.summary.id), Some(&admin), Some(json!({"old_token": "1h"})))
        .await;
    let replacement = res.body["data"]["token"].as_str().unwrap().to_string();
    assert_eq!(app.api("GET", "/me", Some(&replacement), None).await.status, StatusCode::OK);
    assert_eq!(app.api("GET", "/me", Some(&third.token), None).await.status, StatusCode::OK, "inside the window");
    app.sql("UPDATE api_tokens SET retire_at = $1 WHERE id = $2", &third.summary.id, 1).await;
    let revocations = |actions: Vec<String>| actions.into_iter().filter(|a| a == "token.revoked").count();
    let before = revocations(app.audit_actions(&owner.tenant_id).await);
    assert_error(&app.api("GET", "/me", Some(&third.token), None).await, StatusCode::UNAUTHORIZED, "revoked_token");
    assert_error(&app.api("GET", "/me", Some(&third.token), None).await, StatusCode::UNAUTHORIZED, "revoked_token");
    let after = revocations(app.audit_actions(&owner.tenant_id).await);
    assert_eq!(after, before + 1, "the window's end is recorded exactly once");
    let (kind,): (String,) = sqlx::query_as(
        "SELECT actor_type FROM audit_log WHERE action = 'token.revoked' AND tenant_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(&owner.tenant_id)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(kind, "server", "the server retired it, by the rotation's rule");

    // Bad modes and revoked tokens are refused.
    let res = app
        .api("POST", &format!("/tokens/{}/rotate", third.summary.id), Some(&admin), Some(json!({"old_token": "2h"})))
        .await;
    assert_error(&res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    let res = app.api("POST", &format!("/tokens/{}/rotate", other.summary.id), Some(&admin), None).await;
    assert_error(&res, StatusCode::CONFLICT, "conflict");
}

async fn leaked_tokens_are_revoked_and_the_answer_says_nothing(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let leaked = app.token(&owner, json!({"name": "leaky", "scopes": ["read"]})).await;
    let report =
        |tokens: Vec<String>| json!({"tokens": tokens, "source": "github", "url": "https://example.com/commit/1"});
    let real = app.api("POST", "/leaked-tokens", None, Some(report(vec![leaked.token.clone()]))).await;
    let fake = app
        .api(
            "POST",
            "/leaked-tokens",
            None,
            Some(report(vec![format::generate("abcdabcd").expose(), "nonsense".into()])),
        )
        .await;
    assert_eq!(real.status, StatusCode::ACCEPTED);
    assert_eq!((real.status, &real.body), (fake.status, &fake.body), "same answer either way");
    // Reports are revoked after the answer: the revocation follows within moments.
    for _ in 0..100 {
        if app.api("GET", "/me", Some(&leaked.token), None).await.error_code() == "revoked_token" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_error(&app.api("GET", "/me", Some(&leaked.token), None).await, StatusCode::UNAUTHORIZED, "revoked_token");
    let actions = app.audit_actions(&owner.tenant_id).await;
    assert!(actions.contains(&"token.leaked".to_string()), "{actions:?}");
    // The server revoked it, by its rule: the audit log says so, not "qahub CLI".
    let (kind, label): (String, Option<String>) = sqlx::query_as(
        "SELECT actor_type, actor_label FROM audit_log WHERE action = 'token.leaked' AND tenant_id = $1",
    )
    .bind(&owner.tenant_id)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!((kind.as_str(), label.as_deref()), ("server", Some("QA Hub (automatic)")));
    // A forged secret on a real prefix revokes nothing. Checked once the report is
    // processed: a real token reported after it in the same report is revoked then.
    let other = app.token(&owner, json!({"name": "safe", "scopes": ["read"]})).await;
    let marker = app.token(&owner, json!({"name": "marker", "scopes": ["read"]})).await;
    let forged = format::generate(&other.summary.prefix).expose();
    let res = app.api("POST", "/leaked-tokens", None, Some(report(vec![forged, marker.token.clone()]))).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    for _ in 0..200 {
        if app.api("GET", "/me", Some(&marker.token), None).await.error_code() == "revoked_token" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_error(&app.api("GET", "/me", Some(&marker.token), None).await, StatusCode::UNAUTHORIZED, "revoked_token");
    assert_eq!(app.api("GET", "/me", Some(&other.token), None).await.status, StatusCode::OK);
}

async fn the_audit_log_pages_with_a_cursor(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    for key in ["AA", "BB", "CC"] {
        project(&app, &admin, key).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/audit-logs?limit=2&cursor={c}"),
            None => "/audit-logs?limit=2".to_string(),
        };
        let res = app.api("GET", &path, Some(&admin), None).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        // New-address events are written off the request path; their place may vary.
        for entry in res.body["data"].as_array().unwrap().iter().filter(|e| e["action"] != "token.new_ip") {
            seen.push(entry["action"].as_str().unwrap().to_string());
            if entry["action"] == "project.created" {
                assert_eq!(entry["actor"]["type"], "token");
                assert!(entry["actor"]["label"].as_str().unwrap().starts_with("qh_"));
                assert_eq!(entry["ip"], "127.0.0.1");
            }
        }
        cursor = res.body["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["tenant.created", "token.created", "project.created", "project.created", "project.created"]);
    let res = app.api("GET", "/audit-logs?since=2999-01-01T00:00:00Z", Some(&admin), None).await;
    assert_eq!(res.body["data"], json!([]));
    assert_error(
        &app.api("GET", "/audit-logs?since=yesterday", Some(&admin), None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    assert_error(
        &app.api("GET", "/audit-logs?limit=500", Some(&admin), None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
}

async fn last_use_is_recorded_without_a_write_per_request(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let created = app.token(&owner, json!({"name": "ci", "scopes": ["admin"]})).await;
    for _ in 0..5 {
        assert_eq!(app.api("GET", "/me", Some(&created.token), None).await.status, StatusCode::OK);
    }
    // The write happens off the request path; wait for it, bounded.
    let mut summary = Value::Null;
    for _ in 0..50 {
        summary = app.api("GET", &format!("/tokens/{}", created.summary.id), Some(&created.token), None).await.body;
        if summary["data"]["last_used_at"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(summary["data"]["last_used_ip"], "127.0.0.1");
    // The new-address event follows the last-use write off the request path: wait for it too.
    let mut actions = Vec::new();
    for _ in 0..50 {
        actions = app.audit_actions(&owner.tenant_id).await;
        if actions.iter().any(|a| a == "token.new_ip") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(actions.iter().filter(|a| *a == "token.new_ip").count(), 1, "one new-address event: {actions:?}");
}

on_both_databases!(
    the_error_table,
    a_host_claimed_by_another_tenant_refuses_foreign_tokens,
    the_scope_matrix,
    project_tokens_see_only_their_projects,
    tenants_are_isolated,
    the_token_lifecycle,
    nobody_mints_more_than_they_have,
    rotation_keeps_the_old_token_until_the_new_one_is_used,
    leaked_tokens_are_revoked_and_the_answer_says_nothing,
    the_audit_log_pages_with_a_cursor,
    last_use_is_recorded_without_a_write_per_request,
);

#[tokio::test]
async fn the_ip_allowlist_uses_the_address_behind_trusted_proxies() {
    let settings = app::state::Settings { trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()], ..test_settings() };
    let app = spawn_app_with(Kind::Sqlite, settings).await.unwrap();
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    let auth = format!("Bearer {admin}");
    let from = |ip: &'static str| [("x-forwarded-for", ip)];

    // Refused when it would lock out the caller.
    let res = app
        .api_with("PATCH", "/tenant", Some(&auth), Some(json!({"ip_allowlist": ["10.0.0.0/8"]})), &from("203.0.113.5"))
        .await;
    assert_error(&res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    let res = app
        .api_with("PATCH", "/tenant", Some(&auth), Some(json!({"ip_allowlist": ["not-an-ip"]})), &from("203.0.113.5"))
        .await;
    assert_error(&res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    let res = app
        .api_with(
            "PATCH",
            "/tenant",
            Some(&auth),
            Some(json!({"ip_allowlist": ["203.0.113.0/24"]})),
            &from("203.0.113.5"),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["data"]["ip_allowlist"], json!(["203.0.113.0/24"]));

    assert_eq!(app.api_with("GET", "/me", Some(&auth), None, &from("203.0.113.77")).await.status, StatusCode::OK);
    let res = app.api_with("GET", "/me", Some(&auth), None, &from("198.51.100.1")).await;
    assert_error(&res, StatusCode::FORBIDDEN, "ip_not_allowed");
    let actions = app.audit_actions(&owner.tenant_id).await;
    assert!(actions.contains(&"tenant.settings_changed".to_string()));
}

#[test]
fn qahub_token_create_prints_the_token_alone() {
    let dir = std::env::temp_dir().join(format!("qahub-tok-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_qahub"))
            .args(args)
            .current_dir(&dir)
            .env("QAHUB_BCRYPT_COST", "4")
            .env_remove("QAHUB_DATABASE_URL")
            .output()
            .unwrap()
    };
    assert!(run(&[
        "admin",
        "bootstrap",
        "--tenant",
        "Acme",
        "--email",
        "o@example.com",
        "--password",
        "a long password"
    ])
    .status
    .success());
    let out = run(&[
        "token",
        "create",
        "--tenant",
        "Acme",
        "--email",
        "o@example.com",
        "--name",
        "CI",
        "--scopes",
        "read,write",
        "--expires",
        "30d",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.trim_end_matches('\n');
    assert!(format::parse(token).is_some(), "stdout is exactly the token: {stdout:?}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&token[12..]), "the secret is not logged");

    let out =
        run(&["token", "create", "--tenant", "Acme", "--email", "o@example.com", "--name", "x", "--scopes", "root"]);
    assert!(!out.status.success() && out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scope"));
    let out =
        run(&["token", "create", "--tenant", "Nope", "--email", "o@example.com", "--name", "x", "--scopes", "read"]);
    assert!(!out.status.success() && out.stdout.is_empty());
    std::fs::remove_dir_all(&dir).ok();
}

async fn flood_of_wrong_secrets(kind: Kind) {
    let mut settings = test_settings();
    settings.guard.attempts_per_prefix = 5;
    let Some(app) = spawn_app_with(kind, settings).await else { return };
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let good = app.token(&owner, json!({"name": "ci", "scopes": ["read"]})).await;
    assert_eq!(app.api("GET", "/me", Some(&good.token), None).await.status, StatusCode::OK);

    let mut codes = Vec::new();
    for _ in 0..12 {
        let forged = format::generate(&good.summary.prefix).expose();
        let res = app.api("GET", "/me", Some(&forged), None).await;
        if res.status == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = res.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
            assert!(wait >= 1);
        }
        codes.push(res.error_code().to_string());
        // Good traffic keeps flowing: its secret is verified from the cache, not bcrypt.
        assert_eq!(app.api("GET", "/me", Some(&good.token), None).await.status, StatusCode::OK);
    }
    let refused = codes.iter().filter(|c| *c == "invalid_token").count();
    assert_eq!(refused, 4, "five bcrypt attempts a minute for the prefix, one spent by the good token: {codes:?}");
    assert!(codes[4..].iter().all(|c| c == "rate_limited"), "{codes:?}");
}

#[tokio::test]
async fn a_flood_of_wrong_secrets_is_throttled_and_good_traffic_flows_sqlite() {
    flood_of_wrong_secrets(Kind::Sqlite).await;
}

#[tokio::test]
async fn a_flood_of_wrong_secrets_is_throttled_and_good_traffic_flows_postgres() {
    flood_of_wrong_secrets(Kind::Postgres).await;
}

async fn per_token_rate_limits_with_headers(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    let ci = app.token(&owner, json!({"name": "ci", "scopes": ["read"]})).await;

    let res = app.api("GET", "/me", Some(&admin), None).await;
    assert_eq!(res.headers["ratelimit-limit"], "1200", "the server default applies");

    let res = app
        .api("PATCH", &format!("/tokens/{}", ci.summary.id), Some(&admin), Some(json!({"rate_limit_per_minute": 3})))
        .await;
    assert_eq!(res.body["data"]["rate_limit_per_minute"], 3, "{}", res.body);
    for remaining in ["2", "1", "0"] {
        let res = app.api("GET", "/me", Some(&ci.token), None).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.headers["ratelimit-limit"], "3");
        assert_eq!(res.headers["ratelimit-remaining"], remaining);
        assert!(res.headers["ratelimit-reset"].to_str().unwrap().parse::<u64>().is_ok());
    }
    let res = app.api("GET", "/me", Some(&ci.token), None).await;
    assert_error(&res, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(res.headers[header::RETRY_AFTER].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(res.headers["ratelimit-remaining"], "0");

    // The tenant default applies to tokens without their own limit; only people set it.
    let res = app.api("PATCH", "/tenant", Some(&admin), Some(json!({"token_rate_limit_per_minute": 50}))).await;
    assert_error(&res, StatusCode::FORBIDDEN, "forbidden");
    let change = app::tenants::UpdateTenant { token_rate_limit_per_minute: Some(Some(50)), ..Default::default() };
    let actor = app::actor::Actor::User(owner.clone());
    let settings = app::tenants::server::update(&app.state, &actor, &Default::default(), change).await.unwrap();
    assert_eq!(settings.token_rate_limit_per_minute, Some(50));
    let res = app.api("GET", "/me", Some(&admin), None).await;
    assert_eq!(res.headers["ratelimit-limit"], "50");

    let body = json!({"rate_limit_per_minute": 0});
    let res = app.api("PATCH", &format!("/tokens/{}", ci.summary.id), Some(&admin), Some(body)).await;
    assert_error(&res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    let zero = app::tenants::UpdateTenant { token_rate_limit_per_minute: Some(Some(0)), ..Default::default() };
    let err = app::tenants::server::update(&app.state, &actor, &Default::default(), zero).await.unwrap_err();
    assert_eq!(err.code, app::error::ErrorCode::InvalidRequest);
}

on_both_databases!(per_token_rate_limits_with_headers);
