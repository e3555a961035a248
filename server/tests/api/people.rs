use app::people::Role;
use reqwest::{header, StatusCode};
use serde_json::Value;

use crate::{
    helpers::{code, spawn_app_with, test_settings, Kind, TestApp, PASSWORD},
    on_both_databases,
};

fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("qahub_session="))
        .map(str::to_owned)
}

async fn setup_is_offered_once(app: TestApp) {
    let client = app.client();
    let (status, html) = app.page(&client, "/").await;
    assert_eq!(status, StatusCode::FOUND, "a fresh instance sends / to /setup");
    let (_, setup_page) = app.page(&client, "/setup").await;
    assert!(setup_page.contains("Create workspace"), "setup form shown on first run");
    assert!(html.is_empty() || !html.contains("Sign in to QA Hub"));

    let form = [("tenant", "Acme"), ("email", "Owner@Example.com"), ("password", PASSWORD)];
    let (status, body) = app.call(&client, "setup", &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The owner is signed in straight away and is an owner.
    let (_, me) = app.call(&client, "whoami", &[]).await;
    assert_eq!(me["email"], "owner@example.com");
    assert_eq!(me["role"], "owner");
    assert_eq!(me["tenant_name"], "Acme");

    // A second setup, even by someone else, is refused.
    let stranger = app.client();
    let form = [("tenant", "Evil"), ("email", "evil@example.com"), ("password", PASSWORD)];
    let (status, body) = app.call(&stranger, "setup", &form).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&body), "already_set_up");
    let (_, setup_page) = app.page(&stranger, "/setup").await;
    assert!(setup_page.contains("already set up") && !setup_page.contains("Create workspace"));
    let (status, _) = app.call(&app.client(), "login", &[("email", "evil@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the refused setup created nobody");
}

async fn setup_is_refused_after_a_bootstrap(app: TestApp) {
    app.bootstrap("Acme", "owner@example.com").await;
    let form = [("tenant", "Other"), ("email", "x@example.com"), ("password", PASSWORD)];
    let (status, body) = app.call(&app.client(), "setup", &form).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&body), "already_set_up");
}

async fn setup_validates_its_fields(app: TestApp) {
    let client = app.client();
    for (form, needle) in [
        ([("tenant", " "), ("email", "a@b.c"), ("password", PASSWORD)], "workspace name"),
        ([("tenant", "Acme"), ("email", "not-an-email"), ("password", PASSWORD)], "email"),
        ([("tenant", "Acme"), ("email", "a@b.c"), ("password", "short")], "at least 8"),
    ] {
        let (status, body) = app.call(&client, "setup", &form).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(code(&body), "invalid_request");
        assert!(body["message"].as_str().unwrap().to_lowercase().contains(needle), "{body}");
    }
    let (status, body) = app.call(&client, "setup", &[("tenant", "Acme")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "missing fields: {body}");
    // Nothing was half-created: setup is still offered.
    let (_, page) = app.page(&client, "/setup").await;
    assert!(page.contains("Create workspace"));
}

async fn wrong_password_and_unknown_email_answer_alike(app: TestApp) {
    app.bootstrap("Acme", "owner@example.com").await;
    let client = app.client();
    // The unknown email first: were it audited, its entry would be written before the real
    // account's, which the loop below waits for.
    let (s2, b2) = app.call(&client, "login", &[("email", "nobody@example.com"), ("password", "wrong password")]).await;
    let (s1, b1) = app.call(&client, "login", &[("email", "owner@example.com"), ("password", "wrong password")]).await;
    assert_eq!(s1, StatusCode::UNAUTHORIZED);
    assert_eq!((s1, &b1), (s2, &b2), "the answers must not tell which emails exist");
    assert_eq!(code(&b1), "invalid_credentials");
    // The failed attempt on a real account is audited (off the request path: wait, bounded).
    let mut failed = 0;
    for _ in 0..40 {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT action FROM audit_log WHERE action = 'user.login_failed'")
            .fetch_all(&app.state.db)
            .await
            .unwrap();
        failed = rows.len();
        if failed > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(failed, 1, "one failed sign-in recorded, none for the unknown email");
    let (mentions,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_log WHERE actor_label LIKE '%nobody%' OR target_label LIKE '%nobody%' OR details LIKE '%nobody%'",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(mentions, 0, "nothing about the unknown email is kept");
    let (_, me) = app.call(&client, "whoami", &[]).await;
    assert_eq!(me, Value::Null, "no session after a failed sign-in");
}

async fn login_sets_a_strict_http_only_cookie_and_rotates_the_id(app: TestApp) {
    app.bootstrap("Acme", "owner@example.com").await;
    let client = app.client();
    let login =
        || client.post(app.url("/_qh/login")).form(&[("email", "owner@example.com"), ("password", PASSWORD)]).send();
    let first = login().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let cookie = session_cookie(&first).expect("a session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http gets no Secure flag");
    let second = login().await.unwrap();
    let rotated = session_cookie(&second).expect("a new cookie at the second sign-in");
    assert_ne!(cookie.split(';').next(), rotated.split(';').next(), "the session id changes at sign-in");
    let tenant_id = app.state.db.clone();
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT action, ip FROM audit_log ORDER BY id").fetch_all(&tenant_id).await.unwrap();
    assert_eq!(rows[0].0, "tenant.created");
    let logins: Vec<_> = rows.iter().filter(|(a, _)| a == "user.login").collect();
    assert_eq!(logins.len(), 2, "{rows:?}");
    assert_eq!(logins[0].1.as_deref(), Some("127.0.0.1"));
}

async fn logout_ends_the_session_on_the_server(app: TestApp) {
    app.bootstrap("Acme", "owner@example.com").await;
    let client = app.client();
    let res = client
        .post(app.url("/_qh/login"))
        .form(&[("email", "owner@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = session_cookie(&res).unwrap();
    let pair = cookie.split(';').next().unwrap().to_string();
    let (status, _) = app.call(&client, "logout", &[]).await;
    assert_eq!(status, StatusCode::OK);
    // Replaying the old cookie from another client finds no session.
    let replay = app.client();
    let res = replay.post(app.url("/_qh/whoami")).header(header::COOKIE, pair).send().await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap(), Value::Null);
}

async fn suspension_stops_sessions_and_sign_ins(app: TestApp) {
    app.bootstrap("Acme", "owner@example.com").await;
    app.add_user("Acme", "member@example.com", Role::Member).await;
    let member = app.login("member@example.com").await;
    app::people::server::service::suspend_account(&app.state, "member@example.com", true).await.unwrap();
    let (_, me) = app.call(&member, "whoami", &[]).await;
    assert_eq!(me, Value::Null, "a suspended user's session ends");
    let (status, body) =
        app.call(&app.client(), "login", &[("email", "member@example.com"), ("password", PASSWORD)]).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "user_suspended"));

    let owner = app.login("owner@example.com").await;
    app::people::server::service::set_tenant_status(&app.state, "Acme", true).await.unwrap();
    let (_, me) = app.call(&owner, "whoami", &[]).await;
    assert_eq!(me, Value::Null, "a suspended tenant's sessions end");
    let (status, body) =
        app.call(&app.client(), "login", &[("email", "owner@example.com"), ("password", PASSWORD)]).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "tenant_suspended"));
    app::people::server::service::set_tenant_status(&app.state, "Acme", false).await.unwrap();
    app.login("owner@example.com").await;
}

async fn plain_form_posts_redirect_with_the_error(app: TestApp) {
    app.bootstrap("Acme", "owner@example.com").await;
    let client = app.client();
    let res =
        app.post_form(&client, "login", "/login", &[("email", "owner@example.com"), ("password", "nope nope")]).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let to = res.headers()[header::LOCATION].to_str().unwrap().to_string();
    assert!(to.starts_with("/login?error="), "{to}");
    let (_, page) = app.page(&client, &to).await;
    assert!(page.contains("The email or password is incorrect."), "the login page shows the error");

    let res =
        app.post_form(&client, "login", "/login", &[("email", "owner@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()[header::LOCATION], "/settings/projects");
    let (status, page) = app.page(&client, "/settings/projects").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("owner@example.com"));
}

async fn signed_out_visitors_are_sent_to_login(app: TestApp) {
    app.bootstrap("Acme", "owner@example.com").await;
    for path in ["/", "/settings/projects", "/settings/developer/api-tokens", "/settings/audit-log"] {
        let res = app.client().get(app.url(path)).header(header::ACCEPT, "text/html").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FOUND, "{path}");
        assert_eq!(res.headers()[header::LOCATION], "/login", "{path}");
    }
    let (status, page) = app.page(&app.client(), "/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("Page not found"));
}

on_both_databases!(
    setup_is_offered_once,
    setup_is_refused_after_a_bootstrap,
    setup_validates_its_fields,
    wrong_password_and_unknown_email_answer_alike,
    login_sets_a_strict_http_only_cookie_and_rotates_the_id,
    logout_ends_the_session_on_the_server,
    suspension_stops_sessions_and_sign_ins,
    plain_form_posts_redirect_with_the_error,
    signed_out_visitors_are_sent_to_login,
);

#[tokio::test]
async fn sign_in_attempts_are_rate_limited() {
    let settings = app::state::Settings { login_attempts_per_minute: 3, ..test_settings() };
    let app = spawn_app_with(Kind::Sqlite, settings).await.unwrap();
    app.bootstrap("Acme", "owner@example.com").await;
    let client = app.client();
    for _ in 0..3 {
        let (status, _) =
            app.call(&client, "login", &[("email", "owner@example.com"), ("password", "wrong one")]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = app.call(&client, "login", &[("email", "owner@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(code(&body), "rate_limited");
}

async fn cross_site_posts_are_refused(app: TestApp) {
    app.bootstrap("Acme", "owner@example.com").await;
    let owner = app.login("owner@example.com").await;
    let host = app.addr.to_string();
    for (name, value) in [("origin", "http://evil.example"), ("sec-fetch-site", "cross-site")] {
        let res = owner
            .post(app.url("/_qh/projects/create"))
            .header(name, value)
            .form(&[("key", "EVIL"), ("name", "Evil")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
        let res = owner
            .post(app.url("/settings/developer/api-tokens"))
            .header(name, value)
            .form(&[("intent", "create")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "the token page's form too");
    }
    // The same post from this site goes through.
    let res = owner
        .post(app.url("/_qh/projects/create"))
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("key", "OK"), ("name", "Fine")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, list) = app.call(&owner, "projects/list", &[]).await;
    let keys: Vec<&str> = list.as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["OK"], "nothing cross-site was created");
}

on_both_databases!(cross_site_posts_are_refused);

/// A person's web session never reaches `/api/v1`: the signed-in browser's cookie is no
/// credential there, only an API token is.
async fn web_sessions_never_reach_the_api(app: TestApp) {
    app.bootstrap("Acme", "owner@example.com").await;
    let client = app.login("owner@example.com").await;
    // The session works where it belongs…
    let (status, _) = app.call(&client, "tokens/list", &[]).await;
    assert_eq!(status, StatusCode::OK, "the session is live");
    // …and nowhere under /api/v1, whatever the method.
    let project = r#"{"key":"SESS","name":"x"}"#;
    // An address list that keeps the caller in (a real change, if it got through).
    let tenant = r#"{"max_token_lifetime_days":null,"ip_allowlist":["127.0.0.0/8","10.0.0.0/8"]}"#;
    for (method, path, body) in [
        ("GET", "/api/v1/me", ""),
        ("GET", "/api/v1/tokens", ""),
        ("POST", "/api/v1/projects", project),
        ("PATCH", "/api/v1/tenant", tenant),
    ] {
        let res = client
            .request(method.parse().unwrap(), app.url(path))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "missing_token", "{method} {path}: {body}");
    }
    // And nothing it sent was done.
    let projects: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM projects WHERE key = 'SESS'").fetch_one(&app.state.db).await.unwrap();
    assert_eq!(projects.0, 0, "no project was created");
    let tenant: (String,) = sqlx::query_as("SELECT ip_allowlist FROM tenants").fetch_one(&app.state.db).await.unwrap();
    assert_eq!(tenant.0, "", "the workspace's address list is untouched");
}

on_both_databases!(web_sessions_never_reach_the_api);
