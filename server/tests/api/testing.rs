//! Cases, runs, results and report import over HTTP, with real reports as fixtures:
//! this repository's own Playwright run (JSON reporter) and a pytest JUnit file.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    helpers::{Api, TestApp},
    on_both_databases,
};

const PLAYWRIGHT: &[u8] = include_bytes!("../fixtures/playwright-report.json");
const JUNIT: &[u8] = include_bytes!("../fixtures/pytest-junit.xml");

async fn import(app: &TestApp, token: &str, key: &str, format: &str, body: &[u8]) -> Api {
    let res = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/projects/{key}/runs/import?format={format}")))
        .bearer_auth(token)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    Api { status, headers, body: res.json().await.unwrap_or(Value::Null) }
}

/// Tests and summed durations in a Playwright report, computed independently of the importer.
fn playwright_expectations() -> (u64, u64) {
    fn walk(suite: &Value, n: &mut u64, ms: &mut u64) {
        for spec in suite["specs"].as_array().into_iter().flatten() {
            for test in spec["tests"].as_array().unwrap() {
                *n += 1;
                let sum: f64 =
                    test["results"].as_array().unwrap().iter().map(|r| r["duration"].as_f64().unwrap()).sum();
                *ms += sum.round() as u64;
            }
        }
        for child in suite["suites"].as_array().into_iter().flatten() {
            walk(child, n, ms);
        }
    }
    let report: Value = serde_json::from_slice(PLAYWRIGHT).unwrap();
    let (mut n, mut ms) = (0, 0);
    for suite in report["suites"].as_array().unwrap() {
        walk(suite, &mut n, &mut ms);
    }
    assert_eq!(n, report["stats"]["expected"].as_u64().unwrap(), "the fixture's own count");
    (n, ms)
}

async fn setup(app: &TestApp) -> (String, String) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    for key in ["WEB", "API"] {
        let res = app.api("POST", "/projects", Some(&admin), Some(json!({"key": key, "name": key}))).await;
        assert_eq!(res.status, StatusCode::CREATED);
    }
    let reader = app.token(&owner, json!({"name": "reader", "scopes": ["read"]})).await.token;
    (admin, reader)
}

async fn real_reports_import_with_counts_statuses_and_durations(app: TestApp) {
    let (admin, _) = setup(&app).await;
    let (tests, duration) = playwright_expectations();
    let res = import(&app, &admin, "WEB", "playwright", PLAYWRIGHT).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let run = &res.body["data"];
    assert_eq!(run["source"], "playwright");
    assert_eq!(run["status"], "passed");
    assert_eq!(run["counts"], json!({"total": tests, "passed": tests, "failed": 0, "skipped": 0, "error": 0}));
    assert_eq!(run["duration_ms"], duration);

    // Importing again matches the cases by title instead of making new ones.
    let cases = app.api("GET", "/projects/WEB/cases?limit=200", Some(&admin), None).await;
    assert_eq!(cases.body["data"].as_array().unwrap().len() as u64, tests);
    import(&app, &admin, "WEB", "playwright", PLAYWRIGHT).await;
    let cases = app.api("GET", "/projects/WEB/cases?limit=200", Some(&admin), None).await;
    assert_eq!(cases.body["data"].as_array().unwrap().len() as u64, tests);
    let titles: Vec<&str> =
        cases.body["data"].as_array().unwrap().iter().map(|c| c["title"].as_str().unwrap()).collect();
    assert!(
        titles.iter().any(|t| t.starts_with("foundation.spec.ts › first run") && t.ends_with("[hydrated]")),
        "{titles:?}"
    );

    let res = import(&app, &admin, "API", "junit", JUNIT).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let run = &res.body["data"];
    assert_eq!(run["source"], "junit");
    assert_eq!(run["status"], "failed");
    assert_eq!(run["counts"], json!({"total": 5, "passed": 2, "failed": 1, "skipped": 1, "error": 1}));
    assert_eq!(run["duration_ms"], 23, "22 ms + 1 ms + zeros, from the file's time attributes");
    let id = run["id"].as_str().unwrap();
    let results = app.api("GET", &format!("/projects/API/runs/{id}/results"), Some(&admin), None).await;
    let rows = results.body["data"].as_array().unwrap();
    let failed = rows.iter().find(|r| r["status"] == "failed").unwrap();
    assert_eq!(failed["case_title"], "test_sample.TestCheckout › test_applies_discount");
    assert!(failed["message"].as_str().unwrap().contains("discount should be 10%"));
    let skipped = rows.iter().find(|r| r["status"] == "skipped").unwrap();
    assert_eq!(skipped["message"], "payment sandbox is down");

    // Filters: runs by status.
    let failed_runs = app.api("GET", "/projects/API/runs?status=failed", Some(&admin), None).await;
    assert_eq!(failed_runs.body["data"].as_array().unwrap().len(), 1);
    let passed_runs = app.api("GET", "/projects/API/runs?status=passed", Some(&admin), None).await;
    assert_eq!(passed_runs.body["data"], json!([]));
}

async fn bad_imports_get_clear_answers(app: TestApp) {
    let (admin, reader) = setup(&app).await;
    for (format, body, needle) in [
        ("junit", &b"<testsuite><testcase name=\"a\"></testsuite>"[..], "XML"),
        ("junit", &b"{\"suites\": []}"[..], "JUnit"),
        ("playwright", &b"<testsuites/>"[..], "Playwright"),
        ("playwright", &b"{\"suites\": []}"[..], "no test results"),
        ("cucumber", &b"{}"[..], "Unknown format"),
    ] {
        let res = import(&app, &admin, "WEB", format, body).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{format}: {}", res.body);
        assert_eq!(res.error_code(), "invalid_request");
        assert!(res.body["error"]["message"].as_str().unwrap().contains(needle), "{}", res.body);
    }
    assert_eq!(import(&app, &reader, "WEB", "junit", JUNIT).await.error_code(), "insufficient_scope");
    assert_eq!(import(&app, &admin, "NOPE", "junit", JUNIT).await.status, StatusCode::NOT_FOUND);
    let runs = app.api("GET", "/projects/WEB/runs", Some(&admin), None).await;
    assert_eq!(runs.body["data"], json!([]), "nothing half-imported");
}

async fn cases_runs_and_results_by_hand(app: TestApp) {
    let (admin, reader) = setup(&app).await;
    let res = app
        .api("POST", "/projects/WEB/cases", Some(&admin), Some(json!({"title": " Login works ", "description": "d"})))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let case_id = res.body["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(res.body["data"]["title"], "Login works");
    let dup = app.api("POST", "/projects/WEB/cases", Some(&admin), Some(json!({"title": "Login works"}))).await;
    assert_eq!((dup.status, dup.error_code()), (StatusCode::CONFLICT, "conflict"));
    let bad = app.api("POST", "/projects/WEB/cases", Some(&admin), Some(json!({"title": "  "}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let res = app
        .api(
            "PATCH",
            &format!("/projects/WEB/cases/{case_id}"),
            Some(&admin),
            Some(json!({"title": "Login still works"})),
        )
        .await;
    assert_eq!(res.body["data"]["title"], "Login still works");
    // Another project's path does not reach the case.
    let res = app.api("GET", &format!("/projects/API/cases/{case_id}"), Some(&admin), None).await;
    assert_eq!((res.status, res.error_code()), (StatusCode::NOT_FOUND, "not_found"));

    let res = app.api("POST", "/projects/WEB/runs", Some(&admin), Some(json!({"name": "nightly"}))).await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(res.body["data"]["status"], "open");
    let run_id = res.body["data"]["id"].as_str().unwrap().to_string();
    let batch = json!({"results": [
        {"case_id": case_id, "status": "passed", "duration_ms": 120},
        {"title": "Checkout works", "status": "failed", "duration_ms": 80, "message": "500 from /pay"},
    ]});
    let res = app.api("POST", &format!("/projects/WEB/runs/{run_id}/results"), Some(&admin), Some(batch)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["data"]["counts"]["total"], 2);
    assert_eq!(res.body["data"]["duration_ms"], 200);
    let bad_batch = json!({"results": [{"case_id": "nope", "status": "passed"}]});
    let res = app.api("POST", &format!("/projects/WEB/runs/{run_id}/results"), Some(&admin), Some(bad_batch)).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.body["error"]["message"].as_str().unwrap().starts_with("results[0]"));
    let res = app
        .api("POST", &format!("/projects/WEB/runs/{run_id}/results"), Some(&admin), Some(json!({"results": []})))
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let res = app
        .api("POST", &format!("/projects/WEB/runs/{run_id}/results"), Some(&reader), Some(json!({"results": []})))
        .await;
    assert_eq!(res.error_code(), "insufficient_scope");

    // Results page with a cursor.
    let page1 = app.api("GET", &format!("/projects/WEB/runs/{run_id}/results?limit=1"), Some(&reader), None).await;
    assert_eq!(page1.body["data"].as_array().unwrap().len(), 1);
    let cursor = page1.body["next_cursor"].as_str().unwrap();
    let page2 = app
        .api("GET", &format!("/projects/WEB/runs/{run_id}/results?limit=1&cursor={cursor}"), Some(&reader), None)
        .await;
    assert_eq!(page2.body["data"][0]["case_title"], "Checkout works");

    let res = app
        .api("PATCH", &format!("/projects/WEB/runs/{run_id}"), Some(&admin), Some(json!({"status": "failed"})))
        .await;
    assert_eq!(res.body["data"]["status"], "failed");
    let res =
        app.api("PATCH", &format!("/projects/WEB/runs/{run_id}"), Some(&admin), Some(json!({"status": "weird"}))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let res = app.api("GET", "/projects/WEB/runs?status=weird", Some(&admin), None).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.api("DELETE", &format!("/projects/WEB/runs/{run_id}"), Some(&admin), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.api("GET", &format!("/projects/WEB/runs/{run_id}"), Some(&admin), None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.api("DELETE", &format!("/projects/WEB/cases/{case_id}"), Some(&admin), None).await.status,
        StatusCode::NO_CONTENT
    );
}

async fn project_tokens_and_other_tenants_see_nothing_nested(app: TestApp) {
    let (admin, _) = setup(&app).await;
    let owner = app::people::server::service::member_of(&app.state, "Acme", "owner@example.com").await.unwrap();
    let web_only = app.token(&owner, json!({"name": "web", "scopes": ["write"], "projects": ["WEB"]})).await.token;
    let res = import(&app, &admin, "API", "junit", JUNIT).await;
    let run_id = res.body["data"]["id"].as_str().unwrap().to_string();
    let other = app.bootstrap("Globex", "g@example.com").await;
    let stranger = app.token(&other, json!({"name": "g", "scopes": ["admin"]})).await.token;
    for token in [&web_only, &stranger] {
        for path in [
            "/projects/API/cases".to_string(),
            "/projects/API/runs".to_string(),
            format!("/projects/API/runs/{run_id}"),
            format!("/projects/API/runs/{run_id}/results"),
        ] {
            let res = app.api("GET", &path, Some(token), None).await;
            assert_eq!((res.status, res.error_code()), (StatusCode::NOT_FOUND, "not_found"), "{path}");
        }
        assert_eq!(import(&app, token, "API", "junit", JUNIT).await.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(import(&app, &web_only, "WEB", "junit", JUNIT).await.status, StatusCode::CREATED);
}

on_both_databases!(
    real_reports_import_with_counts_statuses_and_durations,
    bad_imports_get_clear_answers,
    cases_runs_and_results_by_hand,
    project_tokens_and_other_tenants_see_nothing_nested,
);

async fn big_reports_are_bounded(app: TestApp) {
    let (admin, _) = setup(&app).await;
    // ~20 MB: 200 failures with 100 KB messages each; messages are kept, clipped.
    let mut xml = String::from("<testsuites><testsuite name=\"big\">");
    let blob = "x".repeat(100_000);
    for i in 0..200 {
        xml.push_str(&format!(
            "<testcase classname=\"big\" name=\"t{i}\" time=\"0.5\"><failure message=\"m\">{blob}</failure></testcase>"
        ));
    }
    xml.push_str("</testsuite></testsuites>");
    assert!(xml.len() > 20_000_000);
    let res = import(&app, &admin, "WEB", "junit", xml.as_bytes()).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["data"]["counts"]["failed"], 200);
    assert_eq!(res.body["data"]["duration_ms"], 100_000);

    // Past 64 MiB the server refuses before reading it all.
    let huge = vec![b' '; 65 * 1024 * 1024];
    let res = import(&app, &admin, "WEB", "junit", &huge).await;
    assert_eq!((res.status, res.error_code()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
}

on_both_databases!(big_reports_are_bounded);

/// A run's counts, read from its results by the database itself (not from the tally the
/// run's row keeps): passed, failed, skipped, error, summed duration.
async fn counted(app: &TestApp, run_id: &str) -> (i64, i64, i64, i64, i64) {
    use sqlx::Row;
    let row = sqlx::query(
        "SELECT COALESCE(SUM(CASE WHEN status = 'passed' THEN 1 ELSE 0 END), 0) AS p, \
         COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS f, \
         COALESCE(SUM(CASE WHEN status = 'skipped' THEN 1 ELSE 0 END), 0) AS s, \
         COALESCE(SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), 0) AS e, \
         CAST(COALESCE(SUM(duration_ms), 0) AS BIGINT) AS d FROM results WHERE run_id = $1",
    )
    .bind(run_id)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    let n = |c: &str| row.try_get::<i64, _>(c).unwrap();
    (n("p"), n("f"), n("s"), n("e"), n("d"))
}

fn shown(run: &Value) -> (i64, i64, i64, i64, i64) {
    let c = &run["counts"];
    let n = |v: &Value| v.as_i64().unwrap();
    assert_eq!(n(&c["total"]), n(&c["passed"]) + n(&c["failed"]) + n(&c["skipped"]) + n(&c["error"]));
    (n(&c["passed"]), n(&c["failed"]), n(&c["skipped"]), n(&c["error"]), n(&run["duration_ms"]))
}

/// The counts a run keeps on its row follow every change of its results: batches by
/// hand, an import, a failed batch (nothing), a deleted case (its results leave every run).
async fn a_runs_counts_follow_its_results(app: TestApp) {
    let (admin, _) = setup(&app).await;
    let run = app.api("POST", "/projects/WEB/runs", Some(&admin), Some(json!({"name": "nightly"}))).await;
    let run_id = run.body["data"]["id"].as_str().unwrap().to_string();
    let batch = json!({"results": [
        {"title": "a", "status": "passed", "duration_ms": 5},
        {"title": "b", "status": "failed", "duration_ms": 7, "message": "boom"},
        {"title": "c", "status": "skipped"},
        {"title": "a", "status": "error", "duration_ms": 11},
    ]});
    let res = app.api("POST", &format!("/projects/WEB/runs/{run_id}/results"), Some(&admin), Some(batch)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(shown(&res.body["data"]), (1, 1, 1, 1, 23));
    assert_eq!(counted(&app, &run_id).await, (1, 1, 1, 1, 23));
    // A batch refused half-way (its second case does not exist) adds nothing.
    let bad = json!({"results": [{"title": "d", "status": "passed"}, {"case_id": "nope", "status": "failed"}]});
    let res = app.api("POST", &format!("/projects/WEB/runs/{run_id}/results"), Some(&admin), Some(bad)).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let res = app.api("GET", &format!("/projects/WEB/runs/{run_id}"), Some(&admin), None).await;
    assert_eq!(shown(&res.body["data"]), (1, 1, 1, 1, 23));

    // An imported run with case "a" too, then case "a" deleted: it leaves both runs.
    let xml = br#"<testsuite name="s"><testcase name="a" time="0.002"/><testcase name="e" time="0.003"><failure message="x"/></testcase></testsuite>"#;
    let imported = import(&app, &admin, "WEB", "junit", xml).await;
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.body);
    let other = imported.body["data"]["id"].as_str().unwrap().to_string();
    let cases = app.api("GET", "/projects/WEB/cases?limit=100", Some(&admin), None).await;
    let ids: Vec<(String, String)> = cases.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["title"].as_str().unwrap().to_string(), c["id"].as_str().unwrap().to_string()))
        .collect();
    let a = ids.iter().filter(|(t, _)| t == "a" || t.ends_with(" a") || t.ends_with("› a")).collect::<Vec<_>>();
    assert!(!a.is_empty(), "{ids:?}");
    for (_, id) in a {
        let res = app.api("DELETE", &format!("/projects/WEB/cases/{id}"), Some(&admin), None).await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
    }
    for run in [&run_id, &other] {
        let res = app.api("GET", &format!("/projects/WEB/runs/{run}"), Some(&admin), None).await;
        assert_eq!(shown(&res.body["data"]), counted(&app, run).await, "{run}");
    }
    let res = app.api("GET", &format!("/projects/WEB/runs/{run_id}"), Some(&admin), None).await;
    assert_eq!(shown(&res.body["data"]), (0, 1, 1, 0, 7), "a's passed and error results left");
    // The list of runs shows the same counts.
    let list = app.api("GET", "/projects/WEB/runs", Some(&admin), None).await;
    for run in list.body["data"].as_array().unwrap() {
        assert_eq!(shown(run), counted(&app, run["id"].as_str().unwrap()).await);
    }
}

on_both_databases!(a_runs_counts_follow_its_results);
