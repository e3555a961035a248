//! Steady traffic for a while, nobody scraping `/metrics` (most installs): does anything
//! the server holds keep rising? Starts the release `qahub` on loopback (a SQLite file,
//! then a fresh PostgreSQL database when one answers) and drives it from this process:
//!
//! - `/healthz`, `/api/v1/me` with a warm token, and `/api/v1/me` with forged secrets;
//! - a person signed in viewing pages (tokens, audit log, a project's runs, members) every 200 ms;
//! - a token created, rotated and both revoked every 250 ms, a leak report every 7 s (10 a minute from
//!   one address are allowed);
//! - a small JUnit import every 2 s, whose run is deleted straight after.
//!
//! Every `QAHUB_SOAK_SAMPLE` seconds (default 60) it samples the server's resident memory,
//! open file descriptors, database size and the interval's p50/p99 latency. After the
//! first sample (warm-up) it fits a line (at least 5 samples after it, or no verdict) through each and fails when resident memory rises
//! by more than 1 MiB a minute (the unscraped-metrics leak this guards against was ~20 MiB
//! a minute at this traffic; allocator noise is well under 1) or file descriptors by more
//! than 1 a minute. The database grows with the tokens and audit rows made; its slope is
//! printed, not judged.
//!
//!     cargo build --release -p server --bins --example soak
//!     target/release/examples/soak        # QAHUB_SOAK_SECS=600 per database (default), QAHUB_BENCH_ONLY=sqlite|postgres
//!
//! Bounded: QAHUB_SOAK_SECS per database (at most 4 hours), everything on 127.0.0.1.

use std::{
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

fn qahub() -> String {
    format!("{}/../target/release/qahub", env!("CARGO_MANIFEST_DIR"))
}

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default).clamp(10, 4 * 3600))
}

const PASSWORD: &str = "soak password 1";

fn admin_token(db: &str) -> String {
    let run = |args: &[&str]| {
        let out = Command::new(qahub())
            .args(args)
            .env("QAHUB_DATABASE_URL", db)
            .env("QAHUB_BCRYPT_COST", "4")
            .output()
            .unwrap();
        assert!(out.status.success(), "qahub {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    run(&["admin", "bootstrap", "--tenant", "Soak", "--email", "owner@soak.example", "--password", PASSWORD]);
    run(&[
        "token",
        "create",
        "--tenant",
        "Soak",
        "--email",
        "owner@soak.example",
        "--name",
        "admin",
        "--scopes",
        "admin",
    ])
}

/// Latencies of the current interval (µs), and whether the traffic is to stop.
#[derive(Default)]
struct Shared {
    latencies: Mutex<Vec<u64>>,
    failures: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Shared {
    fn record(&self, started: Instant, what: &str, status: Option<StatusCode>, expect: StatusCode) {
        self.latencies.lock().unwrap().push(started.elapsed().as_micros() as u64);
        if status != Some(expect) {
            let mut failures = self.failures.lock().unwrap();
            if failures.len() < 20 {
                failures.push(format!("{what}: {status:?}, expected {expect}"));
            }
        }
    }
}

fn junit(n: usize) -> String {
    let mut xml = String::from("<testsuite name=\"soak\">");
    for i in 0..n {
        xml.push_str(&format!("<testcase classname=\"soak.suite\" name=\"test {i}\" time=\"0.001\"/>"));
    }
    xml + "</testsuite>"
}

async fn traffic(base: String, admin: String, shared: Arc<Shared>) {
    let client = Client::builder().pool_max_idle_per_host(32).build().unwrap();
    let api = |path: &str| format!("{base}/api/v1{path}");
    let res = client.post(api("/projects")).bearer_auth(&admin).json(&json!({"key": "SOAK", "name": "Soak"})).send();
    assert_eq!(res.await.unwrap().status(), StatusCode::CREATED);
    let warm: Value = client
        .post(api("/tokens"))
        .bearer_auth(&admin)
        .json(&json!({"name": "warm", "scopes": ["read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let warm = warm["data"]["token"].as_str().unwrap().to_string();
    let prefix = warm[3..11].to_string();

    let mut tasks = Vec::new();
    let mut spawn_loop = |pause: Duration, step: Box<dyn Fn(Client) -> futures_step::Step + Send + Sync>| {
        let (client, shared) = (client.clone(), shared.clone());
        tasks.push(tokio::spawn(async move {
            while !shared.stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let (what, status, expect) = step(client.clone()).await;
                shared.record(started, what, status, expect);
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        }));
    };
    for _ in 0..6 {
        let url = format!("{base}/healthz");
        spawn_loop(
            Duration::ZERO,
            Box::new(move |c| {
                let url = url.clone();
                Box::pin(async move { ("healthz", c.get(url).send().await.ok().map(|r| r.status()), StatusCode::OK) })
            }),
        );
    }
    for _ in 0..4 {
        let (url, warm) = (api("/me"), warm.clone());
        spawn_loop(
            Duration::ZERO,
            Box::new(move |c| {
                let req = c.get(&url).bearer_auth(&warm);
                Box::pin(async move { ("warm /me", req.send().await.ok().map(|r| r.status()), StatusCode::OK) })
            }),
        );
    }
    for _ in 0..2 {
        let (url, prefix) = (api("/me"), prefix.clone());
        spawn_loop(
            Duration::ZERO,
            Box::new(move |c| {
                let forged = app::tokens::server::format::generate(&prefix).expose();
                let req = c.get(&url).bearer_auth(forged);
                Box::pin(
                    async move { ("forged /me", req.send().await.ok().map(|r| r.status()), StatusCode::UNAUTHORIZED) },
                )
            }),
        );
    }
    let (tokens, admin2) = (api("/tokens"), admin.clone());
    spawn_loop(
        Duration::from_millis(250),
        Box::new(move |c| {
            let (tokens, admin) = (tokens.clone(), admin2.clone());
            Box::pin(async move {
                let made = c.post(&tokens).bearer_auth(&admin).json(&json!({"name": "ci", "scopes": ["read"]})).send();
                let Ok(made) = made.await else { return ("create token", None, StatusCode::CREATED) };
                let body: Value = made.json().await.unwrap_or_default();
                let Some(id) = body["data"]["id"].as_str() else { return ("create token", None, StatusCode::CREATED) };
                let rotated = c.post(format!("{tokens}/{id}/rotate")).bearer_auth(&admin).send().await;
                let Ok(rotated) = rotated else { return ("rotate token", None, StatusCode::CREATED) };
                let body: Value = rotated.json().await.unwrap_or_default();
                let Some(new_id) = body["data"]["id"].as_str() else {
                    return ("rotate token", None, StatusCode::CREATED);
                };
                for id in [id, new_id] {
                    let res = c.post(format!("{tokens}/{id}/revoke")).bearer_auth(&admin).send().await;
                    if res.as_ref().map(|r| r.status()).ok() != Some(StatusCode::OK) {
                        return ("revoke token", res.ok().map(|r| r.status()), StatusCode::OK);
                    }
                }
                ("create, rotate, revoke", Some(StatusCode::OK), StatusCode::OK)
            })
        }),
    );
    let leaks = api("/leaked-tokens");
    spawn_loop(
        Duration::from_secs(7),
        Box::new(move |c| {
            let forged = app::tokens::server::format::generate("zzzzzzzz").expose();
            let req = c.post(&leaks).json(&json!({"tokens": [forged], "source": "soak"}));
            Box::pin(async move { ("leak report", req.send().await.ok().map(|r| r.status()), StatusCode::ACCEPTED) })
        }),
    );
    let (import, runs, admin3) = (api("/projects/SOAK/runs/import?format=junit"), api("/projects/SOAK/runs"), admin);
    let report = junit(500);
    spawn_loop(
        Duration::from_secs(2),
        Box::new(move |c| {
            let (import, runs, admin, report) = (import.clone(), runs.clone(), admin3.clone(), report.clone());
            Box::pin(async move {
                let made = c.post(&import).bearer_auth(&admin).body(report).send().await;
                let Ok(made) = made else { return ("import", None, StatusCode::CREATED) };
                let body: Value = made.json().await.unwrap_or_default();
                let Some(id) = body["data"]["id"].as_str() else { return ("import", None, StatusCode::CREATED) };
                let res = c.delete(format!("{runs}/{id}")).bearer_auth(&admin).send().await;
                ("import, then delete the run", res.ok().map(|r| r.status()), StatusCode::NO_CONTENT)
            })
        }),
    );
    // A person signed in, looking at pages in turn.
    let person = Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = person
        .post(format!("{base}/_qh/login"))
        .form(&[("email", "owner@soak.example"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK, "sign-in");
    let pages: Vec<String> =
        ["/settings/developer/api-tokens", "/settings/audit-log", "/projects/SOAK", "/settings/members"]
            .iter()
            .map(|p| format!("{base}{p}"))
            .collect();
    {
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut turn = 0;
            while !shared.stop.load(Ordering::Relaxed) {
                let page = &pages[turn % pages.len()];
                turn += 1;
                let started = Instant::now();
                let res = person.get(page).header("accept", "text/html").send().await;
                let status = match res {
                    Ok(res) => {
                        let status = res.status();
                        let _ = res.bytes().await;
                        Some(status)
                    }
                    Err(_) => None,
                };
                shared.record(started, "a page, signed in", status, StatusCode::OK);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

mod futures_step {
    pub type Step = std::pin::Pin<
        Box<dyn std::future::Future<Output = (&'static str, Option<reqwest::StatusCode>, reqwest::StatusCode)> + Send>,
    >;
}

struct Sample {
    minute: f64,
    rss_mib: f64,
    fds: f64,
    db_mib: f64,
    requests: usize,
    p50_ms: f64,
    p99_ms: f64,
}

/// The least-squares slope of `ys` over `xs`.
fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let num: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

async fn soak(label: &str, db: &str, db_size: impl Fn() -> u64) -> bool {
    let admin = admin_token(db);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child: Child = Command::new(qahub())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("QAHUB_DATABASE_URL", db)
        .env("QAHUB_BCRYPT_COST", "4")
        .env("QAHUB_TOKEN_RATE_LIMIT", "1000000000")
        .env("QAHUB_AUTH_ATTEMPTS_PER_IP", "1000000000")
        .env("QAHUB_AUTH_ATTEMPTS_PER_PREFIX", "1000000000")
        .env("QAHUB_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/readyz")).await.map_or(true, |r| !r.status().is_success()) {
        assert!(Instant::now() < deadline, "qahub serve did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = child.id();
    let (run, every) = (env_secs("QAHUB_SOAK_SECS", 600), env_secs("QAHUB_SOAK_SAMPLE", 60));
    let shared = Arc::new(Shared::default());
    let load = tokio::spawn(traffic(base, admin, shared.clone()));
    let started = Instant::now();
    let mut samples = Vec::new();
    println!("{label}: minute   RSS MiB   fds   DB MiB   requests   p50 ms   p99 ms");
    while started.elapsed() < run {
        tokio::time::sleep(every.min(run.saturating_sub(started.elapsed())).max(Duration::from_secs(1))).await;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let rss_kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap();
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
        let mut latencies = std::mem::take(&mut *shared.latencies.lock().unwrap());
        latencies.sort_unstable();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0) as f64
                / 1000.0
        };
        let sample = Sample {
            minute: started.elapsed().as_secs_f64() / 60.0,
            rss_mib: rss_kib / 1024.0,
            fds: fds as f64,
            db_mib: db_size() as f64 / 1048576.0,
            requests: latencies.len(),
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
        };
        println!(
            "{label}: {:>6.1}   {:>7.1}   {:>3}   {:>6.1}   {:>8}   {:>6.2}   {:>6.2}",
            sample.minute, sample.rss_mib, sample.fds, sample.db_mib, sample.requests, sample.p50_ms, sample.p99_ms
        );
        samples.push(sample);
    }
    shared.stop.store(true, Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(30), load).await;
    let _ = child.kill();
    let _ = child.wait();

    let warm = &samples[1.min(samples.len() - 1)..];
    let xs: Vec<f64> = warm.iter().map(|s| s.minute).collect();
    let per_minute = |f: fn(&Sample) -> f64| slope(&xs, &warm.iter().map(f).collect::<Vec<_>>());
    let (rss, fds, db, p99) =
        (per_minute(|s| s.rss_mib), per_minute(|s| s.fds), per_minute(|s| s.db_mib), per_minute(|s| s.p99_ms));
    let failures = shared.failures.lock().unwrap().clone();
    // Fewer points than this and a pool connection opened or closed tips the line.
    let enough = warm.len() >= 5;
    if !enough {
        println!(
            "{label}: only {} samples after warm-up: too few to judge (lower QAHUB_SOAK_SAMPLE or run longer)",
            warm.len()
        );
    }
    let ok = enough && rss <= 1.0 && fds <= 1.0 && failures.is_empty();
    println!(
        "{label}: after warm-up, per minute: RSS {rss:+.2} MiB (limit +1), fds {fds:+.2} (limit +1), p99 {p99:+.2} ms, \
         database {db:+.2} MiB (not judged): {}",
        if ok { "steady" } else { "RISING or failing" }
    );
    for failure in failures {
        println!("{label}:   unexpected answer: {failure}");
    }
    ok
}

#[tokio::main]
async fn main() {
    assert!(std::path::Path::new(&qahub()).exists(), "build the release server first: cargo build --release -p server");
    let only = std::env::var("QAHUB_BENCH_ONLY").unwrap_or_default();
    let mut ok = true;
    if only != "postgres" {
        let dir = std::env::temp_dir().join(format!("qahub-soak-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("soak.db");
        let size = || {
            ["", "-wal"]
                .iter()
                .map(|s| std::fs::metadata(format!("{}{s}", file.display())).map_or(0, |m| m.len()))
                .sum()
        };
        ok &= soak("SQLite", &format!("sqlite://{}?mode=rwc", file.display()), size).await;
        let _ = std::fs::remove_dir_all(&dir);
    }
    if only != "sqlite" {
        let admin = std::env::var("QAHUB_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
            let name = format!("qahub_soak_{}", std::process::id());
            sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE \"{name}\"").as_str()).await.unwrap();
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            let url = format!("{base}/{name}");
            let size = || {
                let out = Command::new("psql")
                    .args([&admin, "-Atc", &format!("SELECT pg_database_size('{name}')")])
                    .output()
                    .ok();
                out.and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok()).unwrap_or(0)
            };
            ok &= soak("PostgreSQL", &url, size).await;
            let _ = sqlx::Executor::execute(&mut conn, format!("DROP DATABASE \"{name}\" WITH (FORCE)").as_str()).await;
        }
    }
    assert!(ok, "something kept rising, or an answer was not the expected one (above)");
}
