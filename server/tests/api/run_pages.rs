//! The run pages a person reads: paged, failed first, filtered, searched, with the
//! tenant rules of the API (another workspace's run is a 404) — server-rendered HTML.

use reqwest::StatusCode;
use serde_json::json;

use crate::{helpers::TestApp, on_both_databases};

/// A JUnit report with `n` tests: every tenth fails, every 25th errors.
fn report(n: usize) -> Vec<u8> {
    let mut xml = String::from("<testsuite name=\"big\">");
    for i in 0..n {
        let body = if i % 25 == 0 {
            "<error message=\"fixture exploded\"/>"
        } else if i % 10 == 0 {
            "<failure message=\"expected 1, got 2\">trace line</failure>"
        } else {
            ""
        };
        xml.push_str(&format!("<testcase classname=\"suite\" name=\"case {i:05}\" time=\"0.001\">{body}</testcase>"));
    }
    xml.push_str("</testsuite>");
    xml.into_bytes()
}

/// The result titles in a rendered run page, in order.
fn titles(html: &str) -> Vec<String> {
    html.split("<tr class=\"result-")
        .skip(1)
        .filter_map(|row| row.find("suite › case ").map(|at| row[at + "suite › case ".len()..][..5].to_string()))
        .collect()
}

/// The href of the pager link with this text, unescaped as a browser would.
fn link(html: &str, text: &str) -> Option<String> {
    let end = html.find(&format!(">{text}</a>"))?;
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    let href = &html[start..end];
    Some(href[..href.find('"')?].replace("&amp;", "&"))
}

/// Imports a JUnit `report` into project `key` with `token` (query: `extra`); the run.
async fn import(app: &TestApp, token: &str, key: &str, extra: &str, report: Vec<u8>) -> serde_json::Value {
    let res = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/projects/{key}/runs/import?format=junit{extra}")))
        .bearer_auth(token)
        .body(report)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

async fn run_pages_are_paged_failed_first_and_tenant_bound(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "ci", "scopes": ["admin"]})).await.token;
    app.api("POST", "/projects", Some(&admin), Some(json!({"key": "WEB", "name": "Website"}))).await;
    let run = import(&app, &admin, "WEB", "&branch=main&commit=abc123", report(120)).await;
    let id = run["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(run["data"]["counts"], json!({"total": 120, "passed": 106, "failed": 9, "skipped": 0, "error": 5}));

    // A member reads it; failed first (in report order), then errors, then passed; 50 a page.
    app.add_user("Acme", "member@example.com", app::people::Role::Member).await;
    let member = app.login("member@example.com").await;
    let url = format!("/projects/WEB/runs/{id}");
    let (status, html) = app.page(&member, &url).await;
    assert_eq!(status, StatusCode::OK);
    let first = titles(&html);
    assert_eq!(first.len(), 50, "one page of 50");
    assert_eq!(&first[..3], ["00010", "00020", "00030"], "failures first");
    assert!(first[9..14].iter().all(|t| t.parse::<usize>().unwrap() % 25 == 0), "then errors: {first:?}");
    assert!(html.contains("Page 1 of 3") && html.contains("ci (qh_"), "paged, and who uploaded it");
    assert!(html.contains("abc123") && html.contains("main"), "the CI context");
    assert!(link(&html, "← Previous").is_none(), "the first page has no previous");
    // Next, next: each page goes on where the last stopped, to the end; then back.
    let second = link(&html, "Next →").expect("a next page");
    assert!(second.contains("after=") && !second.contains("offset"), "{second}");
    let (_, html) = app.page(&member, &second).await;
    let two = titles(&html);
    assert!(html.contains("Page 2 of 3"));
    let (_, html) = app.page(&member, &link(&html, "Next →").expect("a third page")).await;
    let three = titles(&html);
    assert!(html.contains("Page 3 of 3") && link(&html, "Next →").is_none(), "the last page has no next");
    let every: Vec<String> = [first.clone(), two.clone(), three.clone()].concat();
    assert_eq!((two.len(), three.len()), (50, 20));
    let mut sorted = every.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 120, "every result once across the pages");
    assert_eq!(three.last().map(String::as_str), Some("00119"), "passed last, in report order");
    let (_, html) = app.page(&member, &link(&html, "← Previous").expect("a previous page")).await;
    assert_eq!(titles(&html), two, "back is the page before");
    assert!(html.contains("Page 2 of 3"));
    let (_, html) = app.page(&member, &link(&html, "← Previous").unwrap()).await;
    assert_eq!((titles(&html), html.contains("Page 1 of 3")), (first.clone(), true));
    // A cursor this server never gave out is refused, not guessed at.
    for bad in ["after=9.1", "after=x", "before=0.", "after=0.1&before=0.2"] {
        let (status, html) = app.page(&member, &format!("{url}?{bad}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(titles(&html).is_empty(), "{bad}");
    }
    let (_, html) = app.page(&member, &format!("{url}?status=error")).await;
    assert_eq!(titles(&html), ["00000", "00025", "00050", "00075", "00100"]);
    let (_, html) = app.page(&member, &format!("{url}?q=CASE%2000042")).await;
    assert_eq!(titles(&html), ["00042"]);
    let (_, html) = app.page(&member, &format!("{url}?q=%25")).await;
    assert!(titles(&html).is_empty(), "% is searched literally");
    // The project's runs and the overview.
    let (_, html) = app.page(&member, "/projects/WEB").await;
    assert!(html.contains(&id) && html.contains("9 failed"));
    let (_, html) = app.page(&member, "/projects").await;
    assert!(html.contains("WEB · Website") && html.contains("failed"));

    // Another workspace's person: 404, and nothing of the run.
    app.bootstrap("Globex", "owner@globex.example").await;
    let other = app.login("owner@globex.example").await;
    let (status, html) = app.page(&other, &url).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(titles(&html).is_empty());
    let (status, _) = app.page(&other, "/projects/WEB").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Signed out: sent to sign in, and shown nothing.
    let res = app.client().get(app.url(&url)).header("accept", "text/html").send().await.unwrap();
    let status = res.status();
    let location = res.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or_default().to_string();
    let html = res.text().await.unwrap();
    assert_eq!((status, location.as_str()), (StatusCode::FOUND, "/login"), "signed out: sent to sign in");
    assert!(titles(&html).is_empty());
}

on_both_databases!(run_pages_are_paged_failed_first_and_tenant_bound);

/// A search that matches more of the project's cases than are looked up one by one
/// reads the run in page order instead, and counts its matches only up to a cap.
async fn a_search_matching_thousands_of_cases_is_paged_and_capped(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "ci", "scopes": ["admin"]})).await.token;
    app.api("POST", "/projects", Some(&admin), Some(json!({"key": "WEB", "name": "Website"}))).await;
    let n = app::testing::server::store::FEW_CASES + 100;
    let run = import(&app, &admin, "WEB", "", report(n)).await;
    let url = format!("/projects/WEB/runs/{}", run["data"]["id"].as_str().unwrap());
    let person = app.login("owner@example.com").await;
    // Every title matches "case": many cases, so read in page order; failures first.
    let (_, html) = app.page(&person, &format!("{url}?q=case")).await;
    let first = titles(&html);
    assert_eq!(first.len(), 50);
    assert_eq!(&first[..2], ["00010", "00020"]);
    assert!(html.contains("1000+ matching"), "counted up to the cap");
    let (_, html) = app.page(&person, &link(&html, "Next →").unwrap()).await;
    let second = titles(&html);
    assert_eq!(second.len(), 50);
    assert!(!second.iter().any(|t| first.contains(t)), "the next page goes on");
    // Few cases ("case 0004" matches 10): looked up one by one, counted exactly.
    let (_, html) = app.page(&person, &format!("{url}?q=case%200004")).await;
    // 00040 failed, the others passed: in page order that is report order.
    assert_eq!(titles(&html), (40..50).map(|i| format!("000{i}")).collect::<Vec<_>>());
    assert!(html.contains("10 matching"));
    // The same filter with an outcome, both ways.
    let (_, html) = app.page(&person, &format!("{url}?q=case&status=error")).await;
    assert!(titles(&html).iter().all(|t| t.parse::<usize>().unwrap() % 25 == 0));
    let (_, html) = app.page(&person, &format!("{url}?q=case%200004&status=passed")).await;
    assert_eq!(titles(&html).len(), 9);
}

on_both_databases!(a_search_matching_thousands_of_cases_is_paged_and_capped);

/// The title search reads an index of the cases' titles (migration 17): it follows a
/// case renamed or deleted through the API, never finds another project's case, and a
/// search too short for the index (or holding a LIKE wildcard) still finds by scanning.
async fn title_search_follows_renamed_and_deleted_cases(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "ci", "scopes": ["admin"]})).await.token;
    let mut runs = Vec::new();
    for key in ["WEB", "API"] {
        app.api("POST", "/projects", Some(&admin), Some(json!({"key": key, "name": key}))).await;
        let run = import(&app, &admin, key, "", report(120)).await;
        runs.push(format!("/projects/{key}/runs/{}", run["data"]["id"].as_str().unwrap()));
    }
    let person = app.login("owner@example.com").await;
    let web = &runs[0];
    let search = |q: &str| format!("{web}?q={}", form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>());
    let (_, html) = app.page(&person, &search("case 00042")).await;
    assert_eq!(titles(&html), ["00042"], "one case");
    let (_, html) = app.page(&person, &search("SE 0004")).await;
    assert_eq!(titles(&html).len(), 10, "case-insensitive, inside the title: {:?}", titles(&html));
    let (_, html) = app.page(&person, &search("42")).await;
    assert_eq!(titles(&html), ["00042"], "two characters: scanned, still found");

    let case_id = |project: &str, title: &str| {
        let (db, project, title) = (app.state.db.clone(), project.to_owned(), title.to_owned());
        async move {
            let row: (String,) = sqlx::query_as(
                "SELECT c.id FROM cases c JOIN projects p ON p.id = c.project_id WHERE p.key = $1 AND c.title LIKE $2",
            )
            .bind(project)
            .bind(format!("%{title}"))
            .fetch_one(&db)
            .await
            .unwrap();
            row.0
        }
    };
    // Renamed: found by its new title, not by its old one.
    let id = case_id("WEB", "case 00042").await;
    let res = app
        .api(
            "PATCH",
            &format!("/projects/WEB/cases/{id}"),
            Some(&admin),
            Some(json!({"title": "suite › case 99%42 renamed"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let (_, html) = app.page(&person, &search("case 00042")).await;
    assert!(titles(&html).is_empty(), "the old title is gone from the index: {:?}", titles(&html));
    let (_, html) = app.page(&person, &search("renamed")).await;
    assert!(html.contains("case 99%42 renamed"), "the new title is found");
    // `?q=99%2542`: a literal % (scanned, not indexed), decoded once — not "99B".
    let (_, html) = app.page(&person, &search("99%42")).await;
    assert!(html.contains("case 99%42 renamed"), "a literal % is found by scanning");
    assert!(html.contains("value=\"99%42\""), "the search box shows what was searched");
    // Deleted: gone from the search, and from the index's own tables on SQLite.
    let id = case_id("WEB", "case 00043").await;
    let res = app.api("DELETE", &format!("/projects/WEB/cases/{id}"), Some(&admin), None).await;
    assert!(res.status.is_success(), "{} {}", res.status, res.body);
    let (_, html) = app.page(&person, &search("case 00043")).await;
    assert!(titles(&html).is_empty(), "a deleted case is not found: {:?}", titles(&html));
    // Many results of one case (a test repeated in the run) page like a dense search.
    let mut xml = String::from("<testsuite name=\"many\">");
    for i in 0..2100 {
        let body = if i % 7 == 0 { "<failure message=\"m\">t</failure>" } else { "" };
        xml.push_str(&format!("<testcase classname=\"suite\" name=\"case 77777\" time=\"0\">{body}</testcase>"));
    }
    xml.push_str("</testsuite>");
    let many = import(&app, &admin, "WEB", "", xml.into_bytes()).await;
    let many = format!("/projects/WEB/runs/{}", many["data"]["id"].as_str().unwrap());
    let (status, html) = app.page(&person, &format!("{many}?q=case%2077777")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(titles(&html).len(), 50, "a page of the 2 100 results of one case");
    assert!(html.contains("1000+ matching"), "counted up to the cap, not read whole");
    assert!(link(&html, "Next →").is_some_and(|l| l.contains("after=")));
    // The other project's run still finds its own.
    let (_, html) = app.page(&person, &format!("{}?q=case%2000043", runs[1])).await;
    assert_eq!(titles(&html), ["00043"]);
    if app.sqlite_path().is_some() {
        let counts: (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM cases), (SELECT COUNT(*) FROM case_title_rows), \
             (SELECT COUNT(*) FROM case_titles)",
        )
        .fetch_one(&app.state.db)
        .await
        .unwrap();
        assert_eq!(counts, (240, 240, 240), "the index holds each case once");
    }
}

on_both_databases!(title_search_follows_renamed_and_deleted_cases);
