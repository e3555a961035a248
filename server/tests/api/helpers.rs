//! Starts the real application on port 0 for each test, on SQLite or on a fresh
//! PostgreSQL database, and talks to it over HTTP like a browser or a script would.

use std::{net::SocketAddr, path::PathBuf};

use app::{
    actor::{Actor, RequestMeta},
    people::{server::service, CurrentUser, Role},
    state::{AppState, Settings},
    tokens::{server::lifecycle as service_tokens, CreateToken, CreatedToken},
};
use reqwest::{header, Client, Response, StatusCode};
use serde_json::Value;
use server::{Application, Config};
use sqlx::{Connection, Executor, PgConnection};

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Sqlite,
    Postgres,
}

pub const PASSWORD: &str = "correct horse battery";

/// Runs one test body on SQLite and on PostgreSQL, as `<name>::sqlite` and `<name>::postgres`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let app = $crate::helpers::spawn_app($crate::helpers::Kind::Sqlite).await.expect("sqlite");
                super::$name(app).await;
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(app) = $crate::helpers::spawn_app($crate::helpers::Kind::Postgres).await {
                    super::$name(app).await;
                }
            }
        }
    )*};
}

pub enum TestDb {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            TestDb::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            TestDb::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime; the cleanup gets its own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    rt.block_on(async {
                        if let Ok(mut conn) = PgConnection::connect(&admin_url).await {
                            let _ =
                                conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str()).await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("QAHUB_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh database; `None` only for PostgreSQL when it is absent and the run asked to
/// skip it (`QAHUB_SKIP_POSTGRES=1`, outside CI).
pub async fn create_database(kind: Kind) -> Option<(String, TestDb)> {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    match kind {
        Kind::Sqlite => {
            let path = std::env::temp_dir().join(format!("qahub-test-{unique}.db"));
            Some((format!("sqlite://{}?mode=rwc", path.display()), TestDb::Sqlite(path)))
        }
        Kind::Postgres => {
            let admin_url = postgres_admin_url();
            let mut conn = match PgConnection::connect(&admin_url).await {
                Ok(conn) => conn,
                // A skipped test must never look like a pass: without PostgreSQL its tests
                // fail, unless the run says out loud that it skips them
                // (QAHUB_SKIP_POSTGRES=1, which scripts/test.sh sets, and announces, only
                // outside CI when PostgreSQL does not answer).
                Err(e)
                    if std::env::var("QAHUB_SKIP_POSTGRES").as_deref() == Ok("1")
                        && std::env::var("CI").as_deref() != Ok("true") =>
                {
                    eprintln!("SKIPPED: PostgreSQL unreachable at {admin_url} ({e}); QAHUB_SKIP_POSTGRES=1");
                    return None;
                }
                Err(e) => panic!(
                    "PostgreSQL is unreachable at {admin_url}: {e}. Start it, point QAHUB_TEST_POSTGRES_URL at one, \
                     or skip its tests on purpose with QAHUB_SKIP_POSTGRES=1 (never under CI=true)"
                ),
            };
            let name = format!("qahub_test_{unique}");
            conn.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await.expect("create test database");
            let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
            let url = format!("{base}/{name}");
            Some((url, TestDb::Postgres { admin_url, name }))
        }
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// "https" when the app serves TLS (with `tests/fixtures/tls`).
    pub scheme: &'static str,
    pub state: AppState,
    _db: TestDb,
}

/// The test certificate and key in `tests/fixtures/tls` (localhost, 127.0.0.1).
pub fn tls_fixture() -> (PathBuf, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// The CA that signed the test certificate: what test clients trust.
pub fn test_certificate() -> reqwest::Certificate {
    let ca = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/ca.pem");
    reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap()
}

pub fn test_settings() -> Settings {
    // The local OIDC issuers of the Trusted CI tests listen on 127.0.0.1.
    Settings {
        bcrypt_cost: 4,
        login_attempts_per_minute: 1000,
        oidc_insecure_loopback: true,
        search_scan_cases: 0,
        ..Settings::default()
    }
}

pub async fn spawn_app(kind: Kind) -> Option<TestApp> {
    spawn_app_with(kind, test_settings()).await
}

pub async fn spawn_app_with(kind: Kind, settings: Settings) -> Option<TestApp> {
    spawn_app_configured(kind, settings, |_| {}).await
}

/// Builds (without serving) an app whose `Config` the test adjusts: for start-up errors.
pub async fn try_build_configured(kind: Kind, adjust: impl FnOnce(&mut Config)) -> anyhow::Result<Application> {
    let (database_url, _db) = create_database(kind).await.expect("a database");
    let mut config = Config::plain(database_url, "127.0.0.1:0".parse().unwrap(), test_settings());
    adjust(&mut config);
    Application::build(config).await
}

/// An app whose `Config` the test adjusts first (limits, TLS).
pub async fn spawn_app_configured(kind: Kind, settings: Settings, adjust: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let (database_url, db) = create_database(kind).await?;
    let mut config = Config::plain(database_url, "127.0.0.1:0".parse().unwrap(), settings);
    adjust(&mut config);
    let app = Application::build(config).await.expect("application builds");
    let addr = app.local_addr();
    let state = app.state().clone();
    let scheme = app.scheme();
    tokio::spawn(app.run_until(std::future::pending()));
    Some(TestApp { addr, scheme, state, _db: db })
}

impl TestApp {
    /// The SQLite file behind the app, when it runs on SQLite.
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match &self._db {
            TestDb::Sqlite(path) => Some(path),
            TestDb::Postgres { .. } => None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// A browser-like client with its own cookie jar (its own session); it trusts the
    /// test certificate.
    pub fn client(&self) -> Client {
        Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .add_root_certificate(test_certificate())
            .build()
            .unwrap()
    }

    /// Calls a server function the way a hydrated page does (form-encoded, JSON back).
    pub async fn call(&self, client: &Client, endpoint: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let res = client.post(self.url(&format!("/_qh/{endpoint}"))).form(form).send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// The same call as a browser without JavaScript: a plain form post asking for HTML.
    pub async fn post_form(&self, client: &Client, endpoint: &str, referer: &str, form: &[(&str, &str)]) -> Response {
        client
            .post(self.url(&format!("/_qh/{endpoint}")))
            .header(header::ACCEPT, "text/html")
            .header(header::REFERER, self.url(referer))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn page(&self, client: &Client, path: &str) -> (StatusCode, String) {
        let res = client.get(self.url(path)).header(header::ACCEPT, "text/html").send().await.unwrap();
        (res.status(), res.text().await.unwrap())
    }

    /// A tenant and its owner, made the operator's way.
    pub async fn bootstrap(&self, tenant: &str, email: &str) -> CurrentUser {
        service::bootstrap(&self.state, service::NewOwner { tenant, email, password: PASSWORD }).await.unwrap()
    }

    pub async fn add_user(&self, tenant: &str, email: &str, role: Role) -> CurrentUser {
        service::add_user(&self.state, tenant, email, PASSWORD, role).await.unwrap()
    }

    /// A client signed in as `email`.
    pub async fn login(&self, email: &str) -> Client {
        let client = self.client();
        let (status, body) = self.call(&client, "login", &[("email", email), ("password", PASSWORD)]).await;
        assert_eq!(status, StatusCode::OK, "login failed: {body}");
        client
    }
}

/// An API answer: status, headers, JSON body (or `Null`).
pub struct Api {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Api {
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

impl TestApp {
    pub async fn api(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Api {
        self.api_with(method, path, token.map(|t| format!("Bearer {t}")).as_deref(), body, &[]).await
    }

    pub async fn api_with(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: Option<Value>,
        extra_headers: &[(&str, &str)],
    ) -> Api {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let client = Client::builder().add_root_certificate(test_certificate()).build().unwrap();
        let mut req = client.request(method, self.url(&format!("/api/v1{path}")));
        if let Some(auth) = authorization {
            req = req.header(header::AUTHORIZATION, auth);
        }
        for (name, value) in extra_headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        Api { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
    }

    /// A token made the way the pages make one, for `user`.
    pub async fn token(&self, user: &CurrentUser, req: Value) -> CreatedToken {
        let req: CreateToken = serde_json::from_value(req).unwrap();
        service_tokens::create(&self.state, &Actor::User(user.clone()), &RequestMeta::default(), req).await.unwrap()
    }

    /// A token as `by` sees it through the domain, without its last use (which every
    /// request of the token itself changes).
    pub async fn token_summary(&self, by: &CurrentUser, id: &str) -> Value {
        let got = app::tokens::server::service::get(&self.state, &Actor::User(by.clone()), id).await.unwrap();
        let mut v = serde_json::to_value(got).unwrap();
        v.as_object_mut().unwrap().remove("last_used_at");
        v.as_object_mut().unwrap().remove("last_used_ip");
        v
    }

    /// Runs SQL against the app's database (to move clocks in tests).
    pub async fn sql(&self, sql: &str, id: &str, value: i64) {
        sqlx::query(sql).bind(value).bind(id).execute(&self.state.db).await.unwrap();
    }

    pub async fn audit_actions(&self, tenant_id: &str) -> Vec<String> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT action FROM audit_log WHERE tenant_id = $1 ORDER BY id")
            .bind(tenant_id)
            .fetch_all(&self.state.db)
            .await
            .unwrap();
        rows.into_iter().map(|(a,)| a).collect()
    }
}

pub fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or_default()
}
