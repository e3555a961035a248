//! Steady traffic for a while, nobody scraping `/metrics` (most installs): does anything
//! the server holds keep rising? Starts the release `qahub` on loopback (a SQLite file,
//! then a fresh PostgreSQL database when one answers) and drives it from this process:
//!
//! - `/healthz`, `/api/v1/me` with a warm token, and `/api/v1/me` with forged secrets;
//! - a person signed in viewing pages (tokens, audit log, a project's runs, members) every 200 ms;
//! - a token created, rotated and both revoked every 250 ms, a leak report every 7 s (10 a minute from
//!   one address are allowed);
//! - a small JUnit import every 2 s, whose run is deleted straight after;
//! - a CI job's OIDC exchange every second (a local issuer in this process signs GitHub-like
//!   ID tokens with the test key in `tests/fixtures/oidc`), its minted token used once.
//!
//! Every `QAHUB_SOAK_SAMPLE` seconds (default 60) it samples the server's resident memory,
//! open file descriptors, database size, the database pool's connections (open, and busy
//! on PostgreSQL, from `pg_stat_activity`; on SQLite the server's descriptors of the
//! database file), the rows that traffic leaves behind and must not keep (results of
//! deleted runs, imports, leak reports still waiting) and the interval's p50/p99 latency. After the
//! first sample (warm-up) it fits a line (at least 5 samples after it, or no verdict) through each and fails when resident memory rises
//! by more than 1 MiB a minute (the unscraped-metrics leak this guards against was ~20 MiB
//! a minute at this traffic; allocator noise is well under 1), file descriptors or open
//! pool connections by more than 1 a minute, or the rows left behind by more than 10 a
//! minute (a cleanup that stopped leaves ~250 results a second). The database grows with
//! the tokens and audit rows made, which are kept by design; its slope is printed, not
//! judged, and latency's slope is printed beside it.
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

/// A local OIDC issuer: a discovery document and a JWKS with the test RSA key.
mod issuer {
    use axum::{extract::State, routing::get, Json, Router};
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    use serde_json::{json, Value};

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/tests/fixtures/oidc/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    pub struct Issuer {
        pub url: String,
        key: EncodingKey,
    }

    impl Issuer {
        pub async fn start() -> Issuer {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
            let jwk: Value = serde_json::from_str(&fixture("rsa1.jwk.json")).unwrap();
            let app = Router::new()
                .route(
                    "/.well-known/openid-configuration",
                    get(|State((url, _)): State<(String, Value)>| async move {
                        Json(json!({"issuer": url, "jwks_uri": format!("{url}/jwks"),
                            "id_token_signing_alg_values_supported": ["RS256"]}))
                    }),
                )
                .route(
                    "/jwks",
                    get(|State((_, jwk)): State<(String, Value)>| async move {
                        ([("cache-control", "max-age=3600")], Json(json!({ "keys": [jwk] })))
                    }),
                )
                .with_state((url.clone(), jwk));
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            Issuer { url, key: EncodingKey::from_rsa_pem(fixture("rsa1.pem").as_bytes()).unwrap() }
        }

        /// A GitHub Actions-like ID token for run `run`, valid five minutes.
        pub fn id_token(&self, audience: &str, run: u64) -> String {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            let claims = json!({
                "jti": format!("soak-{run}-{}", uuid::Uuid::new_v4()), "sub": "repo:soak/app:ref:refs/heads/main",
                "aud": audience, "ref": "refs/heads/main", "repository": "soak/app", "repository_owner": "soak",
                "run_id": run.to_string(), "workflow": "CI", "event_name": "push", "ref_type": "branch",
                "iss": self.url, "nbf": now - 5, "iat": now - 5, "exp": now + 300,
            });
            encode(&Header { kid: Some("rsa1".into()), ..Header::new(Algorithm::RS256) }, &claims, &self.key).unwrap()
        }
    }
}

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
        "--owner",
        "workspace",
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
    let (import, runs, admin3) =
        (api("/projects/SOAK/runs/import?format=junit"), api("/projects/SOAK/runs"), admin.clone());
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
    // CI jobs exchanging their ID tokens under a trust policy (the admin token is the
    // workspace's: a policy mints workspace tokens).
    let issuer = Arc::new(issuer::Issuer::start().await);
    let policy = json!({
        "name": "soak main", "issuer": issuer.url, "audience": "https://soak.test",
        "conditions": {"repository": "soak/app", "ref": "refs/heads/*"},
        "projects": ["SOAK"], "scopes": ["write"], "token_lifetime_minutes": 10,
    });
    let made = client.post(api("/trust-policies")).bearer_auth(&admin).json(&policy).send().await.unwrap();
    assert_eq!(made.status(), StatusCode::CREATED, "trust policy: {}", made.text().await.unwrap_or_default());
    let (exchange, me) = (api("/oidc/token"), api("/me"));
    let runs = Arc::new(std::sync::atomic::AtomicU64::new(0));
    spawn_loop(
        Duration::from_secs(1),
        Box::new(move |c| {
            let run = runs.fetch_add(1, Ordering::Relaxed);
            let id_token = issuer.id_token("https://soak.test", run);
            let (exchange, me) = (exchange.clone(), me.clone());
            Box::pin(async move {
                let res = c.post(&exchange).json(&json!({ "id_token": id_token })).send().await;
                let Ok(res) = res else { return ("OIDC exchange", None, StatusCode::CREATED) };
                if res.status() != StatusCode::CREATED {
                    return ("OIDC exchange", Some(res.status()), StatusCode::CREATED);
                }
                let body: Value = res.json().await.unwrap_or_default();
                let Some(minted) = body["data"]["token"].as_str() else {
                    return ("OIDC exchange", None, StatusCode::CREATED);
                };
                let used = c.get(&me).bearer_auth(minted).send().await;
                ("OIDC exchange, then /me", used.ok().map(|r| r.status()), StatusCode::OK)
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
    pool_open: f64,
    pool_busy: Option<f64>,
    left_rows: f64,
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

/// The database pool's connections of process `pid`: open, and busy where it can be seen.
type PoolUse = Box<dyn Fn(u32) -> (f64, Option<f64>)>;

/// Rows that traffic leaves behind and nothing should keep: results and runs (every run is
/// deleted after its import), imports still registered, leak reports still waiting.
async fn left_rows(db: &sqlx::AnyPool) -> f64 {
    let sql = "SELECT (SELECT COUNT(*) FROM results) + (SELECT COUNT(*) FROM runs) \
               + (SELECT COUNT(*) FROM imports) + (SELECT COUNT(*) FROM leak_reports)";
    sqlx::query_scalar::<_, i64>(sql).fetch_one(db).await.map_or(f64::NAN, |n| n as f64)
}

async fn soak(label: &str, db: &str, db_size: impl Fn() -> u64, pool_use: PoolUse) -> bool {
    let admin = admin_token(db);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child: Child = Command::new(qahub())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("QAHUB_DATABASE_URL", db)
        .env("QAHUB_BCRYPT_COST", "4")
        .env("QAHUB_SKIP_SITE_CHECK", "true")
        .env("QAHUB_TOKEN_RATE_LIMIT", "1000000000")
        .env("QAHUB_AUTH_ATTEMPTS_PER_IP", "1000000000")
        .env("QAHUB_AUTH_ATTEMPTS_PER_PREFIX", "1000000000")
        .env("QAHUB_LOG", "error")
        .env("QAHUB_OIDC_INSECURE_LOOPBACK", "true")
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
    sqlx::any::install_default_drivers();
    let probe = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&probe_url(db)).await.unwrap();
    println!("{label}: minute   RSS MiB   fds   DB MiB   pool open/busy   rows left   requests   p50 ms   p99 ms");
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
        let (pool_open, pool_busy) = pool_use(pid);
        let sample = Sample {
            minute: started.elapsed().as_secs_f64() / 60.0,
            rss_mib: rss_kib / 1024.0,
            fds: fds as f64,
            db_mib: db_size() as f64 / 1048576.0,
            pool_open,
            pool_busy,
            left_rows: left_rows(&probe).await,
            requests: latencies.len(),
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
        };
        let busy = sample.pool_busy.map_or("-".to_string(), |b| format!("{b:.0}"));
        println!(
            "{label}: {:>6.1}   {:>7.1}   {:>3}   {:>6.1}   {:>9.0}/{:<4}   {:>9}   {:>8}   {:>6.2}   {:>6.2}",
            sample.minute,
            sample.rss_mib,
            sample.fds,
            sample.db_mib,
            sample.pool_open,
            busy,
            sample.left_rows,
            sample.requests,
            sample.p50_ms,
            sample.p99_ms
        );
        samples.push(sample);
        if load.is_finished() {
            shared.failures.lock().unwrap().push("the traffic stopped early (its panic is above)".into());
            break;
        }
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
    let (pool, left) = (per_minute(|s| s.pool_open), per_minute(|s| s.left_rows));
    probe.close().await;
    let failures = shared.failures.lock().unwrap().clone();
    // Fewer points than this and a pool connection opened or closed tips the line.
    let enough = warm.len() >= 5;
    if !enough {
        println!(
            "{label}: only {} samples after warm-up: too few to judge (lower QAHUB_SOAK_SAMPLE or run longer)",
            warm.len()
        );
    }
    let ok = enough && rss <= 1.0 && fds <= 1.0 && pool <= 1.0 && left <= 10.0 && failures.is_empty();
    println!(
        "{label}: after warm-up, per minute: RSS {rss:+.2} MiB (limit +1), fds {fds:+.2} (limit +1), \
         pool {pool:+.2} (limit +1), rows left {left:+.1} (limit +10), p99 {p99:+.2} ms and database {db:+.2} MiB \
         (not judged): {}",
        if ok { "steady" } else { "RISING or failing" }
    );
    for failure in failures {
        println!("{label}:   unexpected answer: {failure}");
    }
    ok
}

/// The soak's own connection, named so that PostgreSQL's pool count leaves it out.
fn probe_url(db: &str) -> String {
    if db.starts_with("postgres") {
        format!("{db}?application_name=qahub-soak")
    } else {
        db.to_string()
    }
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
        let path = file.clone();
        let pool_use: PoolUse = Box::new(move |pid| {
            let open = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| {
                d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok()).filter(|l| *l == path).count()
            });
            (open as f64, None)
        });
        ok &= soak("SQLite", &format!("sqlite://{}?mode=rwc", file.display()), size, pool_use).await;
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
            let (admin2, name2) = (admin.clone(), name.clone());
            let pool_use: PoolUse = Box::new(move |_| {
                let sql = format!(
                    "SELECT COUNT(*) || ' ' || COUNT(*) FILTER (WHERE state <> 'idle') FROM pg_stat_activity \
                     WHERE datname = '{name2}' AND application_name <> 'qahub-soak'"
                );
                let out = Command::new("psql").args([&admin2, "-Atc", &sql]).output().ok();
                let text = out.and_then(|o| String::from_utf8(o.stdout).ok()).unwrap_or_default();
                let mut n = text.split_whitespace().map(|v| v.parse::<f64>().unwrap_or(f64::NAN));
                (n.next().unwrap_or(f64::NAN), n.next())
            });
            ok &= soak("PostgreSQL", &url, size, pool_use).await;
            let _ = sqlx::Executor::execute(&mut conn, format!("DROP DATABASE \"{name}\" WITH (FORCE)").as_str()).await;
        }
    }
    assert!(ok, "something kept rising, or an answer was not the expected one (above)");
}
