//! The authentication benchmark: starts the real `qahub` (release build) on loopback,
//! drives it with a load generator in this process, and prints req/s and latency for
//! `/healthz`, `/api/v1/me` warm, `/api/v1/me` with bcrypt on every request, and
//! `/api/v1/me` during a flood of wrong secrets — on SQLite and on PostgreSQL — plus cold
//! verifications per second, the target ratios, and a revocation check across two
//! instances sharing PostgreSQL.
//!
//!     cargo build --release -p server && cargo run --release -p server --example auth_bench
//!
//! Every loop is bounded in time and count; everything stays on 127.0.0.1.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Mutex;

const RUN: Duration = Duration::from_secs(5);
const WORKERS: usize = 16;
const COST: &str = "10";

fn qahub_bin() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    root.join("target/release/qahub")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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

fn cli(db: &str, args: &[&str]) -> String {
    let out = Command::new(qahub_bin())
        .args(args)
        .env("QAHUB_DATABASE_URL", db)
        .env("QAHUB_BCRYPT_COST", COST)
        .output()
        .expect("run qahub");
    assert!(out.status.success(), "qahub {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn start(db: &str, extra_env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let mut cmd = Command::new(qahub_bin());
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("QAHUB_DATABASE_URL", db)
        .env("QAHUB_BCRYPT_COST", COST)
        .env("QAHUB_TOKEN_RATE_LIMIT", "1000000000")
        .env("QAHUB_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let server = Server { child: cmd.spawn().expect("start qahub"), base: format!("http://127.0.0.1:{port}") };
    let client = Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if client.get(format!("{}/readyz", server.base)).send().await.is_ok_and(|r| r.status().is_success()) {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("qahub did not become ready");
}

#[derive(Clone, Copy, Debug)]
struct Stats {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    ok: usize,
    other: usize,
}

/// `WORKERS` loops send `GET url` (with the token, if any) for `RUN`; latencies of every
/// answer are kept.
async fn load(url: String, token: Option<String>, expect: StatusCode, run: Duration) -> Stats {
    let client = Client::builder().pool_max_idle_per_host(WORKERS * 2).build().unwrap();
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(100_000)));
    let counts = Arc::new(Mutex::new((0usize, 0usize)));
    let started = Instant::now();
    let tasks: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (client, url, token, latencies, counts) =
                (client.clone(), url.clone(), token.clone(), latencies.clone(), counts.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                let (mut ok, mut other) = (0, 0);
                while started.elapsed() < run {
                    let t = Instant::now();
                    let mut req = client.get(&url);
                    if let Some(token) = &token {
                        req = req.bearer_auth(token);
                    }
                    match req.send().await {
                        Ok(res) if res.status() == expect => {
                            let _ = res.bytes().await;
                            ok += 1;
                        }
                        Ok(res) => {
                            let _ = res.bytes().await;
                            other += 1;
                        }
                        Err(_) => other += 1,
                    }
                    mine.push(t.elapsed().as_micros() as u64);
                }
                latencies.lock().await.extend(mine);
                let mut c = counts.lock().await;
                c.0 += ok;
                c.1 += other;
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut l = latencies.lock().await.clone();
    l.sort_unstable();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1))).copied().unwrap_or(0) as f64 / 1000.0
    };
    let (ok, other) = *counts.lock().await;
    Stats { rps: ok as f64 / elapsed, p50_ms: pct(0.50), p99_ms: pct(0.99), ok, other }
}

/// Wrong secrets on a real prefix, as fast as `workers` loops can send them, until `stop`.
fn flood(base: String, prefix: String, stop: Instant) -> Vec<tokio::task::JoinHandle<usize>> {
    (0..WORKERS)
        .map(|_| {
            let (base, prefix) = (base.clone(), prefix.clone());
            tokio::spawn(async move {
                let client = Client::new();
                let mut sent = 0;
                while Instant::now() < stop {
                    let forged = app::tokens::server::format::generate(&prefix).expose();
                    let _ = client.get(format!("{base}/api/v1/me")).bearer_auth(forged).send().await;
                    sent += 1;
                }
                sent
            })
        })
        .collect()
}

fn print(name: &str, s: &Stats) {
    println!(
        "  {name:<34} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} ok, {} other)",
        s.rps, s.p50_ms, s.p99_ms, s.ok, s.other
    );
}

struct Results {
    health: Stats,
    malformed: Stats,
    warm: Stats,
    bcrypt: Stats,
    flood: Stats,
}

async fn backend(name: &str, db: String) -> Results {
    println!("\n== {name} ==");
    cli(
        &db,
        &["admin", "bootstrap", "--tenant", "Bench", "--email", "bench@example.com", "--password", "bench password 1"],
    );
    let token = cli(
        &db,
        &[
            "token",
            "create",
            "--tenant",
            "Bench",
            "--email",
            "bench@example.com",
            "--name",
            "bench",
            "--scopes",
            "read",
        ],
    );
    let prefix = token[3..11].to_string();

    let server = start(&db, &[]).await;
    let me = format!("{}/api/v1/me", server.base);
    // Warm up: the first request pays bcrypt once.
    let _ = load(me.clone(), Some(token.clone()), StatusCode::OK, Duration::from_millis(500)).await;
    let health = load(format!("{}/healthz", server.base), None, StatusCode::OK, RUN).await;
    print("/healthz (no auth)", &health);
    let malformed = load(me.clone(), Some("not-a-token".into()), StatusCode::UNAUTHORIZED, RUN).await;
    print("/api/v1/me malformed token (401)", &malformed);
    let warm = load(me.clone(), Some(token.clone()), StatusCode::OK, RUN).await;
    print("/api/v1/me warm", &warm);
    let stop = Instant::now() + RUN + Duration::from_millis(500);
    let flooders = flood(server.base.clone(), prefix, stop);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let during = load(me.clone(), Some(token.clone()), StatusCode::OK, RUN).await;
    let mut wrong = 0;
    for f in flooders {
        wrong += f.await.unwrap();
    }
    print("/api/v1/me during a wrong-secret flood", &during);
    println!("  {:<34} {:>9.0} req/s of wrong secrets", "  (the flood)", wrong as f64 / RUN.as_secs_f64());
    drop(server);

    let no_cache = start(
        &db,
        &[
            ("QAHUB_NO_VERIFIED_CACHE", "true"),
            ("QAHUB_AUTH_ATTEMPTS_PER_PREFIX", "1000000000"),
            ("QAHUB_AUTH_ATTEMPTS_PER_IP", "1000000000"),
        ],
    )
    .await;
    let bcrypt = load(format!("{}/api/v1/me", no_cache.base), Some(token), StatusCode::OK, RUN).await;
    print("/api/v1/me bcrypt every time", &bcrypt);
    Results { health, malformed, warm, bcrypt, flood: during }
}

/// After a revoke returns on A, B must refuse the token: two instances on one
/// PostgreSQL, or (`b` = None) the same SQLite instance, whose warm copy must not outlive it.
async fn revocations(db: &str, count: usize, two_instances: bool) -> (usize, usize) {
    // 1000 fresh tokens each cost one bcrypt attempt from this address: lift that limit.
    let env = [
        ("QAHUB_BCRYPT_COST", "4"),
        ("QAHUB_AUTH_ATTEMPTS_PER_IP", "1000000"),
        ("QAHUB_AUTH_ATTEMPTS_PER_PREFIX", "1000000"),
    ];
    let a = start(db, &env).await;
    let second = if two_instances { Some(start(db, &env).await) } else { None };
    let b = second.as_ref().unwrap_or(&a);
    let admin = cli(
        db,
        &[
            "token",
            "create",
            "--tenant",
            "Bench",
            "--email",
            "bench@example.com",
            "--name",
            "revoker",
            "--scopes",
            "admin",
        ],
    );
    let client = Client::new();
    let (mut accepted_after, mut checked) = (0, 0);
    for i in 0..count {
        let created: Value = client
            .post(format!("{}/api/v1/tokens", a.base))
            .bearer_auth(&admin)
            .json(&json!({"name": format!("r{i}"), "scopes": ["read"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (id, token) = (created["data"]["id"].as_str().unwrap(), created["data"]["token"].as_str().unwrap());
        // Warm B's caches (and, on SQLite, its copy of the row), then revoke through A.
        for _ in 0..3 {
            let warm = client.get(format!("{}/api/v1/me", b.base)).bearer_auth(token).send().await.unwrap();
            assert_eq!(warm.status(), StatusCode::OK);
        }
        let revoked =
            client.post(format!("{}/api/v1/tokens/{id}/revoke", a.base)).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(revoked.status(), StatusCode::OK);
        let after = client.get(format!("{}/api/v1/me", b.base)).bearer_auth(token).send().await.unwrap();
        checked += 1;
        if after.status() != StatusCode::UNAUTHORIZED {
            accepted_after += 1;
        }
    }
    (checked, accepted_after)
}

fn bcrypt_ms() -> f64 {
    let hash = bcrypt::non_truncating_hash("x".repeat(40), 10).unwrap();
    let runs = 10;
    let t = Instant::now();
    for _ in 0..runs {
        let _ = bcrypt::non_truncating_verify("x".repeat(40), &hash);
    }
    t.elapsed().as_secs_f64() * 1000.0 / runs as f64
}

#[tokio::main]
async fn main() {
    assert!(qahub_bin().exists(), "build it first: cargo build --release -p server");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let one_bcrypt = bcrypt_ms();
    println!(
        "machine: {cores} cores; one bcrypt check at cost 10: {one_bcrypt:.1} ms; {WORKERS} client loops, {} s per run",
        RUN.as_secs()
    );

    let dir = std::env::temp_dir().join(format!("qahub-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite_url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let sqlite = backend("SQLite", sqlite_url.clone()).await;
    println!("\n== revocation on one SQLite instance (its warm in-memory copy) ==");
    let (sqlite_checked, sqlite_accepted) = revocations(&sqlite_url, 1000, false).await;
    println!("  {sqlite_checked} revocations; requests accepted after a revoke returned: {sqlite_accepted}");

    let admin_url =
        std::env::var("QAHUB_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("qahub_bench_{}", std::process::id());
    use sqlx::{Connection, Executor};
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("PostgreSQL for the benchmark");
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
    let pg_url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    let pg = backend("PostgreSQL", pg_url.clone()).await;
    println!("\n== revocation across two instances on PostgreSQL ==");
    let (checked, accepted) = revocations(&pg_url, 1000, true).await;
    println!("  {checked} revocations; requests accepted after a revoke returned: {accepted}");
    admin.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str()).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let cold_target = 0.9 * cores as f64 / (one_bcrypt / 1000.0);
    println!("\n== targets ==");
    for (name, r, warm_target) in [("SQLite", &sqlite, 0.85), ("PostgreSQL", &pg, 0.35)] {
        println!("  {name}: malformed-token 401 / unauthenticated = {:.2}", r.malformed.rps / r.health.rps);
        let ratio = r.warm.rps / r.health.rps;
        println!(
            "  {name}: warm / unauthenticated = {ratio:.2} (target ≥ {warm_target}) {}",
            verdict(ratio >= warm_target)
        );
        let speedup = r.warm.rps / r.bcrypt.rps;
        println!("  {name}: warm / bcrypt-every-time = {speedup:.0}× (target ≥ 1000×) {}", verdict(speedup >= 1000.0));
        let kept = r.flood.rps / r.warm.rps;
        println!(
            "  {name}: good traffic during flood = {kept:.2} of its rate (target ≥ 0.5), p99 {:.2} ms (target < 20) {}",
            r.flood.p99_ms,
            verdict(kept >= 0.5 && r.flood.p99_ms < 20.0)
        );
        println!(
            "  {name}: cold verifications = {:.1}/s (target ≥ 0.9 × {cores} cores ÷ {one_bcrypt:.1} ms = {cold_target:.1}/s) {}",
            r.bcrypt.rps,
            verdict(r.bcrypt.rps >= cold_target)
        );
    }
    println!("  revocation: {accepted} accepted after revoke over {checked} (target 0) {}", verdict(accepted == 0));
    println!(
        "  SQLite revocation with the warm copy: {sqlite_accepted} accepted after revoke over {sqlite_checked} (target 0) {}",
        verdict(sqlite_accepted == 0)
    );
}

fn verdict(met: bool) -> &'static str {
    if met {
        "MET"
    } else {
        "NOT MET"
    }
}
