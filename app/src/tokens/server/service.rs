//! The token lifecycle: create, list, update, disable / enable / revoke, rotate, leaks.
//! Pages, `/api/v1` and the CLI all come here with an `Actor`, and nobody leaves with
//! more power than they came with.

use serde_json::json;
use time::OffsetDateTime;

use super::{format, store, store::TokenRow, usage::day_of};
use crate::{
    actor::{Actor, RequestMeta},
    audit::{server as audit, Party},
    db::{new_id, now, timestamp},
    error::{AppError, ErrorCode},
    people::server::password,
    projects::normalize_key,
    state::AppState,
    tokens::{
        least_privilege, normalize_name, normalize_scopes, top_scope, CreateToken, CreatedToken, ExpiresIn, Expiry,
        RetireOld, RotateToken, Scope, TokenAddress, TokenDetail, TokenOwner, TokenStatus, TokenSummary, TokenUsage,
        UpdateToken, UsageCounts, UsageDay, RECENT_ADDRESSES, USAGE_DAYS,
    },
};

pub const MAX_PAGE: i64 = 200;

fn status_of(row: &TokenRow, now: i64) -> TokenStatus {
    match row.status.as_str() {
        "revoked" => TokenStatus::Revoked,
        _ if row.retire_at.is_some_and(|at| at <= now) => TokenStatus::Revoked,
        _ if row.expires_at.is_some_and(|at| at <= now) => TokenStatus::Expired,
        "disabled" => TokenStatus::Disabled,
        _ => TokenStatus::Active,
    }
}

/// What a summary adds to the row: the last 30 days' use and a rotation under way.
#[derive(Default)]
struct Extras {
    used: UsageCounts,
    replaced_by: Option<String>,
}

fn summary(row: &TokenRow, projects: Option<Vec<String>>, now: i64, extras: Extras) -> TokenSummary {
    let status = status_of(row, now);
    let live = matches!(status, TokenStatus::Active | TokenStatus::Disabled);
    let created_at = timestamp(row.created_at);
    TokenSummary {
        id: row.id.clone(),
        name: row.name.clone(),
        prefix: row.prefix.clone(),
        scopes: row.scopes.clone(),
        projects,
        created_at,
        created_by: row.created_by_email.clone(),
        expires_at: row.expires_at.map(timestamp),
        last_used_at: row.last_used_at.map(timestamp),
        last_used_ip: row.last_used_ip.clone(),
        status,
        rate_limit_per_minute: row.rate_limit.and_then(|n| u32::try_from(n).ok()),
        owner: row.owner,
        suggested_scope: live.then(|| least_privilege(&row.scopes, created_at, timestamp(now), extras.used)).flatten(),
        replaced_by: extras.replaced_by.filter(|_| live),
        retire_at: row.retire_at.map(timestamp),
    }
}

/// The first day of the usage window that ends today.
fn window_start(now: i64) -> i64 {
    day_of(now) - (USAGE_DAYS - 1)
}

fn target(row: &TokenRow) -> Party {
    Party {
        kind: "token".into(), id: Some(row.id.clone()), label: Some(format!("qh_{}_… ({})", row.prefix, row.name))
    }
}

fn tenant_of(actor: &Actor) -> Result<&str, AppError> {
    actor.tenant_id().ok_or_else(|| AppError::forbidden("This needs a workspace."))
}

/// Owners and admins (or an admin token of one) manage tokens; the rest may only look.
fn require_manager(actor: &Actor) -> Result<Scope, AppError> {
    actor.max_scope().ok_or_else(|| AppError::forbidden("Only owners and admins can manage API tokens."))
}

/// Summaries for rows, with project keys fetched in one query.
async fn summaries(state: &AppState, rows: &[TokenRow]) -> Result<Vec<TokenSummary>, AppError> {
    let restricted: Vec<&str> = rows.iter().filter(|r| !r.all_projects).map(|r| r.id.as_str()).collect();
    let keys = store::project_keys(&state.db, &restricted).await?;
    let now = now();
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    // Written counts, plus what this instance counted since its last batch.
    let from_day = window_start(now);
    let used = store::usage_totals(&state.db, &ids, from_day).await?;
    let replacements = store::replacements(&state.db, &ids).await?;
    Ok(rows
        .iter()
        .map(|row| {
            let projects = (!row.all_projects)
                .then(|| keys.iter().filter(|(t, _, _)| *t == row.id).map(|(_, _, k)| k.clone()).collect());
            let mut extras = Extras {
                used: state.usage.pending(&row.id, from_day),
                replaced_by: replacements.iter().rfind(|(old, _, _)| *old == row.id).map(|(_, new, _)| new.clone()),
            };
            if let Some((_, written)) = used.iter().find(|(id, _)| *id == row.id) {
                extras.used.add(*written);
            }
            summary(row, projects, now, extras)
        })
        .collect())
}

/// Checks a requested project list against the tenant and the actor; returns (ids, keys).
async fn resolve_projects(
    state: &AppState,
    actor: &Actor,
    tenant_id: &str,
    requested: Option<&[String]>,
) -> Result<Option<(Vec<String>, Vec<String>)>, AppError> {
    let Some(requested) = requested else {
        if actor.project_ids().is_some() {
            return Err(AppError::new(
                ErrorCode::ProjectRestricted,
                "A project token can only create tokens for its own projects.",
            ));
        }
        return Ok(None);
    };
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
    if let Some(allowed) = actor.project_ids() {
        if found.iter().any(|(id, _)| !allowed.contains(id)) {
            return Err(AppError::new(
                ErrorCode::ProjectRestricted,
                "A project token can only create tokens for its own projects.",
            ));
        }
    }
    Ok(Some(found.into_iter().unzip()))
}

fn check_scope_power(actor: &Actor, scopes: &[Scope]) -> Result<(), AppError> {
    let max = require_manager(actor)?;
    match top_scope(scopes) {
        Some(top) if top > max => Err(AppError::insufficient_scope(top)),
        _ => Ok(()),
    }
}

/// Workspace (service) tokens outlive their creator, so only people who manage the
/// workspace, or a workspace token with admin scope, may mint one: a person's token may
/// not hand out power that survives that person.
fn check_owner(actor: &Actor, owner: TokenOwner) -> Result<(), AppError> {
    match (owner, actor) {
        (TokenOwner::User, _) => Ok(()),
        (TokenOwner::Workspace, Actor::Token(t)) if t.owner != TokenOwner::Workspace => Err(AppError::new(
            ErrorCode::InsufficientScope,
            "A person's token cannot create a workspace token; sign in, or use a workspace admin token.",
        )),
        (TokenOwner::Workspace, _) => Ok(()),
    }
}

/// A token's lifetime never exceeds that of the token creating it: a later expiry is
/// cut to the creator's (so two "30 days" a second apart still fit), "never" is refused.
fn bound_lifetime(actor: &Actor, expires_at: Option<i64>) -> Result<Option<i64>, AppError> {
    let limit = match actor {
        Actor::Token(t) => t.expires_at.map(OffsetDateTime::unix_timestamp),
        _ => None,
    };
    match (limit, expires_at) {
        (Some(_), None) => {
            Err(AppError::new(ErrorCode::InsufficientScope, "A token cannot create a token that outlives it."))
        }
        (Some(limit), Some(at)) => Ok(Some(at.min(limit))),
        (None, at) => Ok(at),
    }
}

fn policy_of(expiry: Expiry) -> &'static str {
    match expiry {
        Expiry::In(choice) => choice.as_str(),
        Expiry::At(_) => "custom",
    }
}

struct Minted {
    row_id: String,
    token: String,
}

/// Inserts a fresh token (new prefix on collision) inside `tx`.
#[allow(clippy::too_many_arguments)]
async fn mint(
    state: &AppState,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &str,
    name: &str,
    scopes: &[Scope],
    project_ids: Option<&[String]>,
    created_by: Option<&str>,
    expires_at: Option<i64>,
    expiry_policy: &str,
    replaces_id: Option<&str>,
    owner: TokenOwner,
    now: i64,
) -> Result<Minted, AppError> {
    for _ in 0..8 {
        let token = format::generate(&format::random_prefix());
        let hash = password::hash(token.secret().to_owned(), state.settings.bcrypt_cost).await?;
        let id = new_id();
        let new = store::NewToken {
            id: &id,
            tenant_id,
            prefix: token.prefix(),
            secret_hash: &hash,
            name,
            scopes,
            project_ids,
            created_by,
            created_at: now,
            expires_at,
            expiry_policy,
            replaces_id,
            owner,
        };
        if store::insert(tx, &new).await? {
            return Ok(Minted { row_id: id, token: token.expose() });
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
    let tenant_id = tenant_of(actor)?.to_string();
    require_manager(actor)?;
    let name = normalize_name(&req.name)?;
    let scopes = normalize_scopes(&req.scopes)?;
    check_scope_power(actor, &scopes)?;
    check_owner(actor, req.owner)?;
    let projects = resolve_projects(state, actor, &tenant_id, req.projects.as_deref()).await?;
    let expiry = Expiry::from_request(req.expires_in, req.expires_at)?;
    let now_dt = timestamp(now());
    let expires_at = expiry.resolve(now_dt)?.map(OffsetDateTime::unix_timestamp);
    let expires_at = bound_lifetime(actor, expires_at)?;

    let now = now_dt.unix_timestamp();
    let mut tx = state.db.begin().await?;
    let minted = mint(
        state,
        &mut tx,
        &tenant_id,
        &name,
        &scopes,
        projects.as_ref().map(|(ids, _)| ids.as_slice()),
        actor.user_id(),
        expires_at,
        policy_of(expiry),
        None,
        req.owner,
        now,
    )
    .await?;
    let row = store::find(&mut *tx, &tenant_id, &minted.row_id).await?.ok_or_else(AppError::internal)?;
    audit::record(
        &mut tx,
        now,
        audit::Event {
            tenant_id: &tenant_id,
            action: "token.created",
            actor,
            target: Some(target(&row)),
            meta,
            details: Some(json!({
                "scopes": scopes, "projects": projects.as_ref().map(|(_, keys)| keys), "owner": req.owner,
                "expires_at": expires_at.map(timestamp).map(rfc3339),
            })),
        },
    )
    .await?;
    tx.commit().await?;
    let summary = summary(&row, projects.map(|(_, keys)| keys), now, Extras::default());
    Ok(CreatedToken { summary, token: minted.token })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub search: Option<String>,
    pub status: Option<TokenStatus>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

fn parse_cursor(cursor: &str) -> Result<(i64, String), AppError> {
    cursor
        .split_once('.')
        .and_then(|(at, id)| Some((at.parse().ok()?, id.to_string())))
        .ok_or_else(|| AppError::invalid("The cursor is not one this server gave out."))
}

/// A page of the tenant's tokens, newest first. Everyone in the tenant may list; a
/// project token sees only tokens confined to its projects.
pub async fn list(state: &AppState, actor: &Actor, query: ListQuery) -> Result<Page<TokenSummary>, AppError> {
    let tenant_id = tenant_of(actor)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::invalid(format!("limit must be between 1 and {MAX_PAGE}.")));
    }
    let before = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let search = query.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
    // Filters that SQL cannot apply are applied here; the cursor follows the rows read.
    let rows = store::list(&state.db, tenant_id, before, search, limit).await?;
    let next_cursor = (rows.len() as i64 == limit).then(|| {
        let last = rows.last().expect("a full page has a last row");
        format!("{}.{}", last.created_at, last.id)
    });
    let mut data = summaries(state, &rows).await?;
    if let Some(status) = query.status {
        data.retain(|t| t.status == status);
    }
    if let Actor::Token(t) = actor {
        if let Some(scope) = &t.projects {
            data.retain(|s| s.projects.as_ref().is_some_and(|p| p.iter().all(|k| scope.keys.contains(k))));
        }
    }
    Ok(Page { data, next_cursor })
}

async fn load(state: &AppState, actor: &Actor, id: &str) -> Result<TokenRow, AppError> {
    let tenant_id = tenant_of(actor)?;
    let row = store::find(&state.db, tenant_id, id).await?.ok_or_else(|| AppError::not_found("Token"))?;
    if let Some(allowed) = actor.project_ids() {
        // A project token only sees tokens confined to its own projects.
        let keys = store::project_keys(&state.db, &[row.id.as_str()]).await?;
        if row.all_projects || keys.iter().any(|(_, pid, _)| !allowed.contains(pid)) {
            return Err(AppError::not_found("Token"));
        }
    }
    Ok(row)
}

pub async fn get(state: &AppState, actor: &Actor, id: &str) -> Result<TokenSummary, AppError> {
    let row = load(state, actor, id).await?;
    Ok(summaries(state, std::slice::from_ref(&row)).await?.remove(0))
}

/// The last 30 days of a token's use, every day present, oldest first. Counts this
/// instance has not written yet are written first, so the answer includes them.
pub async fn usage(state: &AppState, actor: &Actor, id: &str) -> Result<TokenUsage, AppError> {
    usage_of(state, load(state, actor, id).await?).await
}

async fn usage_of(state: &AppState, row: TokenRow) -> Result<TokenUsage, AppError> {
    let now = now();
    // Bounded: a reader never waits long on a batch being written; at worst it misses
    // the counts of the last few seconds. The write runs as its own task, so giving up
    // on waiting never drops a batch half-written.
    let (usage, db) = (state.usage.clone(), state.db.clone());
    let write = tokio::spawn(async move { usage.flush(&db, now).await });
    match tokio::time::timeout(std::time::Duration::from_secs(3), write).await {
        Ok(Ok(Ok(_))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "could not write token usage before reading it"),
        Ok(Err(e)) => tracing::warn!(error = %e, "the usage write task failed"),
        Err(_) => tracing::warn!("token usage is still being written; reading what is there"),
    }
    let from_day = window_start(now);
    let written = store::usage_days(&state.db, &row.id, from_day).await?;
    let mut total = UsageCounts::default();
    let days = (from_day..=day_of(now))
        .map(|day| {
            let counts = written.iter().find(|(d, _)| *d == day).map(|(_, c)| *c).unwrap_or_default();
            total.add(counts);
            UsageDay { date: timestamp(day * 86_400).date().to_string(), counts }
        })
        .collect();
    let live = matches!(status_of(&row, now), TokenStatus::Active | TokenStatus::Disabled);
    let suggested_scope =
        live.then(|| least_privilege(&row.scopes, timestamp(row.created_at), timestamp(now), total)).flatten();
    Ok(TokenUsage { token_id: row.id, days, total, suggested_scope })
}

/// The last addresses a token was used from, most recent first.
pub async fn addresses(state: &AppState, actor: &Actor, id: &str) -> Result<Vec<TokenAddress>, AppError> {
    let row = load(state, actor, id).await?;
    store::recent_addresses(&state.db, &row.id, RECENT_ADDRESSES).await
}

/// Everything the token's detail view shows, from one read of the token's row.
pub async fn detail(state: &AppState, actor: &Actor, id: &str) -> Result<TokenDetail, AppError> {
    let row = load(state, actor, id).await?;
    // Usage first: it writes this instance's pending counts, which the summary's hint reads.
    let usage = usage_of(state, row.clone()).await?;
    let token = summaries(state, std::slice::from_ref(&row)).await?.remove(0);
    let addresses = store::recent_addresses(&state.db, &row.id, RECENT_ADDRESSES).await?;
    let replaced_by_masked = match &token.replaced_by {
        Some(new_id) => store::find(&state.db, tenant_of(actor)?, new_id).await?.map(|t| format!("qh_{}_…", t.prefix)),
        None => None,
    };
    Ok(TokenDetail { token, usage, addresses, replaced_by_masked, now: timestamp(now()) })
}

/// What suspending a person does to their tokens that work now: `(workspace name,
/// token)` for the ones that stop (their own), and how many keep working (the
/// workspace's, which they created). All workspaces, or one.
pub async fn stopping_with(
    state: &AppState,
    user_id: &str,
    tenant_id: Option<&str>,
) -> Result<(Vec<(String, TokenSummary)>, usize), AppError> {
    let rows = store::live_tokens_created_by(&state.db, user_id, tenant_id, now()).await?;
    let (own, workspace): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(_, row)| row.owner == TokenOwner::User);
    let (names, rows): (Vec<String>, Vec<TokenRow>) = own.into_iter().unzip();
    Ok((names.into_iter().zip(summaries(state, &rows).await?).collect(), workspace.len()))
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
    require_manager(actor)?;
    let row = load(state, actor, id).await?;
    let now = now();
    let status = status_of(&row, now);
    let (from, to, action): (&[&str], &str, &str) = match (transition, status) {
        (_, TokenStatus::Revoked) if transition != Transition::Revoke => {
            return Err(AppError::conflict("The token is revoked; that is final. Create a new one."));
        }
        (Transition::Revoke, TokenStatus::Revoked) => return get(state, actor, id).await,
        (Transition::Revoke, _) => (&["active", "disabled"], "revoked", "token.revoked"),
        (_, TokenStatus::Expired) => {
            return Err(AppError::conflict("The token has expired. Rotate it or create a new one."));
        }
        (Transition::Disable, TokenStatus::Disabled) | (Transition::Enable, TokenStatus::Active) => {
            return get(state, actor, id).await;
        }
        (Transition::Disable, _) => (&["active"], "disabled", "token.disabled"),
        (Transition::Enable, _) => (&["disabled"], "active", "token.enabled"),
    };
    let mut tx = state.db.begin().await?;
    if store::transition(&mut tx, &row.id, from, to, now).await? {
        let event =
            audit::Event { tenant_id: &row.tenant_id, action, actor, target: Some(target(&row)), meta, details: None };
        audit::record(&mut tx, now, event).await?;
        tx.commit().await?;
    } else {
        // Someone else changed it first; report what it is now.
        tx.rollback().await?;
    }
    get(state, actor, id).await
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
    require_manager(actor)?;
    let row = load(state, actor, id).await?;
    if top_scope(&row.scopes).is_none_or(|top| to >= top) {
        return Err(AppError::invalid(format!(
            "The token's scopes are already {}; reducing only lowers them.",
            super::store::scopes_to_text(&row.scopes)
        )));
    }
    let change = UpdateToken { scopes: Some(vec![to]), ..Default::default() };
    update_because(state, actor, meta, id, change, Some("least_privilege")).await
}

async fn update_because(
    state: &AppState,
    actor: &Actor,
    meta: &RequestMeta,
    id: &str,
    req: UpdateToken,
    reason: Option<&str>,
) -> Result<TokenSummary, AppError> {
    require_manager(actor)?;
    let row = load(state, actor, id).await?;
    let now = now();
    match status_of(&row, now) {
        TokenStatus::Revoked => return Err(AppError::conflict("The token is revoked; it cannot be changed.")),
        TokenStatus::Expired => return Err(AppError::conflict("The token has expired; rotate it instead.")),
        _ => {}
    }
    let before = get(state, actor, id).await?;
    let name = req.name.as_deref().map(normalize_name).transpose()?.unwrap_or_else(|| row.name.clone());
    let scopes = match &req.scopes {
        Some(scopes) => normalize_scopes(scopes)?,
        None => row.scopes.clone(),
    };
    // Unchanged fields are checked too: an edit by a weaker actor must not keep power it lacks.
    check_scope_power(actor, &scopes)?;
    let projects = match &req.projects {
        Some(requested) => Some(resolve_projects(state, actor, &row.tenant_id, requested.as_deref()).await?),
        None => None,
    };
    let (mut expires_at, policy) = if req.expires_in.is_some() || req.expires_at.is_some() {
        let expiry = Expiry::from_request(req.expires_in, req.expires_at)?;
        (expiry.resolve(timestamp(now))?.map(OffsetDateTime::unix_timestamp), policy_of(expiry).to_string())
    } else {
        (row.expires_at, row.expiry_policy.clone())
    };
    if req.expires_in.is_some() || req.expires_at.is_some() {
        expires_at = bound_lifetime(actor, expires_at)?;
    }
    let rate_limit = match req.rate_limit_per_minute {
        Some(Some(n)) if !(1..=crate::tokens::RATE_LIMIT_MAX).contains(&n) => {
            return Err(AppError::invalid(format!(
                "rate_limit_per_minute must be between 1 and {}.",
                crate::tokens::RATE_LIMIT_MAX
            )));
        }
        Some(limit) => limit.map(i64::from),
        None => row.rate_limit,
    };

    let mut tx = state.db.begin().await?;
    let all_projects = match &projects {
        Some(p) => p.is_none(),
        None => row.all_projects,
    };
    let changes =
        store::Changes { name: &name, scopes: &scopes, all_projects, expires_at, expiry_policy: &policy, rate_limit };
    store::update(&mut tx, &row.id, &changes).await?;
    if let Some(Some((ids, _))) = &projects {
        store::set_projects(&mut tx, &row.id, ids).await?;
    } else if let Some(None) = &projects {
        store::set_projects(&mut tx, &row.id, &[]).await?;
    }
    let after_projects = match &projects {
        Some(p) => p.as_ref().map(|(_, keys)| keys.clone()),
        None => before.projects.clone(),
    };
    let mut changed_before = serde_json::Map::new();
    let mut changed_after = serde_json::Map::new();
    let mut note = |field: &str, b: serde_json::Value, a: serde_json::Value| {
        if b != a {
            changed_before.insert(field.into(), b);
            changed_after.insert(field.into(), a);
        }
    };
    note("name", json!(before.name), json!(name));
    note("scopes", json!(before.scopes), json!(scopes));
    note("projects", json!(before.projects), json!(after_projects));
    note("expires_at", json!(before.expires_at.map(rfc3339)), json!(expires_at.map(timestamp).map(rfc3339)));
    note("rate_limit_per_minute", json!(before.rate_limit_per_minute), json!(rate_limit));
    if !changed_after.is_empty() {
        let action = if reason.is_some() {
            "token.scope_reduced"
        } else if changed_after.len() == 1 && changed_after.contains_key("name") {
            "token.renamed"
        } else {
            "token.updated"
        };
        let mut details = json!({ "before": changed_before, "after": changed_after });
        if let Some(reason) = reason {
            details["reason"] = json!(reason);
        }
        let event = audit::Event {
            tenant_id: &row.tenant_id,
            action,
            actor,
            target: Some(target(&row)),
            meta,
            details: Some(details),
        };
        audit::record(&mut tx, now, event).await?;
    }
    tx.commit().await?;
    get(state, actor, id).await
}

/// A new token with the old one's name, scopes, projects and expiry policy.
pub async fn rotate(
    state: &AppState,
    actor: &Actor,
    meta: &RequestMeta,
    id: &str,
    req: RotateToken,
) -> Result<CreatedToken, AppError> {
    require_manager(actor)?;
    let old = load(state, actor, id).await?;
    let now = now();
    if status_of(&old, now) == TokenStatus::Revoked {
        return Err(AppError::conflict("The token is revoked; create a new one instead."));
    }
    check_scope_power(actor, &old.scopes)?;
    check_owner(actor, old.owner)?;
    let old_projects = if old.all_projects {
        None
    } else {
        Some(
            store::project_keys(&state.db, &[old.id.as_str()])
                .await?
                .into_iter()
                .map(|(_, _, k)| k)
                .collect::<Vec<_>>(),
        )
    };
    let projects = resolve_projects(state, actor, &old.tenant_id, old_projects.as_deref()).await?;
    let expires_at = match old.expiry_policy.as_str() {
        "30d" => ExpiresIn::Days30.duration(),
        "90d" => ExpiresIn::Days90.duration(),
        "custom" => old.expires_at.map(|at| time::Duration::seconds(at - old.created_at)),
        _ => None,
    }
    .map(|d| now + d.whole_seconds());
    let expires_at = bound_lifetime(actor, expires_at)?;

    let mut tx = state.db.begin().await?;
    let minted = mint(
        state,
        &mut tx,
        &old.tenant_id,
        &old.name,
        &old.scopes,
        projects.as_ref().map(|(ids, _)| ids.as_slice()),
        actor.user_id(),
        expires_at,
        &old.expiry_policy,
        Some(&old.id),
        old.owner,
        now,
    )
    .await?;
    match req.old_token {
        RetireOld::Now => {
            store::transition(&mut tx, &old.id, &["active", "disabled"], "revoked", now).await?;
        }
        RetireOld::OneHour | RetireOld::OneDay => {
            let window = req.old_token.window().expect("windowed modes have a window");
            store::set_retire_at(&mut tx, &old.id, now + window.whole_seconds()).await?;
        }
        RetireOld::UntilFirstUse => {}
    }
    let new = store::find(&mut *tx, &old.tenant_id, &minted.row_id).await?.ok_or_else(AppError::internal)?;
    let mode = serde_json::to_value(req.old_token).unwrap_or_default();
    let event = audit::Event {
        tenant_id: &old.tenant_id,
        action: "token.rotated",
        actor,
        target: Some(target(&old)),
        meta,
        details: Some(json!({ "new_token": format!("qh_{}_…", new.prefix), "old_token": mode })),
    };
    audit::record(&mut tx, now, event).await?;
    if req.old_token == RetireOld::Now {
        let event = audit::Event {
            tenant_id: &old.tenant_id,
            action: "token.revoked",
            actor,
            target: Some(target(&old)),
            meta,
            details: Some(json!({ "reason": "rotated" })),
        };
        audit::record(&mut tx, now, event).await?;
    }
    tx.commit().await?;
    let summary = summary(&new, projects.map(|(_, keys)| keys), now, Extras::default());
    Ok(CreatedToken { summary, token: minted.token })
}

/// Revokes a token whose rotation window has closed; the event is written exactly once.
pub async fn retire(state: &AppState, token: &TokenRow, meta: &RequestMeta, now: i64) -> Result<(), AppError> {
    let mut tx = state.db.begin().await?;
    if store::transition(&mut tx, &token.id, &["active", "disabled"], "revoked", now).await? {
        let event = audit::Event {
            tenant_id: &token.tenant_id,
            action: "token.revoked",
            actor: &Actor::System,
            target: Some(target(token)),
            meta,
            details: Some(json!({ "reason": "rotation window ended" })),
        };
        audit::record(&mut tx, now, event).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The first use of a rotated token revokes the one it replaced, unless that one has a
/// window of its own. Exactly once, whichever instance sees the first use.
pub async fn retire_replaced(
    state: &AppState,
    new: &super::auth::TokenPrincipal,
    old_id: &str,
    meta: &RequestMeta,
    now: i64,
) -> Result<(), AppError> {
    let Some(old) = store::find(&state.db, &new.tenant_id, old_id).await? else { return Ok(()) };
    if old.retire_at.is_some() || old.status == "revoked" {
        return Ok(());
    }
    let mut tx = state.db.begin().await?;
    if store::transition(&mut tx, &old.id, &["active", "disabled"], "revoked", now).await? {
        let event = audit::Event {
            tenant_id: &old.tenant_id,
            action: "token.revoked",
            actor: &Actor::Token(Box::new(new.clone())),
            target: Some(target(&old)),
            meta,
            details: Some(json!({ "reason": "replacement token first used" })),
        };
        audit::record(&mut tx, now, event).await?;
    }
    tx.commit().await?;
    Ok(())
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
    let event = audit::Event {
        tenant_id: &token.tenant_id,
        action: "token.used_after_expiry",
        actor: &Actor::System,
        target: Some(target(token)),
        meta,
        details: None,
    };
    if let Err(e) = audit::record_alone(&state.db, now, event).await {
        tracing::warn!(error = %e, "could not audit a use after expiry");
    }
}

pub const LEAK_REPORT_MAX: usize = 20;

/// Revokes every reported token that is real and live. Says nothing back about which.
pub async fn report_leaked(
    state: &AppState,
    tokens: &[String],
    source: Option<&str>,
    url: Option<&str>,
    meta: &RequestMeta,
) {
    let mut seen = Vec::new();
    for presented in tokens.iter().take(LEAK_REPORT_MAX) {
        let Some(parsed) = format::parse(presented.trim()) else { continue };
        if seen.contains(&parsed.prefix().to_string()) {
            continue;
        }
        seen.push(parsed.prefix().to_string());
        let row = match store::find_for_auth(&state.db, parsed.prefix(), "").await {
            Ok(Some(row)) => row,
            _ => continue,
        };
        let matches =
            password::verify_bounded(state, parsed.secret().to_owned(), row.secret_hash.clone()).await.unwrap_or(false);
        if !matches {
            continue;
        }
        let now = now();
        let result: Result<(), AppError> = async {
            let mut tx = state.db.begin().await?;
            if store::transition(&mut tx, &row.token.id, &["active", "disabled"], "revoked", now).await? {
                let event = audit::Event {
                    tenant_id: &row.token.tenant_id,
                    action: "token.leaked",
                    actor: &Actor::System,
                    target: Some(target(&row.token)),
                    meta,
                    details: Some(json!({ "source": source, "url": url })),
                };
                audit::record(&mut tx, now, event).await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not revoke a leaked token");
        }
    }
}
