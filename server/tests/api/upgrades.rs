//! Upgrades: a database made by an older version opens with today's binary. The test
//! builds it as that version would have: only the migrations up to `OLD` applied (copied
//! byte for byte, so their checksums are the ones an old install recorded), then rows
//! written in that version's schema. Today's `qahub serve` migrates it, and every token
//! that worked still works, with its scope and its projects, while the revoked, disabled
//! and expired ones stay refused; people still sign in.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{create_database, Kind},
    process::Server,
};

/// The version the database comes from: tokens and the audit log (0002) exist, nothing
/// after them (rate limits, runs, owners, Trusted CI, imports…) does yet.
const OLD: i64 = 2;
const PASSWORD: &str = "old version password 1";

async fn an_old_database_upgrades_with_its_tokens_working(kind: Kind) {
    let Some((db, _guard)) = create_database(kind).await else { return };
    let folder = match kind {
        Kind::Sqlite => "sqlite",
        Kind::Postgres => "postgres",
    };
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations").join(folder);
    let old = std::env::temp_dir().join(format!("qahub-old-migrations-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&old).unwrap();
    let mut copied = 0;
    for entry in std::fs::read_dir(&all).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let version: i64 = name.split('_').next().unwrap().parse().unwrap();
        if version <= OLD {
            std::fs::copy(&path, old.join(&name)).unwrap();
            copied += 1;
        }
    }
    assert_eq!(copied, OLD);
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db).await.unwrap();
    sqlx::migrate::Migrator::new(old.as_path()).await.unwrap().run(&pool).await.unwrap();
    let _ = std::fs::remove_dir_all(&old);

    // What that version wrote: a workspace, its owner, two projects and five tokens.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let exec = |sql: &'static str, binds: Vec<String>| {
        let pool = pool.clone();
        async move {
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(b);
            }
            q.execute(&pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    };
    sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ('t-old', 'Old', $1)")
        .bind(now)
        .execute(&pool)
        .await
        .unwrap();
    let password_hash = bcrypt::non_truncating_hash(PASSWORD, 4).unwrap();
    sqlx::query("INSERT INTO users (id, email, password_hash, created_at) VALUES ('u-old', 'old@example.com', $1, $2)")
        .bind(&password_hash)
        .bind(now)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ('t-old', 'u-old', 'owner', $1)",
    )
    .bind(now)
    .execute(&pool)
    .await
    .unwrap();
    for (id, key) in [("p-web", "WEB"), ("p-api", "API")] {
        exec(
            "INSERT INTO projects (id, tenant_id, key, name, created_at) VALUES ($1, 't-old', $2, $2, 0)",
            vec![id.into(), key.into()],
        )
        .await;
    }
    struct Old {
        id: &'static str,
        scopes: &'static str,
        all_projects: bool,
        expires_at: Option<i64>,
        status: &'static str,
    }
    let tokens = [
        Old { id: "admin", scopes: "read,write,admin", all_projects: true, expires_at: None, status: "active" },
        Old { id: "web-reader", scopes: "read", all_projects: false, expires_at: Some(now + 86_400), status: "active" },
        Old { id: "revoked", scopes: "read", all_projects: true, expires_at: None, status: "revoked" },
        Old { id: "disabled", scopes: "read", all_projects: true, expires_at: None, status: "disabled" },
        Old { id: "expired", scopes: "read", all_projects: true, expires_at: Some(now - 60), status: "active" },
    ];
    let mut presented = std::collections::HashMap::new();
    for (n, t) in tokens.iter().enumerate() {
        let token = app::tokens::server::format::generate(&format!("old{n:05}"));
        let hash = bcrypt::non_truncating_hash(token.secret(), 4).unwrap();
        sqlx::query(
            "INSERT INTO api_tokens (id, tenant_id, prefix, secret_hash, name, scopes, all_projects, created_by, \
             created_at, expires_at, expiry_policy, status, revoked_at) \
             VALUES ($1, 't-old', $2, $3, $1, $4, $5, 'u-old', $6, $7, 'custom', $8, $9)",
        )
        .bind(t.id)
        .bind(token.prefix())
        .bind(&hash)
        .bind(t.scopes)
        .bind(i64::from(t.all_projects))
        .bind(now - 3_600)
        .bind(t.expires_at)
        .bind(t.status)
        .bind((t.status == "revoked").then_some(now - 60))
        .execute(&pool)
        .await
        .unwrap();
        presented.insert(t.id, token.expose());
    }
    exec("INSERT INTO api_token_projects (token_id, project_id) VALUES ('web-reader', 'p-web')", vec![]).await;
    pool.close().await;

    // Today's binary on it.
    let server = Server::start(&db).await;
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, token: &str| {
        client.request(method, server.url(&format!("/api/v1{path}"))).bearer_auth(token.to_string()).send()
    };
    let code = |res: reqwest::Response| async move {
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        (status, body["error"]["code"].as_str().unwrap_or_default().to_string())
    };
    let admin = &presented["admin"];
    let me = call(reqwest::Method::GET, "/me", admin).await.unwrap();
    assert_eq!(me.status(), StatusCode::OK, "the old admin token works");
    let made = client
        .post(server.url("/api/v1/tokens"))
        .bearer_auth(admin)
        .json(&json!({"name": "after the upgrade", "scopes": ["read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED, "and still administers the workspace");
    let reader = &presented["web-reader"];
    assert_eq!(call(reqwest::Method::GET, "/projects/WEB/runs", reader).await.unwrap().status(), StatusCode::OK);
    let other = code(call(reqwest::Method::GET, "/projects/API/runs", reader).await.unwrap()).await;
    // A project outside a token's restriction looks missing, as for a token made today.
    assert_eq!(other, (StatusCode::NOT_FOUND, "not_found".into()), "the old project restriction holds");
    let project = json!({"key": "NEW", "name": "New"});
    let write = client.post(server.url("/api/v1/projects")).bearer_auth(reader).json(&project).send().await.unwrap();
    let write = code(write).await;
    assert_eq!(write, (StatusCode::FORBIDDEN, "insufficient_scope".into()), "the old read scope holds");
    for (id, expected) in [("revoked", "revoked_token"), ("disabled", "disabled_token"), ("expired", "expired_token")] {
        let refused = code(call(reqwest::Method::GET, "/me", &presented[id]).await.unwrap()).await;
        assert_eq!(refused, (StatusCode::UNAUTHORIZED, expected.to_string()), "the old {id} token");
    }
    let person =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = person
        .post(server.url("/_qh/login"))
        .form(&[("email", "old@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK, "the old owner signs in");
    let page = person.get(server.url("/settings/developer/api-tokens")).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("web-reader") && html.contains("after the upgrade"), "the token list shows old and new");
}

#[tokio::test]
async fn an_old_database_upgrades_with_its_tokens_working_sqlite() {
    an_old_database_upgrades_with_its_tokens_working(Kind::Sqlite).await;
}

#[tokio::test]
async fn an_old_database_upgrades_with_its_tokens_working_postgres() {
    an_old_database_upgrades_with_its_tokens_working(Kind::Postgres).await;
}
