//! Tables that grow with traffic are swept by their retention (`app/src/housekeeping.rs`):
//! the audit log after `QAHUB_AUDIT_RETENTION_DAYS` (kept for ever when unset), import
//! keys after 24 hours, replayed-ID-token records once the token expired, sessions once
//! they expired.

use app::{housekeeping, state::AppState};
use serde_json::json;
use sqlx::Row;

use crate::helpers::{spawn_app_with, test_settings, Kind, TestApp};

const DAY: i64 = 86_400;

async fn count(state: &AppState, sql: &str) -> i64 {
    sqlx::query(sql).fetch_one(&state.db).await.unwrap().try_get::<i64, _>(0).unwrap()
}

/// A workspace with one project, audit entries from creating tokens (one project-scoped),
/// `old` more entries aged `age` days, and an import key and an ID-token record each,
/// one aged and one fresh.
async fn seed(app: &TestApp, old: i64, age: i64) -> String {
    let owner = app.bootstrap("Keep Co", "keep-owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    let res = app.api("POST", "/projects", Some(&admin), Some(json!({"key": "WEB", "name": "Web"}))).await;
    assert_eq!(res.status, reqwest::StatusCode::CREATED);
    app.token(&owner, json!({"name": "web ci", "scopes": ["write"], "projects": ["WEB"]})).await;
    // A token's first use from an address is audited off the request's path: wait for
    // it, or it lands between a count and the next.
    app.state.writers.until_none(std::time::Duration::from_secs(10)).await;
    let now = app::db::now();
    let tenant = owner.tenant_id.clone();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $3) \
         INSERT INTO audit_log (tenant_id, created_at, action, actor_type) SELECT $1, $2, 'test.old', 'server' FROM n",
    )
    .bind(&tenant)
    .bind(now - age * DAY)
    .bind(old)
    .execute(&app.state.db)
    .await
    .unwrap();
    let project: String = sqlx::query("SELECT id FROM projects WHERE tenant_id = $1")
        .bind(&tenant)
        .fetch_one(&app.state.db)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    for (key, created) in [("old-key", now - 2 * DAY), ("fresh-key", now - 60)] {
        sqlx::query(
            "INSERT INTO import_keys (tenant_id, project_id, key, fingerprint, created_at) VALUES ($1, $2, $3, 'f', $4)",
        )
        .bind(&tenant)
        .bind(&project)
        .bind(key)
        .bind(created)
        .execute(&app.state.db)
        .await
        .unwrap();
    }
    for (jti, expires) in [("old-jti", now - 3600), ("fresh-jti", now + 600)] {
        sqlx::query("INSERT INTO oidc_jtis (jti_hash, expires_at) VALUES ($1, $2)")
            .bind(jti)
            .bind(expires)
            .execute(&app.state.db)
            .await
            .unwrap();
    }
    tenant
}

async fn the_audit_log_is_kept_as_long_as_the_operator_says(kind: Kind) {
    // 30 days: 12 000 entries of 31 days ago go (more than one statement's chunk), the
    // entries of today stay, with their project rows.
    let settings = app::state::Settings { audit_retention_days: Some(30), ..test_settings() };
    let Some(app) = spawn_app_with(kind, settings).await else { return };
    seed(&app, 12_000, 31).await;
    let recent = count(&app.state, "SELECT COUNT(*) FROM audit_log WHERE action <> 'test.old'").await;
    let scoped = count(&app.state, "SELECT COUNT(*) FROM audit_log_projects").await;
    assert!(recent >= 3, "creating tokens and a project is audited ({recent} entries)");
    assert!(scoped >= 1, "the project token's entry names its project");
    const { assert!(12_000 > housekeeping::CHUNK, "the aged entries take more than one statement") };
    let swept = housekeeping::sweep(&app.state, app::db::now()).await.unwrap();
    assert_eq!(swept, housekeeping::Swept { audit_log: 12_000, import_keys: 1, oidc_jtis: 1 });
    assert_eq!(count(&app.state, "SELECT COUNT(*) FROM audit_log WHERE action = 'test.old'").await, 0);
    assert_eq!(count(&app.state, "SELECT COUNT(*) FROM audit_log").await, recent, "today's entries stay");
    assert_eq!(count(&app.state, "SELECT COUNT(*) FROM audit_log_projects").await, scoped);
    let keys: Vec<String> = sqlx::query("SELECT key FROM import_keys")
        .fetch_all(&app.state.db)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get(0).unwrap())
        .collect();
    assert_eq!(keys, ["fresh-key"]);
    let jtis = count(&app.state, "SELECT COUNT(*) FROM oidc_jtis WHERE jti_hash = 'fresh-jti'").await;
    assert_eq!((jtis, count(&app.state, "SELECT COUNT(*) FROM oidc_jtis").await), (1, 1));
    // Entries 29 days old are within the 30.
    seed_more(&app, 29).await;
    assert_eq!(housekeeping::sweep(&app.state, app::db::now()).await.unwrap().audit_log, 0);

    // Unset: nothing leaves the audit log, however old.
    let Some(app) = spawn_app_with(kind, test_settings()).await else { return };
    seed(&app, 10, 3650).await;
    let before = count(&app.state, "SELECT COUNT(*) FROM audit_log").await;
    let swept = housekeeping::sweep(&app.state, app::db::now()).await.unwrap();
    assert_eq!(swept.audit_log, 0);
    assert_eq!(count(&app.state, "SELECT COUNT(*) FROM audit_log").await, before);
}

/// Ten entries `age` days old in the first workspace.
async fn seed_more(app: &TestApp, age: i64) {
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, created_at, action, actor_type) \
         SELECT id, $1, 'test.recent', 'server' FROM tenants",
    )
    .bind(app::db::now() - age * DAY)
    .execute(&app.state.db)
    .await
    .unwrap();
}

#[tokio::test]
async fn the_audit_log_is_kept_as_long_as_the_operator_says_sqlite() {
    the_audit_log_is_kept_as_long_as_the_operator_says(Kind::Sqlite).await;
}

#[tokio::test]
async fn the_audit_log_is_kept_as_long_as_the_operator_says_postgres() {
    the_audit_log_is_kept_as_long_as_the_operator_says(Kind::Postgres).await;
}

/// People's sessions are deleted once expired, by the store's cleanup, which the server
/// starts with itself (and runs hourly). A session expired a day ago and a live one, as an
/// earlier run of the server left them: the next start deletes the first, keeps the second.
async fn expired_sessions_are_deleted_by_a_running_server(kind: Kind) {
    let Some((db, _guard)) = crate::helpers::create_database(kind).await else { return };
    crate::process::Server::start(&db).await.stop(); // makes the session table
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db).await.unwrap();
    let (table, insert) = match kind {
        Kind::Sqlite => (
            "tower_sessions",
            "INSERT INTO tower_sessions (id, data, expiry_date) VALUES \
             ('expired', x'', datetime('now', '-1 day')), ('live', x'', datetime('now', '+1 day'))",
        ),
        Kind::Postgres => (
            "tower_sessions.session",
            "INSERT INTO tower_sessions.session (id, data, expiry_date) VALUES \
             ('expired', '', now() - interval '1 day'), ('live', '', now() + interval '1 day')",
        ),
    };
    sqlx::query(insert).execute(&pool).await.unwrap();
    let ids = || {
        let (pool, sql) = (pool.clone(), format!("SELECT id FROM {table} ORDER BY id"));
        async move { sqlx::query_scalar::<_, String>(&sql).fetch_all(&pool).await.unwrap() }
    };
    assert_eq!(ids().await, ["expired", "live"]);
    let _server = crate::process::Server::start(&db).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ids().await.len() > 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ids().await, ["live"], "the expired session is deleted, the live one kept");
    pool.close().await;
}

#[tokio::test]
async fn expired_sessions_are_deleted_by_a_running_server_sqlite() {
    expired_sessions_are_deleted_by_a_running_server(Kind::Sqlite).await;
}

#[tokio::test]
async fn expired_sessions_are_deleted_by_a_running_server_postgres() {
    expired_sessions_are_deleted_by_a_running_server(Kind::Postgres).await;
}
