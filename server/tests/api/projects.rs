use app::people::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    helpers::{code, TestApp},
    on_both_databases,
};

async fn owners_and_admins_create_members_only_read(app: TestApp) {
    app.bootstrap("Acme", "owner@example.com").await;
    app.add_user("Acme", "admin@example.com", Role::Admin).await;
    app.add_user("Acme", "member@example.com", Role::Member).await;

    let owner = app.login("owner@example.com").await;
    let (status, body) = app.call(&owner, "projects/create", &[("key", "bd"), ("name", " Billing ")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["key"].as_str(), body["name"].as_str()), (Some("BD"), Some("Billing")));

    let admin = app.login("admin@example.com").await;
    let (status, _) = app.call(&admin, "projects/create", &[("key", "WEB"), ("name", "Website")]).await;
    assert_eq!(status, StatusCode::OK);

    // The server refuses a member, whatever the page shows.
    let member = app.login("member@example.com").await;
    let (status, body) = app.call(&member, "projects/create", &[("key", "HACK"), ("name", "Nope")]).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let (status, list) = app.call(&member, "projects/list", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<_> = list.as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["BD", "WEB"]);

    // The member's page has the list but no create form.
    let (_, page) = app.page(&member, "/settings/projects").await;
    assert!(page.contains("Billing") && !page.contains("Create project"));
    let (_, page) = app.page(&owner, "/settings/projects").await;
    assert!(page.contains("Create project"));

    // Signed out: nothing.
    let (status, body) = app.call(&app.client(), "projects/list", &[]).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unauthenticated"));
}

async fn duplicate_and_invalid_keys_get_clear_errors(app: TestApp) {
    app.bootstrap("Acme", "owner@example.com").await;
    let owner = app.login("owner@example.com").await;
    let (status, _) = app.call(&owner, "projects/create", &[("key", "BD"), ("name", "Billing")]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.call(&owner, "projects/create", &[("key", "bd"), ("name", "Again")]).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "conflict"));
    assert_eq!(body["message"], "A project with key BD already exists.");

    for bad in ["", "B", "1AB", "B D", "TOOLONGKEY1", "B-D"] {
        let (status, body) = app.call(&owner, "projects/create", &[("key", bad), ("name", "X")]).await;
        assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), "{bad:?}");
        assert!(body["message"].as_str().unwrap().contains("2 to 10 characters"));
    }
    let (status, body) = app.call(&owner, "projects/create", &[("key", "OK"), ("name", "   ")]).await;
    assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"));
    let (_, list) = app.call(&owner, "projects/list", &[]).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "no failed create left anything behind");
}

async fn tenants_never_see_each_others_projects(app: TestApp) {
    app.bootstrap("Acme", "a@example.com").await;
    app.bootstrap("Globex", "g@example.com").await;
    let a = app.login("a@example.com").await;
    let g = app.login("g@example.com").await;
    let (status, _) = app.call(&a, "projects/create", &[("key", "BD"), ("name", "Acme billing")]).await;
    assert_eq!(status, StatusCode::OK);
    // The same key is free in another tenant.
    let (status, _) = app.call(&g, "projects/create", &[("key", "BD"), ("name", "Globex billing")]).await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = app.call(&g, "projects/list", &[]).await;
    let names: Vec<&Value> = list.as_array().unwrap().iter().map(|p| &p["name"]).collect();
    assert_eq!(names, [&Value::from("Globex billing")]);
}

on_both_databases!(
    owners_and_admins_create_members_only_read,
    duplicate_and_invalid_keys_get_clear_errors,
    tenants_never_see_each_others_projects,
);
