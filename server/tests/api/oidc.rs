//! Trusted CI against a local OIDC issuer: an HTTP server in the test process serving a
//! discovery document and a JWKS (RSA and EC keys from `tests/fixtures/oidc`), signing ID
//! tokens shaped like GitHub Actions' and GitLab's.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{extract::State, response::IntoResponse, routing::get, Json, Router};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app_with, test_settings, Api, Kind, TestApp},
    on_both_databases,
};

const AUDIENCE: &str = "https://qa.test";
/// What every refusal before a good signature says (the reason is in the server log).
const UNVERIFIED: &str = "not signed by a key of an issuer this workspace trusts";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/oidc/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[derive(Default)]
struct IssuerState {
    url: String,
    /// The JWKs it publishes now.
    keys: Vec<Value>,
    delay: Duration,
    /// Requests for the discovery document.
    discoveries: usize,
    /// The `jwks_uri` the discovery document names instead of its own.
    jwks_uri: Option<String>,
}

#[derive(Clone)]
struct Issuer(Arc<Mutex<IssuerState>>, Arc<AtomicUsize>);

impl Issuer {
    async fn start(keys: &[&str]) -> Issuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let keys = keys.iter().map(|k| serde_json::from_str(&fixture(&format!("{k}.jwk.json"))).unwrap()).collect();
        let issuer = Issuer(Arc::new(Mutex::new(IssuerState { url, keys, ..Default::default() })), Arc::default());
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(issuer.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        issuer
    }
    fn url(&self) -> String {
        self.0.lock().unwrap().url.clone()
    }
    fn publish(&self, keys: &[&str]) {
        self.0.lock().unwrap().keys =
            keys.iter().map(|k| serde_json::from_str(&fixture(&format!("{k}.jwk.json"))).unwrap()).collect();
    }
    fn fetches(&self) -> usize {
        self.1.load(Ordering::SeqCst)
    }
    fn slow(&self, delay: Duration) {
        self.0.lock().unwrap().delay = delay;
    }
    fn discoveries(&self) -> usize {
        self.0.lock().unwrap().discoveries
    }
    fn point_jwks_to(&self, uri: &str) {
        self.0.lock().unwrap().jwks_uri = Some(uri.to_string());
    }
    /// Publishes raw JWKs.
    fn publish_jwks(&self, keys: Vec<Value>) {
        self.0.lock().unwrap().keys = keys;
    }

    /// An ID token signed with fixture key `key` (its name is the `kid`).
    fn sign(&self, key: &str, claims: Value) -> String {
        let pem = fixture(&format!("{key}.pem"));
        let (alg, encoding) = if key.starts_with("ec") {
            (Algorithm::ES256, EncodingKey::from_ec_pem(pem.as_bytes()).unwrap())
        } else {
            (Algorithm::RS256, EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap())
        };
        let header = Header { kid: Some(key.to_string()), ..Header::new(alg) };
        encode(&header, &claims, &encoding).unwrap()
    }
}

async fn discovery(State(issuer): State<Issuer>) -> Json<Value> {
    let (url, jwks_uri) = {
        let mut s = issuer.0.lock().unwrap();
        s.discoveries += 1;
        (s.url.clone(), s.jwks_uri.clone())
    };
    let jwks_uri = jwks_uri.unwrap_or_else(|| format!("{url}/jwks"));
    Json(json!({"issuer": url, "jwks_uri": jwks_uri, "id_token_signing_alg_values_supported": ["RS256", "ES256"]}))
}

async fn jwks(State(issuer): State<Issuer>) -> impl IntoResponse {
    issuer.1.fetch_add(1, Ordering::SeqCst);
    let (keys, delay) = {
        let s = issuer.0.lock().unwrap();
        (s.keys.clone(), s.delay)
    };
    tokio::time::sleep(delay).await;
    ([("cache-control", "max-age=3600")], Json(json!({ "keys": keys })))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims like GitHub Actions' (docs: "About security hardening with OpenID Connect").
fn github_claims(issuer: &str, run: &str) -> Value {
    let now = now();
    json!({
        "jti": format!("jti-{run}-{}", uuid::Uuid::new_v4()),
        "sub": "repo:acme/backend:ref:refs/heads/main",
        "aud": AUDIENCE,
        "ref": "refs/heads/main",
        "sha": "2f8a9e1c",
        "repository": "acme/backend",
        "repository_owner": "acme",
        "repository_id": "74",
        "repository_visibility": "private",
        "run_id": run,
        "run_number": "7",
        "run_attempt": "1",
        "actor": "octocat",
        "workflow": "CI",
        "workflow_ref": "acme/backend/.github/workflows/ci.yml@refs/heads/main",
        "event_name": "push",
        "ref_type": "branch",
        "job_workflow_ref": "acme/backend/.github/workflows/ci.yml@refs/heads/main",
        "iss": issuer,
        "nbf": now - 5,
        "exp": now + 300,
        "iat": now - 5,
    })
}

/// Claims like GitLab's `id_tokens` (docs: "OpenID Connect (OIDC) Authentication Using ID Tokens").
fn gitlab_claims(issuer: &str) -> Value {
    let now = now();
    json!({
        "namespace_id": "1", "namespace_path": "group", "project_id": "22", "project_path": "group/app",
        "user_id": "5", "user_login": "dev", "user_email": "dev@example.com",
        "pipeline_id": "45", "pipeline_source": "push", "job_id": "99",
        "ref": "main", "ref_type": "branch", "ref_protected": "true",
        "jti": uuid::Uuid::new_v4().to_string(),
        "iss": issuer, "iat": now, "nbf": now, "exp": now + 300,
        "sub": "project_path:group/app:ref_type:branch:ref:main", "aud": AUDIENCE,
    })
}

/// The exchange, as a job in the hub's only workspace.
async fn exchange(app: &TestApp, id_token: &str) -> Api {
    exchange_in(app, id_token, None).await
}

/// The exchange for the workspace a job names.
async fn exchange_in(app: &TestApp, id_token: &str, workspace: Option<&str>) -> Api {
    let mut body = json!({ "id_token": id_token });
    if let Some(workspace) = workspace {
        body["workspace"] = json!(workspace);
    }
    app.api("POST", "/oidc/token", None, Some(body)).await
}

/// The exchange from a client that accepts compression: a minted secret never comes
/// compressed, and is never stored by a cache.
async fn exchange_accepting_compression(app: &TestApp, id_token: &str) -> Api {
    let accept = [("accept-encoding", "br, gzip")];
    let res = app.api_with("POST", "/oidc/token", None, Some(json!({ "id_token": id_token })), &accept).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.headers.get("content-encoding"), None, "a minted token is never compressed");
    assert_eq!(res.headers["cache-control"], "no-store, no-transform");
    res
}

struct World {
    issuer: Issuer,
    admin: String,
    owner: app::people::CurrentUser,
}

async fn world(app: &TestApp) -> World {
    let issuer = Issuer::start(&["rsa1", "ec1"]).await;
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    // A policy mints workspace tokens, so a token that makes one is a workspace token.
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"], "owner": "workspace"})).await.token;
    for key in ["WEB", "API"] {
        app.api("POST", "/projects", Some(&admin), Some(json!({"key": key, "name": key}))).await;
    }
    World { issuer, admin, owner }
}

async fn github_policy(app: &TestApp, w: &World, admin: &str) -> Api {
    let policy = json!({
        "name": "backend main", "issuer": w.issuer.url(), "audience": AUDIENCE,
        "conditions": {"repository": "acme/backend", "ref": "refs/heads/*"},
        "projects": ["WEB"], "scopes": ["write"], "token_lifetime_minutes": 10,
    });
    app.api("POST", "/trust-policies", Some(admin), Some(policy)).await
}

async fn a_valid_exchange_mints_a_project_token_that_uploads(app: TestApp) {
    let w = world(&app).await;
    let created = github_policy(&app, &w, &w.admin).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let policy_id = created.body["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["data"]["scopes"], json!(["read", "write"]));

    let jwt = w.issuer.sign("rsa1", github_claims(&w.issuer.url(), "123"));
    let res = exchange_accepting_compression(&app, &jwt).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let minted = &res.body["data"];
    assert_eq!((minted["policy_id"].as_str(), &minted["projects"]), (Some(policy_id.as_str()), &json!(["WEB"])));
    let token = minted["token"].as_str().unwrap().to_string();
    let expires = time::OffsetDateTime::parse(
        minted["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires.unix_timestamp() - now();
    assert!((590..=600).contains(&left), "ten minutes, got {left} s");

    // It uploads to its project, and sees no other.
    let me = app.api("GET", "/me", Some(&token), None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let res = app.api("POST", "/projects/WEB/runs", Some(&token), Some(json!({"name": "from CI"}))).await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(app.api("GET", "/projects/API/runs", Some(&token), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.api("GET", "/tokens", Some(&token), None).await.error_code(), "insufficient_scope");

    // The list says what it was minted for; the audit entry names the policy and the job.
    let list = app.api("GET", "/tokens", Some(&w.admin), None).await.body["data"].clone();
    let row = list.as_array().unwrap().iter().find(|t| t["minted_for"].is_string()).unwrap().clone();
    assert_eq!(row["minted_for"], "acme/backend@refs/heads/main (run 123)");
    assert_eq!((row["owner"].as_str(), row["suggested_scope"].is_null()), (Some("workspace"), true));
    let audit = app.api("GET", "/audit-logs?action=token.minted_oidc", Some(&w.admin), None).await;
    let entry = &audit.body["data"][0];
    assert_eq!(entry["details"]["policy_id"], policy_id.as_str());
    assert_eq!(
        (entry["actor"]["type"].as_str(), entry["actor"]["label"].as_str()),
        (Some("trust_policy"), Some("Trusted CI: backend main"))
    );
    assert_eq!(entry["details"]["claims"]["repository"], "acme/backend");
    assert_eq!(entry["details"]["claims"]["run_id"], "123");
    assert_eq!(entry["details"]["claims"]["actor"], "octocat");
    assert!(!audit.body.to_string().contains(&jwt), "the audit log never holds the ID token");

    // A GitLab-shaped token signed with the EC key, for a GitLab policy.
    let gitlab = json!({
        "name": "gitlab app", "issuer": w.issuer.url(), "audience": AUDIENCE,
        "conditions": {"project_path": "group/app", "ref_protected": "true"},
        "projects": ["API"], "scopes": ["read"], "token_lifetime_minutes": 5,
    });
    assert_eq!(app.api("POST", "/trust-policies", Some(&w.admin), Some(gitlab)).await.status, StatusCode::CREATED);
    let res = exchange(&app, &w.issuer.sign("ec1", gitlab_claims(&w.issuer.url()))).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["data"]["scopes"], json!(["read"]));
    assert_eq!(res.body["data"]["projects"], json!(["API"]));

    // A minted token expires on its own.
    let minted_id = row["id"].as_str().unwrap();
    app.sql("UPDATE api_tokens SET expires_at = $1 WHERE id = $2", minted_id, now() - 1).await;
    assert_eq!(app.api("GET", "/me", Some(&token), None).await.error_code(), "expired_token");
}

async fn every_refusal_says_which_check_failed(app: TestApp) {
    let w = world(&app).await;
    github_policy(&app, &w, &w.admin).await;
    let url = w.issuer.url();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = github_claims(&url, "9");
        change(&mut claims);
        claims
    };
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "wrong audience",
            w.issuer.sign("rsa1", with(&|c| c["aud"] = json!("https://elsewhere.test"))),
            StatusCode::FORBIDDEN,
            "audience",
        ),
        (
            "expired",
            w.issuer.sign("rsa1", with(&|c| c["exp"] = json!(now() - 120))),
            StatusCode::UNAUTHORIZED,
            "expired",
        ),
        (
            "not yet valid",
            w.issuer.sign("rsa1", with(&|c| c["nbf"] = json!(now() + 600))),
            StatusCode::UNAUTHORIZED,
            "not valid yet",
        ),
        (
            "issued in the future",
            w.issuer.sign("rsa1", with(&|c| c["iat"] = json!(now() + 600))),
            StatusCode::UNAUTHORIZED,
            "future",
        ),
        (
            "wrong issuer",
            w.issuer.sign("rsa1", with(&|c| c["iss"] = json!("https://token.actions.example"))),
            StatusCode::UNAUTHORIZED,
            "issuer",
        ),
        (
            "other branch",
            w.issuer.sign("rsa1", with(&|c| c["ref"] = json!("refs/tags/v1"))),
            StatusCode::FORBIDDEN,
            "claims",
        ),
        (
            "other repository",
            w.issuer.sign("rsa1", with(&|c| c["repository"] = json!("acme/backend-fork"))),
            StatusCode::FORBIDDEN,
            "claims",
        ),
        (
            "no aud",
            w.issuer.sign(
                "rsa1",
                with(&|c| {
                    c.as_object_mut().unwrap().remove("aud");
                }),
            ),
            StatusCode::UNAUTHORIZED,
            "aud",
        ),
        ("not a JWT", "nonsense".to_string(), StatusCode::UNAUTHORIZED, "not a signed JWT"),
    ];
    for (what, jwt, status, needle) in cases {
        let res = exchange(&app, &jwt).await;
        assert_eq!(res.status, status, "{what}: {}", res.body);
        let code = if status == StatusCode::FORBIDDEN { "oidc_no_policy" } else { "oidc_invalid" };
        assert_eq!(res.error_code(), code, "{what}");
        assert!(res.body["error"]["message"].as_str().unwrap().contains(needle), "{what}: {}", res.body);
        assert!(!res.body.to_string().contains(&jwt) || jwt.len() < 20, "{what}: the JWT is never echoed");
    }

    // alg none, and HS256 "signed" with the issuer's public key as the secret.
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = github_claims(&url, "10");
    let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT", "kid": "rsa1"})), b64(&claims));
    assert_eq!(exchange(&app, &none).await.error_code(), "oidc_invalid");
    let public_jwk = fixture("rsa1.jwk.json");
    let hs = encode(
        &Header { kid: Some("rsa1".into()), ..Header::new(Algorithm::HS256) },
        &claims,
        &EncodingKey::from_secret(public_jwk.as_bytes()),
    )
    .unwrap();
    let res = exchange(&app, &hs).await;
    assert_eq!((res.status, res.error_code()), (StatusCode::UNAUTHORIZED, "oidc_invalid"));
    assert!(res.body["error"]["message"].as_str().unwrap().contains("symmetric"));
    // An EC-signed token claiming the RSA key's kid: the key decides the algorithm.
    let pem = fixture("ec1.pem");
    let mixed = encode(
        &Header { kid: Some("rsa1".into()), ..Header::new(Algorithm::ES256) },
        &claims,
        &EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(exchange(&app, &mixed).await.body["error"]["message"].as_str().unwrap().contains(UNVERIFIED));
    // A bad signature.
    let good = w.issuer.sign("rsa1", github_claims(&url, "11"));
    let (head, _) = good.rsplit_once('.').unwrap();
    let forged = format!("{head}.{}", "A".repeat(342));
    assert!(exchange(&app, &forged).await.body["error"]["message"].as_str().unwrap().contains("signature"));

    // A jti is accepted once.
    let once = w.issuer.sign("rsa1", github_claims(&url, "12"));
    assert_eq!(exchange(&app, &once).await.status, StatusCode::CREATED);
    let again = exchange(&app, &once).await;
    assert_eq!((again.status, again.error_code()), (StatusCode::UNAUTHORIZED, "oidc_invalid"));
    assert!(again.body["error"]["message"].as_str().unwrap().contains("replayed"));

    // A disabled policy matches nothing; enabled again, it does.
    let keep = json!({"name": "other", "issuer": url, "audience": AUDIENCE, "conditions": {"repository": "acme/other"}, "projects": ["API"], "scopes": ["read"]});
    app.api("POST", "/trust-policies", Some(&w.admin), Some(keep)).await;
    let list = app.api("GET", "/trust-policies", Some(&w.admin), None).await.body["data"].clone();
    let id = list.as_array().unwrap().iter().find(|p| p["name"] == "backend main").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.api("POST", &format!("/trust-policies/{id}/disable"), Some(&w.admin), None).await.body["data"]["status"],
        "disabled"
    );
    let res = exchange(&app, &w.issuer.sign("rsa1", github_claims(&url, "13"))).await;
    assert_eq!(res.error_code(), "oidc_no_policy", "{}", res.body);
    app.api("POST", &format!("/trust-policies/{id}/enable"), Some(&w.admin), None).await;
    assert_eq!(exchange(&app, &w.issuer.sign("rsa1", github_claims(&url, "14"))).await.status, StatusCode::CREATED);
    // Deleted: gone.
    assert_eq!(
        app.api("DELETE", &format!("/trust-policies/{id}"), Some(&w.admin), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(exchange(&app, &w.issuer.sign("rsa1", github_claims(&url, "15"))).await.error_code(), "oidc_no_policy");
    let actions = app.audit_actions(&w.owner.tenant_id).await;
    for action in ["trust_policy.created", "trust_policy.disabled", "trust_policy.enabled", "trust_policy.deleted"] {
        assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
    }
}

/// A workspace admin token, project WEB and a policy trusting `repository=acme/backend`
/// with `extra` conditions, in a new workspace `name`.
async fn neighbour(app: &TestApp, w: &World, name: &str, extra: Value) -> String {
    let owner = app.bootstrap(name, &format!("owner@{}.example", name.to_lowercase())).await;
    let admin = app.token(&owner, json!({"name": "admin", "scopes": ["admin"], "owner": "workspace"})).await.token;
    app.api("POST", "/projects", Some(&admin), Some(json!({"key": "WEB", "name": "Web"}))).await;
    let mut conditions = json!({"repository": "acme/backend"});
    for (k, v) in extra.as_object().unwrap() {
        conditions[k] = v.clone();
    }
    let policy = json!({"name": format!("{name} trusts acme/backend"), "issuer": w.issuer.url(), "audience": AUDIENCE,
        "conditions": conditions, "projects": ["WEB"], "scopes": ["write"]});
    let res = app.api("POST", "/trust-policies", Some(&admin), Some(policy)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    admin
}

async fn workspace_of_token(app: &TestApp, token: &str) -> String {
    let me = app.api("GET", "/me", Some(token), None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    me.body["tenant"]["name"].as_str().unwrap().to_string()
}

/// Acme trusts its main branch; Globex then trusts `repository=acme/backend` too. Before,
/// Acme's main-branch job got 403 "more than one workspace" (Globex could stop Acme's CI)
/// and its feature-branch job got a Globex token (its results went to Globex).
async fn two_workspaces_trusting_one_repository_never_meet(app: TestApp) {
    let w = world(&app).await;
    let url = w.issuer.url();
    let mine = json!({"name": "main only", "issuer": url, "audience": AUDIENCE,
        "conditions": {"repository": "acme/backend", "ref": "refs/heads/main"}, "projects": ["WEB"], "scopes": ["write"]});
    assert_eq!(app.api("POST", "/trust-policies", Some(&w.admin), Some(mine)).await.status, StatusCode::CREATED);
    let globex = neighbour(&app, &w, "Globex", json!({})).await;
    app.bootstrap("Hooli", "owner@hooli.example").await;
    let job = |git_ref: &str, run: &str| {
        let mut claims = github_claims(&url, run);
        claims["ref"] = json!(git_ref);
        w.issuer.sign("ec1", claims)
    };

    // Several workspaces and none named: the job must say which.
    let res = exchange(&app, &job("refs/heads/main", "0")).await;
    assert_eq!((res.status, res.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), "{}", res.body);
    assert!(res.body["error"]["message"].as_str().unwrap().contains("QA_HUB_WORKSPACE"), "{}", res.body);

    // Acme's main-branch job: an Acme token, whatever Globex trusts.
    let res = exchange_in(&app, &job("refs/heads/main", "1"), Some("Acme")).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(workspace_of_token(&app, res.body["data"]["token"].as_str().unwrap()).await, "Acme");
    // Acme's feature-branch job: Acme trusts only main, so no token, and never Globex's.
    let res = exchange_in(&app, &job("refs/heads/feature", "2"), Some("Acme")).await;
    assert_eq!((res.status, res.error_code()), (StatusCode::FORBIDDEN, "oidc_no_policy"), "{}", res.body);
    // Globex's own job gets a Globex token.
    let res = exchange_in(&app, &job("refs/heads/feature", "3"), Some("Globex")).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(workspace_of_token(&app, res.body["data"]["token"].as_str().unwrap()).await, "Globex");

    // Both at once: each job lands in the workspace it named.
    let runs: Vec<(&str, String)> = (0..8)
        .map(|n| (if n % 2 == 0 { "Acme" } else { "Globex" }, job("refs/heads/main", &format!("c{n}"))))
        .collect();
    let answers = futures::future::join_all(runs.iter().map(|(ws, jwt)| exchange_in(&app, jwt, Some(ws)))).await;
    for ((ws, _), res) in runs.iter().zip(answers) {
        assert_eq!(res.status, StatusCode::CREATED, "{ws}: {}", res.body);
        assert_eq!(workspace_of_token(&app, res.body["data"]["token"].as_str().unwrap()).await, *ws);
    }

    // A workspace that does not exist answers exactly like one that trusts no such issuer.
    let unknown = exchange_in(&app, &job("refs/heads/main", "4"), Some("Initech")).await;
    let untrusting = exchange_in(&app, &job("refs/heads/main", "5"), Some("Hooli")).await;
    assert_eq!((unknown.status, unknown.error_code()), (StatusCode::UNAUTHORIZED, "oidc_invalid"));
    assert_eq!(unknown.body["error"], untrusting.body["error"], "nothing tells whether a workspace exists");
    // Nor whether it trusts the issuer: a forged signature to a trusting workspace is
    // answered as a workspace that trusts nothing.
    let good = job("refs/heads/main", "6");
    let (head, _) = good.rsplit_once('.').unwrap();
    let forged = format!("{head}.{}", "A".repeat(86));
    let trusting = exchange_in(&app, &forged, Some("Acme")).await;
    assert_eq!(trusting.body["error"], untrusting.body["error"], "a forged token learns nothing");

    // Each workspace sees and touches only its own policies.
    let theirs = app.api("GET", "/trust-policies", Some(&globex), None).await.body["data"].clone();
    assert_eq!(theirs.as_array().unwrap().len(), 1);
    let their_id = theirs[0]["id"].as_str().unwrap().to_string();
    for (method, path) in [
        ("GET", format!("/trust-policies/{their_id}")),
        ("DELETE", format!("/trust-policies/{their_id}")),
        ("POST", format!("/trust-policies/{their_id}/disable")),
    ] {
        assert_eq!(app.api(method, &path, Some(&w.admin), None).await.status, StatusCode::NOT_FOUND, "{method} {path}");
    }
}

/// With one workspace, a job names none and is served (the seeds' one-line CI step);
/// a workspace holding the request's host name is the one a nameless job gets.
async fn one_workspace_or_its_host_needs_no_name(app: TestApp) {
    let w = world(&app).await;
    github_policy(&app, &w, &w.admin).await;
    let url = w.issuer.url();
    let res = exchange(&app, &w.issuer.sign("rsa1", github_claims(&url, "1"))).await;
    assert_eq!(res.status, StatusCode::CREATED, "one workspace: {}", res.body);
    neighbour(&app, &w, "Globex", json!({})).await;
    let res = exchange(&app, &w.issuer.sign("rsa1", github_claims(&url, "2"))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "two workspaces, none named: {}", res.body);
    app::tenants::server::set_host(&app.state, "Acme", "qa.acme.example", true).await.unwrap();
    let accept = [("host", "qa.acme.example")];
    let jwt = w.issuer.sign("rsa1", github_claims(&url, "3"));
    let res = app.api_with("POST", "/oidc/token", None, Some(json!({ "id_token": jwt })), &accept).await;
    assert_eq!(res.status, StatusCode::CREATED, "the host's workspace: {}", res.body);
    assert_eq!(workspace_of_token(&app, res.body["data"]["token"].as_str().unwrap()).await, "Acme");
}

/// A policy made by `admin` for `repository=acme/backend` (any ref); its id.
async fn policy_by(app: &TestApp, w: &World, admin: &str, name: &str) -> String {
    let policy = json!({"name": name, "issuer": w.issuer.url(), "audience": AUDIENCE,
        "conditions": {"repository": "acme/backend"}, "projects": ["WEB"], "scopes": ["write"]});
    let res = app.api("POST", "/trust-policies", Some(admin), Some(policy)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{name}: {}", res.body);
    res.body["data"]["id"].as_str().unwrap().to_string()
}

/// An exchange's refusal message, asserting it is 403 `oidc_no_policy`.
#[track_caller]
fn refused_because(res: &Api) -> String {
    assert_eq!((res.status, res.error_code()), (StatusCode::FORBIDDEN, "oidc_no_policy"), "{}", res.body);
    res.body["error"]["message"].as_str().unwrap().to_string()
}

/// Finding 1: a trust policy outlived and outgrew its creator. Now every exchange asks
/// whether the creator, as it stands at that moment, could mint the token itself.
async fn a_policy_speaks_for_its_creator_at_every_exchange(app: TestApp) {
    let w = world(&app).await;
    let url = w.issuer.url();
    let runs = AtomicUsize::new(0);
    let job = || w.issuer.sign("rsa1", github_claims(&url, &format!("r{}", runs.fetch_add(1, Ordering::SeqCst))));
    let ws_admin = |name: &str, extra: Value| {
        let mut req = json!({"name": name, "scopes": ["admin"], "owner": "workspace"});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        app.token(&w.owner, req)
    };

    // A token that expires soon: the minted token never outlives it, and once it has
    // expired the policy mints nothing until someone with the reach saves it again.
    let short = ws_admin("short", json!({})).await;
    let policy = policy_by(&app, &w, &short.token, "short-lived creator").await;
    app.sql("UPDATE api_tokens SET expires_at = $1 WHERE id = $2", &short.summary.id, now() + 120).await;
    let res = exchange(&app, &job()).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let expires = time::OffsetDateTime::parse(
        res.body["data"]["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(expires.unix_timestamp() <= now() + 120, "cut to the creating token's expiry, got {expires}");
    app.sql("UPDATE api_tokens SET expires_at = $1 WHERE id = $2", &short.summary.id, now() - 1).await;
    assert_eq!(app.api("GET", "/me", Some(&short.token), None).await.error_code(), "expired_token");
    assert!(refused_because(&exchange(&app, &job()).await).contains("expired"));
    let saved = app
        .api("PATCH", &format!("/trust-policies/{policy}"), Some(&w.admin), Some(json!({"name": "saved again"})))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(exchange(&app, &job()).await.status, StatusCode::CREATED, "saved by a live admin, it mints again");
    app.api("DELETE", &format!("/trust-policies/{policy}"), Some(&w.admin), None).await;

    // Disabled, revoked: nothing; enabled again: it mints.
    let creator = ws_admin("creator", json!({})).await;
    let policy = policy_by(&app, &w, &creator.token, "by a token").await;
    assert_eq!(exchange(&app, &job()).await.status, StatusCode::CREATED);
    let token_path = format!("/tokens/{}", creator.summary.id);
    app.api("POST", &format!("{token_path}/disable"), Some(&w.admin), None).await;
    assert!(refused_because(&exchange(&app, &job()).await).contains("disabled"));
    app.api("POST", &format!("{token_path}/enable"), Some(&w.admin), None).await;
    assert_eq!(exchange(&app, &job()).await.status, StatusCode::CREATED);
    // Being rotated away, it stops at retire_at: nothing minted outlives that.
    app.sql("UPDATE api_tokens SET retire_at = $1 WHERE id = $2", &creator.summary.id, now() + 60).await;
    let res = exchange(&app, &job()).await;
    let expires = time::OffsetDateTime::parse(
        res.body["data"]["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(expires.unix_timestamp() <= now() + 60, "cut to the rotation's end, got {expires}");
    app.sql("UPDATE api_tokens SET retire_at = NULL WHERE id = $2 AND $1 = $1", &creator.summary.id, 0).await;
    // Narrowed to write: it may no longer manage trusted CI, so neither may its policy.
    let narrowed = app.api("PATCH", &token_path, Some(&w.admin), Some(json!({"scopes": ["write"]}))).await;
    assert_eq!(narrowed.status, StatusCode::OK, "{}", narrowed.body);
    assert!(refused_because(&exchange(&app, &job()).await).contains("may no longer mint"));
    app.api("POST", &format!("{token_path}/revoke"), Some(&w.admin), None).await;
    assert!(refused_because(&exchange(&app, &job()).await).contains("revoked"));
    // A lapsed policy never blocks a good one that matches the same job.
    let good = policy_by(&app, &w, &w.admin, "a good one").await;
    let res = exchange(&app, &job()).await;
    assert_eq!(
        (res.status, res.body["data"]["policy_id"].as_str()),
        (StatusCode::CREATED, Some(good.as_str())),
        "{}",
        res.body
    );
    app.api("DELETE", &format!("/trust-policies/{good}"), Some(&w.admin), None).await;
    app.api("DELETE", &format!("/trust-policies/{policy}"), Some(&w.admin), None).await;

    // A person's token never makes a policy that mints workspace tokens.
    let personal = app.token(&w.owner, json!({"name": "mine", "scopes": ["admin"]})).await;
    let policy = json!({"name": "p", "issuer": url, "audience": AUDIENCE, "conditions": {"repository": "acme/backend"}, "projects": ["WEB"], "scopes": ["write"]});
    let res = app.api("POST", "/trust-policies", Some(&personal.token), Some(policy)).await;
    assert_eq!(res.error_code(), "insufficient_scope", "{}", res.body);
    assert!(res.body["error"]["message"].as_str().unwrap().contains("workspace token"), "{}", res.body);
    // Nor does one that claims it was (a policy saved before this rule).
    let id = policy_by(&app, &w, &w.admin, "claimed").await;
    sqlx::query("UPDATE trust_policies SET creator_id = $1 WHERE id = $2")
        .bind(&personal.summary.id)
        .bind(&id)
        .execute(&app.state.db)
        .await
        .unwrap();
    assert!(refused_because(&exchange(&app, &job()).await).contains("may no longer mint"));
    // A policy whose creator nobody recorded mints nothing.
    sqlx::query("UPDATE trust_policies SET creator_kind = NULL, creator_id = NULL WHERE id = $1")
        .bind(&id)
        .execute(&app.state.db)
        .await
        .unwrap();
    assert!(refused_because(&exchange(&app, &job()).await).contains("saved before"));
    app.api("DELETE", &format!("/trust-policies/{id}"), Some(&w.admin), None).await;

    // An address-limited admin token's policy mints tokens limited the same way.
    let limited = ws_admin("limited", json!({"ip_allowlist": ["127.0.0.1/32"]})).await;
    policy_by(&app, &w, &limited.token, "limited").await;
    let res = exchange(&app, &job()).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let minted = workspace_token_row(&app, &w.admin, res.body["data"]["token"].as_str().unwrap()).await;
    assert_eq!(minted["ip_allowlist"], json!(["127.0.0.1/32"]), "{minted}");
}

/// The list row of a token, found by its prefix.
async fn workspace_token_row(app: &TestApp, admin: &str, token: &str) -> Value {
    let prefix = token.split('_').nth(1).unwrap();
    let list = app.api("GET", "/tokens?limit=200", Some(admin), None).await.body["data"].clone();
    list.as_array().unwrap().iter().find(|t| t["prefix"].as_str().unwrap().contains(prefix)).unwrap().clone()
}

/// Finding 1, for people: an admin's policy stops when the admin is suspended.
async fn a_persons_policy_stops_with_the_person(app: TestApp) {
    let w = world(&app).await;
    let url = w.issuer.url();
    app.add_user("Acme", "admin@example.com", app::people::Role::Admin).await;
    let admin = app.login("admin@example.com").await;
    let form = [
        ("name", "by a person"),
        ("issuer", "custom"),
        ("custom_issuer", url.as_str()),
        ("audience", AUDIENCE),
        ("conditions", "repository=acme/backend"),
        ("project_access", "specific"),
        ("projects[]", "WEB"),
        ("scope", "write"),
    ];
    let (status, body) = app.call(&admin, "trust/create", &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(exchange(&app, &w.issuer.sign("rsa1", github_claims(&url, "1"))).await.status, StatusCode::CREATED);
    app::people::server::service::suspend_account(&app.state, "admin@example.com", true).await.unwrap();
    assert!(
        refused_because(&exchange(&app, &w.issuer.sign("rsa1", github_claims(&url, "2"))).await).contains("suspended")
    );
    app::people::server::service::suspend_account(&app.state, "admin@example.com", false).await.unwrap();
    assert_eq!(exchange(&app, &w.issuer.sign("rsa1", github_claims(&url, "3"))).await.status, StatusCode::CREATED);
}

/// Finding 3: source pins are exact. `acme*` and `1*` are refused, and a glob stored
/// before this rule matches nothing.
async fn source_pins_are_exact(app: TestApp) {
    let w = world(&app).await;
    let url = w.issuer.url();
    for (claim, value) in
        [("repository", "acme*"), ("repository_id", "1*"), ("project_path", "acme/*"), ("repository_owner", "ac*me")]
    {
        let policy = json!({"name": "p", "issuer": url, "audience": AUDIENCE, "conditions": {claim: value}, "projects": ["WEB"], "scopes": ["write"]});
        let res = app.api("POST", "/trust-policies", Some(&w.admin), Some(policy)).await;
        assert_eq!(res.error_code(), "invalid_request", "{claim}={value}: {}", res.body);
    }
    let id = policy_by(&app, &w, &w.admin, "pinned").await;
    sqlx::query("UPDATE trust_policies SET conditions = $1 WHERE id = $2")
        .bind(r#"{"repository":"acme*"}"#)
        .bind(&id)
        .execute(&app.state.db)
        .await
        .unwrap();
    let mut evil = github_claims(&url, "1");
    evil["repository"] = json!("acme-evil/app");
    assert!(refused_because(&exchange(&app, &w.issuer.sign("rsa1", evil)).await).contains("claims"));
    let mut evil = github_claims(&url, "2");
    evil["repository"] = json!("acme*");
    assert_eq!(
        exchange(&app, &w.issuer.sign("rsa1", evil)).await.status,
        StatusCode::CREATED,
        "a stored value matches itself exactly"
    );
}

/// Finding 4: issuers and `jwks_uri` are parsed URLs. User-info tricks are refused before
/// anything is fetched, a policy that names one (saved before the rule) fetches nothing,
/// and a discovery document cannot send the hub to another host.
async fn issuers_are_urls_and_the_hub_fetches_nothing_else(app: TestApp) {
    let w = world(&app).await;
    let url = w.issuer.url();
    let port = url.rsplit(':').next().unwrap().to_string();
    let elsewhere = Issuer::start(&["rsa1"]).await;
    for tricky in [
        format!("http://localhost:1@127.0.0.1:{port}"),
        "http://127.0.0.1:@169.254.169.254".to_string(),
        format!("https://x@127.0.0.1:{port}"),
        "https://169.254.169.254".to_string(),
        format!("http://127.0.0.1:{port}/a/../b"),
    ] {
        let policy = json!({"name": "p", "issuer": tricky, "audience": AUDIENCE, "conditions": {"repository": "acme/backend"}, "projects": ["WEB"], "scopes": ["write"]});
        let res = app.api("POST", "/trust-policies", Some(&w.admin), Some(policy)).await;
        assert_eq!(res.error_code(), "invalid_request", "{tricky}: {}", res.body);
    }
    // A stored policy naming the trick: the exchange refuses without a request.
    let id = policy_by(&app, &w, &w.admin, "stored").await;
    let tricky = format!("http://localhost:1@127.0.0.1:{port}");
    sqlx::query("UPDATE trust_policies SET issuer = $1 WHERE id = $2")
        .bind(&tricky)
        .bind(&id)
        .execute(&app.state.db)
        .await
        .unwrap();
    let mut claims = github_claims(&url, "1");
    claims["iss"] = json!(tricky);
    let res = exchange(&app, &w.issuer.sign("rsa1", claims)).await;
    assert_eq!(res.error_code(), "oidc_invalid", "{}", res.body);
    assert_eq!((w.issuer.discoveries(), w.issuer.fetches()), (0, 0), "nothing was fetched");
    sqlx::query("UPDATE trust_policies SET issuer = $1 WHERE id = $2")
        .bind(&url)
        .bind(&id)
        .execute(&app.state.db)
        .await
        .unwrap();
    // A discovery document naming another host's keys: refused, that host never asked.
    w.issuer.point_jwks_to(&format!("{}/jwks", elsewhere.url()));
    let res = exchange(&app, &w.issuer.sign("rsa1", github_claims(&url, "2"))).await;
    assert!(res.body["error"]["message"].as_str().unwrap().contains(UNVERIFIED), "{}", res.body);
    assert_eq!((w.issuer.discoveries(), elsewhere.fetches()), (1, 0));
}

/// Without QAHUB_OIDC_INSECURE_LOOPBACK, no policy may name an issuer on this machine.
#[tokio::test]
async fn loopback_issuers_need_the_opt_in() {
    let settings = app::state::Settings { oidc_insecure_loopback: false, ..test_settings() };
    let app = spawn_app_with(Kind::Sqlite, settings).await.unwrap();
    let w = world(&app).await;
    for issuer in [w.issuer.url(), "https://localhost:8443".to_string(), "http://[::1]:9000".to_string()] {
        let policy = json!({"name": "p", "issuer": issuer, "audience": AUDIENCE, "conditions": {"repository": "acme/backend"}, "projects": ["WEB"], "scopes": ["write"]});
        let res = app.api("POST", "/trust-policies", Some(&w.admin), Some(policy)).await;
        assert_eq!(res.error_code(), "invalid_request", "{issuer}: {}", res.body);
        assert!(
            res.body["error"]["message"].as_str().unwrap().contains("QAHUB_OIDC_INSECURE_LOOPBACK"),
            "{}",
            res.body
        );
    }
    let policy = json!({"name": "p", "issuer": "https://token.actions.githubusercontent.com", "audience": AUDIENCE, "conditions": {"repository": "acme/backend"}, "projects": ["WEB"], "scopes": ["write"]});
    assert_eq!(app.api("POST", "/trust-policies", Some(&w.admin), Some(policy)).await.status, StatusCode::CREATED);
}

/// `s` → `n − s` on an ES256 JWT: a second valid signature of the same token.
fn malleate_es256(jwt: &str) -> String {
    use base64::Engine;
    const N: [u8; 32] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xBC, 0xE6,
        0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
    ];
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (head, sig) = jwt.rsplit_once('.').unwrap();
    let mut sig = b64.decode(sig).unwrap();
    let s = &mut sig[32..];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = N[i] as i16 - s[i] as i16 - borrow;
        (s[i], borrow) = if d < 0 { ((d + 256) as u8, 1) } else { (d as u8, 0) };
    }
    format!("{head}.{}", b64.encode(sig))
}

/// Finding 5: with no `jti`, a re-encoded signature is the same token.
async fn a_re_encoded_signature_is_the_same_token(app: TestApp) {
    let w = world(&app).await;
    github_policy(&app, &w, &w.admin).await;
    let mut claims = github_claims(&w.issuer.url(), "1");
    claims.as_object_mut().unwrap().remove("jti");
    let jwt = w.issuer.sign("ec1", claims);
    let twin = malleate_es256(&jwt);
    assert_ne!(jwt, twin);
    assert_eq!(exchange(&app, &jwt).await.status, StatusCode::CREATED);
    let again = exchange(&app, &twin).await;
    assert_eq!((again.status, again.error_code()), (StatusCode::UNAUTHORIZED, "oidc_invalid"), "{}", again.body);
    assert!(again.body["error"]["message"].as_str().unwrap().contains("replayed"), "{}", again.body);
    // The twin alone (a token not seen before) verifies: the check above is the replay rule.
    let mut claims = github_claims(&w.issuer.url(), "2");
    claims.as_object_mut().unwrap().remove("jti");
    claims["iat"] = json!(now() - 30);
    let res = exchange(&app, &malleate_es256(&w.issuer.sign("ec1", claims))).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
}

/// Finding 7: a key published for encryption never checks a signature, and an ID token
/// good for more than a day is refused.
async fn long_lived_id_tokens_and_encryption_keys_are_refused(app: TestApp) {
    let w = world(&app).await;
    let mut enc: Value = serde_json::from_str(&fixture("ec1.jwk.json")).unwrap();
    enc["use"] = json!("enc");
    let mut sig: Value = serde_json::from_str(&fixture("rsa1.jwk.json")).unwrap();
    sig["use"] = json!("sig");
    w.issuer.publish_jwks(vec![sig, enc]);
    github_policy(&app, &w, &w.admin).await;
    let url = w.issuer.url();
    let res = exchange(&app, &w.issuer.sign("ec1", github_claims(&url, "1"))).await;
    assert_eq!(res.error_code(), "oidc_invalid");
    assert!(res.body["error"]["message"].as_str().unwrap().contains(UNVERIFIED), "{}", res.body);
    assert_eq!(exchange(&app, &w.issuer.sign("rsa1", github_claims(&url, "2"))).await.status, StatusCode::CREATED);

    let mut claims = github_claims(&url, "3");
    claims["exp"] = json!(now() + 2 * 86_400);
    let res = exchange(&app, &w.issuer.sign("rsa1", claims)).await;
    assert_eq!(res.error_code(), "oidc_invalid");
    assert!(res.body["error"]["message"].as_str().unwrap().contains("more than a day"), "{}", res.body);
    let mut claims = github_claims(&url, "4");
    claims["exp"] = json!(now() + 86_000);
    assert_eq!(exchange(&app, &w.issuer.sign("rsa1", claims)).await.status, StatusCode::CREATED, "a day is fine");
    // Times the JWT library would round or overflow are refused, not read as "now".
    for (claim, value) in
        [("exp", json!(now() as f64 + 300.5)), ("exp", json!(1e30)), ("iat", json!(-9_000_000_000_000i64))]
    {
        let mut claims = github_claims(&url, &format!("t-{claim}-{value}"));
        claims[claim] = value.clone();
        let res = exchange(&app, &w.issuer.sign("rsa1", claims)).await;
        assert_eq!(
            (res.status, res.error_code()),
            (StatusCode::UNAUTHORIZED, "oidc_invalid"),
            "{claim}={value}: {}",
            res.body
        );
    }
}

async fn who_may_make_a_policy_and_what_it_may_say(app: TestApp) {
    let w = world(&app).await;
    let owner = &w.owner;
    let project_admin = app.token(owner, json!({"name": "p", "scopes": ["admin"], "projects": ["WEB"]})).await.token;
    let writer = app.token(owner, json!({"name": "w", "scopes": ["write"]})).await.token;
    assert_eq!(github_policy(&app, &w, &project_admin).await.error_code(), "project_restricted");
    assert_eq!(github_policy(&app, &w, &writer).await.error_code(), "insufficient_scope");
    assert_eq!(app.api("GET", "/trust-policies", Some(&writer), None).await.error_code(), "insufficient_scope");
    let base = json!({"name": "n", "issuer": w.issuer.url(), "audience": AUDIENCE, "conditions": {"repository": "acme/backend"}, "projects": ["WEB"], "scopes": ["write"]});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (what, body, code) in [
        ("all projects from a token", with("projects", Value::Null), "forbidden"),
        ("no source pinned", with("conditions", json!({"ref": "refs/heads/main"})), "invalid_request"),
        ("a bare glob", with("conditions", json!({"repository": "*"})), "invalid_request"),
        ("sixteen minutes", with("token_lifetime_minutes", json!(16)), "invalid_request"),
        ("admin scope", with("scopes", json!(["admin"])), "invalid_request"),
        ("plain http issuer", with("issuer", json!("http://ci.example.com")), "invalid_request"),
        ("unknown project", with("projects", json!(["NOPE"])), "invalid_request"),
    ] {
        let res = app.api("POST", "/trust-policies", Some(&w.admin), Some(body)).await;
        assert_eq!(res.error_code(), code, "{what}: {}", res.body);
    }
    // The default audience is the hub's own URL; the default lifetime ten minutes.
    let mut body = base.clone();
    body.as_object_mut().unwrap().remove("audience");
    let res = app.api("POST", "/trust-policies", Some(&w.admin), Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["data"]["audience"], format!("http://{}", app.addr));
    assert_eq!(res.body["data"]["token_lifetime_minutes"], 10);

    // Through the page's server function: an admin may not pick every project; the owner may.
    app.add_user("Acme", "admin@example.com", app::people::Role::Admin).await;
    let member_form = |access: &'static str| {
        vec![
            ("name", "page policy"),
            ("issuer", "custom"),
            ("custom_issuer", "https://gitlab.example.com"),
            ("conditions", "project_path=group/app"),
            ("project_access", access),
            ("projects[]", "WEB"),
            ("scope", "write"),
        ]
    };
    let admin = app.login("admin@example.com").await;
    let (status, body) = app.call(&admin, "trust/create", &member_form("all")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app.call(&admin, "trust/create", &member_form("specific")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let owner_client = app.login("owner@example.com").await;
    let (status, body) = app.call(&owner_client, "trust/create", &member_form("all")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["projects"], Value::Null);
    app.add_user("Acme", "member@example.com", app::people::Role::Member).await;
    let member = app.login("member@example.com").await;
    let (status, _) = app.call(&member, "trust/create", &member_form("specific")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.call(&member, "trust/list", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

on_both_databases!(
    a_valid_exchange_mints_a_project_token_that_uploads,
    every_refusal_says_which_check_failed,
    two_workspaces_trusting_one_repository_never_meet,
    a_policy_speaks_for_its_creator_at_every_exchange,
    a_persons_policy_stops_with_the_person,
    source_pins_are_exact,
    issuers_are_urls_and_the_hub_fetches_nothing_else,
    a_re_encoded_signature_is_the_same_token,
    long_lived_id_tokens_and_encryption_keys_are_refused,
    one_workspace_or_its_host_needs_no_name,
    who_may_make_a_policy_and_what_it_may_say,
);

/// An unknown `kid` fetches the keys again, but at most once per minute per issuer.
#[tokio::test]
async fn unknown_kids_refetch_at_most_once_a_minute() {
    let app = spawn_app_with(Kind::Sqlite, test_settings()).await.unwrap();
    let w = world(&app).await;
    github_policy(&app, &w, &w.admin).await;
    let url = w.issuer.url();
    assert_eq!(exchange(&app, &w.issuer.sign("rsa1", github_claims(&url, "1"))).await.status, StatusCode::CREATED);
    assert_eq!(w.issuer.fetches(), 1);
    // The issuer rotates to rsa2 within the minute: the hub may not ask again yet.
    w.issuer.publish(&["rsa2"]);
    for n in 0..5 {
        let res = exchange(&app, &w.issuer.sign("rsa2", github_claims(&url, &format!("r{n}")))).await;
        assert!(res.body["error"]["message"].as_str().unwrap().contains("kid"), "{}", res.body);
    }
    assert_eq!(w.issuer.fetches(), 1, "five unknown kids, no refetch within a minute");
    // Cached keys still verify the key it had.
    let res = exchange(&app, &w.issuer.sign("rsa1", github_claims(&url, "2"))).await;
    assert_eq!(res.status, StatusCode::CREATED);
}

/// With the refetch interval passed, a rotation at the issuer is picked up at once.
#[tokio::test]
async fn a_key_rotation_at_the_issuer_is_picked_up() {
    let settings = app::state::Settings { oidc_min_refetch: Duration::ZERO, ..test_settings() };
    let app = spawn_app_with(Kind::Sqlite, settings).await.unwrap();
    let w = world(&app).await;
    github_policy(&app, &w, &w.admin).await;
    let url = w.issuer.url();
    assert_eq!(exchange(&app, &w.issuer.sign("rsa1", github_claims(&url, "1"))).await.status, StatusCode::CREATED);
    w.issuer.publish(&["rsa2"]);
    let res = exchange(&app, &w.issuer.sign("rsa2", github_claims(&url, "2"))).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(w.issuer.fetches(), 2);
    // The old key is gone from the issuer now, and from the hub.
    let res = exchange(&app, &w.issuer.sign("rsa1", github_claims(&url, "3"))).await;
    assert_eq!(res.error_code(), "oidc_invalid");
}

/// A slow issuer fails its own exchanges after the fetch timeout and stalls nothing else.
#[tokio::test]
async fn a_slow_issuer_stalls_nothing_else() {
    let settings = app::state::Settings { oidc_fetch_timeout: Duration::from_millis(500), ..test_settings() };
    let app = spawn_app_with(Kind::Sqlite, settings).await.unwrap();
    let w = world(&app).await;
    github_policy(&app, &w, &w.admin).await;
    w.issuer.slow(Duration::from_secs(30));
    let jwt = w.issuer.sign("rsa1", github_claims(&w.issuer.url(), "1"));
    let started = Instant::now();
    let (res, health) = tokio::join!(exchange(&app, &jwt), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Instant::now();
        let ok = reqwest::get(app.url("/healthz")).await.unwrap().status();
        let me = app.api("GET", "/me", Some(&w.admin), None).await.status;
        (ok, me, t.elapsed())
    });
    assert_eq!(res.error_code(), "oidc_invalid");
    assert!(res.body["error"]["message"].as_str().unwrap().contains(UNVERIFIED), "{}", res.body);
    assert!(started.elapsed() < Duration::from_secs(10), "bounded by the fetch timeout: {:?}", started.elapsed());
    assert_eq!((health.0, health.1), (StatusCode::OK, StatusCode::OK));
    assert!(health.2 < Duration::from_millis(400), "other requests go on meanwhile: {:?}", health.2);
}
