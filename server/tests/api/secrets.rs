//! After a scripted session against the real binary (debug logging on), no secret it
//! created appears in any log line, in any answer but the one that revealed it, or
//! anywhere in the SQLite files.

use serde_json::{json, Value};

use crate::process::{cli_logged, Server};

#[tokio::test]
async fn no_secret_in_logs_answers_or_the_database() {
    let dir = std::env::temp_dir().join(format!("qahub-secrets-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("qahub.db").display());
    let mut cli_logs = Vec::new();
    let mut run = |args: &[&str]| {
        let (printed, logged) = cli_logged(&db, args, Some("debug"));
        cli_logs.push((format!("what qahub {} logged", args[..2].join(" ")), logged));
        printed
    };
    let bootstrapped = run(&[
        "admin",
        "bootstrap",
        "--tenant",
        "Acme",
        "--email",
        "o@example.com",
        "--password",
        "the owner password",
    ]);
    let first =
        run(&["token", "create", "--tenant", "Acme", "--email", "o@example.com", "--name", "ci", "--scopes", "admin"]);

    let mut server = Server::start_logging(&db, &dir).await;
    let base = server.base.clone();
    let client = reqwest::Client::new();

    let mut secrets = vec![first.clone()];
    let mut answers = Vec::new();
    let call = |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
        let mut req = client.request(method, format!("{base}/api/v1{path}")).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send()
    };
    answers.push(call(reqwest::Method::GET, "/me", &first, None).await.unwrap().text().await.unwrap());
    let forged = app::tokens::server::format::generate(&first[3..11]).expose();
    answers.push(call(reqwest::Method::GET, "/me", &forged, None).await.unwrap().text().await.unwrap());
    let created: Value =
        call(reqwest::Method::POST, "/tokens", &first, Some(json!({"name": "second", "scopes": ["read"]})))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let second = created["data"]["token"].as_str().unwrap().to_string();
    secrets.push(second.clone());
    let id = created["data"]["id"].as_str().unwrap().to_string();
    let rotated: Value =
        call(reqwest::Method::POST, &format!("/tokens/{id}/rotate"), &first, None).await.unwrap().json().await.unwrap();
    let third = rotated["data"]["token"].as_str().unwrap().to_string();
    secrets.push(third.clone());
    answers.push(call(reqwest::Method::GET, "/me", &third, None).await.unwrap().text().await.unwrap());
    answers.push(call(reqwest::Method::GET, "/me", &second, None).await.unwrap().text().await.unwrap());
    answers.push(call(reqwest::Method::GET, "/tokens", &first, None).await.unwrap().text().await.unwrap());
    answers
        .push(call(reqwest::Method::GET, "/audit-logs?limit=200", &first, None).await.unwrap().text().await.unwrap());
    let leak = json!({"tokens": [third.clone()], "source": "test", "url": "https://example.com"});
    answers.push(
        client.post(format!("{base}/api/v1/leaked-tokens")).json(&leak).send().await.unwrap().text().await.unwrap(),
    );
    answers.push(call(reqwest::Method::GET, "/me", &third, None).await.unwrap().text().await.unwrap());
    // People sign in with the right password and a wrong one: neither is ever written.
    let mut statuses = Vec::new();
    let mut cookies = Vec::new();
    for password in ["the owner password", "a wrong password 77"] {
        let res = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{base}/_qh/login"))
            .form(&[("email", "o@example.com"), ("password", password)])
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        cookies.push(res.headers().get_all(reqwest::header::SET_COOKIE).iter().count());
        answers.push(res.text().await.unwrap());
    }

    server.stop();

    // The sign-ins reached the server, one let in and one refused: the search below looks
    // where a password would have been written.
    assert_eq!(statuses, [200, 401], "the right password signs in, the wrong one is refused");
    assert!(cookies[0] > 0 && cookies[1] == 0, "only the right password gets a session cookie: {cookies:?}");
    assert!(answers.last().unwrap().contains("invalid_credentials"), "{}", answers.last().unwrap());

    let mut haystacks: Vec<(String, Vec<u8>)> =
        answers.into_iter().enumerate().map(|(i, a)| (format!("answer {i}"), a.into_bytes())).collect();
    haystacks.push(("the bootstrap's output".into(), bootstrapped.into_bytes()));
    assert!(
        cli_logs.iter().any(|(_, logged)| !logged.is_empty()),
        "the commands logged something (debug logging was on)"
    );
    haystacks.extend(cli_logs);
    for name in ["server.log", "stdout.log", "qahub.db"] {
        let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name} was written: {e}"));
        haystacks.push((name.to_string(), bytes));
    }
    // The write-ahead log is folded into the database at a graceful stop; if it is left,
    // it is searched too.
    if let Ok(bytes) = std::fs::read(dir.join("qahub.db-wal")) {
        haystacks.push(("qahub.db-wal".into(), bytes));
    }
    let log = String::from_utf8_lossy(&haystacks.iter().find(|(n, _)| n == "server.log").unwrap().1).into_owned();
    assert!(log.lines().count() > 10, "debug logging was on: {log}");
    for secret in &secrets {
        let needle = &secret.as_bytes()[12..];
        for (name, bytes) in &haystacks {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle), "a secret appears in {name}");
        }
    }
    for password in ["the owner password", "a wrong password 77"] {
        for (name, bytes) in &haystacks {
            assert!(!bytes.windows(password.len()).any(|w| w == password.as_bytes()), "a password appears in {name}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
