//! Limits and HTTPS: oversized headers, slow bodies and slow headers each get a clear
//! answer; `--tls-cert/--tls-key` serve HTTPS with Secure cookies.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{spawn_app_configured, test_settings, tls_fixture, Kind, TestApp, PASSWORD};

async fn with_limits(kind: Kind, request_timeout: u64, header_read_timeout: u64) -> Option<TestApp> {
    spawn_app_configured(kind, test_settings(), |config| {
        config.limits.request_timeout = Duration::from_secs(request_timeout);
        config.limits.header_read_timeout = Duration::from_secs(header_read_timeout);
    })
    .await
}

/// Sends raw bytes, then reads whatever comes back until the server closes or `wait`.
async fn raw(app: &TestApp, first: &[u8], wait: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(first).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut answer)).await;
    (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
}

#[tokio::test]
async fn oversized_headers_get_431_in_the_contract_body() {
    let app = with_limits(Kind::Sqlite, 60, 10).await.unwrap();
    let big = "x".repeat(20 * 1024);
    for path in ["/api/v1/me", "/login"] {
        let res = app.client().get(app.url(path)).header("x-padding", &big).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "headers_too_large", "{path}");
    }
    // Just under the limit is fine.
    let fine = "x".repeat(8 * 1024);
    let res = app.client().get(app.url("/healthz")).header("x-padding", &fine).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_that_never_finishes_gets_408_in_the_contract_body() {
    let app = with_limits(Kind::Sqlite, 1, 10).await.unwrap();
    // Promises 100 bytes, sends 10, then waits.
    let head = format!(
        "POST /api/v1/leaked-tokens HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"tokens\":",
        app.addr
    );
    let (answer, took) = raw(&app, head.as_bytes(), Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
}

#[tokio::test]
async fn headers_that_never_finish_close_the_connection() {
    let app = with_limits(Kind::Sqlite, 60, 1).await.unwrap();
    let (answer, took) = raw(&app, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", Duration::from_secs(10)).await;
    assert!(took < Duration::from_secs(5), "still open after {took:?}: {answer}");
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[tokio::test]
async fn https_serves_with_secure_cookies() {
    let (cert, key) = tls_fixture();
    // Config::new turns Secure cookies on for --tls-cert (the next test checks that).
    let app = spawn_app_configured(Kind::Sqlite, test_settings(), |config| {
        config.tls = Some((cert.clone(), key.clone()));
        config.settings.secure_cookies = true;
    })
    .await
    .unwrap();
    assert_eq!(app.scheme, "https");
    let client = app.client();
    let res = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    app.bootstrap("Tls Co", "tls@example.com").await;
    let res = client
        .post(app.url("/_qh/login"))
        .form(&[("email", "tls@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let body = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let cookie = headers.get("set-cookie").map(|v| v.to_str().unwrap().to_string());
    let cookie = cookie.unwrap_or_else(|| panic!("no session cookie: {headers:?} {body}"));
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");

    // Plain HTTP to the HTTPS port gets no answer a browser would take.
    let plain = reqwest::Client::new().get(format!("http://{}/healthz", app.addr)).send().await;
    assert!(plain.is_err() || plain.unwrap().status() != StatusCode::OK);
}

#[test]
fn tls_cert_turns_on_secure_cookies_and_needs_its_key() {
    use clap::Parser;
    let (cert, key) = tls_fixture();
    let cli = server::cli::Cli::try_parse_from([
        "qahub",
        "serve",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ])
    .unwrap();
    let server::cli::Command::Serve(args) = cli.command else { panic!("serve") };
    let config = server::Config::new(cli.db, args);
    assert!(config.settings.secure_cookies);
    assert!(config.tls.is_some());
    let err = server::cli::Cli::try_parse_from(["qahub", "serve", "--tls-cert", "x.pem"]).unwrap_err();
    assert!(err.to_string().contains("--tls-key"), "{err}");
}

#[tokio::test]
async fn an_unreadable_certificate_is_a_one_line_start_up_error() {
    let (cert, _) = tls_fixture();
    let result = crate::helpers::try_build_configured(Kind::Sqlite, |config| {
        config.tls = Some((cert.clone(), "/nonexistent/key.pem".into()));
    })
    .await;
    let err = format!("{:#}", result.err().expect("refused"));
    assert!(err.contains("cannot use TLS certificate") && err.contains("/nonexistent/key.pem"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[tokio::test]
async fn body_page_and_batch_limits_answer_the_contract() {
    let app = with_limits(Kind::Sqlite, 60, 10).await.unwrap();
    let owner = app.bootstrap("Limits Co", "limits@example.com").await;
    let token = app.token(&owner, serde_json::json!({"name": "ci", "scopes": ["admin"]})).await.token;
    // A JSON body past 2 MiB.
    let big = serde_json::json!({"name": "x".repeat(3 * 1024 * 1024), "scopes": ["read"]});
    let res = app.api("POST", "/tokens", Some(&token), Some(big)).await;
    assert_eq!((res.status, res.error_code()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    // Page sizes outside 1..=200.
    for path in ["/tokens?limit=0", "/tokens?limit=201", "/audit-logs?limit=1000"] {
        let res = app.api("GET", path, Some(&token), None).await;
        assert_eq!((res.status, res.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), "{path}");
    }
    // A results batch past 1 000.
    let project =
        app.api("POST", "/projects", Some(&token), Some(serde_json::json!({"key": "LM", "name": "Limits"}))).await;
    assert!(project.status.is_success(), "{:?}", project.body);
    let run = app.api("POST", "/projects/LM/runs", Some(&token), Some(serde_json::json!({"name": "r"}))).await;
    assert!(run.status.is_success(), "{:?}", run.body);
    let run_id = run.body["data"]["id"].as_str().unwrap().to_string();
    let results: Vec<Value> =
        (0..1001).map(|i| serde_json::json!({"title": format!("t{i}"), "status": "passed"})).collect();
    let res = app
        .api(
            "POST",
            &format!("/projects/LM/runs/{run_id}/results"),
            Some(&token),
            Some(serde_json::json!({"results": results})),
        )
        .await;
    assert_eq!((res.status, res.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), "{:?}", res.body);
}
