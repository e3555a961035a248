//! The run page with 20 000 results: imports one report of 20 000 tests (2 000 failures,
//! 800 errors) into a fresh hub (in-process, SQLite file, then PostgreSQL when it answers)
//! and times the server render of the run page as a signed-in person reads it — the first
//! page (failed first), a page deep in the passed tests, an outcome filter and a title
//! search — 20 times each, printing the median and the slowest. Every page must hold 50
//! results: the render stays paged however large the run.
//!
//!     cargo run --release -p server --example run_page_bench
//!
//! Bounded: 4 pages × 20 renders per database; everything on 127.0.0.1.

use std::time::{Duration, Instant};

use app::state::Settings;
use server::{Application, Config};

const TESTS: usize = 20_000;
const ROUNDS: usize = 20;

fn report() -> Vec<u8> {
    let mut xml = String::from("<testsuites><testsuite name=\"big\">");
    for i in 0..TESTS {
        let body = if i % 25 == 0 {
            "<error message=\"fixture exploded\">Traceback (most recent call last): …</error>"
        } else if i % 10 == 0 {
            "<failure message=\"expected 1, got 2\">assert 1 == 2</failure>"
        } else {
            ""
        };
        xml.push_str(&format!(
            "<testcase classname=\"suite.module{}\" name=\"test case {i:05}\" time=\"0.012\">{body}</testcase>",
            i % 40
        ));
    }
    xml.push_str("</testsuite></testsuites>");
    xml.into_bytes()
}

async fn bench(label: &str, database_url: String) {
    let settings = Settings { bcrypt_cost: 4, login_attempts_per_minute: 1000, ..Settings::default() };
    let app = Application::build(Config::plain(database_url, "127.0.0.1:0".parse().unwrap(), settings)).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    let owner = app::people::server::service::bootstrap(
        &state,
        app::people::server::service::NewOwner { tenant: "Bench", email: "o@example.com", password: "a long password" },
    )
    .await
    .unwrap();
    let req: app::tokens::CreateToken =
        serde_json::from_value(serde_json::json!({"name": "ci", "scopes": ["admin"]})).unwrap();
    let actor = app::actor::Actor::User(owner);
    let token = app::tokens::server::lifecycle::create(&state, &actor, &Default::default(), req).await.unwrap().token;
    let http = reqwest::Client::builder().cookie_store(true).build().unwrap();
    http.post(format!("{base}/api/v1/projects"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"key": "BIG", "name": "Big"}))
        .send()
        .await
        .unwrap();
    let body = report();
    let started = Instant::now();
    let res = http
        .post(format!("{base}/api/v1/projects/BIG/runs/import?format=junit"))
        .bearer_auth(&token)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let import = started.elapsed();
    assert_eq!(res.status(), 201);
    let run: serde_json::Value = res.json().await.unwrap();
    let id = run["data"]["id"].as_str().unwrap().to_string();
    let login = http
        .post(format!("{base}/_qh/login"))
        .form(&[("email", "o@example.com"), ("password", "a long password")])
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success());
    println!(
        "\n== {label} ==  import of {TESTS} results ({:.1} MB JUnit): {:.2} s",
        body.len() as f64 / 1e6,
        import.as_secs_f64()
    );
    let page = format!("{base}/projects/BIG/runs/{id}");
    for (what, url) in [
        ("first page (failed first)", page.clone()),
        ("page 300 (passed tests)", format!("{page}?page=300")),
        ("outcome filter: errors", format!("{page}?status=error")),
        ("title search", format!("{page}?q=case%2012345")),
    ] {
        let mut times = Vec::with_capacity(ROUNDS);
        let mut rows = 0;
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let html = http.get(&url).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
            times.push(t.elapsed());
            rows = html.matches("<tr class=\"result-").count();
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "  {what:<28} median {:7.1} ms   slowest {:7.1} ms   ({rows} rows rendered)",
            ms(times[ROUNDS / 2]),
            ms(times[ROUNDS - 1])
        );
        assert!(rows <= 50, "the render stays paged");
    }
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("qahub-run-page-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    bench("SQLite", format!("sqlite://{}?mode=rwc", dir.join("bench.db").display())).await;
    let admin =
        std::env::var("QAHUB_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
        let name = format!("qahub_bench_{}", std::process::id());
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE \"{name}\"").as_str()).await.unwrap();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        bench("PostgreSQL", format!("{base}/{name}")).await;
        let _ = sqlx::Executor::execute(&mut conn, format!("DROP DATABASE \"{name}\" WITH (FORCE)").as_str()).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
