//! Imports at CI scale, against the release `qahub` run as its own process (so its
//! memory is the server's alone), on a SQLite file and then PostgreSQL when it answers:
//!
//! - a 200 000-result JUnit report through `POST …/runs/import`, a `<testsuite>` a class
//!   as JUnit writers order it: first of tests the project has never seen (each result
//!   makes its case too), then the same report again (a suite's nightly run: its cases
//!   exist), then 200 000 new tests in the worst order for the title index (every test
//!   in another class than the last): results per second, the server's peak memory
//!   growth, and — meanwhile — another workspace revoking one of its tokens every
//!   100 ms: each revocation's time, and whether the revoked token is refused on its
//!   very next request;
//! - a Playwright report of 250 tests under one 2 MiB suite name (the shared-name case):
//!   peak memory growth against the report's size;
//! - 1 000 000 results (SQLite; the body limit raised for it), mostly new tests and then
//!   known ones: the time to land them.
//!
//!     cargo build --release -p server && cargo run --release -p server --example import_bench
//!
//! Bounded: seven imports per database, at most 800 revocations, everything on 127.0.0.1.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

fn qahub() -> String {
    format!("{}/../target/release/qahub", env!("CARGO_MANIFEST_DIR"))
}

fn cli(db: &str, args: &[&str]) -> String {
    let out =
        Command::new(qahub()).args(args).env("QAHUB_DATABASE_URL", db).env("QAHUB_BCRYPT_COST", "4").output().unwrap();
    assert!(out.status.success(), "qahub {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(db: &str, max_bytes: u64) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(qahub())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("QAHUB_DATABASE_URL", db)
            .env("QAHUB_BCRYPT_COST", "4")
            .env("QAHUB_TOKEN_RATE_LIMIT", "1000000")
            .env("QAHUB_MAX_IMPORT_BYTES", max_bytes.to_string())
            .env("QAHUB_REQUEST_TIMEOUT", "600")
            .env("QAHUB_AUTH_ATTEMPTS_PER_IP", "1000000")
            .env("QAHUB_AUTH_ATTEMPTS_PER_PREFIX", "1000000")
            .env("QAHUB_LOG", std::env::var("QAHUB_BENCH_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server { child, base: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{}/readyz", server.base)).await.map_or(true, |r| !r.status().is_success()) {
            assert!(Instant::now() < deadline, "qahub serve did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    /// Starts the peak (`VmHWM`) afresh from the memory held now.
    fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5").unwrap();
    }

    /// The server's resident memory now and at its peak, in bytes (`/proc`).
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .unwrap()
                * 1024
        };
        (kb("VmRSS:"), kb("VmHWM:"))
    }
}

/// How a report orders its tests.
#[derive(Clone, Copy)]
enum Layout {
    /// A `<testsuite>` a class, its 100 tests together: as Maven Surefire, Gradle,
    /// pytest and jest-junit write JUnit.
    ByClass,
    /// Every test in another class than the one before (97 × 13 classes in turn): the
    /// worst order for the `(project_id, title)` index, each new case far from the last.
    Interleaved,
}

fn junit(n: usize, layout: Layout) -> Vec<u8> {
    let mut xml = String::with_capacity(n * 90);
    xml.push_str("<testsuites>");
    let case = |xml: &mut String, class: &str, i: usize| {
        let body =
            if i.is_multiple_of(50) { "<failure message=\"expected 1, got 2\">assert 1 == 2</failure>" } else { "" };
        xml.push_str(&format!(
            "<testcase classname=\"{class}\" name=\"test case {i:07}\" time=\"0.004\">{body}</testcase>"
        ));
    };
    match layout {
        Layout::ByClass => {
            for class_start in (0..n).step_by(100) {
                let class = format!("pkg{}.Module{}Test", (class_start / 100) % 97, class_start / 100);
                xml.push_str(&format!("<testsuite name=\"{class}\">"));
                for i in class_start..(class_start + 100).min(n) {
                    case(&mut xml, &class, i);
                }
                xml.push_str("</testsuite>");
            }
        }
        Layout::Interleaved => {
            xml.push_str("<testsuite name=\"monorepo\">");
            for i in 0..n {
                case(&mut xml, &format!("pkg{}.module{}", i % 97, i % 13), i);
            }
            xml.push_str("</testsuite>");
        }
    }
    xml.push_str("</testsuites>");
    xml.into_bytes()
}

fn shared_name_playwright() -> Vec<u8> {
    let suite = "s".repeat(2 << 20);
    let specs: Vec<String> = (0..250)
        .map(|n| format!(r#"{{"title":"t{n}","tests":[{{"projectName":"chromium","results":[{{"status":"passed","duration":3}}]}}]}}"#))
        .collect();
    format!(r#"{{"suites":[{{"title":"{suite}","specs":[{}]}}]}}"#, specs.join(",")).into_bytes()
}

const MIB: f64 = 1024.0 * 1024.0;

async fn import(
    client: &reqwest::Client,
    server: &Server,
    token: &str,
    format: &str,
    body: Vec<u8>,
) -> (Duration, Value) {
    let started = Instant::now();
    let res = client
        .post(format!("{}/api/v1/projects/WEB/runs/import?format={format}", server.base))
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(res.status(), 201);
    (took, res.json().await.unwrap())
}

async fn bench(label: &str, db: &str, million: bool) {
    cli(db, &["admin", "bootstrap", "--tenant", "Acme", "--email", "a@example.com", "--password", "a long password"]);
    cli(db, &["admin", "bootstrap", "--tenant", "Globex", "--email", "g@example.com", "--password", "a long password"]);
    let token = |tenant: &str, email: &str, name: &str, scopes: &str| {
        cli(db, &["token", "create", "--tenant", tenant, "--email", email, "--name", name, "--scopes", scopes])
    };
    let importer = token("Acme", "a@example.com", "ci", "admin");
    let their_admin = token("Globex", "g@example.com", "admin", "admin");
    let victims: Vec<String> = (0..800).map(|n| token("Globex", "g@example.com", &format!("v{n}"), "read")).collect();
    let server = Server::start(db, 256 << 20).await;
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{}/api/v1/projects", server.base))
        .bearer_auth(&importer)
        .json(&json!({"key": "WEB", "name": "Web"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // Warm up: one small import, then the baseline.
    import(&client, &server, &importer, "junit", junit(1000, Layout::Interleaved)).await;
    let ids: Vec<String> = {
        // Every token of the other workspace, page by page: (prefix, id).
        let mut all: Vec<(String, String)> = Vec::new();
        let mut cursor = String::new();
        loop {
            let page: Value = client
                .get(format!("{}/api/v1/tokens?limit=200{cursor}", server.base))
                .bearer_auth(&their_admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for t in page["data"].as_array().unwrap() {
                all.push((t["prefix"].as_str().unwrap().to_string(), t["id"].as_str().unwrap().to_string()));
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => break,
            }
        }
        victims
            .iter()
            .map(|v| {
                let prefix = v.split('_').nth(1).unwrap();
                all.iter().find(|(p, _)| p.contains(prefix)).unwrap().1.clone()
            })
            .collect()
    };

    // 200 000 results while another workspace revokes every 100 ms: first a report of
    // tests the project has never seen (200 000 new cases too), then the same report
    // again (the nightly run of a suite: its cases exist).
    // Last, a report of new tests in the worst order for the title index.
    let by_class = junit(200_000, Layout::ByClass);
    let interleaved = junit(200_000, Layout::Interleaved);
    let mut victims = ids.iter().zip(&victims);
    for (report, what) in [
        (&by_class, "new tests, a suite a class"),
        (&by_class, "known tests, a suite a class"),
        (&interleaved, "new tests, every test in another class than the last"),
    ] {
        let size = report.len();
        let (rss_before, _) = server.memory();
        server.reset_peak();
        let done = std::sync::atomic::AtomicBool::new(false);
        let importing = async {
            let out = import(&client, &server, &importer, "junit", report.clone()).await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            out
        };
        let revoking = async {
            let mut waits = Vec::new();
            let mut refused_next = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let Some((id, token)) = victims.next() else { break };
                tokio::time::sleep(Duration::from_millis(100)).await;
                let started = Instant::now();
                let res = client
                    .post(format!("{}/api/v1/tokens/{id}/revoke", server.base))
                    .bearer_auth(&their_admin)
                    .send()
                    .await
                    .unwrap();
                waits.push(started.elapsed());
                assert_eq!(res.status(), 200, "a revocation failed during the import");
                let me = client.get(format!("{}/api/v1/me", server.base)).bearer_auth(token).send().await.unwrap();
                let status = me.status();
                let body: Value = me.json().await.unwrap_or_default();
                if status == 401 && body["error"]["code"] == "revoked_token" {
                    refused_next += 1;
                } else {
                    println!("  a revoked token's next request got {status} {body}");
                }
            }
            (waits, refused_next)
        };
        let ((took, run), (mut waits, refused_next)) = tokio::join!(importing, revoking);
        let (_, peak) = server.memory();
        assert_eq!(run["data"]["counts"]["total"], 200_000);
        waits.sort();
        let p50 = waits.get(waits.len() / 2).copied().unwrap_or_default();
        let p99 = waits.get(waits.len() * 99 / 100).copied().unwrap_or_default();
        let max = waits.last().copied().unwrap_or_default();
        println!(
            "{label}: 200 000 results, {what} ({:.1} MiB JUnit) in {:.2} s = {:.0} results/s; server peak memory +{:.1} MiB ({:.2}× the report)",
            size as f64 / MIB,
            took.as_secs_f64(),
            200_000.0 / took.as_secs_f64(),
            peak.saturating_sub(rss_before) as f64 / MIB,
            peak.saturating_sub(rss_before) as f64 / size as f64,
        );
        println!(
            "{label}:   meanwhile {} revocations in another workspace, every one 200: median {:.1} ms, p99 {:.1} ms, slowest {:.1} ms; revoked token refused on its next request: {}/{}",
            waits.len(),
            p50.as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0,
            refused_next,
            waits.len()
        );
    }

    // One 2 MiB suite name shared by 250 tests.
    let body = shared_name_playwright();
    let size = body.len();
    let (rss_before, _) = server.memory();
    let (took, _) = import(&client, &server, &importer, "playwright", body).await;
    let (_, peak) = server.memory();
    println!(
        "{label}: Playwright, 250 tests under one 2 MiB suite name ({:.1} MiB): {:.2} s; peak memory +{:.1} MiB over this import's start (the peak so far: earlier imports may hold it)",
        size as f64 / MIB,
        took.as_secs_f64(),
        peak.saturating_sub(rss_before) as f64 / MIB
    );

    if million {
        // A million results: first mostly new tests (the 200 000 above exist), then the
        // same report again.
        let report = junit(1_000_000, Layout::ByClass);
        let size = report.len();
        for what in ["800 000 of them new tests", "known tests"] {
            let (took, run) = import(&client, &server, &importer, "junit", report.clone()).await;
            assert_eq!(run["data"]["counts"]["total"], 1_000_000);
            println!(
                "{label}: 1 000 000 results, {what} ({:.0} MiB JUnit) in {:.1} s = {:.0} results/s",
                size as f64 / MIB,
                took.as_secs_f64(),
                1_000_000.0 / took.as_secs_f64()
            );
        }
    }
}

#[tokio::main]
async fn main() {
    assert!(std::path::Path::new(&qahub()).exists(), "build the release server first: cargo build --release -p server");
    let dir = std::env::temp_dir().join(format!("qahub-import-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // QAHUB_BENCH_ONLY=postgres (or sqlite) runs one database.
    let only = std::env::var("QAHUB_BENCH_ONLY").unwrap_or_default();
    if only != "postgres" {
        bench("SQLite", &format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()), true).await;
    }
    let admin =
        std::env::var("QAHUB_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    if only == "sqlite" {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
        let name = format!("qahub_import_bench_{}", std::process::id());
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE \"{name}\"").as_str()).await.unwrap();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        bench("PostgreSQL", &format!("{base}/{name}"), false).await;
        let _ = sqlx::Executor::execute(&mut conn, format!("DROP DATABASE \"{name}\" WITH (FORCE)").as_str()).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
