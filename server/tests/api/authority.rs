//! Regression tests for the authority findings: each is an attack a narrower credential
//! made on the release before `policy` and `lifecycle`, tried again here on both databases.

use app::{
    actor::{Actor, RequestMeta},
    people::{server::service as people, Role},
    tokens::server::format,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app_with, test_settings, Kind, TestApp},
    on_both_databases,
};

async fn projects(app: &TestApp, owner: &app::people::CurrentUser, keys: &[&str]) {
    for key in keys {
        let actor = Actor::User(owner.clone());
        app::projects::server::service::create(&app.state, &actor, &RequestMeta::default(), key, key).await.unwrap();
    }
}

fn code(res: &crate::helpers::Api) -> (StatusCode, &str) {
    (res.status, res.error_code())
}

async fn tenant_settings_need_tenant_wide_reach(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    projects(&app, &owner, &["ONE"]).await;
    let narrow = app.token(&owner, json!({"name": "p", "scopes": ["admin"], "projects": ["ONE"]})).await.token;
    let admin = app.token(&owner, json!({"name": "a", "scopes": ["admin"]})).await.token;
    for body in [json!({"ip_allowlist": ["10.0.0.0/8"]}), json!({"ai_model": "x"}), json!({"ip_allowlist": []})] {
        let res = app.api("PATCH", "/tenant", Some(&narrow), Some(body)).await;
        assert_eq!(code(&res), (StatusCode::FORBIDDEN, "project_restricted"), "{}", res.body);
    }
    // Host names only the operator grants; the default rate limit only people set.
    let res = app.api("PATCH", "/tenant", Some(&admin), Some(json!({"hosts": ["qa.acme.example"]}))).await;
    assert_eq!(code(&res), (StatusCode::FORBIDDEN, "forbidden"), "{}", res.body);
    let res = app.api("PATCH", "/tenant", Some(&admin), Some(json!({"token_rate_limit_per_minute": 1000000}))).await;
    assert_eq!(code(&res), (StatusCode::FORBIDDEN, "forbidden"), "{}", res.body);
    let res = app.api("PATCH", "/tenant", Some(&admin), Some(json!({"ai_model": "ok"}))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let res = app.api("GET", "/tenant", Some(&admin), None).await;
    assert_eq!(res.body["data"]["hosts"], json!([]));
}

async fn edits_never_outgrow_the_editor(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let short = app.token(&owner, json!({"name": "30d", "scopes": ["admin"], "expires_in": "30d"})).await;
    let reader = app.token(&owner, json!({"name": "reader", "scopes": ["read"]})).await;
    let path = format!("/tokens/{}", reader.summary.id);
    // A 30-day admin token may not make a never-expiring read token an admin one.
    let res = app.api("PATCH", &path, Some(&short.token), Some(json!({"scopes": ["admin"]}))).await;
    assert_eq!(code(&res), (StatusCode::FORBIDDEN, "insufficient_scope"), "{}", res.body);
    let res = app.api("GET", &path, Some(&short.token), None).await;
    assert_eq!(res.status, StatusCode::OK, "it may still see it");
    assert_eq!(res.body["data"]["scopes"], json!(["read"]), "unchanged");
    // A token never raises its own limit, and sets others' only up to the workspace's.
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await;
    let own = format!("/tokens/{}", admin.summary.id);
    let res = app.api("PATCH", &own, Some(&admin.token), Some(json!({"rate_limit_per_minute": 1000000}))).await;
    assert_eq!(code(&res), (StatusCode::FORBIDDEN, "forbidden"), "{}", res.body);
    let res = app.api("PATCH", &path, Some(&admin.token), Some(json!({"rate_limit_per_minute": 1000000}))).await;
    assert_eq!(code(&res), (StatusCode::FORBIDDEN, "forbidden"), "{}", res.body);
    let res = app.api("PATCH", &path, Some(&admin.token), Some(json!({"rate_limit_per_minute": 60}))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    // A person's token may neither widen a workspace token nor re-enable one an owner disabled.
    let service = app.token(&owner, json!({"name": "svc", "scopes": ["read"], "owner": "workspace"})).await;
    let svc = format!("/tokens/{}", service.summary.id);
    let res = app.api("PATCH", &svc, Some(&admin.token), Some(json!({"scopes": ["admin"]}))).await;
    assert_eq!(code(&res), (StatusCode::FORBIDDEN, "insufficient_scope"), "{}", res.body);
    let session = app.login("owner@example.com").await;
    let (status, _) = app.call(&session, "tokens/status", &[("id", &service.summary.id), ("action", "disable")]).await;
    assert_eq!(status, StatusCode::OK);
    let res = app.api("POST", &format!("{svc}/enable"), Some(&admin.token), None).await;
    assert_eq!(code(&res), (StatusCode::FORBIDDEN, "insufficient_scope"), "{}", res.body);
    let res = app.api("GET", "/me", Some(&service.token), None).await;
    assert_eq!(code(&res), (StatusCode::UNAUTHORIZED, "disabled_token"));
}

async fn project_tokens_read_only_their_projects_audit(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    projects(&app, &owner, &["ONE", "TWO"]).await;
    let mine = app.token(&owner, json!({"name": "one admin", "scopes": ["admin"], "projects": ["ONE"]})).await;
    let _ = app.token(&owner, json!({"name": "secret two", "scopes": ["read"], "projects": ["TWO"]})).await;
    let _ = app.token(&owner, json!({"name": "everything", "scopes": ["read"]})).await;
    let siem = app.token(&owner, json!({"name": "SIEM-LOG-ONLY one", "scopes": ["read"], "projects": ["ONE"]})).await;
    app.login("owner@example.com").await;
    for token in [&mine.token, &siem.token] {
        let res = app.api("GET", "/audit-logs?limit=200", Some(token), None).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let text = res.body.to_string();
        let entries = res.body["data"].as_array().unwrap();
        assert!(!entries.is_empty());
        for forbidden in ["secret two", "everything", "owner@example.com", "user.login", "tenant.created", "TWO"] {
            assert!(!text.contains(forbidden), "a project token sees {forbidden:?}: {text}");
        }
        assert!(text.contains("one admin"), "its own project's token events: {text}");
        assert!(entries.iter().any(|e| e["action"] == "project.created" && e["target"]["label"] == "ONE"));
    }
    // A project token whose only project is gone reads nothing at all.
    projects(&app, &owner, &["TRE"]).await;
    let orphan = app.token(&owner, json!({"name": "orphan", "scopes": ["admin"], "projects": ["TRE"]})).await.token;
    let actor = Actor::User(owner.clone());
    app::projects::server::service::delete(&app.state, &actor, &RequestMeta::default(), "TRE").await.unwrap();
    let res = app.api("GET", "/audit-logs?limit=200", Some(&orphan), None).await;
    assert_eq!((res.status, res.body["data"].clone()), (StatusCode::OK, json!([])), "{}", res.body);

    // The whole log for a tenant-wide admin token.
    let admin = app.token(&owner, json!({"name": "all", "scopes": ["admin"]})).await.token;
    let res = app.api("GET", "/audit-logs?limit=200", Some(&admin), None).await;
    let text = res.body.to_string();
    assert!(text.contains("secret two") && text.contains("owner@example.com") && text.contains("user.login"));
}

async fn hosts_are_granted_by_the_operator_only(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let owner_b = app.bootstrap("Beta", "owner@beta.example").await;
    let theirs = app.token(&owner_b, json!({"name": "b", "scopes": ["read"]})).await.token;
    let ours = app.token(&owner, json!({"name": "a", "scopes": ["read"]})).await.token;
    for bad in ["localhost", "127.0.0.1", "[::1]", "foo.localhost", "-bad.example", "nodot"] {
        let err = app::tenants::server::set_host(&app.state, "Acme", bad, true).await.unwrap_err();
        assert_eq!(err.code, app::error::ErrorCode::InvalidRequest, "{bad}");
    }
    app::tenants::server::set_host(&app.state, "Acme", "QA.Acme.Example:443", true).await.unwrap();
    let err = app::tenants::server::set_host(&app.state, "Beta", "qa.acme.example", true).await.unwrap_err();
    assert_eq!(err.code, app::error::ErrorCode::Conflict);
    let on = |host: &'static str| [("host", host)];
    let res = app.api_with("GET", "/me", Some(&format!("Bearer {theirs}")), None, &on("qa.acme.example")).await;
    assert_eq!(code(&res), (StatusCode::UNAUTHORIZED, "invalid_token"));
    let res = app.api_with("GET", "/me", Some(&format!("Bearer {ours}")), None, &on("qa.acme.example")).await;
    assert_eq!(res.status, StatusCode::OK);
    // The server's own address stays everyone's.
    assert_eq!(app.api("GET", "/me", Some(&theirs), None).await.status, StatusCode::OK);
    let actions = app.audit_actions(&owner.tenant_id).await;
    assert!(actions.contains(&"tenant.host_added".to_string()), "{actions:?}");
    app::tenants::server::set_host(&app.state, "Acme", "qa.acme.example", false).await.unwrap();
    let res = app.api_with("GET", "/me", Some(&format!("Bearer {theirs}")), None, &on("qa.acme.example")).await;
    assert_eq!(res.status, StatusCode::OK);
}

async fn rotation_chains_end(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    let a = app.token(&owner, json!({"name": "A", "scopes": ["read"]})).await;
    let rotate = |id: String, mode: &'static str| {
        let admin = admin.clone();
        let app = &app;
        async move { app.api("POST", &format!("/tokens/{id}/rotate"), Some(&admin), Some(json!({"old_token": mode}))).await }
    };
    let b = rotate(a.summary.id.clone(), "until_first_use").await;
    assert_eq!(b.status, StatusCode::CREATED);
    let b_id = b.body["data"]["id"].as_str().unwrap().to_string();
    // B waits to take over from A: rotating B (or A again) would keep A alive.
    let res = rotate(b_id.clone(), "until_first_use").await;
    assert_eq!(code(&res), (StatusCode::CONFLICT, "conflict"), "{}", res.body);
    let res = rotate(a.summary.id.clone(), "24h").await;
    assert_eq!(code(&res), (StatusCode::CONFLICT, "conflict"), "{}", res.body);
    // Even until first use has a ceiling of 7 days.
    let res = app.api("GET", &format!("/tokens/{}", a.summary.id), Some(&admin), None).await;
    let retire_at = time::OffsetDateTime::parse(
        res.body["data"]["retire_at"].as_str().expect("a ceiling"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(retire_at <= time::OffsetDateTime::now_utc() + time::Duration::days(7));
    // B's first use retires A; then B rotates normally.
    let b_token = b.body["data"]["token"].as_str().unwrap().to_string();
    assert_eq!(app.api("GET", "/me", Some(&b_token), None).await.status, StatusCode::OK);
    assert_eq!(code(&app.api("GET", "/me", Some(&a.token), None).await), (StatusCode::UNAUTHORIZED, "revoked_token"));
    let c = rotate(b_id.clone(), "1h").await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    // A window is never pushed later by a second rotation.
    let res = rotate(b_id.clone(), "24h").await;
    assert_eq!(code(&res), (StatusCode::CONFLICT, "conflict"), "{}", res.body);
}

async fn leak_reports_are_budgeted_and_revoke_in_the_background(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let leaked = app.token(&owner, json!({"name": "leaked", "scopes": ["read"]})).await;
    let unknown = format::generate("zzzzzzzz").expose();
    let body = json!({"tokens": [leaked.token, unknown], "source": "github"});
    let res = app.api("POST", "/leaked-tokens", None, Some(body.clone())).await;
    assert_eq!(res.status, StatusCode::ACCEPTED);
    let mut revoked = false;
    for _ in 0..100 {
        if app.api("GET", "/me", Some(&leaked.token), None).await.error_code() == "revoked_token" {
            revoked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(revoked, "the leaked token was revoked");
    // Ten reports a minute from one address (the first above is one); the eleventh waits.
    let mut codes = vec![res.status.as_u16()];
    for _ in 0..10 {
        codes.push(app.api("POST", "/leaked-tokens", None, Some(json!({"tokens": []}))).await.status.as_u16());
    }
    assert_eq!(codes, [[202; 10].as_slice(), &[429]].concat(), "exactly ten accepted, then refused");
    assert!(app.api("GET", "/me", Some(&leaked.token), None).await.status != StatusCode::TOO_MANY_REQUESTS);
}

/// Guessers spend their own budget: wrong secrets for a prefix from one address never
/// lock out the holder at another.
#[tokio::test]
async fn a_guesser_cannot_lock_out_the_holder() {
    let mut settings = test_settings();
    settings.guard.attempts_per_prefix = 3;
    settings.guard.cache = false;
    settings.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let app = spawn_app_with(Kind::Sqlite, settings).await.unwrap();
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let real = app.token(&owner, json!({"name": "ci", "scopes": ["read"]})).await;
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    let mut codes = Vec::new();
    for _ in 0..5 {
        // A new wrong secret each time: a repeated one is refused from memory, unattempted.
        let forged = format::generate(&real.summary.prefix).expose();
        let res = app.api_with("GET", "/me", Some(&format!("Bearer {forged}")), None, &from("203.0.113.9")).await;
        codes.push(res.status.as_u16());
    }
    assert_eq!(codes.last(), Some(&429), "the guesser is limited: {codes:?}");
    for _ in 0..3 {
        let res =
            app.api_with("GET", "/me", Some(&format!("Bearer {}", real.token)), None, &from("198.51.100.7")).await;
        assert_eq!(res.status, StatusCode::OK, "the holder still gets in: {}", res.body);
    }
}

/// Finding 6 of the credential-model review: behind a trusted proxy, a token allowlisted
/// to 10.1.2.3 was accepted when the proxy appended `ip:port` (or `[v6]:port`, or
/// `unknown`) after the client's own `10.1.2.3`. The right-most entry is the client; one
/// that is no address leaves the address unknown, which fails every allowlist.
async fn allowlists_behind_a_proxy_read_forwarded_for_from_the_right(kind: Kind) {
    let mut settings = test_settings();
    settings.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let Some(app) = spawn_app_with(kind, settings).await else { return };
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let token =
        app.token(&owner, json!({"name": "ci", "scopes": ["read"], "ip_allowlist": ["10.1.2.3/32"]})).await.token;
    let me = |xff: &'static str| {
        let (app, token) = (&app, &token);
        async move {
            let res =
                app.api_with("GET", "/me", Some(&format!("Bearer {token}")), None, &[("x-forwarded-for", xff)]).await;
            (res.status, res.body["error"]["code"].as_str().unwrap_or_default().to_string())
        }
    };
    assert_eq!(me("203.0.113.9, 10.1.2.3").await.0, StatusCode::OK, "the header is read: the allowed client gets in");
    assert_eq!(me("10.1.2.3:5555").await.0, StatusCode::OK, "ip:port counts as its address");
    for xff in ["10.1.2.3, 203.0.113.9:4711", "10.1.2.3, [2001:db8::1]:443", "10.1.2.3, unknown", "10.1.2.3, garbage"] {
        assert_eq!(me(xff).await, (StatusCode::FORBIDDEN, "ip_not_allowed".to_string()), "{xff}");
    }
    // The workspace's own list reads the same address.
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    let set =
        app.api("PATCH", "/tenant", Some(&admin), Some(json!({"ip_allowlist": ["10.1.2.3/32", "127.0.0.1/32"]}))).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let open = app.token(&owner, json!({"name": "open", "scopes": ["read"]})).await.token;
    let res = app
        .api_with(
            "GET",
            "/me",
            Some(&format!("Bearer {open}")),
            None,
            &[("x-forwarded-for", "10.1.2.3, 203.0.113.9:4711")],
        )
        .await;
    assert_eq!(res.error_code(), "ip_not_allowed", "{}", res.body);
    let res = app
        .api_with(
            "GET",
            "/me",
            Some(&format!("Bearer {open}")),
            None,
            &[("x-forwarded-for", "203.0.113.9, 10.1.2.3:80")],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
}

#[tokio::test]
async fn allowlists_behind_a_proxy_sqlite() {
    allowlists_behind_a_proxy_read_forwarded_for_from_the_right(Kind::Sqlite).await;
}

#[tokio::test]
async fn allowlists_behind_a_proxy_postgres() {
    allowlists_behind_a_proxy_read_forwarded_for_from_the_right(Kind::Postgres).await;
}

async fn a_changed_row_is_verified_again(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let t = app.token(&owner, json!({"name": "ci", "scopes": ["read"]})).await;
    assert_eq!(app.api("GET", "/me", Some(&t.token), None).await.status, StatusCode::OK, "cached as verified");
    // The row's hash changes (as if its secret were replaced): the cached verdict is void.
    let other = bcrypt::non_truncating_hash("someothersecret", 4).unwrap();
    sqlx::query("UPDATE api_tokens SET secret_hash = $1 WHERE id = $2")
        .bind(other)
        .bind(&t.summary.id)
        .execute(&app.state.db)
        .await
        .unwrap();
    let res = app.api("GET", "/me", Some(&t.token), None).await;
    assert_eq!(code(&res), (StatusCode::UNAUTHORIZED, "invalid_token"));
}

async fn token_list_filters_before_the_limit(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    projects(&app, &owner, &["ONE", "TWO"]).await;
    let actor = Actor::User(owner.clone());
    let mut expected: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for i in 0..60 {
        let projects = match i % 3 {
            0 => json!(null),
            1 => json!(["ONE"]),
            _ => json!(["TWO"]),
        };
        let t = app.token(&owner, json!({"name": format!("t{i}"), "scopes": ["read"], "projects": projects})).await;
        let id = t.summary.id.clone();
        let status = match i % 4 {
            0 => "active",
            1 => {
                app::tokens::server::lifecycle::set_status(
                    &app.state,
                    &actor,
                    &RequestMeta::default(),
                    &id,
                    app::tokens::server::lifecycle::Transition::Revoke,
                )
                .await
                .unwrap();
                "revoked"
            }
            2 => {
                app.sql("UPDATE api_tokens SET expires_at = $1 WHERE id = $2", &id, 1).await;
                "expired"
            }
            _ => {
                app::tokens::server::lifecycle::set_status(
                    &app.state,
                    &actor,
                    &RequestMeta::default(),
                    &id,
                    app::tokens::server::lifecycle::Transition::Disable,
                )
                .await
                .unwrap();
                "disabled"
            }
        };
        expected.entry(status).or_default().push(id.clone());
        if i % 3 == 1 {
            expected.entry("ONE").or_default().push(id.clone());
        }
        expected.entry("all").or_default().push(id);
    }
    let admin = app.token(&owner, json!({"name": "lister", "scopes": ["admin"]})).await.token;
    let one = app.token(&owner, json!({"name": "one lister", "scopes": ["admin"], "projects": ["ONE"]})).await;
    expected.get_mut("all").unwrap().push(one.summary.id.clone());
    expected.get_mut("active").unwrap().push(one.summary.id.clone());
    expected.get_mut("ONE").unwrap().push(one.summary.id.clone());
    let lister_id = app.api("GET", "/me", Some(&admin), None).await.body["token"]["id"].as_str().unwrap().to_string();
    for (filter, token) in [
        ("all", &admin),
        ("active", &admin),
        ("revoked", &admin),
        ("expired", &admin),
        ("disabled", &admin),
        ("ONE", &one.token),
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let mut path = "/tokens?limit=7".to_string();
            if !matches!(filter, "all" | "ONE") {
                path += &format!("&status={filter}");
            }
            if let Some(c) = &cursor {
                path += &format!("&cursor={c}");
            }
            let res = app.api("GET", &path, Some(token), None).await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.body);
            let page: Vec<String> =
                res.body["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
            cursor = res.body["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_some() {
                assert_eq!(page.len(), 7, "{filter}: a page with a cursor after it is full");
            }
            seen.extend(page);
            if cursor.is_none() {
                break;
            }
        }
        let mut want: Vec<String> = expected[filter].clone();
        if matches!(filter, "all" | "active") {
            want.push(lister_id.clone());
        }
        want.sort();
        let mut got = seen.clone();
        got.sort();
        assert_eq!(got.len(), seen.len(), "{filter}: each token once");
        assert_eq!(got, want, "{filter}");
    }
}

async fn run_durations_never_overflow(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "a", "scopes": ["admin"]})).await.token;
    app.api("POST", "/projects", Some(&admin), Some(json!({"key": "BIG", "name": "Big"}))).await;
    let run = app.api("POST", "/projects/BIG/runs", Some(&admin), Some(json!({"name": "long"}))).await;
    let id = run.body["data"]["id"].as_str().unwrap().to_string();
    let huge = u64::MAX / 2;
    let batch = json!({"results": [
        {"title": "a", "status": "passed", "duration_ms": huge},
        {"title": "b", "status": "passed", "duration_ms": huge},
        {"title": "c", "status": "failed", "duration_ms": huge},
    ]});
    let res = app.api("POST", &format!("/projects/BIG/runs/{id}/results"), Some(&admin), Some(batch)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let res = app.api("GET", "/projects/BIG/runs", Some(&admin), None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(res.body["data"][0]["duration_ms"].as_u64().unwrap() >= i64::MAX as u64);
}

async fn the_operator_suspends_by_the_rules_and_audits(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let member = app.add_user("Acme", "member@example.com", Role::Member).await;
    assert!(people::suspend_account(&app.state, "member@example.com", true).await.unwrap());
    assert!(!people::suspend_account(&app.state, "member@example.com", true).await.unwrap(), "once");
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT action, target_id FROM audit_log WHERE tenant_id = $1 AND action = 'user.suspended'")
            .bind(&owner.tenant_id)
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    assert_eq!(rows, vec![("user.suspended".to_string(), Some(member.user_id.clone()))]);
    assert!(people::suspend_account(&app.state, "member@example.com", false).await.unwrap());
    assert!(app.audit_actions(&owner.tenant_id).await.contains(&"user.reactivated".to_string()));
    // The audit page offers every action, the new ones too.
    let session = app.login("owner@example.com").await;
    let (_, html) = app.page(&session, "/settings/audit-log").await;
    for action in ["token.scope_reduced", "user.suspended", "user.reactivated", "tenant.host_added"] {
        assert!(html.contains(&format!("value=\"{action}\"")), "{action} in the filter");
    }
}

/// A small deterministic generator (xorshift64): the same walk on every run and database.
struct Walk(u64);

impl Walk {
    fn pick<'a, T>(&mut self, of: &'a [T]) -> &'a T {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        &of[(self.0 % of.len() as u64) as usize]
    }
}

fn rank(scopes: &Value) -> u8 {
    let s = scopes.as_array().unwrap();
    [("admin", 3), ("write", 2), ("read", 1)]
        .iter()
        .find(|(name, _)| s.iter().any(|x| x == name))
        .map_or(0, |(_, r)| *r)
}

fn net_inside(outer: &str, inner: &str) -> bool {
    let (o, i): (ipnet::IpNet, ipnet::IpNet) = (outer.parse().unwrap(), inner.parse().unwrap());
    o.contains(&i.network()) && o.contains(&i.broadcast()) && o.prefix_len() <= i.prefix_len()
}

/// Written out by hand, field by field, from the rules as README states them — not
/// through `policy`: `t` (a token as the API shows it) is within `mine`'s reach.
fn within(mine: &Value, t: &Value) -> Result<(), String> {
    if rank(&t["scopes"]) > rank(&mine["scopes"]) {
        return Err(format!("scopes {} beyond {}", t["scopes"], mine["scopes"]));
    }
    if let Some(mine_projects) = mine["projects"].as_array() {
        let Some(theirs) = t["projects"].as_array() else { return Err("all projects".into()) };
        if theirs.iter().any(|p| !mine_projects.contains(p)) {
            return Err(format!("projects {} beyond {}", t["projects"], mine["projects"]));
        }
    }
    if let Some(limit) = mine["expires_at"].as_str() {
        let at = |v: &str| time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).unwrap();
        match t["expires_at"].as_str() {
            None => return Err("never expires".into()),
            Some(x) if at(x) > at(limit) => return Err(format!("expires {x} after {limit}")),
            _ => {}
        }
    }
    if t["owner"] == "workspace" && mine["owner"] != "workspace" {
        return Err("a workspace token from a person's".into());
    }
    let mine_nets: Vec<&str> = mine["ip_allowlist"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    let nets: Vec<&str> = t["ip_allowlist"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    if !mine_nets.is_empty() && (nets.is_empty() || !nets.iter().all(|n| mine_nets.iter().any(|m| net_inside(m, n)))) {
        return Err(format!("addresses {nets:?} beyond {mine_nets:?}"));
    }
    Ok(())
}

async fn token_count(app: &TestApp) -> i64 {
    let n: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM api_tokens").fetch_one(&app.state.db).await.unwrap();
    n.0
}

async fn token_projects(app: &TestApp, id: &str) -> Vec<(String,)> {
    sqlx::query_as("SELECT project_id FROM api_token_projects WHERE token_id = $1 ORDER BY project_id")
        .bind(id)
        .fetch_all(&app.state.db)
        .await
        .unwrap()
}

/// A project-restricted, 30-day, address-listed admin token tries a long walk of edits,
/// rotations and disables on tokens inside and outside its reach (itself among them).
/// Every change it was allowed lands within its reach (by the hand-written `within`,
/// against its reach at that moment), and every one it was refused leaves the token,
/// its projects and the workspace's tokens exactly as they were — the database read
/// afterwards, not the model.
async fn refused_changes_leave_the_token_as_it_was(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    projects(&app, &owner, &["P1", "P2", "P3"]).await;
    let nets = json!(["127.0.0.0/8", "10.1.0.0/16"]);
    let me = app
        .token(
            &owner,
            json!({"name": "me", "scopes": ["admin"], "projects": ["P1", "P2"], "expires_in": "30d", "ip_allowlist": nets}),
        )
        .await;
    assert_eq!(app.api("GET", "/me", Some(&me.token), None).await.status, StatusCode::OK);
    let mut ids = vec![me.summary.id.clone()];
    for shape in [
        json!({"name": "inside", "scopes": ["read"], "projects": ["P1"], "expires_in": "30d", "ip_allowlist": ["10.1.2.0/24"]}),
        json!({"name": "inside-wide-list", "scopes": ["write"], "projects": ["P1", "P2"], "expires_in": "30d"}),
        json!({"name": "everywhere", "scopes": ["read"], "expires_in": "30d", "ip_allowlist": ["10.1.0.0/16"]}),
        json!({"name": "other-project", "scopes": ["read"], "projects": ["P3"], "expires_in": "30d"}),
        json!({"name": "forever", "scopes": ["write"], "projects": ["P1"], "expires_in": "never"}),
        json!({"name": "workspace", "scopes": ["read"], "projects": ["P2"], "expires_in": "30d", "owner": "workspace"}),
    ] {
        ids.push(app.token(&owner, shape).await.summary.id);
    }
    let ceiling = app.state.settings.guard.default_rate_limit;
    let days = |d: i64| {
        (time::OffsetDateTime::now_utc() + time::Duration::days(d))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let mut walk = Walk(0x9e37_79b9_7f4a_7c15);
    let (mut allowed, mut refused) = (0, 0);
    for step in 0..60 {
        let id = walk.pick(&ids).clone();
        let mine = app.token_summary(&owner, &me.summary.id).await;
        let before = app.token_summary(&owner, &id).await;
        let (tokens_before, projects_before) = (token_count(&app).await, token_projects(&app, &id).await);
        let (what, res) = match *walk.pick(&["edit", "edit", "edit", "rotate", "disable"]) {
            "edit" => {
                let mut body = serde_json::Map::new();
                for _ in 0..*walk.pick(&[1, 2, 3]) {
                    let (field, value) = walk
                        .pick(&[
                            ("name", json!(format!("renamed {step}"))),
                            ("scopes", json!(["read"])),
                            ("scopes", json!(["read", "write"])),
                            ("scopes", json!(["admin"])),
                            ("projects", json!(null)),
                            ("projects", json!(["P1"])),
                            ("projects", json!(["P2", "P3"])),
                            ("expires_in", json!("never")),
                            ("expires_in", json!("90d")),
                            ("expires_at", json!(days(10))),
                            ("expires_at", json!(days(45))),
                            ("rate_limit_per_minute", json!(100)),
                            ("rate_limit_per_minute", json!(ceiling + 1)),
                            ("rate_limit_per_minute", json!(null)),
                            ("ip_allowlist", json!([])),
                            ("ip_allowlist", json!(["10.1.2.0/24"])),
                            ("ip_allowlist", json!(["10.0.0.0/8"])),
                        ])
                        .clone();
                    // The credential keeps the address it calls from, so the walk goes on.
                    if !(id == me.summary.id && field == "ip_allowlist") {
                        body.insert(field.into(), value);
                    }
                }
                let body = Value::Object(body);
                let res = app.api("PATCH", &format!("/tokens/{id}"), Some(&me.token), Some(body.clone())).await;
                (format!("PATCH {body}"), res)
            }
            "rotate" => {
                ("rotate".into(), app.api("POST", &format!("/tokens/{id}/rotate"), Some(&me.token), None).await)
            }
            // Disabling itself would end the walk (its every later call a 401).
            _ if id == me.summary.id => continue,
            _ => ("disable".into(), app.api("POST", &format!("/tokens/{id}/disable"), Some(&me.token), None).await),
        };
        let after = app.token_summary(&owner, &id).await;
        let context = format!("step {step}: {what} on {}: {} {}", before["name"], res.status, res.body);
        if res.status.is_success() {
            allowed += 1;
            if what.starts_with("PATCH") {
                if let Err(why) = within(&mine, &before) {
                    panic!("{context}: it edited a token that was beyond its reach: {why}");
                }
                if let Err(why) = within(&mine, &after) {
                    panic!("{context}: an allowed edit outgrew the credential: {why}");
                }
                if !mine["ip_allowlist"].as_array().unwrap().is_empty() {
                    let nets: Vec<&str> =
                        before["ip_allowlist"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
                    let after_nets = after["ip_allowlist"].as_array().unwrap();
                    assert!(
                        nets.is_empty()
                            || after_nets.iter().all(|n| nets.iter().any(|b| net_inside(b, n.as_str().unwrap()))),
                        "{context}: a token widened an address list"
                    );
                }
                if after["rate_limit_per_minute"] != before["rate_limit_per_minute"] {
                    assert_ne!(id, me.summary.id, "{context}: the credential changed its own rate limit");
                    assert!(
                        after["rate_limit_per_minute"].as_u64().is_some_and(|n| n <= u64::from(ceiling)),
                        "{context}"
                    );
                }
            } else {
                assert_eq!(within(&mine, &before), Ok(()), "{context}: it changed a token beyond its reach");
            }
            if what == "rotate" {
                let new = &res.body["data"];
                assert_eq!(within(&mine, new), Ok(()), "{context}: the rotation's new token outgrew the credential");
                ids.push(new["id"].as_str().unwrap().to_owned());
            }
        } else {
            refused += 1;
            assert!(
                [StatusCode::FORBIDDEN, StatusCode::NOT_FOUND, StatusCode::CONFLICT, StatusCode::UNPROCESSABLE_ENTITY]
                    .contains(&res.status),
                "{context}: a refusal answers 403, 404, 409 or 422"
            );
            assert_eq!(after, before, "{context}: refused, yet the token changed");
            assert_eq!(
                token_projects(&app, &id).await,
                projects_before,
                "{context}: refused, yet its projects changed"
            );
            assert_eq!(token_count(&app).await, tokens_before, "{context}: refused, yet a token was made");
        }
    }
    // The walk is worth something only if it went both ways, often.
    assert!(allowed >= 8 && refused >= 8, "{allowed} allowed and {refused} refused of 60");
}

on_both_databases!(
    tenant_settings_need_tenant_wide_reach,
    edits_never_outgrow_the_editor,
    project_tokens_read_only_their_projects_audit,
    hosts_are_granted_by_the_operator_only,
    rotation_chains_end,
    leak_reports_are_budgeted_and_revoke_in_the_background,
    a_changed_row_is_verified_again,
    token_list_filters_before_the_limit,
    run_durations_never_overflow,
    the_operator_suspends_by_the_rules_and_audits,
    refused_changes_leave_the_token_as_it_was,
);
