//! Beyond the peers: per-token usage by kind, the least-privilege hint and its one-click
//! reduction, recent addresses, workspace (service) tokens and what a suspension stops,
//! and rotations shown as retiring — on both databases.

use std::time::{Duration, Instant};

use app::{people::Role, state::Settings};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app_with, test_settings, Kind, TestApp},
    on_both_databases,
    process::cli,
};

async fn usage(app: &TestApp, admin: &str, id: &str) -> Value {
    let res = app.api("GET", &format!("/tokens/{id}/usage"), Some(admin), None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    res.body["data"].clone()
}

async fn summary(app: &TestApp, admin: &str, id: &str) -> Value {
    let res = app.api("GET", &format!("/tokens/{id}"), Some(admin), None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    res.body["data"].clone()
}

async fn usage_is_counted_by_kind_in_daily_rows(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let ci = app.token(&owner, json!({"name": "CI", "scopes": ["admin"]})).await;
    let viewer = app.token(&owner, json!({"name": "viewer", "scopes": ["admin"]})).await.token;
    let reader = app.token(&owner, json!({"name": "reader", "scopes": ["read"]})).await.token;
    let t = ci.token.as_str();

    for _ in 0..3 {
        assert_eq!(app.api("GET", "/projects", Some(t), None).await.status, StatusCode::OK);
    }
    assert_eq!(app.api("GET", "/me", Some(t), None).await.status, StatusCode::OK);
    let res = app.api("POST", "/projects", Some(t), Some(json!({"key": "BD", "name": "Backend"}))).await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(app.api("GET", "/tokens", Some(t), None).await.status, StatusCode::OK);
    // A refused request (no such project) still counts as what its route needed.
    assert_eq!(app.api("DELETE", "/projects/NOPE", Some(t), None).await.status, StatusCode::NOT_FOUND);

    let u = usage(&app, &viewer, &ci.summary.id).await;
    let days = u["days"].as_array().unwrap();
    assert_eq!(days.len(), 30, "every day of the window: {u}");
    let today = time::OffsetDateTime::now_utc().date().to_string();
    assert_eq!(days[29]["date"], today.as_str());
    assert_eq!(
        (days[29]["read"].as_u64(), days[29]["write"].as_u64(), days[29]["admin"].as_u64()),
        (Some(4), Some(2), Some(1))
    );
    assert!(days[..29].iter().all(|d| d["read"] == 0 && d["write"] == 0 && d["admin"] == 0));
    assert_eq!(u["total"], json!({"read": 4, "write": 2, "admin": 1}));
    assert_eq!(u["suggested_scope"], Value::Null, "a new token gets no hint");

    // One counter row per token and day, however many requests.
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT token_id, day FROM api_token_usage WHERE token_id = $1")
        .bind(&ci.summary.id)
        .fetch_all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");

    // More requests add to the same row; the usage calls themselves count for `viewer`.
    assert_eq!(app.api("GET", "/me", Some(t), None).await.status, StatusCode::OK);
    let u = usage(&app, &viewer, &ci.summary.id).await;
    assert_eq!(u["total"], json!({"read": 5, "write": 2, "admin": 1}));
    let v = app.api("GET", "/tokens", Some(&viewer), None).await.body["data"].clone();
    let viewer_id =
        v.as_array().unwrap().iter().find(|t| t["name"] == "viewer").unwrap()["id"].as_str().unwrap().to_string();
    let u = usage(&app, &viewer, &viewer_id).await;
    assert_eq!(u["total"]["admin"], 3, "two usage reads and one list before this one: {u}");

    // Admin scope, and the usual 404 and 403.
    let res = app.api("GET", &format!("/tokens/{}/usage", ci.summary.id), Some(&reader), None).await;
    assert_eq!((res.status, res.error_code()), (StatusCode::FORBIDDEN, "insufficient_scope"));
    let res = app.api("GET", "/tokens/nope/usage", Some(&viewer), None).await;
    assert_eq!((res.status, res.error_code()), (StatusCode::NOT_FOUND, "not_found"));
    let other = app.bootstrap("Other", "other@example.com").await;
    let stranger = app.token(&other, json!({"name": "x", "scopes": ["admin"]})).await.token;
    let res = app.api("GET", &format!("/tokens/{}/usage", ci.summary.id), Some(&stranger), None).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "another tenant's token is not there");
}

async fn counts_are_written_in_batches_and_old_days_dropped(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let ci = app.token(&owner, json!({"name": "CI", "scopes": ["read"]})).await;
    let id = ci.summary.id.as_str();
    let now = app::db::now();
    for _ in 0..50 {
        app.state.usage.count(id, now, app::tokens::Scope::Read);
    }
    app.state.usage.count(id, now - 86_400, app::tokens::Scope::Write);
    app.state.usage.count("gone", now, app::tokens::Scope::Read);
    // A row older than the window, as a past flush would have left it.
    sqlx::query("INSERT INTO api_token_usage (token_id, day, reads, writes, admins) VALUES ($1, $2, 9, 0, 0)")
        .bind(id)
        .bind(now / 86_400 - 45)
        .execute(&app.state.db)
        .await
        .unwrap();
    assert_eq!(app.state.usage.flush(&app.state.db, now).await.unwrap(), 3, "one row per token and day");
    assert_eq!(app.state.usage.flush(&app.state.db, now).await.unwrap(), 0, "nothing left to write");
    let rows: Vec<(i64, i64, i64)> =
        sqlx::query_as("SELECT day, reads, writes FROM api_token_usage WHERE token_id = $1 ORDER BY day")
            .bind(id)
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    assert_eq!(rows, vec![(now / 86_400 - 1, 0, 1), (now / 86_400, 50, 0)], "old days dropped, unknown tokens skipped");
}

async fn least_privilege_hint_and_one_click_reduction(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    let writer = app.token(&owner, json!({"name": "dashboard", "scopes": ["write"]})).await;
    let wide = app.token(&owner, json!({"name": "uploader", "scopes": ["admin"]})).await;
    let busy = app.token(&owner, json!({"name": "busy", "scopes": ["write"]})).await;
    let idle = app.token(&owner, json!({"name": "idle", "scopes": ["write"]})).await;
    for t in [&writer.token, &busy.token] {
        assert_eq!(app.api("GET", "/projects", Some(t), None).await.status, StatusCode::OK);
    }
    let res = app.api("POST", "/projects", Some(&wide.token), Some(json!({"key": "UP", "name": "Uploads"}))).await;
    assert_eq!(res.status, StatusCode::CREATED);
    let res = app.api("POST", "/projects", Some(&busy.token), Some(json!({"key": "BZ", "name": "Busy"}))).await;
    assert_eq!(res.status, StatusCode::CREATED);

    // Young tokens get no hint, whatever they did.
    assert_eq!(summary(&app, &admin, &writer.summary.id).await["suggested_scope"], Value::Null);
    let month_ago = app::db::now() - 31 * 86_400;
    for t in [&writer, &wide, &busy, &idle] {
        app.sql("UPDATE api_tokens SET created_at = $1 WHERE id = $2", &t.summary.id, month_ago).await;
    }
    assert_eq!(summary(&app, &admin, &writer.summary.id).await["suggested_scope"], "read");
    assert_eq!(summary(&app, &admin, &wide.summary.id).await["suggested_scope"], "write");
    assert_eq!(summary(&app, &admin, &busy.summary.id).await["suggested_scope"], Value::Null, "it wrote");
    assert_eq!(
        summary(&app, &admin, &idle.summary.id).await["suggested_scope"],
        Value::Null,
        "unused: nothing to judge"
    );
    assert_eq!(usage(&app, &admin, &wide.summary.id).await["suggested_scope"], "write");
    // The token's own answers say so too, for CI logs (qa-hub prints it as a warning).
    let me = app.api("GET", "/me", Some(&writer.token), None).await;
    let hint = me.headers["qahub-token-hint"].to_str().unwrap();
    assert!(hint.contains("used only read") && hint.contains("reduced to read"), "{hint}");
    assert!(!hint.contains(&writer.token[12..]), "never the secret");
    assert!(app.api("GET", "/me", Some(&busy.token), None).await.headers.get("qahub-token-hint").is_none());
    let list = app.api("GET", "/tokens", Some(&admin), None).await.body["data"].clone();
    let mut hinted: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| Some((t["name"].as_str()?, t["suggested_scope"].as_str()?)))
        .collect();
    hinted.sort();
    assert_eq!(hinted, vec![("dashboard", "read"), ("uploader", "write")], "the list says so too");

    // The hint's one click: a member may not, an owner may, and only downwards.
    app.add_user("Acme", "member@example.com", Role::Member).await;
    let member = app.login("member@example.com").await;
    let (status, _) = app.call(&member, "tokens/reduce", &[("id", &writer.summary.id), ("scope", "read")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let session = app.login("owner@example.com").await;
    let (status, body) = app.call(&session, "tokens/reduce", &[("id", &writer.summary.id), ("scope", "read")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scopes"], json!(["read"]));
    assert_eq!(body["suggested_scope"], Value::Null, "nothing left to reduce");
    let (status, body) = app.call(&session, "tokens/reduce", &[("id", &writer.summary.id), ("scope", "write")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "never raises: {body}");
    let res = app.api("POST", "/projects", Some(&writer.token), Some(json!({"key": "NO", "name": "No"}))).await;
    assert_eq!((res.status, res.error_code()), (StatusCode::FORBIDDEN, "insufficient_scope"));
    assert_eq!(app.api("GET", "/projects", Some(&writer.token), None).await.status, StatusCode::OK);

    let res = app.api("GET", "/audit-logs", Some(&admin), None).await;
    let entry = res.body["data"].as_array().unwrap().iter().find(|e| e["action"] == "token.scope_reduced").cloned();
    let entry = entry.expect("the reduction is audit-logged");
    assert_eq!(entry["details"]["before"]["scopes"], json!(["read", "write"]));
    assert_eq!(entry["details"]["after"]["scopes"], json!(["read"]));
    assert_eq!(entry["details"]["reason"], "least_privilege");
    assert_eq!(entry["actor"]["label"], "owner@example.com");
}

async fn recent_addresses_are_listed_newest_first() {
    let settings = Settings { trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()], ..test_settings() };
    let app = spawn_app_with(Kind::Sqlite, settings).await.unwrap();
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    let ci = app.token(&owner, json!({"name": "CI", "scopes": ["read"]})).await;
    let ips = ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4", "203.0.113.5", "203.0.113.6"];
    for ip in ips {
        let res =
            app.api_with("GET", "/me", Some(&format!("Bearer {}", ci.token)), None, &[("x-forwarded-for", ip)]).await;
        assert_eq!(res.status, StatusCode::OK);
        // The use is recorded off the request's path: wait for it (bounded).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = app.api("GET", &format!("/tokens/{}/addresses", ci.summary.id), Some(&admin), None).await;
            if seen.body["data"][0]["ip"] == ip {
                break;
            }
            assert!(Instant::now() < deadline, "{ip} never recorded: {}", seen.body);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Distinct seconds, so "most recent" is well defined.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let res = app.api("GET", &format!("/tokens/{}/addresses", ci.summary.id), Some(&admin), None).await;
    let listed: Vec<&str> = res.body["data"].as_array().unwrap().iter().map(|a| a["ip"].as_str().unwrap()).collect();
    assert_eq!(listed, vec!["203.0.113.6", "203.0.113.5", "203.0.113.4", "203.0.113.3", "203.0.113.2"]);
    let newest = &res.body["data"][0];
    assert!(newest["last_seen_at"].as_str().unwrap() >= newest["first_seen_at"].as_str().unwrap());
    let (events,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE action = 'token.new_ip' AND target_id = $1")
            .bind(&ci.summary.id)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(events, 6, "one event per new address");

    // The detail view shows the same five, with times; its server function answers too.
    let session = app.login("owner@example.com").await;
    let (status, detail) = app.call(&session, "tokens/detail", &[("id", &ci.summary.id)]).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["addresses"].as_array().unwrap().len(), 5);
    assert_eq!(detail["usage"]["total"]["read"], 6);
    let (status, html) = app.page(&session, &format!("/settings/developer/api-tokens/{}", ci.summary.id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Recent addresses") && html.contains("203.0.113.6"), "{html}");
    assert!(!html.contains("203.0.113.1<"), "only the last five");
    assert!(
        html.contains("<svg") && html.contains("Requests per day over the last 30 days: 6 read"),
        "the chart: {html}"
    );
}

async fn workspace_tokens_survive_their_creator(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.add_user("Acme", "admin@example.com", Role::Admin).await;
    let own = app.token(&admin, json!({"name": "mine", "scopes": ["admin"]})).await;
    let service = app.token(&admin, json!({"name": "nightly", "scopes": ["admin"], "owner": "workspace"})).await;
    assert_eq!(service.summary.owner, app::tokens::TokenOwner::Workspace);
    assert_eq!(service.summary.created_by.as_deref(), Some("admin@example.com"));

    // A person's token may not mint a workspace token; a workspace admin token may.
    let res = app
        .api("POST", "/tokens", Some(&own.token), Some(json!({"name": "x", "scopes": ["read"], "owner": "workspace"})))
        .await;
    assert_eq!((res.status, res.error_code()), (StatusCode::FORBIDDEN, "insufficient_scope"), "{}", res.body);
    let res = app
        .api(
            "POST",
            "/tokens",
            Some(&service.token),
            Some(json!({"name": "child", "scopes": ["read"], "owner": "workspace", "expires_in": "30d"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["data"]["owner"], "workspace");

    // What a suspension would stop: the person's own token, not the workspace's.
    let session = app.login("owner@example.com").await;
    let (status, preview) = app.call(&session, "members/suspension", &[("user_id", &admin.user_id)]).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    let stopping: Vec<&str> =
        preview["stopping"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(stopping, vec!["mine"]);
    assert_eq!(preview["surviving"], 2);
    assert_eq!(preview["refusal"], Value::Null);
    assert_eq!(app.api("GET", "/me", Some(&own.token), None).await.status, StatusCode::OK, "a preview changes nothing");

    let (status, body) =
        app.call(&session, "members/status", &[("user_id", &admin.user_id), ("action", "suspend")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["suspended"], true);
    let res = app.api("GET", "/me", Some(&own.token), None).await;
    assert_eq!((res.status, res.error_code()), (StatusCode::FORBIDDEN, "user_suspended"));
    assert_eq!(app.api("GET", "/me", Some(&service.token), None).await.status, StatusCode::OK);
    let res = app.api("GET", "/tokens", Some(&service.token), None).await;
    assert_eq!(res.status, StatusCode::OK, "a workspace admin token still manages tokens");
    let owners: Vec<(&str, &str)> = res.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["owner"].as_str().unwrap()))
        .collect();
    assert!(owners.contains(&("nightly", "workspace")) && owners.contains(&("mine", "user")), "{owners:?}");
    let actions = app.audit_actions(&owner.tenant_id).await;
    assert!(actions.contains(&"user.suspended".to_string()), "{actions:?}");

    // Reactivated, the person's token works again; removed from the workspace, it stops
    // and the workspace's keeps working.
    let (status, _) =
        app.call(&session, "members/status", &[("user_id", &admin.user_id), ("action", "reactivate")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.api("GET", "/me", Some(&own.token), None).await.status, StatusCode::OK);
    sqlx::query("DELETE FROM memberships WHERE user_id = $1")
        .bind(&admin.user_id)
        .execute(&app.state.db)
        .await
        .unwrap();
    assert_eq!(app.api("GET", "/me", Some(&own.token), None).await.error_code(), "user_suspended");
    assert_eq!(app.api("GET", "/me", Some(&service.token), None).await.status, StatusCode::OK);

    // Rotating a workspace token keeps it the workspace's.
    let res = app.api("POST", &format!("/tokens/{}/rotate", service.summary.id), Some(&service.token), None).await;
    assert_eq!((res.status, res.body["data"]["owner"].as_str()), (StatusCode::CREATED, Some("workspace")));
}

async fn who_may_suspend_whom(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.add_user("Acme", "admin@example.com", Role::Admin).await;
    let member = app.add_user("Acme", "member@example.com", Role::Member).await;
    let as_admin = app.login("admin@example.com").await;
    let as_member = app.login("member@example.com").await;
    let call = |client: &reqwest::Client, id: &str| {
        let (app, client, id) = (&app, client.clone(), id.to_string());
        async move { app.call(&client, "members/status", &[("user_id", id.as_str()), ("action", "suspend")]).await }
    };
    assert_eq!(call(&as_member, &admin.user_id).await.0, StatusCode::FORBIDDEN, "members may not");
    assert_eq!(call(&as_admin, &owner.user_id).await.0, StatusCode::CONFLICT, "an admin may not suspend an owner");
    assert_eq!(call(&as_admin, &admin.user_id).await.0, StatusCode::CONFLICT, "nor themselves");
    assert_eq!(call(&as_admin, "nobody").await.0, StatusCode::NOT_FOUND);
    // Someone in another workspace too is left to the operator.
    app.bootstrap("Elsewhere", "else@example.com").await;
    sqlx::query("INSERT INTO memberships (tenant_id, user_id, role, created_at) SELECT id, $1, 'member', 0 FROM tenants WHERE name = 'Elsewhere'")
        .bind(&member.user_id)
        .execute(&app.state.db)
        .await
        .unwrap();
    let (status, body) = call(&as_admin, &member.user_id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().unwrap().contains("qahub user suspend"), "{body}");
    sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND role = 'member' AND tenant_id <> $2")
        .bind(&member.user_id)
        .bind(&owner.tenant_id)
        .execute(&app.state.db)
        .await
        .unwrap();
    assert_eq!(call(&as_admin, &member.user_id).await.0, StatusCode::OK);
    // A suspended person's session ends too.
    let (status, _) = app.call(&as_member, "members/list", &[]).await;
    assert_ne!(status, StatusCode::OK);
}

async fn a_rotation_shows_the_old_token_retiring(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    let ci = app.token(&owner, json!({"name": "CI", "scopes": ["read"]})).await;
    assert_eq!(app.api("GET", "/me", Some(&ci.token), None).await.status, StatusCode::OK);
    let res = app.api("POST", &format!("/tokens/{}/rotate", ci.summary.id), Some(&admin), None).await;
    assert_eq!(res.status, StatusCode::CREATED);
    let new = res.body["data"].clone();
    let old = summary(&app, &admin, &ci.summary.id).await;
    assert_eq!((old["status"].as_str(), old["replaced_by"].as_str()), (Some("active"), new["id"].as_str()));
    assert!(old["retire_at"].is_string(), "until first use, within a 7-day ceiling");
    assert!(old["last_used_at"].is_string());

    let session = app.login("owner@example.com").await;
    let (_, html) = app.page(&session, "/settings/developer/api-tokens").await;
    assert!(html.contains("Retiring — last used from 127.0.0.1 at "), "the old row says so");
    let (_, html) = app.page(&session, &format!("/settings/developer/api-tokens/{}", ci.summary.id)).await;
    let takes_over = format!("qh_{}_… takes over at its first use.", new["prefix"].as_str().unwrap());
    assert!(html.contains(&takes_over), "the detail view names the new token");

    // The new token's first use takes over: the old one is revoked and no longer retiring.
    assert_eq!(app.api("GET", "/me", Some(new["token"].as_str().unwrap()), None).await.status, StatusCode::OK);
    let old = summary(&app, &admin, &ci.summary.id).await;
    assert_eq!((old["status"].as_str(), old["replaced_by"].as_str()), (Some("revoked"), None));

    // A windowed rotation says when the old one stops.
    let res = app
        .api(
            "POST",
            &format!("/tokens/{}/rotate", new["id"].as_str().unwrap()),
            Some(&admin),
            Some(json!({"old_token": "1h"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let old = summary(&app, &admin, new["id"].as_str().unwrap()).await;
    assert!(old["replaced_by"].is_string() && old["retire_at"].is_string(), "{old}");
    let (_, html) =
        app.page(&session, &format!("/settings/developer/api-tokens/{}", new["id"].as_str().unwrap())).await;
    let banner = html.find("retiring").map(|at| &html[at.saturating_sub(200)..(at + 400).min(html.len())]);
    assert!(html.contains("It stops working at "), "the window's end is shown; near the banner: {banner:?}");
}

on_both_databases!(
    usage_is_counted_by_kind_in_daily_rows,
    counts_are_written_in_batches_and_old_days_dropped,
    least_privilege_hint_and_one_click_reduction,
    workspace_tokens_survive_their_creator,
    who_may_suspend_whom,
    a_rotation_shows_the_old_token_retiring,
);

#[tokio::test]
async fn recent_addresses() {
    recent_addresses_are_listed_newest_first().await;
}

#[test]
fn suspend_dry_run_lists_what_stops_and_changes_nothing() {
    let path = std::env::temp_dir().join(format!("qahub-dry-{}.db", uuid::Uuid::new_v4().simple()));
    let db = format!("sqlite://{}?mode=rwc", path.display());
    cli(
        &db,
        &["admin", "bootstrap", "--tenant", "Acme", "--email", "owner@example.com", "--password", "owner password"],
    );
    cli(
        &db,
        &[
            "admin",
            "add-user",
            "--tenant",
            "Acme",
            "--email",
            "ada@example.com",
            "--password",
            "ada password 1",
            "--role",
            "admin",
        ],
    );
    let create = |name: &str, owner: &str| {
        cli(
            &db,
            &[
                "token",
                "create",
                "--tenant",
                "Acme",
                "--email",
                "ada@example.com",
                "--name",
                name,
                "--scopes",
                "write",
                "--owner",
                owner,
            ],
        )
    };
    let own = create("laptop script", "user");
    let service = create("nightly import", "workspace");
    let prefix = |t: &str| t[3..11].to_string();

    let dry = cli(&db, &["user", "suspend", "ada@example.com", "--dry-run"]);
    assert!(dry.starts_with("user ada@example.com would stop 1 API token(s):"), "{dry}");
    assert!(dry.contains(&format!("qh_{}_…", prefix(&own))) && dry.contains("laptop script"), "{dry}");
    assert!(!dry.contains(&prefix(&service)), "workspace tokens keep working: {dry}");
    assert_eq!(cli(&db, &["user", "suspend", "ada@example.com", "--dry-run"]), dry, "nothing changed");

    let done = cli(&db, &["user", "suspend", "ada@example.com"]);
    assert!(done.starts_with("user ada@example.com suspended; 1 API token(s) stopped:"), "{done}");
    let none = cli(&db, &["user", "suspend", "owner@example.com", "--dry-run"]);
    assert_eq!(none, "user owner@example.com would stop no API tokens");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
