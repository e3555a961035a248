//! SQLite answers a warm token from an in-memory copy of its row. The copy must never
//! outlive a change: a revoke this process acknowledged, or a change another process
//! (the operator's CLI) committed, is seen by the very next request.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, Kind, PASSWORD};

fn cli(db: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_qahub"))
        .args(args)
        .env("QAHUB_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("QAHUB_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(out.status.success(), "qahub {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn warm_copies_see_every_write() {
    let app = spawn_app(Kind::Sqlite).await.unwrap();
    let db = app.sqlite_path().unwrap().to_path_buf();
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"], "owner": "workspace"})).await.token;
    let mine = app.token(&owner, json!({"name": "mine", "scopes": ["read"]})).await;
    let service = app.token(&owner, json!({"name": "service", "scopes": ["read"], "owner": "workspace"})).await;

    let me = |token: String| {
        let app = &app;
        async move { app.api("GET", "/me", Some(&token), None).await }
    };
    // A first use writes (last use, the workspace's activity) after answering; once
    // those have landed, repeated requests are answered from the copy.
    let mut rounds = 0;
    while app.state.lookups.copies_served() < 4 && rounds < 100 {
        assert_eq!(me(mine.token.clone()).await.status, StatusCode::OK);
        assert_eq!(me(service.token.clone()).await.status, StatusCode::OK);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        rounds += 1;
    }
    assert!(app.state.lookups.copies_served() >= 4, "warm requests are answered from the copy");

    // This process: the revoke is acknowledged, and the next request is refused.
    let res = app.api("POST", &format!("/tokens/{}/revoke", service.summary.id), Some(&admin), None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let res = me(service.token.clone()).await;
    assert_eq!((res.status, res.error_code()), (StatusCode::UNAUTHORIZED, "revoked_token"));

    // Another process: the operator suspends the owner with the CLI while the copy is warm.
    assert_eq!(me(mine.token.clone()).await.status, StatusCode::OK);
    assert_eq!(me(mine.token.clone()).await.status, StatusCode::OK);
    cli(&db, &["user", "suspend", "owner@example.com"]);
    let res = me(mine.token.clone()).await;
    assert_eq!((res.status, res.error_code()), (StatusCode::FORBIDDEN, "user_suspended"), "{}", res.body);
    cli(&db, &["user", "activate", "owner@example.com"]);
    assert_eq!(me(mine.token.clone()).await.status, StatusCode::OK, "and back, just as exactly");
    cli(&db, &["tenant", "suspend", "Acme"]);
    let res = me(mine.token.clone()).await;
    assert_eq!((res.status, res.error_code()), (StatusCode::FORBIDDEN, "tenant_suspended"), "{}", res.body);
}
