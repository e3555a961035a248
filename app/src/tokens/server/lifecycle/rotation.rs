//! Rotation: a new token with the old one's reach, and the old one's retirement on the
//! new one's first use, at the end of its window, or at once — always within
//! `RETIRE_CEILING_SECS`, which a later rotation never extends.

use serde_json::json;

use super::{mint, record, revoke_once, NewToken, LIVE};
use crate::{
    actor::{Actor, RequestMeta, TokenPrincipal},
    audit::AuditAction,
    db::now,
    error::AppError,
    policy::{self, Action, Reach},
    state::AppState,
    tokens::{
        server::{
            service::{facts, load_with_projects, summary, Extras},
            store::{self, TokenRow},
        },
        CreatedToken, RetireOld, RotateToken, TokenState, TokenStatus,
    },
};

/// However a rotation was asked for, the old token stops within this many seconds.
pub const RETIRE_CEILING_SECS: i64 = 7 * 86_400;

/// Why a token may not be rotated now because of a rotation already under way.
async fn rotation_conflict(state: &AppState, old: &TokenRow, now: i64) -> Result<Option<String>, AppError> {
    // Waiting to take over from an older token: rotating it would keep that one alive.
    if let (Some(older_id), None) = (&old.replaces_id, old.last_used_at) {
        let older = store::find(&state.db, &old.tenant_id, older_id).await?;
        if older.is_some_and(|o| o.status_at(now) != TokenStatus::Revoked) {
            return Ok(Some(
                "This token is waiting to take over from the one it replaced: use it once, or revoke the older \
                 token, before rotating it."
                    .into(),
            ));
        }
    }
    // Already being replaced by a token that still works.
    for (_, new_id, new_prefix) in store::replacements(&state.db, &[old.id.as_str()]).await? {
        let new = store::find(&state.db, &old.tenant_id, &new_id).await?;
        if new.is_some_and(|n| n.status_at(now) != TokenStatus::Revoked) {
            return Ok(Some(format!(
                "This token is already being replaced by {}; revoke that one to rotate again.",
                crate::tokens::masked(&new_prefix)
            )));
        }
    }
    Ok(None)
}

/// A new token with the old one's name, scopes, projects and expiry policy. The old one
/// stops on the new one's first use, when its window ends, or now — and in any case
/// within `RETIRE_CEILING_SECS`, which a later rotation never extends.
pub async fn rotate(
    state: &AppState,
    actor: &Actor,
    meta: &RequestMeta,
    id: &str,
    req: RotateToken,
) -> Result<CreatedToken, AppError> {
    let cred = actor.permit(Action::ManageTokens)?;
    cred.minting_reach()?;
    let (old, projects) = load_with_projects(state, actor, id).await?;
    let now = now();
    if old.status_at(now) == TokenStatus::Revoked {
        return Err(AppError::conflict("The token is revoked; create a new one instead."));
    }
    let old_facts = facts(&old, projects.as_ref().map(|(ids, _)| ids.as_slice()));
    let choice = old.expiry_policy;
    let expires_at = match choice.fixed() {
        Some(fixed) => fixed.duration(),
        None => old.expires_at.map(|at| time::Duration::seconds(at - old.created_at)),
    }
    .map(|d| now + d.whole_seconds());
    let expires_at = policy::bound_expiry(&cred, expires_at)?;
    // A rotation is how a leak is answered: under the workspace's longest lifetime the
    // new token's expiry is cut to it rather than refused.
    let expires_at = match crate::tenants::server::max_token_lifetime(&state.db, &old.tenant_id).await? {
        Some(days) => Some(policy::MaxLifetime { days }.cut(expires_at, now)),
        None => expires_at,
    };
    let new_reach = Reach { expires_at, ..old_facts.reach.clone() };
    policy::rotate_token(&cred, &old_facts, &new_reach)?;
    if let Some(why) = rotation_conflict(state, &old, now).await? {
        return Err(AppError::conflict(why));
    }

    let ids = projects.as_ref().map(|(ids, _)| ids.as_slice());
    let mut tx = state.db.begin().await?;
    let new = NewToken {
        tenant_id: &old.tenant_id,
        name: &old.name,
        scopes: &old.scopes,
        project_ids: ids,
        expires_at,
        expiry_policy: choice,
        replaces_id: Some(&old.id),
        owner: old.owner,
        ip_allowlist: &old.ip_allowlist,
    };
    let (new, token) = mint(state, &mut tx, actor, new, now).await?;
    let ceiling = now + RETIRE_CEILING_SECS;
    match req.old_token {
        RetireOld::Now => {
            store::transition(&mut tx, &old.id, &LIVE, TokenState::Revoked, now).await?;
        }
        RetireOld::OneHour | RetireOld::OneDay => {
            let window = req.old_token.window().expect("windowed modes have a window");
            store::set_retire_at(&mut tx, &old.id, (now + window.whole_seconds()).min(ceiling), false).await?;
        }
        RetireOld::UntilFirstUse => store::set_retire_at(&mut tx, &old.id, ceiling, true).await?,
    }
    let mode = serde_json::to_value(req.old_token).unwrap_or_default();
    let details = json!({ "new_token": new.prefix.masked(), "old_token": mode });
    let project_ids = ids.unwrap_or_default();
    record(&mut tx, now, AuditAction::TokenRotated, actor, &old, project_ids, meta, Some(details)).await?;
    if req.old_token == RetireOld::Now {
        let details = Some(json!({ "reason": "rotated" }));
        record(&mut tx, now, AuditAction::TokenRevoked, actor, &old, project_ids, meta, details).await?;
    }
    tx.commit().await?;
    let summary = summary(&new, projects.map(|(_, keys)| keys), now, Extras::default());
    Ok(CreatedToken { summary, token })
}

/// Revokes a token whose rotation window (or ceiling) has closed.
pub async fn retire(state: &AppState, token: &TokenRow, meta: &RequestMeta, now: i64) -> Result<(), AppError> {
    let details = json!({ "reason": "rotation window ended" });
    revoke_once(state, token, &Actor::Server, AuditAction::TokenRevoked, meta, details, now).await.map(drop)
}

/// The first use of a rotated token revokes the one it replaced, unless that one was
/// given a window of its own.
pub async fn retire_replaced(
    state: &AppState,
    new: &TokenPrincipal,
    old_id: &str,
    meta: &RequestMeta,
    now: i64,
) -> Result<(), AppError> {
    let Some(old) = store::find(&state.db, &new.tenant_id, old_id).await? else { return Ok(()) };
    let on_first_use = old.retire_on_first_use || old.retire_at.is_none();
    if !on_first_use || old.status == TokenState::Revoked {
        return Ok(());
    }
    let details = json!({ "reason": "replacement token first used" });
    let actor = Actor::Token(Box::new(new.clone()));
    revoke_once(state, &old, &actor, AuditAction::TokenRevoked, meta, details, now).await.map(drop)
}
