//! Crash safety: SIGKILL the server during a burst of token creations and revocations,
//! restart it on the same database, and check that every token a client saw created
//! exists and works, every acknowledged revoke holds, and nothing is half-written (each
//! token has its creation in the audit log, each revoked one its revocation).

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    helpers::{create_database, Kind},
    process::{admin_token, Server},
};

#[derive(Default)]
struct Seen {
    /// (id, token) of every creation answered 201.
    created: Vec<(String, String)>,
    /// ids of every revoke answered 200.
    revoked: Vec<String>,
    /// ids of every revoke sent (an unanswered one may or may not have happened).
    attempted: Vec<String>,
}

async fn crash_during_a_burst(kind: Kind) {
    let Some((db, _guard)) = create_database(kind).await else { return };
    let admin = admin_token(&db);
    let mut server = Server::start(&db).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (seen, stop, admin, base) = (seen.clone(), stop.clone(), admin.clone(), server.base.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
                for n in 0..10_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let revoke = n % 3 == 2;
                    let victim = if revoke {
                        let s = seen.lock().unwrap();
                        s.created.iter().rev().find(|(id, _)| !s.attempted.contains(id)).map(|(id, _)| id.clone())
                    } else {
                        None
                    };
                    if let Some(id) = victim {
                        seen.lock().unwrap().attempted.push(id.clone());
                        let res =
                            client.post(format!("{base}/api/v1/tokens/{id}/revoke")).bearer_auth(&admin).send().await;
                        if res.is_ok_and(|r| r.status() == StatusCode::OK) {
                            seen.lock().unwrap().revoked.push(id);
                        }
                        continue;
                    }
                    let res = client
                        .post(format!("{base}/api/v1/tokens"))
                        .bearer_auth(&admin)
                        .json(&json!({"name": format!("burst {w}-{n}"), "scopes": ["read"]}))
                        .send()
                        .await;
                    let Ok(res) = res else { continue };
                    if res.status() != StatusCode::CREATED {
                        continue;
                    }
                    let Ok(body) = res.json::<Value>().await else { continue }; // cut mid-answer: not seen
                    let (id, token) = (body["data"]["id"].as_str(), body["data"]["token"].as_str());
                    seen.lock().unwrap().created.push((id.unwrap().to_string(), token.unwrap().to_string()));
                }
            })
        })
        .collect();

    // Let the burst run, then kill the server mid-flight.
    let started = Instant::now();
    while seen.lock().unwrap().created.len() < 60 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        tokio::time::timeout(Duration::from_secs(30), w).await.expect("workers stop").unwrap();
    }
    let (created, revoked, attempted) = {
        let s = seen.lock().unwrap();
        (s.created.clone(), s.revoked.clone(), s.attempted.clone())
    };
    assert!(created.len() >= 60 && !revoked.is_empty(), "burst too small: {} / {}", created.len(), revoked.len());

    let server = Server::start(&db).await;
    let client = reqwest::Client::new();
    for (id, token) in &created {
        let row = server.get_json(&client, &format!("/tokens/{id}"), &admin).await;
        let status = row["data"]["status"].as_str().unwrap_or_default().to_string();
        if revoked.contains(id) {
            assert_eq!(status, "revoked", "acknowledged revoke of {id} lost: {row}");
        } else if !attempted.contains(id) {
            assert_eq!(status, "active", "token {id} after restart: {row}");
        } else {
            // A revoke cut off before its answer: either outcome, but a whole one.
            assert!(status == "revoked" || status == "active", "token {id}: {row}");
        }
        let me = client.get(server.url("/api/v1/me")).bearer_auth(token).send().await.unwrap();
        let expected = if status == "revoked" { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
        assert_eq!(me.status(), expected, "token {id} ({status}) used after restart");
    }

    // Nothing half-written: the audit entry commits with the change, or neither does.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db).await.unwrap();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };
    let orphans = count(
        "SELECT COUNT(*) FROM api_tokens t WHERE NOT EXISTS \
         (SELECT 1 FROM audit_log a WHERE a.action = 'token.created' AND a.target_id = t.id)",
    )
    .await;
    assert_eq!(orphans, 0, "tokens without their creation in the audit log");
    let unlogged = count(
        "SELECT COUNT(*) FROM api_tokens t WHERE t.status = 'revoked' AND NOT EXISTS \
         (SELECT 1 FROM audit_log a WHERE a.action = 'token.revoked' AND a.target_id = t.id)",
    )
    .await;
    assert_eq!(unlogged, 0, "revoked tokens without their revocation in the audit log");
    let ghosts = count(
        "SELECT COUNT(*) FROM audit_log a WHERE a.action = 'token.created' AND NOT EXISTS \
         (SELECT 1 FROM api_tokens t WHERE t.id = a.target_id)",
    )
    .await;
    assert_eq!(ghosts, 0, "creations logged for tokens that do not exist");
    if matches!(kind, Kind::Sqlite) {
        let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&pool).await.unwrap();
        assert_eq!(check, "ok");
    }
    pool.close().await;
}

#[tokio::test]
async fn sigkill_during_a_burst_loses_nothing_acknowledged_sqlite() {
    crash_during_a_burst(Kind::Sqlite).await;
}

#[tokio::test]
async fn sigkill_during_a_burst_loses_nothing_acknowledged_postgres() {
    crash_during_a_burst(Kind::Postgres).await;
}

/// A leak report is a promise from its 202 on: a server that dies after answering still
/// revokes what the report found at its next start. The first report goes through the
/// door and the server is killed as soon as it answers (its revocation may or may not
/// have run by then); the second is left as a server killed between its 202 and its
/// revocations leaves it, a `leak_reports` row naming the token, which a kill cannot be
/// timed to hit every run.
async fn leak_reports_answered_before_a_crash_are_done_after_it(kind: Kind) {
    let Some((db, _guard)) = create_database(kind).await else { return };
    let admin = admin_token(&db);
    let mut server = Server::start(&db).await;
    let client = reqwest::Client::new();
    let mut tokens = Vec::new();
    for name in ["reported, then killed", "left waiting", "not reported"] {
        let res = client
            .post(server.url("/api/v1/tokens"))
            .bearer_auth(&admin)
            .json(&json!({"name": name, "scopes": ["read"]}))
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        tokens.push((
            body["data"]["id"].as_str().unwrap().to_string(),
            body["data"]["token"].as_str().unwrap().to_string(),
        ));
    }
    let report = json!({"tokens": [tokens[0].1], "source": "github", "url": "https://example.com/leak"});
    let res = client.post(server.url("/api/v1/leaked-tokens")).json(&report).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    server.kill();

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db).await.unwrap();
    let received_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    sqlx::query(
        "INSERT INTO leak_reports (id, token_ids, source, url, ip, user_agent, received_at) \
         VALUES ('left by the dead server', $1, 'github', 'https://example.com/other', '192.0.2.7', 'scanner', $2)",
    )
    .bind(&tokens[1].0)
    .bind(received_at)
    .execute(&pool)
    .await
    .unwrap();

    let server = Server::start(&db).await;
    let me = |token: String| {
        let (client, url) = (client.clone(), server.url("/api/v1/me"));
        async move { client.get(url).bearer_auth(token).send().await.unwrap().status() }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while (me(tokens[0].1.clone()).await == StatusCode::OK || me(tokens[1].1.clone()).await == StatusCode::OK)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(me(tokens[0].1.clone()).await, StatusCode::UNAUTHORIZED, "the token reported through the door");
    assert_eq!(me(tokens[1].1.clone()).await, StatusCode::UNAUTHORIZED, "the token of the report left waiting");
    assert_eq!(me(tokens[2].1.clone()).await, StatusCode::OK, "a token nobody reported");
    for (id, _) in &tokens[..2] {
        let leaked: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'token.leaked' AND target_id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(leaked, 1, "token {id} is logged as leaked once");
    }
    let ip: Option<String> =
        sqlx::query_scalar("SELECT ip FROM audit_log WHERE action = 'token.leaked' AND target_id = $1")
            .bind(&tokens[1].0)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(ip.as_deref(), Some("192.0.2.7"), "the reporter's address is kept across the restart");
    // Deleted just after the revocations, in a statement of its own.
    let waiting = || async { sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM leak_reports").fetch_one(&pool).await };
    let deadline = Instant::now() + Duration::from_secs(10);
    while waiting().await.unwrap() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(waiting().await.unwrap(), 0, "done reports are deleted");
    pool.close().await;
}

#[tokio::test]
async fn leak_reports_answered_before_a_crash_are_done_after_it_sqlite() {
    leak_reports_answered_before_a_crash_are_done_after_it(Kind::Sqlite).await;
}

#[tokio::test]
async fn leak_reports_answered_before_a_crash_are_done_after_it_postgres() {
    leak_reports_answered_before_a_crash_are_done_after_it(Kind::Postgres).await;
}
