//! `qahub backup` and `qahub restore` (`server/src/backup.rs`) with the real binary: a
//! backup taken while a server writes is whole and restores into a new database where
//! the tokens and runs are as they were; what must be refused is refused.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    helpers::{create_database, Kind},
    process::{admin_token, cli_output, Server},
};

fn junit(n: usize) -> String {
    let mut xml = String::from("<testsuite name=\"backups\">");
    for i in 0..n {
        let failure = if i % 10 == 0 { "<failure message=\"boom\"/>" } else { "" };
        xml.push_str(&format!("<testcase classname=\"bk.suite\" name=\"test {i}\">{failure}</testcase>"));
    }
    xml + "</testsuite>"
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn create_token(client: &reqwest::Client, server: &Server, admin: &str, name: &str) -> (String, String) {
    let res = client
        .post(server.url("/api/v1/tokens"))
        .bearer_auth(admin)
        .json(&json!({"name": name, "scopes": ["read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    (body["data"]["id"].as_str().unwrap().to_string(), body["data"]["token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_backup_taken_under_writes_restores_with_its_tokens_and_runs() {
    let Some((db, _guard)) = create_database(Kind::Sqlite).await else { return };
    let admin = admin_token(&db);
    let server = Server::start(&db).await;
    let client = reqwest::Client::new();
    let project = json!({"key": "BK", "name": "Backups"});
    let res = client.post(server.url("/api/v1/projects")).bearer_auth(&admin).json(&project).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = client
        .post(server.url("/api/v1/projects/BK/runs/import?format=junit"))
        .bearer_auth(&admin)
        .body(junit(3_000))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let run: Value = res.json().await.unwrap();
    let run_id = run["data"]["id"].as_str().unwrap().to_string();
    let (_, live) = create_token(&client, &server, &admin, "live").await;
    let (revoked_id, revoked) = create_token(&client, &server, &admin, "revoked").await;
    let res = client.post(server.url(&format!("/api/v1/tokens/{revoked_id}/revoke"))).bearer_auth(&admin).send();
    assert_eq!(res.await.unwrap().status(), StatusCode::OK);

    // Writes go on beside the backup: token creations, bounded in count.
    let (stop, written, failed) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let writer = {
        let (stop, written, failed, client, url, admin) = (
            stop.clone(),
            written.clone(),
            failed.clone(),
            client.clone(),
            server.url("/api/v1/tokens"),
            admin.clone(),
        );
        tokio::spawn(async move {
            for n in 0..5_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let res = client
                    .post(&url)
                    .bearer_auth(&admin)
                    .json(&json!({"name": format!("load {n}"), "scopes": ["read"]}));
                match res.timeout(Duration::from_secs(5)).send().await {
                    Ok(r) if r.status() == StatusCode::CREATED => written.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while written.load(Ordering::Relaxed) < 20 {
        assert!(std::time::Instant::now() < deadline, "the write load did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dir = std::env::temp_dir().join(format!("qahub-backup-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("qahub-backup.db");
    let file_arg = file.to_str().unwrap();
    let before = written.load(Ordering::Relaxed);
    let db2 = db.clone();
    let file2 = file_arg.to_string();
    let out = tokio::task::spawn_blocking(move || cli_output(&db2, &["backup", file2.as_str()])).await.unwrap();
    assert!(out.status.success(), "backup: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("integrity ok"), "{}", text(&out.stdout));
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(written.load(Ordering::Relaxed) > before, "writes went on while the backup ran");
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no write failed or waited 5 s beside the backup");

    // Never overwrites, and leaves no partial copy behind.
    let size = std::fs::metadata(&file).unwrap().len();
    let again = cli_output(&db, &["backup", file_arg]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains("already exists"), "{}", text(&again.stderr));
    assert_eq!(std::fs::metadata(&file).unwrap().len(), size, "the backup is untouched");
    let names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["qahub-backup.db"], "nothing else left in the folder");

    // Not over a database a server is using.
    let busy = cli_output(&db, &["restore", file_arg]);
    assert_eq!(busy.status.code(), Some(1));
    assert!(text(&busy.stderr).contains("a server is using this database"), "{}", text(&busy.stderr));
    drop(server);

    // Into a new database: what was there is there.
    let Some((restored, _restored_guard)) = create_database(Kind::Sqlite).await else { return };
    let out = cli_output(&restored, &["restore", file_arg]);
    assert!(out.status.success(), "restore: {}", text(&out.stderr));
    let server = Server::start(&restored).await;
    let me = |token: String| {
        let (client, url) = (client.clone(), server.url("/api/v1/me"));
        async move { client.get(url).bearer_auth(token).send().await.unwrap().status() }
    };
    assert_eq!(me(live.clone()).await, StatusCode::OK, "the live token works after the restore");
    assert_eq!(me(revoked.clone()).await, StatusCode::UNAUTHORIZED, "the revoked token stays refused");
    let run = server.get_json(&client, &format!("/projects/BK/runs/{run_id}"), &admin).await;
    assert_eq!(run["data"]["counts"]["total"], 3_000, "{run}");
    assert_eq!(run["data"]["counts"]["failed"], 300, "{run}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn restore_refuses_what_is_not_a_whole_qa_hub_database() {
    let Some((db, _guard)) = create_database(Kind::Sqlite).await else { return };
    admin_token(&db);
    let dir = std::env::temp_dir().join(format!("qahub-restore-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let refused = |file: &std::path::Path, says: &str| {
        let out = cli_output(&db, &["restore", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(says), "{says:?} in {}", text(&out.stderr));
    };
    refused(&dir.join("missing.db"), "no such file");
    let junk = dir.join("junk.db");
    std::fs::write(&junk, vec![b'x'; 8192]).unwrap();
    refused(&junk, "not a SQLite database");

    // A backup made by a newer version (one more migration than this one knows).
    let newer = dir.join("newer.db");
    let out = cli_output(&db, &["backup", newer.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}", newer.display());
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
         VALUES (99999, 'from the future', '2030-01-01', 1, x'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    refused(&newer, "made by a newer QA Hub");
    // Refusals changed nothing: the database still works.
    let tokens = crate::process::cli(&db, &["tenant", "activate", "Proc"]);
    assert!(tokens.contains("Proc"), "{tokens}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn on_postgres_backup_and_restore_name_its_own_tools() {
    let Some((db, _guard)) = create_database(Kind::Postgres).await else { return };
    let never = std::env::temp_dir().join(format!("qahub-never-{}.db", uuid::Uuid::new_v4().simple()));
    for command in ["backup", "restore"] {
        let out = cli_output(&db, &[command, never.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{command}: {}", text(&out.stderr));
        let says = text(&out.stderr);
        assert!(says.contains("pg_dump") && says.contains("pg_restore"), "{command}: {says}");
    }
    assert!(!never.exists());
}

/// The README's PostgreSQL commands, run as written: `pg_dump` while a server runs, then
/// `pg_restore` into a new database, where the live token works and the revoked one stays
/// refused.
#[tokio::test]
async fn on_postgres_the_readme_commands_back_up_and_restore() {
    let Some((db, _guard)) = create_database(Kind::Postgres).await else { return };
    let admin = admin_token(&db);
    let server = Server::start(&db).await;
    let client = reqwest::Client::new();
    let (_, live) = create_token(&client, &server, &admin, "live").await;
    let (revoked_id, revoked) = create_token(&client, &server, &admin, "revoked").await;
    let res = client.post(server.url(&format!("/api/v1/tokens/{revoked_id}/revoke"))).bearer_auth(&admin).send();
    assert_eq!(res.await.unwrap().status(), StatusCode::OK);
    let dump = std::env::temp_dir().join(format!("qahub-{}.dump", uuid::Uuid::new_v4().simple()));
    let run = |program: &str, args: &[&str], url: &str| {
        let out = std::process::Command::new(program)
            .args(args)
            .env("QAHUB_DATABASE_URL", url)
            .output()
            .unwrap_or_else(|e| panic!("{program} is needed for this test (postgresql-client): {e}"));
        assert!(out.status.success(), "{program}: {}", text(&out.stderr));
    };
    let dump_arg = format!("--file={}", dump.display());
    run("pg_dump", &["--format=custom", &dump_arg, &db], &db);
    drop(server);
    let Some((restored, _restored_guard)) = create_database(Kind::Postgres).await else { return };
    let dbname = format!("--dbname={restored}");
    run("pg_restore", &["--clean", "--if-exists", "--no-owner", &dbname, dump.to_str().unwrap()], &restored);
    let server = Server::start(&restored).await;
    let me = |token: String| {
        let (client, url) = (client.clone(), server.url("/api/v1/me"));
        async move { client.get(url).bearer_auth(token).send().await.unwrap().status() }
    };
    assert_eq!(me(live).await, StatusCode::OK, "the live token works after pg_restore");
    assert_eq!(me(revoked).await, StatusCode::UNAUTHORIZED, "the revoked token stays refused");
    let _ = std::fs::remove_file(&dump);
}
