//! Several `qahub serve` instances on one PostgreSQL database, clients spread across them:
//! a session works on any instance; disable, enable and revoke take effect on the very
//! next request everywhere; a rotation's automatic revoke of the old token happens
//! exactly once, however many instances see the new token's first use at once.

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::{
    helpers::{create_database, Kind},
    process::{admin_token, Server},
};

async fn status_on(client: &Client, server: &Server, token: &str) -> (StatusCode, String) {
    let res = client.get(server.url("/api/v1/me")).bearer_auth(token).send().await.unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, body["error"]["code"].as_str().unwrap_or_default().to_string())
}

async fn post(client: &Client, server: &Server, path: &str, admin: &str, body: Option<Value>) -> Value {
    let mut req = client.post(server.url(&format!("/api/v1{path}"))).bearer_auth(admin);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap()
}

#[tokio::test]
async fn three_instances_share_sessions_statuses_and_rotations() {
    let Some((db, _guard)) = create_database(Kind::Postgres).await else { return };
    let admin = admin_token(&db);
    let servers = [Server::start(&db).await, Server::start(&db).await, Server::start(&db).await];
    let api = Client::new();

    // A session made on one instance is good on the others (sessions live in the database).
    let browser = Client::builder().cookie_store(true).build().unwrap();
    let login = browser
        .post(servers[0].url("/_qh/login"))
        .form(&[("email", "proc@example.com"), ("password", "proc password 1")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    for server in &servers {
        let me: Value = browser.post(server.url("/_qh/whoami")).send().await.unwrap().json().await.unwrap();
        assert_eq!(me["email"], "proc@example.com", "{}: {me}", server.base);
    }
    // Logging out on one instance ends the session on all of them.
    browser.post(servers[2].url("/_qh/logout")).send().await.unwrap();
    for server in &servers {
        let me: Value = browser.post(server.url("/_qh/whoami")).send().await.unwrap().json().await.unwrap();
        assert!(me.is_null(), "{}: still signed in: {me}", server.base);
    }

    // Disable on A, refused on B and C at once; enable on B, good on C; revoke on C.
    let created = post(&api, &servers[0], "/tokens", &admin, Some(json!({"name": "spread", "scopes": ["read"]}))).await;
    let (id, token) = (created["data"]["id"].as_str().unwrap(), created["data"]["token"].as_str().unwrap());
    for server in &servers {
        assert_eq!(status_on(&api, server, token).await.0, StatusCode::OK, "warm on {}", server.base);
    }
    post(&api, &servers[0], &format!("/tokens/{id}/disable"), &admin, None).await;
    for server in &servers {
        assert_eq!(status_on(&api, server, token).await.1, "disabled_token", "{}", server.base);
    }
    post(&api, &servers[1], &format!("/tokens/{id}/enable"), &admin, None).await;
    for server in &servers {
        assert_eq!(status_on(&api, server, token).await.0, StatusCode::OK, "{}", server.base);
    }
    post(&api, &servers[2], &format!("/tokens/{id}/revoke"), &admin, None).await;
    for server in &servers {
        assert_eq!(status_on(&api, server, token).await.1, "revoked_token", "{}", server.base);
    }

    // Rotation: the old token retires on the new one's first use, exactly once, even when
    // that first use reaches every instance at the same moment.
    for round in 0..5 {
        let old = post(
            &api,
            &servers[0],
            "/tokens",
            &admin,
            Some(json!({"name": format!("rot {round}"), "scopes": ["read"]})),
        )
        .await;
        let (old_id, old_token) = (old["data"]["id"].as_str().unwrap(), old["data"]["token"].as_str().unwrap());
        let new = post(&api, &servers[1], &format!("/tokens/{old_id}/rotate"), &admin, None).await;
        let new_token = new["data"]["token"].as_str().unwrap().to_string();
        assert_eq!(status_on(&api, &servers[2], old_token).await.0, StatusCode::OK, "old works until first use");
        let firsts: Vec<_> = (0..12)
            .map(|i| {
                let (api, url, token) = (api.clone(), servers[i % 3].url("/api/v1/me"), new_token.clone());
                tokio::spawn(async move { api.get(url).bearer_auth(token).send().await.unwrap().status() })
            })
            .collect();
        for first in firsts {
            assert_eq!(first.await.unwrap(), StatusCode::OK);
        }
        for server in &servers {
            assert_eq!(status_on(&api, server, old_token).await.1, "revoked_token", "{}", server.base);
        }
        let log = servers[2].get_json(&api, "/audit-logs?action=token.revoked&limit=200", &admin).await;
        let retirements = log["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["target"]["id"] == old_id || e["target_id"] == old_id)
            .count();
        assert_eq!(retirements, 1, "round {round}: the old token was revoked {retirements} times: {log}");
    }
}
