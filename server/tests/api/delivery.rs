//! What a browser downloads: precompressed files by `Accept-Encoding`, a year of caching
//! for content-hashed names only, pages and JSON compressed on the fly, and never a
//! response that carries a secret (BREACH).

use reqwest::{header, Client, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_configured, test_settings, Kind, TestApp};

const HASH: &str = "Xy3_q-9A";

/// A site folder as `cargo leptos build --release --precompress` leaves it, with
/// bodies that tell the variants apart.
fn site() -> std::path::PathBuf {
    let root = std::env::temp_dir().join(format!("qahub-site-{}", uuid::Uuid::new_v4().simple()));
    let pkg = root.join("pkg");
    std::fs::create_dir_all(pkg.join("snippets")).unwrap();
    let wasm = format!("qahub.{HASH}.wasm");
    std::fs::write(pkg.join(&wasm), b"\0asm raw").unwrap();
    std::fs::write(pkg.join(format!("{wasm}.br")), b"brotli bytes").unwrap();
    std::fs::write(pkg.join(format!("{wasm}.gz")), b"gzip bytes").unwrap();
    std::fs::write(pkg.join("snippets/glue.js"), "export const x = 1;".repeat(40)).unwrap();
    std::fs::write(root.join("hash.txt"), format!("js: other\nwasm: {HASH}\ncss: more\n")).unwrap();
    root
}

async fn app_with_site(kind: Kind) -> Option<(TestApp, std::path::PathBuf)> {
    let root = site();
    let app = spawn_app_configured(kind, test_settings(), |config| {
        config.site = server::assets::Site::Folder { root: root.clone(), hash_file: Some(root.join("hash.txt")) };
    })
    .await?;
    Some((app, root))
}

async fn get(app: &TestApp, path: &str, accept_encoding: Option<&str>) -> reqwest::Response {
    let mut req = Client::new().get(app.url(path));
    if let Some(value) = accept_encoding {
        req = req.header(header::ACCEPT_ENCODING, value);
    }
    req.send().await.unwrap()
}

fn header_of<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn precompressed_files_are_chosen_by_accept_encoding() {
    let (app, root) = app_with_site(Kind::Sqlite).await.unwrap();
    let path = format!("/pkg/qahub.{HASH}.wasm");
    for (accept, encoding, body) in [
        (Some("br, gzip"), Some("br"), "brotli bytes"),
        (Some("gzip, deflate, br;q=0"), Some("gzip"), "gzip bytes"),
        (Some("gzip"), Some("gzip"), "gzip bytes"),
        (Some("identity"), None, "\0asm raw"),
        (None, None, "\0asm raw"),
    ] {
        let res = get(&app, &path, accept).await;
        assert_eq!(res.status(), StatusCode::OK, "{accept:?}");
        assert_eq!(header_of(&res, "content-encoding"), encoding, "{accept:?}");
        assert_eq!(header_of(&res, "content-type"), Some("application/wasm"), "{accept:?}");
        assert!(header_of(&res, "vary").is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding")));
        assert_eq!(header_of(&res, "cache-control"), Some("public, max-age=31536000, immutable"));
        assert_eq!(res.text().await.unwrap(), body, "{accept:?}");
    }
    std::fs::remove_dir_all(root).unwrap();
}

#[tokio::test]
async fn only_hashed_names_are_cached_for_a_year() {
    let (app, root) = app_with_site(Kind::Sqlite).await.unwrap();
    // Not in hash.txt: revalidated on each use (and compressed on the fly).
    let res = get(&app, "/pkg/snippets/glue.js", Some("gzip")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header_of(&res, "cache-control"), Some("no-cache"));
    assert_eq!(header_of(&res, "content-encoding"), Some("gzip"));
    // A name that looks hashed but is not this build's.
    let res = get(&app, "/pkg/qahub.0ld0ne.wasm", None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(header_of(&res, "cache-control"), None, "a miss is not cached for a year");
    // Someone else's file name with this build's hash is not ours either.
    let res = get(&app, &format!("/pkg/evil.{HASH}.wasm"), None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    std::fs::remove_dir_all(root).unwrap();
}

/// Pages and JSON travel compressed; secrets never do, on either door.
async fn secrets_are_never_compressed(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"]})).await.token;
    let accept = [("accept-encoding", "br, gzip")];
    // An attacker-chosen name next to the secret is what BREACH needs.
    let create = json!({"name": "qh_guess_AAAA", "scopes": ["read"], "expires_in": "30d"});

    // Ordinary answers are compressed (the raw bytes are not JSON then).
    for i in 0..3 {
        app.api("POST", "/tokens", Some(&admin), Some(json!({"name": format!("filler {i}"), "scopes": ["read"]})))
            .await;
    }
    let list = app.api_with("GET", "/tokens", Some(&format!("Bearer {admin}")), None, &accept).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.headers.get("content-encoding").map(|v| v.to_str().unwrap()), Some("br"));

    let plain = |api: &crate::helpers::Api, what: &str| {
        assert!(api.status.is_success(), "{what}: {} {}", api.status, api.body);
        assert_eq!(api.headers.get("content-encoding"), None, "{what} is never compressed");
        assert_eq!(api.headers["cache-control"], "no-store, no-transform", "{what}");
        assert!(api.body["data"]["token"].as_str().unwrap().starts_with("qh_"), "{what}");
    };
    let created = app.api_with("POST", "/tokens", Some(&format!("Bearer {admin}")), Some(create), &accept).await;
    plain(&created, "POST /api/v1/tokens");
    let id = created.body["data"]["id"].as_str().unwrap().to_string();
    let rotated =
        app.api_with("POST", &format!("/tokens/{id}/rotate"), Some(&format!("Bearer {admin}")), None, &accept).await;
    plain(&rotated, "POST /api/v1/tokens/{id}/rotate");

    // The pages' door: the server functions and the no-JS form post.
    let session = app.login("owner@example.com").await;
    let pages_door = |endpoint: &str, form: Vec<(&'static str, String)>| {
        let req = session.post(app.url(endpoint)).header(header::ACCEPT_ENCODING, "br, gzip").form(&form);
        async move { req.send().await.unwrap() }
    };
    let issued =
        pages_door("/_qh/tokens/issue", vec![("name", "qh_guess_BBBB".into()), ("scopes[]", "read".into())]).await;
    assert_eq!(issued.status(), StatusCode::OK);
    assert_eq!(header_of(&issued, "content-encoding"), None, "issue_token is never compressed");
    assert_eq!(header_of(&issued, "cache-control"), Some("no-store, no-transform"));
    let issued: Value = issued.json().await.unwrap();
    let reissued = pages_door("/_qh/tokens/reissue", vec![("id", issued["id"].as_str().unwrap().into())]).await;
    assert_eq!(reissued.status(), StatusCode::OK);
    assert_eq!(header_of(&reissued, "content-encoding"), None, "reissue_token is never compressed");
    assert_eq!(header_of(&reissued, "cache-control"), Some("no-store, no-transform"));
    assert!(reissued.json::<Value>().await.unwrap()["token"].as_str().unwrap().starts_with("qh_"));

    let reveal = session
        .post(app.url("/settings/developer/api-tokens"))
        .header(header::ACCEPT_ENCODING, "br, gzip")
        .header(header::ACCEPT, "text/html")
        .form(&[("intent", "create"), ("name", "qh_guess_CCCC"), ("scopes[]", "read")])
        .send()
        .await
        .unwrap();
    assert_eq!(reveal.status(), StatusCode::OK);
    assert_eq!(header_of(&reveal, "content-encoding"), None, "the no-JS reveal page is never compressed");
    assert_eq!(header_of(&reveal, "cache-control"), Some("no-store, no-transform"));
    assert!(reveal.text().await.unwrap().contains("qh_"), "the page shows the secret");

    // The same page without a secret is compressed.
    let page = session
        .get(app.url("/settings/developer/api-tokens"))
        .header(header::ACCEPT_ENCODING, "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(header_of(&page, "content-encoding"), Some("br"));
    assert_eq!(header_of(&page, "cache-control"), Some("no-store"), "a signed-in page is never kept");
}

crate::on_both_databases!(secrets_are_never_compressed);
