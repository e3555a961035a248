//! The one place that changes a token: create, edit, disable, enable, revoke, rotate,
//! retire, leak. Each change asks `policy` first and writes its audit entry in the same
//! transaction. `auth` and the doors call these; nothing else writes a token's status.
//! Rotation and retirement are in `rotation`, leak reports in `leaks`.

mod leaks;
mod rotation;

pub use leaks::{accept_leak_report, act_on_leak_report, resume_leak_reports, spawn_leak_resumer, LEAK_REPORT_MAX};
pub use rotation::{retire, retire_replaced, rotate, RETIRE_CEILING_SECS};

use serde_json::json;
use time::OffsetDateTime;

use super::{
    format,
    service::{self, facts, load_with_projects, projects_of, summary, tenant_of, Extras, TokenProjects},
    store::{self, TokenRow},
};
use crate::{
    actor::{Actor, RequestMeta},
    addresses::parse_allowlist,
    audit::{server as audit, AuditAction, Party},
    db::{new_id, now, timestamp},
    error::AppError,
    people::server::password,
    policy::{self, Action, Addresses, Projects, Reach},
    projects::normalize_key,
    state::AppState,
    tokens::{
        normalize_name, normalize_scopes, top_scope, CreateToken, CreatedToken, Expiry, ExpiryChoice, Scope,
        TokenState, TokenStatus, TokenSummary, UpdateToken, RATE_LIMIT_MAX,
    },
};

/// The states a token can be changed from while it still works.
pub(super) const LIVE: [TokenState; 2] = [TokenState::Active, TokenState::Disabled];

pub(super) fn target(row: &TokenRow) -> Party {
    Party {
        kind: "token".into(),
        id: Some(row.id.clone()),
        label: Some(format!("{} ({})", row.prefix.masked(), row.name)),
    }
}

/// Validates a requested project list against the tenant; returns (ids, keys).
pub(crate) async fn resolve_projects(
    state: &AppState,
    tenant_id: &str,
    requested: Option<&[String]>,
) -> Result<TokenProjects, AppError> {
    let Some(requested) = requested else { return Ok(None) };
    if requested.is_empty() {
        return Err(AppError::invalid("Choose at least one project, or null for all projects."));
    }
    let mut keys = Vec::new();
    for key in requested {
        let key = normalize_key(key)?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let found = store::projects_by_keys(&state.db, tenant_id, &keys).await?;
    if let Some(missing) = keys.iter().find(|k| !found.iter().any(|(_, fk)| fk == *k)) {
        return Err(AppError::invalid(format!("There is no project with key {missing}.")));
    }
    Ok(Some(found.into_iter().unzip()))
}

pub(super) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Records `action` about the token `row` (its projects scope the entry) inside `tx`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    now: i64,
    action: AuditAction,
    actor: &Actor,
    row: &TokenRow,
    project_ids: &[String],
    meta: &RequestMeta,
    details: Option<serde_json::Value>,
) -> Result<(), AppError> {
    let event = audit::Event {
        tenant_id: &row.tenant_id,
        action,
        actor,
        target: Some(target(row)),
        meta,
        details,
        projects: project_ids,
    };
    audit::record(tx, now, event).await
}

pub(super) struct NewToken<'a> {
    tenant_id: &'a str,
    name: &'a str,
    scopes: &'a [Scope],
    project_ids: Option<&'a [String]>,
    expires_at: Option<i64>,
    expiry_policy: ExpiryChoice,
    replaces_id: Option<&'a str>,
    owner: crate::tokens::TokenOwner,
    ip_allowlist: &'a str,
}

/// Inserts a fresh token (new prefix on collision) inside `tx`; returns its row and the
/// full token, which exists nowhere else.
pub(super) async fn mint(
    state: &AppState,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    actor: &Actor,
    new: NewToken<'_>,
    now: i64,
) -> Result<(TokenRow, String), AppError> {
    for _ in 0..8 {
        let token = format::generate(&format::random_prefix());
        let hash = password::hash(token.secret().to_owned(), state.settings.bcrypt_cost).await?;
        let id = new_id();
        let row = store::NewToken {
            id: &id,
            tenant_id: new.tenant_id,
            prefix: token.prefix(),
            secret_hash: &hash,
            name: new.name,
            scopes: new.scopes,
            project_ids: new.project_ids,
            created_by: actor.user_id(),
            created_at: now,
            expires_at: new.expires_at,
            expiry_policy: new.expiry_policy,
            replaces_id: new.replaces_id,
            owner: new.owner,
            ip_allowlist: new.ip_allowlist,
        };
        if store::insert(tx, &row).await? {
            let row = store::find(&mut **tx, new.tenant_id, &id).await?.ok_or_else(AppError::internal)?;
            return Ok((row, token.expose()));
        }
    }
    tracing::error!("could not find a free token prefix in 8 tries");
    Err(AppError::internal())
}

pub async fn create(
    state: &AppState,
    actor: &Actor,
    meta: &RequestMeta,
    req: CreateToken,
) -> Result<CreatedToken, AppError> {
    let cred = actor.permit(Action::ManageTokens)?;
    let tenant_id = tenant_of(actor)?.to_string();
    cred.minting_reach()?;
    let name = normalize_name(&req.name)?;
    let scopes = normalize_scopes(&req.scopes)?;
    let projects = resolve_projects(state, &tenant_id, req.projects.as_deref()).await?;
    let expiry = Expiry::from_request(req.expires_in, req.expires_at)?;
    let now = now();
    let expires_at = expiry.resolve(timestamp(now))?.map(OffsetDateTime::unix_timestamp);
    let expires_at = policy::bound_expiry(&cred, expires_at)?;
    let (addresses, ip_allowlist) = allowlist_of(req.ip_allowlist.as_deref().unwrap_or_default())?;
    let reach = Reach {
        scope: top_scope(&scopes).unwrap_or(Scope::Read),
        projects: projects.as_ref().map_or(Projects::All, |(ids, _)| Projects::only(ids.iter().cloned())),
        expires_at,
        owner: req.owner,
        addresses,
    };
    policy::create_token(&cred, &reach)?;
    within_max_lifetime(state, &tenant_id, expires_at, now).await?;

    let ids = projects.as_ref().map(|(ids, _)| ids.as_slice());
    let mut tx = state.db.begin().await?;
    let new = NewToken {
        tenant_id: &tenant_id,
        name: &name,
        scopes: &scopes,
        project_ids: ids,
        expires_at,
        expiry_policy: ExpiryChoice::from(expiry),
        replaces_id: None,
        owner: req.owner,
        ip_allowlist: &ip_allowlist,
    };
    let (row, token) = mint(state, &mut tx, actor, new, now).await?;
    let mut details = json!({
        "scopes": scopes, "projects": projects.as_ref().map(|(_, keys)| keys), "owner": req.owner,
        "expires_at": expires_at.map(timestamp).map(rfc3339),
    });
    if !ip_allowlist.is_empty() {
        details["ip_allowlist"] = json!(ip_allowlist.split(',').collect::<Vec<_>>());
    }
    record(&mut tx, now, AuditAction::TokenCreated, actor, &row, ids.unwrap_or_default(), meta, Some(details)).await?;
    tx.commit().await?;
    let summary = summary(&row, projects.map(|(_, keys)| keys), now, Extras::default());
    Ok(CreatedToken { summary, token })
}

/// A token's IP allowlist as the rules see it and as it is stored (comma-separated,
/// normalized); empty: any address.
fn allowlist_of(list: &[String]) -> Result<(Addresses, String), AppError> {
    if list.len() > 100 {
        return Err(AppError::invalid("An IP allowlist has at most 100 entries."));
    }
    let nets = parse_allowlist(&list.join(","))?;
    let text = nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    Ok((Addresses::from_list(nets), text))
}

/// 422 naming the maximum when `expires_at` (or "never") is past the workspace's longest
/// token lifetime.
async fn within_max_lifetime(
    state: &AppState,
    tenant_id: &str,
    expires_at: Option<i64>,
    now: i64,
) -> Result<(), AppError> {
    match crate::tenants::server::max_token_lifetime(&state.db, tenant_id).await? {
        Some(days) => policy::MaxLifetime { days }.refuse_beyond(expires_at, now),
        None => Ok(()),
    }
}

/// What a trust policy gives the CI job it matched.
pub struct CiGrant<'a> {
    pub tenant_id: &'a str,
    pub policy_id: &'a str,
    pub policy_name: &'a str,
    pub scopes: &'a [Scope],
    /// `None`: every project.
    pub project_ids: Option<&'a [String]>,
    /// Unix seconds: minutes from now, never later than the policy's creator's own expiry.
    pub expires_at: i64,
    /// The policy's creator's own IP allowlist (comma-separated CIDRs; empty: any).
    pub ip_allowlist: &'a str,
    /// "acme/backend@refs/heads/main (run 123)".
    pub minted_for: &'a str,
}

/// A token for a CI job a trust policy matched: owned by the workspace, restricted as
/// the policy says, expiring in minutes (the workspace's maximum lifetime does not
/// apply). Audited as `token.minted_oidc` with the policy and the job's claims.
pub async fn mint_for_ci(
    state: &AppState,
    grant: CiGrant<'_>,
    meta: &RequestMeta,
    claims: serde_json::Value,
) -> Result<(TokenRow, String), AppError> {
    let now = now();
    let name: String = format!("CI {}", grant.minted_for).chars().take(crate::tokens::NAME_MAX).collect();
    let new = NewToken {
        tenant_id: grant.tenant_id,
        name: name.trim(),
        scopes: grant.scopes,
        project_ids: grant.project_ids,
        expires_at: Some(grant.expires_at),
        expiry_policy: ExpiryChoice::Custom,
        replaces_id: None,
        owner: crate::tokens::TokenOwner::Workspace,
        ip_allowlist: grant.ip_allowlist,
    };
    let actor = Actor::TrustedCi {
        tenant_id: grant.tenant_id.to_string(),
        policy_id: grant.policy_id.to_string(),
        policy_name: grant.policy_name.to_string(),
    };
    let mut tx = state.db.begin().await?;
    let (mut row, token) = mint(state, &mut tx, &actor, new, now).await?;
    store::set_minted(&mut tx, &row.id, grant.policy_id, grant.minted_for).await?;
    row.minted_for = Some(grant.minted_for.to_string());
    let details = json!({ "policy_id": grant.policy_id, "minted_for": grant.minted_for, "claims": claims,
        "expires_at": row.expires_at.map(timestamp).map(rfc3339) });
    let ids = grant.project_ids.unwrap_or_default();
    record(&mut tx, now, AuditAction::TokenMintedOidc, &actor, &row, ids, meta, Some(details)).await?;
    tx.commit().await?;
    Ok((row, token))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Disable,
    Enable,
    Revoke,
}

pub async fn set_status(
    state: &AppState,
    actor: &Actor,
    meta: &RequestMeta,
    id: &str,
    transition: Transition,
) -> Result<TokenSummary, AppError> {
    let cred = actor.permit(Action::ManageTokens)?;
    cred.minting_reach()?;
    let (row, projects) = load_with_projects(state, actor, id).await?;
    policy::change_status(&cred, &facts(&row, projects.as_ref().map(|(ids, _)| ids.as_slice())))?;
    let now = now();
    let (from, to, action): (&[TokenState], TokenState, AuditAction) = match (transition, row.status_at(now)) {
        (_, TokenStatus::Revoked) if transition != Transition::Revoke => {
            return Err(AppError::conflict("The token is revoked; that is final. Create a new one."));
        }
        (Transition::Revoke, TokenStatus::Revoked) => return service::get(state, actor, id).await,
        (Transition::Revoke, _) => (&LIVE, TokenState::Revoked, AuditAction::TokenRevoked),
        (_, TokenStatus::Expired) => {
            return Err(AppError::conflict("The token has expired. Rotate it or create a new one."));
        }
        (Transition::Disable, TokenStatus::Disabled) | (Transition::Enable, TokenStatus::Active) => {
            return service::get(state, actor, id).await;
        }
        (Transition::Disable, _) => (&[TokenState::Active], TokenState::Disabled, AuditAction::TokenDisabled),
        (Transition::Enable, _) => (&[TokenState::Disabled], TokenState::Active, AuditAction::TokenEnabled),
    };
    let mut tx = state.db.begin().await?;
    if store::transition(&mut tx, &row.id, from, to, now).await? {
        let ids = projects.map(|(ids, _)| ids).unwrap_or_default();
        record(&mut tx, now, action, actor, &row, &ids, meta, None).await?;
        tx.commit().await?;
    } else {
        // Someone else changed it first; report what it is now.
        tx.rollback().await?;
    }
    service::get(state, actor, id).await
}

pub async fn update(
    state: &AppState,
    actor: &Actor,
    meta: &RequestMeta,
    id: &str,
    req: UpdateToken,
) -> Result<TokenSummary, AppError> {
    update_because(state, actor, meta, id, req, None).await
}

/// Lowers a token's scopes to `to` (the least-privilege hint's one click). Only ever
/// lowers; audit-logged as `token.scope_reduced` with before and after.
pub async fn reduce_scope(
    state: &AppState,
    actor: &Actor,
    meta: &RequestMeta,
    id: &str,
    to: Scope,
) -> Result<TokenSummary, AppError> {
    actor.permit(Action::ManageTokens)?.minting_reach()?;
    let (row, _) = load_with_projects(state, actor, id).await?;
    if top_scope(&row.scopes).is_none_or(|top| to >= top) {
        return Err(AppError::invalid(format!(
            "The token's scopes are already {}; reducing only lowers them.",
            store::scopes_to_text(&row.scopes)
        )));
    }
    let change = UpdateToken { scopes: Some(vec![to]), ..Default::default() };
    update_because(state, actor, meta, id, change, Some("least_privilege")).await
}

/// The rate limit a token may set on another: the tenant's default, else the server's.
async fn rate_ceiling(state: &AppState, tenant_id: &str) -> Result<u32, AppError> {
    let tenant = crate::tenants::server::load(&state.db, tenant_id).await?;
    Ok(tenant.token_rate_limit_per_minute.unwrap_or(state.settings.guard.default_rate_limit))
}

async fn update_because(
    state: &AppState,
    actor: &Actor,
    meta: &RequestMeta,
    id: &str,
    req: UpdateToken,
    reason: Option<&str>,
) -> Result<TokenSummary, AppError> {
    let cred = actor.permit(Action::ManageTokens)?;
    cred.minting_reach()?;
    let (row, before_projects) = load_with_projects(state, actor, id).await?;
    let now = now();
    match row.status_at(now) {
        TokenStatus::Revoked => return Err(AppError::conflict("The token is revoked; it cannot be changed.")),
        TokenStatus::Expired => return Err(AppError::conflict("The token has expired; rotate it instead.")),
        _ => {}
    }
    let name = req.name.as_deref().map(normalize_name).transpose()?.unwrap_or_else(|| row.name.clone());
    let scopes = match &req.scopes {
        Some(scopes) => normalize_scopes(scopes)?,
        None => row.scopes.clone(),
    };
    let after_projects = match &req.projects {
        Some(requested) => resolve_projects(state, &row.tenant_id, requested.as_deref()).await?,
        None => before_projects.clone(),
    };
    let expiry_changed = req.expires_in.is_some() || req.expires_at.is_some();
    let (expires_at, expiry_policy) = if expiry_changed {
        let expiry = Expiry::from_request(req.expires_in, req.expires_at)?;
        let at = expiry.resolve(timestamp(now))?.map(OffsetDateTime::unix_timestamp);
        (policy::bound_expiry(&cred, at)?, ExpiryChoice::from(expiry))
    } else {
        (row.expires_at, row.expiry_policy)
    };
    let rate_limit = match req.rate_limit_per_minute {
        Some(Some(n)) if !(1..=RATE_LIMIT_MAX).contains(&n) => {
            return Err(AppError::invalid(format!("rate_limit_per_minute must be between 1 and {RATE_LIMIT_MAX}.")));
        }
        Some(limit) => limit.map(i64::from),
        None => row.rate_limit,
    };
    let before = facts(&row, before_projects.as_ref().map(|(ids, _)| ids.as_slice()));
    let (addresses, ip_allowlist) = match &req.ip_allowlist {
        Some(list) => allowlist_of(list)?,
        None => (before.reach.addresses.clone(), row.ip_allowlist.clone()),
    };
    let mut after = facts(&row, after_projects.as_ref().map(|(ids, _)| ids.as_slice()));
    after.reach.scope = top_scope(&scopes).unwrap_or(Scope::Read);
    after.reach.expires_at = expires_at;
    after.reach.addresses = addresses;
    after.rate_limit = rate_limit.and_then(|n| u32::try_from(n).ok());
    let ceiling = if after.rate_limit != before.rate_limit { rate_ceiling(state, &row.tenant_id).await? } else { 0 };
    policy::edit_token(&cred, &before, &after, ceiling)?;
    if expiry_changed {
        within_max_lifetime(state, &row.tenant_id, expires_at, now).await?;
    }

    let mut tx = state.db.begin().await?;
    let changes = store::Changes {
        name: &name,
        scopes: &scopes,
        all_projects: after_projects.is_none(),
        expires_at,
        expiry_policy,
        rate_limit,
        ip_allowlist: &ip_allowlist,
    };
    store::update(&mut tx, &row.id, &changes).await?;
    if req.projects.is_some() {
        let ids = after_projects.as_ref().map(|(ids, _)| ids.as_slice()).unwrap_or_default();
        store::set_projects(&mut tx, &row.id, ids).await?;
    }
    let mut changed_before = serde_json::Map::new();
    let mut changed_after = serde_json::Map::new();
    let mut note = |field: &str, b: serde_json::Value, a: serde_json::Value| {
        if b != a {
            changed_before.insert(field.into(), b);
            changed_after.insert(field.into(), a);
        }
    };
    let keys = |p: &TokenProjects| p.as_ref().map(|(_, keys)| keys.clone());
    note("name", json!(row.name), json!(name));
    note("scopes", json!(row.scopes), json!(scopes));
    note("projects", json!(keys(&before_projects)), json!(keys(&after_projects)));
    note(
        "expires_at",
        json!(row.expires_at.map(timestamp).map(rfc3339)),
        json!(expires_at.map(timestamp).map(rfc3339)),
    );
    note("rate_limit_per_minute", json!(row.rate_limit), json!(rate_limit));
    let listed = |text: &str| json!(text.split(',').filter(|s| !s.is_empty()).collect::<Vec<_>>());
    note("ip_allowlist", listed(&row.ip_allowlist), listed(&ip_allowlist));
    if !changed_after.is_empty() {
        let action = if reason.is_some() {
            AuditAction::TokenScopeReduced
        } else if changed_after.len() == 1 && changed_after.contains_key("name") {
            AuditAction::TokenRenamed
        } else {
            AuditAction::TokenUpdated
        };
        let mut details = json!({ "before": changed_before, "after": changed_after });
        if let Some(reason) = reason {
            details["reason"] = json!(reason);
        }
        // About the projects the token reached before and after; tenant-wide if either was all.
        let ids: Vec<String> = match (before.reach.projects.ids(), after.reach.projects.ids()) {
            (Some(b), Some(a)) => b.union(a).cloned().collect(),
            _ => Vec::new(),
        };
        record(&mut tx, now, action, actor, &row, &ids, meta, Some(details)).await?;
    }
    tx.commit().await?;
    service::get(state, actor, id).await
}

/// Revokes a token for `reason`, by `actor`, exactly once whichever instance gets here
/// first; returns whether this call did it.
pub(super) async fn revoke_once(
    state: &AppState,
    token: &TokenRow,
    actor: &Actor,
    action: AuditAction,
    meta: &RequestMeta,
    details: serde_json::Value,
    now: i64,
) -> Result<bool, AppError> {
    let project_ids = match projects_of(state, token).await? {
        Some((ids, _)) => ids,
        None => Vec::new(),
    };
    let mut tx = state.db.begin().await?;
    let done = store::transition(&mut tx, &token.id, &LIVE, TokenState::Revoked, now).await?;
    if done {
        record(&mut tx, now, action, actor, token, &project_ids, meta, Some(details)).await?;
    }
    tx.commit().await?;
    Ok(done)
}

/// Audits a use after expiry, at most once an hour per token and instance.
pub async fn note_use_after_expiry(state: &AppState, token: &TokenRow, meta: &RequestMeta, now: i64) {
    {
        let mut logged = state.expired_use_logged.lock().unwrap_or_else(|e| e.into_inner());
        if logged.get(&token.id).is_some_and(|at| *at > now - 3600) {
            return;
        }
        if logged.len() > 10_000 {
            logged.clear();
        }
        logged.insert(token.id.clone(), now);
    }
    let result = async {
        let project_ids = projects_of(state, token).await?.map(|(ids, _)| ids).unwrap_or_default();
        let mut tx = state.db.begin().await?;
        let action = AuditAction::TokenUsedAfterExpiry;
        record(&mut tx, now, action, &Actor::Server, token, &project_ids, meta, None).await?;
        tx.commit().await?;
        Ok::<_, AppError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not audit a use after expiry");
    }
}
