//! `qa-hub` end to end against a real server on port 0 (SQLite).

use std::process::{Command, Output};

use app::{
    actor::{Actor, RequestMeta},
    people::server::service as people,
    state::Settings,
    tokens::{server::lifecycle as tokens, CreateToken},
};
use serde_json::json;
use server::{Application, Config};

const JUNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/tests/fixtures/pytest-junit.xml");
const PLAYWRIGHT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/tests/fixtures/playwright-report.json");

struct Hub {
    url: String,
    write: String,
    read: String,
    expiring: String,
    _db: std::path::PathBuf,
}

async fn hub() -> Hub {
    hub_on(None).await
}

/// The test CA and certificate of the server's tests.
fn tls_fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/tests/fixtures/tls").join(name)
}

async fn hub_on(tls: Option<(std::path::PathBuf, std::path::PathBuf)>) -> Hub {
    let db = std::env::temp_dir().join(format!("qa-hub-client-{}.db", uuid::Uuid::new_v4().simple()));
    let settings = Settings { bcrypt_cost: 4, ..Settings::default() };
    let mut config =
        Config::plain(format!("sqlite://{}?mode=rwc", db.display()), "127.0.0.1:0".parse().unwrap(), settings);
    config.tls = tls;
    let app = Application::build(config).await.unwrap();
    let url = format!("{}://localhost:{}", app.scheme(), app.local_addr().port());
    let state = app.state().clone();
    tokio::spawn(app.run_until(std::future::pending()));

    let owner = people::bootstrap(
        &state,
        people::NewOwner { tenant: "Acme", email: "o@example.com", password: "a long password" },
    )
    .await
    .unwrap();
    let actor = Actor::User(owner);
    let make = |req: serde_json::Value| {
        let (state, actor) = (state.clone(), actor.clone());
        async move {
            let req: CreateToken = serde_json::from_value(req).unwrap();
            tokens::create(&state, &actor, &RequestMeta::default(), req).await.unwrap().token
        }
    };
    let admin = make(json!({"name": "admin", "scopes": ["admin"]})).await;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(tls_fixture("ca.pem")).unwrap()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap()
        .post(format!("{url}/api/v1/projects"))
        .bearer_auth(&admin)
        .json(&json!({"key": "WEB", "name": "Website"}))
        .send()
        .await
        .unwrap();
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(3))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    Hub {
        url,
        write: make(json!({"name": "ci", "scopes": ["write"], "projects": ["WEB"]})).await,
        read: make(json!({"name": "dash", "scopes": ["read"]})).await,
        expiring: make(json!({"name": "old", "scopes": ["write"], "expires_at": soon})).await,
        _db: db,
    }
}

/// Runs the binary off the async runtime (the server lives on it).
async fn qa_hub(url: &str, token: &str, args: &[&str]) -> Output {
    let (url, token) = (url.to_string(), token.to_string());
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_qa-hub"))
            .args(&args)
            .env("QA_HUB_URL", url)
            .env("QA_HUB_TOKEN", token)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_reports_and_fails_clearly() {
    let hub = hub().await;
    let secret = |t: &str| t[12..].to_string();

    let out = qa_hub(
        &hub.url,
        &hub.write,
        &["upload", "--format", "junit", "--project", "WEB", "--run-name", "nightly", JUNIT],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("FAILED — 2 passed, 1 failed, 1 skipped, 1 errors (5 total) in 0.0 s"), "{stdout}");
    assert!(stdout.contains(&format!("{}/api/v1/projects/WEB/runs/", hub.url)), "{stdout}");
    assert!(!stdout.contains(&secret(&hub.write)) && !stderr.contains(&secret(&hub.write)), "never prints the token");

    let out = qa_hub(&hub.url, &hub.write, &["upload", "--format", "playwright", "--project", "web", PLAYWRIGHT]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("PASSED — 28 passed, 0 failed"), "{stdout}");

    let cases = [
        (&hub.write[..], vec!["upload", "--format", "junit", "--project", "NOPE", JUNIT], 5, "404 not_found"),
        (&hub.read[..], vec!["upload", "--format", "junit", "--project", "WEB", JUNIT], 4, "403 insufficient_scope"),
        ("qh_aaaaaaaa_notarealtokenatall", vec!["whoami"], 3, "401 malformed_token"),
        (&hub.write[..], vec!["upload", "--format", "playwright", "--project", "WEB", JUNIT], 6, "422 invalid_request"),
        (
            &hub.write[..],
            vec!["upload", "--format", "junit", "--project", "WEB", "/no/such/file.xml"],
            9,
            "cannot read /no/such/file.xml",
        ),
        ("", vec!["whoami"], 2, "no token"),
    ];
    for (token, args, code, needle) in cases {
        let out = qa_hub(&hub.url, token, &args).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let forged = format!("{}{}", &hub.write[..12], "A".repeat(40));
    let out = qa_hub(&hub.url, &forged, &["whoami"]).await;
    assert_eq!(out.status.code(), Some(3));

    let out = qa_hub("http://127.0.0.1:9", &hub.write, &["whoami"]).await;
    assert_eq!(out.status.code(), Some(10), "{}", text(&out).1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_and_the_expiry_warning() {
    let hub = hub().await;
    let out = qa_hub(&hub.url, &hub.write, &["whoami"]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("workspace: Acme (ACTIVE)"), "{stdout}");
    assert!(stdout.contains("scopes:    read, write"), "{stdout}");
    assert!(stdout.contains("projects:  WEB"), "{stdout}");
    assert!(stderr.is_empty(), "no warning for a token without expiry: {stderr}");

    let out = qa_hub(&hub.url, &hub.expiring, &["whoami"]).await;
    let (_, stderr) = text(&out);
    assert!(out.status.success());
    assert!(
        stderr.contains("warning: the token expires in 2 day(s)")
            || stderr.contains("warning: the token expires in 3 day(s)"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talks_https_trusting_a_private_ca() {
    let hub = hub_on(Some((tls_fixture("cert.pem"), tls_fixture("key.pem")))).await;
    assert!(hub.url.starts_with("https://"));
    // Without the CA the certificate is refused: a network failure, said clearly.
    let out = qa_hub(&hub.url, &hub.read, &["whoami"]).await;
    assert_eq!(out.status.code(), Some(10), "{:?}", text(&out));
    let ca = tls_fixture("ca.pem");
    let out = qa_hub(&hub.url, &hub.read, &["--ca-cert", ca.to_str().unwrap(), "whoami"]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("dash"), "{stdout}");
    let out = qa_hub(
        &hub.url,
        &hub.write,
        &["--ca-cert", ca.to_str().unwrap(), "upload", "--format", "junit", "--project", "WEB", JUNIT],
    )
    .await;
    assert!(out.status.success(), "{:?}", text(&out));
}
