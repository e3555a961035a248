//! Trust policies: create, list, change, disable, enable, delete — as `policy` allows,
//! each change audited in its transaction. Creating, changing or enabling a policy makes
//! it speak for whoever did it (`store::Creator`): `policy::mint_through_policy` must
//! allow that credential to mint what the policy mints, now and at every exchange.

use serde_json::json;

use super::store::{self, Creator, PolicyRow};
use crate::{
    actor::{Actor, RequestMeta},
    audit::{server as audit, AuditAction, Party},
    db::{new_id, now, timestamp},
    error::AppError,
    policy::{self, Action, Credential, Projects},
    state::AppState,
    tokens::server::lifecycle::resolve_projects,
    tokens::top_scope,
    trust::{
        check_conditions, check_lifetime, check_scopes, server::issuers, NewTrustPolicy, PolicyStatus, TrustPolicy,
        UpdateTrustPolicy, NAME_MAX,
    },
};

/// Whom a policy saved by `actor` speaks for.
fn creator_of(actor: &Actor) -> Result<Creator, AppError> {
    match actor {
        Actor::User(u) => Ok(Creator::Person(u.user_id.clone())),
        Actor::Token(t) => Ok(Creator::Token(t.token_id.clone())),
        Actor::System => Ok(Creator::Operator),
        Actor::TrustedCi { .. } | Actor::Server => {
            Err(AppError::forbidden("Only people, tokens and the operator manage trusted CI."))
        }
    }
}

/// Whether `cred` may have a policy mint what `p` mints (`project_ids`: `None` for every
/// project): the same question every exchange asks again.
pub(super) fn may_mint(
    cred: &Credential,
    p: &TrustPolicy,
    project_ids: Option<&[String]>,
    now: i64,
) -> Result<policy::Reach, AppError> {
    let projects = project_ids.map_or(Projects::All, |ids| Projects::only(ids.iter().cloned()));
    let scope = top_scope(&p.scopes).ok_or_else(|| AppError::invalid("Pick a scope: read or write."))?;
    policy::mint_through_policy(cred, scope, projects, i64::from(p.token_lifetime_minutes) * 60, now)
}

fn tenant_of(actor: &Actor) -> Result<&str, AppError> {
    actor.tenant_id().ok_or_else(|| AppError::forbidden("This needs a workspace."))
}

fn normalize_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(AppError::invalid(format!("A policy name has 1 to {NAME_MAX} printable characters.")));
    }
    Ok(name.to_string())
}

fn normalize_audience(audience: &str) -> Result<String, AppError> {
    let audience = audience.trim();
    if audience.is_empty() || audience.len() > 300 || audience.chars().any(char::is_control) {
        return Err(AppError::invalid("The audience is the value the CI puts in `aud`, like https://qa.example.com."));
    }
    Ok(audience.to_string())
}

async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    action: AuditAction,
    actor: &Actor,
    meta: &RequestMeta,
    tenant_id: &str,
    p: &TrustPolicy,
    details: Option<serde_json::Value>,
) -> Result<(), AppError> {
    let event = audit::Event {
        tenant_id,
        action,
        actor,
        target: Some(Party { kind: "trust_policy".into(), id: Some(p.id.clone()), label: Some(p.name.clone()) }),
        meta,
        details,
        projects: &[],
    };
    audit::record(tx, now(), event).await
}

fn described(p: &TrustPolicy) -> serde_json::Value {
    json!({ "issuer": p.issuer, "audience": p.audience, "conditions": p.conditions, "projects": p.projects,
        "scopes": p.scopes, "token_lifetime_minutes": p.token_lifetime_minutes })
}

pub async fn list(state: &AppState, actor: &Actor) -> Result<Vec<TrustPolicy>, AppError> {
    policy::manage_trust_policies(&actor.permit(Action::ManageTrust)?, false)?;
    Ok(store::list(&state.db, tenant_of(actor)?).await?.into_iter().map(|r| r.policy).collect())
}

async fn load(state: &AppState, actor: &Actor, id: &str) -> Result<PolicyRow, AppError> {
    store::find(&state.db, tenant_of(actor)?, id).await?.ok_or_else(|| AppError::not_found("Trust policy"))
}

pub async fn get(state: &AppState, actor: &Actor, id: &str) -> Result<TrustPolicy, AppError> {
    policy::manage_trust_policies(&actor.permit(Action::ManageTrust)?, false)?;
    Ok(load(state, actor, id).await?.policy)
}

/// `default_audience`: the hub's URL as the request reached it, when the policy names none.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    meta: &RequestMeta,
    req: NewTrustPolicy,
    default_audience: &str,
) -> Result<TrustPolicy, AppError> {
    let cred = actor.permit(Action::ManageTrust)?;
    policy::manage_trust_policies(&cred, req.projects.is_none())?;
    let tenant_id = tenant_of(actor)?;
    check_conditions(&req.conditions)?;
    let projects = resolve_projects(state, tenant_id, req.projects.as_deref()).await?;
    let audience = state.settings.public_url.as_deref().unwrap_or(default_audience).to_string();
    let issuer = issuers::check_issuer(&req.issuer, state.settings.oidc_insecure_loopback)?;
    let p = TrustPolicy {
        id: new_id(),
        name: normalize_name(&req.name)?,
        issuer: issuers::issuer_text(&issuer).to_string(),
        audience: normalize_audience(req.audience.as_deref().unwrap_or(&audience))?,
        conditions: req.conditions,
        projects: projects.as_ref().map(|(_, keys)| keys.clone()),
        scopes: check_scopes(&req.scopes)?,
        token_lifetime_minutes: check_lifetime(req.token_lifetime_minutes)?,
        status: PolicyStatus::Active,
        created_by: None,
        created_at: timestamp(now()),
    };
    let ids = projects.as_ref().map(|(ids, _)| ids.as_slice());
    may_mint(&cred, &p, ids, now())?;
    let creator = creator_of(actor)?;
    let mut tx = state.db.begin().await?;
    store::save(&mut tx, tenant_id, &p, ids, actor.user_id(), &creator, now()).await?;
    record(&mut tx, AuditAction::TrustPolicyCreated, actor, meta, tenant_id, &p, Some(described(&p))).await?;
    tx.commit().await?;
    get(state, actor, &p.id).await
}

pub async fn update(
    state: &AppState,
    actor: &Actor,
    meta: &RequestMeta,
    id: &str,
    req: UpdateTrustPolicy,
) -> Result<TrustPolicy, AppError> {
    let cred = actor.permit(Action::ManageTrust)?;
    let row = load(state, actor, id).await?;
    let every_project = match &req.projects {
        Some(projects) => projects.is_none(),
        None => row.project_ids.is_none(),
    };
    policy::manage_trust_policies(&cred, every_project)?;
    let tenant_id = tenant_of(actor)?;
    let before = row.policy.clone();
    let mut p = row.policy;
    let mut ids = row.project_ids;
    if let Some(name) = &req.name {
        p.name = normalize_name(name)?;
    }
    if let Some(audience) = &req.audience {
        p.audience = normalize_audience(audience)?;
    }
    if let Some(conditions) = req.conditions {
        check_conditions(&conditions)?;
        p.conditions = conditions;
    }
    if let Some(projects) = &req.projects {
        let found = resolve_projects(state, tenant_id, projects.as_deref()).await?;
        p.projects = found.as_ref().map(|(_, keys)| keys.clone());
        ids = found.map(|(ids, _)| ids);
    }
    if let Some(scopes) = &req.scopes {
        p.scopes = check_scopes(scopes)?;
    }
    if req.token_lifetime_minutes.is_some() {
        p.token_lifetime_minutes = check_lifetime(req.token_lifetime_minutes)?;
    }
    may_mint(&cred, &p, ids.as_deref(), now())?;
    let creator = creator_of(actor)?;
    let mut tx = state.db.begin().await?;
    store::save(&mut tx, tenant_id, &p, ids.as_deref(), None, &creator, now()).await?;
    let details = json!({ "before": described(&before), "after": described(&p) });
    record(&mut tx, AuditAction::TrustPolicyUpdated, actor, meta, tenant_id, &p, Some(details)).await?;
    tx.commit().await?;
    get(state, actor, id).await
}

pub async fn set_status(
    state: &AppState,
    actor: &Actor,
    meta: &RequestMeta,
    id: &str,
    status: PolicyStatus,
) -> Result<TrustPolicy, AppError> {
    let cred = actor.permit(Action::ManageTrust)?;
    policy::manage_trust_policies(&cred, false)?;
    let row = load(state, actor, id).await?;
    if row.policy.status == status {
        return Ok(row.policy);
    }
    let tenant_id = tenant_of(actor)?;
    // Enabling speaks for the one who enables; disabling gives nothing and keeps it as it was.
    let creator = match status {
        PolicyStatus::Active => {
            may_mint(&cred, &row.policy, row.project_ids.as_deref(), now())?;
            creator_of(actor)?
        }
        PolicyStatus::Disabled => row.creator.clone(),
    };
    let mut p = row.policy;
    p.status = status;
    let action = match status {
        PolicyStatus::Active => AuditAction::TrustPolicyEnabled,
        PolicyStatus::Disabled => AuditAction::TrustPolicyDisabled,
    };
    let mut tx = state.db.begin().await?;
    store::save(&mut tx, tenant_id, &p, row.project_ids.as_deref(), None, &creator, now()).await?;
    record(&mut tx, action, actor, meta, tenant_id, &p, None).await?;
    tx.commit().await?;
    Ok(p)
}

pub async fn delete(state: &AppState, actor: &Actor, meta: &RequestMeta, id: &str) -> Result<(), AppError> {
    policy::manage_trust_policies(&actor.permit(Action::ManageTrust)?, false)?;
    let row = load(state, actor, id).await?;
    let tenant_id = tenant_of(actor)?;
    let mut tx = state.db.begin().await?;
    store::delete(&mut tx, id).await?;
    record(&mut tx, AuditAction::TrustPolicyDeleted, actor, meta, tenant_id, &row.policy, Some(described(&row.policy)))
        .await?;
    tx.commit().await?;
    Ok(())
}
