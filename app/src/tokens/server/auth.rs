//! Authenticating an `/api/v1` request: header → format → prefix lookup → bcrypt →
//! lifecycle → tenant, owner, address and name rules. Every status is read from the
//! database on each request, so a change applies on the very next one, on every instance.

use std::{
    net::IpAddr,
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc,
    },
};

use super::{format, guard, lifecycle, store};
use crate::addresses::{allowlist_admits, normalize_host, parse_allowlist};
use crate::{
    actor::{Actor, AiSettings, ProjectScope, RequestMeta, TokenPrincipal},
    audit::{server as audit, AuditAction, Party},
    credentials::{api_token, siem_key, Credential, TokenKind},
    db::{now, timestamp},
    error::{AppError, ErrorCode},
    people::{server::password, AccountStatus, Role},
    policy::{Projects, Reach},
    state::AppState,
    tokens::{Scope, TokenOwner, TokenState, TokenStatus},
};

/// What a request counts as in usage: the highest scope its route asked for through
/// `Actor::permit` (`read` when none did, like `GET /me`).
pub fn request_kind(needed: &AtomicU8) -> Scope {
    match needed.load(Ordering::Relaxed) {
        n if n == Scope::Admin as u8 => Scope::Admin,
        n if n == Scope::Write as u8 => Scope::Write,
        _ => Scope::Read,
    }
}

/// What authentication reads from the request.
pub struct Credentials<'a> {
    pub authorization: Option<&'a str>,
    pub host: Option<&'a str>,
    pub client_ip: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
}

fn fail(code: ErrorCode, message: &str) -> AppError {
    AppError::new(code, message)
}

/// `Bearer <token>` or the legacy `ApiKey <token>`, scheme case-insensitive.
pub fn token_from_header(value: Option<&str>) -> Result<&str, AppError> {
    let missing = || fail(ErrorCode::MissingToken, "Send an API token: Authorization: Bearer qh_…");
    let value = value.ok_or_else(missing)?.trim();
    let (scheme, rest) = value.split_once(' ').ok_or_else(missing)?;
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("apikey") {
        Ok(rest.trim())
    } else {
        Err(missing())
    }
}

/// Why a token does not work at a given moment, in the order requests are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unusable {
    Revoked,
    /// A rotation replaced it and its overlap has ended.
    Retired,
    Expired,
    Disabled,
    TenantSuspended,
    /// The person who owns it is suspended, or no longer a member.
    OwnerGone,
}

impl Unusable {
    pub fn error(self) -> AppError {
        match self {
            Unusable::Revoked | Unusable::Retired => fail(ErrorCode::RevokedToken, "The token has been revoked."),
            Unusable::Expired => fail(ErrorCode::ExpiredToken, "The token has expired."),
            Unusable::Disabled => fail(ErrorCode::DisabledToken, "The token is disabled."),
            Unusable::TenantSuspended => fail(ErrorCode::TenantSuspended, "The workspace is suspended."),
            Unusable::OwnerGone => {
                fail(ErrorCode::UserSuspended, "The person who owns this token is suspended or gone.")
            }
        }
    }
}

/// Whether the token of `row` works at `now`: the one lifecycle rule behind every
/// request and every exchange through a trust policy the token made.
pub fn standing(row: &store::AuthRow, now: i64) -> Result<(), Unusable> {
    let token = &row.token;
    // The one state rule (`TokenState::status_at`); a rotation's end reads as revoked
    // there, and is told apart here because it is retired on first sight.
    match token.status_at(now) {
        TokenStatus::Revoked if token.status == TokenState::Revoked => return Err(Unusable::Revoked),
        TokenStatus::Revoked => return Err(Unusable::Retired),
        TokenStatus::Expired => return Err(Unusable::Expired),
        TokenStatus::Disabled => return Err(Unusable::Disabled),
        TokenStatus::Active => {}
    }
    if AccountStatus::parse(&row.tenant_status) != AccountStatus::Active {
        return Err(Unusable::TenantSuspended);
    }
    let owner_active = row.owner_status.as_deref().map(AccountStatus::parse) == Some(AccountStatus::Active);
    if token.owner != TokenOwner::Workspace && (!owner_active || row.owner_role.is_none()) {
        return Err(Unusable::OwnerGone);
    }
    Ok(())
}

/// The credential of the token of `row` as it stands at `now` (for a trust policy's
/// creator): refused as a request with it would be, else its reach with `project_ids`.
pub fn credential_of(row: &store::AuthRow, project_ids: Option<Vec<String>>, now: i64) -> Result<Credential, Unusable> {
    standing(row, now)?;
    let token = &row.token;
    let reach = Reach::of_token(
        &token.scopes,
        project_ids.map_or(Projects::All, Projects::only),
        token.expires_at,
        token.retire_at,
        token.owner,
        parse_allowlist(&token.ip_allowlist).unwrap_or_default(),
    );
    Ok(api_token::of_token(&token.id, kind_of(row), reach, creator_manages_of(row)))
}

fn kind_of(row: &store::AuthRow) -> TokenKind {
    TokenKind::of(&row.token.name, row.token.minted_for.is_some())
}

fn creator_manages_of(row: &store::AuthRow) -> bool {
    api_token::creator_manages(row.token.owner, row.owner_role.as_deref().and_then(|r| Role::parse(r).ok()))
}

pub async fn authenticate(state: &AppState, creds: Credentials<'_>) -> Result<TokenPrincipal, AppError> {
    let presented = token_from_header(creds.authorization)?;
    let parsed = format::parse(presented).ok_or_else(|| {
        fail(ErrorCode::MalformedToken, "This is not a QA Hub token (qh_<prefix>_<secret>), or it was mistyped.")
    })?;
    let invalid = || fail(ErrorCode::InvalidToken, "The token is not valid.");
    let host = creds.host.map(normalize_host).unwrap_or_default();

    let guard = &state.guard;
    let key = guard::key_of(presented);
    if guard.recently_rejected(&key).await {
        return Err(invalid());
    }
    // A secret not verified before counts as an attempt, checked before any database
    // read, so a flood of wrong secrets costs neither bcrypt nor queries once limited.
    let known = guard.lookup(&key).await;
    if known.is_none() {
        guard.attempt(parsed.prefix(), creds.client_ip)?;
    }
    // The row is read on every request: statuses are never trusted from memory.
    let row = state.lookups.find(parsed.prefix(), &host).await?;
    let verified = match (&row, known) {
        (Some(row), Some(v)) if v.token_id == row.token.id && v.secret_hash == row.secret_hash => true,
        (Some(row), known) => {
            if known.is_some() {
                // Verified against another row or hash: forget it, or `verify_once` would
                // hand back the stale entry instead of checking this row.
                guard.forget(&key).await;
            }
            let (token_id, secret_hash) = (row.token.id.clone(), row.secret_hash.clone());
            let secret = parsed.secret().to_owned();
            let check = async move {
                match password::verify_bounded(&state.bcrypt_permits, secret, secret_hash.clone()).await {
                    Ok(true) => Ok(guard::Verified { token_id, secret_hash }),
                    _ => Err(invalid()),
                }
            };
            guard.verify_once(key, check).await.is_ok()
        }
        (None, _) => {
            // Unknown prefixes cost a bcrypt check too, so timing tells nothing.
            let _ = password::verify_bounded(
                &state.bcrypt_permits,
                parsed.secret().to_owned(),
                state.dummy_hash.to_string(),
            )
            .await;
            false
        }
    };
    let row = match row {
        Some(row) if verified => row,
        _ => {
            guard.reject(key).await;
            return Err(invalid());
        }
    };
    if row.host_owner.as_ref().is_some_and(|owner| *owner != row.token.tenant_id) {
        return Err(invalid());
    }

    let now = now();
    let token = &row.token;
    let meta =
        RequestMeta { ip: creds.client_ip.map(|ip| ip.to_string()), user_agent: creds.user_agent.map(str::to_owned) };
    match standing(&row, now) {
        Ok(()) => {}
        Err(why @ Unusable::Retired) => {
            lifecycle::retire(state, token, &meta, now).await?;
            return Err(why.error());
        }
        Err(why @ Unusable::Expired) => {
            lifecycle::note_use_after_expiry(state, token, &meta, now).await;
            return Err(why.error());
        }
        Err(why) => return Err(why.error()),
    }
    let allowlist = parse_allowlist(&row.ip_allowlist).unwrap_or_default();
    if !allowlist_admits(&allowlist, creds.client_ip) {
        return Err(fail(ErrorCode::IpNotAllowed, "Requests from this address are not allowed for this workspace."));
    }
    // Both lists must pass: the workspace's and the token's own.
    let token_allowlist = parse_allowlist(&token.ip_allowlist).unwrap_or_default();
    if !allowlist_admits(&token_allowlist, creds.client_ip) {
        return Err(fail(ErrorCode::IpNotAllowed, "Requests from this address are not allowed for this token."));
    }
    let kind = kind_of(&row);
    if kind == TokenKind::SiemKey && !siem_key::may_request(creds.method, creds.path) {
        return Err(siem_key::refusal());
    }

    let projects = if token.all_projects {
        None
    } else {
        let rows = store::project_keys(&state.db, &[token.id.as_str()]).await?;
        Some(ProjectScope {
            ids: rows.iter().map(|(_, id, _)| id.clone()).collect(),
            keys: rows.into_iter().map(|(_, _, key)| key).collect(),
        })
    };
    let principal = TokenPrincipal {
        token_id: token.id.clone(),
        tenant_id: token.tenant_id.clone(),
        tenant_name: row.tenant_name.clone(),
        tenant_status: row.tenant_status.clone(),
        prefix: token.prefix.clone(),
        name: token.name.clone(),
        scopes: token.scopes.clone(),
        projects,
        expires_at: token.expires_at.map(timestamp),
        created_at: token.created_at,
        retire_at: token.retire_at.map(timestamp),
        ip_allowlist: token_allowlist,
        created_by: token.created_by.clone(),
        kind,
        creator_manages: creator_manages_of(&row),
        owner: token.owner,
        ai: AiSettings {
            provider: row.ai_provider.clone(),
            model: row.ai_model.clone(),
            quota_exhausted: row.ai_quota_exhausted,
        },
        rate_limit: row
            .rate_limit
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(guard.settings.default_rate_limit),
        needed: Arc::default(),
    };

    // A rotated token's first use retires the one it replaced (unless that has a window).
    if token.last_used_at.is_none() {
        if let Some(old_id) = &token.replaces_id {
            lifecycle::retire_replaced(state, &principal, old_id, &meta, now).await?;
        }
    }
    record_use(state, &row, &principal, meta, now);
    Ok(principal)
}

/// Last-used time and address (at most once a minute), new-address events and the
/// tenant's last activity (at most once a day), written off the request's path.
fn record_use(state: &AppState, row: &store::AuthRow, principal: &TokenPrincipal, meta: RequestMeta, now: i64) {
    let token = &row.token;
    let stale = token.last_used_at.is_none_or(|at| at <= now - 60) || token.last_used_ip != meta.ip;
    let tenant_stale = row.tenant_last_active_at.is_none_or(|at| at <= now - 86_400);
    if !stale && !tenant_stale {
        return;
    }
    let (db, principal) = (state.db.clone(), principal.clone());
    let writing = state.writers.enter();
    tokio::spawn(async move {
        let _writing = writing;
        if stale {
            match store::touch(&db, &principal.token_id, meta.ip.as_deref(), now).await {
                Ok(true) => {
                    let projects = principal.projects.as_ref().map(|p| p.ids.clone()).unwrap_or_default();
                    let event = audit::Event {
                        tenant_id: &principal.tenant_id,
                        action: AuditAction::TokenNewIp,
                        actor: &Actor::Token(Box::new(principal.clone())),
                        target: Some(Party {
                            kind: "token".into(),
                            id: Some(principal.token_id.clone()),
                            label: Some(principal.prefix.masked()),
                        }),
                        meta: &meta,
                        details: None,
                        projects: &projects,
                    };
                    if let Err(e) = audit::record_alone(&db, now, event).await {
                        tracing::warn!(error = %e, "could not record a new-address event");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "could not record token use"),
            }
        }
        if tenant_stale {
            let _ = store::touch_tenant(&db, &principal.tenant_id, now).await;
        }
    });
}

impl AppError {
    pub fn insufficient_scope(needed: Scope) -> Self {
        let mut err = AppError::new(
            ErrorCode::InsufficientScope,
            format!("This needs a token with the {} scope.", needed.as_str()),
        );
        err.scope = Some(needed.as_str().to_string());
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_case_insensitive() {
        assert_eq!(token_from_header(Some("Bearer abc")).unwrap(), "abc");
        assert_eq!(token_from_header(Some("bearer abc")).unwrap(), "abc");
        assert_eq!(token_from_header(Some("APIKEY abc")).unwrap(), "abc");
        for bad in [None, Some(""), Some("Basic abc"), Some("Bearer"), Some("Token abc")] {
            assert_eq!(token_from_header(bad).unwrap_err().code, ErrorCode::MissingToken, "{bad:?}");
        }
    }
}
