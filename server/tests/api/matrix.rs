//! The permission matrix: every credential × every mutating operation of its door (REST
//! for tokens, server functions for people) × every target, with the expected answer
//! written out by hand. A refused cell must also leave its target unchanged, and change
//! nothing anywhere: no token, project, trust policy, suspension or workspace setting.

use std::collections::BTreeMap;

use app::{
    actor::{Actor, RequestMeta},
    people::{CurrentUser, Role},
    tokens::{server::lifecycle, CreatedToken},
};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use time::{format_description::well_known::Rfc3339, Duration, OffsetDateTime};

use crate::helpers::{spawn_app_with, test_settings, Kind, TestApp};

const OPS: [&str; 13] = [
    "create",
    "rename",
    "widen",
    "disable",
    "enable",
    "revoke",
    "rotate",
    "reduce",
    "tenant",
    "project",
    "suspend",
    "policy",
    "policy all",
];
const TARGETS: [&str; 5] = ["self", "narrow", "wide", "other project", "other tenant"];

/// Expected answers: per credential, per operation, one per target ("-": no such cell).
/// `ok` is any 2xx. Operations without a target take one answer.
fn expected() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    let session = |token_ops: &'static str, reduce: &'static str, others: [&'static str; 5]| {
        vec![
            ("create", "- ok ok ok -"),
            ("rename", token_ops),
            ("widen", "- - - - -"),
            ("disable", token_ops),
            ("enable", token_ops),
            ("revoke", token_ops),
            ("rotate", token_ops),
            ("reduce", reduce),
            ("tenant", others[0]),
            ("project", others[1]),
            ("suspend", others[2]),
            ("policy", others[3]),
            ("policy all", others[4]),
        ]
    };
    let member = vec![
        ("create", "- 403 403 403 -"),
        ("rename", "- 403 403 403 403"),
        ("widen", "- - - - -"),
        ("disable", "- 403 403 403 403"),
        ("enable", "- 403 403 403 403"),
        ("revoke", "- 403 403 403 403"),
        ("rotate", "- 403 403 403 403"),
        ("reduce", "- 403 403 403 403"),
        ("tenant", "403"),
        ("project", "403"),
        ("suspend", "403"),
        ("policy", "403"),
        ("policy all", "403"),
    ];
    // A token without admin scope (or a SIEM key) may change no token.
    let powerless = |tenant: &'static str, project: &'static str| {
        vec![
            ("create", "403 403 403 403 -"),
            ("rename", "403 403 403 403 403"),
            ("widen", "403 403 403 403 403"),
            ("disable", "403 403 403 403 403"),
            ("enable", "401 403 403 403 403"),
            ("revoke", "403 403 403 403 403"),
            ("rotate", "403 403 403 403 403"),
            ("reduce", "403 403 403 403 403"),
            ("tenant", tenant),
            ("project", project),
            ("suspend", "-"),
            ("policy", "403"),
            ("policy all", "403"),
        ]
    };
    vec![
        // The narrow target is read-only already: "Reduce to read" has nothing to lower.
        ("owner session", session("- ok ok ok 404", "- 422 ok ok 404", ["ok", "ok", "ok", "ok", "ok"])),
        // Only an owner lets CI tokens reach every project.
        ("admin session", session("- ok ok ok 404", "- 422 ok ok 404", ["ok", "ok", "ok", "ok", "403"])),
        ("member session", member),
        (
            "admin token",
            vec![
                ("create", "ok ok 403 ok -"),
                ("rename", "ok ok 403 ok 404"),
                ("widen", "ok ok 403 ok 404"),
                ("disable", "ok ok 403 ok 404"),
                ("enable", "401 ok 403 ok 404"),
                ("revoke", "ok ok 403 ok 404"),
                ("rotate", "ok ok 403 ok 404"),
                ("reduce", "ok ok 403 ok 404"),
                ("tenant", "ok"),
                ("project", "ok"),
                ("suspend", "-"),
                ("policy", "403"),
                ("policy all", "403"),
            ],
        ),
        ("write token", powerless("403", "ok")),
        ("read token", powerless("403", "403")),
        (
            "project admin token",
            vec![
                ("create", "ok ok 403 403 -"),
                ("rename", "ok ok 404 404 404"),
                ("widen", "ok ok 404 404 404"),
                ("disable", "ok ok 404 404 404"),
                ("enable", "401 ok 404 404 404"),
                ("revoke", "ok ok 404 404 404"),
                ("rotate", "ok ok 404 404 404"),
                ("reduce", "ok ok 404 404 404"),
                ("tenant", "403"),
                ("project", "403"),
                ("suspend", "-"),
                ("policy", "403"),
                ("policy all", "403"),
            ],
        ),
        ("project write token", powerless("403", "403")),
        ("project read token", powerless("403", "403")),
        (
            "30-day admin token",
            vec![
                ("create", "ok ok 403 403 -"),
                ("rename", "ok ok 403 403 404"),
                ("widen", "403 403 403 403 404"),
                ("disable", "ok ok 403 403 404"),
                ("enable", "401 ok 403 403 404"),
                ("revoke", "ok ok 403 403 404"),
                ("rotate", "ok ok 403 403 404"),
                ("reduce", "ok ok 403 403 404"),
                ("tenant", "ok"),
                ("project", "ok"),
                ("suspend", "-"),
                ("policy", "403"),
                ("policy all", "403"),
            ],
        ),
        (
            "workspace admin token",
            vec![
                ("create", "ok ok ok ok -"),
                ("rename", "ok ok ok ok 404"),
                ("widen", "ok ok ok ok 404"),
                ("disable", "ok ok ok ok 404"),
                ("enable", "401 ok ok ok 404"),
                ("revoke", "ok ok ok ok 404"),
                ("rotate", "ok ok ok ok 404"),
                ("reduce", "ok ok ok ok 404"),
                ("tenant", "ok"),
                ("project", "ok"),
                ("suspend", "-"),
                ("policy", "ok"),
                ("policy all", "403"),
            ],
        ),
        ("SIEM key", powerless("403", "403")),
        // A token a trust policy minted for a CI job: write, project ONE, workspace-owned.
        ("CI-minted token", powerless("403", "403")),
        (
            "other tenant's admin token",
            vec![
                ("create", "ok 422 403 422 -"),
                ("rename", "ok 404 404 404 404"),
                ("widen", "ok 404 404 404 404"),
                ("disable", "ok 404 404 404 404"),
                ("enable", "401 404 404 404 404"),
                ("revoke", "ok 404 404 404 404"),
                ("rotate", "ok 404 404 404 404"),
                ("reduce", "ok 404 404 404 404"),
                ("tenant", "ok"),
                ("project", "ok"),
                ("suspend", "-"),
                ("policy", "422"), // its workspace has no project ONE
                ("policy all", "403"),
            ],
        ),
    ]
}

/// How each token credential is made (by its tenant's owner).
fn credential_shape(name: &str) -> Option<(bool, Value)> {
    let (other_tenant, shape) = match name {
        "admin token" => (false, json!({"scopes": ["admin"]})),
        "write token" => (false, json!({"scopes": ["write"]})),
        "read token" => (false, json!({"scopes": ["read"]})),
        "project admin token" => (false, json!({"scopes": ["admin"], "projects": ["ONE"]})),
        "project write token" => (false, json!({"scopes": ["write"], "projects": ["ONE"]})),
        "project read token" => (false, json!({"scopes": ["read"], "projects": ["ONE"]})),
        "30-day admin token" => (false, json!({"scopes": ["admin"], "expires_in": "30d"})),
        "workspace admin token" => (false, json!({"scopes": ["admin"], "owner": "workspace"})),
        "SIEM key" => (false, json!({"scopes": ["read"]})),
        "other tenant's admin token" => (true, json!({"scopes": ["admin"]})),
        "CI-minted token" => (false, json!({"minted": true})),
        _ => return None,
    };
    Some((other_tenant, shape))
}

fn in_ten_days() -> String {
    (OffsetDateTime::now_utc() + Duration::days(10)).format(&Rfc3339).unwrap()
}

/// The target shapes, as create requests (by the owner of tenant A).
fn target_shape(target: &str) -> Value {
    match target {
        "narrow" => json!({"scopes": ["read"], "projects": ["ONE"], "expires_at": in_ten_days()}),
        "wide" => json!({"scopes": ["admin"], "owner": "workspace"}),
        "other project" => json!({"scopes": ["write"], "projects": ["TWO"]}),
        _ => json!({"scopes": ["read"]}),
    }
}

fn named(mut shape: Value, name: &str) -> Value {
    shape["name"] = json!(name);
    shape
}

struct World {
    owner: CurrentUser,
    owner_b: CurrentUser,
    sessions: BTreeMap<&'static str, Client>,
}

async fn make(app: &TestApp, by: &CurrentUser, shape: Value) -> CreatedToken {
    if shape["minted"] == true {
        return minted(app, by).await;
    }
    app.token(by, shape).await
}

/// A token as Trusted CI mints it (through the lifecycle's own minting, as an exchange
/// does): write scope, project ONE, owned by the workspace, ten minutes.
async fn minted(app: &TestApp, by: &CurrentUser) -> CreatedToken {
    let (one,): (String,) = sqlx::query_as("SELECT id FROM projects WHERE tenant_id = $1 AND key = 'ONE'")
        .bind(&by.tenant_id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    let ids = [one];
    let grant = lifecycle::CiGrant {
        tenant_id: &by.tenant_id,
        policy_id: "matrix-policy",
        policy_name: "matrix",
        scopes: &[app::tokens::Scope::Read, app::tokens::Scope::Write],
        project_ids: Some(&ids),
        expires_at: OffsetDateTime::now_utc().unix_timestamp() + 600,
        ip_allowlist: "",
        minted_for: "acme/backend@refs/heads/main (run 1)",
    };
    let (row, token) = lifecycle::mint_for_ci(&app.state, grant, &RequestMeta::default(), json!({})).await.unwrap();
    let summary = app::tokens::server::service::get(&app.state, &Actor::User(by.clone()), &row.id).await.unwrap();
    CreatedToken { summary, token }
}

/// Everything a refused cell could have changed, anywhere in the database.
async fn everything(app: &TestApp) -> String {
    let db = &app.state.db;
    let count = |sql: &'static str| async move {
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(db).await.unwrap();
        n
    };
    let tenants: Vec<(String, String, String)> =
        sqlx::query_as("SELECT name, status, ip_allowlist FROM tenants ORDER BY name").fetch_all(db).await.unwrap();
    format!(
        "tokens {} live {} projects {} policies {} suspended {} tenants {tenants:?}",
        count("SELECT COUNT(*) FROM api_tokens").await,
        count("SELECT COUNT(*) FROM api_tokens WHERE status = 'active'").await,
        count("SELECT COUNT(*) FROM projects").await,
        count("SELECT COUNT(*) FROM trust_policies").await,
        count("SELECT COUNT(*) FROM users WHERE status <> 'ACTIVE'").await,
    )
}

/// A trust policy for CI tokens on project ONE (`all`: every project).
fn policy_request(all: bool) -> Value {
    json!({"name": "ci", "issuer": "https://token.actions.githubusercontent.com",
        "conditions": {"repository": "acme/backend"}, "projects": if all { Value::Null } else { json!(["ONE"]) },
        "scopes": ["write"]})
}

/// A workspace allowlist no other cell writes: a refused write stays visible. It always
/// admits 127.0.0.1, where the tests run.
fn new_allowlist() -> String {
    let n = uuid::Uuid::new_v4().as_bytes()[0];
    format!("127.0.0.1/32, 10.{n}.{}.0/24", uuid::Uuid::new_v4().as_bytes()[1])
}

fn outcome(status: StatusCode) -> String {
    if status.is_success() {
        "ok".into()
    } else {
        status.as_u16().to_string()
    }
}

/// A project key no other cell uses.
fn new_key() -> String {
    format!("K{}", &uuid::Uuid::new_v4().simple().to_string()[..6]).to_uppercase()
}

/// One REST cell: the credential `token` does `op` to `target` (a token id).
async fn rest(app: &TestApp, token: &str, op: &str, target: Option<&str>, shape: Option<Value>) -> StatusCode {
    let path = |suffix: &str| format!("/tokens/{}{suffix}", target.unwrap_or("none"));
    let res = match op {
        "create" => app.api("POST", "/tokens", Some(token), shape).await,
        "rename" => app.api("PATCH", &path(""), Some(token), Some(json!({"name": "renamed"}))).await,
        "widen" => {
            app.api("PATCH", &path(""), Some(token), Some(json!({"scopes": ["admin"], "expires_in": "never"}))).await
        }
        "disable" | "enable" | "revoke" => app.api("POST", &path(&format!("/{op}")), Some(token), None).await,
        "rotate" => app.api("POST", &path("/rotate"), Some(token), Some(json!({"old_token": "1h"}))).await,
        "reduce" => app.api("PATCH", &path(""), Some(token), Some(json!({"scopes": ["read"]}))).await,
        "tenant" => {
            let list: Vec<String> = new_allowlist().split(", ").map(str::to_owned).collect();
            app.api("PATCH", "/tenant", Some(token), Some(json!({ "ip_allowlist": list }))).await
        }
        "policy" | "policy all" => {
            app.api("POST", "/trust-policies", Some(token), Some(policy_request(op == "policy all"))).await
        }
        "project" => app.api("POST", "/projects", Some(token), Some(json!({"key": new_key(), "name": "New"}))).await,
        other => panic!("no REST operation {other}"),
    };
    res.status
}

/// One server-function cell, as a signed-in person.
async fn door(
    app: &TestApp,
    client: &Client,
    op: &str,
    target: Option<&str>,
    target_name: &str,
    world: &World,
) -> StatusCode {
    let id = target.unwrap_or("none");
    let date = (OffsetDateTime::now_utc() + Duration::days(10)).date().to_string();
    let (status, _) = match op {
        "create" => {
            let form: Vec<(&str, &str)> = match target_name {
                "narrow" => vec![
                    ("name", "narrow"),
                    ("scopes[]", "read"),
                    ("project_access", "specific"),
                    ("projects[]", "ONE"),
                    ("expiration", "custom"),
                    ("expires_on", &date),
                ],
                "wide" => vec![("name", "wide"), ("scopes[]", "admin"), ("owner", "workspace")],
                _ => vec![
                    ("name", "other"),
                    ("scopes[]", "write"),
                    ("project_access", "specific"),
                    ("projects[]", "TWO"),
                ],
            };
            app.call(client, "tokens/issue", &form).await
        }
        "rename" => app.call(client, "tokens/rename", &[("id", id), ("name", "renamed")]).await,
        "disable" | "enable" | "revoke" => app.call(client, "tokens/status", &[("id", id), ("action", op)]).await,
        "rotate" => app.call(client, "tokens/reissue", &[("id", id), ("old_token", "1h")]).await,
        "reduce" => app.call(client, "tokens/reduce", &[("id", id), ("scope", "read")]).await,
        "tenant" => {
            let list = new_allowlist();
            app.call(client, "tenant/update", &[("ip_allowlist", list.as_str()), ("ai_provider", ""), ("ai_model", "")])
                .await
        }
        "policy" | "policy all" => {
            let access = if op == "policy all" { "all" } else { "specific" };
            let form = [
                ("name", "ci"),
                ("issuer", "https://token.actions.githubusercontent.com"),
                ("conditions", "repository=acme/backend"),
                ("project_access", access),
                ("projects[]", "ONE"),
                ("scope", "write"),
            ];
            app.call(client, "trust/create", &form).await
        }
        "project" => app.call(client, "projects/create", &[("key", new_key().as_str()), ("name", "New")]).await,
        "suspend" => {
            let email = format!("victim-{}@example.com", uuid::Uuid::new_v4().simple());
            let victim = app.add_user(&world.owner.tenant_name, &email, Role::Member).await;
            app.call(client, "members/status", &[("user_id", victim.user_id.as_str()), ("action", "suspend")]).await
        }
        other => panic!("no server function for {other}"),
    };
    status
}

async fn permission_matrix(app: TestApp) {
    let owner = app.bootstrap("Acme", "owner@example.com").await;
    let owner_b = app.bootstrap("Beta", "owner@beta.example").await;
    app.add_user("Acme", "admin@example.com", Role::Admin).await;
    app.add_user("Acme", "member@example.com", Role::Member).await;
    let meta = RequestMeta::default();
    for key in ["ONE", "TWO"] {
        app::projects::server::service::create(&app.state, &Actor::User(owner.clone()), &meta, key, key).await.unwrap();
    }
    app::projects::server::service::create(&app.state, &Actor::User(owner_b.clone()), &meta, "BET", "Beta")
        .await
        .unwrap();
    let mut sessions = BTreeMap::new();
    sessions.insert("owner session", app.login("owner@example.com").await);
    sessions.insert("admin session", app.login("admin@example.com").await);
    sessions.insert("member session", app.login("member@example.com").await);
    let world = World { owner: owner.clone(), owner_b: owner_b.clone(), sessions };

    let mut cells = 0;
    let mut failures = Vec::new();
    for (cred_name, rows) in expected() {
        assert_eq!(rows.iter().map(|(op, _)| *op).collect::<Vec<_>>(), OPS, "{cred_name}: every operation, in order");
        let shape = credential_shape(cred_name);
        for (op, answers) in rows {
            let answers: Vec<&str> = answers.split(' ').collect();
            let targeted = answers.len() == TARGETS.len();
            let targets: &[&str] = if targeted { &TARGETS } else { &["-"] };
            for (target_name, want) in targets.iter().zip(&answers) {
                if *want == "-" {
                    continue;
                }
                cells += 1;
                // A fresh credential and target for every cell: cells never see each other's changes.
                let cred = match &shape {
                    Some((other_tenant, s)) => {
                        let by = if *other_tenant { &world.owner_b } else { &world.owner };
                        let name = if cred_name == "SIEM key" { "SIEM-LOG-ONLY collector" } else { cred_name };
                        Some((make(&app, by, named(s.clone(), name)).await, by.clone()))
                    }
                    None => None,
                };
                let (target_id, target_owner) = match *target_name {
                    "self" => {
                        let (c, by) = cred.as_ref().unwrap();
                        (Some(c.summary.id.clone()), by.clone())
                    }
                    "-" => (None, world.owner.clone()),
                    "other tenant" if cred.as_ref().is_some_and(|(_, by)| by.tenant_id == world.owner_b.tenant_id) => {
                        let t = make(&app, &world.owner, named(target_shape("narrow"), "theirs")).await;
                        (Some(t.summary.id), world.owner.clone())
                    }
                    "other tenant" => {
                        let t = make(&app, &world.owner_b, named(json!({"scopes": ["read"]}), "theirs")).await;
                        (Some(t.summary.id), world.owner_b.clone())
                    }
                    _ if op == "create" => (None, world.owner.clone()),
                    name => {
                        let t = make(&app, &world.owner, named(target_shape(name), name)).await;
                        (Some(t.summary.id), world.owner.clone())
                    }
                };
                if op == "enable" {
                    if let Some(id) = &target_id {
                        lifecycle::set_status(
                            &app.state,
                            &Actor::User(target_owner.clone()),
                            &meta,
                            id,
                            lifecycle::Transition::Disable,
                        )
                        .await
                        .unwrap();
                    }
                }
                let before = match &target_id {
                    Some(id) => Some(app.token_summary(&target_owner, id).await),
                    None => None,
                };
                let everything_before = everything(&app).await;
                let status = match &cred {
                    Some((c, _)) => {
                        let shape = (op == "create").then(|| match *target_name {
                            "self" if cred_name == "CI-minted token" => {
                                named(json!({"scopes": ["write"], "projects": ["ONE"], "owner": "workspace"}), "copy")
                            }
                            "self" => named(shape.as_ref().unwrap().1.clone(), "copy"),
                            name => named(target_shape(name), name),
                        });
                        rest(&app, &c.token, op, target_id.as_deref(), shape).await
                    }
                    None => door(&app, &world.sessions[cred_name], op, target_id.as_deref(), target_name, &world).await,
                };
                let got = outcome(status);
                if got != *want {
                    failures.push(format!("{cred_name} / {op} / {target_name}: expected {want}, got {got}"));
                }
                if got != "ok" {
                    let everything_after = everything(&app).await;
                    if everything_after != everything_before {
                        failures.push(format!(
                            "{cred_name} / {op} / {target_name}: refused but changed {everything_before} → {everything_after}"
                        ));
                    }
                    if let (Some(id), Some(before)) = (&target_id, before) {
                        let after = app.token_summary(&target_owner, id).await;
                        if after != before {
                            failures.push(format!(
                                "{cred_name} / {op} / {target_name}: refused but changed {before} → {after}"
                            ));
                        }
                    }
                }
            }
        }
    }
    println!("permission matrix: {cells} cells");
    assert!(cells > 400, "the matrix shrank to {cells} cells");
    assert!(failures.is_empty(), "{} of {cells} cells differ:\n{}", failures.len(), failures.join("\n"));
}

/// Every cell makes a fresh credential, and each first use of one is a bcrypt attempt
/// from 127.0.0.1: the per-address budget is raised so the matrix measures rules, not limits.
async fn matrix_app(kind: Kind) -> Option<TestApp> {
    let mut settings = test_settings();
    settings.guard.attempts_per_ip = 1_000_000;
    spawn_app_with(kind, settings).await
}

#[tokio::test]
async fn permission_matrix_sqlite() {
    permission_matrix(matrix_app(Kind::Sqlite).await.expect("sqlite")).await;
}

#[tokio::test]
async fn permission_matrix_postgres() {
    if let Some(app) = matrix_app(Kind::Postgres).await {
        permission_matrix(app).await;
    }
}
