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
    admin: String,
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
    let settings = Settings { bcrypt_cost: 4, oidc_insecure_loopback: true, ..Settings::default() };
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
    // A workspace token: trust policies mint workspace tokens, so their maker is one.
    let admin = make(json!({"name": "admin", "scopes": ["admin"], "owner": "workspace"})).await;
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
        admin: admin.clone(),
        write: make(json!({"name": "ci", "scopes": ["write"], "projects": ["WEB"]})).await,
        read: make(json!({"name": "dash", "scopes": ["read"]})).await,
        expiring: make(json!({"name": "old", "scopes": ["write"], "expires_at": soon})).await,
        _db: db,
    }
}

/// What the CI around these tests may have set, which would change what qa-hub does.
const CI_VARS: &[&str] = &[
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "GITHUB_RUN_ID",
    "GITHUB_RUN_ATTEMPT",
    "CI_PIPELINE_ID",
    "BUILDKITE_BUILD_ID",
    "CIRCLE_WORKFLOW_ID",
    "BUILD_TAG",
    "QA_HUB_PROJECT",
    "QA_HUB_RUN_KEY",
    "QA_HUB_RETRIES",
    "QA_HUB_RETRY_MAX_TIME",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "QA_HUB_ID_TOKEN",
];

/// Runs the binary off the async runtime (the server lives on it), in a clean CI
/// environment plus `env`.
async fn qa_hub_env(url: &str, token: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let (url, token) = (url.to_string(), token.to_string());
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_qa-hub"));
        for var in CI_VARS {
            cmd.env_remove(var);
        }
        cmd.args(&args).env("QA_HUB_URL", url).env("QA_HUB_TOKEN", token).env("QA_HUB_RETRIES", "1");
        cmd.envs(env).output().unwrap()
    })
    .await
    .unwrap()
}

async fn qa_hub(url: &str, token: &str, args: &[&str]) -> Output {
    qa_hub_env(url, token, args, &[]).await
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
    assert!(stdout.contains(&format!("{}/projects/WEB/runs/", hub.url)), "{stdout}");
    assert!(!stdout.contains(&secret(&hub.write)) && !stderr.contains(&secret(&hub.write)), "never prints the token");

    let out = qa_hub(&hub.url, &hub.write, &["upload", "--format", "playwright", "--project", "web", PLAYWRIGHT]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("PASSED — 28 passed, 0 failed"), "{stdout}");

    let cases = [
        (&hub.write[..], vec!["upload", "--format", "junit", "--project", "NOPE", JUNIT], 5, "404 not_found"),
        (&hub.read[..], vec!["upload", "--format", "junit", "--project", "WEB", JUNIT], 4, "403 insufficient_scope"),
        ("qh_aaaaaaaa_notarealtokenatall", vec!["whoami"], 3, "401 malformed_token"),
        (
            &hub.write[..],
            vec!["upload", "--format", "playwright", "--project", "WEB", JUNIT],
            6,
            "not a readable report",
        ),
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
        stderr.contains("warning: the QA Hub token expires in 2 day(s)")
            || stderr.contains("warning: the QA Hub token expires in 3 day(s)"),
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

/// Reads one HTTP/1.1 message (headers, then a `Content-Length` body) from `stream`.
async fn read_message(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        if n == 0 {
            return buf;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
        if buf.len() >= end + 4 + length {
            return buf;
        }
    }
}

/// A proxy in front of the hub that fails as networks do: the first connection is
/// dropped before any answer, the second reaches the hub but its answer is lost, the
/// third gets 503 with `Retry-After: 1`; later ones pass through.
async fn faulty_proxy(upstream: &str) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::{atomic::Ordering, Arc};
    use tokio::io::AsyncWriteExt;
    let upstream = upstream.trim_start_matches("http://").replace("localhost", "127.0.0.1");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        for _ in 0..50 {
            let Ok((mut client, _)) = listener.accept().await else { return };
            let n = count.fetch_add(1, Ordering::SeqCst);
            let upstream = upstream.clone();
            tokio::spawn(async move {
                match n {
                    0 => drop(client),
                    1 => {
                        let request = read_message(&mut client).await;
                        let mut server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                        server.write_all(&request).await.unwrap();
                        let answer = read_message(&mut server).await;
                        assert!(answer.starts_with(b"HTTP/1.1 201"), "{}", String::from_utf8_lossy(&answer));
                        drop(client); // the hub made the run; the client never hears of it
                    }
                    2 => {
                        read_message(&mut client).await;
                        let busy = "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                        client.write_all(busy.as_bytes()).await.unwrap();
                    }
                    _ => {
                        let mut server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }
            });
        }
    });
    (url, seen)
}

async fn runs_of(hub: &Hub) -> Vec<serde_json::Value> {
    let res: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/projects/WEB/runs", hub.url))
        .bearer_auth(&hub.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    res["data"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_through_a_faulty_network_and_lands_exactly_one_run() {
    let hub = hub().await;
    let (proxy, seen) = faulty_proxy(&hub.url).await;
    let env = [("QA_HUB_RETRIES", "5")];
    let out = qa_hub_env(&proxy, &hub.write, &["upload", "--format", "junit", "--project", "WEB", JUNIT], &env).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("attempt 1 of 6 failed") && stderr.contains("503"), "{stderr}");
    assert!(stdout.contains("already uploaded"), "the retry answered the run the lost answer made: {stdout}");
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 4, "three failures, then one success");
    assert_eq!(runs_of(&hub).await.len(), 1, "exactly one run");

    // Retries are bounded: with none left, a dropped connection is a network failure.
    let (proxy, _) = faulty_proxy(&hub.url).await;
    let env = [("QA_HUB_RETRIES", "0")];
    let out = qa_hub_env(&proxy, &hub.write, &["upload", "--format", "junit", "--project", "WEB", JUNIT], &env).await;
    assert_eq!(out.status.code(), Some(10), "{:?}", text(&out));
    // A 4xx is final: no retry.
    let out = qa_hub_env(&hub.url, &hub.read, &["upload", "--format", "junit", "--project", "WEB", JUNIT], &[]).await;
    assert_eq!(out.status.code(), Some(4));
    assert!(!text(&out).1.contains("retrying"));
}

fn shard_file(dir: &std::path::Path, name: &str, passed: usize, failed: usize) -> String {
    let mut xml = format!("<testsuite name=\"{name}\">");
    for i in 0..passed {
        xml.push_str(&format!("<testcase classname=\"{name}\" name=\"ok {i}\"/>"));
    }
    for i in 0..failed {
        xml.push_str(&format!("<testcase classname=\"{name}\" name=\"bad {i}\"><failure message=\"no\"/></testcase>"));
    }
    xml.push_str("</testsuite>");
    let path = dir.join(format!("{name}.xml"));
    std::fs::write(&path, xml).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_from_three_processes_make_one_run() {
    let hub = hub().await;
    let dir = std::env::temp_dir().join(format!("qa-hub-shards-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    // A GitHub Actions matrix: every job sees the same run id and attempt.
    let github = [("GITHUB_RUN_ID", "4242"), ("GITHUB_RUN_ATTEMPT", "1")];
    let files = [shard_file(&dir, "one", 10, 0), shard_file(&dir, "two", 7, 1), shard_file(&dir, "three", 12, 2)];
    let jobs = files.iter().map(|f| {
        let (url, token, f) = (hub.url.clone(), hub.write.clone(), f.clone());
        tokio::spawn(async move { qa_hub_env(&url, &token, &["upload", "--format", "junit", &f], &github).await })
    });
    let mut outs = Vec::new();
    for job in jobs.collect::<Vec<_>>() {
        outs.push(job.await.unwrap());
    }
    for out in &outs {
        assert!(out.status.success(), "{:?}", text(out));
        assert!(text(out).0.contains("run key github-4242-1"), "{:?}", text(out));
    }
    let runs = runs_of(&hub).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["counts"]["total"], 32);
    assert_eq!((runs[0]["shards"].as_u64(), runs[0]["status"].as_str()), (Some(3), Some("open")));

    let out = qa_hub_env(&hub.url, &hub.write, &["finish"], &github).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("FAILED — 29 passed, 3 failed, 0 skipped, 0 errors (32 total) from 3 shard(s)"),
        "{stdout}"
    );
    // A shard after the finish is refused, and says so.
    let late = shard_file(&dir, "late", 1, 0);
    let out = qa_hub_env(&hub.url, &hub.write, &["upload", "--format", "junit", &late], &github).await;
    assert_eq!(out.status.code(), Some(12), "{:?}", text(&out));
    assert!(text(&out).1.contains("409 conflict"), "{:?}", text(&out));
    // --no-run-key makes a run of its own.
    let out = qa_hub_env(&hub.url, &hub.write, &["upload", "--format", "junit", "--no-run-key", &late], &github).await;
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(runs_of(&hub).await.len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server that accepts every upload but claims it read fewer tests than were sent.
async fn lossy_server() -> String {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        for _ in 0..20 {
            let Ok((mut client, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                read_message(&mut client).await;
                let body = r#"{"data":{"id":"r1","project":"WEB","status":"failed","counts":{"total":3,"passed":2,"failed":1,"skipped":0,"error":0},"duration_ms":1,"run_key":null,"shards":1},"receipt":{"tests_read":3,"accepted":{"total":3,"passed":2,"failed":1,"skipped":0,"error":0}}}"#;
                let answer = format!(
                    "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                client.write_all(answer.as_bytes()).await.unwrap();
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_that_misses_results_fails_loudly() {
    let url = lossy_server().await;
    let args = ["upload", "--format", "junit", "--project", "WEB", JUNIT];
    let out = qa_hub_env(&url, "qh_abcdefgh_whatever", &args, &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(11), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("did not accept every result") && stderr.contains("tests: 5 in the file, 3 accepted"),
        "{stderr}"
    );
    assert!(stderr.contains("errors: 1 in the file, 0 accepted"), "{stderr}");

    // --continue-on-error: exit 0, but the job log still shows it — as an annotation on GitHub.
    let mut args = args.to_vec();
    args.insert(1, "--continue-on-error");
    let out = qa_hub_env(&url, "qh_abcdefgh_whatever", &args, &[("GITHUB_ACTIONS", "true")]).await;
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(
        stdout.lines().any(|l| l.starts_with("::warning title=QA Hub::") && l.contains("did not land")),
        "{stdout}"
    );
    let out = qa_hub_env(&url, "qh_abcdefgh_whatever", &args, &[("GITLAB_CI", "true")]).await;
    assert!(out.status.success());
    assert!(text(&out).1.contains("WARNING: qa-hub: the upload did not land"), "{:?}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_warnings_are_github_annotations() {
    let hub = hub().await;
    let gha = [("GITHUB_ACTIONS", "true")];
    let out = qa_hub_env(&hub.url, &hub.expiring, &["whoami"], &gha).await;
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    let warning =
        stdout.lines().find(|l| l.starts_with("::warning title=QA Hub::")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(warning.contains("the QA Hub token expires in"), "{warning}");

    // A token a rotation replaced warns until it stops.
    let client = reqwest::Client::new();
    let made: serde_json::Value = client
        .post(format!("{}/api/v1/tokens", hub.url))
        .bearer_auth(&hub.admin)
        .json(&json!({"name": "to rotate", "scopes": ["read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (old, id) = (made["data"]["token"].as_str().unwrap(), made["data"]["id"].as_str().unwrap());
    let rotated = client
        .post(format!("{}/api/v1/tokens/{id}/rotate", hub.url))
        .bearer_auth(&hub.admin)
        .json(&json!({"old_token": "24h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 201);
    let out = qa_hub_env(&hub.url, old, &["whoami"], &gha).await;
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(
        stdout.lines().any(|l| l.starts_with("::warning title=QA Hub::") && l.contains("replaced by a rotation")),
        "{stdout}"
    );
    // Outside CI: a plain line on stderr, nothing on stdout but the answer.
    let out = qa_hub(&hub.url, old, &["whoami"]).await;
    assert!(text(&out).1.contains("qa-hub: warning: this token was replaced by a rotation"), "{:?}", text(&out));
    assert!(!text(&out).0.contains("::warning"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_project_comes_from_the_environment_or_the_token() {
    let hub = hub().await;
    // The documented CI step: only QA_HUB_TOKEN and QA_HUB_URL, a one-project token.
    let out = qa_hub(&hub.url, &hub.write, &["upload", "--format", "playwright", PLAYWRIGHT]).await;
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.contains("/projects/WEB/runs/"), "{:?}", text(&out));
    // A token for every project must be told which one, and is told how.
    let out = qa_hub(&hub.url, &hub.expiring, &["upload", "--format", "junit", JUNIT]).await;
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out).1.contains("which project? pass --project KEY or set QA_HUB_PROJECT"), "{:?}", text(&out));
    let out =
        qa_hub_env(&hub.url, &hub.expiring, &["upload", "--format", "junit", JUNIT], &[("QA_HUB_PROJECT", "WEB")])
            .await;
    assert!(out.status.success(), "{:?}", text(&out));
    // --json prints the answer for scripts.
    let out = qa_hub(&hub.url, &hub.write, &["upload", "--format", "junit", "--json", JUNIT]).await;
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["receipt"]["tests_read"], 5);
    assert_eq!(answer["data"]["counts"]["error"], 1);
}

/// A local OIDC issuer that also plays GitHub's ID-token service: `GET /github-token`
/// with the runner's request token answers `{"value": <JWT>}` for the asked audience.
async fn local_issuer() -> String {
    use axum::{extract::Query, http::HeaderMap, routing::get, Json, Router};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/tests/fixtures/oidc");
    let jwk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("rsa1.jwk.json")).unwrap()).unwrap();
    let pem = std::fs::read(fixtures.join("rsa1.pem")).unwrap();
    let (iss, iss2) = (url.clone(), url.clone());
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let iss = iss.clone();
                async move { Json(json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks")})) }
            }),
        )
        .route("/jwks", get(move || {
            let jwk = jwk.clone();
            async move { Json(json!({"keys": [jwk]})) }
        }))
        .route(
            "/github-token",
            get(move |headers: HeaderMap, Query(q): Query<std::collections::HashMap<String, String>>| {
                let (iss, pem) = (iss2.clone(), pem.clone());
                async move {
                    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer runner-secret") {
                        return (axum::http::StatusCode::UNAUTHORIZED, Json(json!({"message": "bad request token"})));
                    }
                    let now = time::OffsetDateTime::now_utc().unix_timestamp();
                    let claims = json!({
                        "iss": iss, "aud": q.get("audience").cloned().unwrap_or_default(), "sub": "repo:acme/backend:ref:refs/heads/main",
                        "repository": "acme/backend", "ref": "refs/heads/main", "run_id": "777", "actor": "octocat",
                        "jti": uuid::Uuid::new_v4().to_string(), "iat": now, "nbf": now, "exp": now + 300,
                    });
                    let header = jsonwebtoken::Header { kid: Some("rsa1".into()), ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256) };
                    let jwt = jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap();
                    (axum::http::StatusCode::OK, Json(json!({ "value": jwt })))
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_from_github_actions_with_no_stored_token() {
    let hub = hub().await;
    let issuer = local_issuer().await;
    let policy = json!({
        "name": "backend", "issuer": issuer, "audience": hub.url,
        "conditions": {"repository": "acme/backend", "ref": "refs/heads/*"},
        "projects": ["WEB"], "scopes": ["write"],
    });
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/trust-policies", hub.url))
        .bearer_auth(&hub.admin)
        .json(&policy)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

    // A GitHub Actions job with `id-token: write`: the runner's variables, no QA_HUB_TOKEN.
    let request_url = format!("{issuer}/github-token?api-version=2.0");
    let github = [
        ("GITHUB_ACTIONS", "true"),
        ("ACTIONS_ID_TOKEN_REQUEST_URL", request_url.as_str()),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runner-secret"),
    ];
    let out = qa_hub_env(&hub.url, "", &["upload", "--format", "junit", "--no-run-key", JUNIT], &github).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("exchanged this GitHub Actions job's OIDC identity for a token valid until"), "{stderr}");
    assert!(stdout.contains("/projects/WEB/runs/"), "the token's one project: {stdout}");
    assert_eq!(runs_of(&hub).await.len(), 1);

    // GitLab: the ID token sits in a variable (QA_HUB_ID_TOKEN, or --oidc-token-env).
    let jwt: serde_json::Value = reqwest::Client::new()
        .get(format!("{request_url}&audience={}", hub.url))
        .bearer_auth("runner-secret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwt = jwt["value"].as_str().unwrap();
    let gitlab = [("GITLAB_CI", "true"), ("CI_JOB_JWT_QA", jwt)];
    let args = ["--oidc-token-env", "CI_JOB_JWT_QA", "upload", "--format", "junit", "--no-run-key", JUNIT];
    let out = qa_hub_env(&hub.url, "", &args, &gitlab).await;
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).1.contains("the OIDC ID token in CI_JOB_JWT_QA"), "{:?}", text(&out));
    // The same ID token again: refused (a jti is exchanged once), and said so.
    let out = qa_hub_env(&hub.url, "", &args, &gitlab).await;
    assert_eq!(out.status.code(), Some(3), "{:?}", text(&out));
    assert!(text(&out).1.contains("oidc_invalid") && text(&out).1.contains("replayed"), "{:?}", text(&out));

    // The workspace the job names is the one whose policies count: QA_HUB_WORKSPACE is sent.
    let named = |ws: &'static str| github.iter().copied().chain([("QA_HUB_WORKSPACE", ws)]).collect::<Vec<_>>();
    let out = qa_hub_env(&hub.url, "", &["whoami"], &named("Initech")).await;
    assert_eq!(out.status.code(), Some(3), "{:?}", text(&out));
    assert!(text(&out).1.contains("oidc_invalid"), "{:?}", text(&out));
    let out = qa_hub_env(&hub.url, "", &["whoami"], &named("Acme")).await;
    assert!(out.status.success(), "{:?}", text(&out));

    // Asked for another audience, no policy matches: 403, exit 4.
    let out = qa_hub_env(&hub.url, "", &["--oidc-audience", "https://other.example", "whoami"], &github).await;
    assert_eq!(out.status.code(), Some(4), "{:?}", text(&out));
    assert!(text(&out).1.contains("oidc_no_policy"), "{:?}", text(&out));
    // Without the runner's variables and without a token: how to get one.
    let out = qa_hub_env(&hub.url, "", &["whoami"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("id-token: write"), "{:?}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_run_page_shows_the_run_with_its_ci_context() {
    let hub = hub().await;
    let github = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_SHA", "2f8a9e1c0b"),
        ("GITHUB_REF_NAME", "main"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_REPOSITORY", "acme/backend"),
        ("GITHUB_RUN_ID", "555"),
        ("GITHUB_JOB", "e2e"),
    ];
    let args = ["upload", "--format", "junit", "--no-run-key", "--fail-on-failures", JUNIT];
    let out = qa_hub_env(&hub.url, &hub.write, &args, &github).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "--fail-on-failures with 1 failure and 1 error: {stdout}\n{stderr}");
    assert!(stderr.contains("2 test(s) failed or errored"), "{stderr}");
    let page_url = stdout.lines().find(|l| l.contains("/projects/WEB/runs/")).unwrap().trim().to_string();
    assert!(page_url.starts_with(&format!("{}/projects/WEB/runs/", hub.url)), "{page_url}");

    // The run records the CI context.
    let id = page_url.rsplit('/').next().unwrap();
    let run: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/projects/WEB/runs/{id}", hub.url))
        .bearer_auth(&hub.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ci = &run["data"]["ci"];
    assert_eq!(ci["commit"], "2f8a9e1c0b");
    assert_eq!(ci["branch"], "main");
    assert_eq!(ci["build_url"], "https://github.com/acme/backend/actions/runs/555");
    assert_eq!(ci["job"], "e2e");
    assert_eq!(run["data"]["uploaded_by"].as_str().unwrap().split(' ').next(), Some("ci"));

    // Opened in a signed-in browser: the run with its counts, the failing test first.
    let browser = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let login = browser
        .post(format!("{}/_qh/login", hub.url))
        .form(&[("email", "o@example.com"), ("password", "a long password")])
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success());
    let html = browser.get(&page_url).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    assert!(
        html.contains("2 passed")
            && html.contains("1 failed")
            && html.contains("1 skipped")
            && html.contains("1 errors"),
        "{html}"
    );
    let failing = html.find("test_applies_discount").expect("the failing test is listed");
    let erroring = html.find("test_uses_broken_fixture").expect("the erroring test is listed");
    let passing = html.find("test_adds_to_cart").expect("the passing test is listed");
    assert!(failing < erroring && erroring < passing, "failed first, then errors, then passed");
    assert!(html.contains("discount should be 10%"), "the failure's message is shown");
    assert!(html.contains("https://github.com/acme/backend/actions/runs/555"), "the build is linked");
    // Filtered to errors, and searched.
    let html = browser.get(format!("{page_url}?status=error")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("test_uses_broken_fixture") && !html.contains("test_adds_to_cart"));
    let html = browser.get(format!("{page_url}?q=CART")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("test_adds_to_cart") && !html.contains("test_applies_discount"));
    // Signed out: sent to sign in, never shown.
    let anonymous = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = anonymous.get(&page_url).header("accept", "text/html").send().await.unwrap();
    let body = res.text().await.unwrap();
    assert!(!body.contains("test_applies_discount"), "no results for a signed-out visitor");
}

/// A server that reads each upload to its end, holding none of it, and answers a receipt
/// of `tests` failed tests.
async fn draining_server(tests: u64) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        for _ in 0..5 {
            let Ok((mut client, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap() == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let length: u64 = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                let mut chunk = vec![0u8; 64 * 1024];
                let mut left = length;
                while left > 0 {
                    let n = client.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "the upload stopped {left} bytes short");
                    left -= (n as u64).min(left);
                }
                let counts = format!(r#"{{"total":{tests},"passed":0,"failed":{tests},"skipped":0,"error":0}}"#);
                let body = format!(
                    r#"{{"data":{{"id":"r1","project":"WEB","status":"failed","counts":{counts},"duration_ms":1,"run_key":null,"shards":1}},"receipt":{{"tests_read":{tests},"accepted":{counts}}}}}"#
                );
                let answer = format!(
                    "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                client.write_all(answer.as_bytes()).await.unwrap();
            });
        }
    });
    url
}

/// `qa-hub` reads the file from disk as a stream to count it, hash it and send it: a
/// 32 MiB report (3 200 tests with 10 000-character messages) never sits in its memory,
/// whole or as results. Its peak is read from `/proc` while it runs (`VmHWM` only grows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_a_big_file_without_holding_it() {
    const TESTS: u64 = 3_200;
    let dir = std::env::temp_dir().join(format!("qa-hub-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big.xml");
    {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let message = "m".repeat(10_000);
        writeln!(out, "<testsuites><testsuite name=\"big\">").unwrap();
        for n in 0..TESTS {
            writeln!(out, "<testcase name=\"t{n}\"><failure>{message}</failure></testcase>").unwrap();
        }
        writeln!(out, "</testsuite></testsuites>").unwrap();
    }
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(size > 32_000_000, "{size}");
    let url = draining_server(TESTS).await;
    let path = file.to_str().unwrap().to_string();
    let (status, peak) = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_qa-hub"))
            .args(["upload", "--format", "junit", "--project", "WEB", "--fail-on-failures", &path])
            .env("QA_HUB_URL", url)
            .env("QA_HUB_TOKEN", "qh_abcdefgh_whatever")
            .env("QA_HUB_RETRIES", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let status_file = format!("/proc/{}/status", child.id());
        let mut peak = 0u64;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status, peak);
            }
            assert!(std::time::Instant::now() < deadline, "qa-hub took over 5 minutes");
            if let Ok(text) = std::fs::read_to_string(&status_file) {
                if let Some(kib) = text.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
                    peak = peak.max(kib.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap() * 1024);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        status.code(),
        Some(1),
        "the upload went through and its receipt matched: its failing tests fail the job (--fail-on-failures)"
    );
    eprintln!("qa-hub's peak memory: {} MiB for a {} MiB file", peak >> 20, size >> 20);
    assert!(peak > 0, "the peak was never read");
    assert!(peak < 24 << 20, "qa-hub's peak memory was {} MiB for a {} MiB file", peak >> 20, size >> 20);
}
