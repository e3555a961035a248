//! The rules for people: first-run setup, bootstrap, sign-in, suspension.

use super::{password, store};
use crate::{
    actor::{Actor, RequestMeta},
    audit::{server as audit, AuditAction},
    db::{new_id, now},
    error::{AppError, ErrorCode},
    people::{
        normalize_email, normalize_tenant_name, validate_new_password, AccountStatus, CurrentUser, Member, Role,
        SuspensionPreview,
    },
    state::AppState,
};

pub struct NewOwner<'a> {
    pub tenant: &'a str,
    pub email: &'a str,
    pub password: &'a str,
}

/// Whether the first-run page should still be offered.
pub async fn setup_needed(state: &AppState) -> Result<bool, AppError> {
    Ok(!store::is_set_up(&state.db).await?)
}

/// First run only: creates the tenant and its owner. Refused once anyone exists, even
/// when two setups race (the instance row is claimed in the same transaction).
pub async fn setup(state: &AppState, input: NewOwner<'_>) -> Result<CurrentUser, AppError> {
    create_tenant_with_owner(state, input, true).await
}

/// Operator's path (`qahub admin bootstrap`): a new tenant and its owner, at any time.
pub async fn bootstrap(state: &AppState, input: NewOwner<'_>) -> Result<CurrentUser, AppError> {
    create_tenant_with_owner(state, input, false).await
}

async fn create_tenant_with_owner(
    state: &AppState,
    input: NewOwner<'_>,
    first_run_only: bool,
) -> Result<CurrentUser, AppError> {
    let tenant_name = normalize_tenant_name(input.tenant)?;
    let email = normalize_email(input.email)?;
    validate_new_password(input.password)?;
    if first_run_only && !setup_needed(state).await? {
        return Err(already_set_up());
    }
    let hash = password::hash(input.password.to_owned(), state.settings.bcrypt_cost).await?;

    let now = now();
    let mut tx = state.db.begin().await?;
    let claimed = store::claim_instance(&mut tx, now).await?;
    if first_run_only && (!claimed || store::count_users(&mut tx).await? > 0) {
        return Err(already_set_up());
    }
    let user = CurrentUser { user_id: new_id(), email, tenant_id: new_id(), tenant_name, role: Role::Owner };
    store::insert_tenant(&mut tx, &user.tenant_id, &user.tenant_name, now).await?;
    store::insert_user(&mut tx, &user.user_id, &user.email, &hash, now).await?;
    store::insert_membership(&mut tx, &user.tenant_id, &user.user_id, Role::Owner, now).await?;
    let actor = Actor::User(user.clone());
    let event = audit::Event {
        tenant_id: &user.tenant_id,
        action: AuditAction::TenantCreated,
        actor: &actor,
        target: Some(crate::audit::Party {
            kind: "tenant".into(),
            id: Some(user.tenant_id.clone()),
            label: Some(user.tenant_name.clone()),
        }),
        meta: &RequestMeta::default(),
        details: None,
        projects: &[],
    };
    audit::record(&mut tx, now, event).await?;
    tx.commit().await?;
    tracing::info!(tenant = %user.tenant_id, user = %user.user_id, "tenant created");
    Ok(user)
}

fn already_set_up() -> AppError {
    AppError::new(ErrorCode::AlreadySetUp, "QA Hub is already set up. Sign in instead.")
}

/// Operator's path (`qahub admin add-user`): a new person in an existing tenant.
pub async fn add_user(
    state: &AppState,
    tenant: &str,
    email: &str,
    password: &str,
    role: Role,
) -> Result<CurrentUser, AppError> {
    let email = normalize_email(email)?;
    validate_new_password(password)?;
    let tenant_name = normalize_tenant_name(tenant)?;
    let tenant_id = store::find_tenant_id(&state.db, &tenant_name)
        .await?
        .ok_or_else(|| AppError::not_found(&format!("Workspace {tenant_name:?}")))?;
    let hash = password::hash(password.to_owned(), state.settings.bcrypt_cost).await?;
    let now = now();
    let user = CurrentUser { user_id: new_id(), email, tenant_id, tenant_name, role };
    let mut tx = state.db.begin().await?;
    store::insert_user(&mut tx, &user.user_id, &user.email, &hash, now).await?;
    store::insert_membership(&mut tx, &user.tenant_id, &user.user_id, role, now).await?;
    tx.commit().await?;
    Ok(user)
}

fn invalid_credentials() -> AppError {
    AppError::new(ErrorCode::InvalidCredentials, "The email or password is incorrect.")
}

/// Checks a sign-in. Unknown emails cost one bcrypt check too, and get the same answer
/// as a wrong password. Attempts are limited per client address and per email.
pub async fn login(state: &AppState, email: &str, password: &str, meta: &RequestMeta) -> Result<CurrentUser, AppError> {
    // An unknown address shares one budget: it never escapes the limit.
    state.login_limiter.check(format!("ip:{}", meta.ip.as_deref().unwrap_or("unknown")))?;
    // No account has an email past 254 characters; longer input is refused unread.
    let email = email.trim();
    if email.chars().count() > 254 {
        return Err(invalid_credentials());
    }
    let email = email.to_lowercase();
    state.login_limiter.check(format!("email:{email}"))?;

    let user = store::find_user_by_email(&state.db, &email).await?;
    let hash = user.as_ref().map_or_else(|| state.dummy_hash.to_string(), |u| u.password_hash.clone());
    let matches = password::verify(password.to_owned(), hash).await;
    let user = match user {
        Some(user) if matches => user,
        Some(user) => {
            // A wrong password for a real account goes to its tenants' logs, written off
            // the request path so the answer takes as long as for an unknown email.
            let (db, meta) = (state.db.clone(), meta.clone());
            tokio::spawn(async move {
                let Ok(memberships) = store::memberships_of(&db, &user.id).await else { return };
                for m in memberships {
                    let actor = Actor::User(m.user.clone());
                    let event = audit::Event {
                        tenant_id: &m.user.tenant_id,
                        action: AuditAction::UserLoginFailed,
                        actor: &actor,
                        target: None,
                        meta: &meta,
                        details: None,
                        projects: &[],
                    };
                    if let Err(e) = audit::record_alone(&db, now(), event).await {
                        tracing::warn!(error = %e, "could not audit a failed sign-in");
                    }
                }
            });
            return Err(invalid_credentials());
        }
        None => return Err(invalid_credentials()),
    };
    if user.status != AccountStatus::Active {
        return Err(AppError::new(ErrorCode::UserSuspended, "This account is suspended."));
    }
    let memberships = store::memberships_of(&state.db, &user.id).await?;
    if memberships.is_empty() {
        return Err(AppError::forbidden("This account belongs to no workspace."));
    }
    let user = memberships
        .into_iter()
        .find(|m| m.tenant_status == AccountStatus::Active)
        .map(|m| m.user)
        .ok_or_else(|| AppError::new(ErrorCode::TenantSuspended, "This workspace is suspended."))?;
    let actor = Actor::User(user.clone());
    let event = audit::Event {
        tenant_id: &user.tenant_id,
        action: AuditAction::UserLogin,
        actor: &actor,
        target: None,
        meta,
        details: None,
        projects: &[],
    };
    audit::record_alone(&state.db, now(), event).await?;
    Ok(user)
}

/// The session's person, if they and their tenant are still active.
pub async fn active_member(state: &AppState, user_id: &str, tenant_id: &str) -> Result<Option<CurrentUser>, AppError> {
    Ok(store::membership_of(&state.db, user_id, tenant_id)
        .await?
        .filter(|m| m.user_status == AccountStatus::Active && m.tenant_status == AccountStatus::Active)
        .map(|m| m.user))
}

pub async fn set_tenant_status(state: &AppState, name: &str, suspended: bool) -> Result<(), AppError> {
    let status = AccountStatus::suspended(suspended);
    match store::set_tenant_status(&state.db, name.trim(), status).await? {
        0 => Err(AppError::not_found(&format!("Workspace {:?}", name.trim()))),
        _ => Ok(()),
    }
}

/// The person with this email in the named tenant, whatever their status (operator use).
pub async fn member_of(state: &AppState, tenant: &str, email: &str) -> Result<CurrentUser, AppError> {
    let email = normalize_email(email)?;
    let tenant_name = normalize_tenant_name(tenant)?;
    let user = store::find_user_by_email(&state.db, &email)
        .await?
        .ok_or_else(|| AppError::not_found(&format!("User {email}")))?;
    store::memberships_of(&state.db, &user.id)
        .await?
        .into_iter()
        .map(|m| m.user)
        .find(|u| u.tenant_name == tenant_name)
        .ok_or_else(|| AppError::not_found(&format!("{email} in workspace {tenant_name:?}")))
}

/// The id of the person with this email (operator use).
pub async fn user_id(state: &AppState, email: &str) -> Result<String, AppError> {
    let email = normalize_email(email)?;
    store::find_user_by_email(&state.db, &email)
        .await?
        .map(|u| u.id)
        .ok_or_else(|| AppError::not_found(&format!("User {email}")))
}

fn tenant_of(actor: &Actor) -> Result<&str, AppError> {
    actor.tenant_id().ok_or_else(|| AppError::forbidden("This needs a workspace."))
}

/// The people of the actor's workspace.
pub async fn members(state: &AppState, actor: &Actor) -> Result<Vec<Member>, AppError> {
    let rows = store::members_of(&state.db, tenant_of(actor)?).await?;
    Ok(rows
        .into_iter()
        .map(|m| Member {
            user_id: m.user.user_id,
            email: m.user.email,
            role: m.user.role,
            suspended: m.user_status != AccountStatus::Active,
        })
        .collect())
}

async fn member(state: &AppState, actor: &Actor, user_id: &str) -> Result<Member, AppError> {
    members(state, actor).await?.into_iter().find(|m| m.user_id == user_id).ok_or_else(|| AppError::not_found("Person"))
}

/// Why `actor` may not suspend `target`, if they may not: `policy::manage_member`, and a
/// suspension is of the account, so a person who also belongs to other workspaces is
/// left to the operator.
async fn suspension_refusal(state: &AppState, actor: &Actor, target: &Member) -> Result<Option<AppError>, AppError> {
    let cred = actor.permit(crate::policy::Action::ManagePeople)?;
    if let Err(refused) = crate::policy::manage_member(&cred, &target.user_id, target.role) {
        return Ok(Some(refused));
    }
    // The operator suspends accounts, wherever they belong.
    if matches!(actor, Actor::System) {
        return Ok(None);
    }
    if store::memberships_of(&state.db, &target.user_id).await?.len() > 1 {
        return Ok(Some(AppError::conflict(format!(
            "{} also belongs to other workspaces; an operator can suspend the account with `qahub user suspend`.",
            target.email
        ))));
    }
    Ok(None)
}

/// What suspending this person would stop, before anything is done.
pub async fn suspension_preview(state: &AppState, actor: &Actor, user_id: &str) -> Result<SuspensionPreview, AppError> {
    let target = member(state, actor, user_id).await?;
    let tenant_id = tenant_of(actor)?;
    let (stopping, surviving) = crate::tokens::server::service::stopping_with(state, user_id, Some(tenant_id)).await?;
    let stopping = stopping.into_iter().map(|(_, t)| t).collect();
    let refusal = suspension_refusal(state, actor, &target).await?.map(|e| e.message);
    Ok(SuspensionPreview { member: target, stopping, surviving, refusal })
}

/// Suspends or reactivates a person of the actor's workspace (owners and admins), and
/// audit-logs it with the tokens that stopped.
pub async fn set_member_suspended(
    state: &AppState,
    actor: &Actor,
    meta: &RequestMeta,
    user_id: &str,
    suspend: bool,
) -> Result<Member, AppError> {
    let target = member(state, actor, user_id).await?;
    if let Some(refused) = suspension_refusal(state, actor, &target).await? {
        return Err(refused);
    }
    let tenant_id = tenant_of(actor)?;
    let stopping: Vec<String> = if suspend {
        let (stopping, _) = crate::tokens::server::service::stopping_with(state, user_id, Some(tenant_id)).await?;
        stopping.into_iter().map(|(_, t)| t.masked()).collect()
    } else {
        Vec::new()
    };
    let status = AccountStatus::suspended(suspend);
    if store::set_user_status_by_id(&state.db, user_id, status).await? {
        audit_suspension(state, actor, meta, tenant_id, &target, suspend, stopping).await?;
    }
    Ok(Member { suspended: suspend, ..target })
}

/// The operator suspends or reactivates an account in every workspace it belongs to
/// (`qahub user suspend|activate`): the same rules as the Members page (the operator may
/// suspend anyone), and a `user.suspended` / `user.reactivated` entry in each workspace
/// with the tokens that stopped there. Returns whether the status changed.
pub async fn suspend_account(state: &AppState, email: &str, suspend: bool) -> Result<bool, AppError> {
    let email = normalize_email(email)?;
    let user = store::find_user_by_email(&state.db, &email)
        .await?
        .ok_or_else(|| AppError::not_found(&format!("User {email}")))?;
    let memberships = store::memberships_of(&state.db, &user.id).await?;
    let mut stopping = Vec::new();
    for m in &memberships {
        let target = Member { user_id: user.id.clone(), email: email.clone(), role: m.user.role, suspended: false };
        if let Some(refused) = suspension_refusal(state, &Actor::System, &target).await? {
            return Err(refused);
        }
        let stops = if suspend {
            let (own, _) =
                crate::tokens::server::service::stopping_with(state, &user.id, Some(&m.user.tenant_id)).await?;
            own.into_iter().map(|(_, t)| t.masked()).collect()
        } else {
            Vec::new()
        };
        stopping.push((m.user.tenant_id.clone(), target, stops));
    }
    if !store::set_user_status_by_id(&state.db, &user.id, AccountStatus::suspended(suspend)).await? {
        return Ok(false);
    }
    for (tenant_id, target, stops) in stopping {
        audit_suspension(state, &Actor::System, &RequestMeta::default(), &tenant_id, &target, suspend, stops).await?;
    }
    Ok(true)
}

async fn audit_suspension(
    state: &AppState,
    actor: &Actor,
    meta: &RequestMeta,
    tenant_id: &str,
    target: &Member,
    suspend: bool,
    stopping: Vec<String>,
) -> Result<(), AppError> {
    {
        let event = audit::Event {
            tenant_id,
            action: if suspend { AuditAction::UserSuspended } else { AuditAction::UserReactivated },
            actor,
            target: Some(crate::audit::Party {
                kind: "user".into(),
                id: Some(target.user_id.clone()),
                label: Some(target.email.clone()),
            }),
            meta,
            details: suspend.then(|| serde_json::json!({ "tokens_stopped": stopping })),
            projects: &[],
        };
        audit::record_alone(&state.db, now(), event).await
    }
}
