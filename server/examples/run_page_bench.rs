//! The run page of a monorepo's run: imports one JUnit report of 200 000 tests (4 000
//! failures, 1 600 errors; `QAHUB_BENCH_TESTS` for another size) into a fresh hub
//! (in-process, SQLite file, then PostgreSQL when it answers) and times the server render
//! of the run page as a signed-in person reads it — the first page (failed first), an
//! outcome filter, a title search, twenty "Next →" clicks in a row and a page three
//! quarters of the way in (in the passed tests) — printing the median and the slowest.
//! Every page must hold at most 50 results: the render stays paged however large the run.
//! The deep page is asked for both ways (`page=` for the offset pager of old, `after=`
//! for the keyset one), so the same bench measures either version of the server.
//!
//!     cargo run --release -p server --example run_page_bench
//!
//! Bounded: 5 measures × 20 renders per database; everything on 127.0.0.1.

use std::time::{Duration, Instant};

use app::state::Settings;
use server::{Application, Config};

const ROUNDS: usize = 20;

fn tests() -> usize {
    std::env::var("QAHUB_BENCH_TESTS").ok().and_then(|n| n.parse().ok()).unwrap_or(200_000)
}

/// The href of the pager's "Next →" link, unescaped.
fn next_link(html: &str) -> Option<String> {
    let end = html.find(">Next →</a>")?;
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    let href = &html[start..end];
    Some(href[..href.find('"')?].replace("&amp;", "&"))
}

fn report() -> Vec<u8> {
    let mut xml = String::from("<testsuites><testsuite name=\"big\">");
    for i in 0..tests() {
        let body = if i % 125 == 7 {
            "<error message=\"fixture exploded\">Traceback (most recent call last): …</error>"
        } else if i % 50 == 0 {
            "<failure message=\"expected 1, got 2\">assert 1 == 2</failure>"
        } else {
            ""
        };
        xml.push_str(&format!(
            "<testcase classname=\"suite.module{}\" name=\"test case {i:06}\" time=\"0.012\">{body}</testcase>",
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
        "\n== {label} ==  import of {} results ({:.1} MB JUnit): {:.2} s",
        tests(),
        body.len() as f64 / 1e6,
        import.as_secs_f64()
    );
    let page = format!("{base}/projects/BIG/runs/{id}");
    let get = |url: String| {
        let http = http.clone();
        async move {
            let t = Instant::now();
            let html = http.get(&url).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
            (t.elapsed(), html)
        }
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let report_line = |what: &str, mut times: Vec<Duration>, rows: usize| {
        times.sort();
        println!(
            "  {what:<34} median {:7.1} ms   slowest {:7.1} ms   ({rows} rows rendered)",
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1])
        );
        assert!(rows <= 50, "the render stays paged");
    };
    // Three quarters in, among the passed tests: page 3000 of the offset pager, the
    // keyset cursor after the passed result at that place.
    let deep_seq = tests() * 3 / 4;
    let deep_page = deep_seq / 50;
    for (what, url) in [
        ("first page (failed first)", page.clone()),
        ("outcome filter: errors", format!("{page}?status=error")),
        ("title search (one test)", format!("{page}?q=case%20123457")),
        (
            &*format!("deep page ({deep_page} of {})", tests().div_ceil(50)),
            format!("{page}?page={deep_page}&after=3.{deep_seq}"),
        ),
    ] {
        let mut times = Vec::with_capacity(ROUNDS);
        let mut rows = 0;
        for _ in 0..ROUNDS {
            let (took, html) = get(url.clone()).await;
            times.push(took);
            rows = html.matches("<tr class=\"result-").count();
        }
        report_line(what, times, rows);
    }
    // "Next →" twenty times from the first page, each link taken from the page before.
    let (_, mut html) = get(page.clone()).await;
    let mut times = Vec::with_capacity(ROUNDS);
    let mut rows = 0;
    for _ in 0..ROUNDS {
        let href = next_link(&html).expect("a next page");
        let (took, next) = get(format!("{base}{href}")).await;
        times.push(took);
        rows = next.matches("<tr class=\"result-").count();
        html = next;
    }
    report_line("\"Next →\" ×20 from the first page", times, rows);
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
